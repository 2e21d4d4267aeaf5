package artifact

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, p); err != nil {
		t.Skipf("symlinks unavailable: %v", err)
	}
}

func TestOpenDir(t *testing.T) {
	outside := t.TempDir()
	const secret = "SENTINEL-SECRET-dir"
	sentinel := filepath.Join(outside, "sentinel")
	writeFile(t, sentinel, secret)

	root := filepath.Join(t.TempDir(), "rootfs")
	writeFile(t, filepath.Join(root, "usr/lib/os-release"), "ID=test\n")
	writeFile(t, filepath.Join(root, "var/lib/dpkg/status.real"), "Package: bash\n")
	symlink(t, "../usr/lib/os-release", filepath.Join(root, "etc/os-release"))
	symlink(t, sentinel, filepath.Join(root, "var/lib/dpkg/status"))
	rel, err := filepath.Rel(filepath.Join(root, "etc"), sentinel)
	if err != nil {
		t.Fatal(err)
	}
	symlink(t, rel, filepath.Join(root, "etc/shadow"))
	symlink(t, outside, filepath.Join(root, "mnt"))

	a, err := Open(context.Background(), Ref{Kind: KindDir, Name: root}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Root != root || a.Tree != nil || a.Image != nil {
		t.Errorf("artifact = %+v; want Root %s, no Tree, no Image", a, root)
	}

	for name, want := range map[string]string{
		"usr/lib/os-release":       "ID=test\n",
		"etc/os-release":           "ID=test\n", // relative link inside the root
		"var/lib/dpkg/status.real": "Package: bash\n",
	} {
		if b, err := fs.ReadFile(a.FS, name); err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, want)
		}
	}
	for _, name := range []string{"var/lib/dpkg/status", "etc/shadow", "mnt/sentinel"} {
		if b, err := fs.ReadFile(a.FS, name); err == nil {
			t.Errorf("ReadFile(%s) = %q; read through a symlink out of the directory", name, b)
		}
		if _, err := a.FS.Stat(name); err == nil {
			t.Errorf("Stat(%s) followed a symlink out of the directory", name)
		}
	}
	if _, err := a.FS.ReadDir("mnt"); err == nil {
		t.Error("ReadDir(mnt) listed a directory outside the target")
	}
	if _, err := fs.ReadFile(a.FS, "../"+filepath.Base(outside)+"/sentinel"); err == nil {
		t.Error("ReadFile with .. succeeded")
	}
	// Walking the target never reaches outside.
	err = fs.WalkDir(a.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if b, err := fs.ReadFile(a.FS, p); err == nil && string(b) == secret {
			t.Errorf("%s holds the sentinel's content", p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestOpenDirAbsoluteSymlinkInside records how the directory target treats
// an absolute symlink that names a path inside the target once the target
// is taken as a root filesystem (common in unpacked rootfs trees). An image
// Tree resolves it like a chroot; os.Root refuses it. Logged, not asserted:
// either is safe.
func TestOpenDirAbsoluteSymlinkInside(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "usr/lib/os-release"), "ID=test\n")
	symlink(t, "/usr/lib/os-release", filepath.Join(root, "etc/os-release"))
	a, err := Open(context.Background(), Ref{Kind: KindDir, Name: root}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := fs.ReadFile(a.FS, "etc/os-release")
	if err == nil && string(b) != "ID=test\n" {
		t.Errorf("ReadFile(etc/os-release) = %q: resolved against the host root", b)
	}
	t.Logf("absolute symlink inside a dir target: %q, %v", b, err)
}

func TestOpenDirErrors(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	writeFile(t, f, "x")
	for _, name := range []string{f, filepath.Join(t.TempDir(), "missing")} {
		if a, err := Open(context.Background(), Ref{Kind: KindDir, Name: name}, Options{}); err == nil {
			a.Close()
			t.Errorf("Open(dir:%s) succeeded", name)
		}
	}
}

func TestOpenDirHostRootHidesPseudoFS(t *testing.T) {
	if _, err := os.Stat("/proc/self"); err != nil {
		t.Skip("no /proc")
	}
	a, err := Open(context.Background(), Ref{Kind: KindDir, Name: "/"}, Options{})
	if err != nil {
		t.Skipf("cannot open /: %v", err)
	}
	defer a.Close()
	ents, err := a.FS.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if slices.Contains(pseudoDirs, e.Name()) {
			t.Errorf("ReadDir(/) lists %s", e.Name())
		}
	}
}

func TestHideFS(t *testing.T) {
	m := fstest.MapFS{
		"proc/1/status": {Data: []byte("x")},
		"sys/kernel":    {Data: []byte("x")},
		"dev/null":      {Data: []byte("")},
		"etc/passwd":    {Data: []byte("root")},
		"usr/dev/keep":  {Data: []byte("k")},
	}
	h := &hideFS{FS: m, hidden: pseudoDirs}
	names := func(ents []fs.DirEntry) []string {
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	ents, err := h.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"etc", "usr"}, names(ents)); diff != "" {
		t.Errorf("ReadDir(.) mismatch (-want +got):\n%s", diff)
	}
	f, err := h.Open(".")
	if err != nil {
		t.Fatal(err)
	}
	ents, err = f.(fs.ReadDirFile).ReadDir(-1)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"etc", "usr"}, names(ents)); diff != "" {
		t.Errorf("Open(.).ReadDir mismatch (-want +got):\n%s", diff)
	}
	ents, err = h.ReadDir("usr")
	if err != nil || !slices.Equal(names(ents), []string{"dev"}) {
		t.Errorf("ReadDir(usr) = %v, %v; only the top level is filtered", names(ents), err)
	}
	if _, err := h.Stat("etc/passwd"); err != nil {
		t.Errorf("Stat(etc/passwd): %v", err)
	}
	var walked []string
	fs.WalkDir(h, ".", func(p string, d fs.DirEntry, err error) error {
		walked = append(walked, p)
		return err
	})
	if diff := cmp.Diff([]string{".", "etc", "etc/passwd", "usr", "usr/dev", "usr/dev/keep"}, walked); diff != "" {
		t.Errorf("walk mismatch (-want +got):\n%s", diff)
	}
}

