package vulnmatch

import (
	"fmt"
	"math"
	"strings"
)

// CVSS v4.0 scoring, written from the FIRST specification (section 8) and
// its reference calculator (github.com/FIRSTdotorg/cvss-v4-calculator,
// cvss_score.js; the tables below are the specification's data). A vector
// is mapped onto its MacroVector (EQ1–EQ6), whose score comes from the
// specification's lookup table, then lowered by the mean proportional
// severity distance to the MacroVector's highest-severity vectors.
// The arithmetic follows the reference calculator step by step so that
// float64 results round the same way.

var cvss4Metrics = map[string][]string{
	"AV": {"N", "A", "L", "P"}, "AC": {"L", "H"}, "AT": {"N", "P"}, "PR": {"N", "L", "H"},
	"UI": {"N", "P", "A"}, "VC": {"H", "L", "N"}, "VI": {"H", "L", "N"}, "VA": {"H", "L", "N"},
	"SC": {"H", "L", "N"}, "SI": {"H", "L", "N"}, "SA": {"H", "L", "N"},
	"E":  {"X", "A", "P", "U"},
	"CR": {"X", "H", "M", "L"}, "IR": {"X", "H", "M", "L"}, "AR": {"X", "H", "M", "L"},
	"MAV": {"X", "N", "A", "L", "P"}, "MAC": {"X", "L", "H"}, "MAT": {"X", "N", "P"},
	"MPR": {"X", "N", "L", "H"}, "MUI": {"X", "N", "P", "A"},
	"MVC": {"X", "H", "L", "N"}, "MVI": {"X", "H", "L", "N"}, "MVA": {"X", "H", "L", "N"},
	"MSC": {"X", "H", "L", "N"}, "MSI": {"X", "S", "H", "L", "N"}, "MSA": {"X", "S", "H", "L", "N"},
	"S": {"X", "N", "P"}, "AU": {"X", "N", "Y"}, "R": {"X", "A", "U", "I"}, "V": {"X", "D", "C"},
	"RE": {"X", "L", "M", "H"}, "U": {"X", "Clear", "Green", "Amber", "Red"},
}

// cvss4Vector holds a parsed vector's metrics.
type cvss4Vector map[string]string

// m is the effective value of a metric, as the reference calculator's m():
// E defaults to A (attacked), CR/IR/AR to H, and a modified base metric
// (MAV, …) overrides its base metric unless it is X.
func (c cvss4Vector) m(metric string) string {
	sel := c[metric]
	if sel == "" {
		sel = "X"
	}
	switch metric {
	case "E":
		if sel == "X" {
			return "A"
		}
	case "CR", "IR", "AR":
		if sel == "X" {
			return "H"
		}
	}
	if mod, ok := c["M"+metric]; ok && mod != "X" {
		return mod
	}
	return sel
}

func parseCVSS4(vector string) (cvss4Vector, error) {
	rest, ok := strings.CutPrefix(vector, "CVSS:4.0/")
	if !ok {
		return nil, fmt.Errorf("%w: not CVSS:4.0", errVector)
	}
	m, err := parseMetrics(rest, cvss4Metrics)
	if err != nil {
		return nil, err
	}
	if err := requireMetrics(m, "AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"); err != nil {
		return nil, err
	}
	return cvss4Vector(m), nil
}

