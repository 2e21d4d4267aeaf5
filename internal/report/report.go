// Package report renders the results of a vulnerability scan: a risk-ordered
// text table, Vigil's JSON (schema vigil.scan/v1, documented in SCHEMA.md)
// and SARIF 2.1.0 for GitHub code scanning.
//
// It writes only to the writer it is given, and it neither filters nor
// sorts: findings arrive filtered and in risk order.
package report

import (
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// Scan is everything a report shows about one scan.
type Scan struct {
	// Inventory is what was scanned and the packages found; nil is read as
	// an empty inventory of an unknown target.
	Inventory *inventory.Report
	// Findings are the findings kept, already filtered and sorted by risk.
	Findings []vulnmatch.Finding
	// Suppressed are the findings an ignore file, a VEX statement or a
	// filter removed, with the reason.
	Suppressed []vex.Decision
	// DB describes the vulnerability database matched against.
	DB DBInfo
	// Tool names the program that produced the report.
	Tool Tool
}

// DBInfo describes the vulnerability database used.
type DBInfo struct {
	// Built is when the database was built; zero when unknown.
	Built time.Time
	// Sources are the imported feeds.
	Sources []vulndb.SourceStatus
	// Stale is true when the database is older than the freshness bound.
	Stale bool
}

// Tool names the producing program.
type Tool struct {
	// Name is the program name; empty means "vigil".
	Name string
	// Version is the program version; it may be empty.
	Version string
	// InformationURI is the program's home page; it may be empty.
	InformationURI string
}

// errNilScan is returned by every writer given a nil scan.
var errNilScan = errors.New("nil scan")

func (t Tool) name() string {
	if t.Name == "" {
		return "vigil"
	}
	return t.Name
}

// inventory returns the scan's inventory, an empty one when it has none.
func (s *Scan) inventory() *inventory.Report {
	if s.Inventory == nil {
		return &inventory.Report{}
	}
	return s.Inventory
}

// targetName names the scan target as "kind:name", never empty.
func targetName(r *inventory.Report) string {
	name := r.Target.Name
	if name == "" {
		name = "unknown"
	}
	if r.Target.Kind != "" {
		return r.Target.Kind + ":" + name
	}
	return name
}

// severity returns f's severity in upper case, UNKNOWN when it is not one
// of the five Vigil uses.
func severity(f *vulnmatch.Finding) string {
	s := strings.ToUpper(strings.TrimSpace(f.Severity))
	switch s {
	case "CRITICAL", "HIGH", "MEDIUM", "LOW":
		return s
	}
	return "UNKNOWN"
}

// summary counts the findings of a scan.
type summary struct {
	Total, KEV, Fixable                  int
	Critical, High, Medium, Low, Unknown int
	// Packages is the number of distinct packages with a finding.
	Packages   int
	Suppressed int
}

func summarize(s *Scan) summary {
	sum := summary{Total: len(s.Findings), Suppressed: len(s.Suppressed)}
	pkgs := map[string]bool{}
	for i := range s.Findings {
		f := &s.Findings[i]
		if f.KEV != nil {
			sum.KEV++
		}
		if hasFix(f) {
			sum.Fixable++
		}
		switch severity(f) {
		case "CRITICAL":
			sum.Critical++
		case "HIGH":
			sum.High++
		case "MEDIUM":
			sum.Medium++
		case "LOW":
			sum.Low++
		default:
			sum.Unknown++
		}
		pkgs[packageKey(&f.Package)] = true
	}
	sum.Packages = len(pkgs)
	return sum
}

// packageKey tells package entries apart: the same purl found in two
// places is two packages.
func packageKey(p *inventory.Package) string {
	id := p.PURL
	if id == "" {
		id = p.Type + "/" + p.Name + "@" + p.Version
	}
	return id + "\x00" + strings.Join(p.Locations, "\x00")
}

func hasFix(f *vulnmatch.Finding) bool {
	return len(fixedVersions(f)) > 0
}

// fixedVersions returns f's non-empty fixed versions.
func fixedVersions(f *vulnmatch.Finding) []string {
	var out []string
	for _, v := range f.FixedVersions {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// displayID is the advisory ID, followed by its CVE in parentheses when the
// ID is not a CVE.
func displayID(f *vulnmatch.Finding) string {
	if f.CVE == "" || strings.EqualFold(f.CVE, f.ID) || strings.HasPrefix(strings.ToUpper(f.ID), "CVE-") {
		return f.ID
	}
	return f.ID + " (" + f.CVE + ")"
}

// title is the advisory's one-line summary, else the name CISA's KEV
// catalog gives the vulnerability, else "".
func title(f *vulnmatch.Finding) string {
	if s := strings.TrimSpace(f.Summary); s != "" {
		return s
	}
	if f.KEV != nil {
		return strings.TrimSpace(f.KEV.Name)
	}
	return ""
}

// installedVersion is the version compared with the advisory's ranges:
// for a Debian binary package, its source package's version.
func installedVersion(f *vulnmatch.Finding) string {
	if f.InstalledVersion != "" {
		return f.InstalledVersion
	}
	return f.Package.Version
}

// cleanText replaces whitespace control characters with a space and every
// other control or format character (terminal escapes, bidirectional
// overrides) with '?', so that scanned content cannot drive a terminal.
func cleanText(s string) string {
	return strings.Map(func(c rune) rune {
		switch {
		case c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f':
			return ' '
		case unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == unicode.ReplacementChar:
			return '?'
		default:
			return c
		}
	}, s)
}

// truncate shortens s to at most n runes, ending it with "…" when cut.
// n <= 0 means no limit.
func truncate(s string, n int) string {
	if n <= 0 {
		return s
	}
	runes := []rune(s)
	if len(runes) <= n {
		return s
	}
	if n == 1 {
		return "…"
	}
	return strings.TrimRightFunc(string(runes[:n-1]), unicode.IsSpace) + "…"
}
