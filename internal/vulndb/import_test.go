package vulndb

import (
	"archive/zip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestImportRealData imports every data set in the shared data and checks
// the report against counts taken from the files themselves.
func TestImportRealData(t *testing.T) {
	d := sharedData(t)
	path, rep := realDB(t)

	for _, tt := range []struct {
		zip, source string
	}{
		{"osv/Go/all.zip", "osv:Go"},
		{"osv/PyPI/all.zip", "osv:PyPI"},
		{"debian-derived/all.zip", "osv:Debian:12"},
	} {
		raw, _ := zipRecords(t, filepath.Join(d, tt.zip))
		withdrawn := 0
		for _, m := range raw {
			if _, ok := m["withdrawn"]; ok {
				withdrawn++
			}
		}
		s := rep.Source(tt.source)
		if s == nil {
			t.Fatalf("%s: no report for source %s", tt.zip, tt.source)
		}
		if s.Entries != len(raw) || s.Imported != len(raw) || s.Withdrawn != withdrawn {
			t.Errorf("%s: entries/imported/withdrawn = %d/%d/%d, want %d/%d/%d (skipped %v, warnings %q)",
				tt.zip, s.Entries, s.Imported, s.Withdrawn, len(raw), len(raw), withdrawn, s.Skipped, s.Warnings)
		}
	}

	var kev struct {
		Count           int   `json:"count"`
		Vulnerabilities []any `json:"vulnerabilities"`
	}
	readJSON(t, filepath.Join(d, "kev", "known_exploited_vulnerabilities.json"), &kev)
	if s := rep.Source("kev"); s == nil || s.Entries != kev.Count || s.Imported != kev.Count || kev.Count != len(kev.Vulnerabilities) {
		t.Errorf("kev report %+v, file count %d with %d entries", s, kev.Count, len(kev.Vulnerabilities))
	}

	var nvd struct {
		TotalResults    int   `json:"totalResults"`
		Vulnerabilities []any `json:"vulnerabilities"`
	}
	readJSON(t, filepath.Join(d, "nvd", "nvdcve-2.0-subset.json"), &nvd)
	if s := rep.Source("nvd"); s == nil || s.Entries != len(nvd.Vulnerabilities) || s.Imported != nvd.TotalResults {
		t.Errorf("nvd report %+v, file has %d records", s, len(nvd.Vulnerabilities))
	}

	files, _ := filepath.Glob(filepath.Join(d, "alpine-secdb", "v3.*", "*.json"))
	wantPkgs, gotPkgs, gotSources := 0, 0, 0
	for _, f := range files {
		var s struct {
			Packages []any `json:"packages"`
		}
		readJSON(t, f, &s)
		wantPkgs += len(s.Packages)
	}
	for _, s := range rep.Sources {
		if strings.HasPrefix(s.Name, "alpine-secdb:") {
			gotPkgs += s.Entries
			gotSources++
		}
	}
	if gotPkgs != wantPkgs || gotSources != len(files) || len(files) == 0 {
		t.Errorf("alpine-secdb: %d package entries in %d sources, want %d in %d files", gotPkgs, gotSources, wantPkgs, len(files))
	}

	db := openDB(t, path)
	st, err := db.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != len(rep.Sources) {
		t.Errorf("Status has %d sources, the import reported %d", len(st), len(rep.Sources))
	}
	for _, s := range st {
		r := rep.Source(s.Name)
		if r == nil || s.Records != r.Imported || s.FetchedAt.IsZero() || s.Origin != r.Origin {
			t.Errorf("status %+v does not match report %+v", s, r)
		}
	}
	var withdrawn int
	if err := db.sql.QueryRow(`SELECT count(*) FROM advisories WHERE source = 'osv:Go' AND withdrawn = 1`).Scan(&withdrawn); err != nil {
		t.Fatal(err)
	}
	if withdrawn != rep.Source("osv:Go").Withdrawn {
		t.Errorf("%d withdrawn Go advisories stored, report says %d", withdrawn, rep.Source("osv:Go").Withdrawn)
	}
	if db.SchemaVersion() != CurrentSchema || db.Built().IsZero() || db.Age() < 0 {
		t.Errorf("schema %d built %v age %v", db.SchemaVersion(), db.Built(), db.Age())
	}
}

// TestAdvisoriesFromZips looks every record of the OSV zips up by each of
// its affected packages and compares what comes back with the record.
func TestAdvisoriesFromZips(t *testing.T) {
	d := sharedData(t)
	path, _ := realDB(t)
	db := openDB(t, path)
	ctx := t.Context()
	for _, z := range []string{"osv/Go/all.zip", "osv/PyPI/all.zip", "debian-derived/all.zip"} {
		_, advs := zipRecords(t, filepath.Join(d, z))
		checked := 0
		for _, want := range advs {
			for _, af := range want.Affected {
				got, err := db.Advisories(ctx, af.Package.Ecosystem, af.Package.Name)
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(got, func(a *Advisory) bool { return a.ID == want.ID })
				if i < 0 {
					t.Fatalf("%s: Advisories(%q, %q) lacks %s", z, af.Package.Ecosystem, af.Package.Name, want.ID)
				}
				if g, w := mustJSON(t, got[i]), mustJSON(t, want); g != w {
					t.Fatalf("%s %s: stored record differs:\ngot  %.600s\nwant %.600s", z, want.ID, g, w)
				}
				checked++
			}
		}
		if checked == 0 {
			t.Errorf("%s: nothing checked", z)
		}
	}

	// A withdrawn Go record is returned, with its withdrawn time.
	_, goAdvs := zipRecords(t, filepath.Join(d, "osv/Go/all.zip"))
	for _, a := range goAdvs {
		if a.Withdrawn.IsZero() || len(a.Affected) == 0 {
			continue
		}
		got, _ := db.Advisories(ctx, "Go", a.Affected[0].Package.Name)
		i := slices.IndexFunc(got, func(g *Advisory) bool { return g.ID == a.ID })
		if i < 0 || !got[i].Withdrawn.Equal(a.Withdrawn) {
			t.Errorf("withdrawn %s not returned with its withdrawn time", a.ID)
		}
		break
	}

	// PyPI names are looked up normalised (PEP 503).
	got, err := db.Advisories(ctx, "PyPI", "JW_Util")
	if err != nil || len(got) == 0 {
		t.Errorf(`Advisories("PyPI", "JW_Util") = %d advisories, %v; want the jw.util ones`, len(got), err)
	}
	// The ecosystem string is exact.
	if got, _ := db.Advisories(ctx, "Debian", "sudo"); len(got) != 0 {
		t.Errorf(`Advisories("Debian", "sudo") = %d, want none: the records say "Debian:12"`, len(got))
	}
	if got, err := db.Advisories(ctx, "Go", "example.com/no/such/module"); err != nil || len(got) != 0 {
		t.Errorf("unknown package: %d advisories, %v", len(got), err)
	}
}

// TestAlpineSecdb checks every fix listed in the secdb files against the
// advisories stored for it.
func TestAlpineSecdb(t *testing.T) {
	d := sharedData(t)
	path, rep := realDB(t)
	db := openDB(t, path)
	cve := regexp.MustCompile(`^CVE-\d{4}-\d{4,}$`)
	files, _ := filepath.Glob(filepath.Join(d, "alpine-secdb", "v3.*", "*.json"))
	checked, notAffected := 0, 0
	for _, f := range files {
		var s struct {
			DistroVersion string `json:"distroversion"`
			RepoName      string `json:"reponame"`
			Packages      []struct {
				Pkg struct {
					Name     string               `json:"name"`
					Secfixes map[string][]*string `json:"secfixes"`
				} `json:"pkg"`
			} `json:"packages"`
		}
		readJSON(t, f, &s)
		if rep.Source("alpine-secdb:"+s.DistroVersion+"/"+s.RepoName) == nil {
			t.Errorf("%s: no source alpine-secdb:%s/%s", f, s.DistroVersion, s.RepoName)
		}
		eco := "Alpine:" + s.DistroVersion
		for _, p := range s.Packages {
			advs, err := db.Advisories(t.Context(), eco, p.Pkg.Name)
			if err != nil {
				t.Fatal(err)
			}
			for ver, ids := range p.Pkg.Secfixes {
				for _, id := range ids {
					if id == nil || !cve.MatchString(*id) {
						continue
					}
					i := slices.IndexFunc(advs, func(a *Advisory) bool { return a.ID == "ALPINE-"+*id })
					if ver == "0" {
						// Never affected in this release: no range may say
						// it is fixed in "0".
						if i >= 0 && fixedIn(advs[i], p.Pkg.Name, "0") {
							t.Errorf("%s %s: %s has a fix in version 0", eco, p.Pkg.Name, *id)
						}
						notAffected++
						continue
					}
					if i < 0 {
						t.Fatalf("%s %s: no advisory ALPINE-%s (fixed in %s)", eco, p.Pkg.Name, *id, ver)
					}
					if !fixedIn(advs[i], p.Pkg.Name, ver) || !slices.Contains(advs[i].Aliases, *id) {
						t.Fatalf("%s %s: ALPINE-%s does not say fixed in %s: %s", eco, p.Pkg.Name, *id, ver, mustJSON(t, advs[i]))
					}
					checked++
				}
			}
		}
	}
	if checked < 1000 || notAffected == 0 {
		t.Errorf("checked %d fixes and %d not-affected entries; the data has more", checked, notAffected)
	}
	if s := rep.Source("alpine-secdb:v3.3/community"); s == nil || s.Entries != 0 || s.Err != nil {
		t.Errorf(`v3.3/community ("packages": null) = %+v, want an empty source`, s)
	}
}

func fixedIn(a *Advisory, pkg, ver string) bool {
	for _, af := range a.Affected {
		if af.Package.Name != pkg {
			continue
		}
		for _, r := range af.Ranges {
			for _, e := range r.Events {
				if e.Fixed == ver {
					return true
				}
			}
		}
	}
	return false
}

// TestKEVAndCVSS looks up every CVE of the NVD subset in KEV and NVD data,
// imported both from the API envelope and from the per-CVE files.
func TestKEVAndCVSS(t *testing.T) {
	d := sharedData(t)
	path, _ := realDB(t)
	db := openDB(t, path)
	ctx := t.Context()

	var kevFile struct {
		Vulnerabilities []kevEntry `json:"vulnerabilities"`
	}
	readJSON(t, filepath.Join(d, "kev", "known_exploited_vulnerabilities.json"), &kevFile)
	kevByCVE := map[string]kevEntry{}
	for _, e := range kevFile.Vulnerabilities {
		kevByCVE[e.CveID] = e
	}
	var nvdFile struct {
		Vulnerabilities []struct {
			CVE struct {
				ID      string                       `json:"id"`
				Metrics map[string][]json.RawMessage `json:"metrics"`
			} `json:"cve"`
		} `json:"vulnerabilities"`
	}
	readJSON(t, filepath.Join(d, "nvd", "nvdcve-2.0-subset.json"), &nvdFile)

	// The same records from the fkie-cad per-CVE layout, in another database.
	perCVE := filepath.Join(t.TempDir(), "vulndb.sqlite")
	rep, err := Import(ctx, perCVE, []string{filepath.Join(d, "nvd", "fkie-cad-per-cve")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Source("nvd"); n == nil || n.Imported != len(nvdFile.Vulnerabilities) {
		t.Errorf("per-CVE import: %+v, want %d CVEs", rep.Sources, len(nvdFile.Vulnerabilities))
	}
	db2 := openDB(t, perCVE)

	for _, v := range nvdFile.Vulnerabilities {
		id := v.CVE.ID
		k, err := db.KEV(ctx, strings.ToLower(id))
		if err != nil || k == nil {
			t.Fatalf("KEV(%s) = %v, %v", id, k, err)
		}
		want := kevByCVE[id]
		if k.CVE != id || k.VendorProject != want.VendorProject || k.Product != want.Product ||
			k.DateAdded != want.DateAdded || k.KnownRansomware != (want.KnownRansomwareCampaignUse == "Known") {
			t.Errorf("KEV(%s) = %+v, file says %+v", id, k, want)
		}
		nMetrics := 0
		for _, ms := range v.CVE.Metrics {
			nMetrics += len(ms)
		}
		got, err := db.CVSS(ctx, id)
		if err != nil || len(got) != nMetrics || nMetrics == 0 {
			t.Errorf("CVSS(%s) = %d metrics, %v; the record has %d", id, len(got), err, nMetrics)
		}
		got2, err := db2.CVSS(ctx, id)
		if err != nil || mustJSON(t, got2) != mustJSON(t, got) {
			t.Errorf("CVSS(%s) from the per-CVE files = %+v, from the API file %+v (%v)", id, got2, got, err)
		}
	}

	for _, tt := range []struct {
		cve   string
		first CVSS
		n     int
	}{
		{"CVE-2020-11651", CVSS{"3.1", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL", "nvd@nist.gov"}, 3},
		{"CVE-2022-33891", CVSS{"3.1", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8, "HIGH", "nvd@nist.gov"}, 2},
		// Awaiting analysis: only the CNA's (Secondary) score.
		{"CVE-2025-24016", CVSS{"3.1", "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:H/A:H", 9.9, "CRITICAL", "security-advisories@github.com"}, 1},
	} {
		got, err := db.CVSS(ctx, tt.cve)
		if err != nil || len(got) != tt.n || got[0] != tt.first {
			t.Errorf("CVSS(%s) = %+v, %v; want %d metrics starting with %+v", tt.cve, got, err, tt.n, tt.first)
		}
	}
	// v2 comes last, with the severity NVD keeps outside cvssData.
	if got, _ := db.CVSS(ctx, "CVE-2020-11651"); got[2] != (CVSS{"2.0", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5, "HIGH", "nvd@nist.gov"}) {
		t.Errorf("CVSS v2 of CVE-2020-11651 = %+v", got[2])
	}

	for _, e := range kevFile.Vulnerabilities {
		if e.KnownRansomwareCampaignUse != "Known" {
			continue
		}
		if k, err := db.KEV(ctx, e.CveID); err != nil || k == nil || !k.KnownRansomware {
			t.Errorf("KEV(%s) = %+v, %v; want known ransomware use", e.CveID, k, err)
		}
		break
	}
	if k, err := db.KEV(ctx, "CVE-1999-0001"); k != nil || err != nil {
		t.Errorf("KEV of a CVE not in the catalog = %+v, %v; want nil, nil", k, err)
	}
	if c, err := db.CVSS(ctx, "CVE-1999-0001"); len(c) != 0 || err != nil {
		t.Errorf("CVSS of an unknown CVE = %+v, %v", c, err)
	}
	if e, err := db.EPSS(ctx, "CVE-2020-11651"); e != nil || err != nil {
		t.Errorf("EPSS without EPSS data = %+v, %v; want nil, nil", e, err)
	}
}

// TestEPSS imports a synthetic EPSS file, plain and gzip-compressed.
func TestEPSS(t *testing.T) {
	ctx := t.Context()
	rows := syntheticEPSS()
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		in := writeEPSS(t, dir, rows, gz)
		// One bad row: the rest is still imported.
		path := filepath.Join(dir, "vulndb.sqlite")
		rep, err := Import(ctx, path, []string{in}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s := rep.Source("epss")
		if s == nil || s.Imported != len(rows) || s.Entries != len(rows)+1 || s.Skipped["invalid row"] != 1 {
			t.Fatalf("gz=%v: report %+v, want %d imported and one invalid row", gz, s, len(rows))
		}
		db := openDB(t, path)
		for _, r := range rows {
			e, err := db.EPSS(ctx, r.CVE)
			want := r
			want.Date = "2025-03-14"
			if err != nil || e == nil || *e != want {
				t.Fatalf("EPSS(%s) = %+v, %v; want %+v", r.CVE, e, err, want)
			}
		}
		st, _ := db.Status(ctx)
		if len(st) != 1 || st[0].Name != "epss" || st[0].UpstreamDate.Format("2006-01-02") != "2025-03-14" {
			t.Errorf("status %+v", st)
		}
	}
}

func openDB(t testing.TB, path string) *DB {
	t.Helper()
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func readJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeZip writes a zip of the given entries (name → content) at path.
func writeZip(t testing.TB, path string, entries [][2]string, method uint16) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	zw := zip.NewWriter(f)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: e[0], Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(e[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// ctxCancelledBy returns a context cancelled by the first Progress.Add.
type cancelOnAdd struct {
	cancel context.CancelFunc
	after  int64
	seen   int64
}

func (c *cancelOnAdd) Start(string, int64) {}
func (c *cancelOnAdd) Add(_ string, n int64) {
	c.seen += n
	if c.seen >= c.after {
		c.cancel()
	}
}
func (c *cancelOnAdd) Done(string, error) {}

// TestImportOSVDir imports a directory of OSV files twice: the second
// import replaces what the first one stored under the same source.
func TestImportOSVDir(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	rec := func(id, pkg string) string {
		return `{"id":"` + id + `","modified":"2024-01-0` + id[len(id)-1:] + `T00:00:00Z","affected":[{"package":{"ecosystem":"npm","name":"` + pkg +
			`"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.0.0"}]}]}]}`
	}
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.MkdirAll(filepath.Join(dir, ".git"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "GHSA-1.json"), []byte(rec("GHSA-1", "left-pad")), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "GHSA-2.json"), []byte(rec("GHSA-2", "lodash")), 0o644)
	// The same ID again, now for another package: it replaces GHSA-1.
	os.WriteFile(filepath.Join(dir, "a", "b", "GHSA-1-again.json"), []byte(rec("GHSA-1", "express")), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "broken.json"), []byte(`{"id":"GHSA-3","affected":[{"ranges":"x"}]}`), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.yaml"), []byte("a: b\n"), 0o644)
	os.WriteFile(filepath.Join(dir, ".git", "GHSA-9.json"), []byte(rec("GHSA-9", "hidden")), 0o644)

	path := filepath.Join(t.TempDir(), "vulndb.sqlite")
	rep, err := Import(ctx, path, []string{dir}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	name := "osv-dir:" + dir
	s := rep.Source(name)
	if s == nil || s.Entries != 4 || s.Imported != 2 || s.Skipped["invalid OSV record"] != 1 {
		t.Fatalf("report %+v, want 4 files, 2 advisories, 1 invalid", s)
	}
	if !strings.Contains(strings.Join(s.Warnings, "\n"), "duplicate advisory GHSA-1") ||
		!strings.Contains(strings.Join(s.Warnings, "\n"), filepath.Join("a", "broken.json")) {
		t.Errorf("warnings %q", s.Warnings)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "notes.yaml") {
		t.Errorf("run warnings %q, want one about notes.yaml", rep.Warnings)
	}
	db := openDB(t, path)
	for pkg, want := range map[string]int{"left-pad": 0, "express": 1, "lodash": 1, "hidden": 0} {
		if got, err := db.Advisories(ctx, "npm", pkg); err != nil || len(got) != want {
			t.Errorf("Advisories(npm, %s) = %d, %v; want %d", pkg, len(got), err, want)
		}
	}

	os.Remove(filepath.Join(dir, "a", "b", "GHSA-2.json"))
	if _, err := Import(ctx, path, []string{dir}, Options{}); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, path)
	if got, _ := db.Advisories(ctx, "npm", "lodash"); len(got) != 0 {
		t.Errorf("lodash still has %d advisories after its file was removed and the directory imported again", len(got))
	}
	st, _ := db.Status(ctx)
	if len(st) != 1 || st[0].Name != name || st[0].Records != 1 {
		t.Errorf("status %+v", st)
	}
}

// TestAdvisoriesDedupe stores one advisory ID from two sources: a lookup
// returns it once, the most recently modified copy.
func TestAdvisoriesDedupe(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	rec := func(modified, summary string) string {
		return `{"id":"GHSA-x","modified":"` + modified + `","summary":"` + summary + `","affected":[` +
			`{"package":{"ecosystem":"npm","name":"a"}},{"package":{"ecosystem":"Maven","name":"g:a"}}]}`
	}
	writeZip(t, filepath.Join(dir, "npm.zip"), [][2]string{{"GHSA-x.json", rec("2024-06-01T00:00:00Z", "newer")}}, 8)
	writeZip(t, filepath.Join(dir, "maven.zip"), [][2]string{{"GHSA-x.json", rec("2024-01-01T00:00:00Z", "older")}}, 8)
	path := filepath.Join(t.TempDir(), "vulndb.sqlite")
	rep, err := Import(ctx, path, []string{filepath.Join(dir, "npm.zip"), filepath.Join(dir, "maven.zip")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Each zip's only record names both npm and Maven, so neither zip has
	// one ecosystem common to all its records: the sources are named by file.
	if len(rep.Sources) != 2 || rep.Sources[0].Name != "osv-zip:"+filepath.Join(dir, "npm.zip") || rep.Sources[1].Name == rep.Sources[0].Name {
		t.Fatalf("sources %q and %q", rep.Sources[0].Name, rep.Sources[1].Name)
	}
	db := openDB(t, path)
	for _, q := range [][2]string{{"npm", "a"}, {"Maven", "g:a"}} {
		got, err := db.Advisories(ctx, q[0], q[1])
		if err != nil || len(got) != 1 || got[0].Summary != "newer" {
			t.Errorf("Advisories(%s, %s) = %s, %v; want the newer copy once", q[0], q[1], mustJSON(t, got), err)
		}
	}
}
