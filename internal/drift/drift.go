// Package drift finds container drift: the files a running container added,
// changed or deleted in its writable layer compared with its image. It reads
// the overlay2 upper directory (the writable layer) and the image's lower
// directories that Docker reports, and never writes to either. Executables
// among the changes are marked: running them is drift the agent's zero-drift
// rules alert on at exec (process.exe_upper_layer).
package drift

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Change kinds.
const (
	Added   = "added"   // not in the image
	Changed = "changed" // in the image, and different in the container (content, mode, owner or link target)
	Deleted = "deleted" // in the image, removed in the container (an overlay whiteout)
	// Replaced is a directory the container removed and made again: an
	// overlay opaque directory, which hides everything the image had under it.
	Replaced = "replaced"
)

// Change is one drifted path.
type Change struct {
	// Path is the path inside the container.
	Path string `json:"path"`
	Kind string `json:"kind"`
	// Type is file, dir, symlink or other (device, fifo, socket); empty
	// for a deletion.
	Type string `json:"type,omitempty"`
	Mode string `json:"mode,omitempty"`
	Size int64  `json:"size,omitempty"`
	// What differs from the image, for changed paths: content, mode,
	// owner, target, type.
	Differs []string `json:"differs,omitempty"`
	// Executable: a regular file with an execute bit or ELF magic.
	Executable bool `json:"executable,omitempty"`
	ELF        bool `json:"elf,omitempty"`
	// Target is a symlink's target.
	Target string `json:"target,omitempty"`
}

// Layers are the overlay directories of one container.
type Layers struct {
	// Upper is the writable layer.
	Upper string
	// Lower are the image's layers (Docker's init layer first), uppermost
	// first, as overlay2's LowerDir lists them.
	Lower []string
}

// Scan walks l.Upper and returns its changes against l.Lower, sorted by
// path. Entries it cannot read are reported in the returned error (joined)
// and the walk goes on; a missing upper directory is an error.
func Scan(l Layers) ([]Change, error) {
	st, err := os.Lstat(l.Upper)
	if err != nil {
		return nil, fmt.Errorf("writable layer: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("writable layer %s is not a directory", l.Upper)
	}
	var out []Change
	var errs []error
	sc := &scanner{Layers: l, opaque: make(map[string]bool)}
	walkErr := filepath.WalkDir(l.Upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, err)
			if d != nil && d.IsDir() && p != l.Upper {
				return fs.SkipDir
			}
			return nil
		}
		if p == l.Upper {
			return nil
		}
		rel := "/" + filepath.ToSlash(strings.TrimPrefix(p, l.Upper+"/"))
		c, skipDir, err := sc.classify(p, rel)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if c != nil {
			out = append(out, *c)
		}
		if skipDir {
			return fs.SkipDir
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, walkErr)
	}
	slices.SortFunc(out, func(a, b Change) int { return strings.Compare(a.Path, b.Path) })
	return out, errors.Join(errs...)
}

// classify is the change of upper path p (rel inside the container), if
// any, and whether the walk should not descend into it.
func (l *scanner) classify(p, rel string) (*Change, bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return nil, false, fmt.Errorf("reading %s: %w", p, err)
	}
	if whiteout(p, &st) {
		return &Change{Path: rel, Kind: Deleted}, false, nil
	}
	lower, inImage := l.lookupLower(rel)
	c := &Change{Path: rel, Type: typeOf(st.Mode), Mode: modeString(st.Mode)}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if opaque(p) && inImage {
			c.Kind = Replaced
			return c, false, nil
		}
		if inImage {
			return nil, false, nil // copied up for what changed below it
		}
		c.Kind = Added
		return c, false, nil
	case unix.S_IFREG:
		c.Size = st.Size
		c.ELF = isELF(p)
		c.Executable = st.Mode&0o111 != 0 || c.ELF
	case unix.S_IFLNK:
		c.Target, _ = os.Readlink(p)
	}
	if !inImage {
		c.Kind = Added
		return c, false, nil
	}
	c.Kind = Changed
	c.Differs = differs(p, &st, lower)
	return c, false, nil
}

