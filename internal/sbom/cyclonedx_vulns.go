package sbom

import (
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// cdxVulnRefPrefix starts the bom-ref of every vulnerability; component
// bom-refs start with "pkg:" or "vigil:target"/"vigil:os", so they cannot
// collide.
const cdxVulnRefPrefix = "vigil:vulnerability:"

// EncodeCycloneDXWithVulns writes the BOM EncodeCycloneDX writes for r, plus
// a vulnerabilities[] section: one entry per advisory ID, in the order the
// findings first name it (so a risk-sorted list stays risk-sorted), whose
// affects[] point at the bom-refs of the affected components. A finding
// whose package is not in r (which matching never produces) gets a
// component of its own.
//
// CVSS scores become ratings; EPSS and KEV data, which CycloneDX has no
// field for, become vigil:epss:* and vigil:kev:* properties.
func EncodeCycloneDXWithVulns(w io.Writer, r *inventory.Report, findings []vulnmatch.Finding, o Options) error {
	if r == nil {
		return fmt.Errorf("encode cyclonedx: %w", errNilReport)
	}
	bom := buildCycloneDXWithVulns(r, findings, o, uuid.New())
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		return fmt.Errorf("encode cyclonedx: %w", err)
	}
	return nil
}

func buildCycloneDXWithVulns(r *inventory.Report, findings []vulnmatch.Finding, o Options, serial uuid.UUID) *cdx.BOM {
	bom := buildCycloneDX(r, o, serial)
	if len(findings) == 0 {
		return bom
	}
	refs := newComponentRefs(r, bom)

	var vulns []cdx.Vulnerability
	var recommendations [][]string // per vulnerability, one line per fix
	index := map[string]int{}      // advisory ID → position in vulns
	for i := range findings {
		f := &findings[i]
		ref := refs.ref(&f.Package)
		n, seen := index[f.ID]
		if !seen {
			n = len(vulns)
			index[f.ID] = n
			vulns = append(vulns, cdxVulnerability(f))
			recommendations = append(recommendations, nil)
		}
		addAffected(&vulns[n], f, ref)
		if fixed := fixedVersions(f); fixed != "" {
			line := "Upgrade " + f.Package.Name + " to " + fixed + "."
			if !slices.Contains(recommendations[n], line) {
				recommendations[n] = append(recommendations[n], line)
			}
		}
	}
	for i := range vulns {
		vulns[i].Recommendation = strings.Join(recommendations[i], " ")
	}
	bom.Vulnerabilities = &vulns
	return bom
}

// componentRefs finds the bom-ref of a finding's package.
type componentRefs struct {
	bom    *cdx.BOM
	byKey  map[string]string // packageKey → bom-ref of its first component
	inUse  map[string]bool   // every bom-ref in the BOM
	target *cdx.Dependency   // the target's dependency entry
}

// newComponentRefs indexes the package components buildCycloneDX made.
// They follow the optional operating-system component, in the order of
// r.Packages.
func newComponentRefs(r *inventory.Report, bom *cdx.BOM) *componentRefs {
	c := &componentRefs{bom: bom, byKey: map[string]string{}, inUse: map[string]bool{cdxTargetRef: true}}
	if bom.Dependencies != nil && len(*bom.Dependencies) > 0 {
		c.target = &(*bom.Dependencies)[0]
	}
	i := 0
	for _, comp := range *bom.Components {
		c.inUse[comp.BOMRef] = true
		if comp.BOMRef == cdxOSRef || i >= len(r.Packages) {
			continue
		}
		k := packageKey(&r.Packages[i])
		if _, ok := c.byKey[k]; !ok {
			c.byKey[k] = comp.BOMRef
		}
		i++
	}
	return c
}

// ref returns the bom-ref of p's component, adding a component (and a
// dependency of the target on it) when the BOM has none.
func (c *componentRefs) ref(p *inventory.Package) string {
	k := packageKey(p)
	if ref, ok := c.byKey[k]; ok {
		return ref
	}
	comp := cdxPackage(p, c.inUse)
	*c.bom.Components = append(*c.bom.Components, comp)
	if c.target != nil {
		if c.target.Dependencies == nil {
			c.target.Dependencies = &[]string{}
		}
		*c.target.Dependencies = append(*c.target.Dependencies, comp.BOMRef)
	}
	c.byKey[k] = comp.BOMRef
	return comp.BOMRef
}

// packageKey identifies a package entry the way its bom-ref does.
func packageKey(p *inventory.Package) string {
	return p.PackageURL() + "\x00" + packageHash(p)
}

