// Package inventory finds the software packages in a scan target: it runs
// osv-scalibr's extractors over an artifact's file tree, reads the OS identity,
// and attributes each package to the image layer that introduced it.
//
// It reads only what the artifact exposes and never executes anything from
// the target.
package inventory

import (
	"strings"
	"time"

	"github.com/package-url/packageurl-go"
)

// Report is the software inventory of one scan target.
type Report struct {
	// Target is what was scanned, as the user named it and as resolved.
	Target Target `json:"target"`
	// OS is the distribution found in the target, nil when none was found.
	OS *OS `json:"os,omitempty"`
	// Image holds container image metadata; nil for directories.
	Image *Image `json:"image,omitempty"`
	// Packages are sorted by type, name, version, then first location.
	Packages []Package `json:"packages"`
	// Warnings are entries that were skipped on purpose (device files,
	// paths that leave the target, oversize files).
	Warnings []Warning `json:"warnings,omitempty"`
	// Errors are inputs that could not be read; the rest of the scan went on.
	Errors []ScanError `json:"errors,omitempty"`
	// Partial is true when Errors is not empty: the inventory may miss packages.
	Partial bool `json:"partial"`
	// Stats describes the work done.
	Stats Stats `json:"stats"`
}

// Target names the scanned artifact.
type Target struct {
	// Kind is one of dir, docker-archive, oci-dir, registry, docker.
	Kind string `json:"kind"`
	// Name is the path or image reference as given, without the kind prefix.
	Name string `json:"name"`
}

// OS is the operating system identity read from os-release.
type OS struct {
	ID         string `json:"id"`
	VersionID  string `json:"version_id,omitempty"`
	Codename   string `json:"codename,omitempty"`
	PrettyName string `json:"pretty_name,omitempty"`
}

// Image is the metadata of a container image.
type Image struct {
	// Digest is the manifest digest (sha256:…) when known.
	Digest string `json:"digest,omitempty"`
	// ConfigDigest is the image ID: the digest of the config blob.
	ConfigDigest string            `json:"config_digest,omitempty"`
	RepoTags     []string          `json:"repo_tags,omitempty"`
	RepoDigests  []string          `json:"repo_digests,omitempty"`
	OS           string            `json:"os,omitempty"`
	Architecture string            `json:"architecture,omitempty"`
	Variant      string            `json:"variant,omitempty"`
	Created      time.Time         `json:"created,omitzero"`
	User         string            `json:"user,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Entrypoint   []string          `json:"entrypoint,omitempty"`
	Cmd          []string          `json:"cmd,omitempty"`
	WorkingDir   string            `json:"working_dir,omitempty"`
	ExposedPorts []string          `json:"exposed_ports,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Layers       []Layer           `json:"layers"`
}

// Layer is one filesystem layer of an image, lowest first.
type Layer struct {
	Index int `json:"index"`
	// Digest is the digest of the layer blob as stored (possibly compressed).
	Digest string `json:"digest"`
	// DiffID is the digest of the uncompressed layer tar.
	DiffID string `json:"diff_id"`
	// CreatedBy is the image-history command that made this layer.
	CreatedBy string `json:"created_by,omitempty"`
	Size      int64  `json:"size,omitempty"`
}

// ShortID is the first 12 hex digits of the layer's DiffID (its digest when
// the DiffID is unknown), as tables show it; "" for a nil layer.
func (l *Layer) ShortID() string {
	if l == nil {
		return ""
	}
	d := l.DiffID
	if d == "" {
		d = l.Digest
	}
	if _, hex, ok := strings.Cut(d, ":"); ok {
		d = hex
	}
	return d[:min(len(d), 12)]
}

// Package is one software package found in the target.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Type is the purl type: deb, apk, rpm, golang, npm, pypi, maven, cargo,
	// gem, composer, nuget, …
	Type string `json:"type"`
	// Ecosystem is the OSV ecosystem the package is matched in, such as
	// "Debian:12", "Alpine:v3.19", "Go", "npm", "PyPI".
	Ecosystem string `json:"ecosystem,omitempty"`
	PURL      string `json:"purl"`
	// SourceName and SourceVersion name the source package of a binary OS
	// package (Debian source package, Alpine origin, RPM source RPM).
	SourceName    string   `json:"source_name,omitempty"`
	SourceVersion string   `json:"source_version,omitempty"`
	Arch          string   `json:"arch,omitempty"`
	Licenses      []string `json:"licenses,omitempty"`
	// Locations are the files the package was found in, relative to the
	// target root with a leading slash.
	Locations []string `json:"locations"`
	// Layer is the image layer that introduced the package; nil for directories.
	Layer *Layer `json:"layer,omitempty"`
	// Extractor names the osv-scalibr plugin that found the package.
	Extractor string `json:"extractor"`
}

// PackageURL is the package's purl, or one built from its type, name and
// version when the extractor gave none, so that every package has one.
func (p *Package) PackageURL() string {
	if p.PURL != "" {
		return p.PURL
	}
	typ := strings.ToLower(p.Type)
	if typ == "" {
		typ = "generic"
	}
	return packageurl.NewPackageURL(typ, "", p.Name, p.Version, nil, "").ToString()
}

// Warning is an entry skipped on purpose.
type Warning struct {
	Layer  string `json:"layer,omitempty"`
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

// ScanError is an input that could not be read.
type ScanError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Stats describes how much work a scan did.
type Stats struct {
	Layers        int           `json:"layers"`
	FilesSeen     int64         `json:"files_seen"`
	BytesRead     int64         `json:"bytes_read"`
	FilesRetained int64         `json:"files_retained"`
	Duration      time.Duration `json:"duration_ns"`
}
