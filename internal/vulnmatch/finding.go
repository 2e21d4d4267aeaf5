package vulnmatch

import (
	"context"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// Source is what matching needs from the vulnerability database.
// Implementations must be safe for concurrent use.
type Source interface {
	// Advisories returns every advisory with an affected entry for name in
	// ecosystem (the exact OSV ecosystem string, "Debian:12", "Go", "PyPI";
	// name normalised with vulndb.NormalizeName). Withdrawn ones included.
	Advisories(ctx context.Context, ecosystem, name string) ([]*vulndb.Advisory, error)
	// KEV returns the catalog entry for a CVE, nil when it is not in KEV.
	KEV(ctx context.Context, cve string) (*vulndb.KEV, error)
	// EPSS returns the score for a CVE, nil when none is known.
	EPSS(ctx context.Context, cve string) (*vulndb.EPSS, error)
	// CVSS returns NVD's CVSS metrics for a CVE, empty when none is known.
	CVSS(ctx context.Context, cve string) ([]vulndb.CVSS, error)
}

// Finding is one advisory that affects one installed package.
type Finding struct {
	// ID is the advisory ID (GO-2024-1234, PYSEC-…, DEBIAN-CVE-…, GHSA-…).
	ID      string   `json:"id"`
	Aliases []string `json:"aliases,omitempty"`
	// CVE is the advisory's CVE (its ID or first CVE alias), "" when none;
	// KEV, EPSS and NVD data are looked up by it.
	CVE     string            `json:"cve,omitempty"`
	Summary string            `json:"summary,omitempty"`
	Package inventory.Package `json:"package"`
	// Ecosystem and MatchedName are what was looked up: for a Debian binary
	// package, its source package; for Alpine, its origin.
	Ecosystem   string `json:"ecosystem"`
	MatchedName string `json:"matched_name"`
	// InstalledVersion is the version compared (the source version for
	// Debian, the toolchain version for Go's stdlib).
	InstalledVersion string   `json:"installed_version"`
	FixedVersions    []string `json:"fixed_versions,omitempty"`
	// Severity is CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN, from the CVSS
	// score, else the distro's severity.
	Severity string `json:"severity"`
	// CVSS is the best score known: the advisory's own vector, else NVD's;
	// v4.0 preferred over v3.1 over v3.0 over v2.
	CVSS           *vulndb.CVSS `json:"cvss,omitempty"`
	DistroSeverity string       `json:"distro_severity,omitempty"`
	KEV            *vulndb.KEV  `json:"kev,omitempty"`
	EPSS           *vulndb.EPSS `json:"epss,omitempty"`
	References     []string     `json:"references,omitempty"`
}

// Result is the outcome of matching one inventory.
type Result struct {
	Findings []Finding `json:"findings"`
	// Skipped counts packages that could not be matched, by reason
	// ("no ecosystem", "unparsable version", …).
	Skipped map[string]int `json:"skipped,omitempty"`
}
