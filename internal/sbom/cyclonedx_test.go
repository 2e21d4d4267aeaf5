package sbom

import (
	"bytes"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

func encodeCycloneDX(t testing.TB, r *inventory.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeCycloneDX(&buf, r, testOptions()); err != nil {
		t.Fatalf("EncodeCycloneDX: %v", err)
	}
	return buf.Bytes()
}

func decodeCycloneDX(t testing.TB, b []byte) *cdx.BOM {
	t.Helper()
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(b), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("decode cyclonedx: %v", err)
	}
	return &bom
}

func TestCycloneDXSchema(t *testing.T) {
	schema := compileSchema(t, cycloneDXSchemaURL)
	for name, r := range map[string]*inventory.Report{
		"image":     testReport(),
		"directory": dirReport(),
		"empty":     {Target: inventory.Target{Kind: "dir", Name: "/empty"}},
	} {
		t.Run(name, func(t *testing.T) {
			out := encodeCycloneDX(t, r)
			if err := schema.Validate(parseJSON(t, out)); err != nil {
				t.Fatalf("output does not validate against CycloneDX 1.6: %v\n%s", err, out)
			}
		})
	}
}

// TestCycloneDXSchemaRejects proves the validator checks what it should:
// each mutation of a valid document must fail.
func TestCycloneDXSchemaRejects(t *testing.T) {
	schema := compileSchema(t, cycloneDXSchemaURL)
	out := encodeCycloneDX(t, testReport())
	mutations := map[string]func(doc map[string]any){
		"no specVersion": func(doc map[string]any) { delete(doc, "specVersion") },
		"bogus component type": func(doc map[string]any) {
			doc["components"].([]any)[1].(map[string]any)["type"] = "bogus"
		},
		"serial number not a uuid urn": func(doc map[string]any) { doc["serialNumber"] = "urn:uuid:nope" },
		// Needs format assertions: the schema says only "format": "date-time".
		"timestamp not a date-time": func(doc map[string]any) {
			doc["metadata"].(map[string]any)["timestamp"] = "yesterday"
		},
		"unknown component field": func(doc map[string]any) {
			doc["components"].([]any)[1].(map[string]any)["colour"] = "blue"
		},
		"license expression mixed with named license": func(doc map[string]any) {
			c := doc["components"].([]any)[1].(map[string]any)
			c["licenses"] = []any{
				map[string]any{"expression": "MIT OR Apache-2.0"},
				map[string]any{"license": map[string]any{"name": "MIT"}},
			}
		},
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			doc := parseJSON(t, out).(map[string]any)
			if err := schema.Validate(doc); err != nil {
				t.Fatalf("unmutated document is invalid: %v", err)
			}
			mutate(doc)
			if err := schema.Validate(doc); err == nil {
				t.Fatal("mutated document validated; the schema check is not checking")
			}
		})
	}
}

