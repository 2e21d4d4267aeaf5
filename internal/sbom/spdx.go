package sbom

import (
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// spdxNamespaceBase prefixes the namespace of every SPDX document Vigil
// writes.
const spdxNamespaceBase = "https://vigil.dev/spdxdocs/"

// SPDX values used more than once.
const (
	noAssertion = "NOASSERTION"
	// Element IDs, without the "SPDXRef-" prefix the library adds.
	spdxDocumentID = "DOCUMENT"
	spdxRootID     = "Root"
	spdxOSID       = "OperatingSystem"
)

// SPDX 2.3 primary package purposes. The specification spells the
// operating-system purpose OPERATING-SYSTEM, which is its tag-value form; the
// official SPDX 2.3 JSON schema only accepts OPERATING_SYSTEM.
const (
	purposeContainer = "CONTAINER"
	purposeFile      = "FILE"
	purposeLibrary   = "LIBRARY"
	purposeOS        = "OPERATING_SYSTEM"
)

// EncodeSPDX writes r to w as an indented SPDX 2.3 JSON document. Everything
// but the document namespace and the creation time depends only on r and the
// tool named in o.
func EncodeSPDX(w io.Writer, r *inventory.Report, o Options) error {
	if r == nil {
		return fmt.Errorf("encode spdx: %w", errNilReport)
	}
	doc := buildSPDX(r, o, uuid.New())
	if err := spdxjson.Write(doc, w, spdxjson.Indent("  "), spdxjson.EscapeHTML(false)); err != nil {
		return fmt.Errorf("encode spdx: %w", err)
	}
	return nil
}

func buildSPDX(r *inventory.Report, o Options, id uuid.UUID) *spdx.Document {
	name := targetName(r)
	tool := o.toolName()
	if o.ToolVersion != "" {
		tool += "-" + o.ToolVersion
	}

	root := spdxRoot(r)
	packages := make([]*spdx.Package, 0, len(r.Packages)+2)
	packages = append(packages, root)
	relationships := make([]*spdx.Relationship, 0, len(r.Packages)+2)
	relationships = append(relationships, spdxRelationship(spdxDocumentID, common.TypeRelationshipDescribe, spdxRootID))
	if r.OS != nil {
		packages = append(packages, spdxOS(r.OS))
		relationships = append(relationships, spdxRelationship(spdxRootID, common.TypeRelationshipContains, spdxOSID))
	}
	for i := range r.Packages {
		p := spdxPackage(&r.Packages[i], i+1)
		packages = append(packages, p)
		relationships = append(relationships, spdxRelationship(spdxRootID, common.TypeRelationshipContains, p.PackageSPDXIdentifier))
	}

	return &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    spdxDocumentID,
		DocumentName:      name,
		DocumentNamespace: spdxNamespaceBase + sanitizeID(name) + "-" + id.String(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: tool}},
			Created:  o.created(),
		},
		Packages:      packages,
		Relationships: relationships,
	}
}

func spdxRelationship(a common.ElementID, rel string, b common.ElementID) *spdx.Relationship {
	return &spdx.Relationship{
		RefA:         common.DocElementID{ElementRefID: a},
		RefB:         common.DocElementID{ElementRefID: b},
		Relationship: rel,
	}
}

// newSPDXPackage returns a package with the fields Vigil cannot know set to
// NOASSERTION.
func newSPDXPackage(id common.ElementID, name, version, purpose string) *spdx.Package {
	return &spdx.Package{
		PackageSPDXIdentifier:   id,
		PackageName:             name,
		PackageVersion:          version,
		PackageSupplier:         &common.Supplier{Supplier: noAssertion},
		PackageDownloadLocation: noAssertion,
		FilesAnalyzed:           false,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
		PrimaryPackagePurpose:   purpose,
	}
}

