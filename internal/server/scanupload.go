package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// ScanSchema is the report schema POST /api/v1/scans accepts
// (internal/report/SCHEMA.md).
const ScanSchema = "vigil.scan/v1"

// uploadReport is the part of a vigil.scan/v1 document the server reads.
// Fields it does not know are ignored, as SCHEMA.md asks of consumers.
type uploadReport struct {
	Schema string `json:"schema"`
	Target struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"target"`
	Image *struct {
		Digest       string `json:"digest"`
		ConfigDigest string `json:"config_digest"`
	} `json:"image"`
	Findings []uploadFinding   `json:"findings"`
	Packages []json.RawMessage `json:"packages"`
}

type uploadFinding struct {
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases"`
	CVE      string   `json:"cve"`
	Summary  string   `json:"summary"`
	Severity string   `json:"severity"`
	Package  struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Type    string `json:"type"`
		PURL    string `json:"purl"`
	} `json:"package"`
	InstalledVersion string   `json:"installed_version"`
	FixedVersions    []string `json:"fixed_versions"`
	CVSS             *struct {
		BaseScore float64 `json:"base_score"`
	} `json:"cvss"`
	KEV  json.RawMessage `json:"kev"`
	EPSS *struct {
		Score float64 `json:"score"`
	} `json:"epss"`
}

var digestRE = regexp.MustCompile(`^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$`)

const maxUploadFindings = 1_000_000

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
	var doc uploadReport
	if err := json.Unmarshal(report, &doc); err != nil {
		return sc, fmt.Errorf("report: %w", describeJSONError(err))
	}
	if doc.Schema != ScanSchema {
		return sc, fmt.Errorf("report: schema %q, want %q", doc.Schema, ScanSchema)
	}
	if doc.Target.Name == "" || len(doc.Target.Name) > 4096 {
		return sc, errors.New("report: target.name: 1 to 4096 bytes")
	}
	sc.Target = doc.Target.Name
	if doc.Image != nil {
		for _, d := range []struct{ field, v string }{{"image.digest", doc.Image.Digest}, {"image.config_digest", doc.Image.ConfigDigest}} {
			if d.v != "" && !digestRE.MatchString(d.v) {
				return sc, fmt.Errorf("report: %s: %q is not a digest (algorithm:hex)", d.field, d.v)
			}
		}
		sc.ImageDigest = doc.Image.Digest
		if sc.ImageDigest == "" {
			sc.ImageDigest = doc.Image.ConfigDigest
		}
	}
	if len(doc.Findings) > maxUploadFindings {
		return sc, fmt.Errorf("report: findings: %d, more than %d", len(doc.Findings), maxUploadFindings)
	}
	sc.Findings = make([]store.Finding, 0, len(doc.Findings))
	affected := map[string]bool{}
	for i := range doc.Findings {
		f, err := convertFinding(&doc.Findings[i])
		if err != nil {
			return sc, fmt.Errorf("report: findings[%d].%w", i, err)
		}
		sc.Findings = append(sc.Findings, f)
		sum := &sc.Summary
		sum.Findings++
		switch f.Severity {
		case "CRITICAL":
			sum.Critical++
		case "HIGH":
			sum.High++
		case "MEDIUM":
			sum.Medium++
		case "LOW":
			sum.Low++
		}
		if f.KEV {
			sum.KEV++
		}
		key := f.PURL
		if key == "" {
			key = f.Package + "@" + f.Version
		}
		affected[key] = true
	}
	// Packages counts every package scanned (the report's packages list),
	// not only the vulnerable ones.
	sc.Summary.Packages = len(doc.Packages)
	if sc.Summary.Packages < len(affected) {
		sc.Summary.Packages = len(affected)
	}
	sc.Report = report
	return sc, nil
}

func convertFinding(u *uploadFinding) (store.Finding, error) {
	f := store.Finding{
		VulnID: u.ID, CVE: u.CVE, Package: u.Package.Name, Version: u.Package.Version,
		PackageType: u.Package.Type, PURL: u.Package.PURL, Summary: u.Summary, Aliases: u.Aliases,
		FixedVersion: strings.Join(u.FixedVersions, ", "),
		Severity:     strings.ToUpper(u.Severity),
		KEV:          len(u.KEV) > 0 && !isNull(u.KEV),
	}
	switch {
	case f.VulnID == "" || len(f.VulnID) > 256:
		return f, errors.New("id: 1 to 256 bytes")
	case f.Package == "":
		return f, errors.New("package.name: empty")
	}
	switch f.Severity {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN":
	case "":
		f.Severity = "UNKNOWN"
	default:
		return f, fmt.Errorf("severity: %q is not CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN", u.Severity)
	}
	if f.Version == "" {
		f.Version = u.InstalledVersion
	}
	if u.CVSS != nil {
		if u.CVSS.BaseScore < 0 || u.CVSS.BaseScore > 10 {
			return f, fmt.Errorf("cvss.base_score: %v is outside 0..10", u.CVSS.BaseScore)
		}
		f.CVSS = u.CVSS.BaseScore
	}
	if u.EPSS != nil {
		if u.EPSS.Score < 0 || u.EPSS.Score > 1 {
			return f, fmt.Errorf("epss.score: %v is outside 0..1", u.EPSS.Score)
		}
		f.EPSS = u.EPSS.Score
	}
	return f, nil
}

func isNull(b json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(b), []byte("null")) }

// describeJSONError names the field of a type mismatch.
func describeJSONError(err error) error {
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) && ute.Field != "" {
		return fmt.Errorf("%s: a JSON %s cannot be a %s", ute.Field, ute.Value, ute.Type)
	}
	return err
}