func TestCycloneDXContent(t *testing.T) {
	r := testReport()
	out := encodeCycloneDX(t, r)
	bom := decodeCycloneDX(t, out)

	if bom.SpecVersion != cdx.SpecVersion1_6 {
		t.Errorf("specVersion = %v, want 1.6", bom.SpecVersion)
	}
	if !regexp.MustCompile(`^urn:uuid:[0-9a-f-]{36}$`).MatchString(bom.SerialNumber) {
		t.Errorf("serialNumber = %q, want a uuid urn", bom.SerialNumber)
	}
	if got, want := bom.Metadata.Timestamp, "2026-03-14T15:09:26Z"; got != want {
		t.Errorf("timestamp = %q, want %q", got, want)
	}
	tools := *bom.Metadata.Tools.Components
	if len(tools) != 1 || tools[0].Name != "vigil" || tools[0].Version != "1.2.3" {
		t.Errorf("tools = %+v, want vigil 1.2.3", tools)
	}

	target := bom.Metadata.Component
	if target.Type != cdx.ComponentTypeContainer || target.Name != r.Target.Name || target.Version != r.Image.Digest {
		t.Errorf("metadata.component = %s %q %q, want container %q %q", target.Type, target.Name, target.Version, r.Target.Name, r.Image.Digest)
	}
	targetProps := properties(target.Properties)
	wantTarget := map[string][]string{
		"vigil:image:digest":                                 {r.Image.Digest},
		"vigil:image:config-digest":                          {r.Image.ConfigDigest},
		"vigil:image:os":                                     {"linux"},
		"vigil:image:architecture":                           {"amd64"},
		"vigil:image:user":                                   {"app"},
		"vigil:image:entrypoint":                             {`["/usr/local/bin/app","--config","/etc/app/config.yaml"]`},
		"vigil:image:env":                                    r.Image.Env,
		"vigil:image:exposed-port":                           {"8080/tcp", "9090/tcp"},
		"vigil:image:label:org.opencontainers.image.source":  {"https://example.com/team/app"},
		"vigil:image:label:org.opencontainers.image.version": {"1.4.0"},
		"vigil:image:layer": {
			"0 " + r.Image.Layers[0].Digest + " " + r.Image.Layers[0].DiffID + " " + r.Image.Layers[0].CreatedBy,
			"1 " + r.Image.Layers[1].Digest + " " + r.Image.Layers[1].DiffID + " " + r.Image.Layers[1].CreatedBy,
			"2 " + r.Image.Layers[2].Digest + " " + r.Image.Layers[2].DiffID + " " + r.Image.Layers[2].CreatedBy,
		},
	}
	for name, want := range wantTarget {
		if diff := cmp.Diff(want, targetProps[name]); diff != "" {
			t.Errorf("target property %s (-want +got):\n%s", name, diff)
		}
	}

	comps := *bom.Components
	var pkgs []cdx.Component
	var osComp *cdx.Component
	refs := map[string]bool{target.BOMRef: true}
	for i, c := range comps {
		if c.BOMRef == "" || refs[c.BOMRef] {
			t.Errorf("component %d (%s): bom-ref %q empty or not unique", i, c.Name, c.BOMRef)
		}
		refs[c.BOMRef] = true
		if c.Type == cdx.ComponentTypeOS {
			osComp = &comps[i]
			continue
		}
		pkgs = append(pkgs, c)
	}
	if osComp == nil || osComp.Name != "debian" || osComp.Version != "12" || osComp.Description != r.OS.PrettyName {
		t.Errorf("operating-system component = %+v, want debian 12 %q", osComp, r.OS.PrettyName)
	}
	if len(pkgs) != len(r.Packages) {
		t.Fatalf("%d package components, want %d", len(pkgs), len(r.Packages))
	}
	for i, c := range pkgs {
		p := r.Packages[i]
		if c.PackageURL == "" {
			t.Errorf("component %s has no purl", c.Name)
		}
		if c.Name != p.Name || c.Version != p.Version || c.Type != cdx.ComponentTypeLibrary {
			t.Errorf("component %d = %s %s@%s, want library %s@%s (same order as the report)", i, c.Type, c.Name, c.Version, p.Name, p.Version)
		}
		if p.PURL != "" && c.PackageURL != p.PURL {
			t.Errorf("component %s purl = %q, want %q", c.Name, c.PackageURL, p.PURL)
		}
		var occ []string
		if c.Evidence != nil && c.Evidence.Occurrences != nil {
			for _, o := range *c.Evidence.Occurrences {
				occ = append(occ, o.Location)
			}
		}
		if diff := cmp.Diff(p.Locations, occ); diff != "" {
			t.Errorf("component %s evidence.occurrences (-want +got):\n%s", c.Name, diff)
		}
		if diff := cmp.Diff(p.Locations, properties(c.Properties)["vigil:location"]); diff != "" {
			t.Errorf("component %s vigil:location (-want +got):\n%s", c.Name, diff)
		}
	}

	// The purl-less gem gets one built from its type, name and version.
	if got := byName(t, pkgs, "rack").PackageURL; got != "pkg:gem/rack@3.0.8" {
		t.Errorf("rack purl = %q, want pkg:gem/rack@3.0.8", got)
	}

	// The deb with a source package and a layer carries all its properties.
	libssl := byName(t, pkgs, "libssl3")
	wantProps := []cdx.Property{
		{Name: "vigil:package:type", Value: "deb"},
		{Name: "vigil:package:ecosystem", Value: "Debian:12"},
		{Name: "vigil:package:extractor", Value: "os/dpkg"},
		{Name: "vigil:package:source-name", Value: "openssl"},
		{Name: "vigil:package:source-version", Value: "3.0.11-1~deb12u2"},
		{Name: "vigil:package:arch", Value: "amd64"},
		{Name: "vigil:location", Value: "/var/lib/dpkg/status"},
		{Name: "vigil:layer:digest", Value: r.Image.Layers[1].Digest},
		{Name: "vigil:layer:diff-id", Value: r.Image.Layers[1].DiffID},
		{Name: "vigil:layer:index", Value: "1"},
		{Name: "vigil:layer:created-by", Value: r.Image.Layers[1].CreatedBy},
	}
	if diff := cmp.Diff(wantProps, *libssl.Properties); diff != "" {
		t.Errorf("libssl3 properties (-want +got):\n%s", diff)
	}

	// Licenses: one expression, several names, or a single name.
	licenses := map[string]cdx.Licenses{
		"serde":   {{Expression: "MIT OR Apache-2.0"}},
		"rack":    {{License: &cdx.License{Name: "MIT"}}, {License: &cdx.License{Name: "BSD-2-Clause"}}},
		"libssl3": {{License: &cdx.License{Name: "Apache-2.0"}}},
	}
	for name, want := range licenses {
		if diff := cmp.Diff(want, *byName(t, pkgs, name).Licenses); diff != "" {
			t.Errorf("%s licenses (-want +got):\n%s", name, diff)
		}
	}
	if stdlib := byName(t, pkgs, "stdlib"); stdlib.Licenses != nil {
		t.Errorf("stdlib licenses = %+v, want none", *stdlib.Licenses)
	}

	// The target depends on every other component.
	deps := *bom.Dependencies
	if len(deps) != 1 || deps[0].Ref != target.BOMRef {
		t.Fatalf("dependencies = %+v, want one entry for %s", deps, target.BOMRef)
	}
	var wantDeps []string
	for _, c := range comps {
		wantDeps = append(wantDeps, c.BOMRef)
	}
	if diff := cmp.Diff(wantDeps, *deps[0].Dependencies); diff != "" {
		t.Errorf("target dependsOn (-want +got):\n%s", diff)
	}
}

