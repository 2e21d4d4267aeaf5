package sbom

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

func writeTable(t *testing.T, r *inventory.Report) string {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatalf("WriteTable: %v", err)
	}
	return buf.String()
}

func TestWriteTable(t *testing.T) {
	r := testReport()
	out := writeTable(t, r)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")

	if got := strings.Fields(lines[0]); !cmp.Equal(got, []string{"NAME", "VERSION", "TYPE", "SOURCE", "LAYER", "LOCATION"}) {
		t.Errorf("header = %q", lines[0])
	}
	if len(lines) != 1+len(r.Packages)+2 {
		t.Fatalf("%d lines, want header, %d rows, summary and partial line:\n%s", len(lines), len(r.Packages), out)
	}
	for i, p := range r.Packages {
		if !strings.HasPrefix(lines[1+i], p.Name+" ") {
			t.Errorf("row %d = %q, want it to start with %s", i, lines[1+i], p.Name)
		}
	}
	// Columns are aligned: every row's VERSION starts where the header's does.
	col := strings.Index(lines[0], "VERSION")
	for _, l := range lines[1 : 1+len(r.Packages)] {
		if l[col-1] != ' ' || l[col] == ' ' {
			t.Errorf("row %q is not aligned on the VERSION column", l)
		}
	}

	rows := map[string][]string{
		// name → fields: version type source layer location…
		// The LAYER column shows the DiffID prefix, as the scan table does.
		"libssl3": {"3.0.11-1~deb12u2", "deb", "openssl", "5f70bf18a086", "/var/lib/dpkg/status"},
		"bash":    {"5.2.15-2+b7", "deb", "bash@5.2.15-2", "8b296f486960", "/var/lib/dpkg/status"},
		"stdlib":  {"1.22.1", "golang", "-", "0b7d4c1e7e1c", "/usr/local/bin/app"},
	}
	for _, l := range lines[1 : 1+len(r.Packages)] {
		f := strings.Fields(l)
		if want, ok := rows[f[0]]; ok {
			if diff := cmp.Diff(want, f[1:]); diff != "" {
				t.Errorf("row %s (-want +got):\n%s", f[0], diff)
			}
		}
	}
	if !strings.Contains(out, "/srv/tools/node_modules/lodash/package.json (+1)\n") {
		t.Errorf("second lodash row does not count its extra location:\n%s", out)
	}

	wantSummary := "10 packages (cargo: 1, deb: 2, gem: 1, golang: 2, npm: 3, pypi: 1) in docker-archive:testdata/app.tar"
	if got := lines[len(lines)-2]; got != wantSummary {
		t.Errorf("summary = %q, want %q", got, wantSummary)
	}
	if got := lines[len(lines)-1]; got != "partial result: 2 errors" {
		t.Errorf("last line = %q, want the partial result line", got)
	}
}

func TestWriteTableComplete(t *testing.T) {
	out := writeTable(t, dirReport())
	want := "NAME      VERSION  TYPE  SOURCE  LAYER  LOCATION\n" +
		"left-pad  1.3.0    npm   -       -      /package-lock.json\n" +
		"1 package (npm: 1) in dir:/home/dev/project\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}

	out = writeTable(t, &inventory.Report{Target: inventory.Target{Kind: "dir", Name: "/empty"}})
	if !strings.HasSuffix(out, "\n0 packages in dir:/empty\n") {
		t.Errorf("empty table = %q", out)
	}
}

// TestWriteTableControlCharacters checks that text from the target cannot
// inject terminal escapes or break rows.
func TestWriteTableControlCharacters(t *testing.T) {
	r := &inventory.Report{
		Target: inventory.Target{Kind: "dir", Name: "/x\x1b]0;pwned\x07"},
		Packages: []inventory.Package{{
			Name: "evil\x1b[31mred", Version: "1.0\n2.0", Type: "npm",
			Locations: []string{"/a\tb\u202e.json"},
		}},
	}
	out := writeTable(t, r)
	if strings.ContainsAny(out, "\x1b\x07\t\u202e") {
		t.Errorf("control characters reached the output: %q", out)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d lines, want 3: %q", n, out)
	}
	if !strings.Contains(out, "evil?[31mred") {
		t.Errorf("escape not replaced by '?': %q", out)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteTableWriteError(t *testing.T) {
	err := WriteTable(failingWriter{}, testReport())
	if err == nil || !strings.Contains(err.Error(), "disk full") || !strings.HasPrefix(err.Error(), "write table: ") {
		t.Errorf("error = %v, want a wrapped write error", err)
	}
}