// macroVector returns EQ1…EQ6.
func (c cvss4Vector) macroVector() [6]int {
	var eq [6]int
	av, pr, ui := c.m("AV"), c.m("PR"), c.m("UI")
	switch {
	case av == "N" && pr == "N" && ui == "N":
		eq[0] = 0
	case (av == "N" || pr == "N" || ui == "N") && av != "P":
		eq[0] = 1
	default:
		eq[0] = 2
	}
	if !(c.m("AC") == "L" && c.m("AT") == "N") {
		eq[1] = 1
	}
	vc, vi, va := c.m("VC"), c.m("VI"), c.m("VA")
	switch {
	case vc == "H" && vi == "H":
		eq[2] = 0
	case vc == "H" || vi == "H" || va == "H":
		eq[2] = 1
	default:
		eq[2] = 2
	}
	switch {
	case c.m("MSI") == "S" || c.m("MSA") == "S":
		eq[3] = 0
	case c.m("SC") == "H" || c.m("SI") == "H" || c.m("SA") == "H":
		eq[3] = 1
	default:
		eq[3] = 2
	}
	switch c.m("E") {
	case "A":
		eq[4] = 0
	case "P":
		eq[4] = 1
	default:
		eq[4] = 2
	}
	if (c.m("CR") == "H" && vc == "H") || (c.m("IR") == "H" && vi == "H") || (c.m("AR") == "H" && va == "H") {
		eq[5] = 0
	} else {
		eq[5] = 1
	}
	return eq
}

// cvss4Lookup is the specification's MacroVector score table, keyed by
// EQ1…EQ6 as a base-10 number (EQ1 the most significant digit).
var cvss4Lookup = map[int]float64{
	0: 10, 1: 9.9, 10: 9.8, 11: 9.5, 20: 9.5, 21: 9.2, 100: 10, 101: 9.6, 110: 9.3, 111: 8.7,
	120: 9.1, 121: 8.1, 200: 9.3, 201: 9, 210: 8.9, 211: 8, 220: 8.1, 221: 6.8, 1000: 9.8,
	1001: 9.5, 1010: 9.5, 1011: 9.2, 1020: 9, 1021: 8.4, 1100: 9.3, 1101: 9.2, 1110: 8.9,
	1111: 8.1, 1120: 8.1, 1121: 6.5, 1200: 8.8, 1201: 8, 1210: 7.8, 1211: 7, 1220: 6.9,
	1221: 4.8, 2001: 9.2, 2011: 8.2, 2021: 7.2, 2101: 7.9, 2111: 6.9, 2121: 5, 2201: 6.9,
	2211: 5.5, 2221: 2.7, 10000: 9.9, 10001: 9.7, 10010: 9.5, 10011: 9.2, 10020: 9.2,
	10021: 8.5, 10100: 9.5, 10101: 9.1, 10110: 9, 10111: 8.3, 10120: 8.4, 10121: 7.1,
	10200: 9.2, 10201: 8.1, 10210: 8.2, 10211: 7.1, 10220: 7.2, 10221: 5.3, 11000: 9.5,
	11001: 9.3, 11010: 9.2, 11011: 8.5, 11020: 8.5, 11021: 7.3, 11100: 9.2, 11101: 8.2,
	11110: 8, 11111: 7.2, 11120: 7, 11121: 5.9, 11200: 8.4, 11201: 7, 11210: 7.1, 11211: 5.2,
	11220: 5, 11221: 3, 12001: 8.6, 12011: 7.5, 12021: 5.2, 12101: 7.1, 12111: 5.2,
	12121: 2.9, 12201: 6.3, 12211: 2.9, 12221: 1.7, 100000: 9.8, 100001: 9.5, 100010: 9.4,
	100011: 8.7, 100020: 9.1, 100021: 8.1, 100100: 9.4, 100101: 8.9, 100110: 8.6,
	100111: 7.4, 100120: 7.7, 100121: 6.4, 100200: 8.7, 100201: 7.5, 100210: 7.4,
	100211: 6.3, 100220: 6.3, 100221: 4.9, 101000: 9.4, 101001: 8.9, 101010: 8.8,
	101011: 7.7, 101020: 7.6, 101021: 6.7, 101100: 8.6, 101101: 7.6, 101110: 7.4,
	101111: 5.8, 101120: 5.9, 101121: 5, 101200: 7.2, 101201: 5.7, 101210: 5.7, 101211: 5.2,
	101220: 5.2, 101221: 2.5, 102001: 8.3, 102011: 7, 102021: 5.4, 102101: 6.5, 102111: 5.8,
	102121: 2.6, 102201: 5.3, 102211: 2.1, 102221: 1.3, 110000: 9.5, 110001: 9, 110010: 8.8,
	110011: 7.6, 110020: 7.6, 110021: 7, 110100: 9, 110101: 7.7, 110110: 7.5, 110111: 6.2,
	110120: 6.1, 110121: 5.3, 110200: 7.7, 110201: 6.6, 110210: 6.8, 110211: 5.9,
	110220: 5.2, 110221: 3, 111000: 8.9, 111001: 7.8, 111010: 7.6, 111011: 6.7, 111020: 6.2,
	111021: 5.8, 111100: 7.4, 111101: 5.9, 111110: 5.7, 111111: 5.7, 111120: 4.7,
	111121: 2.3, 111200: 6.1, 111201: 5.2, 111210: 5.7, 111211: 2.9, 111220: 2.4,
	111221: 1.6, 112001: 7.1, 112011: 5.9, 112021: 3, 112101: 5.8, 112111: 2.6, 112121: 1.5,
	112201: 2.3, 112211: 1.3, 112221: 0.6, 200000: 9.3, 200001: 8.7, 200010: 8.6,
	200011: 7.2, 200020: 7.5, 200021: 5.8, 200100: 8.6, 200101: 7.4, 200110: 7.4,
	200111: 6.1, 200120: 5.6, 200121: 3.4, 200200: 7, 200201: 5.4, 200210: 5.2, 200211: 4,
	200220: 4, 200221: 2.2, 201000: 8.5, 201001: 7.5, 201010: 7.4, 201011: 5.5, 201020: 6.2,
	201021: 5.1, 201100: 7.2, 201101: 5.7, 201110: 5.5, 201111: 4.1, 201120: 4.6,
	201121: 1.9, 201200: 5.3, 201201: 3.6, 201210: 3.4, 201211: 1.9, 201220: 1.9,
	201221: 0.8, 202001: 6.4, 202011: 5.1, 202021: 2, 202101: 4.7, 202111: 2.1, 202121: 1.1,
	202201: 2.4, 202211: 0.9, 202221: 0.4, 210000: 8.8, 210001: 7.5, 210010: 7.3,
	210011: 5.3, 210020: 6, 210021: 5, 210100: 7.3, 210101: 5.5, 210110: 5.9, 210111: 4,
	210120: 4.1, 210121: 2, 210200: 5.4, 210201: 4.3, 210210: 4.5, 210211: 2.2, 210220: 2,
	210221: 1.1, 211000: 7.5, 211001: 5.5, 211010: 5.8, 211011: 4.5, 211020: 4, 211021: 2.1,
	211100: 6.1, 211101: 5.1, 211110: 4.8, 211111: 1.8, 211120: 2, 211121: 0.9, 211200: 4.6,
	211201: 1.8, 211210: 1.7, 211211: 0.7, 211220: 0.8, 211221: 0.2, 212001: 5.3,
	212011: 2.4, 212021: 1.4, 212101: 2.4, 212111: 1.2, 212121: 0.5, 212201: 1, 212211: 0.3,
	212221: 0.1,
}

