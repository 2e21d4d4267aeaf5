package vulnmatch

import (
	"errors"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

func TestCVSS3And2AgainstNVD(t *testing.T) {
	_, recs := loadNVD(t)
	n := 0
	for _, r := range recs {
		for key, ms := range r.Metrics {
			for _, m := range ms {
				version, score, err := cvssScore(m.CVSSData.VectorString)
				if err != nil {
					t.Errorf("%s %s: %v", r.ID, m.CVSSData.VectorString, err)
					continue
				}
				n++
				if version != m.CVSSData.Version || score != m.CVSSData.BaseScore {
					t.Errorf("%s %s (%s): got %s %.1f, NVD says %s %.1f", r.ID, m.CVSSData.VectorString, key, version, score, m.CVSSData.Version, m.CVSSData.BaseScore)
				}
			}
		}
	}
	if n < 10 {
		t.Errorf("checked %d NVD metrics, want the subset's (at least 10)", n)
	}
}

func TestCVSSScore(t *testing.T) {
	tests := []struct {
		vector  string
		version string
		score   float64
	}{
		// v3.x: FIRST specification examples and common vectors.
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "3.1", 9.8},
		{"CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", "3.0", 6.1},
		{"CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:H/A:H", "3.1", 9.9},
		{"CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", "3.1", 1.6},
		{"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", "3.1", 0},
		{"CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C", "3.1", 7.8}, // temporal ignored
		// v2.
		{"AV:N/AC:L/Au:N/C:C/I:C/A:C", "2.0", 10},
		{"(AV:N/AC:M/Au:N/C:P/I:P/A:N)", "2.0", 5.8},
		// v4.0: expected scores from the FIRST/Red Hat reference
		// calculator (cvss40.js).
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H", "4.0", 10},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 0},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 9.3},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:H/SI:H/SA:H", "4.0", 7.9},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:U", "4.0", 9.1},
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/MVI:L/MSA:S", "4.0", 9.8},
		{"CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N", "4.0", 1},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:P/VC:N/VI:H/VA:H/SC:N/SI:L/SA:L", "4.0", 5.2},
		{"CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", "4.0", 8.5},
		{"CVSS:4.0/AV:N/AC:H/AT:N/PR:H/UI:N/VC:N/VI:N/VA:H/SC:H/SI:H/SA:H/CR:L/IR:L/AR:L", "4.0", 5.8},
		{"CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N/E:P/CR:X/IR:M/AR:X/MAV:N/MAC:H/MAT:X/MPR:L/MUI:X/MVC:L/MVI:N/MVA:H/MSC:L/MSI:S/MSA:S", "4.0", 7.4},
		// At a rounding boundary the reference's float64 arithmetic
		// gives 8.5 (some other implementations print 8.6).
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:P/VC:H/VI:L/VA:N/SC:H/SI:H/SA:H/E:A", "4.0", 8.5},
		// Supplemental metrics do not change the score.
		{"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/S:P/AU:Y/R:A/V:C/RE:H/U:Red", "4.0", 9.3},
	}
	for _, tt := range tests {
		version, score, err := cvssScore(tt.vector)
		if err != nil {
			t.Errorf("%s: %v", tt.vector, err)
			continue
		}
		if version != tt.version || score != tt.score {
			t.Errorf("%s = %s %.1f, want %s %.1f", tt.vector, version, score, tt.version, tt.score)
		}
	}
}

func TestCVSSInvalid(t *testing.T) {
	for _, v := range []string{
		"",
		"CVSS:3.1",
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",          // A missing
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L",  // repeated
		"CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",      // bad value
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/ZZ:1", // unknown metric
		"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",     // empty part
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
		"CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:S/SA:N", // S only via MSI
		"AV:N/AC:L/Au:N/C:C/I:C",
		"CVSS:2.0/AV:N/AC:L/Au:N/C:C/I:C/A:C",
		"9.8",
	} {
		if _, _, err := cvssScore(v); !errors.Is(err, errVector) {
			t.Errorf("cvssScore(%q) err = %v, want errVector", v, err)
		}
	}
}

func TestQualitative(t *testing.T) {
	tests := []struct {
		version string
		score   float64
		want    string
	}{
		{"3.1", 0, "NONE"}, {"3.1", 0.1, "LOW"}, {"3.1", 3.9, "LOW"}, {"3.1", 4, "MEDIUM"}, {"3.1", 6.9, "MEDIUM"},
		{"3.1", 7, "HIGH"}, {"3.1", 8.9, "HIGH"}, {"4.0", 9, "CRITICAL"}, {"3.0", 10, "CRITICAL"},
		{"2.0", 3.9, "LOW"}, {"2.0", 4, "MEDIUM"}, {"2.0", 7, "HIGH"}, {"2.0", 10, "HIGH"},
	}
	for _, tt := range tests {
		if got := vulndb.SeverityOf(tt.version, tt.score); got != tt.want {
			t.Errorf("vulndb.SeverityOf(%s, %.1f) = %s, want %s", tt.version, tt.score, got, tt.want)
		}
	}
	words := map[string]string{
		"critical": SeverityCritical, "Important": SeverityHigh, "high": SeverityHigh, "MODERATE": SeverityMedium,
		"medium": SeverityMedium, "low": SeverityLow, "negligible": SeverityLow, "unimportant": SeverityLow,
		"low**": SeverityLow, "not yet assigned": "", "untriaged": "", "": "",
	}
	for in, want := range words {
		if got := mapDistroSeverity(in); got != want {
			t.Errorf("mapDistroSeverity(%q) = %q, want %q", in, got, want)
		}
	}
}
