package vex

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// FailOn is a parsed --fail-on value: a list of conditions, any one of which
// makes a finding fail the gate.
type FailOn struct {
	conds []condition
}

type conditionKind int

const (
	condSeverity conditionKind = iota // severity at least rank
	condKEV                           // in KEV
	condFixed                         // a fixed version exists
	condEPSS                          // EPSS score compared with value
	condCVSS                          // CVSS base score compared with value
)

type condition struct {
	kind  conditionKind
	rank  int     // condSeverity
	orEq  bool    // condEPSS, condCVSS: >= rather than >
	value float64 // condEPSS, condCVSS
	text  string  // canonical form
}

// validFailOn lists the accepted forms in error messages.
const validFailOn = "critical, high, medium, low (that severity or higher), kev (in CISA KEV), fixed (a fix exists), " +
	"epss>N or epss>=N (N from 0 to 1, or a percentage such as 50%), cvss>N or cvss>=N (N from 0 to 10)"

// scoreCondition is epss or cvss, an operator and a number.
var scoreCondition = regexp.MustCompile(`^(epss|cvss)\s*(>=|=>|<=|=<|!=|==|[<>=])\s*(.*)$`)

// ParseFailOn parses a comma-separated list of conditions, such as
// "critical,kev,epss>0.5". A finding fails when it meets any of them:
//
//	critical, high, medium, low   that severity or higher
//	kev                           in CISA's Known Exploited Vulnerabilities
//	fixed                         a fixed version exists
//	epss>N, epss>=N               EPSS score above N (0 to 1, or a percentage: 50%)
//	cvss>N, cvss>=N               CVSS base score above N (0 to 10)
//
// Names are case-insensitive and may be surrounded by spaces. Bad input
// gives an error naming the token and listing the valid forms; it does not
// name the flag, which the caller adds.
func ParseFailOn(s string) (*FailOn, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no conditions: valid conditions are %s", validFailOn)
	}
	f := &FailOn{}
	for tok := range strings.SplitSeq(s, ",") {
		c, err := parseCondition(tok)
		if err != nil {
			return nil, fmt.Errorf("%w: valid conditions are %s", err, validFailOn)
		}
		f.conds = append(f.conds, c)
	}
	return f, nil
}

func parseCondition(tok string) (condition, error) {
	t := strings.ToLower(strings.TrimSpace(tok))
	switch t {
	case "":
		return condition{}, errors.New("empty condition")
	case "critical":
		return condition{kind: condSeverity, rank: rankCritical, text: t}, nil
	case "high":
		return condition{kind: condSeverity, rank: rankHigh, text: t}, nil
	case "medium":
		return condition{kind: condSeverity, rank: rankMedium, text: t}, nil
	case "low":
		return condition{kind: condSeverity, rank: rankLow, text: t}, nil
	case "kev":
		return condition{kind: condKEV, text: t}, nil
	case "fixed":
		return condition{kind: condFixed, text: t}, nil
	}
	m := scoreCondition.FindStringSubmatch(t)
	if m == nil {
		return condition{}, fmt.Errorf("unknown condition %q", strings.TrimSpace(tok))
	}
	name, op, num := m[1], m[2], strings.TrimSpace(m[3])
	c := condition{kind: condEPSS}
	if name == "cvss" {
		c.kind = condCVSS
	}
	switch op {
	case ">":
	case ">=", "=>":
		c.orEq, op = true, ">="
	default:
		return condition{}, fmt.Errorf("condition %q: operator %q is not supported (only > and >=: the gate fails on findings above a threshold)", strings.TrimSpace(tok), m[2])
	}
	v, err := parseThreshold(name, num)
	if err != nil {
		return condition{}, fmt.Errorf("condition %q: %w", strings.TrimSpace(tok), err)
	}
	c.value = v
	c.text = name + op + strconv.FormatFloat(v, 'f', -1, 64)
	return c, nil
}

// parseThreshold reads the number of an epss or cvss condition.
func parseThreshold(name, num string) (float64, error) {
	pct := false
	if name == "epss" {
		num, pct = strings.CutSuffix(num, "%")
		num = strings.TrimSpace(num)
	}
	v, err := strconv.ParseFloat(num, 64)
	// ParseFloat accepts "NaN", "Inf" and hex floats; a threshold is a
	// plain decimal.
	if err != nil || strings.ContainsFunc(num, func(r rune) bool { return (r < '0' || r > '9') && r != '.' }) {
		return 0, fmt.Errorf("%q is not a number", num)
	}
	if pct {
		v /= 100
	}
	switch {
	case name == "epss" && v > 1:
		return 0, fmt.Errorf("EPSS threshold %s is above 1: EPSS is a probability from 0 to 1 (or write a percentage: 50%%)", num)
	case name == "cvss" && v > 10:
		return 0, fmt.Errorf("CVSS threshold %s is above 10", num)
	}
	return v, nil
}

// Match returns the findings that trip any condition, in their order. A nil
// FailOn matches nothing.
func (f *FailOn) Match(fs []vulnmatch.Finding) []vulnmatch.Finding {
	if f == nil {
		return nil
	}
	var out []vulnmatch.Finding
	for i := range fs {
		for _, c := range f.conds {
			if c.match(&fs[i]) {
				out = append(out, fs[i])
				break
			}
		}
	}
	return out
}

// String returns the conditions in canonical form, comma-separated.
func (f *FailOn) String() string {
	if f == nil {
		return ""
	}
	texts := make([]string, len(f.conds))
	for i, c := range f.conds {
		texts[i] = c.text
	}
	return strings.Join(texts, ",")
}

func (c *condition) match(fd *vulnmatch.Finding) bool {
	switch c.kind {
	case condSeverity:
		return severityRank(fd.Severity) >= c.rank
	case condKEV:
		return fd.KEV != nil
	case condFixed:
		return hasFix(fd)
	case condEPSS:
		return fd.EPSS != nil && c.above(fd.EPSS.Score)
	case condCVSS:
		return fd.CVSS != nil && c.above(fd.CVSS.BaseScore)
	}
	return false
}

func (c *condition) above(v float64) bool {
	if c.orEq {
		return v >= c.value
	}
	return v > c.value
}
