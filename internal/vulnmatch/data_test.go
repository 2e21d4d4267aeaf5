package vulnmatch

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"golang.org/x/mod/semver"
)

// Tests against the real advisory data in /work/shared/data (see its
// README.md). Entries are picked programmatically; expected results follow
// from the record itself (a version below its fixed event is affected,
// the fixed version is not), never from this package's output.

const (
	goZip     = "osv/Go/all.zip"
	pypiZip   = "osv/PyPI/all.zip"
	debianZip = "debian-derived/all.zip"
)

// ids returns the IDs of findings, per package name@version.
func idsByPackage(res *Result) map[string][]string {
	out := map[string][]string{}
	for _, f := range res.Findings {
		k := f.Package.Name + "@" + f.Package.Version
		out[k] = append(out[k], f.ID)
	}
	return out
}

func hasFinding(res *Result, id, version string) bool {
	for _, f := range res.Findings {
		if f.ID == id && f.Package.Version == version {
			return true
		}
	}
	return false
}

// onlyPair returns X and Y when the entry has exactly one range, of type
// typ, with events [introduced X, fixed Y].
func onlyPair(a vulndb.Affected, typ string) (string, string, bool) {
	if len(a.Ranges) != 1 || a.Ranges[0].Type != typ || len(a.Ranges[0].Events) != 2 {
		return "", "", false
	}
	e := a.Ranges[0].Events
	return e[0].Introduced, e[1].Fixed, e[0].Introduced != "" && e[1].Fixed != ""
}

func TestRealGoModuleRange(t *testing.T) {
	advs := loadZip(t, goZip)
	// The first Go advisory with a module (not stdlib/toolchain) range
	// "introduced X (not 0), fixed Y" where Y is a plain release with a
	// patch number above 0 and Y's previous patch is not below X.
	var adv *vulndb.Advisory
	var mod, intro, fix, below, above string
	for _, a := range advs {
		if !a.Withdrawn.IsZero() || len(a.Affected) != 1 {
			continue
		}
		af := a.Affected[0]
		x, y, ok := onlyPair(af, "SEMVER")
		if !ok || x == "0" || af.Package.Name == "stdlib" || af.Package.Name == "toolchain" || semver.Prerelease("v"+y) != "" || semver.Build("v"+y) != "" {
			continue
		}
		parts := strings.Split(y, ".")
		patch, err := strconv.Atoi(parts[2])
		if err != nil || patch == 0 {
			continue
		}
		b := parts[0] + "." + parts[1] + "." + strconv.Itoa(patch-1)
		if semver.Compare("v"+b, "v"+x) < 0 {
			continue
		}
		adv, mod, intro, fix, below = a, af.Package.Name, x, y, b
		above = parts[0] + "." + parts[1] + "." + strconv.Itoa(patch+1)
		break
	}
	if adv == nil {
		t.Fatal("no Go advisory with a single introduced/fixed SEMVER range")
	}
	t.Logf("%s: %s introduced %s fixed %s", adv.ID, mod, intro, fix)
	src := newFakeSource(advs...)
	pkg := func(v string) inventory.Package {
		return inventory.Package{Name: mod, Version: v, Type: "golang", Ecosystem: "Go"}
	}
	res := match(t, src, pkg(intro), pkg(below), pkg(fix), pkg(above))
	for v, want := range map[string]bool{intro: true, below: true, fix: false, above: false} {
		if got := hasFinding(res, adv.ID, v); got != want {
			t.Errorf("%s %s@%s: affected = %v, want %v", adv.ID, mod, v, got, want)
		}
	}
	for _, f := range res.Findings {
		if f.ID == adv.ID {
			if diff := cmp.Diff([]string{fix}, f.FixedVersions); diff != "" {
				t.Errorf("FixedVersions (-want +got):\n%s", diff)
			}
		}
	}
}

