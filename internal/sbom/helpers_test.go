package sbom

import (
	"fmt"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// fixedTime is the clock every test encodes with.
var fixedTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func testOptions() Options {
	return Options{ToolName: "vigil", ToolVersion: "1.2.3", Now: func() time.Time { return fixedTime }}
}

// The layers of the test image.
func testLayers() []inventory.Layer {
	return []inventory.Layer{
		{
			Index:     0,
			Digest:    "sha256:2d6c83b1a2e8f7f1fd2e0e67b2b4e23a1f0d7ad1f7c4a3a2c7e5bb6f0e3f9a11",
			DiffID:    "sha256:8b296f48696072b0ad0bc3a8c9e14f3ba9e06c6a3e9c9ee33a52df3c0a0c7e01",
			CreatedBy: "/bin/sh -c #(nop) ADD file:6c0b1a in / ",
			Size:      29150000,
		},
		{
			Index:     1,
			Digest:    "sha256:4f4fb700ef54461cfa02571ae0db9a0dc1e0cdb5577484a6d75e68dc38e8acc1",
			DiffID:    "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef",
			CreatedBy: "RUN /bin/sh -c apt-get update && apt-get install -y libssl3 # buildkit",
			Size:      4200000,
		},
		{
			Index:     2,
			Digest:    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
			DiffID:    "sha256:0b7d4c1e7e1c1e9c0d0b4a4f0f5d3a6e2b8a7c3d9e1f2a3b4c5d6e7f8a9b0c1d",
			CreatedBy: "COPY /out/app /usr/local/bin/app # buildkit",
			Size:      12000000,
		},
	}
}

// testReport is a realistic inventory of a Debian-based image holding a Go
// binary, a Node.js app and a Python library. Its packages are sorted the
// way inventory sorts them.
func testReport() *inventory.Report {
	layers := testLayers()
	base, apt, app := &layers[0], &layers[1], &layers[2]
	return &inventory.Report{
		Target: inventory.Target{Kind: "docker-archive", Name: "testdata/app.tar"},
		OS: &inventory.OS{
			ID: "debian", VersionID: "12", Codename: "bookworm",
			PrettyName: "Debian GNU/Linux 12 (bookworm)",
		},
		Image: &inventory.Image{
			Digest:       "sha256:9b2a5f0e4d1c3b7a8e6f5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
			ConfigDigest: "sha256:1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b",
			RepoTags:     []string{"example.com/team/app:1.4.0"},
			OS:           "linux",
			Architecture: "amd64",
			Created:      time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC),
			User:         "app",
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NODE_ENV=production"},
			Entrypoint:   []string{"/usr/local/bin/app", "--config", "/etc/app/config.yaml"},
			Cmd:          []string{"serve"},
			WorkingDir:   "/srv",
			ExposedPorts: []string{"8080/tcp", "9090/tcp"},
			Labels: map[string]string{
				"org.opencontainers.image.source":  "https://example.com/team/app",
				"org.opencontainers.image.version": "1.4.0",
			},
			Layers: layers,
		},
		Packages: []inventory.Package{
			{
				Name: "serde", Version: "1.0.197", Type: "cargo", Ecosystem: "crates.io",
				PURL:      "pkg:cargo/serde@1.0.197",
				Licenses:  []string{"MIT OR Apache-2.0"},
				Locations: []string{"/usr/local/bin/indexer"},
				Layer:     app, Extractor: "rust/cargoauditable",
			},
			{
				Name: "bash", Version: "5.2.15-2+b7", Type: "deb", Ecosystem: "Debian:12",
				PURL:       "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
				SourceName: "bash", SourceVersion: "5.2.15-2",
				Arch: "amd64", Licenses: []string{"GPL-3.0-or-later"},
				Locations: []string{"/var/lib/dpkg/status"},
				Layer:     base, Extractor: "os/dpkg",
			},
			{
				Name: "libssl3", Version: "3.0.11-1~deb12u2", Type: "deb", Ecosystem: "Debian:12",
				PURL:       "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
				SourceName: "openssl", SourceVersion: "3.0.11-1~deb12u2",
				Arch: "amd64", Licenses: []string{"Apache-2.0"},
				Locations: []string{"/var/lib/dpkg/status"},
				Layer:     apt, Extractor: "os/dpkg",
			},
			{
				// No purl from the extractor: the encoders must build one.
				Name: "rack", Version: "3.0.8", Type: "gem", Ecosystem: "RubyGems",
				Licenses:  []string{"MIT", "BSD-2-Clause"},
				Locations: []string{"/usr/lib/ruby/gems/3.1.0/specifications/rack-3.0.8.gemspec"},
				Layer:     apt, Extractor: "ruby/gemspec",
			},
			{
				Name: "github.com/google/uuid", Version: "v1.6.0", Type: "golang", Ecosystem: "Go",
				PURL:      "pkg:golang/github.com/google/uuid@v1.6.0",
				Locations: []string{"/usr/local/bin/app"},
				Layer:     app, Extractor: "go/binary",
			},
			{
				Name: "stdlib", Version: "1.22.1", Type: "golang", Ecosystem: "Go",
				PURL:      "pkg:golang/stdlib@1.22.1",
				Locations: []string{"/usr/local/bin/app"},
				Layer:     app, Extractor: "go/binary",
			},
			{
				Name: "@babel/core", Version: "7.24.0", Type: "npm", Ecosystem: "npm",
				PURL:      "pkg:npm/%40babel/core@7.24.0",
				Licenses:  []string{"MIT"},
				Locations: []string{"/srv/node_modules/@babel/core/package.json"},
				Layer:     app, Extractor: "javascript/packagejson",
			},
			// The same package twice, in two places.
			{
				Name: "lodash", Version: "4.17.21", Type: "npm", Ecosystem: "npm",
				PURL:      "pkg:npm/lodash@4.17.21",
				Licenses:  []string{"MIT"},
				Locations: []string{"/srv/node_modules/lodash/package.json"},
				Layer:     app, Extractor: "javascript/packagejson",
			},
			{
				Name: "lodash", Version: "4.17.21", Type: "npm", Ecosystem: "npm",
				PURL:      "pkg:npm/lodash@4.17.21",
				Licenses:  []string{"MIT"},
				Locations: []string{"/srv/tools/node_modules/lodash/package.json", "/srv/tools/package-lock.json"},
				Layer:     app, Extractor: "javascript/packagejson",
			},
			{
				Name: "requests", Version: "2.31.0", Type: "pypi", Ecosystem: "PyPI",
				PURL:      "pkg:pypi/requests@2.31.0",
				Licenses:  []string{"Apache 2.0"}, // not an SPDX identifier
				Locations: []string{"/usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"},
				Layer:     apt, Extractor: "python/wheelegg",
			},
		},
		Warnings: []inventory.Warning{{Path: "/dev/null", Reason: "device file"}},
		Errors: []inventory.ScanError{
			{Path: "/var/lib/rpm/Packages", Error: "unexpected EOF"},
			{Path: "/srv/broken/package.json", Error: "invalid character '}'"},
		},
		Partial: true,
		Stats:   inventory.Stats{Layers: 3, FilesSeen: 12345, BytesRead: 987654, FilesRetained: 42, Duration: 1500 * time.Millisecond},
	}
}

