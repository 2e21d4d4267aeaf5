package vulnmatch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// advisory builds a one-package advisory with one range.
func advisory(id, ecosystem, name, rangeType string, evs ...vulndb.Event) *vulndb.Advisory {
	return &vulndb.Advisory{
		ID: id,
		Affected: []vulndb.Affected{{
			Package: vulndb.Package{Ecosystem: ecosystem, Name: name},
			Ranges:  []vulndb.Range{{Type: rangeType, Events: evs}},
		}},
	}
}

func match(t *testing.T, src Source, pkgs ...inventory.Package) *Result {
	t.Helper()
	res, err := Match(context.Background(), src, &inventory.Report{Packages: pkgs}, Options{})
	if err != nil {
		t.Fatalf("Match: %v", err)
	}
	return res
}

// findingsOf returns "ID fixed,fixed" per finding.
func findingsOf(res *Result) []string {
	var out []string
	for _, f := range res.Findings {
		out = append(out, f.ID+" "+f.Package.Name+"@"+f.Package.Version+" fixed="+strings.Join(f.FixedVersions, ","))
	}
	return out
}

// TestEcosystems checks each ecosystem's version ordering and lookup key
// end to end: the advisory says "introduced X, fixed Y" and the installed
// versions sit on either side of Y by that ecosystem's documented rules.
func TestEcosystems(t *testing.T) {
	type pv struct {
		version string
		want    bool
	}
	tests := []struct {
		name string
		adv  *vulndb.Advisory
		pkg  inventory.Package // Version set per case
		vers []pv
	}{
		{
			name: "Debian: source package, tilde sorts before, epoch",
			adv:  advisory("DEBIAN-CVE-1", "Debian:12", "openssl", "ECOSYSTEM", introduced("0"), fixed("3.0.11-1~deb12u2")),
			pkg:  inventory.Package{Name: "libssl3", Type: "deb", Ecosystem: "Debian:12", SourceName: "openssl"},
			vers: []pv{{"3.0.11-1~deb12u1", true}, {"3.0.11-1~deb12u2", false}, {"3.0.11-1", false}, {"1:1.0-1", false}},
		},
		{
			name: "Ubuntu",
			adv:  advisory("UBUNTU-CVE-1", "Ubuntu:22.04:LTS", "curl", "ECOSYSTEM", introduced("0"), fixed("7.81.0-1ubuntu1.15")),
			pkg:  inventory.Package{Name: "libcurl4", Type: "deb", Ecosystem: "Ubuntu:22.04:LTS", SourceName: "curl"},
			vers: []pv{{"7.81.0-1ubuntu1.14", true}, {"7.81.0-1ubuntu1.15", false}, {"7.81.0-1ubuntu1.16", false}},
		},
		{
			name: "Alpine: origin, -r release, _rc before release",
			adv:  advisory("ALPINE-CVE-1", "Alpine:v3.19", "openssl", "ECOSYSTEM", introduced("0"), fixed("3.1.4-r1")),
			pkg:  inventory.Package{Name: "libcrypto3", Type: "apk", Ecosystem: "Alpine:v3.19", SourceName: "openssl"},
			vers: []pv{{"3.1.4-r0", true}, {"3.1.4_rc1-r5", true}, {"3.1.4-r1", false}, {"3.1.5-r0", false}},
		},
		{
			name: "Red Hat: source RPM name, epoch from the purl",
			adv:  advisory("RHSA-1", "Red Hat:enterprise_linux:9::baseos", "openssl", "ECOSYSTEM", introduced("0"), fixed("1:3.0.7-27.el9")),
			pkg: inventory.Package{
				Name: "openssl-libs", Type: "rpm", Ecosystem: "Red Hat:enterprise_linux:9::baseos",
				SourceName: "openssl-3.0.7-24.el9.src.rpm", PURL: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1",
			},
			vers: []pv{{"3.0.7-24.el9", true}, {"3.0.7-27.el9", false}, {"3.0.7-27.el9_3", false}},
		},
		{
			name: "AlmaLinux",
			adv:  advisory("ALSA-1", "AlmaLinux:9", "curl", "ECOSYSTEM", introduced("0"), fixed("7.76.1-26.el9_3.2")),
			pkg:  inventory.Package{Name: "libcurl", Type: "rpm", Ecosystem: "AlmaLinux:9", SourceName: "curl-7.76.1-26.el9_3.1.src.rpm"},
			vers: []pv{{"7.76.1-26.el9_3.1", true}, {"7.76.1-26.el9_3.2", false}},
		},
		{
			name: "Rocky Linux",
			adv:  advisory("RLSA-1", "Rocky Linux:9", "glibc", "ECOSYSTEM", introduced("0"), fixed("2.34-83.el9.7")),
			pkg:  inventory.Package{Name: "glibc-common", Type: "rpm", Ecosystem: "Rocky Linux:9", SourceName: "glibc-2.34-83.el9.src.rpm"},
			vers: []pv{{"2.34-83.el9", true}, {"2.34-83.el9.12", false}},
		},
		{
			name: "openSUSE",
			adv:  advisory("openSUSE-SU-1", "openSUSE:Leap 15.5", "libxml2", "ECOSYSTEM", introduced("0"), fixed("2.10.3-150500.5.11.1")),
			pkg:  inventory.Package{Name: "libxml2-2", Type: "rpm", Ecosystem: "openSUSE:Leap 15.5", SourceName: "libxml2-2.10.3-150500.5.5.1.src.rpm"},
			vers: []pv{{"2.10.3-150500.5.5.1", true}, {"2.10.3-150500.5.11.1", false}},
		},
		{
			name: "Go: pseudo-versions and +incompatible",
			adv:  advisory("GO-1", "Go", "github.com/example/mod", "SEMVER", introduced("0"), fixed("0.0.0-20220315000000-abcdef123456")),
			pkg:  inventory.Package{Name: "github.com/example/mod", Type: "golang", Ecosystem: "Go"},
			vers: []pv{{"0.0.0-20220314234659-1baeb1ce4c0b", true}, {"0.0.0-20220315000000-abcdef123456", false}, {"0.1.0", false}},
		},
		{
			name: "Go: +incompatible",
			adv:  advisory("GO-2", "Go", "github.com/example/old", "SEMVER", introduced("2.0.0+incompatible"), fixed("2.7.0-rc.0+incompatible")),
			pkg:  inventory.Package{Name: "github.com/example/old", Type: "golang", Ecosystem: "Go"},
			vers: []pv{{"2.6.1+incompatible", true}, {"2.7.0-beta.1+incompatible", true}, {"2.7.0+incompatible", false}, {"1.9.0", false}},
		},
		{
			name: "npm: prerelease before release",
			adv:  advisory("GHSA-npm", "npm", "@scope/pkg", "SEMVER", introduced("1.0.0"), fixed("1.4.0")),
			pkg:  inventory.Package{Name: "@scope/pkg", Type: "npm", Ecosystem: "npm"},
			vers: []pv{{"1.4.0-beta.2", true}, {"1.4.0", false}, {"0.9.0", false}},
		},
		{
			name: "PyPI: PEP 440 and PEP 503 names",
			adv:  advisory("PYSEC-1", "PyPI", "foo-bar", "ECOSYSTEM", introduced("0"), fixed("1.0")),
			pkg:  inventory.Package{Name: "Foo_Bar", Type: "pypi", Ecosystem: "PyPI"},
			vers: []pv{{"1.0rc1", true}, {"0.9.post1", true}, {"1.0", false}, {"1.0.0", false}, {"1.0.post1", false}},
		},
		{
			name: "Maven: qualifiers",
			adv:  advisory("GHSA-mvn", "Maven", "org.example:lib", "ECOSYSTEM", introduced("0"), fixed("2.10")),
			pkg:  inventory.Package{Name: "org.example:lib", Type: "maven", Ecosystem: "Maven"},
			vers: []pv{{"2.9", true}, {"2.10-alpha-1", true}, {"2.10", false}, {"2.10.1", false}},
		},
		{
			name: "crates.io",
			adv:  advisory("RUSTSEC-1", "crates.io", "smallvec", "SEMVER", introduced("0.6.0"), fixed("0.10.0")),
			pkg:  inventory.Package{Name: "smallvec", Type: "cargo", Ecosystem: "crates.io"},
			vers: []pv{{"0.9.9", true}, {"0.10.0", false}, {"0.5.0", false}},
		},
		{
			name: "RubyGems: .pre before release",
			adv:  advisory("GHSA-gem", "RubyGems", "rack", "ECOSYSTEM", introduced("0"), fixed("2.2.0")),
			pkg:  inventory.Package{Name: "rack", Type: "gem", Ecosystem: "RubyGems"},
			vers: []pv{{"2.2.0.pre", true}, {"2.1.4", true}, {"2.2.0", false}},
		},
		{
			name: "Packagist",
			adv:  advisory("GHSA-php", "Packagist", "symfony/http-kernel", "ECOSYSTEM", introduced("5.0.0"), fixed("5.4.20")),
			pkg:  inventory.Package{Name: "symfony/http-kernel", Type: "composer", Ecosystem: "Packagist"},
			vers: []pv{{"5.4.20-beta1", true}, {"5.4.19", true}, {"5.4.20", false}, {"4.4.0", false}},
		},
		{
			name: "NuGet",
			adv:  advisory("GHSA-nuget", "NuGet", "Newtonsoft.Json", "ECOSYSTEM", introduced("0"), fixed("13.0.1")),
			pkg:  inventory.Package{Name: "Newtonsoft.Json", Type: "nuget", Ecosystem: "NuGet"},
			vers: []pv{{"13.0.1-beta1", true}, {"12.0.3", true}, {"13.0.1", false}, {"13.0.1.1", false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := newFakeSource(tt.adv)
			for _, v := range tt.vers {
				p := tt.pkg
				p.Version = v.version
				res := match(t, src, p)
				if got := len(res.Findings) == 1; got != v.want {
					t.Errorf("%s %s: affected = %v, want %v (findings %v, skipped %v)", p.Name, v.version, got, v.want, findingsOf(res), res.Skipped)
				}
			}
		})
	}
}

// TestDistroOnlyOwnRelease: a Debian package is looked up only in its own
// release by source name; advisories of another release or of language
// ecosystems with the same name are never consulted.
func TestDistroOnlyOwnRelease(t *testing.T) {
	src := newFakeSource(
		advisory("DEBIAN-11", "Debian:11", "openssl", "ECOSYSTEM", introduced("0"), fixed("9:0")),
		advisory("PYSEC-openssl", "PyPI", "openssl", "ECOSYSTEM", introduced("0")),
		advisory("GO-openssl", "Go", "openssl", "SEMVER", introduced("0")),
		advisory("DEBIAN-12", "Debian:12", "openssl", "ECOSYSTEM", introduced("0"), fixed("3.0.11-1~deb12u2")),
	)
	res := match(t, src,
		inventory.Package{Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: "deb", Ecosystem: "Debian:12", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2"},
		inventory.Package{Name: "openssl", Version: "3.0.11-1~deb12u2", Type: "deb", Ecosystem: "Debian:12", SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2"},
	)
	if len(res.Findings) != 0 {
		t.Errorf("findings = %v, want none", findingsOf(res))
	}
	if diff := cmp.Diff([][2]string{{"Debian:12", "openssl"}}, src.calls()); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
}

func TestRedHatLooksUpSourceAndBinary(t *testing.T) {
	src := newFakeSource(
		advisory("RHSA-src", "Red Hat:enterprise_linux:9::baseos", "openssl", "ECOSYSTEM", introduced("0"), fixed("1:3.0.7-27.el9")),
		advisory("RHSA-bin", "Red Hat:enterprise_linux:9::baseos", "openssl-libs", "ECOSYSTEM", introduced("0"), fixed("1:3.0.7-25.el9")),
	)
	res := match(t, src, inventory.Package{
		Name: "openssl-libs", Version: "3.0.7-24.el9", Type: "rpm", Ecosystem: "Red Hat:enterprise_linux:9::baseos",
		SourceName: "openssl-3.0.7-24.el9.src.rpm", PURL: "pkg:rpm/redhat/openssl-libs@3.0.7-24.el9?arch=x86_64&epoch=1",
	})
	want := []string{"RHSA-bin openssl-libs@3.0.7-24.el9 fixed=1:3.0.7-25.el9", "RHSA-src openssl-libs@3.0.7-24.el9 fixed=1:3.0.7-27.el9"}
	if diff := cmp.Diff(want, findingsOf(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if got := res.Findings[1].InstalledVersion; got != "1:3.0.7-24.el9" {
		t.Errorf("InstalledVersion = %q, want the epoch from the purl", got)
	}
}

func TestSkipped(t *testing.T) {
	src := newFakeSource(advisory("GO-1", "Go", "example.com/m", "SEMVER", introduced("0")))
	res := match(t, src,
		inventory.Package{Name: "thing", Version: "1.0", Type: "generic"},
		inventory.Package{Name: "example.com/m", Type: "golang", Ecosystem: "Go"},
		inventory.Package{Name: "example.com/m", Version: "(devel)", Type: "golang", Ecosystem: "Go"},
		inventory.Package{Name: "example.com/m", Version: "latest", Type: "golang", Ecosystem: "Go"},
		inventory.Package{Name: "left-pad", Version: "file:../left-pad", Type: "npm", Ecosystem: "npm"},
		inventory.Package{Name: "bash", Version: "x:5.2-1", Type: "deb", Ecosystem: "Debian:12"},
		inventory.Package{Name: "huge", Version: strings.Repeat("1.", 200), Type: "pypi", Ecosystem: "PyPI"},
		inventory.Package{Name: "actions/checkout", Version: "4.1.0", Type: "githubactions", Ecosystem: "GitHub Actions"},
		inventory.Package{Name: "zlib", Version: "1.3", Type: "deb"},
		inventory.Package{Name: "example.com/m", Version: "1.2.0", Type: "golang", Ecosystem: "Go"},
	)
	want := map[string]int{
		SkipNoEcosystem:          2,
		SkipNoVersion:            1,
		SkipUnparsableVersion:    5,
		SkipUnsupportedEcosystem: 1,
	}
	if diff := cmp.Diff(want, res.Skipped); diff != "" {
		t.Errorf("Skipped (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"GO-1 example.com/m@1.2.0 fixed="}, findingsOf(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestWithdrawnIgnored(t *testing.T) {
	adv := advisory("GO-W", "Go", "example.com/m", "SEMVER", introduced("0"), fixed("2.0.0"))
	adv.Withdrawn = adv.Modified.AddDate(2024, 0, 0)
	res := match(t, newFakeSource(adv), inventory.Package{Name: "example.com/m", Version: "1.0.0", Type: "golang", Ecosystem: "Go"})
	if len(res.Findings) != 0 {
		t.Errorf("withdrawn advisory matched: %v", findingsOf(res))
	}
}

func TestDuplicateIDsAndAliasRecordsKept(t *testing.T) {
	goAdv := advisory("GO-2024-1", "Go", "example.com/m", "SEMVER", introduced("0"), fixed("1.5.0"))
	goAdv.Aliases = []string{"CVE-2024-1", "GHSA-aaaa"}
	ghsa := advisory("GHSA-aaaa", "Go", "example.com/m", "SEMVER", introduced("0"), fixed("1.5.0"))
	ghsa.Aliases = []string{"CVE-2024-1", "GO-2024-1"}
	// Two affected entries for the same module (Go's DB does this for
	// different packages of a module): one finding.
	goAdv.Affected = append(goAdv.Affected, goAdv.Affected[0])
	goAdv.Affected[1].Ranges = []vulndb.Range{{Type: "SEMVER", Events: []vulndb.Event{introduced("1.0.0"), fixed("1.4.2")}}}
	src := newFakeSource(goAdv, ghsa)
	src.advs[[2]string{"Go", "example.com/m"}] = append(src.advs[[2]string{"Go", "example.com/m"}], goAdv) // a repeated row
	res := match(t, src, inventory.Package{Name: "example.com/m", Version: "1.2.0", Type: "golang", Ecosystem: "Go"})
	want := []string{"GHSA-aaaa example.com/m@1.2.0 fixed=1.5.0", "GO-2024-1 example.com/m@1.2.0 fixed=1.4.2,1.5.0"}
	if diff := cmp.Diff(want, findingsOf(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestGITRangeSkippedWithDebugLog(t *testing.T) {
	adv := advisory("PYSEC-G", "PyPI", "pkg", "GIT", introduced("0"), fixed("0123456789abcdef"))
	adv.Affected[0].Ranges[0].Repo = "https://github.com/example/pkg"
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	res, err := Match(context.Background(), newFakeSource(adv),
		&inventory.Report{Packages: []inventory.Package{{Name: "pkg", Version: "1.0", Type: "pypi", Ecosystem: "PyPI"}}},
		Options{Logger: log, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Findings) != 0 {
		t.Errorf("GIT range matched: %v", findingsOf(res))
	}
	if !strings.Contains(buf.String(), "skipping GIT range") || !strings.Contains(buf.String(), "PYSEC-G") {
		t.Errorf("no debug line for the GIT range; log:\n%s", buf.String())
	}
}

func TestSourceErrorIsReturned(t *testing.T) {
	boom := errors.New("database is locked")
	src := newFakeSource()
	src.err = boom
	_, err := Match(context.Background(), src,
		&inventory.Report{Packages: []inventory.Package{{Name: "pkg", Version: "1.0", Type: "pypi", Ecosystem: "PyPI"}}}, Options{})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v wrapped", err, boom)
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Match(ctx, newFakeSource(),
		&inventory.Report{Packages: []inventory.Package{{Name: "pkg", Version: "1.0", Type: "pypi", Ecosystem: "PyPI"}}}, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestOSOwnedPackages(t *testing.T) {
	adv := func(name string) *vulndb.Advisory {
		return advisory("PYSEC-"+name, "PyPI", name, "ECOSYSTEM", introduced("0"))
	}
	src := newFakeSource(adv("pyyaml"), adv("requests"), adv("flask"), adv("jinja2"), adv("urllib3"))
	deb := inventory.Package{Name: "python3-yaml", Version: "6.0-3", Type: "deb", Ecosystem: "Debian:12", SourceName: "pyyaml", SourceVersion: "6.0-3"}
	apk := inventory.Package{Name: "py3-jinja2", Version: "3.1.2-r0", Type: "apk", Ecosystem: "Alpine:v3.18", SourceName: "py3-jinja2"}
	pypi := func(name, loc string) inventory.Package {
		return inventory.Package{Name: name, Version: "1.0", Type: "pypi", Ecosystem: "PyPI", Locations: []string{loc}}
	}
	pkgs := []inventory.Package{
		deb, apk,
		// Debian's python3-yaml: OS-owned.
		pypi("PyYAML", "/usr/lib/python3/dist-packages/PyYAML-6.0.egg-info/PKG-INFO"),
		// pip on Debian installs under /usr/local: matched.
		pypi("requests", "/usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA"),
		// site-packages with a py3-jinja2 apk: OS-owned.
		pypi("Jinja2", "/usr/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA"),
		// site-packages without a matching OS package (pip on Alpine): matched.
		pypi("flask", "/usr/lib/python3.11/site-packages/flask-3.0.0.dist-info/METADATA"),
		// one location OS-owned, one not: matched.
		{Name: "urllib3", Version: "1.0", Type: "pypi", Ecosystem: "PyPI", Locations: []string{
			"/usr/lib/python3/dist-packages/urllib3-1.26.12.egg-info/PKG-INFO", "/app/venv/lib/python3.11/site-packages/urllib3-1.26.12.dist-info/METADATA",
		}},
	}
	res := match(t, src, pkgs...)
	want := []string{"PYSEC-requests requests@1.0 fixed=", "PYSEC-flask flask@1.0 fixed=", "PYSEC-urllib3 urllib3@1.0 fixed="}
	if diff := cmp.Diff(want, findingsOf(res)); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
	if got := res.Skipped[SkipOwnedByOS]; got != 2 {
		t.Errorf("Skipped[%q] = %d, want 2", SkipOwnedByOS, got)
	}

	// Without OS packages in the report the rule does not apply.
	res = match(t, src, pypi("PyYAML", "/usr/lib/python3/dist-packages/PyYAML-6.0.egg-info/PKG-INFO"))
	if len(res.Findings) != 1 || res.Skipped[SkipOwnedByOS] != 0 {
		t.Errorf("without OS packages: findings %v, skipped %v; want the package matched", findingsOf(res), res.Skipped)
	}
}

func TestOwnedPaths(t *testing.T) {
	o := ownership{active: true, pyNames: map[string]bool{"jinja2": true}}
	tests := []struct {
		typ, name, loc string
		want           bool
	}{
		{"pypi", "x", "/usr/lib/python3/dist-packages/x-1.dist-info/METADATA", true},
		{"pypi", "x", "/usr/lib/python2.7/dist-packages/x.egg-info", true},
		{"pypi", "pip", "/usr/lib/python3.11/ensurepip/_bundled/pip-23.0-py3-none-any.whl", true},
		{"pypi", "jinja2", "/usr/lib64/python3.9/site-packages/Jinja2-2.11.dist-info/METADATA", true},
		{"pypi", "flask", "/usr/lib64/python3.9/site-packages/flask.dist-info/METADATA", false},
		{"pypi", "x", "/usr/local/lib/python3.11/dist-packages/x.dist-info/METADATA", false},
		{"pypi", "x", "/usr/local/lib/python3.11/site-packages/x.dist-info/METADATA", false},
		{"pypi", "x", "/opt/venv/lib/python3.11/site-packages/x.dist-info/METADATA", false},
		{"npm", "x", "/usr/share/nodejs/x/package.json", true},
		{"npm", "x", "/usr/lib/nodejs/x/package.json", true},
		{"npm", "x", "/usr/lib/node_modules/x/package.json", false},
		{"npm", "x", "/app/node_modules/x/package.json", false},
		{"gem", "x", "/usr/lib/ruby/vendor_ruby/x.rb", true},
		{"gem", "x", "/usr/share/rubygems-integration/all/specifications/x-1.gemspec", true},
		{"gem", "json", "/usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", true},
		{"gem", "x", "/usr/lib/ruby/gems/3.1.0/specifications/x-1.gemspec", false},
		{"gem", "x", "/var/lib/gems/3.1.0/specifications/x-1.gemspec", false},
		{"maven", "x", "/usr/share/java/x.jar", true},
		{"maven", "x", "/usr/share/../local/x.jar", false},
	}
	for _, tt := range tests {
		p := &inventory.Package{Name: tt.name, Type: tt.typ}
		if got := o.ownedPath(p, tt.loc); got != tt.want {
			t.Errorf("ownedPath(%s %s) = %v, want %v", tt.typ, tt.loc, got, tt.want)
		}
	}
}

func TestFindingFields(t *testing.T) {
	details := "First line of the details " + strings.Repeat("é", 250) + "\nSecond line."
	adv := &vulndb.Advisory{
		ID:      "GHSA-xxxx-yyyy-zzzz",
		Aliases: []string{"GO-2024-9", "CVE-2024-1111", "CVE-2024-2222"},
		Details: details,
		Affected: []vulndb.Affected{{
			Package: vulndb.Package{Ecosystem: "npm", Name: "lib"},
			Ranges: []vulndb.Range{{Type: "SEMVER", Events: []vulndb.Event{
				introduced("0"), fixed("1.2.3"), introduced("2.0.0"), fixed("2.0.1"),
			}}},
		}},
		Severity:   []vulndb.Severity{{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}},
		References: []vulndb.Reference{{Type: "WEB", URL: "https://a.example"}, {Type: "FIX", URL: "https://b.example"}, {Type: "ADVISORY", URL: "https://a.example"}},
	}
	pkg := inventory.Package{Name: "lib", Version: "1.0.0", Type: "npm", Ecosystem: "npm", PURL: "pkg:npm/lib@1.0.0", Locations: []string{"/app/package-lock.json"}}
	res := match(t, newFakeSource(adv), pkg)
	want := []Finding{{
		ID:               "GHSA-xxxx-yyyy-zzzz",
		Aliases:          []string{"GO-2024-9", "CVE-2024-1111", "CVE-2024-2222"},
		CVE:              "CVE-2024-1111",
		Summary:          string([]rune(strings.SplitN(details, "\n", 2)[0])[:summaryMax-1]) + "…",
		Package:          pkg,
		Ecosystem:        "npm",
		MatchedName:      "lib",
		InstalledVersion: "1.0.0",
		FixedVersions:    []string{"1.2.3", "2.0.1"},
		Severity:         SeverityCritical,
		CVSS:             &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", BaseScore: 9.8, Severity: "CRITICAL", Source: "osv"},
		References:       []string{"https://a.example", "https://b.example"},
	}}
	if diff := cmp.Diff(want, res.Findings); diff != "" {
		t.Errorf("findings (-want +got):\n%s", diff)
	}
}

func TestEnrichment(t *testing.T) {
	withVector := advisory("GHSA-vec", "PyPI", "a", "ECOSYSTEM", introduced("0"))
	withVector.Aliases = []string{"CVE-2024-0001"}
	withVector.Severity = []vulndb.Severity{
		{Type: "CVSS_V3", Score: "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N"},
		{Type: "CVSS_V4", Score: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"},
	}
	noVector := advisory("PYSEC-nvd", "PyPI", "a", "ECOSYSTEM", introduced("0"))
	noVector.Aliases = []string{"CVE-2024-0002", "CVE-2024-0003"}
	ubuntu := advisory("UBUNTU-CVE-2024-0004", "Ubuntu:22.04:LTS", "src", "ECOSYSTEM", introduced("0"))
	ubuntu.Aliases = []string{"CVE-2024-0004"}
	ubuntu.Severity = []vulndb.Severity{{Type: "Ubuntu", Score: "medium"}}
	debian := advisory("DEBIAN-CVE-2024-0005", "Ubuntu:22.04:LTS", "src", "ECOSYSTEM", introduced("0"))
	debian.DatabaseSpecific = json.RawMessage(`{"urgency": "unimportant"}`)
	nothing := advisory("OSV-2024-1", "Ubuntu:22.04:LTS", "src", "ECOSYSTEM", introduced("0"))

	src := newFakeSource(withVector, noVector, ubuntu, debian, nothing)
	src.kev["CVE-2024-0003"] = &vulndb.KEV{CVE: "CVE-2024-0003", DateAdded: "2024-05-01"}
	src.epss["CVE-2024-0001"] = &vulndb.EPSS{CVE: "CVE-2024-0001", Score: 0.42, Percentile: 0.97}
	src.epss["CVE-2024-0002"] = &vulndb.EPSS{CVE: "CVE-2024-0002", Score: 0.01}
	src.cvss["CVE-2024-0001"] = []vulndb.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", BaseScore: 4, Severity: "MEDIUM", Source: nvdPrimary}}
	src.cvss["CVE-2024-0002"] = []vulndb.CVSS{
		{Version: "2.0", Vector: "AV:N/AC:L/Au:N/C:P/I:P/A:P", BaseScore: 7.5, Severity: "HIGH", Source: nvdPrimary},
		{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:H/A:H", BaseScore: 9.9, Severity: "CRITICAL", Source: "security-advisories@github.com"},
		{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", BaseScore: 6.5, Severity: "MEDIUM", Source: nvdPrimary},
	}
	src.cvss["CVE-2024-0004"] = []vulndb.CVSS{{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"}}

	res := match(t, src,
		inventory.Package{Name: "a", Version: "1", Type: "pypi", Ecosystem: "PyPI"},
		inventory.Package{Name: "bin", Version: "1-1", Type: "deb", Ecosystem: "Ubuntu:22.04:LTS", SourceName: "src"},
	)
	type summary struct {
		ID, CVE, Severity, DistroSeverity string
		CVSS                              *vulndb.CVSS
		KEV                               *vulndb.KEV
		EPSS                              *vulndb.EPSS
	}
	var got []summary
	for _, f := range res.Findings {
		got = append(got, summary{f.ID, f.CVE, f.Severity, f.DistroSeverity, f.CVSS, f.KEV, f.EPSS})
	}
	want := []summary{
		{
			ID: "GHSA-vec", CVE: "CVE-2024-0001", Severity: SeverityCritical,
			// The advisory's v4.0 vector wins over its v3.1 one and
			// over NVD.
			CVSS: &vulndb.CVSS{Version: "4.0", Vector: "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", BaseScore: 9.3, Severity: "CRITICAL", Source: "osv"},
			EPSS: src.epss["CVE-2024-0001"],
		},
		{
			ID: "PYSEC-nvd", CVE: "CVE-2024-0002", Severity: SeverityMedium,
			// NVD: v3.1 over v2, the primary source over the CNA.
			CVSS: &src.cvss["CVE-2024-0002"][2],
			// KEV by the second CVE alias; EPSS by the first.
			KEV:  src.kev["CVE-2024-0003"],
			EPSS: src.epss["CVE-2024-0002"],
		},
		{ID: "DEBIAN-CVE-2024-0005", Severity: SeverityLow, DistroSeverity: "unimportant"},
		{ID: "OSV-2024-1", Severity: SeverityUnknown},
		{
			ID: "UBUNTU-CVE-2024-0004", CVE: "CVE-2024-0004", Severity: SeverityHigh, DistroSeverity: "medium",
			// NVD gave a vector without a score: computed.
			CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N", BaseScore: 7.5, Severity: "HIGH"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("enrichment (-want +got):\n%s", diff)
	}
}

func TestSortByRisk(t *testing.T) {
	kev := &vulndb.KEV{CVE: "CVE-1", DateAdded: "2024-01-01"}
	epss := func(s float64) *vulndb.EPSS { return &vulndb.EPSS{Score: s} }
	cvss := func(s float64) *vulndb.CVSS { return &vulndb.CVSS{BaseScore: s} }
	fs := []Finding{
		{ID: "f-none"},
		{ID: "f-low", Severity: SeverityLow},
		{ID: "f-cvss9", CVSS: cvss(9)},
		{ID: "f-epss0", EPSS: epss(0)},
		{ID: "b-kev-lowepss", KEV: kev, EPSS: epss(0.1)},
		{ID: "f-epss5-cvss5", EPSS: epss(0.5), CVSS: cvss(5)},
		{ID: "a-kev", KEV: kev},
		{ID: "f-epss5-cvss7", EPSS: epss(0.5), CVSS: cvss(7)},
		{ID: "f-crit", Severity: SeverityCritical},
		{ID: "c-kev-highepss", KEV: kev, EPSS: epss(0.9)},
		{ID: "e-same", Severity: SeverityHigh},
		{ID: "d-same", Severity: SeverityHigh},
	}
	SortByRisk(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID)
	}
	want := []string{
		"c-kev-highepss", "b-kev-lowepss", "a-kev",
		"f-epss5-cvss7", "f-epss5-cvss5", "f-epss0",
		"f-cvss9",
		"f-crit", "d-same", "e-same", "f-low", "f-none",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	tests := []struct {
		adv  vulndb.Advisory
		want string
	}{
		{vulndb.Advisory{Summary: " Short ", Details: "long"}, "Short"},
		{vulndb.Advisory{Details: "\n\n  First line.  \nSecond"}, "First line."},
		{vulndb.Advisory{Details: strings.Repeat("a", summaryMax)}, strings.Repeat("a", summaryMax)},
		{vulndb.Advisory{Details: strings.Repeat("a", summaryMax+1)}, strings.Repeat("a", summaryMax-1) + "…"},
		{vulndb.Advisory{}, ""},
	}
	for _, tt := range tests {
		if got := summary(&tt.adv); got != tt.want {
			t.Errorf("summary(%q) = %q, want %q", tt.adv.Details, got, tt.want)
		}
	}
}

func TestHelpers(t *testing.T) {
	names := map[[2]string]string{
		{"PyPI", "Foo_Bar"}: "foo-bar", {"PyPI", "zope.interface"}: "zope-interface", {"PyPI", "A--B__c"}: "a-b-c",
		{"PyPI", "_x."}: "-x-", {"npm", "Foo_Bar"}: "Foo_Bar", {"Go", "github.com/A/B"}: "github.com/A/B",
	}
	for in, want := range names {
		if got := normalizeName(in[0], in[1]); got != want {
			t.Errorf("normalizeName(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
	toolchains := map[string]string{
		"1.21.5": "1.21.5", "go1.21.5": "1.21.5", "1.22rc1": "1.22.0-rc.1", "1.9beta2": "1.9.0-beta.2",
		"1.20": "1.20.0", "1": "1.0.0", "1.22.1 X:boringcrypto": "1.22.1", "1.21.0-bigcorp": "1.21.0",
		"1.22.0-rc.2": "1.22.0-rc.2", "1.23.4+auto": "1.23.4", "devel go1.23-abcdef": "", "": "",
	}
	for in, want := range toolchains {
		got, ok := goToolchainSemver(in)
		if got != want || ok != (want != "") {
			t.Errorf("goToolchainSemver(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	srpms := map[string]string{
		"openssl-3.0.7-27.el9.src.rpm": "openssl", "python-requests-2.25.1-8.el9.src.rpm": "python-requests",
		"glibc": "glibc", "": "", "weird.src.rpm": "weird", "a-1.src.rpm": "a",
	}
	for in, want := range srpms {
		if got := sourceRPMName(in); got != want {
			t.Errorf("sourceRPMName(%q) = %q, want %q", in, got, want)
		}
	}
	rpms := []struct{ version, purl, want string }{
		{"3.0.7-27.el9", "pkg:rpm/redhat/openssl@3.0.7-27.el9?arch=x86_64&epoch=1", "1:3.0.7-27.el9"},
		{"3.0.7-27.el9", "pkg:rpm/redhat/openssl@3.0.7-27.el9?epoch=0", "3.0.7-27.el9"},
		{"3.0.7-27.el9", "pkg:rpm/redhat/openssl@3.0.7-27.el9", "3.0.7-27.el9"},
		{"2:1.0-1", "pkg:rpm/x/y@1.0-1?epoch=2", "2:1.0-1"},
	}
	for _, tt := range rpms {
		if got := rpmVersion(tt.version, tt.purl); got != tt.want {
			t.Errorf("rpmVersion(%q, %q) = %q, want %q", tt.version, tt.purl, got, tt.want)
		}
	}
}

func TestPackageMatches(t *testing.T) {
	tests := []struct {
		p    vulndb.Package
		key  lookupKey
		want bool
	}{
		{vulndb.Package{Ecosystem: "Debian:12", Name: "openssl"}, lookupKey{"Debian:12", "openssl", true}, true},
		{vulndb.Package{Ecosystem: "Debian:11", Name: "openssl"}, lookupKey{"Debian:12", "openssl", true}, false},
		{vulndb.Package{Ecosystem: "Debian", Name: "openssl"}, lookupKey{"Debian:12", "openssl", true}, false},
		{vulndb.Package{Ecosystem: "Maven:https://repo.maven.apache.org/maven2", Name: "g:a"}, lookupKey{"Maven", "g:a", false}, true},
		{vulndb.Package{Ecosystem: "PyPI", Name: "Foo.Bar"}, lookupKey{"PyPI", "foo-bar", false}, true},
		{vulndb.Package{Ecosystem: "Go", Name: "toolchain"}, lookupKey{"Go", "stdlib", false}, false},
		{vulndb.Package{Ecosystem: "npm", Name: "Foo"}, lookupKey{"npm", "foo", false}, false},
	}
	for _, tt := range tests {
		if got := packageMatches(tt.p, tt.key); got != tt.want {
			t.Errorf("packageMatches(%+v, %+v) = %v, want %v", tt.p, tt.key, got, tt.want)
		}
	}
}
