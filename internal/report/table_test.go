package report

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
	"unicode"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

func writeTable(t *testing.T, s *Scan, o TableOptions) string {
	t.Helper()
	return string(render(t, func(b *bytes.Buffer) error { return WriteTable(b, s, o) }))
}

func TestWriteTable(t *testing.T) {
	s := testScan()
	out := writeTable(t, s, TableOptions{})
	golden(t, "table.golden", []byte(out))

	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if got := strings.Fields(lines[0]); strings.Join(got, " ") != "KEV SEVERITY ID PACKAGE INSTALLED FIXED EPSS CVSS LAYER TITLE" {
		t.Errorf("header = %q", lines[0])
	}
	// Rows in the order given: the KEV findings first.
	for i, want := range []string{
		"KEV  CRITICAL  PYSEC-2020-102 (CVE-2020-11651)",
		"KEV  HIGH      PYSEC-2022-236 (CVE-2022-33891)",
		"KEV  MEDIUM    PYSEC-2020-103 (CVE-2020-11652)",
		"     UNKNOWN   GO-2024-2687 (CVE-2023-45288)",
		"     UNKNOWN   DEBIAN-CVE-2024-0727-openssl (CVE-2024-0727)",
	} {
		if !strings.HasPrefix(lines[1+i], want) {
			t.Errorf("row %d = %q, want it to start with %q", i, lines[1+i], want)
		}
	}
	for _, want := range []string{
		"90.0%", "<0.1%", // EPSS as a percentage
		"9.8", "8.8", // CVSS
		"5f70bf18a086 RUN apt-get update && apt-get…", // short diff ID and created_by, truncated
		"0b7d4c1e7e1c COPY /out/app /usr/local/bin/…",
		"HTTP/2 CONTINUATION flood in net/http",
		"3.0.11-1~deb12u2  3.0.13-1~deb12u1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not contain %q:\n%s", want, out)
		}
	}

	summary := "5 vulnerabilities (3 in KEV): 1 critical, 1 high, 1 medium, 0 low, 2 unknown — in 4 packages of registry:registry.example.com/team/app:1.4.0; 1 suppressed"
	if lines[6] != summary {
		t.Errorf("summary line =\n%q, want\n%q", lines[6], summary)
	}
	if want := "partial result: 1 input could not be read, so packages may be missing"; lines[7] != want {
		t.Errorf("line after the summary = %q, want %q", lines[7], want)
	}
	if len(lines) != 8 {
		t.Errorf("%d lines, want 8 (header, 5 rows, summary, partial)", len(lines))
	}
}

func TestWriteTableOptions(t *testing.T) {
	s := testScan()
	s.DB.Stale = true
	out := writeTable(t, s, TableOptions{TitleWidth: 10, LayerWidth: -1, ShowSuppressed: true})
	for _, want := range []string{
		"HTTP/2 CO…",
		"RUN apt-get update && apt-get install -y libssl3 python3-pip && pip install salt==3000.1 pyspark==3.2.1",
		"warning: the vulnerability database was built on 2026-03-14 and is stale",
		"Suppressed:",
		"DEBIAN-CVE-2024-13176-openssl (CVE-2024-13176)  libssl3  3.0.11-1~deb12u2  not_affected per vex.json: vulnerable_code_not_in_execute_path",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table does not contain %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "# buildkit") {
		t.Error("created_by keeps the # buildkit suffix")
	}
}

func TestWriteTableEmpty(t *testing.T) {
	for name, s := range map[string]*Scan{
		"clean directory": {Inventory: &inventory.Report{Target: inventory.Target{Kind: "dir", Name: "/src"}}},
		"no inventory":    {},
	} {
		t.Run(name, func(t *testing.T) {
			out := writeTable(t, s, TableOptions{})
			target := "dir:/src"
			if s.Inventory == nil {
				target = "unknown"
			}
			want := "0 vulnerabilities (0 in KEV): 0 critical, 0 high, 0 medium, 0 low, 0 unknown — in 0 packages of " + target + "; 0 suppressed\n"
			if out != want {
				t.Errorf("table =\n%q, want\n%q", out, want)
			}
		})
	}
}

// TestWriteTableSanitizes feeds hostile package metadata and advisory text:
// terminal escapes, newlines, bidirectional overrides.
func TestWriteTableSanitizes(t *testing.T) {
	s := testScan()
	f := &s.Findings[3]
	f.Package.Name = "evil\x1b[2J\x1b]0;pwned\x07pkg"
	f.InstalledVersion = "1.0\r\n2.0"
	f.Summary = "line one\nline two \u202eevil\u202c\x00"
	f.FixedVersions = []string{"9.9\t9"}
	f.Package.Layer = &inventory.Layer{DiffID: "sha256:0123456789abcdef", CreatedBy: "RUN echo \x1b[31mred\x1b[0m"}
	s.Inventory.Target.Name = "img\x1b[5m"
	s.Suppressed[0].Reason = "ignored by f:1 (\x1b[8mhidden)"
	out := writeTable(t, s, TableOptions{ShowSuppressed: true})

	for _, r := range out {
		if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
			t.Fatalf("output contains control or format character %U:\n%q", r, out)
		}
	}
	// Each finding is still one line.
	if got := strings.Count(out, "\n"); got != 1+5+1+1+3+1 {
		t.Errorf("%d lines, want 12 (a newline in the data split a row?):\n%s", got, out)
	}
	if !strings.Contains(out, "evil?[2J?]0;pwned?pkg") || !strings.Contains(out, "line one line two ?evil?") {
		t.Errorf("sanitized text not found:\n%s", out)
	}
}

func TestWriteTableErrors(t *testing.T) {
	if err := WriteTable(&bytes.Buffer{}, nil, TableOptions{}); err == nil || !strings.Contains(err.Error(), "nil scan") {
		t.Errorf("nil scan: error = %v", err)
	}
	if err := WriteTable(failWriter{}, testScan(), TableOptions{}); !errors.Is(err, os.ErrClosed) {
		t.Errorf("failing writer: error = %v, want %v", err, os.ErrClosed)
	}
}

func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"word  break here", 7, "word…"},
		{"héllo wörld", 5, "héll…"},
		{"abc", 1, "…"},
		{"abc", 0, "abc"},
		{"abc", -1, "abc"},
	} {
		if got := truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestFormatPercent(t *testing.T) {
	for in, want := range map[float64]string{0: "0.0%", 0.00042: "<0.1%", 0.001: "0.1%", 0.5: "50.0%", 0.97531: "97.5%", 1: "100.0%"} {
		if got := formatPercent(in); got != want {
			t.Errorf("formatPercent(%v) = %q, want %q", in, got, want)
		}
	}
}
