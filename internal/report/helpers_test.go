package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func testLayers() []inventory.Layer {
	return []inventory.Layer{
		{
			Index:     0,
			Digest:    "sha256:2d6c83b1a2e8f7f1fd2e0e67b2b4e23a1f0d7ad1f7c4a3a2c7e5bb6f0e3f9a11",
			DiffID:    "sha256:8b296f48696072b0ad0bc3a8c9e14f3ba9e06c6a3e9c9ee33a52df3c0a0c7e01",
			CreatedBy: "/bin/sh -c #(nop) ADD file:6c0b1a8d3e2f in / ",
		},
		{
			Index:     1,
			Digest:    "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1",
			DiffID:    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
			CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y libssl3 python3-pip && pip install salt==3000.1 pyspark==3.2.1 # buildkit",
		},
		{
			Index:     2,
			Digest:    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
			DiffID:    "sha256:0b7d4c1e7e1c1e9c0d0b4a4f0f5d3a6e2b8a7c3d9e1f2a3b4c5d6e7f8a9b0c1d",
			CreatedBy: "COPY /out/app /usr/local/bin/app # buildkit",
		},
	}
}

// testInventory is an image holding Debian packages, two Python libraries
// and a Go binary.
func testInventory() *inventory.Report {
	layers := testLayers()
	base, pip, app := &layers[0], &layers[1], &layers[2]
	return &inventory.Report{
		Target: inventory.Target{Kind: "registry", Name: "registry.example.com/team/app:1.4.0"},
		OS:     &inventory.OS{ID: "debian", VersionID: "12", Codename: "bookworm", PrettyName: "Debian GNU/Linux 12 (bookworm)"},
		Image: &inventory.Image{
			Digest:       "sha256:9b2a5f0e4d1c3b7a8e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
			RepoTags:     []string{"registry.example.com/team/app:1.4.0"},
			OS:           "linux",
			Architecture: "amd64",
			Layers:       layers,
		},
		Packages: []inventory.Package{
			{
				Name: "bash", Version: "5.2.15-2+b7", Type: "deb", Ecosystem: "Debian:12",
				PURL:       "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
				SourceName: "bash", SourceVersion: "5.2.15-2", Arch: "amd64",
				Locations: []string{"/var/lib/dpkg/status"}, Layer: base, Extractor: "os/dpkg",
			},
			{
				Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: "deb", Ecosystem: "Debian:12",
				PURL:       "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
				SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2", Arch: "amd64",
				Locations: []string{"/var/lib/dpkg/status"}, Layer: pip, Extractor: "os/dpkg",
			},
			{
				Name: "stdlib", Version: "1.22.1", Type: "golang", Ecosystem: "Go",
				PURL: "pkg:golang/stdlib@1.22.1", Locations: []string{"/usr/local/bin/app"},
				Layer: app, Extractor: "go/binary",
			},
			{
				Name: "pyspark", Version: "3.2.1", Type: "pypi", Ecosystem: "PyPI",
				PURL:      "pkg:pypi/pyspark@3.2.1",
				Locations: []string{"/usr/local/lib/python3.11/dist-packages/pyspark-3.2.1.dist-info/METADATA"},
				Layer:     pip, Extractor: "python/wheelegg",
			},
			{
				Name: "salt", Version: "3000.1", Type: "pypi", Ecosystem: "PyPI",
				PURL:      "pkg:pypi/salt@3000.1",
				Locations: []string{"/usr/local/lib/python3.11/dist-packages/salt-3000.1.dist-info/METADATA"},
				Layer:     pip, Extractor: "python/wheelegg",
			},
		},
		Errors:  []inventory.ScanError{{Path: "/srv/broken/package.json", Error: "invalid character '}'"}},
		Partial: true,
	}
}

func pkgNamed(r *inventory.Report, name string) inventory.Package {
	for _, p := range r.Packages {
		if p.Name == name {
			return p
		}
	}
	panic("no package " + name)
}

