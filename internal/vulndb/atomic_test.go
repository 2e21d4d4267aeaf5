package vulndb

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// syntheticEPSS returns EPSS rows for the CVEs of the NVD subset. The
// scores are made up: this is synthetic test input in FIRST's file format,
// not EPSS data.
func syntheticEPSS() []EPSS {
	cves := []string{"CVE-2020-0601", "CVE-2020-11651", "CVE-2020-11652", "CVE-2020-11978", "CVE-2020-7247", "CVE-2022-33891", "CVE-2025-24016"}
	var rows []EPSS
	for i, c := range cves {
		rows = append(rows, EPSS{CVE: c, Score: float64(i+1) / 10, Percentile: 0.5 + float64(i)/20})
	}
	return rows
}

// writeEPSS writes rows in the upstream layout (comment line, header,
// rows) plus one invalid row, as epss.csv or epss.csv.gz in dir.
func writeEPSS(t testing.TB, dir string, rows []EPSS, gz bool) string {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("#model_version:v2025.03.14,score_date:2025-03-14T00:00:00+0000\ncve,epss,percentile\n")
	for i, r := range rows {
		fmt.Fprintf(&b, "%s,%g,%g\n", r.CVE, r.Score, r.Percentile)
		if i == 2 {
			b.WriteString("CVE-2020-99999,1.5,0.5\n") // score out of range
		}
	}
	name, data := "epss.csv", b.Bytes()
	if gz {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(data)
		zw.Close()
		name, data = "epss.csv.gz", z.Bytes()
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileHash(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%x", sha256.Sum256(b))
}

// assertUntouched checks that the database at path still has the hash
// before, that its directory holds nothing but it, and that it opens and
// answers.
func assertUntouched(t *testing.T, path, before string) {
	t.Helper()
	if after := fileHash(t, path); after != before {
		t.Fatalf("database changed: sha256 %s, was %s", after, before)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range ents {
		if e.Name() != filepath.Base(path) {
			t.Errorf("left behind in the database directory: %s", e.Name())
		}
	}
	db := openDB(t, path)
	if got, err := db.Advisories(t.Context(), "Go", "stdlib"); err != nil || len(got) == 0 {
		t.Errorf("Advisories(Go, stdlib) after a failed import = %d, %v", len(got), err)
	}
}

// TestImportAtomic interrupts imports in several ways and checks that the
// previous database is left byte-for-byte as it was.
func TestImportAtomic(t *testing.T) {
	d := sharedData(t)
	base, _ := realDB(t)
	goZip := filepath.Join(d, "osv", "Go", "all.zip")
	kevJSON := filepath.Join(d, "kev", "known_exploited_vulnerabilities.json")

	t.Run("cancelled mid-zip", func(t *testing.T) {
		path := copyDB(t, base)
		before := fileHash(t, path)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		// Cancel once half of the Debian zip has been read.
		fi, _ := os.Stat(filepath.Join(d, "debian-derived", "all.zip"))
		p := &cancelOnAdd{cancel: cancel, after: fi.Size() / 2}
		_, err := Import(ctx, path, []string{kevJSON, filepath.Join(d, "debian-derived", "all.zip")}, Options{Progress: p})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Import = %v, want context.Canceled", err)
		}
		if p.seen == 0 {
			t.Fatal("the import was not under way when cancelled")
		}
		assertUntouched(t, path, before)
	})

	t.Run("cancelled before start", func(t *testing.T) {
		path := copyDB(t, base)
		before := fileHash(t, path)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := Import(ctx, path, []string{kevJSON}, Options{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Import = %v, want context.Canceled", err)
		}
		assertUntouched(t, path, before)
	})

	t.Run("truncated zip", func(t *testing.T) {
		path := copyDB(t, base)
		before := fileHash(t, path)
		b, err := os.ReadFile(goZip)
		if err != nil {
			t.Fatal(err)
		}
		bad := filepath.Join(t.TempDir(), "all.zip")
		os.WriteFile(bad, b[:len(b)/2], 0o644)
		// The KEV file before it is fine; nothing of the run may stay.
		_, err = Import(t.Context(), path, []string{kevJSON, bad}, Options{})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("Import of a truncated zip = %v, want an error naming %s", err, bad)
		}
		assertUntouched(t, path, before)
	})

	t.Run("damaged entry", func(t *testing.T) {
		path := copyDB(t, base)
		before := fileHash(t, path)
		bad := filepath.Join(t.TempDir(), "all.zip")
		rec := `{"id":"TEST-0001","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"}}]}`
		writeZip(t, bad, [][2]string{{"TEST-0001.json", rec}, {"TEST-0002.json", strings.Replace(rec, "0001", "0002", 1)}}, 0)
		// Flip a byte of the second entry's stored data: its CRC fails.
		b, _ := os.ReadFile(bad)
		i := bytes.LastIndex(b, []byte("example.com"))
		b[i] ^= 0xff
		os.WriteFile(bad, b, 0o644)
		_, err := Import(t.Context(), path, []string{bad}, Options{})
		if err == nil || !strings.Contains(err.Error(), "TEST-0002.json") || !strings.Contains(err.Error(), bad) {
			t.Fatalf("Import = %v, want an error naming %s and the entry", err, bad)
		}
		assertUntouched(t, path, before)
	})

	t.Run("unrecognised file", func(t *testing.T) {
		path := copyDB(t, base)
		before := fileHash(t, path)
		bad := filepath.Join(t.TempDir(), "notes.json")
		os.WriteFile(bad, []byte(`{"hello": "world"}`), 0o644)
		_, err := Import(t.Context(), path, []string{bad}, Options{})
		if !errors.Is(err, errUnrecognised) || !strings.Contains(err.Error(), bad) {
			t.Fatalf("Import = %v, want an unrecognised-format error naming the file", err)
		}
		assertUntouched(t, path, before)
	})
}

// TestImportBadInput feeds damaged or malformed sources to Import.
func TestImportBadInput(t *testing.T) {
	good := `{"id":"TEST-%d","modified":"2024-01-01T00:00:00Z","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]}]}]}`
	rec := func(i int) string { return fmt.Sprintf(good, i) }
	for _, tt := range []struct {
		name     string
		file     string // file name in the temporary directory
		content  func(t *testing.T, p string)
		wantErr  string // substring of the error; "" means success
		source   string
		imported int
		skipped  map[string]int
		warning  string // substring of a warning
	}{{
		name: "one bad entry in a zip", file: "all.zip",
		content: func(t *testing.T, p string) {
			writeZip(t, p, [][2]string{
				{"TEST-1.json", rec(1)},
				{"BAD-1.json", `{"modified":"2024-01-01T00:00:00Z","affected":[]}`},
				{"BAD-2.json", `{"id":"BAD-2","affected":"not a list"}`},
				{"BAD-3.json", `{"id":"BAD-3","modified":"2024-01-01T00:00:00Z","affected":[{"ranges":[{"type":"SEMVER"}]}]}`},
				{"BAD-4.json", `{"id":"BAD-4",`},
				{"README.txt", "not a record"},
				{"TEST-2.json", rec(2)},
			}, 8)
		},
		source: "osv:Go", imported: 2,
		skipped: map[string]int{"invalid OSV record": 4, "not a .json entry": 1},
		warning: "BAD-1.json",
	}, {
		name: "zip of nothing valid", file: "all.zip",
		content: func(t *testing.T, p string) {
			writeZip(t, p, [][2]string{{"BAD-1.json", `{"id": 7}`}}, 8)
		},
		wantErr: "no valid OSV record",
	}, {
		name: "KEV of the wrong shape", file: "kev.json",
		content: func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"catalogVersion":"1","vulnerabilities":{"cveID":"CVE-2020-0001"}}`), 0o644)
		},
		wantErr: "not a KEV catalog",
	}, {
		name: "KEV with a bad entry", file: "kev.json",
		content: func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"catalogVersion":"1","count":3,"vulnerabilities":[
				{"cveID":"CVE-2020-0001","dateAdded":"2021-11-03","knownRansomwareCampaignUse":"Known"},
				{"cveID":"not-a-cve"},
				{"cveID":42}]}`), 0o644)
		},
		source: "kev", imported: 1,
		skipped: map[string]int{"invalid cveID": 1, "invalid entry": 1},
		warning: "vulnerabilities[1]",
	}, {
		name: "secdb with null packages", file: "community.json",
		content: func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"distroversion":"v3.3","reponame":"community","packages":null}`), 0o644)
		},
		source: "alpine-secdb:v3.3/community", imported: 0,
	}, {
		name: "secdb with bad values", file: "main.json",
		content: func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"distroversion":"v3.9","reponame":"main","packages":[
				{"pkg":{"name":"a","secfixes":{"1.0-r0":"CVE-2020-0001"}}},
				{"pkg":{"name":"b","secfixes":{"1.0-r0":null,"0":["CVE-2020-0003"],"1.1-r0":[null,"CVE-2020-0002 XSA-1","junk"]}}},
				{"pkg":null},
				"not an object"]}`), 0o644)
		},
		source: "alpine-secdb:v3.9/main", imported: 1,
		skipped: map[string]int{"invalid secfixes entry": 1, "invalid package entry": 2, "unrecognised identifier": 1,
			"not affected (secfixes version 0)": 1},
	}, {
		name: "NVD envelope with a bad record", file: "nvd.json",
		content: func(t *testing.T, p string) {
			os.WriteFile(p, []byte(`{"resultsPerPage":2,"startIndex":0,"totalResults":2,"vulnerabilities":[
				{"cve":{"id":"CVE-2020-0001","lastModified":"2024-01-01T00:00:00.000","metrics":{"cvssMetricV31":[
					{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N","baseScore":11}}]}}},
				{"cve":{"id":"nope"}}]}`), 0o644)
		},
		source: "nvd", imported: 1,
		skipped: map[string]int{"invalid CVE record": 1, "invalid CVSS metric": 1},
	}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, tt.file)
			tt.content(t, in)
			path := filepath.Join(t.TempDir(), "vulndb.sqlite")
			rep, err := Import(t.Context(), path, []string{in}, Options{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), in) {
					t.Fatalf("Import = %v, want an error naming %s with %q", err, in, tt.wantErr)
				}
				if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("a failed first import left a database behind: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Source(tt.source)
			if s == nil {
				t.Fatalf("no source %s in %+v", tt.source, rep.Sources)
			}
			if s.Imported != tt.imported || fmt.Sprint(s.Skipped) != fmt.Sprint(tt.skipped) {
				t.Errorf("imported %d, skipped %v; want %d, %v (warnings %q)", s.Imported, s.Skipped, tt.imported, tt.skipped, s.Warnings)
			}
			if tt.warning != "" && !strings.Contains(strings.Join(s.Warnings, "\n"), tt.warning) {
				t.Errorf("warnings %q do not name %q", s.Warnings, tt.warning)
			}
		})
	}
}

