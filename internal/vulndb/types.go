package vulndb

import (
	"encoding/json"
	"time"
)

// Advisory is one OSV record (https://ossf.github.io/osv-schema/), reduced to
// the fields Vigil uses. Distro advisories (Debian, Alpine) are stored in the
// same shape, with the distro release in the ecosystem ("Debian:12",
// "Alpine:v3.11") and the source package (Debian) or origin (Alpine) as name.
type Advisory struct {
	ID         string      `json:"id"`
	Modified   time.Time   `json:"modified"`
	Published  time.Time   `json:"published,omitzero"`
	Withdrawn  time.Time   `json:"withdrawn,omitzero"`
	Aliases    []string    `json:"aliases,omitempty"`
	Related    []string    `json:"related,omitempty"`
	Summary    string      `json:"summary,omitempty"`
	Details    string      `json:"details,omitempty"`
	Severity   []Severity  `json:"severity,omitempty"`
	Affected   []Affected  `json:"affected,omitempty"`
	References []Reference `json:"references,omitempty"`
	// DatabaseSpecific is kept raw (distro severity lives here or in
	// Affected[].EcosystemSpecific, depending on the source).
	DatabaseSpecific json.RawMessage `json:"database_specific,omitempty"`
}

// Severity is an OSV severity entry: Type is CVSS_V2, CVSS_V3, CVSS_V4 or
// Ubuntu; Score is the vector (or the distro's word for Ubuntu).
type Severity struct {
	Type  string `json:"type"`
	Score string `json:"score"`
}

// Affected is one affected package with its ranges and versions.
type Affected struct {
	Package           Package         `json:"package"`
	Severity          []Severity      `json:"severity,omitempty"`
	Ranges            []Range         `json:"ranges,omitempty"`
	Versions          []string        `json:"versions,omitempty"`
	EcosystemSpecific json.RawMessage `json:"ecosystem_specific,omitempty"`
	DatabaseSpecific  json.RawMessage `json:"database_specific,omitempty"`
}

// Package names a package in an OSV ecosystem.
type Package struct {
	Ecosystem string `json:"ecosystem"`
	Name      string `json:"name"`
	PURL      string `json:"purl,omitempty"`
}

// Range is an OSV range: Type is ECOSYSTEM, SEMVER or GIT.
type Range struct {
	Type   string  `json:"type"`
	Repo   string  `json:"repo,omitempty"`
	Events []Event `json:"events"`
}

// Event is one OSV range event; exactly one field is set.
type Event struct {
	Introduced   string `json:"introduced,omitempty"`
	Fixed        string `json:"fixed,omitempty"`
	LastAffected string `json:"last_affected,omitempty"`
	Limit        string `json:"limit,omitempty"`
}

// Reference is a link from an advisory.
type Reference struct {
	Type string `json:"type"`
	URL  string `json:"url"`
}

// KEV is a CISA Known Exploited Vulnerabilities catalog entry.
type KEV struct {
	CVE              string `json:"cve"`
	VendorProject    string `json:"vendor_project,omitempty"`
	Product          string `json:"product,omitempty"`
	Name             string `json:"name,omitempty"`
	DateAdded        string `json:"date_added"` // YYYY-MM-DD
	DueDate          string `json:"due_date,omitempty"`
	RequiredAction   string `json:"required_action,omitempty"`
	KnownRansomware  bool   `json:"known_ransomware"`
	ShortDescription string `json:"short_description,omitempty"`
}

// EPSS is a FIRST Exploit Prediction Scoring System score.
type EPSS struct {
	CVE        string  `json:"cve"`
	Score      float64 `json:"score"`      // probability of exploitation in 30 days, 0..1
	Percentile float64 `json:"percentile"` // 0..1
	Date       string  `json:"date,omitempty"`
}

// CVSS is a CVSS base score with its vector, as NVD or an advisory gives it.
type CVSS struct {
	Version   string  `json:"version"` // "2.0", "3.0", "3.1", "4.0"
	Vector    string  `json:"vector"`
	BaseScore float64 `json:"base_score"`
	Severity  string  `json:"severity"` // CRITICAL, HIGH, MEDIUM, LOW, NONE
	Source    string  `json:"source"`   // "nvd@nist.gov", "osv", …
}

// SourceStatus describes one imported source in `vigil db status`.
type SourceStatus struct {
	Name         string    `json:"name"` // "osv:Go", "osv:PyPI", "osv:Debian:12", "alpine-secdb", "kev", "epss", "nvd"
	Records      int       `json:"records"`
	UpstreamDate time.Time `json:"upstream_date,omitzero"` // newest modified / catalog date in the data
	FetchedAt    time.Time `json:"fetched_at"`
	// CheckedAt is when upstream last confirmed the data: a download, an
	// import, or a 304 Not Modified answer. It is at or after FetchedAt.
	CheckedAt    time.Time `json:"checked_at,omitzero"`
	Origin       string    `json:"origin"` // URL or file path it came from
	ETag         string    `json:"etag,omitempty"`
	LastModified string    `json:"last_modified,omitempty"`
}
