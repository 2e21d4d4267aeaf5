package inventory

import (
	"cmp"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/osv-scalibr/extractor"
	"github.com/google/osv-scalibr/extractor/filesystem"
	apkmeta "github.com/google/osv-scalibr/extractor/filesystem/os/apk/metadata"
	dpkgmeta "github.com/google/osv-scalibr/extractor/filesystem/os/dpkg/metadata"
	"github.com/google/osv-scalibr/extractor/filesystem/os/osrelease"
	rpmmeta "github.com/google/osv-scalibr/extractor/filesystem/os/rpm/metadata"
	scalibrfs "github.com/google/osv-scalibr/fs"
	"github.com/google/osv-scalibr/plugin"
	"github.com/google/osv-scalibr/purl"
	"github.com/google/osv-scalibr/stats"
	"github.com/package-url/packageurl-go"

	"github.com/vigil-cwpp/vigil/internal/artifact"
)

// Scanner runs a fixed set of extractors. It is safe for one scan at a time.
type Scanner struct {
	exts   []filesystem.Extractor
	byName map[string]filesystem.Extractor
	log    *slog.Logger
	// Walked, when set, is called for every file and directory the
	// extraction walk visits (to drive a progress display).
	Walked func()
}

// walkStats feeds osv-scalibr's walk into Scanner.Walked.
type walkStats struct {
	stats.NoopCollector
	walked func()
}

func (w walkStats) AfterInodeVisited(string) {
	if w.walked != nil {
		w.walked()
	}
}

// New returns a Scanner with every extractor Vigil enables.
func New(log *slog.Logger) (*Scanner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	exts, err := extractors()
	if err != nil {
		return nil, err
	}
	s := &Scanner{exts: exts, byName: map[string]filesystem.Extractor{}, log: log}
	for _, e := range exts {
		s.byName[e.Name()] = e
	}
	setScalibrLogger(log)
	return s, nil
}

// sideFiles are read by extractors beside the file they were asked about.
var sideFiles = map[string]bool{
	"etc/os-release":     true,
	"usr/lib/os-release": true,
}

// Keep reports whether an image file's content must be retained for
// extraction: some extractor wants it, or an extractor reads it on the side.
func (s *Scanner) Keep(name string, fi fs.FileInfo) bool {
	if sideFiles[name] || path.Base(name) == "go.sum" {
		return true
	}
	api := fileAPI{path: name, info: fi}
	for _, e := range s.exts {
		if e.FileRequired(api) {
			return true
		}
	}
	return false
}

type fileAPI struct {
	path string
	info fs.FileInfo
}

func (f fileAPI) Path() string               { return f.path }
func (f fileAPI) Stat() (fs.FileInfo, error) { return f.info, nil }

// Scan extracts the inventory of an opened artifact. Errors reading single
// files are recorded in the report, which is then partial; an error is
// returned only when the walk itself could not run.
func (s *Scanner) Scan(ctx context.Context, a *artifact.Artifact) (*Report, error) {
	start := time.Now()
	r := &Report{
		Target:   Target{Kind: string(a.Ref.Kind), Name: a.Ref.Name},
		Packages: []Package{},
	}
	for _, w := range a.Warnings {
		lw := Warning{Path: "/" + strings.TrimPrefix(w.Path, "/"), Reason: w.Reason}
		if a.Image != nil && w.Layer < len(a.Image.Layers) {
			lw.Layer = a.Image.Layers[w.Layer].DiffID
		}
		r.Warnings = append(r.Warnings, lw)
	}
	for _, e := range a.Errors {
		r.Errors = append(r.Errors, ScanError{Path: a.Ref.String(), Error: e.Error()})
	}
	if a.Image != nil {
		r.Image = imageMeta(a.Image)
	}
	r.OS = readOS(a.FS)

	inv, status, err := filesystem.Run(ctx, &filesystem.Config{
		Extractors: s.exts,
		ScanRoots:  []*scalibrfs.ScanRoot{{FS: a.FS}},
		Stats:      walkStats{walked: s.Walked},
	})
	if err != nil {
		return r, fmt.Errorf("walking %s: %w", a.Ref, err)
	}
	for _, st := range status {
		r.Errors = append(r.Errors, statusErrors(st)...)
	}

	var attr *attributor
	if a.Tree != nil {
		attr = &attributor{tree: a.Tree, scanner: s, layers: r.Image.Layers}
	}
	for _, p := range inv.Packages {
		pkg := convert(p)
		if attr != nil {
			pkg.Layer = attr.layerOf(ctx, p)
		}
		r.Packages = append(r.Packages, pkg)
	}
	r.Packages = merge(r.Packages)
	r.Partial = len(r.Errors) > 0
	r.Stats = Stats{
		FilesSeen:     a.Stats.Files,
		BytesRead:     a.Stats.Bytes,
		FilesRetained: a.Stats.Retained,
		Duration:      time.Since(start),
	}
	if r.Image != nil {
		r.Stats.Layers = len(r.Image.Layers)
	}
	return r, nil
}

