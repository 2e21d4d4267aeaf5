package inventory_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestDistrolessStatusD lays the real bookworm dpkg stanzas out the way
// distroless images do — one file per package under
// /var/lib/dpkg/status.d/ — and expects the same packages as dpkg-query.
func TestDistrolessStatusD(t *testing.T) {
	rootfs := vigiltest.BookwormRootfs(t)
	want := dpkgTruth(t, rootfs)
	status, err := os.ReadFile(filepath.Join(rootfs, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	osRelease, err := os.ReadFile(filepath.Join(rootfs, "usr/lib/os-release"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, "var/lib/dpkg/status.d")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, stanza := range strings.Split(strings.TrimSpace(string(status)), "\n\n") {
		name := strings.TrimPrefix(strings.SplitN(stanza, "\n", 2)[0], "Package: ")
		if err := os.WriteFile(filepath.Join(dir, name), []byte(stanza+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/os-release"), osRelease, 0o644); err != nil {
		t.Fatal(err)
	}
	rep := scan(t, "dir:"+root, nil)
	if diff := cmp.Diff(want, debRows(rep)); diff != "" {
		t.Errorf("status.d packages differ from dpkg-query (-dpkg +vigil):\n%s", diff)
	}
	for _, p := range rep.Packages {
		if !strings.HasPrefix(p.Locations[0], "/var/lib/dpkg/status.d/") {
			t.Fatalf("%s located at %v", p.Name, p.Locations)
		}
	}
}
