package sbom

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

func encodeSPDX(t testing.TB, r *inventory.Report) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := EncodeSPDX(&buf, r, testOptions()); err != nil {
		t.Fatalf("EncodeSPDX: %v", err)
	}
	return buf.Bytes()
}

func decodeSPDX(t testing.TB, b []byte) *spdx.Document {
	t.Helper()
	var doc spdx.Document
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("decode spdx: %v", err)
	}
	return &doc
}

func TestSPDXSchema(t *testing.T) {
	schema := compileSchema(t, spdxSchemaURL)
	for name, r := range map[string]*inventory.Report{
		"image":     testReport(),
		"directory": dirReport(),
		"empty":     {Target: inventory.Target{Kind: "dir", Name: "/empty"}},
	} {
		t.Run(name, func(t *testing.T) {
			out := encodeSPDX(t, r)
			if err := schema.Validate(parseJSON(t, out)); err != nil {
				t.Fatalf("output does not validate against SPDX 2.3: %v\n%s", err, out)
			}
		})
	}
}

// TestSPDXSchemaRejects proves the validator checks what it should: each
// mutation of a valid document must fail.
func TestSPDXSchemaRejects(t *testing.T) {
	schema := compileSchema(t, spdxSchemaURL)
	out := encodeSPDX(t, testReport())
	mutations := map[string]func(doc map[string]any){
		"no SPDXID":            func(doc map[string]any) { delete(doc, "SPDXID") },
		"numeric spdxVersion":  func(doc map[string]any) { doc["spdxVersion"] = json.Number("2.3") },
		"package without name": func(doc map[string]any) { delete(doc["packages"].([]any)[2].(map[string]any), "name") },
		"bogus relationship type": func(doc map[string]any) {
			doc["relationships"].([]any)[0].(map[string]any)["relationshipType"] = "BOGUS"
		},
		"bogus package purpose": func(doc map[string]any) {
			doc["packages"].([]any)[2].(map[string]any)["primaryPackagePurpose"] = "GADGET"
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

func TestSPDXContent(t *testing.T) {
	r := testReport()
	doc := decodeSPDX(t, encodeSPDX(t, r))

	if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.SPDXIdentifier != "DOCUMENT" {
		t.Errorf("header = %s %s %s, want SPDX-2.3 CC0-1.0 DOCUMENT", doc.SPDXVersion, doc.DataLicense, doc.SPDXIdentifier)
	}
	if doc.DocumentName != r.Target.Name {
		t.Errorf("name = %q, want %q", doc.DocumentName, r.Target.Name)
	}
	ns := regexp.MustCompile(`^https://vigil\.dev/spdxdocs/testdata-app\.tar-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	if !ns.MatchString(doc.DocumentNamespace) {
		t.Errorf("documentNamespace = %q, want %s", doc.DocumentNamespace, ns)
	}
	if again := decodeSPDX(t, encodeSPDX(t, r)); again.DocumentNamespace == doc.DocumentNamespace {
		t.Errorf("two documents share namespace %s", doc.DocumentNamespace)
	}
	wantCreation := &spdx.CreationInfo{
		Creators: []common.Creator{{CreatorType: "Tool", Creator: "vigil-1.2.3"}},
		Created:  "2026-03-14T15:09:26Z",
	}
	if diff := cmp.Diff(wantCreation, doc.CreationInfo); diff != "" {
		t.Errorf("creationInfo (-want +got):\n%s", diff)
	}

	byID := map[common.ElementID]*spdx.Package{}
	idShape := regexp.MustCompile(`^[A-Za-z0-9.-]+$`)
	for _, p := range doc.Packages {
		if byID[p.PackageSPDXIdentifier] != nil {
			t.Errorf("SPDXID %s used twice", p.PackageSPDXIdentifier)
		}
		if !idShape.MatchString(string(p.PackageSPDXIdentifier)) {
			t.Errorf("SPDXID SPDXRef-%s has characters SPDX does not allow", p.PackageSPDXIdentifier)
		}
		byID[p.PackageSPDXIdentifier] = p
	}

	root := byID["Root"]
	if root == nil || root.PrimaryPackagePurpose != "CONTAINER" || root.PackageName != r.Target.Name {
		t.Fatalf("root package = %+v, want a CONTAINER named %q", root, r.Target.Name)
	}
	osPkg := byID["OperatingSystem"]
	if osPkg == nil || osPkg.PrimaryPackagePurpose != "OPERATING_SYSTEM" || osPkg.PackageName != "debian" || osPkg.PackageVersion != "12" {
		t.Errorf("OS package = %+v, want OPERATING_SYSTEM debian 12", osPkg)
	}

	// Packages keep the report's order after the root and the OS.
	pkgs := doc.Packages[2:]
	if len(pkgs) != len(r.Packages) {
		t.Fatalf("%d inventory packages in the document, want %d", len(pkgs), len(r.Packages))
	}
	for i, p := range pkgs {
		ip := r.Packages[i]
		if p.PackageName != ip.Name || p.PackageVersion != ip.Version || p.PrimaryPackagePurpose != "LIBRARY" {
			t.Errorf("package %d = %s@%s %s, want %s@%s LIBRARY", i, p.PackageName, p.PackageVersion, p.PrimaryPackagePurpose, ip.Name, ip.Version)
		}
		if !strings.HasPrefix(string(p.PackageSPDXIdentifier), "Package-"+ip.Type+"-") {
			t.Errorf("package %s SPDXID = %s, want Package-%s-…", ip.Name, p.PackageSPDXIdentifier, ip.Type)
		}
		if p.PackageDownloadLocation != "NOASSERTION" || p.PackageLicenseConcluded != "NOASSERTION" || p.PackageCopyrightText != "NOASSERTION" || p.FilesAnalyzed {
			t.Errorf("package %s: want NOASSERTION download, concluded licence and copyright, and filesAnalyzed false; got %+v", ip.Name, p)
		}
		want := []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: ip.PackageURL()}}
		if diff := cmp.Diff(want, p.PackageExternalReferences); diff != "" {
			t.Errorf("package %s externalRefs (-want +got):\n%s", ip.Name, diff)
		}
		for _, l := range ip.Locations {
			if !strings.Contains(p.PackageSourceInfo, l) {
				t.Errorf("package %s sourceInfo %q does not mention %s", ip.Name, p.PackageSourceInfo, l)
			}
		}
	}
	if got := pkgs[3].PackageExternalReferences[0].Locator; got != "pkg:gem/rack@3.0.8" {
		t.Errorf("rack purl = %q, want one built from type, name and version", got)
	}
	if got := pkgs[1].PackageSPDXIdentifier; got != "Package-deb-bash-2" {
		t.Errorf("bash SPDXID = %q, want Package-deb-bash-2", got)
	}
	if got := pkgs[6].PackageSPDXIdentifier; got != "Package-npm--babel-core-7" {
		t.Errorf("@babel/core SPDXID = %q, want Package-npm--babel-core-7", got)
	}
	libssl := pkgs[2]
	wantSource := "found in /var/lib/dpkg/status; layer " + r.Image.Layers[1].Digest + " (" + r.Image.Layers[1].CreatedBy + ")"
	if libssl.PackageSourceInfo != wantSource {
		t.Errorf("libssl3 sourceInfo = %q, want %q", libssl.PackageSourceInfo, wantSource)
	}
	if !strings.Contains(libssl.PackageComment, "source package: openssl 3.0.11-1~deb12u2") {
		t.Errorf("libssl3 comment %q does not name the source package", libssl.PackageComment)
	}

	// Declared licences: only single identifier-shaped tokens survive.
	declared := map[string]string{
		"serde": "NOASSERTION", "bash": "GPL-3.0-or-later", "libssl3": "Apache-2.0",
		"rack": "NOASSERTION", "stdlib": "NOASSERTION", "@babel/core": "MIT", "requests": "NOASSERTION",
	}
	for _, p := range pkgs {
		if want, ok := declared[p.PackageName]; ok && p.PackageLicenseDeclared != want {
			t.Errorf("%s licenseDeclared = %q, want %q", p.PackageName, p.PackageLicenseDeclared, want)
		}
	}

	// DOCUMENT DESCRIBES the root, which CONTAINS the OS and every package.
	type rel struct{ a, typ, b string }
	var got []rel
	for _, r := range doc.Relationships {
		got = append(got, rel{string(r.RefA.ElementRefID), r.Relationship, string(r.RefB.ElementRefID)})
	}
	want := []rel{{"DOCUMENT", "DESCRIBES", "Root"}, {"Root", "CONTAINS", "OperatingSystem"}}
	for _, p := range pkgs {
		want = append(want, rel{"Root", "CONTAINS", string(p.PackageSPDXIdentifier)})
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(rel{})); diff != "" {
		t.Errorf("relationships (-want +got):\n%s", diff)
	}
}

func TestSPDXDirectory(t *testing.T) {
	doc := decodeSPDX(t, encodeSPDX(t, dirReport()))
	if len(doc.Packages) != 2 {
		t.Fatalf("%d packages, want the root and one package", len(doc.Packages))
	}
	root := doc.Packages[0]
	if root.PrimaryPackagePurpose != "FILE" || root.PackageName != "/home/dev/project" || root.PackageVersion != "" {
		t.Errorf("root = %s %q %q, want FILE /home/dev/project without version", root.PrimaryPackagePurpose, root.PackageName, root.PackageVersion)
	}
	if got := doc.Packages[1].PackageSourceInfo; got != "found in /package-lock.json" {
		t.Errorf("sourceInfo = %q, want no layer", got)
	}
	if !strings.HasPrefix(doc.DocumentNamespace, "https://vigil.dev/spdxdocs/-home-dev-project-") {
		t.Errorf("documentNamespace = %q", doc.DocumentNamespace)
	}
}

func TestSPDXDeterministic(t *testing.T) {
	id := uuid.MustParse("7f0c3f8e-2b1a-4c5d-9e8f-0a1b2c3d4e5f")
	a, err := json.Marshal(buildSPDX(testReport(), testOptions(), id))
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(buildSPDX(testReport(), testOptions(), id))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(a), string(b)); diff != "" {
		t.Errorf("two builds of the same report differ (-first +second):\n%s", diff)
	}
}

func TestSanitizeID(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "unknown",
		"libssl3":                "libssl3",
		"@babel/core":            "-babel-core",
		"github.com/google/uuid": "github.com-google-uuid",
		"g++_12 (x)":             "g---12--x-",
		"café":                   "caf-",
	} {
		if got := sanitizeID(in); got != want {
			t.Errorf("sanitizeID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSPDXDeclaredLicense(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "NOASSERTION"},
		{[]string{"MIT"}, "MIT"},
		{[]string{" GPL-2.0+ "}, "GPL-2.0+"},
		{[]string{"LicenseRef-custom.1"}, "LicenseRef-custom.1"},
		{[]string{"MIT", "Apache-2.0"}, "NOASSERTION"},
		{[]string{"MIT OR Apache-2.0"}, "NOASSERTION"},
		{[]string{"Apache 2.0"}, "NOASSERTION"},
		{[]string{"BSD (3-clause)"}, "NOASSERTION"},
		{[]string{"-MIT"}, "NOASSERTION"},
		{[]string{""}, "NOASSERTION"},
	} {
		if got := spdxDeclaredLicense(tc.in); got != tc.want {
			t.Errorf("spdxDeclaredLicense(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
