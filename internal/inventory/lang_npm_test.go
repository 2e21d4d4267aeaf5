package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// npmNode is one node of `npm ls --all --json`.
type npmNode struct {
	Name         string             `json:"name"`
	Version      string             `json:"version"`
	Missing      bool               `json:"missing"`
	Dependencies map[string]npmNode `json:"dependencies"`
}

// walkNpmTree collects the (name, version) of every dependency below n.
// Deduplicated subtrees still carry their version, so the walk sees every
// installed package at least once.
func walkNpmTree(t *testing.T, n npmNode, into map[nameVersion]bool) {
	t.Helper()
	for name, d := range n.Dependencies {
		if d.Missing || d.Version == "" {
			t.Fatalf("npm ls: dependency %s is not installed: %+v", name, d)
		}
		into[nameVersion{name, d.Version}] = true
		walkNpmTree(t, d, into)
	}
}

// npmRoot is the name and version of the project itself.
const npmRootName, npmRootVersion = "vigil-npm-fixture", "1.0.0"

func TestNodeProject(t *testing.T) {
	npm := vigiltest.RequireCommand(t, "npm")
	vigiltest.RequireCommand(t, "node")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	dir := t.TempDir()
	// chalk and debug 4 bring a small tree; finalhandler needs debug 2.6.9
	// and ms 2.0.0, which npm installs nested under finalhandler beside the
	// hoisted debug 4.3.4 and ms 2.1.2: two versions of the same names.
	writeFixture(t, filepath.Join(dir, "package.json"), []byte(`{
  "name": "`+npmRootName+`",
  "version": "`+npmRootVersion+`",
  "private": true,
  "dependencies": {
    "chalk": "4.1.2",
    "debug": "4.3.4",
    "finalhandler": "1.2.0"
  }
}
`))
	env := []string{"npm_config_update_notifier=false", "npm_config_fund=false", "npm_config_audit=false"}
	if _, err := runTool(ctx, dir, env, npm, "install", "--no-audit", "--no-fund", "--ignore-scripts"); err != nil {
		vigiltest.Unavailable(t, "npm install failed (npm registry unreachable?): %v", err)
	}

	// Source of truth: npm's own view of the installed tree.
	var tree npmNode
	if err := json.Unmarshal([]byte(mustRunTool(t, ctx, dir, env, npm, "ls", "--all", "--json")), &tree); err != nil {
		t.Fatalf("npm ls --json: %v", err)
	}
	if tree.Name != npmRootName {
		t.Fatalf("npm ls root is %q, want %q", tree.Name, npmRootName)
	}
	want := map[nameVersion]bool{}
	walkNpmTree(t, tree, want)
	if len(want) < 5 {
		t.Fatalf("npm ls lists only %d packages: %v", len(want), sortedNV(want))
	}

	// Where each package is installed, from the lock file npm wrote:
	// "node_modules/a/node_modules/b" → /node_modules/a/node_modules/b/package.json.
	var lock struct {
		Packages map[string]struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"packages"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &lock); err != nil {
		t.Fatalf("package-lock.json: %v", err)
	}
	installed := map[nameVersion][]string{}
	for key, p := range lock.Packages {
		if key == "" {
			continue // the root project
		}
		name := p.Name
		if name == "" {
			name = key[strings.LastIndex(key, "node_modules/")+len("node_modules/"):]
		}
		nv := nameVersion{name, p.Version}
		installed[nv] = append(installed[nv], "/"+key+"/package.json")
	}

	rep := scanDir(t, ctx, dir)
	copies := map[nameVersion][]inventory.Package{}
	rootSeen := 0
	for _, p := range packagesOfType(rep, "npm") {
		nv := nameVersion{p.Name, p.Version}
		// The packagejson extractor reports the project's own package.json
		// as a package. It is the scanned project, not one of its
		// dependencies, and npm ls lists it as the tree's root: it is checked
		// on its own and left out of the comparison.
		if nv == (nameVersion{npmRootName, npmRootVersion}) {
			rootSeen++
			if diff := cmp.Diff([]string{"/package.json"}, p.Locations); diff != "" {
				t.Errorf("root project locations (-want +got):\n%s", diff)
			}
			if wantPURL := "pkg:npm/" + npmRootName + "@" + npmRootVersion; p.PURL != wantPURL {
				t.Errorf("root project purl %q, want %q", p.PURL, wantPURL)
			}
			continue
		}
		copies[nv] = append(copies[nv], p)
	}
	got := map[nameVersion]bool{}
	for nv := range copies {
		got[nv] = true
	}
	for _, nv := range sortedNV(got) {
		ps := copies[nv]
		// Every package is found in the lock file and in each installed
		// copy's package.json: one package, all those locations, and the
		// plain npm purl.
		if len(ps) != 1 {
			var desc []string
			for _, p := range ps {
				desc = append(desc, fmt.Sprintf("%s at %v", p.PURL, p.Locations))
			}
			t.Errorf("%s@%s reported %d times, want once (equal packages must be merged): %s",
				nv.Name, nv.Version, len(ps), strings.Join(desc, "; "))
			continue
		}
		p := ps[0]
		wantLocs := append([]string{"/package-lock.json"}, installed[nv]...)
		slices.Sort(wantLocs)
		gotLocs := slices.Sorted(slices.Values(p.Locations))
		if diff := cmp.Diff(wantLocs, gotLocs); diff != "" {
			t.Errorf("%s@%s locations (-want +got):\n%s", p.Name, p.Version, diff)
		}
		if p.Ecosystem != "npm" {
			t.Errorf("%s@%s ecosystem %q, want npm", p.Name, p.Version, p.Ecosystem)
		}
		if wantPURL := "pkg:npm/" + p.Name + "@" + p.Version; p.PURL != wantPURL {
			t.Errorf("%s@%s purl %q, want %q", p.Name, p.Version, p.PURL, wantPURL)
		}
	}
	if rootSeen != 1 {
		t.Errorf("root project %s@%s reported %d times, want 1", npmRootName, npmRootVersion, rootSeen)
	}
	if diff := cmp.Diff(sortedNV(want), sortedNV(got)); diff != "" {
		t.Errorf("npm packages (-npm ls +vigil):\n%s", diff)
	}

	// The hoisted and the nested copy of one name are distinct packages,
	// each with its own install location.
	for _, nv := range []nameVersion{{"ms", "2.1.2"}, {"ms", "2.0.0"}, {"debug", "4.3.4"}, {"debug", "2.6.9"}} {
		if want[nv] && !got[nv] {
			t.Errorf("%v missing from Vigil's report", nv)
		}
	}
	t.Logf("compared %d npm packages (%d installed copies)", len(want), len(lock.Packages)-1)
}
