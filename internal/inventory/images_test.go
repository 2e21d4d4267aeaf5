package inventory_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// scan opens ref with the scanner's Keep function and returns its inventory.
func scan(t *testing.T, ref string, mod func(*artifact.Options)) *inventory.Report {
	t.Helper()
	return scanTB(t, ref, mod)
}

func benchScan(b *testing.B, ref string) { scanTB(b, ref, nil) }

func scanTB(t testing.TB, ref string, mod func(*artifact.Options)) *inventory.Report {
	t.Helper()
	r, err := artifact.ParseRef(ref)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := inventory.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	o := artifact.DefaultOptions()
	o.Keep = sc.Keep
	if mod != nil {
		mod(&o)
	}
	a, err := artifact.Open(t.Context(), r, o)
	if err != nil {
		t.Fatalf("opening %s: %v", ref, err)
	}
	defer a.Close()
	rep, err := sc.Scan(t.Context(), a)
	if err != nil {
		t.Fatalf("scanning %s: %v", ref, err)
	}
	return rep
}

// dpkgTruth is what dpkg itself reports for the root filesystem: package,
// version, source package and source version.
func dpkgTruth(t *testing.T, rootfs string) []string {
	t.Helper()
	vigiltest.RequireCommand(t, "dpkg-query")
	out := vigiltest.Run(t, "", "dpkg-query", "--admindir="+filepath.Join(rootfs, "var/lib/dpkg"), "-W",
		"-f", "${db:Status-Abbrev}\t${Package}\t${Version}\t${source:Package}\t${source:Version}\n")
	var rows []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		status, rest, _ := strings.Cut(l, "\t")
		if strings.HasPrefix(status, "ii") {
			rows = append(rows, rest)
		}
	}
	if len(rows) < 50 {
		t.Fatalf("dpkg-query listed only %d installed packages in %s", len(rows), rootfs)
	}
	return sorted(rows)
}

func debRows(r *inventory.Report) []string {
	var rows []string
	for _, p := range r.Packages {
		if p.Type == "deb" {
			rows = append(rows, strings.Join([]string{p.Name, p.Version, p.SourceName, p.SourceVersion}, "\t"))
		}
	}
	return sorted(rows)
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// TestBookwormForms scans the same debootstrap'ed Debian root in every form
// a user may hand Vigil and compares each package set with dpkg's own.
func TestBookwormForms(t *testing.T) {
	rootfs := vigiltest.BookwormRootfs(t)
	want := dpkgTruth(t, rootfs)
	archive := vigiltest.BookwormArchive(t)

	// An OCI layout written from the archive.
	ociDir := filepath.Join(t.TempDir(), "oci")
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := layout.Write(ociDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}

	// A real registry on loopback, pushed to over HTTP.
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	pushed := host + "/vigil/bookworm:minbase"
	push(t, pushed, archive)

	forms := []struct {
		name string
		ref  string
		mod  func(*artifact.Options)
	}{
		{"dir", "dir:" + rootfs, nil},
		{"docker-archive", "docker-archive:" + archive, nil},
		{"oci-dir", "oci-dir:" + ociDir, nil},
		{"registry", "registry:" + pushed, func(o *artifact.Options) { o.Insecure = true }},
		{"docker", "docker:" + vigiltest.BookwormImage, nil},
	}
	for _, f := range forms {
		t.Run(f.name, func(t *testing.T) {
			rep := scan(t, f.ref, f.mod)
			if diff := cmp.Diff(want, debRows(rep)); diff != "" {
				t.Errorf("%s: packages differ from dpkg-query (-dpkg +vigil):\n%s", f.ref, diff)
			}
			if rep.OS == nil || rep.OS.ID != "debian" || rep.OS.VersionID != "12" {
				t.Errorf("%s: OS = %+v, want debian 12", f.ref, rep.OS)
			}
			if rep.Partial {
				t.Errorf("%s: partial result: %+v", f.ref, rep.Errors)
			}
			for _, p := range rep.Packages {
				if p.PURL == "" || p.Ecosystem != "Debian:12" {
					t.Fatalf("%s: package %s has purl %q ecosystem %q", f.ref, p.Name, p.PURL, p.Ecosystem)
				}
			}
			if f.name == "dir" {
				if rep.Image != nil {
					t.Errorf("dir target has image metadata")
				}
				return
			}
			if rep.Image == nil || len(rep.Image.Layers) != 1 {
				t.Fatalf("%s: image metadata %+v, want one layer", f.ref, rep.Image)
			}
			for _, p := range rep.Packages {
				if p.Layer == nil || p.Layer.DiffID != rep.Image.Layers[0].DiffID {
					t.Fatalf("%s: package %s not attributed to the only layer: %+v", f.ref, p.Name, p.Layer)
				}
			}
			if rep.Image.ConfigDigest == "" || rep.Image.Architecture != "amd64" || rep.Image.OS != "linux" {
				t.Errorf("%s: image metadata incomplete: %+v", f.ref, rep.Image)
			}
		})
	}
}

func push(t *testing.T, ref, archive string, opts ...remote.Option) {
	t.Helper()
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img, append(opts, remote.WithContext(t.Context()))...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
}

// basicAuth guards a registry the way a registry with htpasswd does: 401
// with a Basic challenge until the right credentials come.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="vigil-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// TestRegistryAuth covers basic auth from flags, from the Docker config,
// and the failure with wrong credentials.
func TestRegistryAuth(t *testing.T) {
	archive := vigiltest.BookwormArchive(t)
	reg := httptest.NewServer(basicAuth("alice", "s3cret", registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(reg.Close)
	host := strings.TrimPrefix(reg.URL, "http://")
	ref := host + "/private/bookworm:1"
	// Push through the same guard, with the right credentials.
	pushWithAuth(t, ref, archive, "alice", "s3cret")

	insecure := func(o *artifact.Options) { o.Insecure = true }
	t.Run("flags", func(t *testing.T) {
		rep := scan(t, "registry:"+ref, func(o *artifact.Options) {
			insecure(o)
			o.Username, o.Password = "alice", "s3cret"
		})
		if len(debRows(rep)) < 50 {
			t.Errorf("got %d packages", len(debRows(rep)))
		}
	})
	t.Run("docker-config", func(t *testing.T) {
		cfg := t.TempDir()
		auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))
		js := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
		if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(js), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("DOCKER_CONFIG", cfg)
		rep := scan(t, "registry:"+ref, insecure)
		if len(debRows(rep)) < 50 {
			t.Errorf("got %d packages", len(debRows(rep)))
		}
	})
	t.Run("wrong-password", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		r, _ := artifact.ParseRef("registry:" + ref)
		o := artifact.DefaultOptions()
		o.Insecure, o.Username, o.Password = true, "alice", "wrong"
		a, err := artifact.Open(context.Background(), r, o)
		if err == nil {
			a.Close()
			t.Fatal("opening with a wrong password succeeded")
		}
		if !strings.Contains(err.Error(), ref) {
			t.Errorf("error %q does not name the image", err)
		}
	})
}

func pushWithAuth(t *testing.T, ref, archive, user, pass string) {
	t.Helper()
	push(t, ref, archive, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
}
