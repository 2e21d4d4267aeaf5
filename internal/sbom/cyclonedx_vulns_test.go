package sbom

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// vulnReport is testReport with golang.org/x/net v0.17.0 built into two
// binaries.
func vulnReport() *inventory.Report {
	r := testReport()
	app := &r.Image.Layers[2]
	for _, bin := range []string{"/usr/local/bin/app", "/usr/local/bin/indexer"} {
		r.Packages = append(r.Packages, inventory.Package{
			Name: "golang.org/x/net", Version: "v0.17.0", Type: "golang", Ecosystem: "Go",
			PURL: "pkg:golang/golang.org/x/net@v0.17.0", Locations: []string{bin},
			Layer: app, Extractor: "go/binary",
		})
	}
	return r
}

// vulnFindings are real advisories affecting vulnReport's packages, and one
// (salt) whose package is not in the report. The EPSS figures are
// placeholders, not FIRST's.
func vulnFindings(r *inventory.Report) []vulnmatch.Finding {
	pkg := func(name, loc string) inventory.Package {
		for _, p := range r.Packages {
			if p.Name == name && (loc == "" || p.Locations[0] == loc) {
				return p
			}
		}
		panic("no package " + name)
	}
	goRefs := []string{"https://go.dev/issue/65051", "https://go.dev/cl/576155", "not a URL", "javascript:alert(1)"}
	flood := func(p inventory.Package, fixed string) vulnmatch.Finding {
		return vulnmatch.Finding{
			ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"}, CVE: "CVE-2023-45288",
			Summary: "HTTP/2 CONTINUATION flood in net/http", Package: p, Ecosystem: "Go", MatchedName: p.Name,
			InstalledVersion: strings.TrimPrefix(p.Version, "v"), FixedVersions: []string{fixed},
			Severity: "UNKNOWN", References: goRefs,
		}
	}
	return []vulnmatch.Finding{
		{
			ID: "PYSEC-2020-102", Aliases: []string{"CVE-2020-11651"}, CVE: "CVE-2020-11651",
			Package: inventory.Package{Name: "salt", Version: "3000.1", Type: "pypi", Ecosystem: "PyPI",
				PURL: "pkg:pypi/salt@3000.1", Locations: []string{"/usr/lib/python3/dist-packages/salt-3000.1.dist-info/METADATA"}},
			Ecosystem: "PyPI", MatchedName: "salt", InstalledVersion: "3000.1", FixedVersions: []string{"3000.2"},
			Severity: "CRITICAL",
			CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
				BaseScore: 9.8, Severity: "CRITICAL", Source: "nvd@nist.gov"},
			KEV:  &vulndb.KEV{CVE: "CVE-2020-11651", DateAdded: "2021-11-03", DueDate: "2022-05-03"},
			EPSS: &vulndb.EPSS{CVE: "CVE-2020-11651", Score: 0.9, Percentile: 0.99, Date: "2026-03-13"},
		},
		flood(pkg("stdlib", ""), "1.22.2"),
		flood(pkg("golang.org/x/net", "/usr/local/bin/app"), "0.23.0"),
		flood(pkg("golang.org/x/net", "/usr/local/bin/indexer"), "0.23.0"),
		{
			ID: "DEBIAN-CVE-2024-0727-openssl", Aliases: []string{"CVE-2024-0727"}, CVE: "CVE-2024-0727",
			Summary: "CVE-2024-0727 fixed in openssl 3.0.13-1~deb12u1", Package: pkg("libssl3", ""),
			Ecosystem: "Debian:12", MatchedName: "openssl", InstalledVersion: "3.0.11-1~deb12u2",
			FixedVersions: []string{"3.0.13-1~deb12u1"}, Severity: "UNKNOWN",
		},
	}
}

func encodeCycloneDXWithVulns(t testing.TB, r *inventory.Report, fs []vulnmatch.Finding) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCycloneDXWithVulns(&buf, r, fs, testOptions()); err != nil {
		t.Fatalf("EncodeCycloneDXWithVulns: %v", err)
	}
	return buf.Bytes()
}

func TestCycloneDXWithVulnsSchema(t *testing.T) {
	schema := compileSchema(t, cycloneDXSchemaURL)
	r := vulnReport()
	for name, tc := range map[string]struct {
		r  *inventory.Report
		fs []vulnmatch.Finding
	}{
		"image with findings":                  {r, vulnFindings(r)},
		"no findings":                          {testReport(), nil},
		"directory, package not in the report": {dirReport(), vulnFindings(r)[:1]},
	} {
		t.Run(name, func(t *testing.T) {
			out := encodeCycloneDXWithVulns(t, tc.r, tc.fs)
			if err := schema.Validate(parseJSON(t, out)); err != nil {
				t.Fatalf("output does not validate against CycloneDX 1.6: %v\n%s", err, out)
			}
		})
	}
}

