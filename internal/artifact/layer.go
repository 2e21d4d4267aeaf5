package artifact

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// ErrLimit marks input that exceeded a configured bound (a decompression
// bomb, an oversize layer).
var ErrLimit = errors.New("size limit exceeded")

// Warning is a tar entry that was skipped on purpose.
type Warning struct {
	Layer  int
	Path   string
	Reason string
}

// KeepFunc decides whether the content of a regular file is retained.
// name is clean and relative to the root, without a leading slash.
type KeepFunc func(name string, fi fs.FileInfo) bool

// applyOptions bound what one layer may cost.
type applyOptions struct {
	keep         KeepFunc
	maxFileSize  int64 // larger files are skipped with a warning
	maxLayerSize int64 // uncompressed bytes per layer; past it the layer fails
	warn         func(Warning)
	progress     func(n int64) // bytes read, may be nil
}

// applyStats counts what applyLayer saw.
type applyStats struct {
	files    int64
	retained int64
	bytes    int64
}

// applyLayer reads one layer tar from r and applies it on top of the tree as
// layer number idx: whiteouts delete, opaque markers hide lower layers,
// hardlinks copy their target's content. Entries that would leave the root,
// device files and oversize files are skipped with a warning. On a corrupt
// tar it returns the error; entries applied before it stay applied.
func (t *Tree) applyLayer(idx int, r io.Reader, o applyOptions, st *applyStats) error {
	cr := &countingReader{r: bufio.NewReaderSize(r, 1<<20), limit: o.maxLayerSize, progress: o.progress}
	tr := tar.NewReader(cr)
	defer func() { st.bytes += cr.n }()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if errors.Is(err, tar.ErrInsecurePath) && h != nil {
			// GODEBUG=tarinsecurepath=0: the header was read fine, and
			// cleanEntryName refuses the name below, with a warning.
			err = nil
		}
		if err != nil {
			if errors.Is(err, ErrLimit) {
				return fmt.Errorf("layer exceeds %d uncompressed bytes (decompression bomb?): %w", o.maxLayerSize, ErrLimit)
			}
			return fmt.Errorf("reading tar entry: %w", err)
		}
		st.files++
		name, err := cleanEntryName(h.Name)
		if err != nil {
			o.warn(Warning{Layer: idx, Path: h.Name, Reason: err.Error()})
			continue
		}
		if name == "." {
			continue
		}
		if err := t.applyEntry(idx, name, h, tr, o, st); err != nil {
			if errors.Is(err, ErrLimit) {
				return fmt.Errorf("layer exceeds %d uncompressed bytes (decompression bomb?): %w", o.maxLayerSize, ErrLimit)
			}
			var ioe *entryIOError
			if errors.As(err, &ioe) {
				return fmt.Errorf("reading %s: %w", name, ioe.err)
			}
			o.warn(Warning{Layer: idx, Path: name, Reason: err.Error()})
		}
	}
}

// entryIOError wraps a failure to read the tar stream itself, which ends the
// layer, as opposed to an entry we refuse, which only skips that entry.
type entryIOError struct{ err error }

func (e *entryIOError) Error() string { return e.err.Error() }
func (e *entryIOError) Unwrap() error { return e.err }

func (t *Tree) applyEntry(idx int, name string, h *tar.Header, r io.Reader, o applyOptions, st *applyStats) error {
	base := path.Base(name)
	if strings.HasPrefix(base, whiteoutPrefix) {
		dir, _, err := t.walkParent(name, false, idx)
		if err != nil {
			return nil // whiting out something that is not there
		}
		if base == whiteoutOpaque {
			hideLower(dir, idx)
			return nil
		}
		delete(dir.kids, strings.TrimPrefix(base, whiteoutPrefix))
		return nil
	}

	dir, leaf, err := t.walkParent(name, true, idx)
	if err != nil {
		return err
	}
	old := dir.kids[leaf]
	var skipped error // the entry is applied, but a warning is due
	n := &node{
		name: leaf,
		// The type comes from the Typeflag alone, as runtimes extract it:
		// archive/tar also ORs in the S_IFMT bits of the header's Mode
		// field, which the layer's author controls.
		mode:    h.FileInfo().Mode() &^ fs.ModeType,
		modTime: h.ModTime,
		uid:     h.Uid,
		gid:     h.Gid,
		layer:   idx,
		last:    idx,
	}
	switch h.Typeflag {
	case tar.TypeDir:
		n.mode |= fs.ModeDir
		if old != nil && old.mode.IsDir() {
			// A directory entry over a directory updates its metadata only.
			old.mode, old.modTime, old.uid, old.gid = n.mode, n.modTime, n.uid, n.gid
			old.last = idx
			return nil
		}
		n.kids = map[string]*node{}
	case tar.TypeReg, tar.TypeRegA:
		n.size = h.Size
		if h.Size < 0 {
			return fmt.Errorf("negative size %d", h.Size)
		}
		if o.maxFileSize > 0 && h.Size > o.maxFileSize {
			// Still put the entry in, without content, so it hides the
			// lower layers' version of the file; warn that it was skipped.
			skipped = fmt.Errorf("file of %d bytes exceeds the %d-byte limit", h.Size, o.maxFileSize)
		} else if o.keep != nil && h.Size > 0 && o.keep(name, info{n}) {
			b, err := t.store(r, h.Size)
			if err != nil {
				return &entryIOError{err}
			}
			n.content = b
			st.retained++
		}
	case tar.TypeSymlink:
		n.mode |= fs.ModeSymlink
		n.link = h.Linkname
	case tar.TypeLink:
		target, err := cleanEntryName(h.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", h.Linkname, err)
		}
		src, err := t.lookup(target, false)
		if err != nil || !src.mode.IsRegular() {
			return fmt.Errorf("hardlink target %q is not a regular file in the image", h.Linkname)
		}
		n.mode, n.size, n.content = src.mode, src.size, src.content
	case tar.TypeChar, tar.TypeBlock:
		return errors.New("device file skipped")
	case tar.TypeFifo:
		return errors.New("fifo skipped")
	default:
		return fmt.Errorf("unsupported tar entry type %q skipped", h.Typeflag)
	}
	if old != nil && old.mode.IsRegular() {
		n.history = old.history
		if old.content != nil {
			n.history = append(n.history, Version{Layer: old.layer, Size: old.size, Mode: old.mode, blob: old.content})
		}
	}
	dir.kids[leaf] = n
	return skipped
}

// hideLower removes from dir everything that only lower layers wrote, as an
// opaque whiteout in layer idx demands; entries layer idx itself wrote stay.
func hideLower(dir *node, idx int) {
	for name, k := range dir.kids {
		switch {
		case k.last < idx:
			delete(dir.kids, name)
		case k.mode.IsDir():
			hideLower(k, idx)
		}
	}
}

type countingReader struct {
	r        io.Reader
	n        int64
	limit    int64
	progress func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.limit > 0 && c.n >= c.limit {
		return 0, ErrLimit
	}
	if c.limit > 0 && int64(len(p)) > c.limit-c.n {
		p = p[:c.limit-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(int64(n))
	}
	return n, err
}
