package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// ScanSchema is the report schema POST /api/v1/scans accepts
// (internal/report/SCHEMA.md).
const ScanSchema = store.ScanSchema

// ParseScanUpload reads the body of POST /api/v1/scans: either a
// vigil.scan/v1 document as `vigil scan --format json` writes it, or an
// envelope {"report": <that document>, "sbom": <CycloneDX JSON>} (sbom
// optional). It returns the scan with its Target, ImageDigest, Summary
// (counted from the findings), Findings, Report and SBOM set; ID, Time
// and Source are the caller's. Errors name the offending field.
func ParseScanUpload(body []byte) (store.Scan, error) {
	var sc store.Scan
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return sc, fmt.Errorf("body: not a JSON object: %w", err)
	}
	report := json.RawMessage(body)
	if _, ok := top["schema"]; !ok {
		rep, ok := top["report"]
		if !ok {
			return sc, errors.New("body: neither a vigil.scan/v1 report (no \"schema\" field) nor an envelope with \"report\"")
		}
		for k := range top {
			if k != "report" && k != "sbom" {
				return sc, fmt.Errorf("envelope: unknown field %q (only report and sbom)", k)
			}
		}
		report = rep
		if sb, ok := top["sbom"]; ok && !isNull(sb) {
			var bom struct {
				BOMFormat string `json:"bomFormat"`
			}
			if err := json.Unmarshal(sb, &bom); err != nil {
				return sc, fmt.Errorf("sbom: not a JSON object: %w", err)
			}
			if bom.BOMFormat != "CycloneDX" {
				return sc, fmt.Errorf("sbom: bomFormat %q, want CycloneDX", bom.BOMFormat)
			}
			sc.SBOM = sb
		}
	}
	parsed, err := store.ParseScanReport(report)
	if err != nil {
		return sc, err
	}
	parsed.SBOM = sc.SBOM
	return parsed, nil
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)

// describeJSONError names the field of a type mismatch.
func describeJSONError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return fmt.Errorf("%s: a JSON %s cannot be a %s", ute.Field, ute.Value, ute.Type)
	}
	return err
}