func cdxVulnerability(f *vulnmatch.Finding) cdx.Vulnerability {
	name, srcURL := AdvisorySource(f.ID)
	v := cdx.Vulnerability{
		BOMRef:      cdxVulnRefPrefix + f.ID,
		ID:          f.ID,
		Source:      &cdx.Source{Name: name, URL: srcURL},
		Description: f.Summary,
	}

	var refs []cdx.VulnerabilityReference
	seen := map[string]bool{f.ID: true}
	for _, a := range append([]string{f.CVE}, f.Aliases...) {
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		n, u := AdvisorySource(a)
		refs = append(refs, cdx.VulnerabilityReference{ID: a, Source: &cdx.Source{Name: n, URL: u}})
	}
	if len(refs) > 0 {
		v.References = &refs
	}

	var ratings []cdx.VulnerabilityRating
	if r, ok := cvssRating(f); ok {
		ratings = append(ratings, r)
	}
	if r, ok := distroRating(f); ok {
		ratings = append(ratings, r)
	}
	if len(ratings) > 0 {
		v.Ratings = &ratings
	}

	var advisories []cdx.Advisory
	for _, ref := range f.References {
		if isWebURL(ref) {
			advisories = append(advisories, cdx.Advisory{URL: ref})
		}
	}
	if len(advisories) > 0 {
		v.Advisories = &advisories
	}

	var props []cdx.Property
	add := func(name, value string) {
		if value != "" {
			props = append(props, cdx.Property{Name: name, Value: value})
		}
	}
	add("vigil:severity", f.Severity)
	if e := f.EPSS; e != nil {
		add("vigil:epss:score", strconv.FormatFloat(e.Score, 'f', -1, 64))
		add("vigil:epss:percentile", strconv.FormatFloat(e.Percentile, 'f', -1, 64))
		add("vigil:epss:date", e.Date)
	}
	if k := f.KEV; k != nil {
		add("vigil:kev:date-added", k.DateAdded)
		add("vigil:kev:due-date", k.DueDate)
		add("vigil:kev:ransomware", strconv.FormatBool(k.KnownRansomware))
	}
	if len(props) > 0 {
		v.Properties = &props
	}
	return v
}

// addAffected records that f's package, bom-ref ref, is affected by v.
func addAffected(v *cdx.Vulnerability, f *vulnmatch.Finding, ref string) {
	if v.Affects == nil {
		v.Affects = &[]cdx.Affects{}
	}
	for _, a := range *v.Affects {
		if a.Ref == ref {
			return
		}
	}
	version := f.Package.Version
	if version == "" {
		version = f.InstalledVersion
	}
	var versions *[]cdx.AffectedVersions
	if version != "" {
		versions = &[]cdx.AffectedVersions{{Version: version, Status: cdx.VulnerabilityStatusAffected}}
	}
	*v.Affects = append(*v.Affects, cdx.Affects{Ref: ref, Range: versions})
}

// fixedVersions reads "1.21.9 or 1.22.2", "" when no fix is known.
func fixedVersions(f *vulnmatch.Finding) string {
	var vs []string
	for _, v := range f.FixedVersions {
		if v = strings.TrimSpace(v); v != "" {
			vs = append(vs, v)
		}
	}
	return strings.Join(vs, " or ")
}

// cvssRating rates f by its CVSS score.
func cvssRating(f *vulnmatch.Finding) (cdx.VulnerabilityRating, bool) {
	c := f.CVSS
	if c == nil {
		return cdx.VulnerabilityRating{}, false
	}
	score := c.BaseScore
	r := cdx.VulnerabilityRating{
		Score:    &score,
		Severity: cdxSeverity(c.Severity),
		Method:   cvssMethod(c.Version),
		Vector:   c.Vector,
	}
	if r.Severity == cdx.SeverityUnknown {
		r.Severity = cvssSeverity(score)
	}
	switch src := strings.TrimSpace(c.Source); {
	case src == "nvd@nist.gov" || strings.EqualFold(src, "nvd"):
		s := &cdx.Source{Name: "NVD"}
		if f.CVE != "" {
			_, s.URL = AdvisorySource(f.CVE)
		}
		r.Source = s
	case src == "" || strings.EqualFold(src, "osv"):
		name, u := AdvisorySource(f.ID)
		r.Source = &cdx.Source{Name: name, URL: u}
	default:
		r.Source = &cdx.Source{Name: src}
	}
	return r, true
}

