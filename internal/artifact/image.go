package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/moby/moby/client"
)

// Image is the metadata of an image target.
type Image struct {
	Digest       string // manifest digest, when known
	ConfigDigest string // the image ID
	RepoTags     []string
	RepoDigests  []string
	OS           string
	Architecture string
	Variant      string
	Created      time.Time
	User         string
	Env          []string
	Entrypoint   []string
	Cmd          []string
	WorkingDir   string
	ExposedPorts []string
	Labels       map[string]string
	Layers       []Layer
}

// Layer describes one filesystem layer, lowest first.
type Layer struct {
	Digest    string
	DiffID    string
	CreatedBy string
	Size      int64
}

func openImage(ctx context.Context, ref Ref, o Options) (*Artifact, error) {
	img, meta, cleanup, err := loadImage(ctx, ref, o)
	if err != nil {
		return nil, err
	}
	a := &Artifact{Ref: ref, Image: meta}
	if err := a.readLayers(ctx, img, o); err != nil {
		cleanup()
		return nil, err
	}
	a.close = func() error {
		cleanup()
		return a.Tree.Close()
	}
	return a, nil
}

// loadImage resolves ref to an image without reading its layers.
func loadImage(ctx context.Context, ref Ref, o Options) (v1.Image, *Image, func(), error) {
	noop := func() {}
	var (
		img     v1.Image
		err     error
		cleanup = noop
	)
	meta := &Image{}
	switch ref.Kind {
	case KindDockerArchive:
		img, err = tarball.ImageFromPath(ref.Name, nil)
		if err != nil {
			return nil, nil, noop, fmt.Errorf("reading docker archive %s: %w", ref.Name, err)
		}
		if m, merr := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(ref.Name) }); merr == nil && len(m) > 0 {
			meta.RepoTags = m[0].RepoTags
		}
	case KindOCIDir:
		img, err = imageFromLayout(ref.Name, o.Platform)
		if err != nil {
			return nil, nil, noop, fmt.Errorf("reading OCI layout %s: %w", ref.Name, err)
		}
	case KindRegistry:
		img, err = imageFromRegistry(ctx, ref.Name, o)
		if err != nil {
			return nil, nil, noop, fmt.Errorf("pulling %s: %w", ref.Name, err)
		}
	case KindDocker:
		var derr error
		img, cleanup, derr = imageFromDaemon(ctx, ref.Name, meta)
		if derr != nil && ref.Auto {
			o.Logger.Debug("image not in the Docker daemon, trying its registry", "image", ref.Name, "err", derr)
			var rerr error
			img, rerr = imageFromRegistry(ctx, ref.Name, o)
			if rerr != nil {
				return nil, nil, noop, fmt.Errorf("image %s: not in the Docker daemon (%v) nor in its registry: %w", ref.Name, derr, rerr)
			}
		} else if derr != nil {
			return nil, nil, noop, fmt.Errorf("image %s from the Docker daemon: %w", ref.Name, derr)
		}
	}
	if err := fillMeta(img, meta, ref); err != nil {
		cleanup()
		return nil, nil, noop, err
	}
	return img, meta, cleanup, nil
}

func imageFromLayout(dir, platform string) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	return pickImage(idx, platform, 0)
}

// pickImage chooses the image for platform from an index, descending into
// nested indexes (an OCI layout's index often points at a manifest list).
func pickImage(idx v1.ImageIndex, platform string, depth int) (v1.Image, error) {
	if depth > 4 {
		return nil, errors.New("image index nested too deep")
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	want, _ := v1.ParsePlatform(platform)
	var fallback *v1.Descriptor
	for i := range im.Manifests {
		d := &im.Manifests[i]
		if d.MediaType.IsIndex() {
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := pickImage(child, platform, depth+1); err == nil {
				return img, nil
			}
			continue
		}
		if !d.MediaType.IsImage() {
			continue
		}
		if d.Platform == nil || want == nil || d.Platform.Satisfies(*want) {
			return idx.Image(d.Digest)
		}
		if fallback == nil {
			fallback = d
		}
	}
	if fallback != nil && len(im.Manifests) == 1 {
		return idx.Image(fallback.Digest)
	}
	return nil, fmt.Errorf("no image for platform %s in the index", platform)
}

func imageFromRegistry(ctx context.Context, s string, o Options) (v1.Image, error) {
	var nopts []name.Option
	if o.Insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(s, nopts...)
	if err != nil {
		return nil, err
	}
	ropts := []remote.Option{remote.WithContext(ctx)}
	if o.Username != "" || o.Password != "" {
		ropts = append(ropts, remote.WithAuth(&authn.Basic{Username: o.Username, Password: o.Password}))
	} else {
		ropts = append(ropts, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	}
	if o.Platform != "" {
		p, err := v1.ParsePlatform(o.Platform)
		if err != nil {
			return nil, fmt.Errorf("platform %q: %w", o.Platform, err)
		}
		ropts = append(ropts, remote.WithPlatform(*p))
	}
	return remote.Image(r, ropts...)
}

// imageFromDaemon streams `docker save` of the image into a temporary file
// and reads that as a docker-archive, so the config, history and layers are
// the image's own rather than rebuilt from the inspect API.
func imageFromDaemon(ctx context.Context, s string, meta *Image) (v1.Image, func(), error) {
	noop := func() {}
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, noop, err
	}
	defer c.Close()
	insp, err := c.ImageInspect(ctx, s)
	if err != nil {
		return nil, noop, err
	}
	meta.RepoTags, meta.RepoDigests = insp.RepoTags, insp.RepoDigests
	rc, err := c.ImageSave(ctx, []string{s})
	if err != nil {
		return nil, noop, err
	}
	defer rc.Close()
	f, err := os.CreateTemp("", "vigil-docker-save-*.tar")
	if err != nil {
		return nil, noop, err
	}
	cleanup := func() { os.Remove(f.Name()) }
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		cleanup()
		return nil, noop, fmt.Errorf("docker save: %w", err)
	}
	if err := f.Close(); err != nil {
		cleanup()
		return nil, noop, err
	}
	var tag *name.Tag
	if t, err := name.NewTag(s); err == nil && !strings.HasPrefix(s, "sha256:") {
		tag = &t
	}
	img, err := tarball.ImageFromPath(f.Name(), tag)
	if err != nil && tag != nil {
		img, err = tarball.ImageFromPath(f.Name(), nil)
	}
	if err != nil {
		cleanup()
		return nil, noop, fmt.Errorf("reading docker save output: %w", err)
	}
	return img, cleanup, nil
}

