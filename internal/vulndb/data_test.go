package vulndb

import (
	"archive/zip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// sharedData returns /work/shared/data as CI lays it out: ../shared/data
// from the repository root, or $VIGIL_SHARED_DATA. Outside CI a missing
// copy skips the test; under CI=true it fails it.
func sharedData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VIGIL_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "osv", "Go", "all.zip")); err != nil {
		vigiltest.Unavailable(t, "needs the shared vulnerability data at %s: %v", dir, err)
	}
	return dir
}

// realInputs lists every vulnerability data set in the shared data.
func realInputs(t testing.TB) []string {
	d := sharedData(t)
	return []string{
		filepath.Join(d, "osv", "Go", "all.zip"),
		filepath.Join(d, "osv", "PyPI", "all.zip"),
		filepath.Join(d, "debian-derived", "all.zip"),
		filepath.Join(d, "kev", "known_exploited_vulnerabilities.json"),
		filepath.Join(d, "nvd", "nvdcve-2.0-subset.json"),
		filepath.Join(d, "alpine-secdb"),
	}
}

var (
	realOnce   sync.Once
	realPath   string
	realReport *Report
	realErr    error
)

// realDB imports all of the shared data once per test binary and returns
// the database file and the import's report. Tests must not modify the
// file: copy it with copyDB.
func realDB(t testing.TB) (string, *Report) {
	t.Helper()
	inputs := realInputs(t)
	realOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vulndb-real-")
		if err != nil {
			realErr = err
			return
		}
		realPath = filepath.Join(dir, "vulndb.sqlite")
		realReport, realErr = Import(context.Background(), realPath, inputs, Options{})
	})
	if realErr != nil {
		t.Fatalf("importing the shared data: %v", realErr)
	}
	return realPath, realReport
}

// copyDB copies the database at src into a new temporary directory.
func copyDB(t testing.TB, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "vulndb.sqlite")
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// zipRecords decodes every entry of an OSV zip as a generic map and as an
// Advisory, independently of the importer.
func zipRecords(t testing.TB, path string) (raw []map[string]any, advs []*Advisory) {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: %v", path, f.Name, err)
		}
		a := new(Advisory)
		if err := json.Unmarshal(b, a); err != nil {
			t.Fatalf("%s %s: %v", path, f.Name, err)
		}
		raw = append(raw, m)
		advs = append(advs, a)
	}
	return raw, advs
}

func TestMain(m *testing.M) {
	code := m.Run()
	if realPath != "" {
		os.RemoveAll(filepath.Dir(realPath))
	}
	os.Exit(code)
}
