package vulnmatch

import (
	"errors"
	"fmt"
	"math"
	"strings"
)

// CVSS base-score calculators for the vectors advisories carry. v3.x and
// v2 follow the FIRST specifications' base equations; v4.0 is in cvss4.go.
// Only base metrics are scored: temporal, threat and environmental metrics
// are accepted in a vector and ignored for v2 and v3.x (v4.0 folds threat
// and environmental metrics into its single score, as the spec does).

var errVector = errors.New("invalid CVSS vector")

// cvssScore computes the base score of vector and says which CVSS version
// it is ("2.0", "3.0", "3.1", "4.0").
func cvssScore(vector string) (version string, score float64, err error) {
	switch {
	case strings.HasPrefix(vector, "CVSS:4.0/"):
		s, err := cvss4Score(vector)
		return "4.0", s, err
	case strings.HasPrefix(vector, "CVSS:3.1/"):
		s, err := cvss3Score(vector)
		return "3.1", s, err
	case strings.HasPrefix(vector, "CVSS:3.0/"):
		s, err := cvss3Score(vector)
		return "3.0", s, err
	case strings.HasPrefix(vector, "AV:") || strings.HasPrefix(vector, "(AV:"):
		s, err := cvss2Score(vector)
		return "2.0", s, err
	}
	return "", 0, fmt.Errorf("%w: unknown version: %q", errVector, vector)
}

// parseMetrics splits "K:V/K:V" into a map, rejecting duplicate keys, keys
// not in allowed and values not in allowed[key] (nil means any value).
func parseMetrics(s string, allowed map[string][]string) (map[string]string, error) {
	m := make(map[string]string, 16)
	for part := range strings.SplitSeq(s, "/") {
		k, v, ok := strings.Cut(part, ":")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("%w: metric %q", errVector, part)
		}
		vals, known := allowed[k]
		if !known {
			return nil, fmt.Errorf("%w: unknown metric %q", errVector, k)
		}
		if vals != nil && !contains(vals, v) {
			return nil, fmt.Errorf("%w: %s:%s", errVector, k, v)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%w: %s given twice", errVector, k)
		}
		m[k] = v
	}
	return m, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func requireMetrics(m map[string]string, keys ...string) error {
	for _, k := range keys {
		if m[k] == "" {
			return fmt.Errorf("%w: %s missing", errVector, k)
		}
	}
	return nil
}

var cvss3Metrics = map[string][]string{
	"AV": {"N", "A", "L", "P"}, "AC": {"L", "H"}, "PR": {"N", "L", "H"}, "UI": {"N", "R"},
	"S": {"U", "C"}, "C": {"H", "L", "N"}, "I": {"H", "L", "N"}, "A": {"H", "L", "N"},
	"E": {"X", "H", "F", "P", "U"}, "RL": {"X", "U", "W", "T", "O"}, "RC": {"X", "C", "R", "U"},
	"CR": {"X", "H", "M", "L"}, "IR": {"X", "H", "M", "L"}, "AR": {"X", "H", "M", "L"},
	"MAV": {"X", "N", "A", "L", "P"}, "MAC": {"X", "L", "H"}, "MPR": {"X", "N", "L", "H"},
	"MUI": {"X", "N", "R"}, "MS": {"X", "U", "C"},
	"MC": {"X", "H", "L", "N"}, "MI": {"X", "H", "L", "N"}, "MA": {"X", "H", "L", "N"},
}

