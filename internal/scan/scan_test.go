package scan_test

import (
	"archive/zip"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/scan"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

var (
	dbOnce sync.Once
	dbPath string
	dbErr  error
)

// realDB imports every real data set in the shared data once per test
// binary and opens it.
func realDB(t testing.TB) *vulndb.DB {
	t.Helper()
	data := vigiltest.SharedData(t)
	dbOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-scan-db-*")
		if err != nil {
			dbErr = err
			return
		}
		dbPath = filepath.Join(dir, "vulndb.sqlite")
		_, dbErr = vulndb.Import(t.Context(), dbPath, []string{
			filepath.Join(data, "osv", "Go", "all.zip"),
			filepath.Join(data, "osv", "PyPI", "all.zip"),
			filepath.Join(data, "debian-derived", "all.zip"),
			filepath.Join(data, "kev", "known_exploited_vulnerabilities.json"),
			filepath.Join(data, "nvd", "nvdcve-2.0-subset.json"),
			filepath.Join(data, "alpine-secdb"),
		}, vulndb.DefaultOptions())
	})
	if dbErr != nil {
		t.Fatalf("importing the shared data: %v", dbErr)
	}
	db, err := vulndb.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func scanRef(t testing.TB, ref string, db vulnmatch.Source) *scan.Result {
	t.Helper()
	r, err := artifact.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	res, err := scan.Run(t.Context(), r, scan.Options{Artifact: artifact.DefaultOptions(), DB: db})
	if err != nil {
		t.Fatalf("scanning %s: %v", ref, err)
	}
	if res.Inventory.Partial {
		t.Fatalf("partial inventory of %s: %+v", ref, res.Inventory.Errors)
	}
	return res
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// osvRecord reads one advisory from a real OSV zip.
func osvRecord(t *testing.T, zipPath, id string) vulndb.Advisory {
	t.Helper()
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	f, err := z.Open(id + ".json")
	if err != nil {
		t.Fatalf("%s not in %s: %v", id, zipPath, err)
	}
	defer f.Close()
	var a vulndb.Advisory
	if err := json.NewDecoder(f).Decode(&a); err != nil {
		t.Fatal(err)
	}
	return a
}

// distInfo writes a pip-installed (not OS-owned) distribution.
func distInfo(t *testing.T, root, name, version string) {
	t.Helper()
	dir := filepath.Join(root, "usr/local/lib/python3.11/dist-packages", name+"-"+version+".dist-info")
	writeFile(t, filepath.Join(dir, "METADATA"), "Metadata-Version: 2.1\nName: "+name+"\nVersion: "+version+"\n")
}

// TestKEVFirst: salt at a version the real PyPI advisories list as
// vulnerable to CVE-2020-11651 and CVE-2020-11652 (both in CISA KEV), next
// to a package with an ordinary advisory. The KEV findings carry KEV and NVD
// data and sort first; the fixed version of salt has no finding.
func TestKEVFirst(t *testing.T) {
	db := realDB(t)
	data := vigiltest.SharedData(t)
	adv := osvRecord(t, filepath.Join(data, "osv", "PyPI", "all.zip"), "PYSEC-2020-102")
	// The last version the advisory lists as affected, and its first fix.
	vulnerable := adv.Affected[0].Versions[len(adv.Affected[0].Versions)-1]
	fixed := ""
	for _, e := range adv.Affected[0].Ranges[0].Events {
		if e.Fixed != "" {
			fixed = e.Fixed
		}
	}

	root := t.TempDir()
	distInfo(t, root, "salt", vulnerable)
	distInfo(t, root, "pyspark", "3.2.1") // PYSEC-2022-236 (CVE-2022-33891, in KEV too)
	distInfo(t, root, "jinja2", "2.10")   // ordinary advisories, not in KEV
	res := scanRef(t, "dir:"+root, db)

	if len(res.Findings) == 0 {
		t.Fatal("no findings")
	}
	nvd := nvdScores(t, filepath.Join(data, "nvd", "nvdcve-2.0-subset.json"))
	var saltKEV []string
	seenNonKEV := false
	for _, f := range res.Findings {
		if f.KEV == nil {
			seenNonKEV = true
			continue
		}
		if seenNonKEV {
			t.Errorf("KEV finding %s sorted after a non-KEV finding", f.ID)
		}
		if f.Package.Name != "salt" {
			continue
		}
		saltKEV = append(saltKEV, f.ID)
		// PYSEC records carry no CVSS vector: the score is NVD's, where
		// the NVD subset has the CVE.
		if want, ok := nvd[f.CVE]; ok && (f.CVSS == nil || f.CVSS.BaseScore != want) {
			t.Errorf("%s (%s): CVSS %+v, want NVD's base score %.1f", f.ID, f.CVE, f.CVSS, want)
		}
		if (f.ID == "PYSEC-2020-102" || f.ID == "PYSEC-2020-103") && !slices.Contains(f.FixedVersions, fixed) {
			t.Errorf("%s: fixed versions %v lack %s", f.ID, f.FixedVersions, fixed)
		}
	}
	for _, id := range []string{"PYSEC-2020-102", "PYSEC-2020-103"} {
		if !slices.Contains(saltKEV, id) {
			t.Errorf("salt %s: no KEV-flagged %s; KEV findings %v", vulnerable, id, saltKEV)
		}
	}
	if !seenNonKEV {
		t.Error("jinja2 2.10 produced no ordinary finding to sort against")
	}

	// The first fixed version is clean.
	root2 := t.TempDir()
	distInfo(t, root2, "salt", fixed)
	for _, f := range scanRef(t, "dir:"+root2, db).Findings {
		if f.ID == "PYSEC-2020-102" || f.ID == "PYSEC-2020-103" {
			t.Errorf("salt %s still reported vulnerable to %s", fixed, f.ID)
		}
	}
}

// TestDebianAgainstDpkg matches the real bookworm rootfs against the Debian
// fixes and checks every decision with dpkg's own version comparison.
func TestDebianAgainstDpkg(t *testing.T) {
	db := realDB(t)
	rootfs := vigiltest.BookwormRootfs(t)
	vigiltest.RequireCommand(t, "dpkg")
	res := scanRef(t, "dir:"+rootfs, db)

	got := map[string]bool{}
	for _, f := range res.Findings {
		if f.Package.Type != "deb" {
			t.Errorf("non-Debian finding %s for %s in a Debian rootfs", f.ID, f.Package.PURL)
			continue
		}
		if f.Ecosystem != "Debian:12" || f.MatchedName != f.Package.SourceName {
			t.Errorf("%s matched %s in %s, want source package %s in Debian:12", f.ID, f.MatchedName, f.Ecosystem, f.Package.SourceName)
		}
		got[f.ID+" "+f.Package.Name] = true
	}

	// The oracle: every Debian record for an installed source package,
	// decided by `dpkg --compare-versions`.
	want := map[string]bool{}
	checked := 0
	for _, p := range res.Inventory.Packages {
		advs, err := db.Advisories(t.Context(), "Debian:12", p.SourceName)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range advs {
			for _, af := range a.Affected {
				for _, r := range af.Ranges {
					for _, e := range r.Events {
						if e.Fixed == "" {
							continue
						}
						checked++
						if exec.Command("dpkg", "--compare-versions", p.SourceVersion, "lt", e.Fixed).Run() == nil {
							want[a.ID+" "+p.Name] = true
						}
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no Debian advisory concerns the rootfs; the oracle checked nothing")
	}
	for k := range want {
		if !got[k] {
			t.Errorf("dpkg says affected, Vigil missed: %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("Vigil reports, dpkg says fixed: %s", k)
		}
	}
	t.Logf("%d (advisory, installed package) pairs decided; %d affected", checked, len(want))
}

// TestAlpine builds an Alpine installed database with versions from the
// real secdb: one package below a fix, one at it.
func TestAlpine(t *testing.T) {
	db := realDB(t)
	data := vigiltest.SharedData(t)
	var secdb struct {
		Distroversion string `json:"distroversion"`
		Packages      []struct {
			Pkg struct {
				Name     string              `json:"name"`
				Secfixes map[string][]string `json:"secfixes"`
			} `json:"pkg"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(data, "alpine-secdb", "v3.11", "main.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &secdb); err != nil {
		t.Fatal(err)
	}
	// The first package with exactly one fixed version listing CVEs.
	var name, fixed string
	var cves []string
	for _, p := range secdb.Packages {
		if len(p.Pkg.Secfixes) != 1 {
			continue
		}
		for v, ids := range p.Pkg.Secfixes {
			if v != "0" && len(ids) > 0 && strings.HasPrefix(ids[0], "CVE-") && strings.Contains(v, "-r") && !strings.HasSuffix(v, "-r0") {
				name, fixed, cves = p.Pkg.Name, v, ids
			}
		}
		if name != "" {
			break
		}
	}
	if name == "" {
		t.Fatal("no suitable package in the v3.11 secdb")
	}
	// A version just below the fix: the same upstream version, release 0
	// when the fix is r1 or later, else an older upstream version.
	t.Logf("%s: fixed in %s for %v", name, fixed, cves)
	upstream, _, _ := strings.Cut(fixed, "-r")
	below := upstream + "-r0"

	for _, tc := range []struct {
		version string
		want    bool
	}{{below, true}, {fixed, false}} {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "etc/os-release"), "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.11.6\nPRETTY_NAME=\"Alpine Linux v3.11\"\n")
		writeFile(t, filepath.Join(root, "lib/apk/db/installed"),
			"C:Q1abc=\nP:"+name+"\nV:"+tc.version+"\nA:x86_64\nS:1000\nI:2000\nT:test\nU:https://alpinelinux.org\nL:MIT\no:"+name+"\nm:Test\nt:1600000000\n\n")
		res := scanRef(t, "dir:"+root, db)
		var found []string
		for _, f := range res.Findings {
			found = append(found, f.CVE)
			if f.Ecosystem != "Alpine:v3.11" {
				t.Errorf("%s matched in %s, want Alpine:v3.11", f.ID, f.Ecosystem)
			}
		}
		slices.Sort(found)
		want := slices.Clone(cves)
		slices.Sort(want)
		if tc.want && !slices.Equal(slices.Compact(found), slices.Compact(want)) {
			t.Errorf("%s %s: findings %v, want %v", name, tc.version, found, want)
		}
		if !tc.want && len(found) > 0 {
			t.Errorf("%s %s (the fixed version): findings %v, want none", name, tc.version, found)
		}
	}
}

// nvdScores reads the primary CVSS v3.1 base score of each CVE in an NVD API
// response file.
func nvdScores(t *testing.T, path string) map[string]float64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Vulnerabilities []struct {
			CVE struct {
				ID      string `json:"id"`
				Metrics struct {
					V31 []struct {
						Type     string `json:"type"`
						CVSSData struct {
							BaseScore float64 `json:"baseScore"`
						} `json:"cvssData"`
					} `json:"cvssMetricV31"`
				} `json:"metrics"`
			} `json:"cve"`
		} `json:"vulnerabilities"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, v := range resp.Vulnerabilities {
		for _, m := range v.CVE.Metrics.V31 {
			if m.Type == "Primary" {
				out[v.CVE.ID] = m.CVSSData.BaseScore
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no CVSS v3.1 scores in the NVD file")
	}
	return out
}
