package server

import (
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// FuzzParseScanUpload: any body gives a scan or an error, never a panic;
// an accepted scan is consistent with its findings.
func FuzzParseScanUpload(f *testing.F) {
	_, file, _, _ := runtime.Caller(0)
	if golden, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "report", "testdata", "scan.golden.json")); err == nil {
		f.Add(golden)
		f.Add([]byte(`{"report": ` + string(golden) + `, "sbom": {"bomFormat": "CycloneDX", "specVersion": "1.6"}}`))
	}
	for _, s := range []string{
		`{"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": []}`,
		`{"schema": "vigil.scan/v1", "target": {"name": "x"}, "image": {"digest": "sha256:` + strings.Repeat("a", 64) + `"}, "findings": [{"id": "CVE-1", "severity": "high", "package": {"name": "p", "version": "1"}, "kev": {"date_added": "2024-01-01"}, "cvss": {"base_score": 9.8}, "epss": {"score": 0.5}}], "packages": [{}, {}]}`,
		`{"report": {"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": []}, "sbom": null}`,
		`{"report": 5}`, `[]`, `null`, `{"schema": 1}`, `{"findings": [null]}`, `{}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sc, err := ParseScanUpload(body)
		if err != nil {
			if err.Error() == "" {
				t.Error("empty error")
			}
			return
		}
		if sc.Target == "" || len(sc.Findings) != sc.Summary.Findings || !json.Valid(sc.Report) {
			t.Errorf("inconsistent scan: target %q, %d findings, summary %+v", sc.Target, len(sc.Findings), sc.Summary)
		}
		kev := 0
		for _, x := range sc.Findings {
			if x.VulnID == "" || x.Package == "" {
				t.Errorf("finding without id or package: %+v", x)
			}
			switch x.Severity {
			case "CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN":
			default:
				t.Errorf("severity %q", x.Severity)
			}
			if x.KEV {
				kev++
			}
		}
		if kev != sc.Summary.KEV {
			t.Errorf("KEV %d, summary says %d", kev, sc.Summary.KEV)
		}
		if sc.ImageDigest != "" && !digestRE.MatchString(sc.ImageDigest) {
			t.Errorf("image digest %q", sc.ImageDigest)
		}
	})
}

// FuzzAlertFilterQuery: any query string gives a filter or an error, and
// an accepted filter is within its bounds.
func FuzzAlertFilterQuery(f *testing.F) {
	for _, s := range []string{
		"", "since=24h", "since=7d&severity=warning", "severity=0&limit=1000", "until=2026-01-02T03:04:05Z&since=2026-01-01T00:00:00Z",
		"workload=abc&rule=Terminal+shell+in+container&incident=x&agent=y&before=01890a5d-ac96-774b-bcce-b302099a8057",
		"since=-1h", "since=99999999999d", "severity=debug&severity=info", "limit=0", "x=1", "rule=%00", "since=1e9h", "before=" + strings.Repeat("z", 300),
	} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		af, err := parseAlertFilter(q, now)
		if err != nil {
			return
		}
		if af.Limit < 1 || af.Limit > maxPage {
			t.Errorf("limit %d", af.Limit)
		}
		if af.HasSeverity && (af.MaxSeverity < 0 || af.MaxSeverity > 7) {
			t.Errorf("severity %d", af.MaxSeverity)
		}
		if !af.Since.IsZero() && !af.Until.IsZero() && af.Until.Before(af.Since) {
			t.Errorf("until %s before since %s", af.Until, af.Since)
		}
		for _, v := range []string{af.Workload, af.Rule, af.IncidentID, af.AgentID, af.Before} {
			if len(v) > 256 {
				t.Errorf("%d-byte value accepted", len(v))
			}
		}
	})
}