// differs lists what differs between upper path p (stat st) and its image
// copy lower. A file copied up for a change of its metadata and changed
// back differs in nothing: it is still reported as changed, with none.
func differs(p string, st *unix.Stat_t, lower string) []string {
	var ls unix.Stat_t
	if unix.Lstat(lower, &ls) != nil {
		return nil
	}
	var d []string
	if st.Mode&unix.S_IFMT != ls.Mode&unix.S_IFMT {
		return []string{"type"}
	}
	if st.Mode&0o7777 != ls.Mode&0o7777 {
		d = append(d, "mode")
	}
	if st.Uid != ls.Uid || st.Gid != ls.Gid {
		d = append(d, "owner")
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if st.Size != ls.Size || !sameContent(p, lower) {
			d = append(d, "content")
		}
	case unix.S_IFLNK:
		a, _ := os.Readlink(p)
		b, _ := os.Readlink(lower)
		if a != b {
			d = append(d, "target")
		}
	}
	return d
}

// scanner is one Scan: the layers and which of the image's directories
// are opaque, looked up once each.
type scanner struct {
	Layers
	opaque map[string]bool
}

// lookupLower finds rel in the image: the first lower layer (uppermost
// first) that has it, unless a whiteout or an opaque directory in a layer
// above hides it.
func (s *scanner) lookupLower(rel string) (string, bool) {
	for _, l := range s.Lower {
		p := filepath.Join(l, rel)
		var st unix.Stat_t
		if unix.Lstat(p, &st) == nil {
			if whiteout(p, &st) {
				return "", false
			}
			return p, true
		}
		// Absent here: an opaque parent directory in this layer hides
		// the layers below.
		for dir := filepath.Dir(rel); dir != "/" && dir != "."; dir = filepath.Dir(dir) {
			if s.opaqueLower(filepath.Join(l, dir)) {
				return "", false
			}
		}
	}
	return "", false
}

func (s *scanner) opaqueLower(dir string) bool {
	o, ok := s.opaque[dir]
	if !ok {
		o = opaque(dir)
		s.opaque[dir] = o
	}
	return o
}

// whiteout is overlayfs's mark of a deleted path: a character device 0/0,
// or (kernels 6.7+, nested overlays) an empty file with the
// trusted.overlay.whiteout xattr.
func whiteout(p string, st *unix.Stat_t) bool {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return st.Rdev == 0
	case unix.S_IFREG:
		if st.Size != 0 {
			return false
		}
		_, err := unix.Lgetxattr(p, "trusted.overlay.whiteout", nil)
		return err == nil
	}
	return false
}

// opaque reports whether directory p is an overlay opaque directory
// (trusted.overlay.opaque, or user.overlay.opaque for user-namespaced
// overlays, set to "y").
func opaque(p string) bool {
	var b [4]byte
	for _, a := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, a, b[:]); err == nil && n == 1 && b[0] == 'y' {
			return true
		}
	}
	return false
}

func typeOf(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	}
	return "other"
}

// modeString is the permission bits in octal, with setuid, setgid and
// sticky: "0755", "4755".
func modeString(m uint32) string { return fmt.Sprintf("%04o", m&0o7777) }

// isELF reports whether p starts with the ELF magic.
func isELF(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [4]byte
	_, err = io.ReadFull(f, b[:])
	return err == nil && string(b[:]) == "\x7fELF"
}

// sameContent compares two files of equal size byte for byte.
func sameContent(a, b string) bool {
	fa, err := os.Open(a)
	if err != nil {
		return false
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return ea == eb || (errors.Is(ea, io.ErrUnexpectedEOF) || errors.Is(ea, io.EOF)) && (errors.Is(eb, io.ErrUnexpectedEOF) || errors.Is(eb, io.EOF))
		}
	}
}
