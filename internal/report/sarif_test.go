package report

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// sarifSchemaID is the $id of the official SARIF 2.1.0 schema (OASIS
// errata 01) kept in testdata; see testdata/README.md.
const sarifSchemaID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

// sarifLoader serves the SARIF schema from testdata and refuses every other
// URL, so that validation never touches the network.
type sarifLoader struct{}

func (sarifLoader) Load(url string) (any, error) {
	if url != sarifSchemaID {
		return nil, fmt.Errorf("schema %s is not in testdata", url)
	}
	f, err := os.Open(filepath.Join("testdata", "sarif-schema-2.1.0.json"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jsonschema.UnmarshalJSON(f)
}

func compileSARIFSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.UseLoader(sarifLoader{})
	s, err := c.Compile(sarifSchemaID)
	if err != nil {
		t.Fatalf("compile the SARIF schema: %v", err)
	}
	return s
}

func writeSARIFBytes(t *testing.T, s *Scan, lim sarifLimits) []byte {
	t.Helper()
	return render(t, func(b *bytes.Buffer) error { return writeSARIF(b, s, lim) })
}

func decodeSARIF(t *testing.T, b []byte) *sarifLog {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var log sarifLog
	if err := dec.Decode(&log); err != nil {
		t.Fatalf("decode SARIF: %v", err)
	}
	return &log
}

func TestSARIFSchema(t *testing.T) {
	schema := compileSARIFSchema(t)
	truncated := testScan()
	hostile := testScan()
	hostile.Findings[3].Package.Locations = []string{"/srv/a dir/%zz/ünï code/[x]#frag?q", "/second"}
	hostile.Findings[3].Summary = "<script>alert(1)</script> | *bold* \x1b[31m"
	hostile.Findings[4].Package.Locations = nil
	for name, tc := range map[string]struct {
		s   *Scan
		lim sarifLimits
	}{
		"image":           {testScan(), sarifLimits{results: maxResultsPerRun, shown: shownResultsPerRun}},
		"truncated":       {truncated, sarifLimits{results: 2, shown: 1}},
		"hostile content": {hostile, sarifLimits{results: maxResultsPerRun}},
		"empty":           {&Scan{}, sarifLimits{results: maxResultsPerRun}},
		"directory": {&Scan{Inventory: &inventory.Report{Target: inventory.Target{Kind: "dir", Name: "/src"}}, Findings: testFindings(testInventory())[:1]},
			sarifLimits{results: maxResultsPerRun}},
	} {
		t.Run(name, func(t *testing.T) {
			out := writeSARIFBytes(t, tc.s, tc.lim)
			if err := schema.Validate(vigiltest.ParseJSON(t, out)); err != nil {
				t.Fatalf("output does not validate against SARIF 2.1.0: %v\n%s", err, out)
			}
		})
	}
}

// TestSARIFSchemaRejects proves the validator checks what it should.
func TestSARIFSchemaRejects(t *testing.T) {
	schema := compileSARIFSchema(t)
	out := writeSARIFBytes(t, testScan(), sarifLimits{results: maxResultsPerRun})
	run := func(doc map[string]any) map[string]any { return doc["runs"].([]any)[0].(map[string]any) }
	for name, mutate := range map[string]func(map[string]any){
		"wrong version":  func(doc map[string]any) { doc["version"] = "2.2.0" },
		"no runs":        func(doc map[string]any) { delete(doc, "runs") },
		"no driver name": func(doc map[string]any) { delete(run(doc)["tool"].(map[string]any)["driver"].(map[string]any), "name") },
		"bad level":      func(doc map[string]any) { run(doc)["results"].([]any)[0].(map[string]any)["level"] = "critical" },
		"unknown field":  func(doc map[string]any) { run(doc)["colour"] = "blue" },
		"negative index": func(doc map[string]any) { run(doc)["results"].([]any)[0].(map[string]any)["ruleIndex"] = -2 },
		"uri not a uri":  func(doc map[string]any) { doc["$schema"] = "not a uri" },
		"message no text": func(doc map[string]any) {
			run(doc)["results"].([]any)[0].(map[string]any)["message"] = map[string]any{}
		},
	} {
		t.Run(name, func(t *testing.T) {
			doc := vigiltest.ParseJSON(t, out).(map[string]any)
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

func TestSARIFGolden(t *testing.T) {
	golden(t, "scan.golden.sarif", render(t, func(b *bytes.Buffer) error { return WriteSARIF(b, testScan()) }))
}

func TestSARIFContent(t *testing.T) {
	s := testScan()
	log := decodeSARIF(t, writeSARIFBytes(t, s, sarifLimits{results: maxResultsPerRun}))
	if log.Schema != "https://json.schemastore.org/sarif-2.1.0.json" || log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("$schema %q, version %q, %d runs", log.Schema, log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	d := run.Tool.Driver
	if d.Name != "vigil" || d.Version != "1.2.3" || d.InformationURI != "https://github.com/vigil-cwpp/vigil" {
		t.Errorf("driver = %s %s %s", d.Name, d.Version, d.InformationURI)
	}

	// One rule per advisory, in the order of the findings.
	var ruleIDs []string
	for _, r := range d.Rules {
		ruleIDs = append(ruleIDs, r.ID)
	}
	if diff := cmp.Diff([]string{"PYSEC-2020-102", "PYSEC-2022-236", "PYSEC-2020-103", "GO-2024-2687", "DEBIAN-CVE-2024-0727-openssl"}, ruleIDs); diff != "" {
		t.Errorf("rules (-want +got):\n%s", diff)
	}
	salt := d.Rules[0]
	if diff := cmp.Diff(sarifRuleProps{SecuritySeverity: "9.8", Tags: []string{"security", "vulnerability", "critical", "kev"}, Precision: "very-high"}, salt.Properties); diff != "" {
		t.Errorf("PYSEC-2020-102 properties (-want +got):\n%s", diff)
	}
	if salt.HelpURI != "https://osv.dev/vulnerability/PYSEC-2020-102" || salt.DefaultConfiguration.Level != "error" {
		t.Errorf("PYSEC-2020-102 helpUri %q, level %q", salt.HelpURI, salt.DefaultConfiguration.Level)
	}
	for _, want := range []string{"| salt | 3000.1 | 3000.2 |", "CVSS 3.1 9.8", `EPSS 90.0% \(percentile 99.0%\)`, "in CISA KEV since 2021-11-03, due 2022-05-03"} {
		if !strings.Contains(salt.Help.Markdown, want) {
			t.Errorf("PYSEC-2020-102 help.markdown lacks %q:\n%s", want, salt.Help.Markdown)
		}
	}
	if !strings.Contains(salt.Help.Text, "- salt 3000.1, fixed in 3000.2 (/usr/local/lib/python3.11/dist-packages/salt-3000.1.dist-info/METADATA)") {
		t.Errorf("PYSEC-2020-102 help.text:\n%s", salt.Help.Text)
	}
	goRule := d.Rules[3]
	if goRule.ShortDescription.Text != "HTTP/2 CONTINUATION flood in net/http" ||
		goRule.FullDescription.Text != "HTTP/2 CONTINUATION flood in net/http (CVE-2023-45288, GHSA-4v7x-pqxf-cx7m)" ||
		goRule.HelpURI != "https://pkg.go.dev/vuln/GO-2024-2687" {
		t.Errorf("GO-2024-2687 rule = %+v", goRule)
	}
	if goRule.Properties.SecuritySeverity != "" || goRule.DefaultConfiguration.Level != "note" {
		t.Errorf("unknown severity: security-severity %q, level %q; want none and note", goRule.Properties.SecuritySeverity, goRule.DefaultConfiguration.Level)
	}
	if d.Rules[1].Properties.SecuritySeverity != "8.8" || d.Rules[2].DefaultConfiguration.Level != "warning" {
		t.Errorf("PYSEC-2022-236 security-severity %q; PYSEC-2020-103 level %q", d.Rules[1].Properties.SecuritySeverity, d.Rules[2].DefaultConfiguration.Level)
	}

	// Results: one per finding, pointing at the rule and the file.
	if len(run.Results) != len(s.Findings) {
		t.Fatalf("%d results, want %d", len(run.Results), len(s.Findings))
	}
	prints := map[string]bool{}
	for i, r := range run.Results {
		f := s.Findings[i]
		if r.RuleID != f.ID || d.Rules[r.RuleIndex].ID != f.ID {
			t.Errorf("result %d: ruleId %q, rule index %d, want %s", i, r.RuleID, r.RuleIndex, f.ID)
		}
		if uri, want := r.Locations[0].PhysicalLocation.ArtifactLocation.URI, strings.TrimPrefix(f.Package.Locations[0], "/"); uri != want {
			t.Errorf("result %d: uri %q, want %q", i, uri, want)
		}
		fp := r.PartialFingerprints[fingerprintKey]
		if len(fp) != 32 || prints[fp] {
			t.Errorf("result %d: fingerprint %q is not a fresh 32-digit hash", i, fp)
		}
		prints[fp] = true
		if r.Properties.ImageRef != "registry.example.com/team/app:1.4.0" || r.Properties.PURL != f.Package.PURL {
			t.Errorf("result %d properties = %+v", i, r.Properties)
		}
	}
	if got, want := run.Results[0].Message.Text, "salt 3000.1 is affected by PYSEC-2020-102 (CVE-2020-11651). Fixed in 3000.2. Known to be exploited (CISA KEV, added 2021-11-03)."; got != want {
		t.Errorf("message =\n%q, want\n%q", got, want)
	}
	if got, want := run.Results[3].Message.Text, "stdlib 1.22.1 is affected by GO-2024-2687 (CVE-2023-45288): HTTP/2 CONTINUATION flood in net/http. Fixed in 1.22.2."; got != want {
		t.Errorf("message =\n%q, want\n%q", got, want)
	}

	wantProps := sarifRunProps{
		Target: "registry:registry.example.com/team/app:1.4.0", TargetKind: "registry",
		ImageRef: "registry.example.com/team/app:1.4.0", ImageDigest: s.Inventory.Image.Digest,
		RepoTags: []string{"registry.example.com/team/app:1.4.0"}, OS: "debian 12", DBBuilt: "2026-03-14T06:00:00Z",
		Partial: true, Suppressed: 1, TotalResults: 5, ReportedResults: 5,
	}
	if diff := cmp.Diff(wantProps, run.Properties); diff != "" {
		t.Errorf("run properties (-want +got):\n%s", diff)
	}
	if n := run.Invocations[0].ToolExecutionNotifications; len(n) != 1 || n[0].Descriptor.ID != "vigil/partial-inventory" {
		t.Errorf("notifications = %+v, want one for the partial inventory", n)
	}
}

// TestSARIFFingerprintStable: the fingerprint depends on the advisory, the
// package and its location, not on the order or the other findings.
func TestSARIFFingerprintStable(t *testing.T) {
	s := testScan()
	a := decodeSARIF(t, writeSARIFBytes(t, s, sarifLimits{results: maxResultsPerRun}))
	s.Findings = []vulnmatch.Finding{s.Findings[4], s.Findings[3]}
	s.Findings[1].Summary = "changed"
	b := decodeSARIF(t, writeSARIFBytes(t, s, sarifLimits{results: maxResultsPerRun}))
	if a.Runs[0].Results[4].PartialFingerprints[fingerprintKey] != b.Runs[0].Results[0].PartialFingerprints[fingerprintKey] ||
		a.Runs[0].Results[3].PartialFingerprints[fingerprintKey] != b.Runs[0].Results[1].PartialFingerprints[fingerprintKey] {
		t.Error("fingerprints changed with order or summary")
	}
}

// TestSARIFTruncation: past the results limit, the first (highest-risk)
// findings are kept, and the cut is recorded.
func TestSARIFTruncation(t *testing.T) {
	s := testScan()
	s.DB.Stale = true
	log := decodeSARIF(t, writeSARIFBytes(t, s, sarifLimits{results: 2, shown: 1}))
	run := log.Runs[0]
	var got []string
	for _, r := range run.Results {
		got = append(got, r.RuleID)
	}
	if diff := cmp.Diff([]string{"PYSEC-2020-102", "PYSEC-2022-236"}, got); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	if len(run.Tool.Driver.Rules) != 2 {
		t.Errorf("%d rules, want 2: only the reported results' rules", len(run.Tool.Driver.Rules))
	}
	if p := run.Properties; !p.Truncated || p.TotalResults != 5 || p.ReportedResults != 2 {
		t.Errorf("run properties: truncated %v, total %d, reported %d; want true, 5, 2", p.Truncated, p.TotalResults, p.ReportedResults)
	}
	inv := run.Invocations[0]
	if !inv.ExecutionSuccessful {
		t.Error("executionSuccessful = false")
	}
	var ids []string
	for _, n := range inv.ToolExecutionNotifications {
		ids = append(ids, n.Descriptor.ID+" "+n.Level)
	}
	want := []string{"vigil/results-truncated warning", "vigil/results-over-display-limit note", "vigil/partial-inventory warning", "vigil/stale-database warning"}
	if diff := cmp.Diff(want, ids); diff != "" {
		t.Errorf("notifications (-want +got):\n%s", diff)
	}
	if msg := inv.ToolExecutionNotifications[0].Message.Text; !strings.Contains(msg, "found 5 vulnerabilities") || !strings.Contains(msg, "3 are left out") {
		t.Errorf("truncation message = %q", msg)
	}
}

// TestSARIFDefaultLimit runs WriteSARIF itself past GitHub's limit.
func TestSARIFDefaultLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25,001 results")
	}
	s := testScan()
	f := s.Findings[0]
	s.Findings = make([]vulnmatch.Finding, maxResultsPerRun+1)
	for i := range s.Findings {
		s.Findings[i] = f
		s.Findings[i].ID = fmt.Sprintf("PYSEC-2020-%d", i)
	}
	var buf bytes.Buffer
	if err := WriteSARIF(&buf, s); err != nil {
		t.Fatal(err)
	}
	log := decodeSARIF(t, buf.Bytes())
	run := log.Runs[0]
	if len(run.Results) != maxResultsPerRun || len(run.Tool.Driver.Rules) != maxResultsPerRun || !run.Properties.Truncated {
		t.Errorf("%d results, %d rules, truncated %v; want %d, %d, true", len(run.Results), len(run.Tool.Driver.Rules), run.Properties.Truncated, maxResultsPerRun, maxResultsPerRun)
	}
	if last := run.Results[len(run.Results)-1].RuleID; last != fmt.Sprintf("PYSEC-2020-%d", maxResultsPerRun-1) {
		t.Errorf("last result %s, want the %dth finding", last, maxResultsPerRun)
	}
}

func TestArtifactURI(t *testing.T) {
	for _, tt := range []struct{ loc, image, want string }{
		{"/var/lib/dpkg/status", "img", "var/lib/dpkg/status"},
		{"/srv/a dir/x#y?z", "", "srv/a%20dir/x%23y%3Fz"},
		{"/a:b/c", "", "./a:b/c"},
		{"", "registry.example.com/team/app:1.4.0", "registry.example.com/team/app:1.4.0"},
		{"", "", "."},
		{"//double", "", "double"},
	} {
		if got := artifactURI(tt.loc, tt.image); got != tt.want {
			t.Errorf("artifactURI(%q, %q) = %q, want %q", tt.loc, tt.image, got, tt.want)
		}
	}
}

func TestMarkdownEscape(t *testing.T) {
	in := "[click](javascript:alert(1)) <img src=x> | *x* `y` \x1b[31m"
	got := mdEscape(in)
	want := `\[click\]\(javascript:alert\(1\)\) \<img src=x\> \| \*x\* \` + "`" + `y\` + "`" + ` ?\[31m`
	if got != want {
		t.Errorf("mdEscape(%q) =\n%s\nwant\n%s", in, got, want)
	}
}

func TestSecuritySeverity(t *testing.T) {
	for _, tt := range []struct {
		sev  string
		cvss float64
		want string
	}{
		{"CRITICAL", 9.8, "9.8"}, {"HIGH", 7, "7.0"}, {"CRITICAL", 0, "9.5"}, {"HIGH", 0, "8.0"},
		{"MEDIUM", 0, "5.5"}, {"LOW", 0, "2.0"}, {"UNKNOWN", 0, ""}, {"bogus", 0, ""},
	} {
		f := &vulnmatch.Finding{Severity: tt.sev}
		if tt.cvss > 0 {
			f.CVSS = &vulndb.CVSS{BaseScore: tt.cvss}
		}
		if got := securitySeverity(f); got != tt.want {
			t.Errorf("securitySeverity(%s, %v) = %q, want %q", tt.sev, tt.cvss, got, tt.want)
		}
	}
}

func TestWriteSARIFErrors(t *testing.T) {
	if err := WriteSARIF(&bytes.Buffer{}, nil); err == nil || !strings.Contains(err.Error(), "nil scan") {
		t.Errorf("nil scan: error = %v", err)
	}
	if err := WriteSARIF(failWriter{}, testScan()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("failing writer: error = %v, want %v", err, os.ErrClosed)
	}
}
