package inventory_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// buildLayered builds, with the real Docker engine, an image that installs
// Debian's hello package in one layer and an image that purges it again in
// a later layer.
func buildLayered(t *testing.T) (installed, purged string) {
	t.Helper()
	base := vigiltest.RequireBookwormImage(t)
	dir := t.TempDir()
	deb, err := os.ReadFile(vigiltest.Deb(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.deb"), deb, 0o644); err != nil {
		t.Fatal(err)
	}
	dockerfile := "FROM " + base + ` AS installed
COPY hello.deb /tmp/hello.deb
RUN dpkg -i /tmp/hello.deb
FROM installed AS purged
RUN dpkg --purge hello && rm /tmp/hello.deb
`
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	installed, purged = "vigil-test/layers:installed", "vigil-test/layers:purged"
	for _, b := range []struct{ target, tag string }{{"installed", installed}, {"purged", purged}} {
		cmd := exec.Command("docker", "build", "-q", "--network", "none", "--target", b.target, "-t", b.tag, ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker build %s: %v\n%s", b.target, err, out)
		}
	}
	return installed, purged
}

func find(r *inventory.Report, typ, name string) *inventory.Package {
	for i := range r.Packages {
		if r.Packages[i].Type == typ && r.Packages[i].Name == name {
			return &r.Packages[i]
		}
	}
	return nil
}

// TestLayerAttribution checks that a package is attributed to the layer
// that installed it, with that layer's history command, and that a package
// purged in a later layer is gone.
func TestLayerAttribution(t *testing.T) {
	installed, purged := buildLayered(t)

	rep := scan(t, "docker:"+installed, nil)
	if n := len(rep.Image.Layers); n != 3 {
		t.Fatalf("image has %d layers, want 3 (import, COPY, RUN)", n)
	}
	hello := find(rep, "deb", "hello")
	if hello == nil {
		t.Fatal("hello not found in the image that installs it")
	}
	if hello.Layer == nil || hello.Layer.Index != 2 || !strings.Contains(hello.Layer.CreatedBy, "dpkg -i /tmp/hello.deb") {
		t.Errorf("hello attributed to %+v, want layer 2 created by the dpkg -i step", hello.Layer)
	}
	// Every package of the base image stays in the base layer although the
	// dpkg status file was rewritten by layer 2.
	for _, p := range rep.Packages {
		if p.Name != "hello" && (p.Layer == nil || p.Layer.Index != 0) {
			t.Errorf("base package %s attributed to %+v, want layer 0", p.Name, p.Layer)
		}
	}

	rep = scan(t, "docker:"+purged, nil)
	if p := find(rep, "deb", "hello"); p != nil {
		t.Errorf("hello still reported after a later layer purged it: %+v", p)
	}
	if find(rep, "deb", "bash") == nil {
		t.Error("bash missing from the purged image")
	}
}
