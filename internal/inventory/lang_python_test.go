package inventory_test

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// pyNameSep is the run of separators PEP 503 normalises to one "-".
var pyNameSep = regexp.MustCompile(`[-_.]+`)

func normalizePyName(n string) string {
	return pyNameSep.ReplaceAllString(strings.ToLower(n), "-")
}

// pyListDistributions prints "name<TAB>version" for every distribution
// importlib.metadata finds on the path given as argv[1].
const pyListDistributions = `
import sys
import importlib.metadata as md
for d in md.distributions(path=[sys.argv[1]]):
    print(d.metadata["Name"], d.version, sep="\t")
`

func TestDebianPythonPackages(t *testing.T) {
	python := vigiltest.RequireCommand(t, "python3")
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()

	root := t.TempDir()
	debs := []string{"python3-six", "python3-idna", "python3-urllib3", "python3-certifi"}
	extractDebs(t, ctx, root, debs...)
	const distPackages = "/usr/lib/python3/dist-packages"
	site := filepath.Join(root, distPackages)
	if _, err := os.Stat(site); err != nil {
		t.Fatalf("the python3 debs did not install %s: %v", distPackages, err)
	}

	// Source of truth: Python's own metadata reader over the extracted tree.
	out := mustRunTool(t, ctx, root, []string{"PYTHONDONTWRITEBYTECODE=1"}, python, "-I", "-c", pyListDistributions, site)
	want := map[nameVersion]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		name, version, ok := strings.Cut(l, "\t")
		if !ok || name == "" || version == "" {
			t.Fatalf("importlib.metadata: unexpected line %q in:\n%s", l, out)
		}
		want[nameVersion{normalizePyName(name), version}] = true
	}
	if len(want) != len(debs) {
		t.Fatalf("importlib.metadata found %d distributions, want one per deb (%d): %v", len(want), len(debs), sortedNV(want))
	}

	rep := scanDir(t, ctx, root)
	got := map[nameVersion]bool{}
	for _, p := range packagesOfType(rep, "pypi") {
		nv := nameVersion{normalizePyName(p.Name), p.Version}
		if got[nv] {
			t.Errorf("pypi package %v reported twice", nv)
		}
		got[nv] = true
		// Debian installs egg-info directories: the metadata file is
		// …/dist-packages/NAME-VERSION.egg-info/PKG-INFO (a wheel install
		// would give …/NAME-VERSION.dist-info/METADATA).
		if len(p.Locations) != 1 {
			t.Errorf("%s@%s has locations %v, want exactly one metadata file", p.Name, p.Version, p.Locations)
			continue
		}
		loc := p.Locations[0]
		base, dir := path.Base(loc), path.Dir(loc)
		if path.Dir(dir) != distPackages ||
			!(base == "PKG-INFO" && strings.HasSuffix(dir, ".egg-info") || base == "METADATA" && strings.HasSuffix(dir, ".dist-info")) {
			t.Errorf("%s@%s location %q, want %s/*.egg-info/PKG-INFO or */*.dist-info/METADATA", p.Name, p.Version, loc, distPackages)
		}
		if fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(loc))); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s@%s location %q is not a file in the target: %v", p.Name, p.Version, loc, err)
		}
		if p.Ecosystem != "PyPI" {
			t.Errorf("%s@%s ecosystem %q, want PyPI", p.Name, p.Version, p.Ecosystem)
		}
		if wantPURL := "pkg:pypi/" + normalizePyName(p.Name) + "@" + p.Version; p.PURL != wantPURL {
			t.Errorf("%s@%s purl %q, want %q", p.Name, p.Version, p.PURL, wantPURL)
		}
	}
	if diff := cmp.Diff(sortedNV(want), sortedNV(got)); diff != "" {
		t.Errorf("pypi packages (-importlib.metadata +vigil):\n%s", diff)
	}
	// dpkg-deb -x writes no dpkg database, so nothing else is expected.
	if n := len(rep.Packages) - len(packagesOfType(rep, "pypi")); n != 0 {
		t.Errorf("%d non-pypi packages reported: %+v", n, rep.Packages)
	}
	t.Logf("compared %d pypi packages", len(want))
}
