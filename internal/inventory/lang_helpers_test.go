package inventory_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// scanDir opens dir as a "dir:" target and runs Vigil's inventory over it.
// Any read error recorded in the report fails the test: the fixtures these
// tests build are small and well formed, so a partial scan is a bug.
func scanDir(t *testing.T, ctx context.Context, dir string) *inventory.Report {
	t.Helper()
	ref, err := artifact.ParseRef("dir:" + dir)
	if err != nil {
		t.Fatalf("ParseRef(dir:%s): %v", dir, err)
	}
	a, err := artifact.Open(ctx, ref, artifact.DefaultOptions())
	if err != nil {
		t.Fatalf("artifact.Open(%s): %v", ref, err)
	}
	t.Cleanup(func() { _ = a.Close() })
	sc, err := inventory.New(nil)
	if err != nil {
		t.Fatalf("inventory.New: %v", err)
	}
	rep, err := sc.Scan(ctx, a)
	if err != nil {
		t.Fatalf("Scan(%s): %v", ref, err)
	}
	if rep.Partial || len(rep.Errors) > 0 {
		t.Errorf("scan of %s is partial: %+v", dir, rep.Errors)
	}
	return rep
}

// packagesOfType returns the packages of one purl type, in report order.
func packagesOfType(rep *inventory.Report, typ string) []inventory.Package {
	var out []inventory.Package
	for _, p := range rep.Packages {
		if p.Type == typ {
			out = append(out, p)
		}
	}
	return out
}

// nameVersion is a package identity compared between Vigil and a tool.
type nameVersion struct {
	Name, Version string
}

// sortedNV returns the set as a sorted, duplicate-free slice for cmp.Diff.
func sortedNV(set map[nameVersion]bool) []nameVersion {
	out := make([]nameVersion, 0, len(set))
	for nv := range set {
		out = append(out, nv)
	}
	slices.SortFunc(out, func(a, b nameVersion) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Version, b.Version)
	})
	return out
}

// runTool runs name in dir with extra environment entries added to the
// test's own environment and returns its standard output. A failure is
// returned with the standard error folded in, so callers can decide between
// failing and skipping.
func runTool(ctx context.Context, dir string, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), &toolError{cmd: name + " " + strings.Join(args, " "), err: err, stderr: stderr.String()}
	}
	return stdout.String(), nil
}

type toolError struct {
	cmd, stderr string
	err         error
}

func (e *toolError) Error() string {
	return e.cmd + ": " + e.err.Error() + "\n" + strings.TrimSpace(e.stderr)
}

// mustRunTool is runTool that fails the test on error.
func mustRunTool(t *testing.T, ctx context.Context, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runTool(ctx, dir, env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// extractDebs unpacks the cached Debian packages named into root with
// dpkg-deb -x (no maintainer scripts, no dpkg database).
func extractDebs(t *testing.T, ctx context.Context, root string, names ...string) {
	t.Helper()
	vigiltest.RequireCommand(t, "dpkg-deb")
	for _, n := range names {
		deb := vigiltest.Deb(t, n)
		mustRunTool(t, ctx, root, nil, "dpkg-deb", "-x", deb, root)
	}
}

// writeFixture writes a fixture file, creating its directory.
func writeFixture(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
