package artifact

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// pseudoDirs are the kernel's virtual filesystems, skipped when a target is
// the host's own root: they hold no packages and reading them can block.
var pseudoDirs = []string{"proc", "sys", "dev"}

// openDir opens a directory through an os.Root, which refuses any path or
// symlink that resolves outside the directory.
func openDir(ref Ref) (*Artifact, error) {
	abs, err := filepath.Abs(ref.Name)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", ref, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("target %s: %w", ref, err)
	}
	var fsys fs.FS = root.FS()
	if real, err := filepath.EvalSymlinks(abs); err == nil && real == "/" {
		fsys = &hideFS{FS: fsys, hidden: pseudoDirs}
	}
	return &Artifact{
		Ref:   ref,
		FS:    fsys.(dirFS),
		Root:  abs,
		close: root.Close,
	}, nil
}

type dirFS interface {
	fs.ReadDirFS
	fs.StatFS
}

// hideFS leaves some top-level directories out of the root's listing.
type hideFS struct {
	fs.FS
	hidden []string
}

func (h *hideFS) keep(e fs.DirEntry) bool { return !slices.Contains(h.hidden, e.Name()) }

func (h *hideFS) Open(name string) (fs.File, error) {
	f, err := h.FS.Open(name)
	if err != nil || name != "." {
		return f, err
	}
	if d, ok := f.(fs.ReadDirFile); ok {
		return &hideDir{ReadDirFile: d, keep: h.keep}, nil
	}
	return f, nil
}

func (h *hideFS) ReadDir(name string) ([]fs.DirEntry, error) {
	ents, err := fs.ReadDir(h.FS, name)
	if name != "." {
		return ents, err
	}
	return slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return !h.keep(e) }), err
}

func (h *hideFS) Stat(name string) (fs.FileInfo, error) { return fs.Stat(h.FS, name) }

type hideDir struct {
	fs.ReadDirFile
	keep func(fs.DirEntry) bool
}

// ReadDir filters the hidden entries out; with n > 0 it reads on until it
// has something to return, because an empty batch without an error would
// break the io/fs contract (and callers that trust it).
func (d *hideDir) ReadDir(n int) ([]fs.DirEntry, error) {
	for {
		ents, err := d.ReadDirFile.ReadDir(n)
		ents = slices.DeleteFunc(ents, func(e fs.DirEntry) bool { return !d.keep(e) })
		if len(ents) > 0 || err != nil || n <= 0 {
			return ents, err
		}
	}
}
