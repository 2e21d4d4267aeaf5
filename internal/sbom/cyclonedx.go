package sbom

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// cycloneDXSchema is the $schema URL of CycloneDX 1.6 JSON documents.
const cycloneDXSchema = "http://cyclonedx.org/schema/bom-1.6.schema.json"

// bom-refs of the components that do not stand for a package.
const (
	cdxTargetRef = "vigil:target"
	cdxOSRef     = "vigil:os"
)

// EncodeCycloneDX writes r to w as an indented CycloneDX 1.6 JSON document.
// Everything but the serial number and the timestamp depends only on r and
// the tool named in o.
func EncodeCycloneDX(w io.Writer, r *inventory.Report, o Options) error {
	if r == nil {
		return fmt.Errorf("encode cyclonedx: %w", errNilReport)
	}
	bom := buildCycloneDX(r, o, uuid.New())
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(bom); err != nil {
		return fmt.Errorf("encode cyclonedx: %w", err)
	}
	return nil
}

func buildCycloneDX(r *inventory.Report, o Options, serial uuid.UUID) *cdx.BOM {
	tool := cdx.Component{
		Type:    cdx.ComponentTypeApplication,
		Name:    o.toolName(),
		Version: o.ToolVersion,
	}
	target := cdxTarget(r)

	components := make([]cdx.Component, 0, len(r.Packages)+1)
	dependsOn := make([]string, 0, len(r.Packages)+1)
	if r.OS != nil {
		components = append(components, cdxOS(r.OS))
		dependsOn = append(dependsOn, cdxOSRef)
	}
	refs := make(map[string]bool, len(r.Packages))
	for i := range r.Packages {
		c := cdxPackage(&r.Packages[i], refs)
		components = append(components, c)
		dependsOn = append(dependsOn, c.BOMRef)
	}

	deps := []cdx.Dependency{{Ref: target.BOMRef}}
	if len(dependsOn) > 0 {
		deps[0].Dependencies = &dependsOn
	}

	return &cdx.BOM{
		JSONSchema:   cycloneDXSchema,
		BOMFormat:    cdx.BOMFormat,
		SpecVersion:  cdx.SpecVersion1_6,
		SerialNumber: serial.URN(),
		Version:      1,
		Metadata: &cdx.Metadata{
			Timestamp: o.created(),
			Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{tool}},
			Component: &target,
		},
		Components:   &components,
		Dependencies: &deps,
	}
}

