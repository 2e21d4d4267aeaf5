package vulnmatch

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// benchInventory builds n packages with real names from the Go and PyPI
// advisories (half each, stdlib among them), at versions taken from those
// advisories: an introduced version (affected) or a fixed one, so that
// both outcomes are evaluated.
func benchInventory(b testing.TB, n int) *inventory.Report {
	b.Helper()
	type nv struct{ name, version string }
	pick := func(zip, eco, typ string) []inventory.Package {
		seen := map[string]bool{}
		var cands []nv
		for _, a := range loadZip(b, zip) {
			for _, af := range a.Affected {
				if af.Package.Ecosystem != eco || seen[af.Package.Name] || len(af.Ranges) == 0 {
					continue
				}
				var v string
				for _, r := range af.Ranges {
					for _, e := range r.Events {
						if e.Introduced != "" && e.Introduced != "0" && v == "" && len(cands)%2 == 0 {
							v = e.Introduced
						}
						if e.Fixed != "" && v == "" {
							v = e.Fixed
						}
					}
				}
				if v == "" {
					continue
				}
				seen[af.Package.Name] = true
				cands = append(cands, nv{af.Package.Name, v})
			}
		}
		slices.SortFunc(cands, func(a, b nv) int {
			if a.name == "stdlib" {
				return -1
			}
			if b.name == "stdlib" {
				return 1
			}
			return 0
		})
		var out []inventory.Package
		for _, c := range cands {
			out = append(out, inventory.Package{Name: c.name, Version: c.version, Type: typ, Ecosystem: eco,
				PURL: fmt.Sprintf("pkg:%s/%s@%s", typ, c.name, c.version)})
		}
		return out
	}
	goPkgs, pyPkgs := pick(goZip, "Go", "golang"), pick(pypiZip, "PyPI", "pypi")
	if len(goPkgs) < n/2 || len(pyPkgs) < n-n/2 {
		b.Fatalf("only %d Go and %d PyPI names in the data", len(goPkgs), len(pyPkgs))
	}
	return &inventory.Report{Packages: slices.Concat(goPkgs[:n/2], pyPkgs[:n-n/2])}
}

// BenchmarkMatch1000 matches 1,000 real package names against the real Go
// and PyPI advisories held in memory (a warm database, which hands out the
// same decoded advisories, as vulndb's LRU does). "warm" keeps this
// package's caches of parsed versions and compiled advisories between
// calls, as a long-running process does; "cold" empties them before each
// call, as the first scan of a process finds them.
func BenchmarkMatch1000(b *testing.B) {
	src := newFakeSource(loadZip(b, goZip)...)
	src.add(loadZip(b, pypiZip)...)
	rep := benchInventory(b, 1000)
	ctx := context.Background()
	for _, cold := range []bool{false, true} {
		name := "warm"
		if cold {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			var findings int
			b.ReportAllocs()
			for b.Loop() {
				if cold {
					versions.reset()
					compiled.reset()
				}
				res, err := Match(ctx, src, rep, Options{})
				if err != nil {
					b.Fatal(err)
				}
				findings = len(res.Findings)
			}
			b.ReportMetric(float64(findings), "findings")
		})
	}
}

// TestConcurrentMatch runs Match from several goroutines at once, on real
// advisories, sharing the caches: every result must equal a one-worker
// run's (run it with -race).
func TestConcurrentMatch(t *testing.T) {
	src := newFakeSource(loadZip(t, goZip)...)
	src.add(loadZip(t, pypiZip)...)
	rep := benchInventory(t, 300)
	versions.reset()
	compiled.reset()
	want, err := Match(context.Background(), src, rep, Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(want.Findings) == 0 {
		t.Fatal("no findings")
	}
	versions.reset()
	compiled.reset()
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	for i := range results {
		wg.Go(func() {
			res, err := Match(context.Background(), src, rep, Options{Workers: 8})
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	for _, got := range results {
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("concurrent result differs (-want +got):\n%s", diff)
		}
	}
}
