// Package sbom encodes a software inventory as CycloneDX 1.6 JSON, SPDX 2.3 JSON,
// Vigil's own JSON, or a human table. It does no I/O beyond the writer it is given.
package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// Options describe the tool that produced a document and the clock it uses.
type Options struct {
	// ToolName names the producing tool; empty means "vigil".
	ToolName string
	// ToolVersion is the producing tool's version; it may be empty.
	ToolVersion string
	// Now returns the document creation time; nil means time.Now.
	// Tests pass a fixed clock.
	Now func() time.Time
}

// errNilReport is returned by every encoder given a nil report.
var errNilReport = errors.New("nil report")

func (o Options) toolName() string {
	if o.ToolName == "" {
		return "vigil"
	}
	return o.ToolName
}

// created returns the document creation time in UTC, to the second, as the
// SPDX and CycloneDX schemas expect.
func (o Options) created() string {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	return now().UTC().Truncate(time.Second).Format(time.RFC3339)
}

// isImage reports whether the report describes a container image rather
// than a directory.
func isImage(r *inventory.Report) bool {
	if r.Image != nil {
		return true
	}
	return r.Target.Kind != "" && r.Target.Kind != "dir"
}

// targetName is the name of the scan target, never empty.
func targetName(r *inventory.Report) string {
	if r.Target.Name != "" {
		return r.Target.Name
	}
	if r.Target.Kind != "" {
		return r.Target.Kind
	}
	return "unknown"
}

// packageHash is a short, stable digest of what distinguishes one package
// entry from another with the same purl.
func packageHash(p *inventory.Package) string {
	h := sha256.New()
	for _, s := range []string{p.Type, p.Name, p.Version, p.PURL, p.Extractor} {
		fmt.Fprintf(h, "%d:%s;", len(s), s)
	}
	for _, s := range p.Locations {
		fmt.Fprintf(h, "L%d:%s;", len(s), s)
	}
	if p.Layer != nil {
		fmt.Fprintf(h, "Y%d:%s;", len(p.Layer.DiffID), p.Layer.DiffID)
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// layerSummary renders a layer as "index digest diffid created_by".
func layerSummary(l *inventory.Layer) string {
	parts := []string{fmt.Sprint(l.Index), orDash(l.Digest), orDash(l.DiffID)}
	if l.CreatedBy != "" {
		parts = append(parts, l.CreatedBy)
	}
	return strings.Join(parts, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