func cvssMethod(version string) cdx.ScoringMethod {
	switch strings.TrimPrefix(strings.TrimSpace(version), "v") {
	case "4.0", "4":
		return cdx.ScoringMethodCVSSv4
	case "3.1":
		return cdx.ScoringMethodCVSSv31
	case "3.0", "3":
		return cdx.ScoringMethodCVSSv3
	case "2.0", "2":
		return cdx.ScoringMethodCVSSv2
	}
	return cdx.ScoringMethodOther
}

// cdxSeverity maps a severity word (CVSS's or a distribution's) to
// CycloneDX's scale.
func cdxSeverity(s string) cdx.Severity {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical":
		return cdx.SeverityCritical
	case "high", "important":
		return cdx.SeverityHigh
	case "medium", "moderate":
		return cdx.SeverityMedium
	case "low":
		return cdx.SeverityLow
	case "negligible", "unimportant":
		return cdx.SeverityInfo
	case "none":
		return cdx.SeverityNone
	}
	return cdx.SeverityUnknown
}

// cvssSeverity is the CVSS v3/v4 qualitative rating of a base score.
func cvssSeverity(score float64) cdx.Severity {
	switch {
	case score >= 9:
		return cdx.SeverityCritical
	case score >= 7:
		return cdx.SeverityHigh
	case score >= 4:
		return cdx.SeverityMedium
	case score > 0:
		return cdx.SeverityLow
	}
	return cdx.SeverityNone
}

// distroRating rates f by its distribution's own severity.
func distroRating(f *vulnmatch.Finding) (cdx.VulnerabilityRating, bool) {
	if strings.TrimSpace(f.DistroSeverity) == "" {
		return cdx.VulnerabilityRating{}, false
	}
	name, _, _ := strings.Cut(f.Ecosystem, ":")
	if name == "" {
		name = "distribution"
	}
	return cdx.VulnerabilityRating{
		Source:        &cdx.Source{Name: name},
		Severity:      cdxSeverity(f.DistroSeverity),
		Method:        cdx.ScoringMethodOther,
		Justification: name + " rates it " + f.DistroSeverity,
	}, true
}

// isWebURL reports whether s is an absolute http(s) URL that survives as
// an IRI reference.
func isWebURL(s string) bool {
	if strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// cvePattern finds the CVE inside distribution advisory IDs.
var cvePattern = regexp.MustCompile(`CVE-\d{4}-\d{4,}`)

// AdvisorySource names the database that publishes the advisory or alias
// id and the advisory's page there: NVD for CVE-…, GitHub for GHSA-…, Go's
// database for GO-…, the Debian, Ubuntu and Alpine security trackers for
// their IDs, RustSec for RUSTSEC-…, and OSV.dev for anything else.
//
// It belongs with the vulnerability database; it is here until vulndb
// grows a home for it.
func AdvisorySource(id string) (name, pageURL string) {
	esc := url.PathEscape(id)
	upper := strings.ToUpper(id)
	cve := cvePattern.FindString(upper)
	switch {
	case strings.HasPrefix(upper, "CVE-"):
		return "NVD", "https://nvd.nist.gov/vuln/detail/" + esc
	case strings.HasPrefix(upper, "GHSA-"):
		return "GitHub Advisory Database", "https://github.com/advisories/" + esc
	case strings.HasPrefix(upper, "GO-"):
		return "Go Vulnerability Database", "https://pkg.go.dev/vuln/" + esc
	case strings.HasPrefix(upper, "RUSTSEC-"):
		return "RustSec", "https://rustsec.org/advisories/" + esc + ".html"
	case strings.HasPrefix(upper, "PYSEC-"):
		return "PyPI Advisory Database", "https://osv.dev/vulnerability/" + esc
	case strings.HasPrefix(upper, "DEBIAN-") && cve != "":
		return "Debian Security Tracker", "https://security-tracker.debian.org/tracker/" + cve
	case strings.HasPrefix(upper, "DSA-"), strings.HasPrefix(upper, "DLA-"), strings.HasPrefix(upper, "DTSA-"):
		return "Debian Security Tracker", "https://security-tracker.debian.org/tracker/" + esc
	case strings.HasPrefix(upper, "UBUNTU-") && cve != "":
		return "Ubuntu CVE Tracker", "https://ubuntu.com/security/" + cve
	case strings.HasPrefix(upper, "USN-"):
		return "Ubuntu Security Notices", "https://ubuntu.com/security/notices/" + esc
	case strings.HasPrefix(upper, "ALPINE-") && cve != "":
		return "Alpine Security Tracker", "https://security.alpinelinux.org/vuln/" + cve
	}
	return "OSV", "https://osv.dev/vulnerability/" + esc
}
