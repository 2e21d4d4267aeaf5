package drift

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

func write(t testing.TB, p, data string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func whiteoutAt(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(p, unix.S_IFCHR|0o600, 0); err != nil {
		t.Fatalf("mknod %s: %v", p, err)
	}
}

func makeOpaque(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(p, "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("setxattr %s: %v", p, err)
	}
}

// TestScan builds overlay layers by hand — the image's two layers and a
// writable one with every kind of change — and checks each is classified,
// including paths hidden in the image by a whiteout or an opaque
// directory of an upper image layer.
func TestScan(t *testing.T) {
	vigiltest.RequireRoot(t) // whiteouts are device nodes, opaque marks trusted xattrs
	dir := t.TempDir()
	up, l1, l2 := filepath.Join(dir, "upper"), filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	// The image: l2 is the base, l1 above it.
	write(t, l2+"/etc/os", "bookworm\n", 0o644)
	write(t, l2+"/etc/gone-in-image", "x", 0o644)
	write(t, l2+"/opt/hidden/a", "a", 0o644)
	write(t, l2+"/bin/tool", "\x7fELF....", 0o755)
	write(t, l1+"/etc/same", "same", 0o644)
	write(t, l1+"/etc/perm", "p", 0o644)
	write(t, l1+"/etc/skel/.bashrc", "rc", 0o644)
	whiteoutAt(t, l1+"/etc/gone-in-image")
	makeOpaque(t, l1+"/opt/hidden")
	// The container.
	write(t, up+"/etc/os", "hacked\n", 0o644)           // changed content
	write(t, up+"/etc/same", "same", 0o644)             // copied up, nothing differs
	write(t, up+"/etc/perm", "p", 0o600)                // mode only
	write(t, up+"/etc/gone-in-image", "new", 0o644)     // the image deleted it: added
	write(t, up+"/opt/hidden/a", "a", 0o644)            // hidden by l1's opaque dir: added
	write(t, up+"/usr/local/bin/x", "\x7fELFxx", 0o644) // ELF without an x bit
	write(t, up+"/tmp/run.sh", "#!/bin/sh\n", 0o700)
	whiteoutAt(t, up+"/bin/tool")
	write(t, l2+"/etc/xattr-gone", "x", 0o644)
	write(t, up+"/etc/xattr-gone", "", 0o644) // an xattr whiteout
	if err := unix.Lsetxattr(up+"/etc/xattr-gone", "trusted.overlay.whiteout", nil, 0); err != nil {
		t.Fatalf("setxattr: %v", err)
	}
	write(t, up+"/etc/empty", "", 0o644) // empty, no xattr: an added file
	makeOpaque(t, up+"/etc/skel")
	if err := os.Symlink("/tmp/run.sh", up+"/etc/link"); err != nil {
		t.Fatal(err)
	}
	got, err := Scan(Layers{Upper: up, Lower: []string{l1, l2}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{
		{Path: "/bin/tool", Kind: Deleted},
		{Path: "/etc/empty", Kind: Added, Type: "file", Mode: "0644"},
		{Path: "/etc/gone-in-image", Kind: Added, Type: "file", Mode: "0644", Size: 3},
		{Path: "/etc/link", Kind: Added, Type: "symlink", Mode: "0777", Target: "/tmp/run.sh"},
		{Path: "/etc/os", Kind: Changed, Type: "file", Mode: "0644", Size: 7, Differs: []string{"content"}},
		{Path: "/etc/perm", Kind: Changed, Type: "file", Mode: "0600", Size: 1, Differs: []string{"mode"}},
		{Path: "/etc/same", Kind: Changed, Type: "file", Mode: "0644", Size: 4},
		{Path: "/etc/skel", Kind: Replaced, Type: "dir", Mode: "0755"},
		{Path: "/etc/xattr-gone", Kind: Deleted},
		{Path: "/opt/hidden/a", Kind: Added, Type: "file", Mode: "0644", Size: 1},
		{Path: "/tmp", Kind: Added, Type: "dir", Mode: "0755"},
		{Path: "/tmp/run.sh", Kind: Added, Type: "file", Mode: "0700", Size: 10, Executable: true},
		{Path: "/usr", Kind: Added, Type: "dir", Mode: "0755"},
		{Path: "/usr/local", Kind: Added, Type: "dir", Mode: "0755"},
		{Path: "/usr/local/bin", Kind: Added, Type: "dir", Mode: "0755"},
		{Path: "/usr/local/bin/x", Kind: Added, Type: "file", Mode: "0644", Size: 6, Executable: true, ELF: true},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("changes (-want +got):\n%s", d)
	}
}

func TestScanErrors(t *testing.T) {
	if _, err := Scan(Layers{Upper: filepath.Join(t.TempDir(), "missing")}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing upper: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	write(t, f, "x", 0o644)
	if _, err := Scan(Layers{Upper: f}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("upper is a file: %v", err)
	}
	for _, tc := range []struct {
		driver string
		data   map[string]string
		want   string
	}{
		{"btrfs", nil, `"btrfs": only overlay2`},
		{"overlay2", map[string]string{}, "no absolute UpperDir"},
		{"overlay2", map[string]string{"UpperDir": "/u", "LowerDir": "/a:rel"}, `"rel" is not absolute`},
	} {
		if _, err := overlayLayers(tc.driver, tc.data); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("overlayLayers(%s, %v) = %v, want %q", tc.driver, tc.data, err, tc.want)
		}
	}
}

func FuzzOverlayLayers(f *testing.F) {
	f.Add("overlay2", "/var/lib/docker/overlay2/x/diff", "/var/lib/docker/overlay2/x-init/diff:/var/lib/docker/overlay2/y/diff")
	f.Add("overlay2", "/u", "")
	f.Add("vfs", "", "::")
	f.Fuzz(func(t *testing.T, driver, upper, lower string) {
		l, err := overlayLayers(driver, map[string]string{"UpperDir": upper, "LowerDir": lower})
		if err != nil {
			return
		}
		if !filepath.IsAbs(l.Upper) {
			t.Fatalf("upper %q accepted", l.Upper)
		}
		for _, p := range l.Lower {
			if !filepath.IsAbs(p) {
				t.Fatalf("lower %q accepted", p)
			}
		}
	})
}

func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func runContainer(t *testing.T, img, what string) string {
	t.Helper()
	name := strings.ToLower(fmt.Sprintf("vigil-drift-%s-%d", what, time.Now().UnixNano()))
	if out, err := exec.Command("docker", "run", "-d", "--name", name, img, "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	return name
}

// TestContainerDrift changes a real container — modifies a file from the
// image, deletes one, changes a mode, adds an ELF executable and a script,
// replaces a directory — and checks each is reported with its kind, while
// an untouched container of the same image reports nothing.
func TestContainerDrift(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	d := dockerClient(t)
	ctx := context.Background()
	clean := runContainer(t, img, "clean")
	dirty := runContainer(t, img, "dirty")
	script := `echo drift >> /etc/debian_version && rm /etc/issue && chmod 600 /etc/issue.net &&
cp /bin/true /usr/local/bin/dropper && printf '#!/bin/sh\n' > /root/run.sh && chmod +x /root/run.sh &&
rm -rf /etc/skel && mkdir /etc/skel && echo notes > /root/notes.txt`
	if out, err := exec.Command("docker", "exec", dirty, "bash", "-c", script).CombinedOutput(); err != nil {
		t.Fatalf("docker exec: %v: %s", err, out)
	}
	r, err := Container(ctx, d, clean)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || r.Drifted() || r.Name != clean || r.Image != img || !r.Running {
		t.Errorf("untouched container: %+v", r)
	}
	r, err = Container(ctx, d, dirty)
	if err != nil {
		t.Fatal(err)
	}
	if r.Error != "" || r.Driver != "overlay2" {
		t.Fatalf("report: %+v", r)
	}
	byPath := map[string]Change{}
	for _, c := range r.Changes {
		byPath[c.Path] = c
	}
	for _, w := range []struct {
		path, kind string
		differs    []string
		exec, elf  bool
	}{
		{"/etc/debian_version", Changed, []string{"content"}, false, false},
		{"/etc/issue", Deleted, nil, false, false},
		{"/etc/issue.net", Changed, []string{"mode"}, false, false},
		{"/usr/local/bin/dropper", Added, nil, true, true},
		{"/root/run.sh", Added, nil, true, false},
		{"/etc/skel", Replaced, nil, false, false},
		{"/root/notes.txt", Added, nil, false, false},
	} {
		c, ok := byPath[w.path]
		if !ok {
			t.Errorf("%s not reported; changes: %+v", w.path, r.Changes)
			continue
		}
		if c.Kind != w.kind || !slices.Equal(c.Differs, w.differs) || c.Executable != w.exec || c.ELF != w.elf {
			t.Errorf("%s: got %+v, want kind %s differs %v exec %v elf %v", w.path, c, w.kind, w.differs, w.exec, w.elf)
		}
	}
	var exes []string
	for _, c := range r.Executables() {
		exes = append(exes, c.Path)
	}
	if want := []string{"/root/run.sh", "/usr/local/bin/dropper"}; !slices.Equal(exes, want) {
		t.Errorf("executables %v, want %v", exes, want)
	}
	// Every running container, this one among them.
	all, err := Containers(ctx, d, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range all {
		found = found || x.Name == dirty && x.Drifted()
	}
	if !found {
		t.Errorf("Containers(nil) did not report %s with drift", dirty)
	}
	if _, err := Container(ctx, d, "vigil-no-such-container"); err == nil || !strings.Contains(err.Error(), "vigil-no-such-container") {
		t.Errorf("unknown container: %v", err)
	}
}

// BenchmarkScan walks a writable layer of 2,000 added and 2,000 changed
// files over a two-layer image.
func BenchmarkScan(b *testing.B) {
	dir := b.TempDir()
	up, l1, l2 := filepath.Join(dir, "upper"), filepath.Join(dir, "l1"), filepath.Join(dir, "l2")
	for i := range 2000 {
		write(b, fmt.Sprintf("%s/d%d/f%d", l2, i%50, i), "image", 0o644)
		write(b, fmt.Sprintf("%s/d%d/f%d", up, i%50, i), "image!", 0o644)
		write(b, fmt.Sprintf("%s/new%d/f%d", up, i%50, i), "new", 0o755)
	}
	if err := os.MkdirAll(l1, 0o755); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		c, err := Scan(Layers{Upper: up, Lower: []string{l1, l2}})
		if err != nil || len(c) != 4050 {
			b.Fatalf("%d changes, %v", len(c), err)
		}
	}
	b.ReportMetric(float64(4000*b.N)/b.Elapsed().Seconds(), "files/s")
}

// fakeDocker lists two containers; the first is gone by the time it is
// inspected, the second has an overlay2 upper directory with one file.
type fakeDocker struct{ upper string }

func (f fakeDocker) ContainerList(context.Context, client.ContainerListOptions) (client.ContainerListResult, error) {
	return client.ContainerListResult{Items: []container.Summary{{ID: "gone"}, {ID: "live"}}}, nil
}

func (f fakeDocker) ContainerInspect(_ context.Context, id string, _ client.ContainerInspectOptions) (client.ContainerInspectResult, error) {
	if id != "live" {
		return client.ContainerInspectResult{}, fmt.Errorf("no such container %s: %w", id, cerrdefs.ErrNotFound)
	}
	return client.ContainerInspectResult{Container: container.InspectResponse{ID: "live", Name: "/live",
		GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{"UpperDir": f.upper, "LowerDir": f.upper + "-missing"}}}}, nil
}

func TestContainersRemovedMeanwhile(t *testing.T) {
	up := t.TempDir()
	write(t, up+"/new", "x", 0o644)
	reps, err := Containers(context.Background(), fakeDocker{up}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 1 || reps[0].Name != "live" || len(reps[0].Changes) != 1 || reps[0].Changes[0].Kind != Added {
		t.Fatalf("reports: %+v", reps)
	}
	// Named explicitly, a missing container is an error naming it.
	if _, err := Containers(context.Background(), fakeDocker{up}, []string{"gone"}); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("named missing container: %v", err)
	}
}
