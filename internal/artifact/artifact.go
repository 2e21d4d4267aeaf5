// Package artifact opens a scan target — a directory or root filesystem, a
// `docker save` tarball, an OCI image layout, an image in a registry or in the
// local Docker daemon — as one read-only file tree, with the image's layers
// and metadata.
//
// It never follows a symlink, hardlink or ".." out of the target, skips device
// files and oversize entries with a warning, bounds decompression, and never
// executes anything it reads.
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// Kind is the kind of a scan target.
type Kind string

// The target kinds, also the prefixes a user may write before a target.
const (
	KindDir           Kind = "dir"
	KindDockerArchive Kind = "docker-archive"
	KindOCIDir        Kind = "oci-dir"
	KindRegistry      Kind = "registry"
	KindDocker        Kind = "docker"
)

var kinds = []Kind{KindDir, KindDockerArchive, KindOCIDir, KindRegistry, KindDocker}

// Ref is a parsed target.
type Ref struct {
	Kind Kind
	Name string // path or image reference, without the prefix
	// Auto is true when the kind was guessed rather than written.
	Auto bool
}

func (r Ref) String() string { return string(r.Kind) + ":" + r.Name }

// ParseRef reads a target as the user wrote it: "KIND:NAME" with an explicit
// kind, or a bare path or image reference whose kind is detected: an existing
// directory is an OCI layout when it holds an oci-layout file and a directory
// otherwise; an existing file is a docker-archive; anything else is an image
// reference, looked up in the Docker daemon first and then in its registry.
func ParseRef(s string) (Ref, error) {
	if s == "" {
		return Ref{}, errors.New("empty target")
	}
	for _, k := range kinds {
		if rest, ok := strings.CutPrefix(s, string(k)+":"); ok {
			if rest == "" {
				return Ref{}, fmt.Errorf("target %q: nothing after %s:", s, k)
			}
			return Ref{Kind: k, Name: rest}, nil
		}
	}
	fi, err := os.Stat(s)
	switch {
	case err == nil && fi.IsDir():
		if _, err := os.Stat(filepath.Join(s, "oci-layout")); err == nil {
			return Ref{Kind: KindOCIDir, Name: s, Auto: true}, nil
		}
		return Ref{Kind: KindDir, Name: s, Auto: true}, nil
	case err == nil:
		return Ref{Kind: KindDockerArchive, Name: s, Auto: true}, nil
	case strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"):
		return Ref{}, fmt.Errorf("target %q: %w", s, err)
	}
	return Ref{Kind: KindDocker, Name: s, Auto: true}, nil
}

// Options control how a target is opened.
type Options struct {
	// Keep decides which files' content is retained from image layers; a
	// directory target reads files on demand and ignores it.
	Keep KeepFunc
	// MaxFileSize skips larger files with a warning (default 1 GiB).
	MaxFileSize int64
	// MaxLayerSize fails a layer whose uncompressed tar is larger (default
	// 32 GiB): the bound on decompression bombs.
	MaxLayerSize int64
	// Insecure allows plain HTTP and unverified TLS for registries.
	Insecure bool
	// Username and Password are registry basic-auth credentials; when empty
	// the Docker config credentials are used, else anonymous access.
	Username, Password string
	// Platform selects an image from a multi-platform index ("linux/amd64").
	Platform string
	// Progress, when set, is told about layers and bytes as they are read.
	Progress Progress
	Logger   *slog.Logger
}

// DefaultOptions returns the default bounds.
func DefaultOptions() Options {
	return Options{
		MaxFileSize:  1 << 30,
		MaxLayerSize: 32 << 30,
		Platform:     "linux/amd64",
	}
}

// Progress receives reading progress; implementations must be cheap.
type Progress interface {
	// Layer announces that layer i of n, of size bytes (0 if unknown), starts.
	Layer(i, n int, size int64)
	// Add reports n more bytes read.
	Add(n int64)
}

// Artifact is an opened target.
type Artifact struct {
	Ref Ref
	// FS is the merged file tree, rooted at the target's root.
	FS interface {
		fs.ReadDirFS
		fs.StatFS
	}
	// Root is the real directory of a dir target, "" for images.
	Root string
	// Image is set for image targets.
	Image *Image
	// Tree is the layered view of an image target, nil for directories.
	Tree *Tree
	// Warnings are entries skipped on purpose.
	Warnings []Warning
	// Errors are inputs that could not be read; the tree may be incomplete.
	Errors []error
	// Stats counts the work done while opening.
	Stats Stats
	close func() error
}

// Stats counts the work done opening an artifact.
type Stats struct {
	Files    int64
	Retained int64
	Bytes    int64
}

// Close releases temporary files.
func (a *Artifact) Close() error {
	if a.close == nil {
		return nil
	}
	return a.close()
}

// Open opens the target named by ref. The returned artifact may carry Errors
// (a corrupt layer, say) and still be usable: the caller reports a partial
// result. An error is returned only when nothing could be opened.
func Open(ctx context.Context, ref Ref, o Options) (*Artifact, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	switch ref.Kind {
	case KindDir:
		return openDir(ref)
	case KindDockerArchive, KindOCIDir, KindRegistry, KindDocker:
		return openImage(ctx, ref, o)
	}
	return nil, fmt.Errorf("target %s: unknown kind %q", ref, ref.Kind)
}