func TestParseRef(t *testing.T) {
	tmp := t.TempDir()
	plainDir := filepath.Join(tmp, "rootfs")
	ociDir := filepath.Join(tmp, "layout")
	archive := filepath.Join(tmp, "image.tar")
	if err := os.MkdirAll(plainDir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(ociDir, "oci-layout"), `{"imageLayoutVersion":"1.0.0"}`)
	writeFile(t, archive, "tar")

	tests := []struct {
		in      string
		want    Ref
		wantErr bool
	}{
		// Explicit kinds.
		{in: "dir:/some/path", want: Ref{Kind: KindDir, Name: "/some/path"}},
		{in: "dir:" + ociDir, want: Ref{Kind: KindDir, Name: ociDir}},
		{in: "docker-archive:img.tar", want: Ref{Kind: KindDockerArchive, Name: "img.tar"}},
		{in: "oci-dir:./layout", want: Ref{Kind: KindOCIDir, Name: "./layout"}},
		{in: "registry:ghcr.io/org/app:1.2", want: Ref{Kind: KindRegistry, Name: "ghcr.io/org/app:1.2"}},
		{in: "docker:alpine:3.19", want: Ref{Kind: KindDocker, Name: "alpine:3.19"}},
		{in: "docker:registry:2", want: Ref{Kind: KindDocker, Name: "registry:2"}},
		// Nothing after the prefix.
		{in: "dir:", wantErr: true},
		{in: "docker-archive:", wantErr: true},
		{in: "oci-dir:", wantErr: true},
		{in: "registry:", wantErr: true},
		{in: "docker:", wantErr: true},
		{in: "", wantErr: true},
		// Detected from the file system.
		{in: plainDir, want: Ref{Kind: KindDir, Name: plainDir, Auto: true}},
		{in: ociDir, want: Ref{Kind: KindOCIDir, Name: ociDir, Auto: true}},
		{in: archive, want: Ref{Kind: KindDockerArchive, Name: archive, Auto: true}},
		// Paths that do not exist are errors, not image names.
		{in: filepath.Join(tmp, "missing"), wantErr: true},
		{in: "./definitely-missing-vigil-target", wantErr: true},
		{in: "../definitely-missing-vigil-target", wantErr: true},
		{in: "/definitely/missing/vigil/target", wantErr: true},
		// Anything else is an image reference.
		{in: "alpine", want: Ref{Kind: KindDocker, Name: "alpine", Auto: true}},
		{in: "alpine:3.19", want: Ref{Kind: KindDocker, Name: "alpine:3.19", Auto: true}},
		{in: "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			want: Ref{Kind: KindDocker, Name: "ghcr.io/org/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Auto: true}},
		{in: "localhost:5000/app:dev", want: Ref{Kind: KindDocker, Name: "localhost:5000/app:dev", Auto: true}},
		// A bare name that starts like a kind is taken as that kind: the
		// image "registry:2" must be written "docker:registry:2".
		{in: "registry:2", want: Ref{Kind: KindRegistry, Name: "2"}},
	}
	for _, tc := range tests {
		got, err := ParseRef(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseRef(%q) error = %v, want error: %v", tc.in, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseRef(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestRefString(t *testing.T) {
	if got := (Ref{Kind: KindOCIDir, Name: "/x"}).String(); got != "oci-dir:/x" {
		t.Errorf("String() = %q", got)
	}
	// Every kind round-trips through ParseRef.
	for _, k := range kinds {
		r := Ref{Kind: k, Name: "name"}
		got, err := ParseRef(r.String())
		if err != nil || got != r {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", r.String(), got, err, r)
		}
	}
}

func TestOpenUnknownKind(t *testing.T) {
	_, err := Open(context.Background(), Ref{Kind: "ftp", Name: "x"}, Options{})
	if err == nil {
		t.Fatal("Open of an unknown kind succeeded")
	}
	if errors.Is(err, fs.ErrNotExist) {
		t.Errorf("unexpected error kind: %v", err)
	}
}