func TestCycloneDXWithVulnsContent(t *testing.T) {
	r := vulnReport()
	out := encodeCycloneDXWithVulns(t, r, vulnFindings(r))
	bom := decodeCycloneDX(t, out)

	// Components: the report's, plus one for salt, on which the target
	// depends like on the others.
	comps := map[string]cdx.Component{}
	for _, c := range *bom.Components {
		comps[c.BOMRef] = c
	}
	if got, want := len(*bom.Components), 1+len(r.Packages)+1; got != want {
		t.Errorf("%d components, want %d (os, packages, salt)", got, want)
	}
	deps := *(*bom.Dependencies)[0].Dependencies
	if deps[len(deps)-1] != (*bom.Components)[len(*bom.Components)-1].BOMRef {
		t.Errorf("the target does not depend on the added component")
	}

	if bom.Vulnerabilities == nil {
		t.Fatal("no vulnerabilities")
	}
	vulns := *bom.Vulnerabilities
	var gotIDs []string
	for _, v := range vulns {
		gotIDs = append(gotIDs, v.ID)
		if _, clash := comps[v.BOMRef]; clash || !strings.HasPrefix(v.BOMRef, "vigil:vulnerability:") {
			t.Errorf("%s: bom-ref %q", v.ID, v.BOMRef)
		}
		for _, a := range *v.Affects {
			if _, ok := comps[a.Ref]; !ok {
				t.Errorf("%s affects %q, which is no component", v.ID, a.Ref)
			}
		}
	}
	if diff := cmp.Diff([]string{"PYSEC-2020-102", "GO-2024-2687", "DEBIAN-CVE-2024-0727-openssl"}, gotIDs); diff != "" {
		t.Fatalf("vulnerabilities, one per advisory in finding order (-want +got):\n%s", diff)
	}

	salt := vulns[0]
	score := 9.8
	wantSalt := cdx.Vulnerability{
		BOMRef:     "vigil:vulnerability:PYSEC-2020-102",
		ID:         "PYSEC-2020-102",
		Source:     &cdx.Source{Name: "PyPI Advisory Database", URL: "https://osv.dev/vulnerability/PYSEC-2020-102"},
		References: &[]cdx.VulnerabilityReference{{ID: "CVE-2020-11651", Source: &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/CVE-2020-11651"}}},
		Ratings: &[]cdx.VulnerabilityRating{{
			Source:   &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/CVE-2020-11651"},
			Score:    &score,
			Severity: cdx.SeverityCritical,
			Method:   cdx.ScoringMethodCVSSv31,
			Vector:   "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
		}},
		Recommendation: "Upgrade salt to 3000.2.",
		Affects: &[]cdx.Affects{{
			Ref:   (*bom.Components)[len(*bom.Components)-1].BOMRef,
			Range: &[]cdx.AffectedVersions{{Version: "3000.1", Status: cdx.VulnerabilityStatusAffected}},
		}},
		Properties: &[]cdx.Property{
			{Name: "vigil:severity", Value: "CRITICAL"},
			{Name: "vigil:epss:score", Value: "0.9"},
			{Name: "vigil:epss:percentile", Value: "0.99"},
			{Name: "vigil:epss:date", Value: "2026-03-13"},
			{Name: "vigil:kev:date-added", Value: "2021-11-03"},
			{Name: "vigil:kev:due-date", Value: "2022-05-03"},
			{Name: "vigil:kev:ransomware", Value: "false"},
		},
	}
	if diff := cmp.Diff(wantSalt, salt); diff != "" {
		t.Errorf("salt vulnerability (-want +got):\n%s", diff)
	}
	if c := comps[(*salt.Affects)[0].Ref]; c.PackageURL != "pkg:pypi/salt@3000.1" {
		t.Errorf("salt's component = %+v", c)
	}

	// One advisory, three packages: the stdlib and x/net in two binaries,
	// each its own component.
	flood := vulns[1]
	var affected []string
	for _, a := range *flood.Affects {
		c := comps[a.Ref]
		affected = append(affected, c.Name+" "+c.Version+" "+(*c.Evidence.Occurrences)[0].Location+" "+(*a.Range)[0].Version)
	}
	wantAffected := []string{
		"stdlib 1.22.1 /usr/local/bin/app 1.22.1",
		"golang.org/x/net v0.17.0 /usr/local/bin/app v0.17.0",
		"golang.org/x/net v0.17.0 /usr/local/bin/indexer v0.17.0",
	}
	if diff := cmp.Diff(wantAffected, affected); diff != "" {
		t.Errorf("GO-2024-2687 affects (-want +got):\n%s", diff)
	}
	if got, want := flood.Recommendation, "Upgrade stdlib to 1.22.2. Upgrade golang.org/x/net to 0.23.0."; got != want {
		t.Errorf("recommendation = %q, want %q", got, want)
	}
	if got, want := flood.Description, "HTTP/2 CONTINUATION flood in net/http"; got != want {
		t.Errorf("description = %q, want %q", got, want)
	}
	wantRefs := []cdx.VulnerabilityReference{
		{ID: "CVE-2023-45288", Source: &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/CVE-2023-45288"}},
		{ID: "GHSA-4v7x-pqxf-cx7m", Source: &cdx.Source{Name: "GitHub Advisory Database", URL: "https://github.com/advisories/GHSA-4v7x-pqxf-cx7m"}},
	}
	if diff := cmp.Diff(wantRefs, *flood.References); diff != "" {
		t.Errorf("references (-want +got):\n%s", diff)
	}
	wantAdvisories := []cdx.Advisory{{URL: "https://go.dev/issue/65051"}, {URL: "https://go.dev/cl/576155"}}
	if diff := cmp.Diff(wantAdvisories, *flood.Advisories); diff != "" {
		t.Errorf("advisories, without the invalid URLs (-want +got):\n%s", diff)
	}
	if flood.Ratings != nil {
		t.Errorf("ratings = %+v for a finding without CVSS", *flood.Ratings)
	}

	deb := vulns[2]
	if got, want := *deb.Source, (cdx.Source{Name: "Debian Security Tracker", URL: "https://security-tracker.debian.org/tracker/CVE-2024-0727"}); got != want {
		t.Errorf("Debian source = %+v, want %+v", got, want)
	}
	if c := comps[(*deb.Affects)[0].Ref]; c.Name != "libssl3" {
		t.Errorf("Debian advisory affects %q, want libssl3", c.Name)
	}
}

// TestCycloneDXWithVulnsDeterministic checks that two builds are equal and
// that, without findings, the BOM is EncodeCycloneDX's.
func TestCycloneDXWithVulnsDeterministic(t *testing.T) {
	id := uuid.MustParse("7f0c3f8e-2b1a-4c5d-9e8f-0a1b2c3d4e5f")
	marshal := func(b *cdx.BOM) string {
		out, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	r := vulnReport()
	a := marshal(buildCycloneDXWithVulns(r, vulnFindings(r), testOptions(), id))
	b := marshal(buildCycloneDXWithVulns(vulnReport(), vulnFindings(vulnReport()), testOptions(), id))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two builds differ (-first +second):\n%s", diff)
	}
	if diff := cmp.Diff(marshal(buildCycloneDX(r, testOptions(), id)), marshal(buildCycloneDXWithVulns(r, nil, testOptions(), id))); diff != "" {
		t.Errorf("without findings the BOM differs from EncodeCycloneDX's (-plain +with):\n%s", diff)
	}
	// The report is not modified.
	if diff := cmp.Diff(vulnReport(), r); diff != "" {
		t.Errorf("the report was modified (-before +after):\n%s", diff)
	}
}

func TestCycloneDXWithVulnsNilReport(t *testing.T) {
	if err := EncodeCycloneDXWithVulns(io.Discard, nil, nil, testOptions()); err == nil || !strings.Contains(err.Error(), "nil report") {
		t.Errorf("error = %v, want a nil report error", err)
	}
}

func TestCVSSRating(t *testing.T) {
	tests := []struct {
		name string
		cvss vulndb.CVSS
		want cdx.VulnerabilityRating
	}{
		{
			name: "v4 from the advisory",
			cvss: vulndb.CVSS{Version: "4.0", Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", BaseScore: 9.3, Severity: "CRITICAL", Source: "osv"},
			want: cdx.VulnerabilityRating{Source: &cdx.Source{Name: "Go Vulnerability Database", URL: "https://pkg.go.dev/vuln/GO-2024-2687"},
				Severity: cdx.SeverityCritical, Method: cdx.ScoringMethodCVSSv4},
		},
		{
			name: "v3.0 from a CNA, severity from the score",
			cvss: vulndb.CVSS{Version: "3.0", BaseScore: 5.3, Source: "security-advisories@github.com"},
			want: cdx.VulnerabilityRating{Source: &cdx.Source{Name: "security-advisories@github.com"},
				Severity: cdx.SeverityMedium, Method: cdx.ScoringMethodCVSSv3},
		},
		{
			name: "v2 from NVD",
			cvss: vulndb.CVSS{Version: "2.0", Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", BaseScore: 7.5, Source: "nvd@nist.gov"},
			want: cdx.VulnerabilityRating{Source: &cdx.Source{Name: "NVD", URL: "https://nvd.nist.gov/vuln/detail/CVE-2023-45288"},
				Severity: cdx.SeverityHigh, Method: cdx.ScoringMethodCVSSv2},
		},
		{
			name: "unknown version",
			cvss: vulndb.CVSS{Version: "5.0", BaseScore: 0, Source: "osv"},
			want: cdx.VulnerabilityRating{Source: &cdx.Source{Name: "Go Vulnerability Database", URL: "https://pkg.go.dev/vuln/GO-2024-2687"},
				Severity: cdx.SeverityNone, Method: cdx.ScoringMethodOther},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cvss
			f := &vulnmatch.Finding{ID: "GO-2024-2687", CVE: "CVE-2023-45288", CVSS: &c}
			got, ok := cvssRating(f)
			if !ok {
				t.Fatal("no rating")
			}
			tt.want.Score, tt.want.Vector = &c.BaseScore, c.Vector
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rating (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDistroRating(t *testing.T) {
	for sev, want := range map[string]cdx.Severity{
		"unimportant": cdx.SeverityInfo, "low": cdx.SeverityLow, "medium": cdx.SeverityMedium,
		"Important": cdx.SeverityHigh, "high": cdx.SeverityHigh, "critical": cdx.SeverityCritical,
		"not yet assigned": cdx.SeverityUnknown,
	} {
		got, ok := distroRating(&vulnmatch.Finding{Ecosystem: "Debian:12", DistroSeverity: sev})
		if !ok || got.Severity != want || got.Method != cdx.ScoringMethodOther || got.Source.Name != "Debian" {
			t.Errorf("distroRating(%q) = %+v, %v; want severity %s from Debian", sev, got, ok, want)
		}
	}
	if _, ok := distroRating(&vulnmatch.Finding{Ecosystem: "Go"}); ok {
		t.Error("a rating without a distribution severity")
	}
}

func TestAdvisorySource(t *testing.T) {
	for id, want := range map[string][2]string{
		"CVE-2023-45288":               {"NVD", "https://nvd.nist.gov/vuln/detail/CVE-2023-45288"},
		"GHSA-4v7x-pqxf-cx7m":          {"GitHub Advisory Database", "https://github.com/advisories/GHSA-4v7x-pqxf-cx7m"},
		"GO-2024-2687":                 {"Go Vulnerability Database", "https://pkg.go.dev/vuln/GO-2024-2687"},
		"PYSEC-2020-102":               {"PyPI Advisory Database", "https://osv.dev/vulnerability/PYSEC-2020-102"},
		"RUSTSEC-2024-0003":            {"RustSec", "https://rustsec.org/advisories/RUSTSEC-2024-0003.html"},
		"DEBIAN-CVE-2024-0727-openssl": {"Debian Security Tracker", "https://security-tracker.debian.org/tracker/CVE-2024-0727"},
		"DEBIAN-CVE-2024-0727":         {"Debian Security Tracker", "https://security-tracker.debian.org/tracker/CVE-2024-0727"},
		"DSA-5678-1":                   {"Debian Security Tracker", "https://security-tracker.debian.org/tracker/DSA-5678-1"},
		"ALPINE-CVE-2019-14697":        {"Alpine Security Tracker", "https://security.alpinelinux.org/vuln/CVE-2019-14697"},
		"UBUNTU-CVE-2024-0727":         {"Ubuntu CVE Tracker", "https://ubuntu.com/security/CVE-2024-0727"},
		"MAL-2024-1":                   {"OSV", "https://osv.dev/vulnerability/MAL-2024-1"},
		"odd id/../x":                  {"OSV", "https://osv.dev/vulnerability/odd%20id%2F..%2Fx"},
	} {
		name, u := AdvisorySource(id)
		if name != want[0] || u != want[1] {
			t.Errorf("AdvisorySource(%q) = %q, %q; want %q, %q", id, name, u, want[0], want[1])
		}
	}
}

func BenchmarkEncodeCycloneDXWithVulns(b *testing.B) {
	r := bigReport(1000)
	var fs []vulnmatch.Finding
	for i := 0; i < len(r.Packages); i += 4 {
		fs = append(fs, vulnmatch.Finding{ID: "GO-2024-2687", Package: r.Packages[i], FixedVersions: []string{"9.9.9"}, Severity: "HIGH"})
	}
	o := testOptions()
	b.ReportAllocs()
	for b.Loop() {
		if err := EncodeCycloneDXWithVulns(io.Discard, r, fs, o); err != nil {
			b.Fatal(err)
		}
	}
}
