package artifact

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// errNotRetained is returned when a file's content was not kept while the
// layers were read, because no extractor asked for it.
var errNotRetained = errors.New("file content not retained")

// Tree is the merged, read-only view of an image's layers. It keeps every
// file's metadata and the content of the files a Keep function asked for,
// spilled to one temporary file so memory stays flat. A Tree implements
// fs.FS, fs.ReadDirFS and fs.StatFS; symlinks resolve inside the tree only,
// as if the tree were chroot'ed, so nothing outside it can be reached.
type Tree struct {
	root  *node
	spill *os.File
	buf   *bufio.Writer // buffers writes to spill until Seal
	size  int64         // bytes written to spill
}

type node struct {
	name    string
	mode    fs.FileMode // type bits and permissions
	size    int64
	modTime time.Time
	uid     int
	gid     int
	link    string // symlink target, as stored
	layer   int    // layer that wrote this version
	last    int    // newest layer that wrote this node or anything below it
	content *blob  // nil when not retained
	history []Version
	kids    map[string]*node
}

type blob struct{ off, n int64 }

// Version is one retained version of a file: the layer that wrote it and
// its content. A file rewritten by several layers has several versions.
type Version struct {
	Layer int
	Size  int64
	Mode  fs.FileMode
	blob  *blob
}

func newTree() *Tree {
	return &Tree{root: &node{name: ".", mode: fs.ModeDir | 0o755, kids: map[string]*node{}}}
}

// Close removes the spill file.
func (t *Tree) Close() error {
	if t.spill == nil {
		return nil
	}
	name := t.spill.Name()
	err := t.spill.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	t.spill = nil
	return err
}

// store copies n bytes of r into the spill file.
func (t *Tree) store(r io.Reader, n int64) (*blob, error) {
	if t.spill == nil {
		f, err := os.CreateTemp("", "vigil-layer-*.spill")
		if err != nil {
			return nil, fmt.Errorf("creating spill file: %w", err)
		}
		t.spill = f
		t.buf = bufio.NewWriterSize(f, 1<<20)
	}
	off := t.size
	// Hide bufio.Writer's ReadFrom: with an empty buffer it hands the copy
	// to (*os.File).ReadFrom and keeps any *read* error (truncated layer,
	// ErrLimit) as its sticky write error, failing every later store and
	// seal — so one bad layer made Open fail. (It also never buffered.)
	w, err := io.CopyN(struct{ io.Writer }{t.buf}, r, n)
	t.size += w
	if err != nil {
		return nil, err
	}
	return &blob{off: off, n: n}, nil
}

// seal flushes the spill file; content is readable only after it.
func (t *Tree) seal() error {
	if t.buf == nil {
		return nil
	}
	if err := t.buf.Flush(); err != nil {
		return fmt.Errorf("writing spill file: %w", err)
	}
	return nil
}

func (t *Tree) reader(b *blob) *io.SectionReader {
	if t.buf != nil && t.buf.Buffered() > 0 {
		// Reading while layers are still applied (hardlinks, tests):
		// flush first. After seal this never writes.
		_ = t.buf.Flush()
	}
	return io.NewSectionReader(t.spill, b.off, b.n)
}

// Versions lists the retained versions of the file at name (a clean,
// slash-separated path relative to the root), oldest first. It does not
// follow a final symlink.
func (t *Tree) Versions(name string) []Version {
	n, err := t.lookup(name, false)
	if err != nil || !n.mode.IsRegular() {
		return nil
	}
	out := slices.Clone(n.history)
	if n.content != nil {
		out = append(out, Version{Layer: n.layer, Size: n.size, Mode: n.mode, blob: n.content})
	}
	return out
}

// OpenVersion returns a reader of one retained version's content.
func (t *Tree) OpenVersion(v Version) io.ReaderAt {
	return t.reader(v.blob)
}

// LayerOf reports the layer that wrote the current version of name, or -1.
func (t *Tree) LayerOf(name string) int {
	n, err := t.lookup(name, false)
	if err != nil {
		return -1
	}
	return n.layer
}

// walkParent returns the directory that holds the last element of p (a
// clean relative path), creating missing directories when create is set.
// It never follows symlinks: an entry below a symlink is refused.
func (t *Tree) walkParent(p string, create bool, layer int) (*node, string, error) {
	dir := t.root
	elems := strings.Split(p, "/")
	for _, e := range elems[:len(elems)-1] {
		k, ok := dir.kids[e]
		if !ok {
			if !create {
				return nil, "", fs.ErrNotExist
			}
			k = &node{name: e, mode: fs.ModeDir | 0o755, layer: layer, kids: map[string]*node{}}
			dir.kids[e] = k
		}
		if !k.mode.IsDir() {
			return nil, "", fmt.Errorf("parent %q is not a directory", e)
		}
		if create && k.last < layer {
			k.last = layer
		}
		dir = k
	}
	if create && dir.last < layer {
		dir.last = layer
	}
	return dir, elems[len(elems)-1], nil
}

// lookup resolves name inside the tree. Intermediate symlinks are always
// followed (clamped to the root); the final one only when follow is set.
func (t *Tree) lookup(name string, follow bool) (*node, error) {
	if name == "." || name == "" {
		return t.root, nil
	}
	budget := maxSymlinks
	return t.resolve(t.root, nil, strings.Split(name, "/"), follow, &budget)
}

