package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func writeJSON(t *testing.T, s *Scan) []byte {
	t.Helper()
	return render(t, func(b *bytes.Buffer) error { return WriteJSON(b, s) })
}

func TestWriteJSONGolden(t *testing.T) {
	golden(t, "scan.golden.json", writeJSON(t, testScan()))
}

// TestWriteJSONRoundTrip decodes the document into the schema types,
// refusing unknown fields, and encodes it again: nothing may change.
func TestWriteJSONRoundTrip(t *testing.T) {
	out := writeJSON(t, testScan())
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var doc jsonDocument
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if diff := cmp.Diff(buildJSON(testScan()), &doc); diff != "" {
		t.Errorf("decoded document (-built +decoded):\n%s", diff)
	}
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&doc); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(out), again.String()); diff != "" {
		t.Errorf("re-encoded document differs (-first +second):\n%s", diff)
	}
}

func TestWriteJSONFields(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(writeJSON(t, testScan()), &doc); err != nil {
		t.Fatal(err)
	}
	keys := func(m map[string]any) []string {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	wantTop := []string{"db", "errors", "findings", "image", "os", "packages", "partial", "schema", "summary", "suppressed", "target", "tool"}
	if diff := cmp.Diff(wantTop, keys(doc)); diff != "" {
		t.Errorf("top-level fields (-want +got):\n%s", diff)
	}
	if doc["schema"] != "vigil.scan/v1" {
		t.Errorf("schema = %v", doc["schema"])
	}
	wantSummary := map[string]any{
		"total": 5.0, "kev": 3.0, "critical": 1.0, "high": 1.0, "medium": 1.0, "low": 0.0, "unknown": 2.0,
		"fixable": 5.0, "packages": 4.0, "suppressed": 1.0,
	}
	if diff := cmp.Diff(wantSummary, doc["summary"]); diff != "" {
		t.Errorf("summary (-want +got):\n%s", diff)
	}

	first := doc["findings"].([]any)[0].(map[string]any)
	wantFirst := map[string]any{
		"id": "PYSEC-2020-102", "aliases": []any{"CVE-2020-11651"}, "cve": "CVE-2020-11651",
		"severity": "CRITICAL", "ecosystem": "PyPI", "matched_name": "salt",
		"installed_version": "3000.1", "fixed_versions": []any{"3000.2"}, "references": []any{},
		"package": map[string]any{
			"name": "salt", "version": "3000.1", "type": "pypi", "purl": "pkg:pypi/salt@3000.1",
			"locations": []any{"/usr/local/lib/python3.11/dist-packages/salt-3000.1.dist-info/METADATA"},
			"layer": map[string]any{
				"index": 1.0, "digest": testLayers()[1].Digest, "diff_id": testLayers()[1].DiffID,
				"created_by": testLayers()[1].CreatedBy,
			},
		},
		"cvss": map[string]any{"version": "3.1", "vector": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
			"base_score": 9.8, "severity": "CRITICAL", "source": "nvd@nist.gov"},
		"kev": map[string]any{"date_added": "2021-11-03", "due_date": "2022-05-03", "known_ransomware": false,
			"vendor_project": "SaltStack", "product": "Salt", "name": "SaltStack Salt Authentication Bypass Vulnerability"},
		"epss": map[string]any{"score": 0.9, "percentile": 0.99},
	}
	if diff := cmp.Diff(wantFirst, first); diff != "" {
		t.Errorf("findings[0] (-want +got):\n%s", diff)
	}

	wantSuppressed := []any{map[string]any{
		"id": "DEBIAN-CVE-2024-13176-openssl", "cve": "CVE-2024-13176", "severity": "UNKNOWN",
		"package": "libssl3", "version": "3.0.11-1~deb12u2",
		"purl":   "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12",
		"reason": "not_affected per vex.json: vulnerable_code_not_in_execute_path",
	}}
	if diff := cmp.Diff(wantSuppressed, doc["suppressed"]); diff != "" {
		t.Errorf("suppressed (-want +got):\n%s", diff)
	}

	db := doc["db"].(map[string]any)
	if db["built"] != "2026-03-14T06:00:00Z" || db["stale"] != false || len(db["sources"].([]any)) != 2 {
		t.Errorf("db = %v", db)
	}
	if _, ok := db["sources"].([]any)[0].(map[string]any)["etag"]; ok {
		t.Error("db.sources carries the HTTP ETag, which is not part of the schema")
	}
	if len(doc["packages"].([]any)) != 5 || doc["partial"] != true || len(doc["errors"].([]any)) != 1 {
		t.Errorf("packages/partial/errors = %d, %v, %v", len(doc["packages"].([]any)), doc["partial"], doc["errors"])
	}
	if got := doc["tool"]; !cmp.Equal(got, map[string]any{"name": "vigil", "version": "1.2.3", "information_uri": "https://github.com/vigil-cwpp/vigil"}) {
		t.Errorf("tool = %v", got)
	}
}

// TestWriteJSONEmpty: lists are [] rather than null, optional objects are
// left out.
func TestWriteJSONEmpty(t *testing.T) {
	out := string(writeJSON(t, &Scan{}))
	for _, want := range []string{`"findings": []`, `"suppressed": []`, `"packages": []`, `"errors": []`, `"sources": []`, `"name": "vigil"`} {
		if !strings.Contains(out, want) {
			t.Errorf("empty scan JSON lacks %s:\n%s", want, out)
		}
	}
	for _, absent := range []string{`"os"`, `"image"`, `"built"`, "null"} {
		if strings.Contains(out, absent) {
			t.Errorf("empty scan JSON has %s:\n%s", absent, out)
		}
	}
}

func TestWriteJSONErrors(t *testing.T) {
	if err := WriteJSON(&bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "nil scan") {
		t.Errorf("nil scan: error = %v", err)
	}
	if err := WriteJSON(failWriter{}, testScan()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("failing writer: error = %v, want %v", err, os.ErrClosed)
	}
}

// TestSchemaDocumented checks that SCHEMA.md documents every field of the
// Vigil-defined schema types.
func TestSchemaDocumented(t *testing.T) {
	doc, err := os.ReadFile("SCHEMA.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	for _, v := range []any{jsonDocument{}, jsonTool{}, jsonDB{}, jsonSource{}, jsonSummary{}, jsonFinding{},
		jsonPackageRef{}, jsonCVSS{}, jsonKEV{}, jsonEPSS{}, jsonSuppressed{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if !documented[name] {
				t.Errorf("SCHEMA.md does not document %s field %q", typ.Name(), name)
			}
		}
	}
}
