// Package vulndb is Vigil's local vulnerability database: OSV advisories
// (language ecosystems and distro releases), Alpine secdb fixes, the CISA
// KEV catalog, FIRST EPSS scores and NVD CVSS metrics, kept in one SQLite
// file (modernc.org/sqlite, pure Go).
//
// Open returns a read-only handle for matching. Import builds or extends the
// database from local files (OSV bulk zips and directories, KEV JSON, EPSS
// CSV, NVD API 2.0 JSON, Alpine secdb JSON, or a file written by Export);
// Update fetches the same feeds from upstream with conditional requests.
// Every write copies the current database to a temporary file beside it,
// applies the change there and renames it into place, so a failed, partial
// or cancelled build leaves the previous file byte-for-byte untouched, and
// readers that have it open keep reading the old version.
//
// Each source is stored under a name (SourceStatus.Name): "osv:<ecosystem>"
// for a bulk zip (the ecosystem Update fetched, or on import the one every
// record names, "osv:Debian" for a zip of several Debian releases;
// "osv-zip:<path>" when there is none), "osv-dir:<path>" and
// "osv-file:<path>" for OSV JSON files, "alpine-secdb:<release>/<repo>" for
// a secdb file, "kev", "epss" and "nvd". Importing or fetching a source
// again replaces its rows (NVD merges per CVE instead). Advisory IDs are
// unique per source; an advisory stored by two sources (a GHSA in two
// ecosystem zips) is returned once, the most recently modified copy.
//
// OSV records are kept whole as far as Advisory reaches: withdrawn ones are
// stored (matching skips them), GIT ranges stay as data.
//
// Alpine secdb is converted to one advisory per (CVE, secdb file), ID
// "ALPINE-<CVE>" ("ALPINE-XSA-284" for an item naming no CVE), with one
// affected entry per package that fixes it there (ecosystem
// "Alpine:<distroversion>", name the origin package, range ECOSYSTEM
// introduced "0" fixed <version>). A secfixes version "0" means "never
// affected in this release" and yields no advisory.
//
// NVD: the first Update without an earlier NVD fetch asks for the CVEs in
// CISA's KEV catalog (hasKev) and for those modified in the last
// UpdateOptions.NVDInitialDays days; later runs ask for what was modified
// since the previous fetch, in windows of at most 120 days. A full NVD
// download is not the default (see docs/decisions/0003-vulndb-store.md).
//
// vulndb stores and returns records: it does not compare versions (that is
// vulnmatch), and it reaches the network only in Update.
package vulndb

import (
	"os"
	"path/filepath"
	"strings"
)

// CurrentSchema is the schema version this package reads and writes. A
// database of another version must be rebuilt with Update or Import.
const CurrentSchema = 1

// NormalizeName returns the name under which a package is stored and looked
// up in ecosystem. PyPI names are normalised as PEP 503 says (lower case,
// each run of "-", "_" and "." becomes "-"); other ecosystems keep the name
// unchanged.
func NormalizeName(ecosystem, name string) string {
	if ecosystem != "PyPI" {
		return name
	}
	var b strings.Builder
	b.Grow(len(name))
	sep := false
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_' || c == '.':
			sep = true
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if sep {
			b.WriteByte('-')
			sep = false
		}
		b.WriteByte(c)
	}
	if sep {
		b.WriteByte('-')
	}
	return b.String()
}

// DefaultPath is where the database lives unless told otherwise: $VIGIL_DB,
// else $XDG_CACHE_HOME/vigil/vulndb.sqlite, else ~/.cache/vigil/vulndb.sqlite.
func DefaultPath() string {
	if p := os.Getenv("VIGIL_DB"); p != "" {
		return p
	}
	// The XDG base directory spec says relative values are to be ignored.
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "vigil", "vulndb.sqlite")
	}
	home, err := os.UserHomeDir()
	if err != nil || home == "" {
		return filepath.Join(os.TempDir(), "vigil", "vulndb.sqlite")
	}
	return filepath.Join(home, ".cache", "vigil", "vulndb.sqlite")
}
