package artifact

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzBase is the layer every fuzzed layer is applied on top of.
func fuzzBase(tb testing.TB) []byte {
	return mkTar(tb,
		dir("etc/"),
		file("etc/os-release", "ID=base\n"),
		file("etc/passwd", "root:x:0:0\n"),
		dir("usr/lib/"),
		file("usr/lib/libc.so", "ELF"),
		sym("lib", "usr/lib"),
		sym("etc/mtab", "/proc/mounts"),
		dir("var/lib/dpkg/"),
		file("var/lib/dpkg/status", "Package: base\n"),
		hard("usr/bin/sh", "usr/lib/libc.so"),
		file("opq/a", "a"),
	)
}

func fuzzOptions() applyOptions {
	return applyOptions{
		keep:         keepAll,
		maxFileSize:  1 << 20,
		maxLayerSize: 4 << 20,
		warn:         func(Warning) {},
	}
}

// fuzzTimeout bounds one fuzz input. Go's fuzzing engine does not notice an
// input that never returns; the watchdog turns a hang into a crash, with
// every goroutine's stack, so the input is recorded.
const fuzzTimeout = 10 * time.Second

func watchdog(d time.Duration) (stop func()) {
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(d):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			panic(fmt.Sprintf("fuzz input still running after %v:\n%s", d, buf[:n]))
		}
	}()
	return func() { close(done) }
}

// fuzzApply applies the base layer then layer and checks the result.
func fuzzApply(t *testing.T, base, layer []byte) {
	defer watchdog(fuzzTimeout)()
	tr := newTree()
	defer tr.Close()
	var st applyStats
	o := fuzzOptions()
	if err := tr.applyLayer(0, bytes.NewReader(base), o, &st); err != nil {
		t.Fatalf("base layer: %v", err)
	}
	_ = tr.applyLayer(1, bytes.NewReader(layer), o, &st)
	checkTree(t, tr)
}

// checkTree visits every node of the tree, then walks it through fs.FS and
// opens and reads everything it finds.
func checkTree(t *testing.T, tr *Tree) {
	t.Helper()
	// White-box: every node's path is a valid fs path.
	var visit func(p string, n *node, depth int)
	visit = func(p string, n *node, depth int) {
		if depth > 10000 {
			t.Fatalf("tree deeper than 10000 at %q", p)
		}
		for name, k := range n.kids {
			kp := name
			if p != "." {
				kp = p + "/" + name
			}
			if !fs.ValidPath(kp) || name != k.name || strings.Contains(name, "/") {
				t.Errorf("node %q (name %q) has an invalid path", kp, k.name)
			}
			if k.mode.IsDir() && k.mode&fs.ModeSymlink == 0 && k.kids == nil {
				t.Errorf("directory %q has a nil child map", kp)
			}
			visit(kp, k, depth+1)
		}
	}
	visit(".", tr.root, 0)

	// Through fs.FS, as extractors see it, with a bound on the work.
	const maxVisits = 100000
	visits := 0
	buf := make([]byte, 4096)
	err := fs.WalkDir(tr, ".", func(p string, d fs.DirEntry, err error) error {
		if visits++; visits > maxVisits {
			t.Fatalf("fs.WalkDir visited more than %d entries", maxVisits)
		}
		if !fs.ValidPath(p) {
			t.Errorf("walk yields invalid path %q", p)
		}
		if err != nil {
			return nil
		}
		tr.Stat(p)
		tr.Lstat(p)
		tr.LayerOf(p)
		for _, v := range tr.Versions(p) {
			tr.OpenVersion(v).ReadAt(buf[:min(int64(len(buf)), v.Size)], 0)
		}
		f, err := tr.Open(p)
		if err != nil {
			return nil
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			t.Errorf("%s: Stat: %v", p, err)
			return nil
		}
		if fi.IsDir() {
			if rd, ok := f.(fs.ReadDirFile); ok {
				rd.ReadDir(-1)
			}
			return nil
		}
		n, err := io.Copy(io.Discard, f)
		if err != nil {
			t.Errorf("%s: read: %v", p, err)
		}
		if n != fi.Size() {
			t.Errorf("%s: read %d bytes, Stat says %d", p, n, fi.Size())
		}
		return nil
	})
	if err != nil {
		t.Errorf("WalkDir: %v", err)
	}
}

