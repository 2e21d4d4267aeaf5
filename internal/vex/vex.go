// Package vex decides which findings are suppressed (an ignore file,
// OpenVEX statements) or filtered out (minimum severity, unfixed, KEV only),
// and evaluates --fail-on conditions.
//
// It does no I/O except in LoadIgnoreFile and LoadOpenVEX.
package vex

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// Filter holds what decides whether a finding is kept. The zero value keeps
// everything.
type Filter struct {
	// MinSeverity drops findings below this severity: one of CRITICAL, HIGH,
	// MEDIUM, LOW (any case; see ParseSeverity). UNKNOWN counts as below
	// LOW. Empty or UNKNOWN keeps every severity.
	MinSeverity string
	// IgnoreUnfixed drops findings with no fixed version.
	IgnoreUnfixed bool
	// OnlyKEV drops findings not in CISA's Known Exploited Vulnerabilities.
	OnlyKEV bool
	// Ignores are the ignore-file entries; expired ones do not apply.
	Ignores []Ignore
	// VEX are OpenVEX statements, in the order they were loaded.
	VEX []Statement
	// Now returns the time expiry dates are compared with; nil means
	// time.Now. Tests pass a fixed clock.
	Now func() time.Time
}

// Decision records why a finding was suppressed.
type Decision struct {
	Finding    vulnmatch.Finding `json:"finding"`
	Suppressed bool              `json:"suppressed"`
	// Reason is one line for humans, such as
	// "ignored by .vigilignore:3 (reason) until 2027-01-01",
	// "not_affected per vex.json: vulnerable_code_not_in_execute_path",
	// "below --severity HIGH", "no fix (--ignore-unfixed)" or
	// "not in KEV (--only-kev)".
	Reason string `json:"reason"`
}

// Apply splits fs into the findings kept, in their order, and a decision
// for each one suppressed, in their order. The first rule that suppresses a
// finding gives the reason, tried in this order: ignore entries, VEX
// statements, --severity, --ignore-unfixed, --only-kev.
//
// A nil Filter keeps everything.
func (f *Filter) Apply(fs []vulnmatch.Finding) (kept []vulnmatch.Finding, suppressed []Decision) {
	if f == nil {
		return fs, nil
	}
	a := f.prepare()
	kept = make([]vulnmatch.Finding, 0, len(fs))
	for i := range fs {
		reason := a.suppress(&fs[i])
		if reason == "" {
			kept = append(kept, fs[i])
			continue
		}
		suppressed = append(suppressed, Decision{Finding: fs[i], Suppressed: true, Reason: reason})
	}
	return kept, suppressed
}

// applier is a Filter made ready for one Apply: statements indexed by the
// vulnerability names they mention, purls parsed once.
type applier struct {
	*Filter
	now     time.Time
	minRank int
	byName  map[string][]int // lower-case name or alias → indexes into VEX, ascending
	purls   purlCache
}

func (f *Filter) prepare() *applier {
	a := &applier{Filter: f, now: f.now(), minRank: severityRank(f.MinSeverity),
		byName: map[string][]int{}, purls: purlCache{}}
	for i := range f.VEX {
		st := &f.VEX[i]
		for _, name := range append([]string{st.Vulnerability}, st.Aliases...) {
			k := strings.ToLower(name)
			if name == "" || slices.Contains(a.byName[k], i) {
				continue
			}
			a.byName[k] = append(a.byName[k], i)
		}
	}
	return a
}

// suppress returns why fd is suppressed, "" when it is kept.
func (a *applier) suppress(fd *vulnmatch.Finding) string {
	for i := range a.Ignores {
		ig := &a.Ignores[i]
		if !ig.expired(a.now) && ig.matches(fd, a.purls) {
			return ig.reason()
		}
	}
	if st := a.statementFor(fd); st != nil && suppressing(st.Status) {
		return st.reason()
	}
	if a.minRank > rankUnknown && severityRank(fd.Severity) < a.minRank {
		return "below --severity " + strings.ToUpper(strings.TrimSpace(a.MinSeverity))
	}
	if a.IgnoreUnfixed && !hasFix(fd) {
		return "no fix (--ignore-unfixed)"
	}
	if a.OnlyKEV && fd.KEV == nil {
		return "not in KEV (--only-kev)"
	}
	return ""
}

// statementFor returns the statement that decides fd's status: of those
// naming its vulnerability and a product matching its package, the one with
// the latest timestamp, the later in VEX on a tie. Nil when none applies.
func (a *applier) statementFor(fd *vulnmatch.Finding) *Statement {
	var candidates []int
	for _, name := range append([]string{fd.ID, fd.CVE}, fd.Aliases...) {
		if name != "" {
			candidates = append(candidates, a.byName[strings.ToLower(name)]...)
		}
	}
	slices.Sort(candidates)
	candidates = slices.Compact(candidates)

	var best *Statement
	for _, i := range candidates {
		st := &a.VEX[i]
		if !st.coversPackage(fd, a.purls) {
			continue
		}
		if best == nil || !st.Timestamp.Before(best.Timestamp) {
			best = st
		}
	}
	return best
}

// Expired returns the ignore entries whose expiry date has passed, so that
// the caller can warn about them. They no longer suppress anything.
func (f *Filter) Expired() []Ignore {
	if f == nil {
		return nil
	}
	now := f.now()
	var out []Ignore
	for _, ig := range f.Ignores {
		if ig.expired(now) {
			out = append(out, ig)
		}
	}
	return out
}

func (f *Filter) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Severity ranks, lowest first.
const (
	rankUnknown = iota
	rankLow
	rankMedium
	rankHigh
	rankCritical
)

// severities lists the severity names, highest first.
var severities = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "UNKNOWN"}

// severityRank ranks a severity name, any case; anything unrecognised ranks
// as UNKNOWN.
func severityRank(s string) int {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "CRITICAL":
		return rankCritical
	case "HIGH":
		return rankHigh
	case "MEDIUM":
		return rankMedium
	case "LOW":
		return rankLow
	}
	return rankUnknown
}

// ParseSeverity returns the canonical (upper-case) name of the severity s
// names, in any case and surrounded by spaces, or an error listing the valid
// names. Use it to check --severity before putting it in a Filter.
func ParseSeverity(s string) (string, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, name := range severities {
		if u == name {
			return name, nil
		}
	}
	return "", fmt.Errorf("unknown severity %q: valid severities are %s",
		s, strings.ToLower(strings.Join(severities, ", ")))
}

// hasFix reports whether a fixed version is known.
func hasFix(fd *vulnmatch.Finding) bool {
	for _, v := range fd.FixedVersions {
		if strings.TrimSpace(v) != "" {
			return true
		}
	}
	return false
}

// idMatches reports whether id names the finding's advisory: its ID, its
// CVE or one of its aliases, ignoring case.
func idMatches(id string, fd *vulnmatch.Finding) bool {
	if id == "" {
		return false
	}
	if strings.EqualFold(id, fd.ID) || strings.EqualFold(id, fd.CVE) {
		return true
	}
	for _, a := range fd.Aliases {
		if strings.EqualFold(id, a) {
			return true
		}
	}
	return false
}
