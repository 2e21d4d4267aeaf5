package scan_test

import (
	"archive/zip"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// inventory1000 is 1,000 packages named after real affected packages of the
// Go and PyPI zips, at versions inside and outside their ranges.
func inventory1000(b *testing.B) *inventory.Report {
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
		for _, f := range z.File {
			rc, _ := f.Open()
			var rec struct {
				Affected []struct{ Package struct{ Name string } } `json:"affected"`
			}
			_ = json.NewDecoder(rc).Decode(&rec)
			rc.Close()
			for i, a := range rec.Affected {
				rep.Packages = append(rep.Packages, inventory.Package{
					Name: a.Package.Name, Version: fmt.Sprintf("1.%d.0", i), Type: eco.typ, Ecosystem: eco.eco,
					PURL: "pkg:" + eco.typ + "/" + a.Package.Name, Locations: []string{"/app"},
				})
			}
			if len(rep.Packages) >= 1000 || (eco.typ == "golang" && len(rep.Packages) >= 500) {
				break
			}
		}
		z.Close()
	}
	rep.Packages = rep.Packages[:1000]
	return rep
}

// BenchmarkMatch1000RealDB matches 1,000 packages against the real
// database file (SQLite) with a warm cache.
func BenchmarkMatch1000RealDB(b *testing.B) {
	db := realDB(b)
	rep := inventory1000(b)
	if _, err := vulnmatch.Match(b.Context(), db, rep, vulnmatch.Options{}); err != nil { // warm
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := vulnmatch.Match(b.Context(), db, rep, vulnmatch.Options{}); err != nil {
			b.Fatal(err)
		}
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