// testFindings are real advisories (PyPA's, Go's and derived Debian OSV
// data, NVD CVSS, CISA KEV) for testInventory's packages, sorted by risk.
// The EPSS figures are placeholders, not FIRST's.
func testFindings(r *inventory.Report) []vulnmatch.Finding {
	salt, pyspark := pkgNamed(r, "salt"), pkgNamed(r, "pyspark")
	return []vulnmatch.Finding{
		{
			ID: "PYSEC-2020-102", Aliases: []string{"CVE-2020-11651"}, CVE: "CVE-2020-11651",
			Package: salt, Ecosystem: "PyPI", MatchedName: "salt",
			InstalledVersion: "3000.1", FixedVersions: []string{"3000.2"}, Severity: "CRITICAL",
			CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
				BaseScore: 9.8, Severity: "CRITICAL", Source: "nvd@nist.gov"},
			KEV: &vulndb.KEV{CVE: "CVE-2020-11651", VendorProject: "SaltStack", Product: "Salt",
				Name: "SaltStack Salt Authentication Bypass Vulnerability", DateAdded: "2021-11-03", DueDate: "2022-05-03"},
			EPSS: &vulndb.EPSS{CVE: "CVE-2020-11651", Score: 0.9, Percentile: 0.99},
		},
		{
			ID: "PYSEC-2022-236", Aliases: []string{"CVE-2022-33891", "GHSA-4x9r-j582-cgr8"}, CVE: "CVE-2022-33891",
			Package: pyspark, Ecosystem: "PyPI", MatchedName: "pyspark",
			InstalledVersion: "3.2.1", FixedVersions: []string{"3.2.2"}, Severity: "HIGH",
			CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H",
				BaseScore: 8.8, Severity: "HIGH", Source: "nvd@nist.gov"},
			KEV: &vulndb.KEV{CVE: "CVE-2022-33891", VendorProject: "Apache", Product: "Spark",
				Name: "Apache Spark Command Injection Vulnerability", DateAdded: "2023-03-07", DueDate: "2023-03-28"},
			EPSS: &vulndb.EPSS{CVE: "CVE-2022-33891", Score: 0.00042, Percentile: 0.12},
		},
		{
			ID: "PYSEC-2020-103", Aliases: []string{"CVE-2020-11652"}, CVE: "CVE-2020-11652",
			Package: salt, Ecosystem: "PyPI", MatchedName: "salt",
			InstalledVersion: "3000.1", FixedVersions: []string{"3000.2"}, Severity: "MEDIUM",
			CVSS: &vulndb.CVSS{Version: "3.1", Vector: "CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
				BaseScore: 6.5, Severity: "MEDIUM", Source: "nvd@nist.gov"},
			KEV: &vulndb.KEV{CVE: "CVE-2020-11652", VendorProject: "SaltStack", Product: "Salt",
				Name: "SaltStack Salt Path Traversal Vulnerability", DateAdded: "2021-11-03", DueDate: "2022-05-03"},
		},
		{
			ID: "GO-2024-2687", Aliases: []string{"CVE-2023-45288", "GHSA-4v7x-pqxf-cx7m"}, CVE: "CVE-2023-45288",
			Summary: "HTTP/2 CONTINUATION flood in net/http",
			Package: pkgNamed(r, "stdlib"), Ecosystem: "Go", MatchedName: "stdlib",
			InstalledVersion: "1.22.1", FixedVersions: []string{"1.22.2"}, Severity: "UNKNOWN",
			References: []string{"https://go.dev/issue/65051", "https://go.dev/cl/576155"},
		},
		{
			ID: "DEBIAN-CVE-2024-0727-openssl", Aliases: []string{"CVE-2024-0727"}, CVE: "CVE-2024-0727",
			Summary: "CVE-2024-0727 fixed in openssl 3.0.13-1~deb12u1",
			Package: pkgNamed(r, "libssl3"), Ecosystem: "Debian:12", MatchedName: "openssl",
			InstalledVersion: "3.0.11-1~deb12u2", FixedVersions: []string{"3.0.13-1~deb12u1"}, Severity: "UNKNOWN",
		},
	}
}

// testScan is a scan of testInventory with one finding suppressed by VEX.
func testScan() *Scan {
	inv := testInventory()
	suppressed := vulnmatch.Finding{
		ID: "DEBIAN-CVE-2024-13176-openssl", Aliases: []string{"CVE-2024-13176"}, CVE: "CVE-2024-13176",
		Package: pkgNamed(inv, "libssl3"), Ecosystem: "Debian:12", MatchedName: "openssl",
		InstalledVersion: "3.0.11-1~deb12u2", FixedVersions: []string{"3.0.16-1~deb12u1"}, Severity: "UNKNOWN",
	}
	return &Scan{
		Inventory: inv,
		Findings:  testFindings(inv),
		Suppressed: []vex.Decision{{Finding: suppressed, Suppressed: true,
			Reason: "not_affected per vex.json: vulnerable_code_not_in_execute_path"}},
		DB: DBInfo{
			Built: time.Date(2026, 3, 14, 6, 0, 0, 0, time.UTC),
			Sources: []vulndb.SourceStatus{
				{Name: "osv:PyPI", Records: 2661, UpstreamDate: time.Date(2024, 10, 10, 0, 0, 0, 0, time.UTC),
					FetchedAt: time.Date(2026, 3, 14, 5, 50, 0, 0, time.UTC), Origin: "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip",
					ETag: `"abc"`},
				{Name: "kev", Records: 1404, FetchedAt: time.Date(2026, 3, 14, 5, 51, 0, 0, time.UTC),
					Origin: "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json"},
			},
		},
		Tool: Tool{Name: "vigil", Version: "1.2.3", InformationURI: "https://github.com/vigil-cwpp/vigil"},
	}
}

// failWriter fails every write.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

func render(t *testing.T, write func(*bytes.Buffer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
