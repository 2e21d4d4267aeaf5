package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// layerOf turns hand-made entries into a (gzip-compressed) image layer.
func layerOf(t *testing.T, ents ...ent) v1.Layer {
	t.Helper()
	b := mkTar(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var testCreated = v1.Time{Time: time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)}

// buildImage stacks one layer per entry list onto an empty image and sets a
// config with every field the scanner reads, and a history in which an
// EmptyLayer entry (an ENV step) sits between the layer-making steps.
func buildImage(t *testing.T, layers ...[]ent) v1.Image {
	t.Helper()
	img := empty.Image
	var hist []v1.History
	for i, ents := range layers {
		var err error
		img, err = mutate.AppendLayers(img, layerOf(t, ents...))
		if err != nil {
			t.Fatal(err)
		}
		hist = append(hist, v1.History{CreatedBy: fmt.Sprintf("RUN step %d", i), Created: testCreated})
		if i == 0 {
			hist = append(hist, v1.History{CreatedBy: "ENV PATH=/usr/bin", EmptyLayer: true, Created: testCreated})
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Created = testCreated
	cf.History = hist
	cf.Config = v1.Config{
		User:         "1000:1000",
		Env:          []string{"PATH=/usr/bin", "APP_MODE=prod"},
		Entrypoint:   []string{"/usr/bin/app", "--serve"},
		Cmd:          []string{"--port", "8080"},
		WorkingDir:   "/srv",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
		Labels:       map[string]string{"org.opencontainers.image.source": "https://example.com/app", "team": "sec"},
	}
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

const testTag = "example.com/test/app:1.0"

func writeDockerArchive(t *testing.T, img v1.Image) string {
	t.Helper()
	tag, err := name.NewTag(testTag)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "image.tar")
	if err := tarball.WriteToFile(p, tag, img); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeOCILayout(t *testing.T, imgs ...v1.Image) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		if err := p.AppendImage(img); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openTest(t *testing.T, ref Ref, mod func(*Options)) *Artifact {
	t.Helper()
	o := DefaultOptions()
	o.Keep = keepAll
	o.MaxFileSize = 1 << 20
	o.MaxLayerSize = 64 << 20
	if mod != nil {
		mod(&o)
	}
	a, err := Open(context.Background(), ref, o)
	if err != nil {
		t.Fatalf("Open(%s): %v", ref, err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a
}

func TestOpenImage(t *testing.T) {
	img := buildImage(t,
		[]ent{
			dir("etc/"),
			file("etc/os-release", "ID=alpine\nVERSION_ID=3.19\n"),
			file("etc/motd", "hello"),
			dir("lib/apk/db/"),
			file("lib/apk/db/installed", "P:musl\nV:1.2.4\n"),
			file("opt/old/x", "x"),
		},
		[]ent{
			file("lib/apk/db/installed", "P:musl\nV:1.2.4\n\nP:openssl\nV:3.1\n"),
			file("etc/.wh.motd", ""),
			file("opt/old/.wh..wh..opq", ""),
			file("opt/old/y", "y"),
			sym("usr/lib/os-release", "../../etc/os-release"),
		},
		[]ent{
			file("srv/app", "#!/bin/true\n"),
			hard("srv/app-link", "srv/app"),
			file("/etc/shadow", "abs"),
		},
	)
	wantTree := []string{
		"etc/ L0",
		`etc/os-release 26 "ID=alpine\nVERSION_ID=3.19\n" L0`,
		"lib/ L0",
		"lib/apk/ L0",
		"lib/apk/db/ L0",
		`lib/apk/db/installed 32 "P:musl\nV:1.2.4\n\nP:openssl\nV:3.1\n" L1`,
		"opt/ L0",
		"opt/old/ L0",
		`opt/old/y 1 "y" L1`,
		"srv/ L2",
		`srv/app 12 "#!/bin/true\n" L2`,
		`srv/app-link 12 "#!/bin/true\n" L2`,
		"usr/ L1",
		"usr/lib/ L1",
		"usr/lib/os-release -> ../../etc/os-release L1",
	}
	wantWarn := []string{"L2 /etc/shadow"}

	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var wantLayers []Layer
	for i, l := range ls {
		d, _ := l.Digest()
		id, _ := l.DiffID()
		sz, _ := l.Size()
		wantLayers = append(wantLayers, Layer{Digest: d.String(), DiffID: id.String(), CreatedBy: fmt.Sprintf("RUN step %d", i), Size: sz})
	}
	cfgName, _ := img.ConfigName()
	manifestDigest, _ := img.Digest()

	for _, tc := range []struct {
		kind Kind
		path string
		want Image
	}{
		{KindDockerArchive, writeDockerArchive(t, img), Image{RepoTags: []string{testTag}}},
		{KindOCIDir, writeOCILayout(t, img), Image{Digest: manifestDigest.String()}},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			a := openTest(t, Ref{Kind: tc.kind, Name: tc.path}, nil)
			if len(a.Errors) != 0 {
				t.Errorf("Errors: %v", a.Errors)
			}
			if a.Tree == nil || a.FS == nil || a.Image == nil {
				t.Fatalf("artifact incomplete: %+v", a)
			}
			if diff := cmp.Diff(wantTree, listing(t, a.Tree)); diff != "" {
				t.Errorf("tree mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(wantWarn, warnLines(t, a.Warnings)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			want := tc.want
			want.ConfigDigest = cfgName.String()
			want.OS, want.Architecture = "linux", "amd64"
			want.Created = testCreated.Time
			want.User = "1000:1000"
			want.Env = []string{"PATH=/usr/bin", "APP_MODE=prod"}
			want.Entrypoint = []string{"/usr/bin/app", "--serve"}
			want.Cmd = []string{"--port", "8080"}
			want.WorkingDir = "/srv"
			want.ExposedPorts = []string{"53/udp", "8080/tcp"}
			want.Labels = map[string]string{"org.opencontainers.image.source": "https://example.com/app", "team": "sec"}
			want.Layers = wantLayers
			got := *a.Image
			if tc.kind == KindDockerArchive {
				// A docker-archive has no registry manifest: the blob
				// digest and size reported for its layers vary (`docker
				// save` stores them uncompressed), so only check DiffID
				// and CreatedBy there.
				got.Layers = nil
				for i, l := range a.Image.Layers {
					if l.Digest == "" {
						t.Errorf("layer %d has no digest", i)
					}
					got.Layers = append(got.Layers, Layer{Digest: wantLayers[i].Digest, DiffID: l.DiffID, CreatedBy: l.CreatedBy, Size: wantLayers[i].Size})
				}
			}
			if diff := cmp.Diff(&want, &got); diff != "" {
				t.Errorf("image metadata mismatch (-want +got):\n%s", diff)
			}
			// Reading through the artifact's FS, the way extractors do.
			if b, err := fs.ReadFile(a.FS, "usr/lib/os-release"); err != nil || !strings.HasPrefix(string(b), "ID=alpine") {
				t.Errorf("ReadFile(usr/lib/os-release) = %q, %v", b, err)
			}
			// 14 entries; 7 regular files with content (whiteouts are
			// empty, a hardlink shares its target's content).
			if a.Stats.Files != 14 || a.Stats.Retained != 7 || a.Stats.Bytes == 0 {
				t.Errorf("Stats = %+v, want 14 files, 7 retained, some bytes", a.Stats)
			}
		})
	}
}

func TestOpenImageKeepSelects(t *testing.T) {
	img := buildImage(t, []ent{file("etc/os-release", "ID=x"), file("bin/big", "ELF...")})
	var asked []string
	a := openTest(t, Ref{Kind: KindDockerArchive, Name: writeDockerArchive(t, img)}, func(o *Options) {
		o.Keep = func(name string, fi fs.FileInfo) bool {
			asked = append(asked, fmt.Sprintf("%s %d %v", name, fi.Size(), fi.Mode().IsRegular()))
			return name == "etc/os-release"
		}
	})
	if diff := cmp.Diff([]string{"etc/os-release 4 true", "bin/big 6 true"}, asked); diff != "" {
		t.Errorf("Keep calls mismatch (-want +got):\n%s", diff)
	}
	if _, err := fs.ReadFile(a.FS, "bin/big"); !errors.Is(err, errNotRetained) {
		t.Errorf("ReadFile(bin/big) = %v, want errNotRetained", err)
	}
	if fi, err := fs.Stat(a.FS, "bin/big"); err != nil || fi.Size() != 6 {
		t.Errorf("Stat(bin/big) = %v, %v", fi, err)
	}
}

func TestOpenImageHistoryMismatch(t *testing.T) {
	// A history that does not map onto the layers leaves CreatedBy empty
	// rather than shifting commands onto the wrong layers.
	img := buildImage(t, []ent{file("a", "a")}, []ent{file("b", "b")})
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.History = []v1.History{{CreatedBy: "only one"}}
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	a := openTest(t, Ref{Kind: KindOCIDir, Name: writeOCILayout(t, img)}, nil)
	for i, l := range a.Image.Layers {
		if l.CreatedBy != "" {
			t.Errorf("layer %d CreatedBy = %q, want empty", i, l.CreatedBy)
		}
	}
}

func TestOpenOCILayoutPlatform(t *testing.T) {
	arm := buildImage(t, []ent{file("arch", "arm64")})
	amd := buildImage(t, []ent{file("arch", "amd64")})
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(arm, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(amd, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})); err != nil {
		t.Fatal(err)
	}
	for _, plat := range []string{"linux/amd64", "linux/arm64"} {
		a := openTest(t, Ref{Kind: KindOCIDir, Name: dir}, func(o *Options) { o.Platform = plat })
		b, err := fs.ReadFile(a.FS, "arch")
		if err != nil || "linux/"+string(b) != plat {
			t.Errorf("platform %s: arch = %q, %v", plat, b, err)
		}
	}
	o := DefaultOptions()
	o.Platform = "linux/s390x"
	if a, err := Open(context.Background(), Ref{Kind: KindOCIDir, Name: dir}, o); err == nil {
		a.Close()
		t.Error("Open with a platform the index lacks succeeded")
	}
}

// TestOpenHostileImage: nothing outside the image may be read or written.
func TestOpenHostileImage(t *testing.T) {
	outside := t.TempDir()
	sentinel := filepath.Join(outside, "sentinel")
	const secret = "SENTINEL-SECRET-0xC0FFEE"
	if err := os.WriteFile(sentinel, []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	up := strings.Repeat("../", 20)
	img := buildImage(t,
		[]ent{
			file("etc/os-release", "ID=evil"),
			file("../../outside", "escaped"),
			file("/abs", "absolute"),
			dir("../../outdir/"),
		},
		[]ent{
			sym("var/lib/dpkg/status", sentinel),
			sym("var/lib/rpm", filepath.Dir(sentinel)),
			sym("rel-escape", up+strings.TrimPrefix(sentinel, "/")),
			hard("hl-abs", sentinel),
			hard("hl-rel", up+strings.TrimPrefix(sentinel, "/")),
			sym("tmpdir", outside),
			file("tmpdir/planted", "planted"),
		},
	)
	for _, tc := range []struct {
		kind Kind
		path string
	}{
		{KindDockerArchive, writeDockerArchive(t, img)},
		{KindOCIDir, writeOCILayout(t, img)},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			a := openTest(t, Ref{Kind: tc.kind, Name: tc.path}, nil)
			if len(a.Errors) != 0 {
				t.Errorf("Errors: %v", a.Errors)
			}
			wantWarn := []string{
				"L0 ../../outside", "L0 /abs", "L0 ../../outdir/",
				"L1 hl-abs", "L1 hl-rel", "L1 tmpdir/planted",
			}
			if diff := cmp.Diff(wantWarn, warnLines(t, a.Warnings)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
			for _, name := range []string{"var/lib/dpkg/status", "rel-escape", "var/lib/rpm/sentinel", "tmpdir/sentinel", "hl-abs", "hl-rel"} {
				if b, err := fs.ReadFile(a.FS, name); err == nil || bytes.Contains(b, []byte(secret)) {
					t.Errorf("ReadFile(%s) = %q, %v; want an error", name, b, err)
				}
			}
			// No file anywhere in the tree holds the sentinel's bytes.
			fs.WalkDir(a.FS, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					t.Errorf("walk %s: %v", p, err)
					return nil
				}
				if b, err := fs.ReadFile(a.FS, p); err == nil && bytes.Contains(b, []byte(secret)) {
					t.Errorf("%s holds the sentinel's content", p)
				}
				return nil
			})
			// Nothing was written next to the archive or the sentinel.
			for _, p := range []string{
				filepath.Join(filepath.Dir(tc.path), "outside"),
				filepath.Join(filepath.Dir(filepath.Dir(tc.path)), "outside"),
				filepath.Join(outside, "planted"),
				"/abs",
			} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s exists after opening the image", p)
				}
			}
			if b, err := os.ReadFile(sentinel); err != nil || string(b) != secret {
				t.Errorf("sentinel changed: %q, %v", b, err)
			}
		})
	}
}

// rawLayer is one blob of a hand-assembled image: its bytes as stored and
// the DiffID its config claims.
type rawLayer struct {
	blob   []byte
	diffID v1.Hash
}

func gzipLayer(t *testing.T, ents ...ent) rawLayer {
	t.Helper()
	tb := mkTar(t, ents...)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(tb)
	zw.Close()
	id, _, err := v1.SHA256(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	return rawLayer{blob: buf.Bytes(), diffID: id}
}

// garbageLayer starts like gzip and then is noise.
func garbageLayer(t *testing.T) rawLayer {
	t.Helper()
	b := append([]byte{0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte("not deflate data "), 64)...)
	id, _, _ := v1.SHA256(bytes.NewReader([]byte("whatever")))
	return rawLayer{blob: b, diffID: id}
}

func rawConfig(t *testing.T, layers []rawLayer) []byte {
	t.Helper()
	cf := v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}}
	for i, l := range layers {
		cf.RootFS.DiffIDs = append(cf.RootFS.DiffIDs, l.diffID)
		cf.History = append(cf.History, v1.History{CreatedBy: fmt.Sprintf("step %d", i)})
	}
	b, err := json.Marshal(cf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeRawDockerArchive assembles a docker-archive by hand, so a layer can
// be corrupt without any library refusing to write it.
func writeRawDockerArchive(t *testing.T, layers []rawLayer) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	var names []string
	for i, l := range layers {
		n := fmt.Sprintf("layer%d.tar.gz", i)
		names = append(names, n)
		add(n, l.blob)
	}
	add("config.json", rawConfig(t, layers))
	m, _ := json.Marshal(tarball.Manifest{{Config: "config.json", RepoTags: []string{testTag}, Layers: names}})
	add("manifest.json", m)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "raw.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeRawOCILayout assembles an OCI layout blob by blob.
func writeRawOCILayout(t *testing.T, layers []rawLayer) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "oci")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	put := func(b []byte, mt types.MediaType) v1.Descriptor {
		h, n, err := v1.SHA256(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(b))); err != nil {
			t.Fatal(err)
		}
		return v1.Descriptor{MediaType: mt, Size: n, Digest: h}
	}
	m := v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1}
	for _, l := range layers {
		m.Layers = append(m.Layers, put(l.blob, types.OCILayer))
	}
	m.Config = put(rawConfig(t, layers), types.OCIConfigJSON)
	mb, _ := json.Marshal(m)
	if err := p.AppendDescriptor(put(mb, types.OCIManifestSchema1)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestOpenImageCorruptLayer(t *testing.T) {
	layers := []rawLayer{
		gzipLayer(t, file("etc/os-release", "ID=test"), file("lower", "l")),
		garbageLayer(t),
		gzipLayer(t, file("upper", "u")),
	}
	for _, tc := range []struct {
		kind Kind
		path string
	}{
		{KindDockerArchive, writeRawDockerArchive(t, layers)},
		{KindOCIDir, writeRawOCILayout(t, layers)},
	} {
		t.Run(string(tc.kind), func(t *testing.T) {
			a := openTest(t, Ref{Kind: tc.kind, Name: tc.path}, nil)
			if len(a.Errors) != 1 {
				t.Fatalf("Errors = %v, want exactly one", a.Errors)
			}
			if msg := a.Errors[0].Error(); !strings.Contains(msg, "layer 1 ") {
				t.Errorf("error %q does not name layer 1", msg)
			}
			want := []string{`etc/ L0`, `etc/os-release 7 "ID=test" L0`, `lower 1 "l" L0`, `upper 1 "u" L2`}
			if diff := cmp.Diff(want, listing(t, a.Tree)); diff != "" {
				t.Errorf("tree mismatch (-want +got):\n%s", diff)
			}
			if len(a.Image.Layers) != 3 {
				t.Fatalf("Image.Layers = %d, want 3", len(a.Image.Layers))
			}
			// The DiffIDs are the config's rootfs.diff_ids. go-containerregistry
			// computes DiffID() of a compressed layer by decompressing and
			// hashing the whole blob, so an empty one here means fillMeta
			// decompressed the layer, with no MaxLayerSize bound.
			for i, l := range a.Image.Layers {
				if l.DiffID != layers[i].diffID.String() {
					t.Errorf("BUG: Image.Layers[%d].DiffID = %q, want %s from the config", i, l.DiffID, layers[i].diffID)
				}
			}
		})
	}
}

func TestOpenImageLayerLimit(t *testing.T) {
	img := buildImage(t,
		[]ent{file("small", "s")},
		[]ent{file("big1", strings.Repeat("x", 40<<10)), file("big2", strings.Repeat("y", 40<<10))},
		[]ent{file("after", "a")},
	)
	o := DefaultOptions()
	o.Keep = keepAll
	o.MaxLayerSize = 64 << 10
	a, err := Open(context.Background(), Ref{Kind: KindDockerArchive, Name: writeDockerArchive(t, img)}, o)
	if err != nil {
		t.Fatalf("BUG: one layer over MaxLayerSize makes Open fail entirely: %v", err)
	}
	defer a.Close()
	if len(a.Errors) != 1 || !errors.Is(a.Errors[0], ErrLimit) {
		t.Fatalf("Errors = %v, want one ErrLimit", a.Errors)
	}
	for _, name := range []string{"small", "big1", "after"} {
		if _, err := fs.Stat(a.FS, name); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
	if _, err := fs.Stat(a.FS, "big2"); err == nil {
		t.Error("big2, past the layer limit, is present")
	}
}

type recProgress struct {
	layers []string
	bytes  int64
}

func (p *recProgress) Layer(i, n int, size int64) {
	p.layers = append(p.layers, fmt.Sprintf("%d/%d", i, n))
}
func (p *recProgress) Add(n int64) { p.bytes += n }

func TestOpenImageProgressAndCancel(t *testing.T) {
	img := buildImage(t, []ent{file("a", "a")}, []ent{file("b", "b")})
	path := writeDockerArchive(t, img)
	p := &recProgress{}
	a := openTest(t, Ref{Kind: KindDockerArchive, Name: path}, func(o *Options) { o.Progress = p })
	if diff := cmp.Diff([]string{"0/2", "1/2"}, p.layers); diff != "" {
		t.Errorf("Progress.Layer calls mismatch (-want +got):\n%s", diff)
	}
	if p.bytes != a.Stats.Bytes || p.bytes == 0 {
		t.Errorf("Progress.Add total %d, Stats.Bytes %d", p.bytes, a.Stats.Bytes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if a, err := Open(ctx, Ref{Kind: KindDockerArchive, Name: path}, DefaultOptions()); err == nil {
		a.Close()
		t.Error("Open with a canceled context succeeded")
	}
}

func TestOpenImageErrors(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "not.tar")
	os.WriteFile(notTar, []byte("hello"), 0o644)
	for _, ref := range []Ref{
		{Kind: KindDockerArchive, Name: filepath.Join(dir, "missing.tar")},
		{Kind: KindDockerArchive, Name: notTar},
		{Kind: KindOCIDir, Name: dir},
		{Kind: "bogus", Name: "x"},
	} {
		if a, err := Open(context.Background(), ref, DefaultOptions()); err == nil {
			a.Close()
			t.Errorf("Open(%s) succeeded", ref)
		}
	}
}

// TestOpenImageDecompressionBomb: a layer that inflates past MaxLayerSize
// is recorded as an ErrLimit error; Open still returns the other layers.
func TestOpenImageDecompressionBomb(t *testing.T) {
	const size = 64 << 20
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size})
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	zw.Close()
	id, _, _ := v1.SHA256(bytes.NewReader([]byte("not computed")))
	layers := []rawLayer{
		gzipLayer(t, file("before", "b")),
		{blob: gz.Bytes(), diffID: id},
		gzipLayer(t, file("after", "a")),
	}
	o := DefaultOptions()
	o.Keep = keepAll
	o.MaxLayerSize = 4 << 20
	a, err := Open(context.Background(), Ref{Kind: KindOCIDir, Name: writeRawOCILayout(t, layers)}, o)
	if err != nil {
		t.Fatalf("BUG: Open failed entirely: %v", err)
	}
	defer a.Close()
	if len(a.Errors) != 1 || !errors.Is(a.Errors[0], ErrLimit) || !strings.Contains(a.Errors[0].Error(), "layer 1 ") {
		t.Errorf("Errors = %v, want one ErrLimit for layer 1", a.Errors)
	}
	for _, name := range []string{"before", "after"} {
		if _, err := fs.ReadFile(a.FS, name); err != nil {
			t.Errorf("ReadFile(%s): %v", name, err)
		}
	}
	if a.Stats.Bytes > 2*o.MaxLayerSize {
		t.Errorf("read %d uncompressed bytes for a %d-byte layer limit", a.Stats.Bytes, o.MaxLayerSize)
	}
}
