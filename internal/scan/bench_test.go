package scan_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/osv-scalibr/semantic"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// inventory1000 is 1,000 packages named after real affected packages of the
// Go and PyPI zips. Typical: nine in ten are at the newest version any of
// their advisories names as fixed (patched, as in a maintained image), one in
// ten at 0.0.1 (vulnerable to every "introduced 0" range). With
// allVulnerable every package is at "1.<n>.0", which most ranges cover: the
// worst case.
func inventory1000(b testing.TB, allVulnerable bool) *inventory.Report {
	b.Helper()
	data := vigiltest.SharedData(b)
	rep := &inventory.Report{}
	for _, eco := range []struct{ zip, typ, eco string }{
		{filepath.Join(data, "osv", "Go", "all.zip"), "golang", "Go"},
		{filepath.Join(data, "osv", "PyPI", "all.zip"), "pypi", "PyPI"},
	} {
		z, err := zip.OpenReader(eco.zip)
		if err != nil {
			b.Fatal(err)
		}
		var names []string
		raw := map[string]string{} // name → newest fixed version

		for _, f := range z.File {
			rc, _ := f.Open()
			var rec struct {
				Affected []struct {
					Package struct{ Name string }
					Ranges  []struct {
						Events []struct{ Fixed string }
					}
				} `json:"affected"`
			}
			_ = json.NewDecoder(rc).Decode(&rec)
			rc.Close()
			for _, a := range rec.Affected {
				if _, ok := raw[a.Package.Name]; !ok {
					names = append(names, a.Package.Name)
					raw[a.Package.Name] = ""
				}
				for _, r := range a.Ranges {
					for _, e := range r.Events {
						v, err := semantic.Parse(e.Fixed, eco.eco)
						if e.Fixed == "" || err != nil {
							continue
						}
						cur := raw[a.Package.Name]
						if c, err := v.CompareStr(cur); cur == "" || (err == nil && c > 0) {
							raw[a.Package.Name] = e.Fixed
						}
					}
				}
			}
		}
		z.Close()
		for i, name := range names {
			n := len(rep.Packages)
			if n >= 1000 || (eco.typ == "golang" && n >= 500) {
				break
			}
			version := raw[name]
			switch {
			case allVulnerable:
				version = fmt.Sprintf("1.%d.0", i%7)
			case n%10 == 0 || version == "":
				version = "0.0.1"
			}
			rep.Packages = append(rep.Packages, inventory.Package{
				Name: name, Version: version, Type: eco.typ, Ecosystem: eco.eco,
				PURL: "pkg:" + eco.typ + "/" + name, Locations: []string{"/app"},
			})
		}
	}
	if len(rep.Packages) != 1000 {
		b.Fatalf("built %d packages, want 1000", len(rep.Packages))
	}
	return rep
}

// BenchmarkMatch1000RealDB matches 1,000 packages against the real
// database file (SQLite) with a warm cache.
func BenchmarkMatch1000RealDB(b *testing.B) {
	for _, worst := range []bool{false, true} {
		name := "typical"
		if worst {
			name = "all-vulnerable"
		}
		b.Run(name, func(b *testing.B) {
			db := realDB(b)
			rep := inventory1000(b, worst)
			res, err := vulnmatch.Match(b.Context(), db, rep, vulnmatch.Options{}) // warm
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := vulnmatch.Match(b.Context(), db, rep, vulnmatch.Options{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(res.Findings)), "findings")
		})
	}
}

// BenchmarkScanBookworm is a full scan of the bookworm docker-archive:
// inventory and matching against the real database.
func BenchmarkScanBookworm(b *testing.B) {
	db := realDB(b)
	archive := vigiltest.BookwormArchive(b)
	for b.Loop() {
		scanRef(b, "docker-archive:"+archive, db)
	}
}