// dirReport is the inventory of a directory: no image, no OS, no layers.
func dirReport() *inventory.Report {
	return &inventory.Report{
		Target: inventory.Target{Kind: "dir", Name: "/home/dev/project"},
		Packages: []inventory.Package{{
			Name: "left-pad", Version: "1.3.0", Type: "npm", Ecosystem: "npm",
			PURL: "pkg:npm/left-pad@1.3.0", Licenses: []string{"WTFPL"},
			Locations: []string{"/package-lock.json"}, Extractor: "javascript/packagelockjson",
		}},
	}
}

// bigReport has n packages of several types, sorted.
func bigReport(n int) *inventory.Report {
	r := testReport()
	layers := testLayers()
	pkgs := make([]inventory.Package, 0, n)
	types := []string{"deb", "golang", "npm", "pypi"}
	for i := range n {
		t := types[i*len(types)/n]
		name := fmt.Sprintf("pkg-%04d", i)
		pkgs = append(pkgs, inventory.Package{
			Name: name, Version: "1.0." + fmt.Sprint(i), Type: t, Ecosystem: t,
			PURL:       fmt.Sprintf("pkg:%s/%s@1.0.%d", t, name, i),
			SourceName: name + "-src", Licenses: []string{"MIT"},
			Locations: []string{"/usr/lib/" + name, "/usr/share/doc/" + name},
			Layer:     &layers[i%len(layers)], Extractor: "test/" + t,
		})
	}
	r.Packages = pkgs
	return r
}

const (
	cycloneDXSchemaURL = vigiltest.CycloneDXSchema
	spdxSchemaURL      = vigiltest.SPDXSchema
)

func compileSchema(t testing.TB, url string) *jsonschema.Schema {
	return vigiltest.CompileSchema(t, url)
}

func parseJSON(t testing.TB, b []byte) any { return vigiltest.ParseJSON(t, b) }

// field walks an object path, failing the test when a step is missing.
func field(t testing.TB, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %q: not an object: %T", k, v)
			}
			if v, ok = m[k]; !ok {
				t.Fatalf("no field %q", k)
			}
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at [%d]: not an array of that length: %T", k, v)
			}
			v = a[k]
		}
	}
	return v
}
