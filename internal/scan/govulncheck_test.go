package scan_test

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/semver"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// buildVulnerableApp builds a Go binary that links golang.org/x/text at
// v0.3.5, a version the Go vulnerability database lists as vulnerable.
func buildVulnerableApp(t *testing.T) string {
	t.Helper()
	goBin := vigiltest.RequireCommand(t, "go")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "go.mod"), "module example.com/vulnapp\n\ngo 1.22\n\nrequire golang.org/x/text v0.3.5\n")
	writeFile(t, filepath.Join(src, "main.go"), `package main

import (
	"fmt"

	"golang.org/x/text/language"
)

func main() { fmt.Println(language.Make("en-US")) }
`)
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local", "CGO_ENABLED=0")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", "app", "."}} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = src, env
		if out, err := cmd.CombinedOutput(); err != nil {
			vigiltest.Unavailable(t, "go %s (needs the Go module proxy): %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	bin := t.TempDir()
	if err := os.Rename(filepath.Join(src, "app"), filepath.Join(bin, "app")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// govulncheckDB writes the Go vulnerability database layout govulncheck
// reads with -db file://DIR (index/db.json, index/modules.json, ID/*.json)
// from the same OSV zip Vigil imports.
func govulncheckDB(t *testing.T, zipPath string) string {
	t.Helper()
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	dir := t.TempDir()
	type vuln struct {
		ID       string    `json:"id"`
		Modified time.Time `json:"modified"`
		Fixed    string    `json:"fixed,omitempty"`
	}
	modules := map[string][]vuln{}
	var newest time.Time
	for _, f := range z.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			ID       string    `json:"id"`
			Modified time.Time `json:"modified"`
			Affected []struct {
				Package struct{ Name string } `json:"package"`
				Ranges  []struct {
					Events []struct{ Fixed string } `json:"events"`
				} `json:"ranges"`
			} `json:"affected"`
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		writeFile(t, filepath.Join(dir, "ID", rec.ID+".json"), string(b))
		if rec.Modified.After(newest) {
			newest = rec.Modified
		}
		for _, a := range rec.Affected {
			v := vuln{ID: rec.ID, Modified: rec.Modified}
			for _, r := range a.Ranges {
				for _, e := range r.Events {
					if e.Fixed != "" && (v.Fixed == "" || semver.Compare("v"+e.Fixed, "v"+v.Fixed) > 0) {
						v.Fixed = e.Fixed
					}
				}
			}
			modules[a.Package.Name] = append(modules[a.Package.Name], v)
		}
	}
	type module struct {
		Path  string `json:"path"`
		Vulns []vuln `json:"vulns"`
	}
	var index []module
	for p, vs := range modules {
		index = append(index, module{Path: p, Vulns: vs})
	}
	slices.SortFunc(index, func(a, b module) int { return strings.Compare(a.Path, b.Path) })
	mj, _ := json.Marshal(index)
	writeFile(t, filepath.Join(dir, "index", "modules.json"), string(mj))
	dj, _ := json.Marshal(map[string]time.Time{"modified": newest})
	writeFile(t, filepath.Join(dir, "index", "db.json"), string(dj))
	return dir
}

// TestGoBinaryAgainstGovulncheck compares Vigil's module-level findings for a
// Go binary with govulncheck -mode=binary -scan=module on a database made
// from the same OSV files.
func TestGoBinaryAgainstGovulncheck(t *testing.T) {
	db := realDB(t)
	gvc := vigiltest.GoBin(t, "govulncheck")
	data := vigiltest.SharedData(t)
	bin := buildVulnerableApp(t)

	res := scanRef(t, "dir:"+bin, db)
	var vigil []string
	for _, f := range res.Findings {
		if f.Package.Type != "golang" {
			t.Errorf("non-Go finding %s for %s", f.ID, f.Package.PURL)
			continue
		}
		vigil = append(vigil, f.ID+" "+f.Package.Name)
	}

	gdb := govulncheckDB(t, filepath.Join(data, "osv", "Go", "all.zip"))
	cmd := exec.Command(gvc, "-db", "file://"+gdb, "-mode", "binary", "-scan", "module", "-format", "json", filepath.Join(bin, "app"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("govulncheck: %v\n%s", err, stderr.String())
	}
	var peer []string
	dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(out)))
	for {
		var msg struct {
			Finding *struct {
				OSV   string `json:"osv"`
				Trace []struct {
					Module string `json:"module"`
				} `json:"trace"`
			} `json:"finding"`
		}
		if err := dec.Decode(&msg); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("reading govulncheck's JSON: %v", err)
		}
		if msg.Finding != nil && len(msg.Finding.Trace) > 0 {
			peer = append(peer, msg.Finding.OSV+" "+msg.Finding.Trace[0].Module)
		}
	}
	slices.Sort(vigil)
	slices.Sort(peer)
	vigil, peer = slices.Compact(vigil), slices.Compact(peer)
	if len(peer) == 0 {
		t.Fatal("govulncheck found nothing: the comparison would prove nothing")
	}
	t.Logf("govulncheck: %d module-level findings, vigil: %d", len(peer), len(vigil))
	if diff := cmp.Diff(peer, vigil); diff != "" {
		t.Errorf("module-level findings differ (-govulncheck +vigil):\n%s", diff)
	}

	// The x/text finding itself: fixed version and aliases as in the record.
	adv := osvRecord(t, filepath.Join(data, "osv", "Go", "all.zip"), "GO-2021-0113")
	for _, f := range res.Findings {
		if f.ID != "GO-2021-0113" {
			continue
		}
		if f.Package.Name != "golang.org/x/text" || f.InstalledVersion != "0.3.5" {
			t.Errorf("GO-2021-0113 on %s %s, want golang.org/x/text 0.3.5", f.Package.Name, f.InstalledVersion)
		}
		if !slices.Equal(f.Aliases, adv.Aliases) {
			t.Errorf("aliases %v, want %v", f.Aliases, adv.Aliases)
		}
		if !slices.Contains(f.FixedVersions, adv.Affected[0].Ranges[0].Events[1].Fixed) {
			t.Errorf("fixed versions %v, want %s", f.FixedVersions, adv.Affected[0].Ranges[0].Events[1].Fixed)
		}
		return
	}
	t.Errorf("no GO-2021-0113 finding for golang.org/x/text 0.3.5; findings: %v", vigil)
}
