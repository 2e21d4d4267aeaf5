package vex

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

func TestFailOn(t *testing.T) {
	// Severities: CRITICAL (KEV, EPSS 0.9, CVSS 9.8), MEDIUM (KEV, EPSS 0.4,
	// CVSS 6.5), UNKNOWN, UNKNOWN, UNKNOWN and unfixed; plus a HIGH and a LOW.
	high := saltTraversal()
	high.ID, high.Severity, high.KEV = "PYSEC-TEST-HIGH", "HIGH", nil
	high.CVSS = &vulndb.CVSS{Version: "3.1", BaseScore: 7.5, Severity: "HIGH"}
	high.EPSS = &vulndb.EPSS{Score: 0.5}
	low := continuationFlood()
	low.ID, low.Severity = "GO-TEST-LOW", "LOW"
	fs := append(findingsAll(), high, low)

	tests := []struct {
		in   string
		want []string
	}{
		{"critical", []string{"PYSEC-2020-102"}},
		{"high", []string{"PYSEC-2020-102", "PYSEC-TEST-HIGH"}},
		{"medium", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH"}},
		{"low", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH", "GO-TEST-LOW"}},
		{"  HIGH ", []string{"PYSEC-2020-102", "PYSEC-TEST-HIGH"}},
		{"kev", []string{"PYSEC-2020-102", "PYSEC-2020-103"}},
		{"fixed", []string{"PYSEC-2020-102", "PYSEC-2020-103", "GO-2024-2687", "DEBIAN-CVE-2024-0727-openssl", "PYSEC-TEST-HIGH", "GO-TEST-LOW"}},
		{"epss>0.5", []string{"PYSEC-2020-102"}},
		{"epss>=0.5", []string{"PYSEC-2020-102", "PYSEC-TEST-HIGH"}},
		{"epss >= 50%", []string{"PYSEC-2020-102", "PYSEC-TEST-HIGH"}},
		{"epss=>0.4", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH"}},
		{"epss>0", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH"}},
		{"cvss>=9", []string{"PYSEC-2020-102"}},
		{"cvss>7.5", []string{"PYSEC-2020-102"}},
		{"cvss>=7.5", []string{"PYSEC-2020-102", "PYSEC-TEST-HIGH"}},
		{"CVSS>=0", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH"}},
		{"cvss>=10", nil},
		{"critical,kev", []string{"PYSEC-2020-102", "PYSEC-2020-103"}},
		{"kev, epss>=0.5 ,cvss>=7", []string{"PYSEC-2020-102", "PYSEC-2020-103", "PYSEC-TEST-HIGH"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFailOn(tt.in)
			if err != nil {
				t.Fatalf("ParseFailOn(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, ids(f.Match(fs)), cmpEmpty); diff != "" {
				t.Errorf("Match (-want +got):\n%s", diff)
			}
		})
	}
}

// cmpEmpty treats nil and empty slices as equal.
var cmpEmpty = cmp.Comparer(func(a, b []string) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return cmp.Equal(a, b)
})

func TestFailOnString(t *testing.T) {
	for in, want := range map[string]string{
		"Critical, KEV":      "critical,kev",
		"epss => 50%":        "epss>=0.5",
		"cvss>9.0,fixed":     "cvss>9,fixed",
		"low,medium,epss>.1": "low,medium,epss>0.1",
	} {
		f, err := ParseFailOn(in)
		if err != nil {
			t.Fatalf("ParseFailOn(%q): %v", in, err)
		}
		if got := f.String(); got != want {
			t.Errorf("ParseFailOn(%q).String() = %q, want %q", in, got, want)
		}
	}
	var nilF *FailOn
	if nilF.String() != "" || nilF.Match(findingsAll()) != nil {
		t.Error("a nil FailOn must print empty and match nothing")
	}
}

func TestParseFailOnErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "no conditions"},
		{"  ", "no conditions"},
		{"critical,,kev", "empty condition"},
		{"critical,", "empty condition"},
		{"severe", `unknown condition "severe"`},
		{"unknown", `unknown condition "unknown"`},
		{"crit", `unknown condition "crit"`},
		{"kev=true", `unknown condition "kev=true"`},
		{"epss<0.5", `operator "<" is not supported`},
		{"epss<=0.5", `operator "<=" is not supported`},
		{"epss=0.5", `operator "=" is not supported`},
		{"epss==0.5", `operator "==" is not supported`},
		{"cvss!=9", `operator "!=" is not supported`},
		{"epss>", `"" is not a number`},
		{"epss>high", `"high" is not a number`},
		{"epss>-0.1", `"-0.1" is not a number`},
		{"epss>NaN", `"nan" is not a number`},
		{"epss>inf", `"inf" is not a number`},
		{"epss>0x1p-2", `is not a number`},
		{"epss>1.5", "above 1"},
		{"epss>150%", "above 1"},
		{"cvss>10.1", "above 10"},
		{"cvss>50%", `"50%" is not a number`},
		{"epss", `unknown condition "epss"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			f, err := ParseFailOn(tt.in)
			if err == nil {
				t.Fatalf("ParseFailOn(%q) = %v, want an error", tt.in, f)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
			// Every error lists the valid forms.
			for _, form := range []string{"critical", "kev", "fixed", "epss>N", "cvss>=N"} {
				if !strings.Contains(msg, form) {
					t.Errorf("error %q does not list %s", msg, form)
				}
			}
		})
	}
}

// TestFailOnMatchesOnlyKnownScores: a finding without EPSS or CVSS data
// never trips a score condition, even at 0.
func TestFailOnMatchesOnlyKnownScores(t *testing.T) {
	f, err := ParseFailOn("epss>=0,cvss>=0")
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Match([]vulnmatch.Finding{continuationFlood()}); len(got) != 0 {
		t.Errorf("Match = %v, want nothing", ids(got))
	}
}
