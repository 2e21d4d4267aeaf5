package vex

import (
	"time"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// fixedNow is the clock of every test.
var fixedNow = time.Date(2026, 6, 15, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return fixedNow }

// The packages and findings below are real advisories as PyPA's, Go's and
// (derived) Debian's OSV data, NVD and CISA KEV publish them; EPSS scores are
// placeholders, not FIRST's figures.

func saltPkg() inventory.Package {
	return inventory.Package{
		Name: "salt", Version: "3000.1", Type: "pypi", Ecosystem: "PyPI",
		PURL:      "pkg:pypi/salt@3000.1",
		Locations: []string{"/usr/lib/python3/dist-packages/salt-3000.1.dist-info/METADATA"},
		Extractor: "python/wheelegg",
	}
}

func libssl3Pkg() inventory.Package {
	return inventory.Package{
		Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: "deb", Ecosystem: "Debian:12",
		PURL:       "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
		SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2", Arch: "amd64",
		Locations: []string{"/var/lib/dpkg/status"}, Extractor: "os/dpkg",
	}
}

func stdlibPkg() inventory.Package {
	return inventory.Package{
		Name: "stdlib", Version: "1.22.1", Type: "golang", Ecosystem: "Go",
		PURL: "pkg:golang/stdlib@1.22.1", Locations: []string{"/usr/local/bin/app"},
		Extractor: "go/binary",
	}
}

// saltAuthBypass is PYSEC-2020-102 (CVE-2020-11651) in salt 3000.1.
func saltAuthBypass() vulnmatch.Finding {
	return vulnmatch.Finding{
		ID: "PYSEC-2020-102", Aliases: []string{"CVE-2020-11651"}, CVE: "CVE-2020-11651",
		Package: saltPkg(), Ecosystem: "PyPI", MatchedName: "salt",
		InstalledVersion: "3000.1", FixedVersions: []string{"3000.2"},
		Severity: "CRITICAL",
		CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
			BaseScore: 9.8, Severity: "CRITICAL", Source: "nvd@nist.gov"},
		KEV: &vulndb.KEV{CVE: "CVE-2020-11651", VendorProject: "SaltStack", Product: "Salt",
			Name: "SaltStack Salt Authentication Bypass Vulnerability", DateAdded: "2021-11-03", DueDate: "2022-05-03"},
		EPSS: &vulndb.EPSS{CVE: "CVE-2020-11651", Score: 0.9, Percentile: 0.99},
	}
}

// saltTraversal is PYSEC-2020-103 (CVE-2020-11652) in salt 3000.1.
func saltTraversal() vulnmatch.Finding {
	return vulnmatch.Finding{
		ID: "PYSEC-2020-103", Aliases: []string{"CVE-2020-11652"}, CVE: "CVE-2020-11652",
		Package: saltPkg(), Ecosystem: "PyPI", MatchedName: "salt",
		InstalledVersion: "3000.1", FixedVersions: []string{"3000.2"},
		Severity: "MEDIUM",
		CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
			BaseScore: 6.5, Severity: "MEDIUM", Source: "nvd@nist.gov"},
		KEV: &vulndb.KEV{CVE: "CVE-2020-11652", VendorProject: "SaltStack", Product: "Salt",
			Name: "SaltStack Salt Path Traversal Vulnerability", DateAdded: "2021-11-03", DueDate: "2022-05-03"},
		EPSS: &vulndb.EPSS{CVE: "CVE-2020-11652", Score: 0.4, Percentile: 0.97},
	}
}

// continuationFlood is GO-2024-2687 (CVE-2023-45288) in Go 1.22.1's
// standard library. The test data has no CVSS for it.
func continuationFlood() vulnmatch.Finding {
	return vulnmatch.Finding{
		ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"}, CVE: "CVE-2023-45288",
		Summary: "HTTP/2 CONTINUATION flood in net/http",
		Package: stdlibPkg(), Ecosystem: "Go", MatchedName: "stdlib",
		InstalledVersion: "1.22.1", FixedVersions: []string{"1.22.2"},
		Severity: "UNKNOWN",
	}
}

// opensslNullDeref is DEBIAN-CVE-2024-0727-openssl in libssl3, matched
// through its source package.
func opensslNullDeref() vulnmatch.Finding {
	return vulnmatch.Finding{
		ID: "DEBIAN-CVE-2024-0727-openssl", Aliases: []string{"CVE-2024-0727"}, CVE: "CVE-2024-0727",
		Summary: "CVE-2024-0727 fixed in openssl 3.0.13-1~deb12u1",
		Package: libssl3Pkg(), Ecosystem: "Debian:12", MatchedName: "openssl",
		InstalledVersion: "3.0.11-1~deb12u2", FixedVersions: []string{"3.0.13-1~deb12u1"},
		Severity: "UNKNOWN",
	}
}

// opensslUnfixed is DEBIAN-CVE-2024-13176-openssl as it stood before
// Debian shipped the fix: no fixed version.
func opensslUnfixed() vulnmatch.Finding {
	return vulnmatch.Finding{
		ID: "DEBIAN-CVE-2024-13176-openssl", Aliases: []string{"CVE-2024-13176"}, CVE: "CVE-2024-13176",
		Package: libssl3Pkg(), Ecosystem: "Debian:12", MatchedName: "openssl",
		InstalledVersion: "3.0.11-1~deb12u2",
		Severity:         "UNKNOWN",
	}
}

// findingsAll returns every test finding, in risk order.
func findingsAll() []vulnmatch.Finding {
	return []vulnmatch.Finding{saltAuthBypass(), saltTraversal(), continuationFlood(), opensslNullDeref(), opensslUnfixed()}
}

func ids(fs []vulnmatch.Finding) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}