// cvss3Score is the CVSS v3.0/v3.1 base score (the base equations are the
// same in both; v3.1 only made Roundup exact, which is used for both).
func cvss3Score(vector string) (float64, error) {
	_, rest, _ := strings.Cut(vector, "/")
	m, err := parseMetrics(rest, cvss3Metrics)
	if err != nil {
		return 0, err
	}
	if err := requireMetrics(m, "AV", "AC", "PR", "UI", "S", "C", "I", "A"); err != nil {
		return 0, err
	}
	changed := m["S"] == "C"
	av := map[string]float64{"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}[m["AV"]]
	ac := map[string]float64{"L": 0.77, "H": 0.44}[m["AC"]]
	var pr float64
	switch m["PR"] {
	case "N":
		pr = 0.85
	case "L":
		pr = 0.62
		if changed {
			pr = 0.68
		}
	case "H":
		pr = 0.27
		if changed {
			pr = 0.5
		}
	}
	ui := map[string]float64{"N": 0.85, "R": 0.62}[m["UI"]]
	cia := map[string]float64{"H": 0.56, "L": 0.22, "N": 0}
	iss := 1 - (1-cia[m["C"]])*(1-cia[m["I"]])*(1-cia[m["A"]])
	var impact float64
	if changed {
		impact = 7.52*(iss-0.029) - 3.25*math.Pow(iss-0.02, 15)
	} else {
		impact = 6.42 * iss
	}
	exploitability := 8.22 * av * ac * pr * ui
	if impact <= 0 {
		return 0, nil
	}
	if changed {
		return roundup(math.Min(1.08*(impact+exploitability), 10)), nil
	}
	return roundup(math.Min(impact+exploitability, 10)), nil
}

// roundup is CVSS v3.1's Roundup (specification, Appendix A): the smallest
// number with one decimal that is >= x, computed without the floating-point
// error of a plain ceil(x*10)/10.
func roundup(x float64) float64 {
	i := int64(math.Round(x * 100000))
	if i%10000 == 0 {
		return float64(i) / 100000
	}
	return (math.Floor(float64(i)/10000) + 1) / 10
}

var cvss2Metrics = map[string][]string{
	"AV": {"L", "A", "N"}, "AC": {"H", "M", "L"}, "Au": {"M", "S", "N"},
	"C": {"N", "P", "C"}, "I": {"N", "P", "C"}, "A": {"N", "P", "C"},
	"E": {"U", "POC", "F", "H", "ND"}, "RL": {"OF", "TF", "W", "U", "ND"}, "RC": {"UC", "UR", "C", "ND"},
	"CDP": {"N", "L", "LM", "MH", "H", "ND"}, "TD": {"N", "L", "M", "H", "ND"},
	"CR": {"L", "M", "H", "ND"}, "IR": {"L", "M", "H", "ND"}, "AR": {"L", "M", "H", "ND"},
}

// cvss2Score is the CVSS v2 base score (CVSS v2 guide, section 3.2.1).
func cvss2Score(vector string) (float64, error) {
	vector = strings.TrimSuffix(strings.TrimPrefix(vector, "("), ")")
	m, err := parseMetrics(vector, cvss2Metrics)
	if err != nil {
		return 0, err
	}
	if err := requireMetrics(m, "AV", "AC", "Au", "C", "I", "A"); err != nil {
		return 0, err
	}
	av := map[string]float64{"L": 0.395, "A": 0.646, "N": 1.0}[m["AV"]]
	ac := map[string]float64{"H": 0.35, "M": 0.61, "L": 0.71}[m["AC"]]
	au := map[string]float64{"M": 0.45, "S": 0.56, "N": 0.704}[m["Au"]]
	cia := map[string]float64{"N": 0, "P": 0.275, "C": 0.660}
	impact := 10.41 * (1 - (1-cia[m["C"]])*(1-cia[m["I"]])*(1-cia[m["A"]]))
	exploitability := 20 * av * ac * au
	f := 1.176
	if impact == 0 {
		f = 0
	}
	return math.Round(((0.6*impact)+(0.4*exploitability)-1.5)*f*10) / 10, nil
}

// versionRank orders CVSS versions by preference: v4.0 over v3.1 over
// v3.0 over v2.
func versionRank(version string) int {
	switch version {
	case "4.0":
		return 4
	case "3.1":
		return 3
	case "3.0":
		return 2
	case "2.0", "2":
		return 1
	}
	return 0
}