// lookup returns the MacroVector's score and whether it exists.
func cvss4LookupEQ(eq [6]int) (float64, bool) {
	for _, e := range eq {
		if e < 0 || e > 9 {
			return 0, false
		}
	}
	key := eq[0]*100000 + eq[1]*10000 + eq[2]*1000 + eq[3]*100 + eq[4]*10 + eq[5]
	s, ok := cvss4Lookup[key]
	return s, ok
}

// cvss4MaxComposed are the highest-severity vectors of each EQ level
// (EQ3 and EQ6 together, keyed [EQ3][EQ6]).
var (
	cvss4MaxEQ1 = [][]string{
		{"AV:N/PR:N/UI:N"},
		{"AV:A/PR:N/UI:N", "AV:N/PR:L/UI:N", "AV:N/PR:N/UI:P"},
		{"AV:P/PR:N/UI:N", "AV:A/PR:L/UI:P"},
	}
	cvss4MaxEQ2   = [][]string{{"AC:L/AT:N"}, {"AC:H/AT:N", "AC:L/AT:P"}}
	cvss4MaxEQ3x6 = [3][2][]string{
		{{"VC:H/VI:H/VA:H/CR:H/IR:H/AR:H"}, {"VC:H/VI:H/VA:L/CR:M/IR:M/AR:H", "VC:H/VI:H/VA:H/CR:M/IR:M/AR:M"}},
		{
			{"VC:L/VI:H/VA:H/CR:H/IR:H/AR:H", "VC:H/VI:L/VA:H/CR:H/IR:H/AR:H"},
			{"VC:L/VI:H/VA:L/CR:H/IR:M/AR:H", "VC:L/VI:H/VA:H/CR:H/IR:M/AR:M", "VC:H/VI:L/VA:H/CR:M/IR:H/AR:M", "VC:H/VI:L/VA:L/CR:M/IR:H/AR:H", "VC:L/VI:L/VA:H/CR:H/IR:H/AR:M"},
		},
		{nil, {"VC:L/VI:L/VA:L/CR:H/IR:H/AR:H"}},
	}
	cvss4MaxEQ4 = [][]string{{"SC:H/SI:S/SA:S"}, {"SC:H/SI:H/SA:H"}, {"SC:L/SI:L/SA:L"}}
	// cvss4MaxSeverity is the depth (+1) of each EQ level, in steps of 0.1.
	cvss4MaxSevEQ1   = []float64{1, 4, 5}
	cvss4MaxSevEQ2   = []float64{1, 2}
	cvss4MaxSevEQ3x6 = [3][2]float64{{7, 6}, {8, 8}, {0, 10}}
	cvss4MaxSevEQ4   = []float64{6, 5, 4}
)

