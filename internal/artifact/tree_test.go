package artifact

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ent is one entry of a hand-made layer tar.
type ent struct {
	name string
	typ  byte   // tar.TypeReg when zero
	body string // content of a regular file
	link string // symlink or hardlink target
	mode int64  // raw tar mode; a default per type when zero
}

// dir, file, sym and hard build entries tersely.
func dir(name string) ent          { return ent{name: name, typ: tar.TypeDir} }
func file(name, body string) ent   { return ent{name: name, typ: tar.TypeReg, body: body} }
func sym(name, target string) ent  { return ent{name: name, typ: tar.TypeSymlink, link: target} }
func hard(name, target string) ent { return ent{name: name, typ: tar.TypeLink, link: target} }

var testModTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// mkTar writes ents as an uncompressed tar stream.
func mkTar(tb testing.TB, ents ...ent) []byte {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Linkname: e.link,
			Mode:     e.mode,
			ModTime:  testModTime,
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			switch h.Typeflag {
			case tar.TypeDir:
				h.Mode = 0o755
			case tar.TypeSymlink:
				h.Mode = 0o777
			default:
				h.Mode = 0o644
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatalf("tar header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, e.body); err != nil {
				tb.Fatalf("tar body %q: %v", e.name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func keepAll(string, fs.FileInfo) bool { return true }

// testOptions are generous bounds that keep every file; warnings go to *warns.
func testOptions(warns *[]Warning) applyOptions {
	return applyOptions{
		keep:         keepAll,
		maxFileSize:  1 << 20,
		maxLayerSize: 64 << 20,
		warn:         func(w Warning) { *warns = append(*warns, w) },
	}
}

// applyTars applies each tar as the next layer of a new tree and returns
// the tree, the warnings and one error (or nil) per layer.
func applyTars(t *testing.T, o applyOptions, layers ...[]byte) (*Tree, []Warning, []error) {
	t.Helper()
	var warns []Warning
	inner := o.warn
	o.warn = func(w Warning) {
		warns = append(warns, w)
		if inner != nil {
			inner(w)
		}
	}
	tr := newTree()
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Tree.Close: %v", err)
		}
	})
	var st applyStats
	errs := make([]error, len(layers))
	for i, l := range layers {
		errs[i] = tr.applyLayer(i, bytes.NewReader(l), o, &st)
	}
	return tr, warns, errs
}

// applyEnts builds one tar per layer and applies them with generous bounds.
func applyEnts(t *testing.T, layers ...[]ent) (*Tree, []Warning) {
	t.Helper()
	tars := make([][]byte, len(layers))
	for i, l := range layers {
		tars[i] = mkTar(t, l...)
	}
	var warns []Warning
	tr, _, errs := applyTars(t, testOptions(&warns), tars...)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("applyLayer(%d): %v", i, err)
		}
	}
	return tr, warns
}

// listing walks the tree and describes every entry as one line:
// "path/ Ln" for directories, "path -> target Ln" for symlinks and
// `path size "content" Ln` for regular files, Ln being LayerOf(path).
func listing(t *testing.T, tr *Tree) []string {
	t.Helper()
	var out []string
	err := fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		if p == "." {
			return nil
		}
		if !fs.ValidPath(p) {
			t.Errorf("walk: invalid path %q", p)
		}
		fi, err := d.Info()
		if err != nil {
			t.Errorf("%s: Info: %v", p, err)
			return nil
		}
		layer := tr.LayerOf(p)
		switch {
		case fi.IsDir():
			out = append(out, fmt.Sprintf("%s/ L%d", p, layer))
		case fi.Mode()&fs.ModeSymlink != 0:
			n, err := tr.lookup(p, false)
			if err != nil {
				t.Errorf("%s: lookup: %v", p, err)
				return nil
			}
			out = append(out, fmt.Sprintf("%s -> %s L%d", p, n.link, layer))
		case fi.Mode().IsRegular():
			b, err := fs.ReadFile(tr, p)
			content := fmt.Sprintf("%q", b)
			if err != nil {
				content = "<" + err.Error() + ">"
			}
			out = append(out, fmt.Sprintf("%s %d %s L%d", p, fi.Size(), content, layer))
		default:
			out = append(out, fmt.Sprintf("%s %v L%d", p, fi.Mode(), layer))
		}
		return nil
	})
	if err != nil {
		t.Errorf("WalkDir: %v", err)
	}
	return out
}