// TestOpen covers Open's errors and the schema version check.
func TestOpen(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.sqlite")
	_, err := Open(missing)
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "vigil db update") {
		t.Errorf("Open(missing) = %v", err)
	}

	other := filepath.Join(dir, "other.sqlite")
	os.WriteFile(other, []byte("just some text, long enough to fill a SQLite header of one hundred bytes......................."), 0o644)
	if _, err := Open(other); !errors.Is(err, errNotVigilDB) || !strings.Contains(err.Error(), other) {
		t.Errorf("Open(not a database) = %v", err)
	}
	// A SQLite file that is not ours is never replaced by a build.
	foreign := filepath.Join(dir, "foreign.sqlite")
	execSQL(t, foreign, `CREATE TABLE t (x)`)
	before := fileHash(t, foreign)
	kev := filepath.Join(dir, "kev.json")
	os.WriteFile(kev, []byte(`{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2020-0001"}]}`), 0o644)
	if _, err := Import(t.Context(), foreign, []string{kev}, Options{}); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Import over a foreign SQLite file = %v, want a refusal", err)
	}
	if fileHash(t, foreign) != before {
		t.Error("the foreign file was changed")
	}

	// Another schema version: Open explains, Import rebuilds.
	old := filepath.Join(dir, "old.sqlite")
	if _, err := Import(t.Context(), old, []string{kev}, Options{}); err != nil {
		t.Fatal(err)
	}
	execSQL(t, old, `UPDATE meta SET value = '0' WHERE key = 'schema_version'`)
	var se *SchemaError
	if _, err := Open(old); !errors.As(err, &se) || se.Version != 0 || !strings.Contains(err.Error(), "vigil db update") || !strings.Contains(err.Error(), old) {
		t.Errorf("Open(old schema) = %v", err)
	}
	rep, err := Import(t.Context(), old, []string{kev}, Options{})
	if err != nil || len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "schema version 0") {
		t.Fatalf("Import over an old schema = %v, warnings %q", err, rep.Warnings)
	}
	if db := openDB(t, old); db.SchemaVersion() != CurrentSchema {
		t.Errorf("rebuilt schema %d", db.SchemaVersion())
	}
}