func fillMeta(img v1.Image, meta *Image, ref Ref) error {
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config of %s: %w", ref, err)
	}
	if cf == nil {
		return fmt.Errorf("image %s has no config", ref)
	}
	if h, err := img.ConfigName(); err == nil {
		meta.ConfigDigest = h.String()
	}
	if ref.Kind == KindRegistry || ref.Kind == KindOCIDir {
		if h, err := img.Digest(); err == nil {
			meta.Digest = h.String()
		}
	}
	meta.OS, meta.Architecture, meta.Variant = cf.OS, cf.Architecture, cf.Variant
	meta.Created = cf.Created.Time
	c := cf.Config
	meta.User, meta.Env, meta.Entrypoint, meta.Cmd, meta.WorkingDir = c.User, c.Env, c.Entrypoint, c.Cmd, c.WorkingDir
	meta.Labels = c.Labels
	for p := range c.ExposedPorts {
		meta.ExposedPorts = append(meta.ExposedPorts, p)
	}
	slices.Sort(meta.ExposedPorts)

	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers of %s: %w", ref, err)
	}
	// History entries with EmptyLayer set made no layer; the others map onto
	// the layers in order.
	var created []string
	for _, h := range cf.History {
		if !h.EmptyLayer {
			created = append(created, h.CreatedBy)
		}
	}
	// `docker save` stores layers uncompressed, so their blob digest is the
	// DiffID; asking go-containerregistry for Digest() or Size() there would
	// gzip every layer just to hash a form that never existed.
	archived := ref.Kind == KindDockerArchive || ref.Kind == KindDocker
	// DiffIDs come from the config. go-containerregistry's DiffID() of a
	// compressed layer (OCI layout, gzip'd docker-archive) decompresses and
	// hashes the whole blob, before and outside the MaxLayerSize bound.
	for i, l := range layers {
		var ly Layer
		if i < len(cf.RootFS.DiffIDs) {
			ly.DiffID = cf.RootFS.DiffIDs[i].String()
		}
		if archived {
			ly.Digest = ly.DiffID
		} else {
			if d, err := l.Digest(); err == nil {
				ly.Digest = d.String()
			}
			if s, err := l.Size(); err == nil {
				ly.Size = s
			}
		}
		if len(created) == len(layers) {
			ly.CreatedBy = created[i]
		}
		meta.Layers = append(meta.Layers, ly)
	}
	return nil
}

// readLayers applies every layer, lowest first, into a new Tree. A layer that
// cannot be read is recorded in a.Errors and the next layer is still applied,
// so one corrupt layer does not lose the others.
func (a *Artifact) readLayers(ctx context.Context, img v1.Image, o Options) error {
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers of %s: %w", a.Ref, err)
	}
	a.Tree = newTree()
	var st applyStats
	ao := applyOptions{
		keep:         o.Keep,
		maxFileSize:  o.MaxFileSize,
		maxLayerSize: o.MaxLayerSize,
		warn:         func(w Warning) { a.Warnings = append(a.Warnings, w) },
	}
	if o.Progress != nil {
		ao.progress = o.Progress.Add
	}
	for i, l := range layers {
		if err := ctx.Err(); err != nil {
			a.Tree.Close()
			return err
		}
		if o.Progress != nil {
			o.Progress.Layer(i, len(layers), a.Image.Layers[i].Size)
		}
		id := a.Image.Layers[i].DiffID
		rc, err := l.Uncompressed()
		if err != nil {
			a.Errors = append(a.Errors, fmt.Errorf("layer %d (%s): %w", i, id, err))
			continue
		}
		err = a.Tree.applyLayer(i, rc, ao, &st)
		if cerr := rc.Close(); err == nil && cerr != nil && !strings.Contains(cerr.Error(), "closed") {
			err = cerr
		}
		if err != nil {
			a.Errors = append(a.Errors, fmt.Errorf("layer %d (%s): %w", i, id, err))
		}
	}
	if err := a.Tree.seal(); err != nil {
		a.Tree.Close()
		return err
	}
	a.FS = a.Tree
	a.Stats = Stats{Files: st.files, Retained: st.retained, Bytes: st.bytes}
	return nil
}