func statusErrors(st *plugin.Status) []ScanError {
	if st == nil || st.Status == nil {
		return nil
	}
	var out []ScanError
	for _, fe := range st.Status.FileErrors {
		out = append(out, ScanError{Path: "/" + strings.TrimPrefix(fe.FilePath, "/"), Error: st.Name + ": " + fe.ErrorMessage})
	}
	if st.Status.Status == plugin.ScanStatusFailed && len(out) == 0 {
		out = append(out, ScanError{Path: "", Error: st.Name + ": " + st.Status.FailureReason})
	}
	return out
}

func readOS(fsys fs.FS) *OS {
	sfs, ok := fsys.(scalibrfs.FS)
	if !ok {
		return nil
	}
	m, err := osrelease.GetOSRelease(sfs)
	if err != nil || m["ID"] == "" {
		return nil
	}
	return &OS{ID: m["ID"], VersionID: m["VERSION_ID"], Codename: m["VERSION_CODENAME"], PrettyName: m["PRETTY_NAME"]}
}

func imageMeta(im *artifact.Image) *Image {
	out := &Image{
		Digest: im.Digest, ConfigDigest: im.ConfigDigest, RepoTags: im.RepoTags, RepoDigests: im.RepoDigests,
		OS: im.OS, Architecture: im.Architecture, Variant: im.Variant, Created: im.Created,
		User: im.User, Env: im.Env, Entrypoint: im.Entrypoint, Cmd: im.Cmd, WorkingDir: im.WorkingDir,
		ExposedPorts: im.ExposedPorts, Labels: im.Labels, Layers: []Layer{},
	}
	for i, l := range im.Layers {
		out.Layers = append(out.Layers, Layer{Index: i, Digest: l.Digest, DiffID: l.DiffID, CreatedBy: l.CreatedBy, Size: l.Size})
	}
	return out
}

// convert maps an osv-scalibr package onto Vigil's model.
func convert(p *extractor.Package) Package {
	pkg := Package{
		Name:     p.Name,
		Version:  p.Version,
		Type:     p.PURLType,
		Licenses: slices.DeleteFunc(slices.Clone(p.Licenses), func(s string) bool { return s == "" }),
	}
	if len(p.Plugins) > 0 {
		pkg.Extractor = p.Plugins[0]
	}
	// The Go toolchain a binary was built with is the "stdlib" module in
	// the Go vulnerability database; name it so.
	if p.PURLType == "golang" && p.Name == "go" {
		p.Name, pkg.Name = "stdlib", "stdlib"
	}
	if u := p.PURL(); u != nil {
		// osv-scalibr marks npm purls with a "source" qualifier of its own
		// (the package.json and lock-file extractors disagree on it); it is
		// not part of the purl spec and would keep equal packages apart.
		if u.Type == purl.TypeNPM {
			u.Qualifiers = purl.Qualifiers(slices.DeleteFunc(packageurl.Qualifiers(u.Qualifiers), func(q packageurl.Qualifier) bool {
				return q.Key == "source"
			}))
		}
		pkg.PURL = u.String()
	}
	if eco := p.Ecosystem(); !eco.IsEmpty() {
		pkg.Ecosystem = eco.String()
	}
	switch m := p.Metadata.(type) {
	case *dpkgmeta.Metadata:
		pkg.SourceName, pkg.SourceVersion, pkg.Arch = m.SourceName, m.SourceVersion, m.Architecture
		if pkg.SourceName == "" {
			pkg.SourceName = m.PackageName
		}
		if pkg.SourceVersion == "" {
			pkg.SourceVersion = p.Version
		}
	case *apkmeta.Metadata:
		pkg.SourceName, pkg.SourceVersion, pkg.Arch = m.OriginName, p.Version, m.Architecture
	case *rpmmeta.Metadata:
		pkg.SourceName, pkg.Arch = m.SourceRPM, m.Architecture
	}
	if d := p.Location.PathOrEmpty(); d != "" {
		pkg.Locations = []string{"/" + strings.TrimPrefix(d, "/")}
	}
	if pkg.Locations == nil {
		pkg.Locations = []string{}
	}
	return pkg
}

// merge folds packages with the same purl found by the same extractor type
// in several files (a lock file and the installed node_modules, say) into one
// package with all the locations, and sorts the result.
func merge(pkgs []Package) []Package {
	slices.SortFunc(pkgs, comparePackages)
	out := pkgs[:0]
	for _, p := range pkgs {
		if n := len(out); n > 0 && out[n-1].PURL == p.PURL && p.PURL != "" && sameLayer(out[n-1].Layer, p.Layer) {
			prev := &out[n-1]
			for _, l := range p.Locations {
				if !slices.Contains(prev.Locations, l) {
					prev.Locations = append(prev.Locations, l)
				}
			}
			continue
		}
		out = append(out, p)
	}
	return out
}

func sameLayer(a, b *Layer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Index == b.Index
}

func comparePackages(a, b Package) int {
	return cmp.Or(
		cmp.Compare(a.Type, b.Type),
		cmp.Compare(a.Name, b.Name),
		cmp.Compare(a.Version, b.Version),
		cmp.Compare(a.PURL, b.PURL),
		slices.Compare(a.Locations, b.Locations),
	)
}
