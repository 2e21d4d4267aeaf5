// Package vigiltest holds test helpers: requirements that skip a test with
// the reason outside CI and fail it under CI=true (CI has root, Docker and
// the fixtures), and builders for the cached fixtures scripts/test-prereqs.sh
// makes. It is imported by tests only.
package vigiltest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the tests run under CI, where every requirement
// must be met.
func InCI() bool { return os.Getenv("CI") == "true" }

// Unavailable skips t with reason, or fails it when running in CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true but a requirement is missing: "+format, args...)
	}
	t.Skipf("skipped: "+format, args...)
}

// RequireRoot needs the effective user to be root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Unavailable(t, "needs root")
	}
}

// RequireCommand needs name on PATH and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Unavailable(t, "needs %s on PATH (make test installs it)", name)
	}
	return p
}

// RequireDocker needs a running Docker engine.
func RequireDocker(t testing.TB) {
	t.Helper()
	RequireCommand(t, "docker")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		Unavailable(t, "needs a running Docker engine (make test starts dockerd): %v: %s", err, bytes.TrimSpace(out))
	}
}

// CacheDir is where scripts/test-prereqs.sh keeps fixtures.
func CacheDir() string {
	if d := os.Getenv("VIGIL_TEST_CACHE"); d != "" {
		return d
	}
	return "/var/cache/vigil-test"
}

// BookwormRootfs returns the cached debootstrap'ed Debian bookworm root.
func BookwormRootfs(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(CacheDir(), "bookworm-rootfs")
	if _, err := os.Stat(dir + ".done"); err != nil {
		Unavailable(t, "needs the bookworm rootfs fixture at %s (run scripts/test-prereqs.sh as root)", dir)
	}
	return dir
}

// BookwormImage is the Docker image imported from the bookworm rootfs.
const BookwormImage = "vigil-test/bookworm:minbase"

// RequireBookwormImage needs Docker and the imported bookworm image.
func RequireBookwormImage(t testing.TB) string {
	t.Helper()
	RequireDocker(t)
	if out, err := exec.Command("docker", "image", "inspect", BookwormImage).CombinedOutput(); err != nil {
		Unavailable(t, "needs the %s image (run scripts/test-prereqs.sh): %s", BookwormImage, firstLine(out))
	}
	return BookwormImage
}

// BookwormArchive returns the cached `docker save` of BookwormImage.
func BookwormArchive(t testing.TB) string {
	t.Helper()
	p := filepath.Join(CacheDir(), "bookworm-docker.tar")
	if _, err := os.Stat(p); err != nil {
		Unavailable(t, "needs %s (run scripts/test-prereqs.sh)", p)
	}
	return p
}

// Deb returns the path of a cached .deb whose file name starts with name_.
func Deb(t testing.TB, name string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(CacheDir(), "debs", name+"_*.deb"))
	if len(m) == 0 {
		Unavailable(t, "needs %s.deb in %s/debs (run scripts/test-prereqs.sh)", name, CacheDir())
	}
	return m[0]
}

// Run runs a command and fails t with its output when it fails.
func Run(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// SharedData returns the directory of real upstream vulnerability and
// detection data: $VIGIL_SHARED_DATA, else ../shared/data beside the
// repository (where CI puts it).
func SharedData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VIGIL_SHARED_DATA")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data")
	}
	if _, err := os.Stat(filepath.Join(dir, "osv", "Go", "all.zip")); err != nil {
		Unavailable(t, "needs the shared data at %s: %v", dir, err)
	}
	return dir
}

// GoBin returns the path of a Go-installed tool: PATH first, then
// $(go env GOPATH)/bin.
func GoBin(t testing.TB, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	Unavailable(t, "needs %s (make test installs it with go install)", name)
	return ""
}