// cvss4Levels are the per-metric severity levels of the reference
// calculator (lower is more severe).
var cvss4Levels = map[string]map[string]float64{
	"AV": {"N": 0.0, "A": 0.1, "L": 0.2, "P": 0.3},
	"PR": {"N": 0.0, "L": 0.1, "H": 0.2},
	"UI": {"N": 0.0, "P": 0.1, "A": 0.2},
	"AC": {"L": 0.0, "H": 0.1},
	"AT": {"N": 0.0, "P": 0.1},
	"VC": {"H": 0.0, "L": 0.1, "N": 0.2},
	"VI": {"H": 0.0, "L": 0.1, "N": 0.2},
	"VA": {"H": 0.0, "L": 0.1, "N": 0.2},
	"SC": {"H": 0.1, "L": 0.2, "N": 0.3},
	"SI": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
	"SA": {"S": 0.0, "H": 0.1, "L": 0.2, "N": 0.3},
	"CR": {"H": 0.0, "M": 0.1, "L": 0.2},
	"IR": {"H": 0.0, "M": 0.1, "L": 0.2},
	"AR": {"H": 0.0, "M": 0.1, "L": 0.2},
}

// cvss4Order is the order the reference calculator sums distances in.
var cvss4Order = []string{"AV", "PR", "UI", "AC", "AT", "VC", "VI", "VA", "SC", "SI", "SA", "CR", "IR", "AR"}

func cvss4Score(vector string) (float64, error) {
	c, err := parseCVSS4(vector)
	if err != nil {
		return 0, err
	}
	return c.score(), nil
}

