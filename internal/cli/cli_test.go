package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// run executes vigil in-process and returns exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != ExitClean || !strings.HasPrefix(out, "vigil ") {
		t.Fatalf("vigil version: code %d, output %q", code, out)
	}
}

func validate(t *testing.T, schema string, doc string) {
	t.Helper()
	if err := vigiltest.CompileSchema(t, schema).Validate(vigiltest.ParseJSON(t, []byte(doc))); err != nil {
		t.Fatalf("output does not validate against %s: %v", schema, err)
	}
}

func components(t *testing.T, doc string) []map[string]any {
	t.Helper()
	var bom struct {
		Components []map[string]any `json:"components"`
	}
	if err := json.Unmarshal([]byte(doc), &bom); err != nil {
		t.Fatal(err)
	}
	return bom.Components
}

// TestSBOMDockerArchive is the first "done when": a schema-valid
// CycloneDX SBOM of a docker-archive with the right packages.
func TestSBOMDockerArchive(t *testing.T) {
	archive := vigiltest.BookwormArchive(t)
	code, out, stderr := run(t, "sbom", "-q", "docker-archive:"+archive)
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	validate(t, vigiltest.CycloneDXSchema, out)
	var debs int
	for _, c := range components(t, out) {
		if p, _ := c["purl"].(string); strings.HasPrefix(p, "pkg:deb/debian/") {
			debs++
		}
	}
	rootfs := vigiltest.BookwormRootfs(t)
	want := strings.Count(vigiltest.Run(t, "", "dpkg-query", "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"), "-W", "-f", "${db:Status-Abbrev}\n"), "ii")
	if debs != want {
		t.Errorf("SBOM has %d Debian components, dpkg-query lists %d installed packages", debs, want)
	}
}

// TestSBOMRegistry is the second: an image pushed to a local registry over
// plain HTTP, scanned with --insecure, as SPDX and CycloneDX.
func TestSBOMRegistry(t *testing.T) {
	archive := vigiltest.BookwormArchive(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	ref := strings.TrimPrefix(reg.URL, "http://") + "/x:tag"
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "sbom", "-q", "registry:"+ref, "--insecure")
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	validate(t, vigiltest.CycloneDXSchema, out)
	if n := len(components(t, out)); n < 50 {
		t.Errorf("only %d components", n)
	}
	code, out, stderr = run(t, "sbom", "-q", "-f", "spdx", "registry:"+ref, "--insecure")
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	validate(t, vigiltest.SPDXSchema, out)

}

func TestBadTargets(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "not-a-tar.tar")
	if err := os.WriteFile(notTar, []byte("this is not a tar archive"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing path", []string{"sbom", "./does/not/exist"}, "does/not/exist"},
		{"not a tar", []string{"sbom", "docker-archive:" + notTar}, notTar},
		{"empty kind", []string{"sbom", "dir:"}, "dir:"},
		{"bad format", []string{"sbom", "-f", "xml", dir}, "xml"},
		{"no target", []string{"sbom"}, "arg"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := run(t, tc.args...)
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not name %q", stderr, tc.want)
			}
		})
	}
}

// TestPartialImage: an image whose second layer is a truncated tar. The
// report keeps the first layer's packages, names the broken layer, and the
// exit code says the result is partial.
func TestPartialImage(t *testing.T) {
	rootfs := vigiltest.BookwormRootfs(t)
	status, err := os.ReadFile(filepath.Join(rootfs, "var/lib/dpkg/status"))
	if err != nil {
		t.Fatal(err)
	}
	good := tarOf(t, map[string][]byte{"var/lib/dpkg/status": status})
	broken := tarOf(t, map[string][]byte{"usr/share/doc/big.txt": bytes.Repeat([]byte("x"), 64<<10)})
	broken = broken[:len(broken)/2]
	img, err := mutate.AppendLayers(empty.Image,
		static.NewLayer(good, types.DockerLayer), static.NewLayer(broken, types.DockerLayer))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "partial.tar")
	tag, _ := name.NewTag("vigil.test/partial:1")
	if err := tarball.WriteToFile(path, tag, img); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := run(t, "scan", "--no-vulns", "-f", "json", "docker-archive:"+path)
	if code != ExitPartial {
		t.Fatalf("exit %d, want %d (partial); stderr %s", code, ExitPartial, stderr)
	}
	var rep struct {
		Partial  bool
		Errors   []struct{ Error string }
		Packages []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Partial || len(rep.Errors) != 1 || !strings.Contains(rep.Errors[0].Error, "layer 1") {
		t.Errorf("report partial=%v errors=%+v, want one error naming layer 1", rep.Partial, rep.Errors)
	}
	if len(rep.Packages) < 50 {
		t.Errorf("only %d packages kept from the good layer", len(rep.Packages))
	}
	if !strings.Contains(stderr, "partial result") {
		t.Errorf("stderr does not say the result is partial: %q", stderr)
	}
}

// TestMalformedLockFile: one unreadable lock file is reported by name and
// the rest of the directory is still inventoried.
func TestMalformedLockFile(t *testing.T) {
	dir := t.TempDir()
	write := func(p, s string) {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("app/requirements.txt", "requests==2.31.0\nurllib3==2.0.7\n")
	write("web/package-lock.json", `{"lockfileVersion": 3, "packages": {`)
	code, out, stderr := run(t, "scan", "--no-vulns", "-f", "json", dir)
	if code != ExitPartial {
		t.Fatalf("exit %d, want %d; stderr %s", code, ExitPartial, stderr)
	}
	if !strings.Contains(stderr, "package-lock.json") {
		t.Errorf("stderr does not name the broken file: %q", stderr)
	}
	for _, want := range []string{`"name": "requests"`, `"name": "urllib3"`} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %s", want)
		}
	}
}

func tarOf(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for n, b := range files {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