// warnLines renders warnings as "Ln path", checking each has a reason.
func warnLines(t *testing.T, ws []Warning) []string {
	t.Helper()
	var out []string
	for _, w := range ws {
		if w.Reason == "" {
			t.Errorf("warning for %q has no reason", w.Path)
		}
		out = append(out, fmt.Sprintf("L%d %s", w.Layer, w.Path))
	}
	return out
}

func TestApplyLayer(t *testing.T) {
	tests := []struct {
		name   string
		layers [][]ent
		want   []string
		warns  []string
	}{
		{
			name: "file modified in a later layer",
			layers: [][]ent{
				{dir("etc/"), file("etc/conf", "v0"), file("other", "o")},
				{file("etc/conf", "v1!")},
			},
			want: []string{
				"etc/ L0",
				`etc/conf 3 "v1!" L1`,
				`other 1 "o" L0`,
			},
		},
		{
			name: "leading ./ and trailing slashes are cleaned",
			layers: [][]ent{
				{dir("./"), dir("./usr/"), file("./usr//bin/x", "x")},
			},
			want: []string{"usr/ L0", "usr/bin/ L0", `usr/bin/x 1 "x" L0`},
		},
		{
			name: "whiteout deletes a file of a lower layer",
			layers: [][]ent{
				{file("x", "x"), file("y", "y")},
				{file(".wh.x", "")},
			},
			want: []string{`y 1 "y" L0`},
		},
		{
			name: "whiteout of a directory deletes its subtree",
			layers: [][]ent{
				{dir("d/"), file("d/a", "a"), file("d/e/f", "f"), file("keep", "k")},
				{file(".wh.d", "")},
			},
			want: []string{`keep 1 "k" L0`},
		},
		{
			name: "whiteout of something absent is a no-op",
			layers: [][]ent{
				{file("a", "a")},
				{file(".wh.nothing", ""), file("no/such/.wh.dir", "")},
			},
			want: []string{`a 1 "a" L0`},
		},
		{
			name: "opaque marker before the new entry",
			layers: [][]ent{
				{dir("d/"), file("d/a", "a"), file("d/b", "b"), file("d/sub/x", "x")},
				{dir("d/"), file("d/.wh..wh..opq", ""), file("d/c", "c")},
			},
			want: []string{"d/ L0", `d/c 1 "c" L1`},
		},
		{
			name: "opaque marker after the new entry",
			layers: [][]ent{
				{dir("d/"), file("d/a", "a"), file("d/b", "b"), file("d/sub/x", "x")},
				{file("d/c", "c"), file("d/.wh..wh..opq", "")},
			},
			want: []string{"d/ L0", `d/c 1 "c" L1`},
		},
		{
			name: "opaque marker hides lower entries of a subdirectory the layer also writes",
			layers: [][]ent{
				{file("d/sub/x", "x"), file("d/y", "y"), file("e/z", "z")},
				{file("d/sub/new", "n"), file("d/.wh..wh..opq", "")},
			},
			want: []string{
				"d/ L0", "d/sub/ L0", `d/sub/new 1 "n" L1`,
				"e/ L0", `e/z 1 "z" L0`,
			},
		},
		{
			name: "hardlinks in the same and a lower layer share content",
			layers: [][]ent{
				{file("etc/passwd", "root:x:0:0")},
				{
					file("bin/busybox", "BB"),
					hard("bin/sh", "bin/busybox"),
					hard("bin/passwd-copy", "./etc/passwd"),
				},
			},
			want: []string{
				"bin/ L1",
				`bin/busybox 2 "BB" L1`,
				`bin/passwd-copy 10 "root:x:0:0" L1`,
				`bin/sh 2 "BB" L1`,
				"etc/ L0",
				`etc/passwd 10 "root:x:0:0" L0`,
			},
		},
		{
			name: "hardlinks out of the tree or to nothing are skipped",
			layers: [][]ent{
				{file("etc/passwd", "p")},
				{
					hard("h-dotdot", "../../etc/passwd"),
					hard("h-abs", "/etc/passwd"),
					hard("h-missing", "no/such/file"),
					dir("somedir/"),
					hard("h-dir", "somedir"),
				},
			},
			want: []string{"etc/ L0", `etc/passwd 1 "p" L0`, "somedir/ L1"},
			warns: []string{
				"L1 h-dotdot", "L1 h-abs", "L1 h-missing", "L1 h-dir",
			},
		},
		{
			name: "absolute and traversing entry names are skipped",
			layers: [][]ent{{
				file("/etc/x", "abs"),
				file("../x", "up"),
				file("a/../../x", "up2"),
				file("b/../c", "inner dotdot"),
				dir("../outside/"),
				sym("../lnk", "/"),
				file("ok", "ok"),
			}},
			want: []string{`ok 2 "ok" L0`},
			warns: []string{
				"L0 /etc/x", "L0 ../x", "L0 a/../../x", "L0 b/../c",
				"L0 ../outside/", "L0 ../lnk",
			},
		},
		{
			name: "entry below a symlinked directory is refused",
			layers: [][]ent{
				{dir("etc/"), sym("lnk", "/etc"), sym("rel", "etc")},
				{file("lnk/evil", "evil"), file("rel/evil2", "evil"), dir("lnk/sub/")},
			},
			want: []string{"etc/ L0", "lnk -> /etc L0", "rel -> etc L0"},
			warns: []string{
				"L1 lnk/evil", "L1 rel/evil2", "L1 lnk/sub",
			},
		},
		{
			name: "symlink and entry below it in the same layer",
			layers: [][]ent{
				{dir("etc/"), sym("lnk", "etc"), file("lnk/evil", "evil")},
			},
			want:  []string{"etc/ L0", "lnk -> etc L0"},
			warns: []string{"L0 lnk/evil"},
		},
		{
			name: "whiteouts through a symlinked directory delete nothing",
			layers: [][]ent{
				{file("etc/passwd", "p"), file("etc/group", "g"), sym("lnk", "etc")},
				{file("lnk/.wh.passwd", ""), file("lnk/.wh..wh..opq", "")},
			},
			want: []string{
				"etc/ L0", `etc/group 1 "g" L0`, `etc/passwd 1 "p" L0`, "lnk -> etc L0",
			},
		},
		{
			name: "a file replaces a symlink rather than writing through it",
			layers: [][]ent{
				{file("etc/passwd", "p"), sym("x", "etc/passwd")},
				{file("x", "new")},
			},
			want: []string{"etc/ L0", `etc/passwd 1 "p" L0`, `x 3 "new" L1`},
		},
		{
			name: "devices and fifos are skipped",
			layers: [][]ent{{
				ent{name: "dev/null", typ: tar.TypeChar},
				ent{name: "dev/sda", typ: tar.TypeBlock},
				ent{name: "run/fifo", typ: tar.TypeFifo},
				file("ok", "ok"),
			}},
			want: []string{
				// Parent directories of a refused entry may exist.
				"dev/ L0", `ok 2 "ok" L0`, "run/ L0",
			},
			warns: []string{"L0 dev/null", "L0 dev/sda", "L0 run/fifo"},
		},
		{
			name: "directory replaced by a file and back",
			layers: [][]ent{
				{file("p/a", "a")},
				{file("p", "file")},
				{file("p/b", "b")},
			},
			// "p" is a regular file in layer 1, so layer 2 cannot put
			// anything below it.
			want:  []string{`p 4 "file" L1`},
			warns: []string{"L2 p/b"},
		},
		{
			name: "empty file is readable without retained content",
			layers: [][]ent{
				{file("empty", "")},
			},
			want: []string{`empty 0 "" L0`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, warns := applyEnts(t, tc.layers...)
			if diff := cmp.Diff(tc.want, listing(t, tr)); diff != "" {
				t.Errorf("tree listing mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.warns, warnLines(t, warns)); diff != "" {
				t.Errorf("warnings mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVersions(t *testing.T) {
	tr, _ := applyEnts(t,
		[]ent{file("var/lib/dpkg/status", "v0"), file("other", "o")},
		[]ent{file("var/lib/dpkg/status", "v1-longer")},
		[]ent{file("unrelated", "u")},
		[]ent{file("var/lib/dpkg/status", "v3")},
	)
	vs := tr.Versions("var/lib/dpkg/status")
	type got struct {
		Layer   int
		Size    int64
		Content string
	}
	var gots []got
	for _, v := range vs {
		b, err := io.ReadAll(io.NewSectionReader(tr.OpenVersion(v), 0, v.Size))
		if err != nil {
			t.Fatalf("reading version of layer %d: %v", v.Layer, err)
		}
		gots = append(gots, got{v.Layer, v.Size, string(b)})
	}
	want := []got{{0, 2, "v0"}, {1, 9, "v1-longer"}, {3, 2, "v3"}}
	if diff := cmp.Diff(want, gots); diff != "" {
		t.Errorf("Versions mismatch (-want +got):\n%s", diff)
	}
	if got := tr.LayerOf("var/lib/dpkg/status"); got != 3 {
		t.Errorf("LayerOf(status) = %d, want 3", got)
	}
	if got := tr.LayerOf("other"); got != 0 {
		t.Errorf("LayerOf(other) = %d, want 0", got)
	}
	if got := tr.LayerOf("no/such"); got != -1 {
		t.Errorf("LayerOf(no/such) = %d, want -1", got)
	}
	if vs := tr.Versions("var/lib/dpkg"); vs != nil {
		t.Errorf("Versions(dir) = %v, want nil", vs)
	}
	if vs := tr.Versions("no/such"); vs != nil {
		t.Errorf("Versions(missing) = %v, want nil", vs)
	}

	// Whiteout then re-add: the history starts over.
	tr2, _ := applyEnts(t,
		[]ent{file("a", "old")},
		[]ent{file(".wh.a", "")},
		[]ent{file("a", "new")},
	)
	vs = tr2.Versions("a")
	if len(vs) != 1 || vs[0].Layer != 2 {
		t.Errorf("Versions after whiteout = %+v, want one version of layer 2", vs)
	}
}

func TestSymlinkResolution(t *testing.T) {
	tr, warns := applyEnts(t, []ent{
		file("usr/lib/os-release", "ID=test"),
		sym("etc/os-release", "../usr/lib/os-release"),
		file("etc/passwd", "tree-passwd"),
		file("b", "B"),
		sym("a", "/b"),
		sym("escape", "../../../../../../etc/passwd"),
		sym("deep/x/escape2", "../../../../../../../../etc/passwd"),
		sym("absdir", "/usr/lib"),
		sym("reldir", "usr/./lib/"),
		sym("chain1", "chain2"),
		sym("chain2", "/etc/os-release"),
		sym("loop1", "loop2"),
		sym("loop2", "loop1"),
		sym("self", "self"),
		sym("dirloop", "dirloop/x"),
		sym("dangling", "nowhere"),
	})
	if len(warns) != 0 {
		t.Errorf("unexpected warnings: %v", warns)
	}

	reads := map[string]string{
		"etc/os-release":    "ID=test",
		"a":                 "B",
		"escape":            "tree-passwd",
		"deep/x/escape2":    "tree-passwd",
		"absdir/os-release": "ID=test",
		"reldir/os-release": "ID=test",
		"chain1":            "ID=test",
	}
	for name, want := range reads {
		got, err := fs.ReadFile(tr, name)
		if err != nil {
			t.Errorf("ReadFile(%s): %v", name, err)
			continue
		}
		if string(got) != want {
			t.Errorf("ReadFile(%s) = %q, want %q", name, got, want)
		}
	}

	for _, name := range []string{"loop1", "self", "dirloop", "loop1/x"} {
		done := make(chan error, 1)
		go func() {
			_, err := tr.Open(name)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("Open(%s) succeeded on a symlink loop", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("Open(%s) hangs on a symlink loop", name)
		}
		if _, err := tr.Stat(name); err == nil {
			t.Errorf("Stat(%s) succeeded on a symlink loop", name)
		}
	}

	if _, err := tr.Open("dangling"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(dangling) = %v, want ErrNotExist", err)
	}

	// Stat follows, Lstat does not.
	fi, err := tr.Stat("escape")
	if err != nil || !fi.Mode().IsRegular() || fi.Name() != "passwd" {
		t.Errorf("Stat(escape) = %v, %v; want the regular file passwd", fi, err)
	}
	fi, err = tr.Lstat("escape")
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("Lstat(escape) = %v, %v; want a symlink", fi, err)
	}
	ents, err := tr.ReadDir("absdir")
	if err != nil || len(ents) != 1 || ents[0].Name() != "os-release" {
		t.Errorf("ReadDir(absdir) = %v, %v; want [os-release]", ents, err)
	}

	// Without an etc/passwd in the tree, an escaping link leads nowhere.
	tr2, _ := applyEnts(t, []ent{
		sym("escape", "../../../../../../etc/passwd"),
		sym("abs", "/etc/passwd"),
		sym("var/lib/dpkg/status", "/etc/passwd"),
	})
	for _, name := range []string{"escape", "abs", "var/lib/dpkg/status"} {
		if _, err := fs.ReadFile(tr2, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("ReadFile(%s) in a tree without etc/passwd = %v, want ErrNotExist", name, err)
		}
	}
}

func TestOversizeFile(t *testing.T) {
	var warns []Warning
	o := testOptions(&warns)
	o.maxFileSize = 16
	big := strings.Repeat("B", 32)
	tr, _, errs := applyTars(t, o,
		mkTar(t, file("big", big), file("after", "still applied"), file("exact", strings.Repeat("e", 16))),
	)
	if errs[0] != nil {
		t.Fatalf("applyLayer: %v", errs[0])
	}
	// The oversize file may be listed (metadata only) or left out, but its
	// content is not retained.
	if _, err := fs.ReadFile(tr, "big"); err == nil {
		t.Error("the oversize file is readable")
	}
	for name, want := range map[string]string{"after": "still applied", "exact": strings.Repeat("e", 16)} {
		if b, err := fs.ReadFile(tr, name); err != nil || string(b) != want {
			t.Errorf("ReadFile(%s) = %q, %v; want %q", name, b, err, want)
		}
	}
	if diff := cmp.Diff([]string{"L0 big"}, warnLines(t, warns)); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
	if tr.size > 16+13 {
		t.Errorf("spilled %d bytes; the oversize file was retained", tr.size)
	}
}

// TestOversizeFileHidesLowerVersion: a layer that rewrites a file with a
// version too big to keep must not leave the lower layer's stale version
// visible, or the scan reports content the image does not have.
func TestOversizeFileHidesLowerVersion(t *testing.T) {
	var warns []Warning
	o := testOptions(&warns)
	o.maxFileSize = 16
	tr, _, errs := applyTars(t, o,
		mkTar(t, file("var/lib/dpkg/status", "old-db")),
		mkTar(t, file("var/lib/dpkg/status", strings.Repeat("N", 64))),
	)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(warns) != 1 {
		t.Errorf("warnings = %v, want one for the oversize file", warns)
	}
	if b, err := fs.ReadFile(tr, "var/lib/dpkg/status"); err == nil && string(b) == "old-db" {
		t.Errorf("BUG: the layer-0 version of var/lib/dpkg/status is still visible after layer 1 replaced it with an oversize file (LayerOf = %d)",
			tr.LayerOf("var/lib/dpkg/status"))
	}
}

func TestTruncatedTar(t *testing.T) {
	full := mkTar(t,
		file("first", "aaa"),
		dir("d/"),
		file("d/second", strings.Repeat("b", 3000)),
		file("third", "ccc"),
	)
	// Headers and data are 512-byte blocks: first's header and data, d's
	// header, second's header, then cut 1000 bytes into second's data.
	// PAX records may add blocks, so find the cut from the content.
	i := bytes.Index(full, []byte(strings.Repeat("b", 3000)))
	if i < 0 {
		t.Fatal("second's data not found")
	}
	cut := full[:i+1000]

	for _, keep := range []bool{true, false} {
		t.Run(fmt.Sprintf("keep=%v", keep), func(t *testing.T) {
			var warns []Warning
			o := testOptions(&warns)
			if !keep {
				o.keep = func(string, fs.FileInfo) bool { return false }
			}
			tr, _, errs := applyTars(t, o, mkTar(t, file("lower", "l")), cut)
			if errs[0] != nil {
				t.Fatalf("layer 0: %v", errs[0])
			}
			if errs[1] == nil {
				t.Fatal("applyLayer on a truncated tar returned nil")
			}
			if !errors.Is(errs[1], io.ErrUnexpectedEOF) {
				t.Logf("error is %v (not ErrUnexpectedEOF)", errs[1])
			}
			if _, err := tr.Lstat("first"); err != nil {
				t.Errorf("entry before the cut is missing: %v", err)
			}
			if _, err := tr.Lstat("lower"); err != nil {
				t.Errorf("lower layer entry is missing: %v", err)
			}
			if _, err := tr.Lstat("third"); err == nil {
				t.Errorf("entry after the cut is present")
			}
			if keep {
				if b, err := fs.ReadFile(tr, "first"); err != nil || string(b) != "aaa" {
					t.Errorf("ReadFile(first) = %q, %v", b, err)
				}
				if b, err := fs.ReadFile(tr, "d/second"); err == nil {
					t.Errorf("the truncated file is readable: %d bytes", len(b))
				}
			}
		})
	}
}

func TestGarbageAndEmptyTar(t *testing.T) {
	var warns []Warning
	o := testOptions(&warns)
	_, _, errs := applyTars(t, o,
		bytes.Repeat([]byte("this is no tar "), 100),
		nil,
		make([]byte, 1024), // end-of-archive marker only
	)
	if errs[0] == nil {
		t.Error("garbage tar: no error")
	}
	if errs[1] != nil {
		t.Errorf("empty stream: %v", errs[1])
	}
	if errs[2] != nil {
		t.Errorf("empty archive: %v", errs[2])
	}
}

func TestDecompressionBomb(t *testing.T) {
	// One 64 MiB file of zeros, gzip-compressed to a few dozen KiB.
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	tw := tar.NewWriter(zw)
	const size = 64 << 20
	if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(tw, zeroReader{}, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("bomb: %d compressed bytes", gz.Len())

	for _, tc := range []struct {
		name        string
		maxFileSize int64
	}{
		{"file size unbounded", 0},
		{"file under the layer limit", 1 << 30},
		{"file skipped as oversize", 1 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			zr, err := gzip.NewReader(bytes.NewReader(gz.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var warns []Warning
			o := testOptions(&warns)
			o.maxFileSize = tc.maxFileSize
			o.maxLayerSize = 8 << 20
			var read int64
			o.progress = func(n int64) { read += n }
			tr := newTree()
			defer tr.Close()
			var st applyStats
			err = tr.applyLayer(0, zr, o, &st)
			if !errors.Is(err, ErrLimit) {
				t.Fatalf("applyLayer = %v, want ErrLimit", err)
			}
			if read > o.maxLayerSize || st.bytes > o.maxLayerSize {
				t.Errorf("read %d bytes (stats %d), more than the %d-byte limit", read, st.bytes, o.maxLayerSize)
			}
			if tr.size > o.maxLayerSize {
				t.Errorf("spilled %d bytes, more than the layer limit", tr.size)
			}
		})
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestLayerLimitExact(t *testing.T) {
	// A layer exactly at the limit is fine; one byte less fails.
	l := mkTar(t, file("a", strings.Repeat("a", 600)))
	for _, tc := range []struct {
		limit int64
		fail  bool
	}{
		{int64(len(l)), false},
		{int64(len(l)) + 1, false},
		{0, false}, // no limit
		{600, true},
	} {
		var warns []Warning
		o := testOptions(&warns)
		o.maxLayerSize = tc.limit
		tr := newTree()
		var st applyStats
		err := tr.applyLayer(0, bytes.NewReader(l), o, &st)
		tr.Close()
		if got := errors.Is(err, ErrLimit); got != tc.fail {
			t.Errorf("limit %d on a %d-byte layer: err = %v, want ErrLimit: %v", tc.limit, len(l), err, tc.fail)
		}
	}
}

// TestTypeflagWinsOverModeBits: archive/tar derives fs.FileMode type bits
// from both the Typeflag and the S_IFMT bits of the header's Mode field, so
// a hostile layer can declare a regular file whose mode says "directory",
// or a directory whose mode says "symlink". Container runtimes go by the
// Typeflag; the tree must too, and must never panic.
func TestTypeflagWinsOverModeBits(t *testing.T) {
	const (
		sIFDIR = 0o040000
		sIFLNK = 0o120000
	)
	t.Run("regular file with S_IFDIR, then an entry below it", func(t *testing.T) {
		tr, warns, err := applyNoPanic(t,
			mkTar(t, ent{name: "x", typ: tar.TypeReg, body: "data", mode: sIFDIR | 0o644}, file("x/y", "y")))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := tr.Lstat("x")
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("Lstat(x) = %v, %v; want a regular file", fi, err)
		}
		if b, err := fs.ReadFile(tr, "x"); err != nil || string(b) != "data" {
			t.Errorf("ReadFile(x) = %q, %v", b, err)
		}
		if len(warns) != 1 {
			t.Errorf("warnings = %v, want one for x/y", warns)
		}
	})
	t.Run("symlink with S_IFDIR, then an entry below it", func(t *testing.T) {
		tr, warns, err := applyNoPanic(t,
			mkTar(t, dir("etc/"), ent{name: "lnk", typ: tar.TypeSymlink, link: "/etc", mode: sIFDIR | 0o777}, file("lnk/evil", "evil")))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Lstat("etc/evil"); err == nil {
			t.Error("etc/evil was written through a symlink")
		}
		if len(warns) != 1 {
			t.Errorf("warnings = %v, want one for lnk/evil", warns)
		}
	})
	t.Run("directory entry with S_IFLNK hides nothing", func(t *testing.T) {
		tr, _, err := applyNoPanic(t,
			mkTar(t, file("var/lib/dpkg/status", "Package: openssl")),
			mkTar(t, ent{name: "var/lib/dpkg/", typ: tar.TypeDir, mode: sIFLNK | 0o755}),
		)
		if err != nil {
			t.Fatal(err)
		}
		if b, err := fs.ReadFile(tr, "var/lib/dpkg/status"); err != nil || string(b) != "Package: openssl" {
			t.Errorf("BUG: var/lib/dpkg/status unreadable after a directory entry with S_IFLNK mode bits: %q, %v", b, err)
		}
		seen := false
		n := 0
		fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
			seen = seen || p == "var/lib/dpkg/status"
			if n++; n > 1000 {
				return fs.SkipAll
			}
			return nil
		})
		if !seen {
			t.Errorf("BUG: fs.WalkDir does not reach var/lib/dpkg/status (visited %d entries)", n)
		}
	})
	t.Run("directory entries with S_IFLNK do not make the walk explode", func(t *testing.T) {
		// Each such directory resolves, as a symlink with an empty target,
		// to its parent, and still reads as a directory to fs.WalkDir: with
		// two of them the walk branches twice per level, 40 levels deep.
		tr, _, err := applyNoPanic(t,
			mkTar(t, file("var/lib/a/status", "s"), file("var/lib/b/x", "x")),
			mkTar(t,
				ent{name: "var/lib/a/", typ: tar.TypeDir, mode: sIFLNK | 0o755},
				ent{name: "var/lib/b/", typ: tar.TypeDir, mode: sIFLNK | 0o755}),
		)
		if err != nil {
			t.Fatal(err)
		}
		const limit = 10000
		n := 0
		errStop := errors.New("stop")
		fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
			if n++; n > limit {
				return errStop
			}
			return nil
		})
		if n > limit {
			t.Errorf("BUG: fs.WalkDir visited more than %d entries in a tree of 6 (unbounded, exponential walk)", limit)
		}
	})
}

// applyNoPanic applies layers and turns a panic into a test failure, so one
// product bug does not take the whole test binary down.
func applyNoPanic(t *testing.T, layers ...[]byte) (tr *Tree, warns []Warning, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("BUG: applyLayer panicked: %v", r)
		}
	}()
	tr, warns, errs := applyTars(t, testOptions(new([]Warning)), layers...)
	return tr, warns, errors.Join(errs...)
}

func TestTreeFSConformance(t *testing.T) {
	tr, _ := applyEnts(t,
		[]ent{
			dir("etc/"),
			file("etc/os-release", "ID=test\n"),
			file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
			file("usr/lib/libc.so", strings.Repeat("\x7fELF", 300)),
			file("empty", ""),
			dir("emptydir/"),
			file("gone", "g"),
		},
		[]ent{
			file("etc/os-release", "ID=test\nVERSION=2\n"),
			file(".wh.gone", ""),
			sym("lib", "usr/lib"),
			// Symlinks sit at the top only: fstest also checks fs.Sub of
			// a directory, whose Lstat falls back to Stat because Tree
			// has Lstat but no ReadLink (it is no fs.ReadLinkFS).
			sym("localtime", "/usr/lib/libc.so"),
			hard("usr/bin/sh", "usr/lib/libc.so"),
		},
	)
	if err := fstest.TestFS(tr,
		"etc/os-release", "etc/passwd", "usr/lib/libc.so", "usr/bin/sh", "empty", "emptydir", "lib",
		"localtime",
	); err != nil {
		t.Error(err)
	}
}

func TestTreeOpenInvalidPaths(t *testing.T) {
	tr, _ := applyEnts(t, []ent{file("a/b", "b")})
	for _, name := range []string{"/a/b", "a/../a/b", "./a", "a/", "", "a//b"} {
		if _, err := tr.Open(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Open(%q) = %v, want ErrInvalid", name, err)
		}
		if _, err := tr.Stat(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Stat(%q) = %v, want ErrInvalid", name, err)
		}
		if _, err := tr.ReadDir(name); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("ReadDir(%q) = %v, want ErrInvalid", name, err)
		}
	}
}

func TestNotRetained(t *testing.T) {
	var warns []Warning
	o := testOptions(&warns)
	o.keep = func(name string, _ fs.FileInfo) bool { return name == "kept" }
	var st applyStats
	tr := newTree()
	defer tr.Close()
	if err := tr.applyLayer(0, bytes.NewReader(mkTar(t, file("kept", "k"), file("dropped", "d"), file("empty", ""))), o, &st); err != nil {
		t.Fatal(err)
	}
	if st.files != 3 || st.retained != 1 {
		t.Errorf("stats = %+v, want 3 files, 1 retained", st)
	}
	if _, err := tr.Open("dropped"); !errors.Is(err, errNotRetained) {
		t.Errorf("Open(dropped) = %v, want errNotRetained", err)
	}
	if fi, err := tr.Stat("dropped"); err != nil || fi.Size() != 1 {
		t.Errorf("Stat(dropped) = %v, %v; metadata must survive", fi, err)
	}
	if b, err := fs.ReadFile(tr, "kept"); err != nil || string(b) != "k" {
		t.Errorf("ReadFile(kept) = %q, %v", b, err)
	}
	if b, err := fs.ReadFile(tr, "empty"); err != nil || len(b) != 0 {
		t.Errorf("ReadFile(empty) = %q, %v", b, err)
	}
}

func TestCleanEntryName(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"etc/passwd", "etc/passwd", false},
		{"./etc/passwd", "etc/passwd", false},
		{"etc//passwd/", "etc/passwd", false},
		{"./", ".", false},
		{".", ".", false},
		{"a/./b", "a/b", false},
		{"", "", true},
		{"/etc/passwd", "", true},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"a/..", "", true},
		{"..", "", true},
		{"a\x00b", "", true},
		{"...", "...", false},
		{"..a/b..", "..a/b..", false},
	}
	for _, tc := range tests {
		got, err := cleanEntryName(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("cleanEntryName(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// TestNonUTF8EntryName: Linux file names need not be UTF-8, but io/fs paths
// must be; an entry the tree holds must stay reachable through fs.FS (or be
// refused with a warning), and must not break fs.WalkDir.
func TestNonUTF8EntryName(t *testing.T) {
	tr, warns := applyEnts(t, []ent{file("a", "a"), file("caf\xe9/x", "latin1"), file("z", "z")})
	var walkErrs []string
	fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			walkErrs = append(walkErrs, err.Error())
		}
		return nil
	})
	if len(walkErrs) > 0 {
		t.Errorf("BUG: fs.WalkDir fails on an entry with a non-UTF-8 name (%d warnings): %q", len(warns), walkErrs)
	}
}