func (c cvss4Vector) score() float64 {
	// No impact on the vulnerable or subsequent system scores 0.
	none := true
	for _, k := range []string{"VC", "VI", "VA", "SC", "SI", "SA"} {
		if c.m(k) != "N" {
			none = false
		}
	}
	if none {
		return 0
	}
	eq := c.macroVector()
	value, ok := cvss4LookupEQ(eq)
	if !ok {
		return 0
	}
	nan := math.NaN()
	lookup := func(e [6]int) float64 {
		if s, ok := cvss4LookupEQ(e); ok {
			return s
		}
		return nan
	}
	with := func(i, d int) [6]int {
		e := eq
		e[i] += d
		return e
	}
	eq1, eq2, eq3, eq4, eq6 := eq[0], eq[1], eq[2], eq[3], eq[5]
	lowerEQ1 := lookup(with(0, 1))
	lowerEQ2 := lookup(with(1, 1))
	var lowerEQ3x6 float64
	switch {
	case eq3 == 1 && eq6 == 1, eq3 == 0 && eq6 == 1:
		lowerEQ3x6 = lookup(with(2, 1))
	case eq3 == 1 && eq6 == 0:
		lowerEQ3x6 = lookup(with(5, 1))
	case eq3 == 0 && eq6 == 0:
		left, right := lookup(with(5, 1)), lookup(with(2, 1))
		if left > right {
			lowerEQ3x6 = left
		} else {
			lowerEQ3x6 = right
		}
	default: // 21 → 32 does not exist
		e := eq
		e[2]++
		e[5]++
		lowerEQ3x6 = lookup(e)
	}
	lowerEQ4 := lookup(with(3, 1))
	lowerEQ5 := lookup(with(4, 1))

	// Severity distance to the first highest-severity vector of the
	// MacroVector that is at least as severe as c in every metric.
	var dist map[string]float64
	for _, m1 := range cvss4MaxEQ1[eq1] {
		for _, m2 := range cvss4MaxEQ2[eq2] {
			for _, m36 := range cvss4MaxEQ3x6[eq3][eq6] {
				for _, m4 := range cvss4MaxEQ4[eq4] {
					max := m1 + "/" + m2 + "/" + m36 + "/" + m4
					dist = c.distances(max)
					if !anyNegative(dist) {
						goto found
					}
				}
			}
		}
	}
found:
	dEQ1 := dist["AV"] + dist["PR"] + dist["UI"]
	dEQ2 := dist["AC"] + dist["AT"]
	dEQ3x6 := dist["VC"] + dist["VI"] + dist["VA"] + dist["CR"] + dist["IR"] + dist["AR"]
	dEQ4 := dist["SC"] + dist["SI"] + dist["SA"]

	const step = 0.1
	n := 0
	var sum float64
	add := func(lower, distance, maxSeverity float64) {
		available := value - lower
		if math.IsNaN(available) {
			return
		}
		n++
		// The conversions keep the compiler from fusing multiply and add
		// (allowed by the Go spec on some architectures), which would
		// round differently from the reference calculator.
		sum = float64(sum + float64(available*float64(distance/float64(maxSeverity*step))))
	}
	add(lowerEQ1, dEQ1, cvss4MaxSevEQ1[eq1])
	add(lowerEQ2, dEQ2, cvss4MaxSevEQ2[eq2])
	add(lowerEQ3x6, dEQ3x6, cvss4MaxSevEQ3x6[eq3][eq6])
	add(lowerEQ4, dEQ4, cvss4MaxSevEQ4[eq4])
	if !math.IsNaN(value - lowerEQ5) {
		n++ // EQ5's proportional distance is always 0
	}
	if n > 0 {
		value -= sum / float64(n)
	}
	value = math.Max(0, math.Min(10, value))
	return jsRound(float64(value*10)) / 10
}

// jsRound is JavaScript's Math.round: the nearest integer, halves rounded
// up, as the reference calculator rounds.
func jsRound(x float64) float64 {
	f := math.Floor(x)
	if x-f >= 0.5 {
		return f + 1
	}
	return f
}

// distances is, per metric, c's severity level minus that of the
// highest-severity vector max.
func (c cvss4Vector) distances(max string) map[string]float64 {
	mx := make(map[string]string, 14)
	for part := range strings.SplitSeq(max, "/") {
		k, v, _ := strings.Cut(part, ":")
		mx[k] = v
	}
	d := make(map[string]float64, len(cvss4Order))
	for _, k := range cvss4Order {
		lv := cvss4Levels[k]
		d[k] = lv[c.m(k)] - lv[mx[k]]
	}
	return d
}

func anyNegative(d map[string]float64) bool {
	for _, v := range d {
		if v < 0 {
			return true
		}
	}
	return false
}