func TestRealGoStdlibToolchain(t *testing.T) {
	advs := loadZip(t, goZip)
	// The first stdlib advisory with a pair "introduced A.B.0-0, fixed
	// A.B.C" (C > 0): the toolchain A.Brc1 is affected, A.B.C is not.
	var adv *vulndb.Advisory
	var minor, fix, prev string
	for _, a := range advs {
		if !a.Withdrawn.IsZero() {
			continue
		}
		for _, af := range a.Affected {
			if af.Package.Name != "stdlib" || len(af.Ranges) != 1 {
				continue
			}
			evs := af.Ranges[0].Events
			for i := 0; i+1 < len(evs); i++ {
				x, y := evs[i].Introduced, evs[i+1].Fixed
				mm, ok := strings.CutSuffix(x, ".0-0")
				if !ok || y == "" || !strings.HasPrefix(y, mm+".") || y == mm+".0" || semver.Prerelease("v"+y) != "" {
					continue
				}
				patch, err := strconv.Atoi(strings.TrimPrefix(y, mm+"."))
				if err != nil {
					continue
				}
				adv, minor, fix, prev = a, mm, y, mm+"."+strconv.Itoa(patch-1)
				break
			}
			if adv != nil {
				break
			}
		}
		if adv != nil {
			break
		}
	}
	if adv == nil {
		t.Fatal("no stdlib advisory with an introduced x.y.0-0 / fixed x.y.z pair")
	}
	t.Logf("%s: stdlib %s.0-0 … %s", adv.ID, minor, fix)
	src := newFakeSource(advs...)
	stdlib := func(v string) inventory.Package {
		return inventory.Package{Name: "stdlib", Version: v, Type: "golang", Ecosystem: "Go", PURL: "pkg:golang/stdlib@" + v}
	}
	rc := minor + "rc1"
	res := match(t, src, stdlib(rc), stdlib(prev), stdlib(fix))
	for v, want := range map[string]bool{rc: true, prev: true, fix: false} {
		if got := hasFinding(res, adv.ID, v); got != want {
			t.Errorf("%s stdlib@%s: affected = %v, want %v", adv.ID, v, got, want)
		}
	}
	for _, f := range res.Findings {
		if f.Package.Version == rc && f.InstalledVersion != minor+".0-rc.1" {
			t.Errorf("InstalledVersion for toolchain %s = %q, want %q", rc, f.InstalledVersion, minor+".0-rc.1")
		}
	}

	// Advisories for the "toolchain" package (the go command) are not
	// stdlib's: GO-2021-0068 and the like never match stdlib.
	var toolchainOnly []string
	for _, a := range advs {
		names := map[string]bool{}
		for _, af := range a.Affected {
			names[af.Package.Name] = true
		}
		if names["toolchain"] && !names["stdlib"] {
			toolchainOnly = append(toolchainOnly, a.ID)
		}
	}
	if len(toolchainOnly) == 0 {
		t.Fatal("no toolchain-only advisory in the Go data")
	}
	res = match(t, src, stdlib("1.0.0"))
	for _, f := range res.Findings {
		if slices.Contains(toolchainOnly, f.ID) {
			t.Errorf("stdlib matched the toolchain advisory %s", f.ID)
		}
	}
	if len(res.Findings) == 0 {
		t.Error("stdlib 1.0.0 matched no stdlib advisory")
	}
}

// TestRealGoVersionOrder checks that semantic's SemVer order agrees with
// golang.org/x/mod/semver (the go command's) on every version in Go's
// advisories: pseudo-versions, prereleases and +incompatible included.
func TestRealGoVersionOrder(t *testing.T) {
	seen := map[string]bool{}
	for _, a := range loadZip(t, goZip) {
		for _, af := range a.Affected {
			for _, r := range af.Ranges {
				for _, e := range r.Events {
					for _, v := range []string{e.Introduced, e.Fixed, e.LastAffected} {
						if v != "" && v != "0" {
							seen[v] = true
						}
					}
				}
			}
		}
	}
	var vs []string
	for v := range seen {
		if !semver.IsValid("v" + v) {
			t.Errorf("invalid Go version in the data: %q", v)
			continue
		}
		vs = append(vs, v)
	}
	slices.SortFunc(vs, func(a, b string) int { return semver.Compare("v"+a, "v"+b) })
	cache := parserFor("Go")
	cmpSemantic := func(a, b string) int {
		va, _ := cache.parse(a)
		vb, _ := cache.parse(b)
		return compareVersions(va, vb)
	}
	check := func(a, b string) {
		if want, got := semver.Compare("v"+a, "v"+b), cmpSemantic(a, b); want != got {
			t.Errorf("compare(%s, %s) = %d, x/mod/semver says %d", a, b, got, want)
		}
	}
	for i := 0; i+1 < len(vs); i++ {
		check(vs[i], vs[i+1])
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		check(vs[r.IntN(len(vs))], vs[r.IntN(len(vs))])
	}
	t.Logf("%d distinct versions", len(vs))
}