// TestLayerErrorDoesNotPoisonLaterLayers: a layer that fails while a kept
// file's content is being copied (truncated tar, decompression bomb) must
// not break the spill file for the layers after it.
func TestLayerErrorDoesNotPoisonLaterLayers(t *testing.T) {
	trunc := mkTar(t, file("big", strings.Repeat("b", 4000)))
	trunc = trunc[:bytes.Index(trunc, []byte("bbbb"))+1000]
	for _, tc := range []struct {
		name  string
		layer []byte
		limit int64
	}{
		{"truncated", trunc, 64 << 20},
		{"over the layer limit", mkTar(t, file("big", strings.Repeat("b", 8000))), 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var warns []Warning
			o := testOptions(&warns)
			o.maxLayerSize = tc.limit
			tr, _, errs := applyTars(t, o, tc.layer, mkTar(t, file("after", "still here")))
			if errs[0] == nil {
				t.Fatal("layer 0: no error")
			}
			if errs[1] != nil {
				t.Errorf("BUG: layer 1 fails after layer 0 failed: %v", errs[1])
			}
			if b, err := fs.ReadFile(tr, "after"); err != nil || string(b) != "still here" {
				t.Errorf("BUG: ReadFile(after) = %q, %v", b, err)
			}
		})
	}
}

// TestInsecurePathGODEBUG: with GODEBUG=tarinsecurepath=0 (a hardening
// setting users may turn on), archive/tar returns tar.ErrInsecurePath along
// with the header of a "../x" or "/x" entry. That entry must still be
// skipped with a warning, not end the layer and lose every entry after it.
func TestInsecurePathGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "tarinsecurepath=0")
	var warns []Warning
	tr, _, errs := applyTars(t, testOptions(&warns),
		mkTar(t, file("../x", "up"), file("/abs", "abs"), file("after", "a")))
	if errs[0] != nil {
		t.Errorf("BUG: applyLayer = %v; an insecure name ends the layer", errs[0])
	}
	if _, err := tr.Lstat("after"); err != nil {
		t.Errorf("BUG: the entry after an insecure name is missing: %v", err)
	}
	if diff := cmp.Diff([]string{"L0 ../x", "L0 /abs"}, warnLines(t, warns)); diff != "" {
		t.Errorf("warnings mismatch (-want +got):\n%s", diff)
	}
}