// execSQL runs statements on a database file, read-write.
func execSQL(t testing.TB, path string, stmts ...string) {
	t.Helper()
	d, err := dsn(path, "")
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", d)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// TestExportImport round-trips the real database through Export and an
// import of the export, which replaces what was there.
func TestExportImport(t *testing.T) {
	base, _ := realDB(t)
	ctx := t.Context()
	out := filepath.Join(t.TempDir(), "export.vigildb")
	if err := Export(ctx, base, out); err != nil {
		t.Fatal(err)
	}
	if f, _, err := detectFile(out); err != nil || f != formatDB {
		t.Fatalf("detect(export) = %v, %v", f, err)
	}

	// The target has EPSS data the export lacks: it is replaced; the
	// EPSS file named after the export is applied on top.
	dir := t.TempDir()
	target := filepath.Join(dir, "vulndb.sqlite")
	epss := writeEPSS(t, dir, syntheticEPSS(), true)
	if _, err := Import(ctx, target, []string{epss}, Options{}); err != nil {
		t.Fatal(err)
	}
	kevOnly := filepath.Join(t.TempDir(), "kev.json")
	os.WriteFile(kevOnly, []byte(`{"catalogVersion":"1","vulnerabilities":[{"cveID":"CVE-2000-0001"}]}`), 0o644)
	if _, err := Import(ctx, target, []string{out, kevOnly}, Options{}); err != nil {
		t.Fatal(err)
	}
	got, want := openDB(t, target), openDB(t, base)
	if e, _ := got.EPSS(ctx, "CVE-2020-11651"); e != nil {
		t.Errorf("EPSS survived the import of an export: %+v", e)
	}
	if k, _ := got.KEV(ctx, "CVE-2000-0001"); k == nil {
		t.Error("the KEV file named after the export was not applied")
	}
	if k, _ := got.KEV(ctx, "CVE-2020-11651"); k != nil {
		t.Error("the KEV file named after the export did not replace the exported KEV data")
	}
	for _, q := range [][2]string{{"Go", "stdlib"}, {"Debian:12", "openssl"}, {"PyPI", "django"}, {"Alpine:v3.11", "openssl"}} {
		a, _ := got.Advisories(ctx, q[0], q[1])
		b, _ := want.Advisories(ctx, q[0], q[1])
		if len(a) == 0 || mustJSON(t, a) != mustJSON(t, b) {
			t.Errorf("Advisories(%s, %s): %d after the round trip, %d before", q[0], q[1], len(a), len(b))
		}
	}

	// A damaged export is refused and changes nothing.
	b, _ := os.ReadFile(out)
	bad := filepath.Join(t.TempDir(), "bad.vigildb")
	os.WriteFile(bad, b[:len(b)/3], 0o644)
	before := fileHash(t, target)
	if _, err := Import(ctx, target, []string{bad}, Options{}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Import of a damaged export = %v", err)
	}
	if fileHash(t, target) != before {
		t.Error("a failed import changed the database")
	}
	if err := Export(ctx, target, target); err == nil {
		t.Error("Export onto the database itself succeeded")
	}
	if err := Export(ctx, filepath.Join(dir, "missing"), filepath.Join(dir, "x")); err == nil {
		t.Error("Export of a missing database succeeded")
	}
}
