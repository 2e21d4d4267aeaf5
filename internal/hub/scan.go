package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/report"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// scanDoc is the part of a vigil.scan/v1 report (internal/report,
// SCHEMA.md) the store keeps as columns.
type scanDoc struct {
	Schema string `json:"schema"`
	Target struct {
		Kind string `json:"kind"`
		Name string `json:"name"`
	} `json:"target"`
	Image *struct {
		Digest string `json:"digest"`
	} `json:"image"`
	Summary struct {
		Total    int `json:"total"`
		KEV      int `json:"kev"`
		Critical int `json:"critical"`
		High     int `json:"high"`
		Medium   int `json:"medium"`
		Low      int `json:"low"`
		Packages int `json:"packages"`
	} `json:"summary"`
	Findings []struct {
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
		FixedVersions []string `json:"fixed_versions"`
		CVSS          *struct {
			BaseScore float64 `json:"base_score"`
		} `json:"cvss"`
		KEV  *json.RawMessage `json:"kev"`
		EPSS *struct {
			Score float64 `json:"score"`
		} `json:"epss"`
	} `json:"findings"`
	Packages []json.RawMessage `json:"packages"`
}

// maxReport bounds a scan report handed to ParseScanReport (an agent's
// comes in one message, under wire.MaxMessageSize; a CI upload is bounded
// by the API's body limit).
const maxReport = 64 << 20

// ParseScanReport reads a `vigil scan --format json` report (vigil.scan/v1)
// into a store.Scan: target, image digest, summary, findings in the
// report's risk order, and the whole report. ID, Time and Source are left
// for the caller. internal/server uses it for CI uploads too.
func ParseScanReport(doc []byte) (store.Scan, error) {
	if len(doc) == 0 {
		return store.Scan{}, errors.New("scan report: empty")
	}
	if len(doc) > maxReport {
		return store.Scan{}, fmt.Errorf("scan report: %d bytes, over %d", len(doc), maxReport)
	}
	var d scanDoc
	if err := json.Unmarshal(doc, &d); err != nil {
		return store.Scan{}, fmt.Errorf("scan report: %w", err)
	}
	if d.Schema != report.JSONSchema {
		return store.Scan{}, fmt.Errorf("scan report: schema %q, want %q", clip(d.Schema, 64), report.JSONSchema)
	}
	sc := store.Scan{
		Target: clean(d.Target.Name),
		Report: cleanRaw(doc),
		Summary: store.ScanSummary{
			Packages: len(d.Packages), Findings: d.Summary.Total,
			Critical: d.Summary.Critical, High: d.Summary.High, Medium: d.Summary.Medium, Low: d.Summary.Low,
			KEV: d.Summary.KEV,
		},
	}
	if d.Image != nil {
		sc.ImageDigest = clean(d.Image.Digest)
	}
	for i := range d.Findings {
		f := &d.Findings[i]
		if f.ID == "" || f.Package.Name == "" {
			return store.Scan{}, fmt.Errorf("scan report: finding %d has no id or package name", i)
		}
		sf := store.Finding{
			VulnID: clean(f.ID), CVE: clean(f.CVE), Package: clean(f.Package.Name), Version: clean(f.Package.Version),
			PackageType: clean(f.Package.Type), PURL: clean(f.Package.PURL), Severity: clean(strings.ToUpper(f.Severity)),
			KEV: f.KEV != nil && string(*f.KEV) != "null", Summary: clean(f.Summary), Aliases: cleanAll(f.Aliases),
		}
		if len(f.FixedVersions) > 0 {
			sf.FixedVersion = clean(f.FixedVersions[0])
		}
		if f.CVSS != nil {
			sf.CVSS = f.CVSS.BaseScore
		}
		if f.EPSS != nil {
			sf.EPSS = f.EPSS.Score
		}
		if sf.Severity == "" {
			sf.Severity = "UNKNOWN"
		}
		sc.Findings = append(sc.Findings, sf)
	}
	return sc, nil
}
