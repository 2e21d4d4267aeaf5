package vex

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// openVEXDoc is an OpenVEX v0.2.0 document in the shape vexctl writes.
const openVEXDoc = `{
  "@context": "https://openvex.dev/ns/v0.2.0",
  "@id": "https://example.com/vex/app-2026-03",
  "author": "Example Security Team",
  "timestamp": "2026-03-01T10:00:00Z",
  "version": 1,
  "statements": [
    {
      "vulnerability": {
        "@id": "https://nvd.nist.gov/vuln/detail/CVE-2024-0727",
        "name": "CVE-2024-0727",
        "aliases": ["DEBIAN-CVE-2024-0727-openssl"]
      },
      "products": [
        {
          "@id": "pkg:oci/app@sha256%3A9b2a5f0e4d1c3b7a8e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
          "subcomponents": [
            {"@id": "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64"},
            {"identifiers": {"purl": "pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=source"}}
          ]
        }
      ],
      "status": "not_affected",
      "justification": "vulnerable_code_not_in_execute_path",
      "impact_statement": "The application never parses PKCS12 files."
    },
    {
      "vulnerability": {"name": "GO-2024-2687"},
      "timestamp": "2026-03-05T08:30:00Z",
      "products": [{"@id": "pkg:golang/stdlib@1.22.1"}],
      "status": "fixed"
    },
    {
      "vulnerability": {"name": "CVE-2020-11651"},
      "products": [{"@id": "pkg:pypi/salt@3000.1"}],
      "status": "affected",
      "action_statement": "Upgrade to 3000.2."
    }
  ]
}`

func TestParseOpenVEX(t *testing.T) {
	got, err := parseOpenVEX(strings.NewReader(openVEXDoc), "vex.json")
	if err != nil {
		t.Fatalf("parseOpenVEX: %v", err)
	}
	docTime := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	want := []Statement{
		{
			Vulnerability: "CVE-2024-0727",
			Aliases:       []string{"DEBIAN-CVE-2024-0727-openssl", "https://nvd.nist.gov/vuln/detail/CVE-2024-0727"},
			Products: []string{
				"pkg:oci/app@sha256%3A9b2a5f0e4d1c3b7a8e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
				"pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64",
				"pkg:deb/debian/openssl@3.0.11-1~deb12u2?arch=source",
			},
			Status:          StatusNotAffected,
			Justification:   "vulnerable_code_not_in_execute_path",
			ImpactStatement: "The application never parses PKCS12 files.",
			Timestamp:       docTime,
			Source:          "vex.json",
		},
		{
			Vulnerability: "GO-2024-2687",
			Products:      []string{"pkg:golang/stdlib@1.22.1"},
			Status:        StatusFixed,
			Timestamp:     time.Date(2026, 3, 5, 8, 30, 0, 0, time.UTC),
			Source:        "vex.json",
		},
		{
			Vulnerability: "CVE-2020-11651",
			Products:      []string{"pkg:pypi/salt@3000.1"},
			Status:        StatusAffected,
			Timestamp:     docTime,
			Source:        "vex.json",
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("statements (-want +got):\n%s", diff)
	}

	// The statements at work.
	f := &Filter{VEX: got, Now: clock}
	_, suppressed := f.Apply(findingsAll())
	reasons := map[string]string{}
	for _, d := range suppressed {
		reasons[d.Finding.ID] = d.Reason
	}
	wantReasons := map[string]string{
		"DEBIAN-CVE-2024-0727-openssl": "not_affected per vex.json: vulnerable_code_not_in_execute_path",
		"GO-2024-2687":                 "fixed per vex.json",
	}
	if diff := cmp.Diff(wantReasons, reasons); diff != "" {
		t.Errorf("suppression reasons (-want +got):\n%s", diff)
	}
}

// TestParseOpenVEXLegacy reads the string forms of the drafts before v0.2.0.
func TestParseOpenVEXLegacy(t *testing.T) {
	const doc = `{
  "@context": "https://openvex.dev/ns",
  "timestamp": "2023-01-08T18:02:03.647787998-06:00",
  "statements": [
    {"vulnerability": "CVE-2020-11652", "products": ["pkg:pypi/salt@3000.1"], "status": "not_affected",
     "justification": "component_not_present"}
  ]
}`
	got, err := parseOpenVEX(strings.NewReader(doc), "old.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Vulnerability != "CVE-2020-11652" || !cmp.Equal(got[0].Products, []string{"pkg:pypi/salt@3000.1"}) {
		t.Fatalf("statements = %+v", got)
	}
	if got[0].Timestamp.IsZero() {
		t.Error("statement did not inherit the document timestamp")
	}
}

func TestParseOpenVEXErrors(t *testing.T) {
	stmt := func(s string) string {
		return `{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [` + s + `]}`
	}
	tests := []struct{ name, in, want string }{
		{"not json", "ignores: []", "openvex v.json: "},
		{"syntax error has a line", "{\n\"@context\": \"https://openvex.dev/ns/v0.2.0\",\n\"statements\": [,]}", "openvex v.json: line 3"},
		{"wrong type has a line", "{\n\"@context\": \"https://openvex.dev/ns/v0.2.0\",\n\"statements\": {}}", "openvex v.json: line 3"},
		{"no context", `{"statements": []}`, "not an OpenVEX document"},
		{"CSAF, not OpenVEX", `{"@context": "https://docs.oasis-open.org/csaf"}`, "not an OpenVEX document"},
		{"bad document timestamp", `{"@context": "https://openvex.dev/ns/v0.2.0", "timestamp": "yesterday"}`, `document timestamp "yesterday"`},
		{"no vulnerability", stmt(`{"products": [{"@id": "pkg:pypi/salt"}], "status": "affected"}`), "statement 1: no vulnerability"},
		{"vulnerability without name", stmt(`{"vulnerability": {}, "products": [{"@id": "pkg:pypi/salt"}], "status": "affected"}`), "statement 1: vulnerability has no name"},
		{"no products", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "status": "affected"}`), "statement 1: no products"},
		{"product without id", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "products": [{}], "status": "affected"}`), "statement 1: product 1: product has neither"},
		{"unknown status", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "products": ["pkg:pypi/salt"], "status": "not-affected"}`), `statement 1: unknown status "not-affected"`},
		{"not_affected without justification", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "products": ["pkg:pypi/salt"], "status": "not_affected"}`), "statement 1: not_affected needs a justification"},
		{"unknown justification", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "products": ["pkg:pypi/salt"], "status": "not_affected", "justification": "not_used"}`), `statement 1: unknown justification "not_used"`},
		{"bad statement timestamp", stmt(`{"vulnerability": {"name": "CVE-2020-11651"}, "products": ["pkg:pypi/salt"], "status": "affected"}, {"vulnerability": {"name": "CVE-2020-11651"}, "products": ["pkg:pypi/salt"], "status": "fixed", "timestamp": "2026-13-01"}`), "statement 2: timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOpenVEX(strings.NewReader(tt.in), "v.json")
			if err == nil {
				t.Fatalf("parseOpenVEX succeeded with %+v, want an error containing %q", got, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadOpenVEX(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vex.json")
	if err := os.WriteFile(path, []byte(openVEXDoc), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := LoadOpenVEX(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Source != path {
		t.Errorf("LoadOpenVEX = %d statements from %q, want 3 from %q", len(got), got[0].Source, path)
	}
	if _, err := LoadOpenVEX(path + ".missing"); err == nil || !strings.Contains(err.Error(), path+".missing") {
		t.Errorf("missing file: error = %v, want one naming the file", err)
	}
}
