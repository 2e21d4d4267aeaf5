package server

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/report"
	"github.com/vigil-cwpp/vigil/internal/sbom"
	"github.com/vigil-cwpp/vigil/internal/scan"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// realScan runs what `vigil scan --format json` runs — internal/scan over
// a directory, matched against a vulnerability database imported from the
// real PyPI advisories and CISA KEV, written by report.WriteJSON — on a
// tree with salt 3000.1 (two KEV advisories) and jinja2 2.10 (ordinary
// ones). It returns the JSON report and the CycloneDX SBOM the CLI sends
// with --report-to.
func realScan(t *testing.T) (reportJSON, sbomJSON []byte) {
	t.Helper()
	data := vigiltest.SharedData(t)
	dbPath := filepath.Join(t.TempDir(), "vulndb.sqlite")
	if _, err := vulndb.Import(t.Context(), dbPath, []string{
		filepath.Join(data, "osv", "PyPI", "all.zip"),
		filepath.Join(data, "kev", "known_exploited_vulnerabilities.json"),
	}, vulndb.DefaultOptions()); err != nil {
		t.Fatalf("importing the advisories: %v", err)
	}
	db, err := vulndb.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := t.TempDir()
	for name, version := range map[string]string{"salt": "3000.1", "jinja2": "2.10"} {
		dir := filepath.Join(root, "usr/local/lib/python3.11/dist-packages", name+"-"+version+".dist-info")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "METADATA"), []byte("Metadata-Version: 2.1\nName: "+name+"\nVersion: "+version+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := artifact.ParseRef("dir:" + root)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan.Run(t.Context(), ref, scan.Options{Artifact: artifact.DefaultOptions(), DB: db})
	if err != nil {
		t.Fatal(err)
	}
	sources, err := db.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	rs := &report.Scan{Inventory: res.Inventory, Findings: res.Findings, Suppressed: res.Suppressed,
		DB: report.DBInfo{Built: db.Built(), Sources: sources}, Tool: report.Tool{Name: "vigil", Version: "test"}}
	var rj, sb bytes.Buffer
	if err := report.WriteJSON(&rj, rs); err != nil {
		t.Fatal(err)
	}
	if err := sbom.EncodeCycloneDXWithVulns(&sb, res.Inventory, res.Findings, sbom.Options{ToolName: "vigil", ToolVersion: "test"}); err != nil {
		t.Fatal(err)
	}
	return rj.Bytes(), sb.Bytes()
}

// TestScanUpload posts a real scan report, bare and in the envelope the
// CLI sends with its SBOM, and reads it back: counts, KEV first, SBOM,
// source, audit, publish; then bad uploads.
func TestScanUpload(t *testing.T) { testScanUpload(t) }

func testScanUpload(t *testing.T) {
	reportJSON, sbomJSON := realScan(t)
	var doc struct {
		Target   struct{ Name string }
		Summary  struct{ Total, KEV int }
		Findings []struct {
			ID  string
			KEV *struct{}
		}
		Packages []json.RawMessage
	}
	if err := json.Unmarshal(reportJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Summary.KEV < 2 || doc.Summary.Total <= doc.Summary.KEV {
		t.Fatalf("the fixture scan has %d findings, %d KEV: want KEV and non-KEV findings", doc.Summary.Total, doc.Summary.KEV)
	}

	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	ci := e.tokenClient(e.newToken(admin, "ci", "analyst"))

	// The bare report, as `vigil scan --format json` writes it.
	var sc store.Scan
	st, body := ci.raw("POST", "/api/v1/scans", reportJSON, nil)
	if st != 201 {
		t.Fatalf("upload: %d %s", st, body)
	}
	checkSchema(t, "Scan", body)
	json.Unmarshal(body, &sc)
	if sc.ID == "" || sc.Source != "ci:ci" || sc.Target != doc.Target.Name || sc.Summary.Findings != doc.Summary.Total || sc.Summary.KEV != doc.Summary.KEV || sc.Summary.Packages != len(doc.Packages) {
		t.Errorf("stored scan %+v; report: target %s, %d findings, %d KEV, %d packages", sc, doc.Target.Name, doc.Summary.Total, doc.Summary.KEV, len(doc.Packages))
	}
	var full store.Scan
	if st := ci.do("GET", "/api/v1/scans/"+sc.ID, nil, &full); st != 200 || len(full.Findings) != len(doc.Findings) {
		t.Fatalf("GET scan: %d, %d findings, want %d", st, len(full.Findings), len(doc.Findings))
	}
	for i, f := range full.Findings {
		if i < doc.Summary.KEV != f.KEV {
			t.Errorf("finding %d (%s): KEV %v; the KEV findings must come first", i, f.VulnID, f.KEV)
		}
		if f.Package == "" || f.Severity == "" || f.ScanID != sc.ID {
			t.Errorf("finding %+v", f)
		}
	}
	stored, err := e.st.Scan(t.Context(), sc.ID)
	if err != nil || !json.Valid(stored.Report) || !bytes.Contains(stored.Report, []byte(`"vigil.scan/v1"`)) {
		t.Errorf("stored report: %v, %d bytes", err, len(stored.Report))
	}
	select {
	case b := <-e.published:
		if len(b.Scans) != 1 || b.Scans[0].ID != sc.ID {
			t.Errorf("published %+v", b)
		}
	default:
		t.Error("the scan was not published")
	}
	if !e.auditHas("upload-scan", "token:ci", true) {
		t.Error("upload not audited")
	}

	// The envelope with the SBOM, as `vigil scan --report-to` sends it.
	// A directory scan has no image digest: give the report one, as an
	// image scan would have, so the SBOM can be fetched by digest.
	digest := "sha256:" + strings.Repeat("ab", 32)
	var m map[string]any
	json.Unmarshal(reportJSON, &m)
	m["image"] = map[string]any{"digest": digest, "layers": []any{}}
	withImage, _ := json.Marshal(m)
	env, _ := json.Marshal(map[string]json.RawMessage{"report": withImage, "sbom": sbomJSON})
	if st, b := ci.raw("POST", "/api/v1/scans", env, nil); st != 201 {
		t.Fatalf("envelope upload: %d %s", st, b)
	}
	st, got := ci.raw("GET", "/api/v1/images/"+digest+"/sbom", nil, nil)
	if st != 200 || !sameJSON(got, sbomJSON) {
		t.Errorf("SBOM download: %d, %d bytes, want the %d uploaded", st, len(got), len(sbomJSON))
	}
	var img imageDetail
	if st := ci.do("GET", "/api/v1/images/"+digest, nil, &img); st != 200 || len(img.Findings) != doc.Summary.Total || !img.Findings[0].KEV {
		t.Errorf("image page: %d, %d findings", st, len(img.Findings))
	}

	// Bad uploads: each refused with 400 naming the problem, and audited.
	bad := map[string]string{
		"not json":       `{"schema": `,
		"schema":         `{"schema": "vigil.scan/v2", "target": {"name": "x"}, "findings": []}`,
		"target.name":    `{"schema": "vigil.scan/v1", "target": {}, "findings": []}`,
		"findings[0].id": `{"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": [{"package": {"name": "p"}}]}`,
		"severity":       `{"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": [{"id": "X", "severity": "huge", "package": {"name": "p"}}]}`,
		"image.digest":   `{"schema": "vigil.scan/v1", "target": {"name": "x"}, "image": {"digest": "latest"}, "findings": []}`,
		"bomFormat":      `{"report": {"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": []}, "sbom": {"spdxVersion": "2.3"}}`,
		"extra":          `{"report": {"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": []}, "extra": 1}`,
		"findings":       `{"schema": "vigil.scan/v1", "target": {"name": "x"}, "findings": {}}`,
	}
	for want, b := range bad {
		st, body := ci.raw("POST", "/api/v1/scans", []byte(b), nil)
		if st != 400 || !strings.Contains(string(body), want) && want != "not json" {
			t.Errorf("%s: %d %s, want 400 naming it", want, st, body)
		}
	}
	if !e.auditHas("upload-scan", "token:ci", false) {
		t.Error("refused upload not audited")
	}
}

// sameJSON reports whether a and b are the same JSON value (the store may
// keep JSON compacted).
func sameJSON(a, b []byte) bool {
	var ca, cb bytes.Buffer
	return json.Compact(&ca, a) == nil && json.Compact(&cb, b) == nil && bytes.Equal(ca.Bytes(), cb.Bytes())
}
