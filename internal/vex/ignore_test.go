package vex

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseIgnores(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Ignore
	}{
		{
			name: "yaml",
			in: `# accepted risks
ignores:
  - id: CVE-2024-0727
    package: libssl3
    reason: PKCS12 files are not parsed
    expires: 2027-01-01
  - id: GO-2024-2687
    reason: "no HTTP/2 server"

  - {id: PYSEC-2020-102, package: "pkg:pypi/salt"}
`,
			want: []Ignore{
				{ID: "CVE-2024-0727", Package: "libssl3", Reason: "PKCS12 files are not parsed", Expires: date("2027-01-01"), Source: "f:3"},
				{ID: "GO-2024-2687", Reason: "no HTTP/2 server", Source: "f:7"},
				{ID: "PYSEC-2020-102", Package: "pkg:pypi/salt", Source: "f:10"},
			},
		},
		{
			name: "yaml document marker",
			in:   "---\nignores:\n- id: CVE-2020-11651\n",
			want: []Ignore{{ID: "CVE-2020-11651", Source: "f:3"}},
		},
		{name: "yaml empty list", in: "ignores: []\n", want: nil},
		{name: "yaml null list", in: "ignores:\n", want: nil},
		{name: "empty file", in: "", want: nil},
		{name: "only comments", in: "# nothing yet\n\n", want: nil},
		{
			name: "trivyignore",
			in: `# Accept the risk
CVE-2020-11651

# until the base image is rebuilt
CVE-2024-0727 exp:2027-01-01
  GO-2024-2687   # inline comment
GHSA-4v7x-pqxf-cx7m exp:2026-07-01 # both
`,
			want: []Ignore{
				{ID: "CVE-2020-11651", Source: "f:2"},
				{ID: "CVE-2024-0727", Expires: date("2027-01-01"), Source: "f:5"},
				{ID: "GO-2024-2687", Source: "f:6"},
				{ID: "GHSA-4v7x-pqxf-cx7m", Expires: date("2026-07-01"), Source: "f:7"},
			},
		},
		{
			name: "trivyignore with CRLF line ends",
			in:   "CVE-2020-11651\r\nCVE-2020-11652 exp:2027-01-01\r\n",
			want: []Ignore{
				{ID: "CVE-2020-11651", Source: "f:1"},
				{ID: "CVE-2020-11652", Expires: date("2027-01-01"), Source: "f:2"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIgnores(strings.NewReader(tt.in), "f")
			if err != nil {
				t.Fatalf("parseIgnores: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ignores (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseIgnoresErrors(t *testing.T) {
	tests := []struct {
		name, in string
		// want is what the error must contain, starting with file:line.
		want string
	}{
		{"yaml unknown top-level field", "ignores: []\nvulnerabilities: []\n", `f:2: unknown field "vulnerabilities"`},
		{"yaml unknown entry field", "ignores:\n  - id: CVE-2020-11651\n    expiry: 2027-01-01\n", `f:3: unknown field "expiry"`},
		{"yaml missing id", "ignores:\n  - reason: x\n", "f:2: missing id"},
		{"yaml bad date", "ignores:\n  - id: CVE-2020-11651\n    expires: 01/01/2027\n", `f:3: expiry date "01/01/2027" is not YYYY-MM-DD`},
		{"yaml not a list", "ignores: CVE-2020-11651\n", `f:1: "ignores" must be a list`},
		{"yaml entry not a mapping", "ignores:\n  - CVE-2020-11651\n", "f:2: an ignore entry must be a mapping"},
		{"yaml nested value", "ignores:\n  - id: [CVE-2020-11651]\n", `f:2: "id" must be a single value`},
		{"yaml duplicate field", "ignores:\n  - id: CVE-2020-11651\n    id: CVE-2020-11652\n", `f:3: duplicate field "id"`},
		{"yaml id with space", "ignores:\n  - id: CVE 2020\n", `f:2: id "CVE 2020" contains spaces`},
		{"yaml syntax", "ignores:\n  - id: [\n", "ignore file f: yaml: line"},
		{"yaml two documents", "ignores: []\n---\nignores: []\n", "more than one YAML document"},
		{"yaml top-level list", "---\n- id: CVE-2020-11651\n", `f:2: want a mapping with an "ignores" list`},
		{"trivy unknown token", "CVE-2020-11651 exp=2027-01-01\n", `f:1: unknown token "exp=2027-01-01"`},
		{"trivy bad date", "\nCVE-2020-11651 exp:2027-13-01\n", `f:2: expiry date "2027-13-01" is not YYYY-MM-DD`},
		{"trivy two dates", "CVE-2020-11651 exp:2027-01-01 exp:2028-01-01\n", "f:1: more than one exp:"},
		{"trivy control character", "CVE-2020-11651\x1b[31m\n", "f:1: id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIgnores(strings.NewReader(tt.in), "f")
			if err == nil {
				t.Fatalf("parseIgnores succeeded with %+v, want an error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadIgnoreFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".vigilignore")
	if err := os.WriteFile(path, []byte("ignores:\n  - id: CVE-2020-11651\n    reason: r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIgnoreFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Ignore{{ID: "CVE-2020-11651", Reason: "r", Source: path + ":2"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ignores (-want +got):\n%s", diff)
	}

	missing := filepath.Join(dir, "missing")
	if _, err := LoadIgnoreFile(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error = %v, want one naming %s", err, missing)
	}
}

func TestPURLHasPrefix(t *testing.T) {
	const purl = "pkg:golang/github.com/google/uuid@v1.6.0"
	for prefix, want := range map[string]bool{
		purl:                                     true,
		"pkg:golang/github.com/google/uuid":      true,
		"pkg:golang/github.com/google/":          true,
		"pkg:golang/github.com/google":           true,
		"pkg:golang/github.com/goog":             false,
		"pkg:golang/github.com/google/uuid@":     true,
		"pkg:golang/github.com/google/uuid@v1.6": false,
		"pkg:npm/uuid":                           false,
	} {
		if got := purlHasPrefix(purl, prefix); got != want {
			t.Errorf("purlHasPrefix(%q, %q) = %v, want %v", purl, prefix, got, want)
		}
	}
}