func TestCycloneDXDirectory(t *testing.T) {
	bom := decodeCycloneDX(t, encodeCycloneDX(t, dirReport()))
	if c := bom.Metadata.Component; c.Type != cdx.ComponentTypeFile || c.Name != "/home/dev/project" {
		t.Errorf("metadata.component = %s %q, want file /home/dev/project", c.Type, c.Name)
	}
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeOS {
			t.Errorf("operating-system component %q for a report without OS", c.Name)
		}
		for _, p := range *c.Properties {
			if strings.HasPrefix(p.Name, "vigil:layer:") {
				t.Errorf("component %s has %s without a layer", c.Name, p.Name)
			}
		}
	}
}

// TestCycloneDXDeterministic checks that only the serial number and the
// timestamp vary between runs.
func TestCycloneDXDeterministic(t *testing.T) {
	r := testReport()
	id := uuid.MustParse("7f0c3f8e-2b1a-4c5d-9e8f-0a1b2c3d4e5f")
	a, err := json.Marshal(buildCycloneDX(r, testOptions(), id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(buildCycloneDX(testReport(), testOptions(), id))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(a), string(b)); diff != "" {
		t.Errorf("two builds of the same report differ (-first +second):\n%s", diff)
	}

	one := decodeCycloneDX(t, encodeCycloneDX(t, r))
	two := decodeCycloneDX(t, encodeCycloneDX(t, r))
	if one.SerialNumber == two.SerialNumber {
		t.Errorf("two documents share serial number %s", one.SerialNumber)
	}
	one.SerialNumber, two.SerialNumber = "", ""
	if diff := cmp.Diff(one, two); diff != "" {
		t.Errorf("two encodings differ beyond the serial number (-first +second):\n%s", diff)
	}
}

func TestEncodersRejectNilReport(t *testing.T) {
	for name, enc := range map[string]func() error{
		"cyclonedx": func() error { return EncodeCycloneDX(io.Discard, nil, testOptions()) },
		"spdx":      func() error { return EncodeSPDX(io.Discard, nil, testOptions()) },
		"json":      func() error { return EncodeJSON(io.Discard, nil) },
		"table":     func() error { return WriteTable(io.Discard, nil) },
	} {
		if err := enc(); err == nil || !strings.Contains(err.Error(), "nil report") {
			t.Errorf("%s: error = %v, want a nil report error", name, err)
		}
	}
}

func BenchmarkEncodeCycloneDX(b *testing.B) {
	r := bigReport(1000)
	o := testOptions()
	b.ReportAllocs()
	for b.Loop() {
		if err := EncodeCycloneDX(io.Discard, r, o); err != nil {
			b.Fatal(err)
		}
	}
}

// properties groups property values by name, in order.
func properties(ps *[]cdx.Property) map[string][]string {
	m := map[string][]string{}
	if ps == nil {
		return m
	}
	for _, p := range *ps {
		m[p.Name] = append(m[p.Name], p.Value)
	}
	return m
}

func byName(t testing.TB, cs []cdx.Component, name string) cdx.Component {
	t.Helper()
	for _, c := range cs {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no component named %q", name)
	return cdx.Component{}
}
