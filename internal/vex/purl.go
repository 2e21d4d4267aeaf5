package vex

import (
	packageurl "github.com/package-url/packageurl-go"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// osPackageTypes are the purl types whose packages are built from a source
// package that advisories and VEX documents name.
var osPackageTypes = map[string]bool{"deb": true, "rpm": true, "apk": true}

// parsedPURL is what purl matching compares, in the purl spec's normal
// form; ok is false when the string is not a valid purl.
type parsedPURL struct {
	ok                        bool
	typ, namespace, name, ver string
}

func parsePURL(s string) parsedPURL {
	u, err := packageurl.FromString(s)
	if err != nil {
		return parsedPURL{}
	}
	return parsedPURL{ok: true, typ: u.Type, namespace: u.Namespace, name: u.Name, ver: u.Version}
}

// purlCache remembers parsed purls. A nil cache parses every time.
type purlCache map[string]parsedPURL

func (c purlCache) parse(s string) parsedPURL {
	if c == nil {
		return parsePURL(s)
	}
	p, ok := c[s]
	if !ok {
		p = parsePURL(s)
		c[s] = p
	}
	return p
}

// matches reports whether product, a purl from a VEX statement or an ignore
// entry, identifies the package p. Type, namespace and name must be equal
// (after the purl spec's normalisation); qualifiers and subpath are
// ignored; the version must be equal when product has one. For OS packages
// a product naming the source package (pkg:deb/debian/openssl@3.0.11-1~deb12u2)
// matches its binary packages (libssl3), comparing the source version.
// A product that is not a purl matches only the package's purl, exactly.
func (c purlCache) matches(product string, p *inventory.Package) bool {
	pkgPURL := p.PackageURL()
	if product == pkgPURL {
		return true
	}
	want := c.parse(product)
	if !want.ok {
		return false
	}
	got := c.parse(pkgPURL)
	if !got.ok || want.typ != got.typ || want.namespace != got.namespace {
		return false
	}
	if want.name == got.name {
		return want.ver == "" || want.ver == got.ver
	}
	if osPackageTypes[got.typ] && p.SourceName != "" && normalName(got.typ, p.SourceName) == want.name {
		src := p.SourceVersion
		if src == "" {
			src = p.Version
		}
		return want.ver == "" || want.ver == src
	}
	return false
}

// normalName normalises a package name the way packageurl.FromString does
// for typ.
func normalName(typ, name string) string {
	u := packageurl.PackageURL{Type: typ, Name: name}
	if err := u.Normalize(); err != nil {
		return name
	}
	return u.Name
}
