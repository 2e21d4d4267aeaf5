package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// pythonImage writes a docker-archive of a one-layer image holding
// pip-installed distributions at versions the real PyPI advisories list as
// vulnerable, salt among them (its CVEs are in CISA KEV).
func pythonImage(t *testing.T) string {
	t.Helper()
	files := map[string][]byte{
		"etc/os-release": []byte("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n"),
	}
	for _, d := range [][2]string{{"salt", "3000.1"}, {"jinja2", "2.10"}} {
		files["usr/local/lib/python3.11/dist-packages/"+d[0]+"-"+d[1]+".dist-info/METADATA"] =
			[]byte("Metadata-Version: 2.1\nName: " + d[0] + "\nVersion: " + d[1] + "\n")
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(tarOf(t, files), types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "py.tar")
	tag, _ := name.NewTag("vigil.test/python:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestOfflineScan is the "done when": import the real data with
// `vigil db import`, scan an image, see risk-ordered findings with KEV and
// CVSS, and fail a CI job with --fail-on kev.
func TestOfflineScan(t *testing.T) {
	data := vigiltest.SharedData(t)
	db := filepath.Join(t.TempDir(), "vulndb.sqlite")
	code, _, stderr := run(t, "db", "import", "--db", db,
		filepath.Join(data, "osv", "PyPI", "all.zip"),
		filepath.Join(data, "osv", "Go", "all.zip"),
		filepath.Join(data, "kev", "known_exploited_vulnerabilities.json"),
		filepath.Join(data, "nvd", "nvdcve-2.0-subset.json"))
	if code != ExitClean {
		t.Fatalf("db import: exit %d: %s", code, stderr)
	}
	code, out, stderr := run(t, "db", "status", "--db", db)
	if code != ExitClean || !strings.Contains(out, "kev") || !strings.Contains(out, "PyPI") {
		t.Fatalf("db status: exit %d, output %q, stderr %s", code, out, stderr)
	}

	img := "docker-archive:" + pythonImage(t)
	code, out, stderr = run(t, "scan", "-q", "--db", db, "-f", "json", img)
	if code != ExitClean {
		t.Fatalf("scan: exit %d: %s", code, stderr)
	}
	var rep struct {
		Findings []struct {
			ID      string
			KEV     *struct{ DateAdded string }  `json:"kev"`
			CVSS    *struct{ BaseScore float64 } `json:"cvss"`
			Package struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) == 0 || rep.Findings[0].KEV == nil || rep.Findings[0].Package.Name != "salt" {
		t.Fatalf("first finding is not salt's KEV finding: %+v", rep.Findings)
	}
	var kevIDs []string
	nonKEV := false
	for _, f := range rep.Findings {
		if f.KEV != nil {
			if nonKEV {
				t.Errorf("KEV finding %s after a non-KEV one", f.ID)
			}
			kevIDs = append(kevIDs, f.ID)
		} else {
			nonKEV = true
		}
	}
	if !nonKEV {
		t.Error("no non-KEV finding (jinja2 2.10 has PyPI advisories)")
	}

	// The table says KEV on the first row and summarises.
	code, out, _ = run(t, "scan", "-q", "--db", db, img)
	if code != ExitClean || !strings.Contains(out, "KEV") || !strings.Contains(out, "salt") {
		t.Errorf("table: exit %d\n%s", code, out)
	}

	// --fail-on kev fails the job ...
	code, _, stderr = run(t, "scan", "-q", "--db", db, "--fail-on", "kev", "-f", "json", img)
	if code != ExitPolicy {
		t.Errorf("--fail-on kev: exit %d, want %d; %s", code, ExitPolicy, stderr)
	}
	// ... until each KEV finding is ignored, with a reason and an expiry.
	ign := filepath.Join(t.TempDir(), "ignore.yaml")
	var b strings.Builder
	b.WriteString("ignores:\n")
	for _, id := range kevIDs {
		b.WriteString("  - id: " + id + "\n    package: salt\n    reason: salt-master is not exposed\n    expires: 2999-01-01\n")
	}
	if err := os.WriteFile(ign, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "scan", "-q", "--db", db, "--fail-on", "kev", "--ignore-file", ign, "-f", "json", img)
	if code != ExitClean {
		t.Errorf("--fail-on kev with every KEV finding ignored: exit %d, want 0; %s", code, stderr)
	}
	// An expired ignore no longer applies.
	expired := strings.ReplaceAll(b.String(), "2999-01-01", "2001-01-01")
	if err := os.WriteFile(ign, []byte(expired), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "scan", "--db", db, "--fail-on", "kev", "--ignore-file", ign, "-f", "json", img)
	if code != ExitPolicy || !strings.Contains(stderr, "expired") {
		t.Errorf("expired ignores: exit %d, stderr %q; want exit 1 and a warning", code, stderr)
	}

	// SARIF for GitHub code scanning.
	code, out, stderr = run(t, "scan", "-q", "--db", db, "-f", "sarif", img)
	if code != ExitClean {
		t.Fatalf("sarif: exit %d: %s", code, stderr)
	}
	var sarif struct {
		Version string
		Runs    []struct{ Results []any }
	}
	if err := json.Unmarshal([]byte(out), &sarif); err != nil || sarif.Version != "2.1.0" || len(sarif.Runs) != 1 || len(sarif.Runs[0].Results) != len(rep.Findings) {
		t.Errorf("sarif: %v, version %q, %d runs", err, sarif.Version, len(sarif.Runs))
	}

	// CycloneDX with vulnerabilities validates against the official schema.
	code, out, stderr = run(t, "scan", "-q", "--db", db, "-f", "cyclonedx", img)
	if code != ExitClean {
		t.Fatalf("cyclonedx: exit %d: %s", code, stderr)
	}
	validate(t, vigiltest.CycloneDXSchema, out)
	if !strings.Contains(out, `"vulnerabilities"`) {
		t.Error("CycloneDX output has no vulnerabilities")
	}
}

func TestScanWithoutDB(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.sqlite")
	code, _, stderr := run(t, "scan", "--db", missing, t.TempDir())
	if code != ExitError || !strings.Contains(stderr, missing) || !strings.Contains(stderr, "vigil db update") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming the database and how to make it", code, stderr)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "requirements.txt"), []byte("requests==2.31.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "scan", "--no-vulns", "--db", missing, dir)
	if code != ExitClean || !strings.Contains(out, "requests") || !strings.Contains(out, "1 package (pypi: 1)") {
		t.Errorf("--no-vulns: exit %d, table %q: %s", code, out, stderr)
	}
	code, _, stderr = run(t, "scan", "--fail-on", "sometimes", "--no-vulns", t.TempDir())
	if code != ExitError || !strings.Contains(stderr, "sometimes") {
		t.Errorf("bad --fail-on: exit %d, stderr %q", code, stderr)
	}
}
