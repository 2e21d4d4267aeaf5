package vulnmatch

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// Reasons a package is not matched, the keys of Result.Skipped.
const (
	SkipNoEcosystem          = "no ecosystem"
	SkipNoVersion            = "no version"
	SkipUnparsableVersion    = "unparsable version"
	SkipUnsupportedEcosystem = "unsupported ecosystem"
	SkipOwnedByOS            = "owned by an OS package"
)

// osTypes are the purl types of OS package managers.
var osTypes = map[string]bool{"deb": true, "apk": true, "rpm": true, "alpm": true, "ebuild": true}

// distroEcosystems are OSV ecosystems of OS distributions: their
// advisories are scoped to a release by the ecosystem suffix, and the
// version in them is the distro's, with backported fixes.
var distroEcosystems = map[string]bool{
	"AlmaLinux": true, "Alpaquita": true, "Alpine": true, "Azure Linux": true,
	"BellSoft Hardened Containers": true, "Chainguard": true, "CleanStart": true, "Debian": true,
	"Mageia": true, "MinimOS": true, "openEuler": true, "openSUSE": true, "Photon OS": true,
	"Red Hat": true, "Rocky Linux": true, "SUSE": true, "Ubuntu": true, "Wolfi": true,
}

// languageEcosystems maps a purl type to its OSV ecosystem, for packages
// the inventory gave no ecosystem.
var languageEcosystems = map[string]string{
	"golang": "Go", "npm": "npm", "pypi": "PyPI", "maven": "Maven", "cargo": "crates.io",
	"gem": "RubyGems", "composer": "Packagist", "nuget": "NuGet", "hex": "Hex", "pub": "Pub",
	"cran": "CRAN", "hackage": "Hackage",
}

// isOSPackage reports whether p was installed by an OS package manager.
func isOSPackage(p *inventory.Package) bool {
	return osTypes[p.Type] || distroEcosystems[baseEcosystem(p.Ecosystem)]
}

// lookupKey is what the Source is asked for.
type lookupKey struct {
	// ecosystem is the exact distro ecosystem ("Debian:12") or the base
	// language ecosystem ("PyPI", "Maven").
	ecosystem string
	name      string
	distro    bool
}

// target is one package as it is matched under one lookup key. A package
// has one target, or two for a Red Hat RPM (source and binary name).
type target struct {
	pkg     int
	key     lookupKey
	version string
	parsed  semantic.Version
}

// plan turns the inventory into targets, counting what it skips.
func plan(rep *inventory.Report, log *slog.Logger, skipped map[string]int) []target {
	owned := newOwnership(rep.Packages)
	var out []target
	for i := range rep.Packages {
		p := &rep.Packages[i]
		if owned.owns(p) {
			skipped[SkipOwnedByOS]++
			log.Debug("skipping package owned by an OS package", "package", p.Name, "version", p.Version, "location", p.Locations[0])
			continue
		}
		keys, version, reason := lookupsFor(p)
		if reason == "" {
			var err error
			version, err = installedVersion(keys[0].ecosystem, keys[0].name, version)
			if err != nil {
				reason = SkipUnparsableVersion
				log.Debug("skipping package with unparsable version", "package", p.Name, "version", p.Version, "err", err)
			}
		}
		var parsed semantic.Version
		if reason == "" {
			var err error
			parsed, err = cachedParse(keys[0].ecosystem, version)
			switch {
			case errors.Is(err, errUnsupported):
				reason = SkipUnsupportedEcosystem
				log.Debug("skipping package in an unsupported ecosystem", "package", p.Name, "ecosystem", keys[0].ecosystem)
			case err != nil:
				reason = SkipUnparsableVersion
				log.Debug("skipping package with unparsable version", "package", p.Name, "version", version, "err", err)
			}
		}
		if reason != "" {
			skipped[reason]++
			continue
		}
		for _, k := range keys {
			out = append(out, target{pkg: i, key: k, version: version, parsed: parsed})
		}
	}
	return out
}

// lookupsFor returns the lookup keys and version to compare for p, or the
// reason it cannot be matched.
func lookupsFor(p *inventory.Package) ([]lookupKey, string, string) {
	eco := p.Ecosystem
	if isOSPackage(p) {
		if eco == "" {
			return nil, "", SkipNoEcosystem
		}
		name, version := p.Name, p.Version
		var extra []lookupKey
		switch {
		case p.Type == "rpm" || isRPMEcosystem(eco):
			if src := sourceRPMName(p.SourceName); src != "" {
				name = src
			}
			version = rpmVersion(p.Version, p.PURL)
			// Red Hat files advisories under binary and source RPM
			// names; look the binary name up too.
			if baseEcosystem(eco) == "Red Hat" && name != p.Name {
				extra = append(extra, lookupKey{ecosystem: eco, name: p.Name, distro: true})
			}
		default:
			// Debian and Ubuntu: the source package and its version;
			// Alpine and other apk distros: the origin package.
			if p.SourceName != "" {
				name = p.SourceName
			}
			if p.SourceVersion != "" {
				version = p.SourceVersion
			}
		}
		if version == "" {
			return nil, "", SkipNoVersion
		}
		return append([]lookupKey{{ecosystem: eco, name: name, distro: true}}, extra...), version, ""
	}
	if eco == "" {
		eco = languageEcosystems[p.Type]
	}
	if eco == "" {
		return nil, "", SkipNoEcosystem
	}
	if p.Version == "" {
		return nil, "", SkipNoVersion
	}
	base := baseEcosystem(eco)
	return []lookupKey{{ecosystem: base, name: normalizeName(base, p.Name)}}, p.Version, ""
}

func isRPMEcosystem(eco string) bool {
	switch baseEcosystem(eco) {
	case "Red Hat", "AlmaLinux", "Rocky Linux", "openSUSE", "SUSE", "Mageia", "openEuler", "Azure Linux", "Photon OS":
		return true
	}
	return false
}

// sourceRPMName is the name of a source RPM file name:
// "openssl-3.0.7-27.el9.src.rpm" → "openssl". A name without the
// version-release suffix is returned as is.
func sourceRPMName(srpm string) string {
	s := srpm
	for _, suffix := range []string{".src.rpm", ".nosrc.rpm"} {
		s = strings.TrimSuffix(s, suffix)
	}
	if s == srpm {
		return srpm
	}
	// name-version-release: the name may itself contain dashes.
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return s
	}
	j := strings.LastIndexByte(s[:i], '-')
	if j <= 0 {
		return s[:i]
	}
	return s[:j]
}

// rpmVersion prefixes version with the epoch from the package's purl
// ("?epoch=1"), which the inventory version (version-release) leaves out;
// RPM advisories give fixed versions with their epoch.
func rpmVersion(version, purl string) string {
	if strings.Contains(version, ":") {
		return version
	}
	_, query, ok := strings.Cut(purl, "?")
	if !ok {
		return version
	}
	query, _, _ = strings.Cut(query, "#")
	for kv := range strings.SplitSeq(query, "&") {
		if k, v, _ := strings.Cut(kv, "="); k == "epoch" && v != "" && v != "0" {
			return v + ":" + version
		}
	}
	return version
}
