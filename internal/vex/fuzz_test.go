package vex

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzzers check that the parsers never panic, and that what they accept
// is well formed.

func FuzzParseIgnores(f *testing.F) {
	for _, s := range []string{
		"ignores:\n  - id: CVE-2024-0727\n    package: libssl3\n    reason: r\n    expires: 2027-01-01\n",
		"ignores:\n  - {id: GO-2024-2687, package: \"pkg:golang/stdlib\"}\n",
		"---\nignores: []\n",
		"ignores:\n  - id: &a CVE-2020-11651\n  - id: *a\n",
		"# comment\nCVE-2020-11651\nCVE-2024-0727 exp:2027-01-01 # why\n",
		"CVE-2020-11651 exp:2027-13-45\n",
		"ignores: [",
		"{ignores: [{id: x}]}",
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		igs, err := parseIgnores(strings.NewReader(string(data)), "fuzz")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, ig := range igs {
			if ig.ID == "" || strings.ContainsAny(ig.ID, " \t\n\r") {
				t.Errorf("accepted a bad ID %q", ig.ID)
			}
			if !strings.HasPrefix(ig.Source, "fuzz:") {
				t.Errorf("source %q does not name the file", ig.Source)
			}
		}
	})
}

func FuzzParseOpenVEX(f *testing.F) {
	f.Add([]byte(openVEXDoc))
	for _, s := range []string{
		`{"@context": "https://openvex.dev/ns", "statements": [{"vulnerability": "CVE-2020-11652", "products": ["pkg:pypi/salt"], "status": "fixed"}]}`,
		`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "x"}, "products": [{"subcomponents": [{"@id": "pkg:npm/a"}]}], "status": "affected"}]}`,
		`{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [null]}`,
		`{"@context": 1}`,
		`[]`,
		`{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sts, err := parseOpenVEX(strings.NewReader(string(data)), "fuzz.json")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.json") {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, st := range sts {
			if len(st.Products) == 0 {
				t.Errorf("accepted a statement without products: %+v", st)
			}
			if st.Status == StatusNotAffected && st.Justification == "" && st.ImpactStatement == "" {
				t.Errorf("accepted not_affected without justification: %+v", st)
			}
			// Matching must not panic whatever the products are.
			for _, fd := range findingsAll() {
				st.appliesTo(&fd)
			}
		}
	})
}

func FuzzParseFailOn(f *testing.F) {
	for _, s := range []string{"critical", "high,kev", "epss>0.5", "epss>=50%", "cvss>=9", "fixed", "epss<0.1", "cvss>1e3", ",", "epss>%"} {
		f.Add(s)
	}
	fs := findingsAll()
	f.Fuzz(func(t *testing.T, s string) {
		fo, err := ParseFailOn(s)
		if err != nil {
			if !strings.Contains(err.Error(), "valid conditions are") {
				t.Errorf("error %q does not list the valid forms", err)
			}
			return
		}
		if n := len(fo.Match(fs)); n > len(fs) {
			t.Errorf("Match returned %d of %d findings", n, len(fs))
		}
		// The canonical form parses to the same conditions.
		again, err := ParseFailOn(fo.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", fo.String(), s, err)
		}
		if again.String() != fo.String() {
			t.Errorf("canonical form is not stable: %q then %q", fo.String(), again.String())
		}
		if !utf8.ValidString(fo.String()) {
			t.Errorf("canonical form %q is not UTF-8", fo.String())
		}
	})
}
