package inventory_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// goModInfo is what `go version -m` says a binary was built from.
type goModInfo struct {
	GoVersion string // "go1.26.8"
	Path      string // main package path
	Main      nameVersion
	// Deps are the dependency modules, with replacements applied: the
	// module actually compiled in.
	Deps []nameVersion
}

// parseGoVersionM reads the output of `go version -m FILE`:
//
//	FILE: go1.26.8
//		path	example.com/app
//		mod	example.com/app	(devel)
//		dep	golang.org/x/text	v0.14.0	h1:…
//		=>	golang.org/x/text	v0.13.0	h1:…
//		build	…
//
// A "=>" line replaces the module of the line before it.
func parseGoVersionM(t *testing.T, out string) goModInfo {
	t.Helper()
	var info goModInfo
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 {
		t.Fatalf("empty go version -m output")
	}
	i := strings.LastIndex(lines[0], ": ")
	if i < 0 {
		t.Fatalf("go version -m: unexpected first line %q", lines[0])
	}
	info.GoVersion = strings.TrimSpace(lines[0][i+2:])
	last := -1 // index in Deps of the last dep line, for "=>"
	for _, l := range lines[1:] {
		f := strings.Split(strings.TrimPrefix(l, "\t"), "\t")
		field := func(n int) string {
			if n < len(f) {
				return f[n]
			}
			return ""
		}
		switch f[0] {
		case "path":
			info.Path = field(1)
			last = -1
		case "mod":
			info.Main = nameVersion{field(1), field(2)}
			last = -1
		case "dep":
			info.Deps = append(info.Deps, nameVersion{field(1), field(2)})
			last = len(info.Deps) - 1
		case "=>":
			if last < 0 {
				t.Fatalf("go version -m: replacement without a dep line: %q", l)
			}
			info.Deps[last] = nameVersion{field(1), field(2)}
		default:
			last = -1
		}
	}
	return info
}

func TestGoBinary(t *testing.T) {
	goCmd := vigiltest.RequireCommand(t, "go")
	ctx, cancel := context.WithTimeout(t.Context(), 110*time.Second)
	defer cancel()

	src := t.TempDir()
	// uuid is replaced by an older release of itself: the binary holds
	// v1.5.0's code and must be reported so.
	writeFixture(t, filepath.Join(src, "go.mod"), []byte(`module example.com/vigiltestapp

go 1.22

require (
	github.com/google/uuid v1.6.0
	golang.org/x/text v0.14.0
)

replace github.com/google/uuid v1.6.0 => github.com/google/uuid v1.5.0
`))
	writeFixture(t, filepath.Join(src, "main.go"), []byte(`package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

func main() {
	fmt.Println(language.English.String(), uuid.NewString())
}
`))
	// The shared GOPROXY and GOMODCACHE are inherited from the environment;
	// -buildvcs=false keeps the main module at "(devel)" wherever TMPDIR is.
	env := []string{"GOFLAGS=-mod=mod -buildvcs=false", "GOTOOLCHAIN=local", "CGO_ENABLED=0", "GOWORK=off"}
	if _, err := runTool(ctx, src, env, goCmd, "mod", "tidy"); err != nil {
		vigiltest.Unavailable(t, "go mod tidy could not fetch the fixture modules (module proxy unreachable?): %v", err)
	}
	bin := t.TempDir()
	app := filepath.Join(bin, "app")
	mustRunTool(t, ctx, src, env, goCmd, "build", "-o", app, ".")

	// Source of truth: the build info as the go command reads it.
	info := parseGoVersionM(t, mustRunTool(t, ctx, bin, env, goCmd, "version", "-m", app))
	t.Logf("go version -m: go=%s main=%v deps=%v", info.GoVersion, info.Main, info.Deps)
	if info.Path != "example.com/vigiltestapp" || info.Main.Name != "example.com/vigiltestapp" {
		t.Fatalf("go version -m: path %q, mod %v; want example.com/vigiltestapp", info.Path, info.Main)
	}
	if len(info.Deps) != 2 {
		t.Fatalf("go version -m lists %d deps, want 2 (uuid, x/text): %v", len(info.Deps), info.Deps)
	}
	if ents, err := os.ReadDir(bin); err != nil || len(ents) != 1 {
		t.Fatalf("binary dir should hold only app: %v %v", ents, err)
	}

	// Vigil drops the leading "v" of module versions and reports the
	// toolchain as the "stdlib" module, without the "go" prefix.
	want := map[nameVersion]bool{
		{"stdlib", strings.TrimPrefix(info.GoVersion, "go")}:         true,
		{info.Main.Name, strings.TrimPrefix(info.Main.Version, "v")}: true,
	}
	for _, d := range info.Deps {
		want[nameVersion{d.Name, strings.TrimPrefix(d.Version, "v")}] = true
	}

	rep := scanDir(t, ctx, bin)
	got := map[nameVersion]bool{}
	for _, p := range packagesOfType(rep, "golang") {
		nv := nameVersion{p.Name, p.Version}
		if got[nv] {
			t.Errorf("golang package %v reported twice", nv)
		}
		got[nv] = true
		if diff := cmp.Diff([]string{"/app"}, p.Locations); diff != "" {
			t.Errorf("%s@%s locations (-want +got):\n%s", p.Name, p.Version, diff)
		}
		if p.Ecosystem != "Go" {
			t.Errorf("%s@%s ecosystem %q, want Go", p.Name, p.Version, p.Ecosystem)
		}
		if p.Extractor != "go/binary" {
			t.Errorf("%s@%s extractor %q, want go/binary", p.Name, p.Version, p.Extractor)
		}
		if !strings.HasPrefix(p.PURL, "pkg:golang/") {
			t.Errorf("%s@%s purl %q, want pkg:golang/…", p.Name, p.Version, p.PURL)
		}
	}
	if diff := cmp.Diff(sortedNV(want), sortedNV(got)); diff != "" {
		t.Errorf("golang packages (-go version -m +vigil):\n%s", diff)
	}
	// The main module is reported, with the version the build recorded
	// ("(devel)" for a build outside version control).
	mainNV := nameVersion{"example.com/vigiltestapp", strings.TrimPrefix(info.Main.Version, "v")}
	if !got[mainNV] {
		t.Errorf("main module %v not reported", mainNV)
	}
	if n := len(rep.Packages) - len(packagesOfType(rep, "golang")); n != 0 {
		t.Errorf("%d non-golang packages reported for a lone Go binary: %+v", n, rep.Packages)
	}
	t.Logf("compared %d golang packages", len(want))
}