// spdxRoot describes the scanned image or directory.
func spdxRoot(r *inventory.Report) *spdx.Package {
	purpose := purposeFile
	if isImage(r) {
		purpose = purposeContainer
	}
	version := ""
	if r.Image != nil {
		version = r.Image.Digest
	}
	p := newSPDXPackage(spdxRootID, targetName(r), version, purpose)

	var notes []string
	if r.Target.Kind != "" {
		notes = append(notes, "target kind: "+r.Target.Kind)
	}
	if img := r.Image; img != nil {
		if img.ConfigDigest != "" {
			notes = append(notes, "config digest: "+img.ConfigDigest)
		}
		if platform := joinNonEmpty("/", img.OS, img.Architecture, img.Variant); platform != "" {
			notes = append(notes, "platform: "+platform)
		}
		if len(img.RepoTags) > 0 {
			notes = append(notes, "tags: "+strings.Join(img.RepoTags, ", "))
		}
		for i := range img.Layers {
			notes = append(notes, "layer "+layerSummary(&img.Layers[i]))
		}
	}
	p.PackageComment = strings.Join(notes, "\n")
	return p
}

func spdxOS(os *inventory.OS) *spdx.Package {
	name := os.ID
	if name == "" {
		name = "unknown"
	}
	p := newSPDXPackage(spdxOSID, name, os.VersionID, purposeOS)
	p.PackageDescription = os.PrettyName
	return p
}

// spdxPackage describes the n-th package (from 1) of the inventory.
func spdxPackage(ip *inventory.Package, n int) *spdx.Package {
	typ := ip.Type
	if typ == "" {
		typ = "unknown"
	}
	id := common.ElementID(fmt.Sprintf("Package-%s-%s-%d", sanitizeID(typ), sanitizeID(ip.Name), n))
	p := newSPDXPackage(id, ip.Name, ip.Version, purposeLibrary)
	p.PackageLicenseDeclared = spdxDeclaredLicense(ip.Licenses)
	if len(ip.Licenses) > 0 {
		p.PackageLicenseComments = "licenses as declared by the package: " + strings.Join(ip.Licenses, "; ")
	}
	p.PackageExternalReferences = []*spdx.PackageExternalReference{{
		Category: common.CategoryPackageManager,
		RefType:  common.TypePackageManagerPURL,
		Locator:  ip.PackageURL(),
	}}
	p.PackageSourceInfo = spdxSourceInfo(ip)

	var notes []string
	if ip.SourceName != "" {
		notes = append(notes, "source package: "+joinNonEmpty(" ", ip.SourceName, ip.SourceVersion))
	}
	if ip.Ecosystem != "" {
		notes = append(notes, "ecosystem: "+ip.Ecosystem)
	}
	if ip.Arch != "" {
		notes = append(notes, "architecture: "+ip.Arch)
	}
	if ip.Extractor != "" {
		notes = append(notes, "extractor: "+ip.Extractor)
	}
	p.PackageComment = strings.Join(notes, "\n")
	return p
}

// spdxSourceInfo says where a package was found, such as
// "found in /var/lib/dpkg/status; layer sha256:… (RUN …)".
func spdxSourceInfo(p *inventory.Package) string {
	var parts []string
	if len(p.Locations) > 0 {
		parts = append(parts, "found in "+strings.Join(p.Locations, ", "))
	}
	if l := p.Layer; l != nil {
		s := "layer " + orDash(l.Digest)
		if l.CreatedBy != "" {
			s += " (" + l.CreatedBy + ")"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

// spdxDeclaredLicense returns the declared license when it is a single
// identifier-looking token, and NOASSERTION otherwise: Vigil does not parse
// license expressions, and an invalid one would make the document invalid.
func spdxDeclaredLicense(ls []string) string {
	if len(ls) != 1 {
		return noAssertion
	}
	l := strings.TrimSpace(ls[0])
	if !isLicenseID(l) {
		return noAssertion
	}
	return l
}

// isLicenseID reports whether s is a single token of [A-Za-z0-9.+-] that
// starts with a letter or digit, the shape of an SPDX license identifier.
func isLicenseID(s string) bool {
	if s == "" || !isAlnum(rune(s[0])) {
		return false
	}
	for _, c := range s {
		if !isIDChar(c) && c != '+' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isIDChar(c rune) bool {
	return isAlnum(c) || c == '.' || c == '-'
}

// sanitizeID maps s onto the characters SPDX allows in an element ID
// (letters, digits, '.' and '-'), replacing any other with '-'.
func sanitizeID(s string) string {
	if s == "" {
		return "unknown"
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, c := range s {
		if isIDChar(c) {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}