// cdxTarget describes the scanned image or directory.
func cdxTarget(r *inventory.Report) cdx.Component {
	c := cdx.Component{
		BOMRef: cdxTargetRef,
		Type:   cdx.ComponentTypeFile,
		Name:   targetName(r),
	}
	var props []cdx.Property
	add := func(name, value string) {
		if value != "" {
			props = append(props, cdx.Property{Name: name, Value: value})
		}
	}
	add("vigil:target:kind", r.Target.Kind)
	if isImage(r) {
		c.Type = cdx.ComponentTypeContainer
	}
	if img := r.Image; img != nil {
		c.Version = img.Digest
		add("vigil:image:digest", img.Digest)
		add("vigil:image:config-digest", img.ConfigDigest)
		for _, t := range img.RepoTags {
			add("vigil:image:repo-tag", t)
		}
		for _, d := range img.RepoDigests {
			add("vigil:image:repo-digest", d)
		}
		add("vigil:image:os", img.OS)
		add("vigil:image:architecture", img.Architecture)
		add("vigil:image:variant", img.Variant)
		if !img.Created.IsZero() {
			add("vigil:image:created", img.Created.UTC().Format("2006-01-02T15:04:05Z07:00"))
		}
		add("vigil:image:user", img.User)
		add("vigil:image:entrypoint", jsonArray(img.Entrypoint))
		add("vigil:image:cmd", jsonArray(img.Cmd))
		add("vigil:image:working-dir", img.WorkingDir)
		for _, e := range img.Env {
			add("vigil:image:env", e)
		}
		for _, p := range img.ExposedPorts {
			add("vigil:image:exposed-port", p)
		}
		keys := make([]string, 0, len(img.Labels))
		for k := range img.Labels {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			props = append(props, cdx.Property{Name: "vigil:image:label:" + k, Value: img.Labels[k]})
		}
		for i := range img.Layers {
			add("vigil:image:layer", layerSummary(&img.Layers[i]))
		}
	}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

// jsonArray renders an argv-like list so that its element boundaries
// survive; an empty list renders as "".
func jsonArray(s []string) string {
	if len(s) == 0 {
		return ""
	}
	b, err := json.Marshal(s)
	if err != nil { // a []string always marshals
		return strings.Join(s, " ")
	}
	return string(b)
}

func cdxOS(os *inventory.OS) cdx.Component {
	c := cdx.Component{
		BOMRef:      cdxOSRef,
		Type:        cdx.ComponentTypeOS,
		Name:        os.ID,
		Version:     os.VersionID,
		Description: os.PrettyName,
	}
	if c.Name == "" {
		c.Name = "unknown"
	}
	if os.Codename != "" {
		c.Properties = &[]cdx.Property{{Name: "vigil:os:codename", Value: os.Codename}}
	}
	return c
}

// cdxPackage describes one package. refs holds the bom-refs given so far and
// is updated, so that every component gets a unique one.
func cdxPackage(p *inventory.Package, refs map[string]bool) cdx.Component {
	purl := p.PackageURL()
	sep := "?"
	if strings.Contains(purl, "?") {
		sep = "&"
	}
	ref := purl + sep + "package-id=" + packageHash(p)
	for n := 2; refs[ref]; n++ {
		ref = purl + sep + "package-id=" + packageHash(p) + "-" + strconv.Itoa(n)
	}
	refs[ref] = true

	c := cdx.Component{
		BOMRef:     ref,
		Type:       cdx.ComponentTypeLibrary,
		Name:       p.Name,
		Version:    p.Version,
		PackageURL: purl,
	}
	if lic := cdxLicenses(p.Licenses); lic != nil {
		c.Licenses = lic
	}

	var props []cdx.Property
	add := func(name, value string) {
		if value != "" {
			props = append(props, cdx.Property{Name: name, Value: value})
		}
	}
	add("vigil:package:type", p.Type)
	add("vigil:package:ecosystem", p.Ecosystem)
	add("vigil:package:extractor", p.Extractor)
	add("vigil:package:source-name", p.SourceName)
	add("vigil:package:source-version", p.SourceVersion)
	add("vigil:package:arch", p.Arch)
	for _, l := range p.Locations {
		add("vigil:location", l)
	}
	if l := p.Layer; l != nil {
		add("vigil:layer:digest", l.Digest)
		add("vigil:layer:diff-id", l.DiffID)
		add("vigil:layer:index", strconv.Itoa(l.Index))
		add("vigil:layer:created-by", l.CreatedBy)
	}
	if len(props) > 0 {
		c.Properties = &props
	}

	if len(p.Locations) > 0 {
		occ := make([]cdx.EvidenceOccurrence, 0, len(p.Locations))
		for _, l := range p.Locations {
			occ = append(occ, cdx.EvidenceOccurrence{Location: l})
		}
		c.Evidence = &cdx.Evidence{Occurrences: &occ}
	}
	return c
}

// cdxLicenses renders declared licenses. A single entry that reads as an
// SPDX expression (it has AND, OR or WITH) becomes an expression; otherwise
// every entry becomes a named license, since CycloneDX does not allow the
// two to be mixed and an "id" would have to be on the SPDX list.
func cdxLicenses(ls []string) *cdx.Licenses {
	var names []string
	for _, l := range ls {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	if len(names) == 0 {
		return nil
	}
	if len(names) == 1 && isLicenseExpression(names[0]) {
		return &cdx.Licenses{{Expression: names[0]}}
	}
	out := make(cdx.Licenses, 0, len(names))
	for _, n := range names {
		out = append(out, cdx.LicenseChoice{License: &cdx.License{Name: n}})
	}
	return &out
}

// isLicenseExpression reports whether s reads as a compound SPDX license
// expression: license identifiers joined by AND, OR or WITH, with optional
// parentheses. Free text that merely contains "or" is not one.
func isLicenseExpression(s string) bool {
	s = strings.NewReplacer("(", " ", ")", " ").Replace(s)
	operators, operands := 0, 0
	for _, f := range strings.Fields(s) {
		switch {
		case f == "AND" || f == "OR" || f == "WITH":
			operators++
		case isLicenseID(f):
			operands++
		default:
			return false
		}
	}
	return operators > 0 && operands == operators+1
}