func TestRealPyPI(t *testing.T) {
	advs := loadZip(t, pypiZip)
	byID := map[string]*vulndb.Advisory{}
	for _, a := range advs {
		byID[a.ID] = a
	}

	t.Run("introduced/fixed", func(t *testing.T) {
		// The first PYSEC advisory with one ECOSYSTEM range
		// "introduced X (not 0), fixed Y" and a versions[] list: its
		// greatest listed version (a real release below Y) is affected,
		// Y is not, Y.post1 is not; with versions[] removed, the range
		// alone decides the same.
		var adv *vulndb.Advisory
		var name, fix, below string
		for _, a := range advs {
			if !a.Withdrawn.IsZero() || len(a.Affected) != 1 {
				continue
			}
			af := a.Affected[0]
			x, y, ok := onlyPair(af, "ECOSYSTEM")
			if !ok || x == "0" || len(af.Versions) == 0 {
				continue
			}
			adv, name, fix, below = a, af.Package.Name, y, af.Versions[len(af.Versions)-1]
			break
		}
		if adv == nil {
			t.Fatal("no PYSEC advisory with a single introduced/fixed range")
		}
		t.Logf("%s: %s fixed %s, last listed %s", adv.ID, name, fix, below)
		rangeOnly := *adv
		rangeOnly.ID += "-range-only"
		rangeOnly.Affected = slices.Clone(adv.Affected)
		rangeOnly.Affected[0].Versions = nil
		src := newFakeSource(adv, &rangeOnly)
		pkg := func(v string) inventory.Package {
			return inventory.Package{Name: strings.ToUpper(name), Version: v, Type: "pypi", Ecosystem: "PyPI"}
		}
		res := match(t, src, pkg(below), pkg(fix), pkg(fix+".post1"))
		for _, id := range []string{adv.ID, rangeOnly.ID} {
			for v, want := range map[string]bool{below: true, fix: false, fix + ".post1": false} {
				if got := hasFinding(res, id, v); got != want {
					t.Errorf("%s %s@%s: affected = %v, want %v", id, name, v, got, want)
				}
			}
		}
	})

	t.Run("last_affected", func(t *testing.T) {
		// PYSEC-2022-42969 (py): introduced 0, last_affected 1.11.0.
		adv := byID["PYSEC-2022-42969"]
		if adv == nil {
			t.Fatal("PYSEC-2022-42969 not in the data")
		}
		la := adv.Affected[0].Ranges[0].Events[1].LastAffected
		rangeOnly := *adv
		rangeOnly.Affected = slices.Clone(adv.Affected)
		rangeOnly.Affected[0].Versions = nil
		res := match(t, newFakeSource(&rangeOnly),
			inventory.Package{Name: "py", Version: la, Type: "pypi", Ecosystem: "PyPI"},
			inventory.Package{Name: "py", Version: la + ".post1", Type: "pypi", Ecosystem: "PyPI"},
			inventory.Package{Name: "py", Version: "1.11.1", Type: "pypi", Ecosystem: "PyPI"},
		)
		if diff := cmp.Diff(map[string][]string{"py@" + la: {adv.ID}}, idsByPackage(res)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("versions only", func(t *testing.T) {
		// PYSEC-2024-1 (gratient) has no ranges, only versions [0.5].
		adv := byID["PYSEC-2024-1"]
		if adv == nil || len(adv.Affected[0].Ranges) != 0 {
			t.Fatal("PYSEC-2024-1 not in the data as a versions-only record")
		}
		listed := adv.Affected[0].Versions[0]
		res := match(t, newFakeSource(adv),
			inventory.Package{Name: "gratient", Version: listed, Type: "pypi", Ecosystem: "PyPI"},
			inventory.Package{Name: "gratient", Version: "99.0", Type: "pypi", Ecosystem: "PyPI"},
		)
		if diff := cmp.Diff(map[string][]string{"gratient@" + listed: {adv.ID}}, idsByPackage(res)); diff != "" {
			t.Errorf("findings (-want +got):\n%s", diff)
		}
	})

	t.Run("GIT ranges skipped", func(t *testing.T) {
		// The first record with a GIT range next to an ECOSYSTEM one.
		var adv *vulndb.Advisory
		for _, a := range advs {
			if a.Withdrawn.IsZero() && len(a.Affected) == 1 && len(a.Affected[0].Ranges) == 2 && a.Affected[0].Ranges[0].Type == "GIT" {
				adv = a
				break
			}
		}
		if adv == nil {
			t.Fatal("no PYSEC record with a GIT range")
		}
		// The debug line is written when an advisory is first compiled.
		compiled.reset()
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		_, err := Match(context.Background(), newFakeSource(adv), &inventory.Report{Packages: []inventory.Package{
			{Name: adv.Affected[0].Package.Name, Version: "0.0.1", Type: "pypi", Ecosystem: "PyPI"},
		}}, Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "skipping GIT range") {
			t.Errorf("%s: no debug line for its GIT range:\n%s", adv.ID, buf.String())
		}
	})

	t.Run("withdrawn", func(t *testing.T) {
		for _, zip := range []string{pypiZip, goZip} {
			for _, a := range loadZip(t, zip) {
				if a.Withdrawn.IsZero() || len(a.Affected) == 0 || len(a.Affected[0].Ranges) == 0 {
					continue
				}
				af := a.Affected[0]
				// A version inside the first range: its introduced
				// version, or any version if that is 0.
				v := af.Ranges[0].Events[0].Introduced
				if v == "0" || v == "" {
					v = "1.0.0"
				}
				typ := map[string]string{"PyPI": "pypi", "Go": "golang"}[af.Package.Ecosystem]
				res := match(t, newFakeSource(a), inventory.Package{Name: af.Package.Name, Version: v, Type: typ, Ecosystem: af.Package.Ecosystem})
				if len(res.Findings) != 0 {
					t.Errorf("withdrawn %s matched %s@%s", a.ID, af.Package.Name, v)
				}
				// The same record, not withdrawn, does match: the
				// version really is in range.
				live := *a
				live.Withdrawn = time.Time{}
				res = match(t, newFakeSource(&live), inventory.Package{Name: af.Package.Name, Version: v, Type: typ, Ecosystem: af.Package.Ecosystem})
				if len(res.Findings) != 1 {
					t.Errorf("%s without its withdrawal: %d findings for %s@%s, want 1", a.ID, len(res.Findings), af.Package.Name, v)
				}
				break
			}
		}
	})
}

func TestRealDebianSourcePackage(t *testing.T) {
	deb := loadZip(t, debianZip)
	// Everything in one Source, so a lookup of the wrong ecosystem would
	// find something.
	src := newFakeSource(deb...)
	src.add(loadZip(t, goZip)...)
	src.add(loadZip(t, pypiZip)...)

	// openssl's records: libssl3 is one of its binary packages.
	cache := parserFor("Debian:12")
	type rec struct {
		id, fixed string
	}
	var recs []rec
	for _, a := range deb {
		af := a.Affected[0]
		if af.Package.Name == "openssl" && af.Package.Ecosystem == "Debian:12" {
			recs = append(recs, rec{a.ID, af.Ranges[0].Events[1].Fixed})
		}
	}
	if len(recs) < 2 {
		t.Fatalf("%d openssl records in the Debian data, want several", len(recs))
	}
	slices.SortStableFunc(recs, func(a, b rec) int {
		va, _ := cache.parse(a.fixed)
		vb, _ := cache.parse(b.fixed)
		return compareVersions(va, vb)
	})
	latest := recs[len(recs)-1]
	// The newest fixed version older than latest's: a real earlier
	// openssl version in bookworm.
	var earlier rec
	for i := len(recs) - 2; i >= 0; i-- {
		if recs[i].fixed != latest.fixed {
			earlier = recs[i]
			break
		}
	}
	t.Logf("openssl: %s fixed in %s; earlier fix %s in %s", latest.id, latest.fixed, earlier.id, earlier.fixed)
	libssl := func(v string) inventory.Package {
		// A binNMU'd binary version: the source version is compared.
		return inventory.Package{Name: "libssl3", Version: v + "+b1", Type: "deb", Ecosystem: "Debian:12", SourceName: "openssl", SourceVersion: v, PURL: "pkg:deb/debian/libssl3@" + v + "+b1?arch=amd64&distro=debian-12"}
	}
	res := match(t, src, libssl(earlier.fixed), libssl(latest.fixed))

	if diff := cmp.Diff([][2]string{{"Debian:12", "openssl"}}, src.calls()); diff != "" {
		t.Errorf("lookups (-want +got):\n%s", diff)
	}
	if !hasFinding(res, latest.id, earlier.fixed+"+b1") {
		t.Errorf("libssl3 at %s: %s not reported", earlier.fixed, latest.id)
	}
	if hasFinding(res, earlier.id, earlier.fixed+"+b1") {
		t.Errorf("libssl3 at %s: %s reported at its own fixed version", earlier.fixed, earlier.id)
	}
	for _, f := range res.Findings {
		if f.Package.Version == latest.fixed+"+b1" {
			t.Errorf("libssl3 at the newest fixed version %s: %s reported", latest.fixed, f.ID)
		}
		if f.MatchedName != "openssl" || f.Ecosystem != "Debian:12" || f.InstalledVersion+"+b1" != f.Package.Version {
			t.Errorf("%s: matched %s %s@%s, want Debian:12 openssl at the source version", f.ID, f.Ecosystem, f.MatchedName, f.InstalledVersion)
		}
		if !strings.HasPrefix(f.CVE, "CVE-") || f.Severity != SeverityUnknown {
			t.Errorf("%s: CVE %q severity %q, want its CVE alias and UNKNOWN (the data has no severity)", f.ID, f.CVE, f.Severity)
		}
	}
}

func TestRealEnrichment(t *testing.T) {
	// CVE-2020-11651 (Salt) is in KEV and NVD; PYSEC-2020-102 has no
	// vector of its own, so NVD's is used.
	advs := loadZip(t, pypiZip)
	var adv *vulndb.Advisory
	for _, a := range advs {
		if slices.Contains(a.Aliases, "CVE-2020-11651") {
			adv = a
			break
		}
	}
	if adv == nil {
		t.Fatal("no PyPI advisory for CVE-2020-11651")
	}
	kev := loadKEV(t)["CVE-2020-11651"]
	nvd, _ := loadNVD(t)
	if kev == nil || len(nvd["CVE-2020-11651"]) == 0 {
		t.Fatal("CVE-2020-11651 missing from the KEV or NVD data")
	}
	src := newFakeSource(adv)
	src.kev["CVE-2020-11651"] = kev
	src.cvss["CVE-2020-11651"] = nvd["CVE-2020-11651"]
	src.epss["CVE-2020-11651"] = &vulndb.EPSS{CVE: "CVE-2020-11651", Score: 0.97, Percentile: 0.99} // no real EPSS data

	// The greatest listed version below the first fixed event.
	af := adv.Affected[0]
	firstFix := af.Ranges[0].Events[1].Fixed
	cache := parserFor("PyPI")
	fv, _ := cache.parse(firstFix)
	var version string
	for _, v := range af.Versions {
		if pv, err := cache.parse(v); err == nil && compareVersions(pv, fv) < 0 {
			version = v
		}
	}
	res := match(t, src, inventory.Package{Name: "salt", Version: version, Type: "pypi", Ecosystem: "PyPI"})
	if len(res.Findings) != 1 {
		t.Fatalf("salt %s: findings %v, want %s", version, findingsOf(res), adv.ID)
	}
	f := res.Findings[0]
	want := &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", BaseScore: 9.8, Severity: "CRITICAL", Source: nvdPrimary}
	if diff := cmp.Diff(want, f.CVSS); diff != "" {
		t.Errorf("CVSS (-want +got):\n%s", diff)
	}
	if f.KEV == nil || f.KEV.DateAdded != kev.DateAdded || f.EPSS == nil || f.Severity != SeverityCritical || f.CVE != "CVE-2020-11651" {
		t.Errorf("finding = CVE %s, KEV %+v, EPSS %+v, severity %s", f.CVE, f.KEV, f.EPSS, f.Severity)
	}
	if !slices.Contains(f.FixedVersions, firstFix) {
		t.Errorf("FixedVersions = %v, want %s among them", f.FixedVersions, firstFix)
	}
}