// FuzzApplyLayer applies arbitrary bytes as a layer tar.
func FuzzApplyLayer(f *testing.F) {
	base := fuzzBase(f)
	f.Add(mkTar(f,
		file("etc/.wh.passwd", ""),
		file("opq/.wh..wh..opq", ""),
		file("opq/b", "b"),
		file("new", "new content"),
	))
	f.Add(mkTar(f,
		sym("escape", "../../../../etc/passwd"),
		sym("loop1", "loop2"),
		sym("loop2", "loop1"),
		file("lib/evil", "x"),
		hard("h1", "etc/passwd"),
		hard("h2", "../etc/passwd"),
		hard("h3", "/etc/passwd"),
		hard("h4", "lib/libc.so"),
	))
	f.Add(mkTar(f,
		file("/abs", "a"),
		file("../up", "u"),
		ent{name: "dev/null", typ: tar.TypeChar},
		ent{name: "fifo", typ: tar.TypeFifo},
		file(".wh.etc", ""),
		file("etc", "now a file"),
		dir("var/lib/dpkg/"),
	))
	f.Add(mkTar(f, ent{name: "m", typ: tar.TypeReg, body: "mode bits", mode: 0o100644}))
	full := mkTar(f, file("a", strings.Repeat("a", 700)), file("b", "b"))
	f.Add(full[:900]) // truncated
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	f.Add([]byte("garbage, not a tar at all"))
	f.Fuzz(func(t *testing.T, layer []byte) {
		fuzzApply(t, base, layer)
	})
}

// FuzzApplyEntries is the structure-aware twin of FuzzApplyLayer: raw bytes
// rarely get past tar's header checksums, so it builds a valid tar from a
// line-based description — one entry a line, "TYPE|name|link|octal mode|body"
// — and applies that.
func FuzzApplyEntries(f *testing.F) {
	base := fuzzBase(f)
	for _, s := range []string{
		"5|d/||755|\n0|d/a||644|hello\n0|d/.wh..wh..opq||644|\n0|d/b||644|b",
		"2|lnk|/etc|777|\n0|lnk/evil||644|x\n0|etc/.wh.passwd||644|",
		"1|h|etc/passwd|644|\n1|h2|../../x|644|\n2|s|../../../etc/os-release|777|",
		"0|var/lib/dpkg/status||100644|Package: new\n5|var/lib/||40755|",
		"2|a|b|120777|\n2|b|a|120777|\n0|a/x||644|",
		"3|dev/null||20666|\n6|p||10644|\n4|blk||60600|",
		"0|./x/./y/||644|z\n5|x||755|",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		layer, ok := tarFromSpec(spec)
		if !ok {
			return
		}
		fuzzApply(t, base, layer)
	})
}

// tarFromSpec builds a tar from a FuzzApplyEntries description; entries tar
// itself refuses to write are left out.
func tarFromSpec(spec string) ([]byte, bool) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, line := range strings.Split(spec, "\n") {
		f := strings.SplitN(line, "|", 5)
		if len(f) < 5 || len(f[0]) != 1 {
			continue
		}
		mode, _ := strconv.ParseInt(f[3], 8, 64)
		h := &tar.Header{Typeflag: f[0][0], Name: f[1], Linkname: f[2], Mode: mode & 0o7777777}
		body := f[4]
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(body))
		}
		if tw.WriteHeader(h) != nil {
			return nil, false
		}
		if h.Size > 0 {
			if _, err := io.WriteString(tw, body); err != nil {
				return nil, false
			}
		}
	}
	if tw.Close() != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// FuzzCleanEntryName: a name is refused, or cleaned to a valid fs path
// with no ".." element.
func FuzzCleanEntryName(f *testing.F) {
	for _, s := range []string{
		"etc/passwd", "./etc/passwd", "/etc/passwd", "../x", "a/../../x", "a/..",
		"a//b/", ".", "./", "", "...", "..a", "a/./b", "a\x00b", ".wh..wh..opq",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		out, err := cleanEntryName(name)
		if err != nil {
			return
		}
		if !fs.ValidPath(out) {
			t.Fatalf("cleanEntryName(%q) = %q, not a valid fs path (valid UTF-8: %v)", name, out, utf8.ValidString(out))
		}
		for _, e := range strings.Split(out, "/") {
			if e == ".." {
				t.Fatalf("cleanEntryName(%q) = %q has a .. element", name, out)
			}
		}
		if out != "." && path.Clean(out) != out {
			t.Fatalf("cleanEntryName(%q) = %q is not clean", name, out)
		}
	})
}