// resolve walks elems from cur; stack holds cur's ancestors (root first) so
// ".." can climb back up without leaving the root.
func (t *Tree) resolve(cur *node, stack []*node, elems []string, follow bool, budget *int) (*node, error) {
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		switch e {
		case "", ".":
			continue
		case "..":
			if len(stack) > 0 {
				cur, stack = stack[len(stack)-1], stack[:len(stack)-1]
			}
			continue
		}
		if !cur.mode.IsDir() {
			return nil, fs.ErrNotExist
		}
		k, ok := cur.kids[e]
		if !ok {
			return nil, fs.ErrNotExist
		}
		last := i == len(elems)-1
		if k.mode&fs.ModeSymlink != 0 && (!last || follow) {
			*budget--
			if *budget < 0 {
				return nil, errors.New("too many levels of symbolic links")
			}
			target := k.link
			base, bstack := cur, slices.Clone(stack)
			if strings.HasPrefix(target, "/") {
				base, bstack = t.root, nil
			}
			rest := append(strings.Split(target, "/"), elems[i+1:]...)
			return t.resolve(base, bstack, rest, follow, budget)
		}
		stack = append(stack, cur)
		cur = k
	}
	return cur, nil
}

// Open implements fs.FS.
func (t *Tree) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	switch {
	case n.mode.IsDir():
		return &dirFile{t: t, n: n, name: name}, nil
	case n.mode.IsRegular() && n.content != nil:
		return &regFile{n: n, name: name, SectionReader: t.reader(n.content)}, nil
	case n.mode.IsRegular() && n.size == 0:
		return &regFile{n: n, name: name, SectionReader: io.NewSectionReader(emptyReaderAt{}, 0, 0)}, nil
	default:
		return nil, &fs.PathError{Op: "open", Path: name, Err: errNotRetained}
	}
}

// Stat implements fs.StatFS; it follows symlinks.
func (t *Tree) Stat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return info{n}, nil
}

// Lstat is Stat without following a final symlink.
func (t *Tree) Lstat(name string) (fs.FileInfo, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.lookup(name, false)
	if err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: name, Err: err}
	}
	return info{n}, nil
}

// ReadDir implements fs.ReadDirFS: entries sorted by name, symlinks not followed.
func (t *Tree) ReadDir(name string) ([]fs.DirEntry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.lookup(name, true)
	if err != nil {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: err}
	}
	if !n.mode.IsDir() {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: errors.New("not a directory")}
	}
	return n.entries(), nil
}

func (n *node) entries() []fs.DirEntry {
	out := make([]fs.DirEntry, 0, len(n.kids))
	for _, k := range n.kids {
		out = append(out, fs.FileInfoToDirEntry(info{k}))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out
}

type info struct{ n *node }

func (i info) Name() string       { return i.n.name }
func (i info) Size() int64        { return i.n.size }
func (i info) Mode() fs.FileMode  { return i.n.mode }
func (i info) ModTime() time.Time { return i.n.modTime }
func (i info) IsDir() bool        { return i.n.mode.IsDir() }
func (i info) Sys() any           { return nil }

type regFile struct {
	*io.SectionReader
	n    *node
	name string
}

func (f *regFile) Stat() (fs.FileInfo, error) { return info{f.n}, nil }
func (f *regFile) Close() error               { return nil }

type dirFile struct {
	t    *Tree
	n    *node
	name string
	ents []fs.DirEntry
	read bool
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return info{d.n}, nil }
func (d *dirFile) Close() error               { return nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.name, Err: errors.New("is a directory")}
}

// ReadDir implements fs.ReadDirFile.
func (d *dirFile) ReadDir(count int) ([]fs.DirEntry, error) {
	if !d.read {
		d.ents, d.read = d.n.entries(), true
	}
	if count <= 0 {
		out := d.ents
		d.ents = nil
		return out, nil
	}
	if len(d.ents) == 0 {
		return nil, io.EOF
	}
	count = min(count, len(d.ents))
	out := d.ents[:count]
	d.ents = d.ents[count:]
	return out, nil
}

type emptyReaderAt struct{}

func (emptyReaderAt) ReadAt([]byte, int64) (int, error) { return 0, io.EOF }

var (
	_ fs.ReadDirFS   = (*Tree)(nil)
	_ fs.StatFS      = (*Tree)(nil)
	_ fs.ReadDirFile = (*dirFile)(nil)
	_ io.ReaderAt    = (*regFile)(nil)
)

// cleanEntryName turns a tar entry name into a clean path relative to the
// root, or reports why it must be skipped.
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty path")
	}
	if strings.HasPrefix(name, "/") {
		return "", errors.New("absolute path")
	}
	if strings.ContainsRune(name, 0) {
		return "", errors.New("NUL byte in path")
	}
	if !utf8.ValidString(name) {
		// io/fs paths are UTF-8: such an entry could never be opened, and
		// fs.WalkDir would fail on its directory.
		return "", errors.New("path is not valid UTF-8")
	}
	for _, e := range strings.Split(name, "/") {
		if e == ".." {
			return "", errors.New("path traverses out with ..")
		}
	}
	p := path.Clean(name)
	if p == "." {
		return ".", nil
	}
	return p, nil
}

// ReadLink implements fs.ReadLinkFS, with Lstat, so fs.Lstat, fs.ReadLink
// and fs.Sub see symlinks as symlinks.
func (t *Tree) ReadLink(name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	n, err := t.lookup(name, false)
	if err != nil {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: err}
	}
	if n.mode&fs.ModeSymlink == 0 {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return n.link, nil
}
