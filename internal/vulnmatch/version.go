package vulnmatch

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"golang.org/x/mod/semver"
)

// errUnsupported marks an ecosystem osv-scalibr's semantic package cannot
// order versions in.
var errUnsupported = errors.New("unsupported ecosystem")

// maxVersionLen bounds the versions parsed. Real ones are far shorter
// (a Go pseudo-version is about 40 bytes); semantic's SemVer-like parser
// is quadratic in the length, and inventory versions come from the
// scanned target.
const maxVersionLen = 256

// parseVersion parses s with the ordering rules of ecosystem, via
// osv-scalibr's semantic package ("Debian:12" → Debian's rules, and so on).
// It never panics: a panic inside the parser, on hostile advisory or
// inventory input, is returned as an error.
func parseVersion(ecosystem, s string) (v semantic.Version, err error) {
	if len(s) > maxVersionLen {
		return nil, fmt.Errorf("version of %d bytes, longer than %d", len(s), maxVersionLen)
	}
	defer func() {
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("parsing version %q: %v", s, r)
		}
	}()
	v, err = semantic.Parse(s, ecosystem)
	if errors.Is(err, semantic.ErrUnsupportedEcosystem) {
		return nil, fmt.Errorf("%w %s", errUnsupported, baseEcosystem(ecosystem))
	}
	if err != nil {
		return nil, err
	}
	return v, nil
}

// compareVersions orders a and b, parsed for the same ecosystem. A
// comparison error (versions of different ecosystems, which matching never
// mixes) counts as equal.
func compareVersions(a, b semantic.Version) (c int) {
	defer func() {
		if recover() != nil {
			c = 0
		}
	}()
	c, err := a.Compare(b)
	if err != nil {
		return 0
	}
	return c
}

// versions holds parsed versions, by base ecosystem (parsing rules do not
// depend on the release) and string, for every call of Match: advisories
// of popular packages and their fixed versions recur from scan to scan.
// Parsed semantic versions are only ever read, so sharing them between
// goroutines is safe. 64k versions take a few tens of MB at most.
var versions = newBoundedCache[versionKey, parsedVersion](1 << 16)

type versionKey struct {
	ecosystem string
	version   string
}

type parsedVersion struct {
	v   semantic.Version
	err error
}

// cachedParse is parseVersion through the versions cache.
func cachedParse(ecosystem, s string) (semantic.Version, error) {
	k := versionKey{baseEcosystem(ecosystem), s}
	if p, ok := versions.get(k); ok {
		return p.v, p.err
	}
	v, err := parseVersion(ecosystem, s)
	versions.put(k, parsedVersion{v, err})
	return v, err
}

// ecosystemParser parses versions of one ecosystem through the cache.
type ecosystemParser string

func parserFor(ecosystem string) ecosystemParser { return ecosystemParser(ecosystem) }

func (e ecosystemParser) parse(s string) (semantic.Version, error) {
	return cachedParse(string(e), s)
}

// installedVersion is the version string of an installed package as it is
// compared with advisories, or an error when it cannot be compared.
//
// semantic's SemVer-like parsers accept any string, so garbage such as a Go
// main module's "(devel)" or an npm "file:../x" would sort as 0.0.0 and
// match every "introduced: 0" range; those are rejected here instead.
func installedVersion(ecosystem, name, version string) (string, error) {
	switch baseEcosystem(ecosystem) {
	case "Go":
		if name == "stdlib" {
			v, ok := goToolchainSemver(version)
			if !ok {
				return "", fmt.Errorf("not a Go toolchain version: %q", version)
			}
			return v, nil
		}
		v := strings.TrimPrefix(version, "v")
		if !semver.IsValid("v" + v) {
			return "", fmt.Errorf("not a Go module version: %q", version)
		}
		return v, nil
	case "npm", "crates.io":
		v := strings.TrimPrefix(version, "v")
		if v == "" || v[0] < '0' || v[0] > '9' {
			return "", fmt.Errorf("not a version: %q", version)
		}
		return v, nil
	}
	if !strings.ContainsAny(version, "0123456789") {
		return "", fmt.Errorf("not a version: %q", version)
	}
	return version, nil
}

// goToolchainRE matches Go toolchain versions as the go command and
// runtime.Version name them, without the "go" prefix: 1.21.5, 1.22rc1,
// 1.9beta2, 1.21 (a release before Go 1.21 named x.y, not x.y.0).
var goToolchainRE = regexp.MustCompile(`^(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:(alpha|beta|rc)(\d+)|-(alpha|beta|rc|pre)\.?(\d+))?$`)

// goToolchainSemver converts a Go toolchain version to the SemVer the Go
// vulnerability database uses for "stdlib" (as x/vuln's GoTagToSemver,
// without the "v"): "1.22rc1" → "1.22.0-rc.1", "1.20" → "1.20.0",
// "go1.21.5" → "1.21.5". Build suffixes ("1.22.1 X:boringcrypto",
// "1.21.0-bigcorp", "1.22.1+auto") are dropped.
func goToolchainSemver(v string) (string, bool) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "go")
	if f := strings.Fields(v); len(f) > 0 {
		v = f[0]
	}
	v, _, _ = strings.Cut(v, "+")
	m := goToolchainRE.FindStringSubmatch(v)
	if m == nil {
		// A vendor suffix after a full release version: 1.21.0-bigcorp.
		if i := strings.IndexByte(v, '-'); i > 0 {
			m = goToolchainRE.FindStringSubmatch(v[:i])
		}
		if m == nil {
			return "", false
		}
	}
	major, minor, patch := m[1], m[2], m[3]
	if minor == "" {
		minor = "0"
	}
	if patch == "" {
		patch = "0"
	}
	out := major + "." + minor + "." + patch
	switch {
	case m[4] != "":
		out += "-" + m[4] + "." + m[5]
	case m[6] != "":
		out += "-" + m[6] + "." + m[7]
	}
	return out, true
}
