package inventory

import (
	"context"
	"io"
	"io/fs"
	"time"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"

	"github.com/vigil-cwpp/vigil/internal/artifact"
)

// attributor finds the layer that introduced each package. A package found
// in a file that only one layer wrote (a Go binary, a jar) comes from that
// layer. A package database rewritten by several layers (dpkg's status, say)
// is re-extracted at each retained version, and the package is attributed to
// the oldest version from which it is present without a gap up to the top.
type attributor struct {
	tree    *artifact.Tree
	scanner *Scanner
	layers  []Layer
	// present caches, per file and version, the packages each version holds.
	present map[string][]map[string]bool
}

func (a *attributor) layerOf(ctx context.Context, p *extractor.Package) *Layer {
	loc := p.Location.PathOrEmpty()
	if loc == "" {
		return nil
	}
	vs := a.tree.Versions(loc)
	idx := a.tree.LayerOf(loc)
	if len(vs) > 1 && len(p.Plugins) > 0 {
		sets := a.versions(ctx, loc, p.Plugins[0], vs)
		id := p.Name + "@" + p.Version
		idx = vs[len(vs)-1].Layer
		for i := len(vs) - 2; i >= 0 && sets[i][id]; i-- {
			idx = vs[i].Layer
		}
	}
	if idx < 0 || idx >= len(a.layers) {
		return nil
	}
	l := a.layers[idx]
	return &l
}

func (a *attributor) versions(ctx context.Context, loc, plugin string, vs []artifact.Version) []map[string]bool {
	key := plugin + "\x00" + loc
	if sets, ok := a.present[key]; ok {
		return sets
	}
	if a.present == nil {
		a.present = map[string][]map[string]bool{}
	}
	ex := a.scanner.byName[plugin]
	sets := make([]map[string]bool, len(vs))
	for i, v := range vs {
		sets[i] = map[string]bool{}
		if ex == nil {
			continue
		}
		in := &filesystem.ScanInput{
			FS:     a.tree,
			Path:   loc,
			Info:   versionInfo{name: loc, v: v},
			Reader: io.NewSectionReader(a.tree.OpenVersion(v), 0, v.Size),
		}
		inv, err := ex.Extract(ctx, in)
		if err != nil {
			a.scanner.log.Debug("re-extracting an older layer's version", "path", loc, "layer", v.Layer, "err", err)
		}
		for _, q := range inv.Packages {
			name := q.Name
			if q.PURLType == "golang" && name == "go" {
				name = "stdlib"
			}
			sets[i][name+"@"+q.Version] = true
		}
	}
	a.present[key] = sets
	return sets
}

type versionInfo struct {
	name string
	v    artifact.Version
}

func (i versionInfo) Name() string       { return i.name }
func (i versionInfo) Size() int64        { return i.v.Size }
func (i versionInfo) Mode() fs.FileMode  { return i.v.Mode }
func (i versionInfo) ModTime() time.Time { return time.Time{} }
func (i versionInfo) IsDir() bool        { return false }
func (i versionInfo) Sys() any           { return nil }
