package vulndb

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addFileSeed adds the start of a shared-data file as a seed, when the
// shared data is there (fuzz seeds must not need it).
func addFileSeed(f *testing.F, rel string, limit int) {
	dir := os.Getenv("VIGIL_SHARED_DATA")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared", "data")
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		return
	}
	if len(b) > limit {
		b = b[:limit]
	}
	f.Add(b)
}

const (
	seedOSV = `{"schema_version":"1.3.1","id":"GO-2022-0001","modified":"2024-05-20T16:03:47Z","published":"2022-08-01T22:21:06Z",
		"withdrawn":"2024-06-01T00:00:00Z","aliases":["CVE-2022-0001","GHSA-xxxx-yyyy-zzzz"],"summary":"s","details":"d",
		"severity":[{"type":"CVSS_V3","score":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
		"affected":[{"package":{"ecosystem":"Go","name":"example.com/m","purl":"pkg:golang/example.com/m"},
		"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.3"}]},{"type":"GIT","repo":"https://x","events":[{"introduced":"0"},{"limit":"abc"}]}],
		"versions":["1.0.0"],"ecosystem_specific":{"imports":[{"path":"example.com/m","symbols":["F"]}]},"database_specific":{"x":1}}],
		"references":[{"type":"FIX","url":"https://example.com"}],"database_specific":{"review_status":"REVIEWED"}}`
	seedKEV = `{"title":"CISA Catalog","catalogVersion":"2025.08.25","dateReleased":"2025-08-25T17:04:19.9796Z","count":2,
		"vulnerabilities":[{"cveID":"CVE-2025-48384","vendorProject":"Git","product":"Git","vulnerabilityName":"n","dateAdded":"2025-08-25",
		"shortDescription":"d","requiredAction":"a","dueDate":"2025-09-15","knownRansomwareCampaignUse":"Known","notes":"","cwes":["CWE-59"]},
		{"cveID":"CVE-2020-0001"}]}`
	seedNVD = `{"resultsPerPage":1,"startIndex":0,"totalResults":1,"format":"NVD_CVE","version":"2.0","timestamp":"2026-11-23T17:57:07.000",
		"vulnerabilities":[{"cve":{"id":"CVE-2020-11651","sourceIdentifier":"cve@mitre.org","lastModified":"2025-10-21T20:17:45.920","vulnStatus":"Modified",
		"metrics":{"cvssMetricV40":[{"source":"s","type":"Secondary","cvssData":{"version":"4.0","vectorString":"CVSS:4.0/AV:N","baseScore":9.3,"baseSeverity":"CRITICAL"}}],
		"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8,"baseSeverity":"CRITICAL"}}],
		"cvssMetricV2":[{"source":"nvd@nist.gov","type":"Primary","baseSeverity":"HIGH","cvssData":{"version":"2.0","vectorString":"AV:N/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5}}]}}}]}`
	seedSecdb = `{"distroversion":"v3.8","reponame":"main","archs":["x86_64"],"packages":[
		{"pkg":{"name":"db","secfixes":{"0":["CVE-2016-0682"],"5.3.28-r1":["CVE-2019-2708"]}}},
		{"pkg":{"name":"xen","secfixes":{"4.9.1-r1":["CVE-2017-15588 XSA-241","XSA-245","CVE-????-?????  XSA-284"],"4.7.0-r0":null}}},
		{"pkg":{"name":"heimdal","secfixes":{"7.4.0-r0":null}}}]}`
	seedEPSS = "#model_version:v2025.03.14,score_date:2025-03-14T00:00:00+0000\ncve,epss,percentile\nCVE-1999-0001,0.01025,0.77029\nCVE-2020-11651,0.97,0.999\n"
)

func FuzzParseOSV(f *testing.F) {
	f.Add([]byte(seedOSV))
	f.Add([]byte(`{"id":"X","modified":"2024-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"X","affected":[{"ranges":[{"type":"ECOSYSTEM","events":[]}]}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := parseOSV(data)
		if err != nil {
			return
		}
		if a.ID == "" {
			t.Fatal("parsed a record without an id")
		}
		p, err := prepare(codecFlateDict1, a)
		if err != nil {
			return // stored as a skipped record, not a crash
		}
		js, err := codecFlateDict1.decode(p.blob)
		if err != nil {
			t.Fatalf("decoding what was encoded: %v", err)
		}
		var back Advisory
		if err := json.Unmarshal(js, &back); err != nil || back.ID != a.ID {
			t.Fatalf("round trip: %v, id %q → %q", err, a.ID, back.ID)
		}
	})
}

func FuzzParseKEV(f *testing.F) {
	f.Add([]byte(seedKEV))
	f.Add([]byte(`{"vulnerabilities":[]}`))
	f.Add([]byte(`{"vulnerabilities":{"cveID":"CVE-2020-0001"}}`))
	addFileSeed(f, "kev/known_exploited_vulnerabilities.json", 4096)
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := &SourceReport{}
		cat, err := parseKEV(data, rep)
		if err != nil {
			return
		}
		if len(cat.Entries) == 0 || len(cat.Entries) > rep.Entries {
			t.Fatalf("%d entries from %d", len(cat.Entries), rep.Entries)
		}
		for _, e := range cat.Entries {
			if !cveRe.MatchString(e.CVE) {
				t.Fatalf("entry with CVE %q", e.CVE)
			}
		}
	})
}

func FuzzParseEPSS(f *testing.F) {
	f.Add([]byte(seedEPSS))
	f.Add([]byte("cve,epss,percentile\r\nCVE-2020-0001,NaN,0.5\r\n"))
	f.Add([]byte("\ufeffcve,epss,percentile,extra\nCVE-2020-0001,1e-5,1\n,,\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rep := &SourceReport{}
		n := 0
		_, err := parseEPSS(bytes.NewReader(data), rep, func(e *EPSS) error {
			n++
			if !cveRe.MatchString(e.CVE) || !(e.Score >= 0 && e.Score <= 1) || !(e.Percentile >= 0 && e.Percentile <= 1) {
				t.Fatalf("bad row accepted: %+v", e)
			}
			return nil
		})
		if err == nil && n == 0 {
			t.Fatal("success without a row")
		}
	})
}

func FuzzParseNVD(f *testing.F) {
	f.Add([]byte(seedNVD))
	f.Add([]byte(`{"id":"CVE-2020-0001","vulnStatus":"Rejected"}`))
	f.Add([]byte(`{"cve":{"id":"CVE-2020-0001","metrics":{"cvssMetricV30":[{"cvssData":{"vectorString":"v","baseScore":-1}}]}}}`))
	addFileSeed(f, "nvd/fkie-cad-per-cve/CVE-2025/CVE-2025-240xx/CVE-2025-24016.json", 1<<20)
	f.Fuzz(func(t *testing.T, data []byte) {
		page, err := parseNVD(data, &SourceReport{})
		if err != nil {
			return
		}
		for _, r := range page.Records {
			if !cveRe.MatchString(r.ID) {
				t.Fatalf("record with id %q", r.ID)
			}
			for _, m := range r.Metrics {
				if !(m.BaseScore >= 0 && m.BaseScore <= 10) || math.IsNaN(m.BaseScore) || m.Vector == "" || m.Severity == "" {
					t.Fatalf("bad metric accepted: %+v", m)
				}
				switch m.Version {
				case "4.0", "3.1", "3.0", "2.0":
				default:
					t.Fatalf("metric version %q", m.Version)
				}
			}
		}
	})
}

func FuzzParseSecdb(f *testing.F) {
	f.Add([]byte(seedSecdb))
	f.Add([]byte(`{"distroversion":"v3.3","reponame":"community","packages":null}`))
	f.Add([]byte(`{"distroversion":"v3.3","packages":[{"pkg":{"name":"a","secfixes":{"1-r0":[1,"CVE_2019-2426"]}}}]}`))
	addFileSeed(f, "alpine-secdb/v3.6/main.json", 8192)
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSecdb(data, &SourceReport{})
		if err != nil {
			return
		}
		if !strings.HasPrefix(s.Source(), "alpine-secdb:") {
			t.Fatalf("source %q", s.Source())
		}
		for _, a := range s.Advs {
			if !strings.HasPrefix(a.ID, "ALPINE-") || len(a.Affected) == 0 {
				t.Fatalf("advisory %+v", a)
			}
			for _, af := range a.Affected {
				if af.Package.Name == "" || af.Package.Ecosystem != "Alpine:"+s.Release {
					t.Fatalf("affected %+v in %s", af, s.Release)
				}
				for _, r := range af.Ranges {
					if len(r.Events) != 2 || r.Events[0].Introduced != "0" || r.Events[1].Fixed == "" || r.Events[1].Fixed == "0" {
						t.Fatalf("range %+v", r)
					}
				}
			}
		}
	})
}

func FuzzDetect(f *testing.F) {
	for _, s := range []string{seedOSV, seedKEV, seedNVD, seedSecdb, seedEPSS, "PK\x03\x04", sqliteMagic, "\x1f\x8b\x08", "{", "[]", `{"vulnerabilities":[{"x":1,"cveID":"C"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		f1, gz1, err1 := sniff(bytes.NewReader(data))
		f2, gz2, err2 := sniff(bytes.NewReader(data))
		if f1 != f2 || gz1 != gz2 || (err1 == nil) != (err2 == nil) {
			t.Fatal("sniff is not deterministic")
		}
		if err1 == nil && f1 == formatUnknown {
			t.Fatal("unknown format without an error")
		}
		if err1 != nil && f1 != formatUnknown {
			t.Fatalf("format %v with error %v", f1, err1)
		}
	})
}

// TestDetect recognises each real file and a few hand-made ones.
func TestDetect(t *testing.T) {
	d := sharedData(t)
	for _, tt := range []struct {
		path string
		want format
	}{
		{"osv/Go/all.zip", formatOSVZip},
		{"debian-derived/all.zip", formatOSVZip},
		{"kev/known_exploited_vulnerabilities.json", formatKEV},
		{"nvd/nvdcve-2.0-subset.json", formatNVD},
		{"nvd/fkie-cad-per-cve/CVE-2020/CVE-2020-06xx/CVE-2020-0601.json", formatNVD},
		{"alpine-secdb/v3.11/main.json", formatSecdb},
		{"alpine-secdb/v3.3/community.json", formatSecdb},
	} {
		got, gz, err := detectFile(filepath.Join(d, tt.path))
		if got != tt.want || gz || err != nil {
			t.Errorf("detect(%s) = %v, %v, %v; want %v", tt.path, got, gz, err, tt.want)
		}
	}
	for _, tt := range []struct {
		name string
		data string
		want format
	}{
		{"osv record", seedOSV, formatOSV},
		{"nvd wrapped", `{"cve":{"id":"CVE-2020-0001"}}`, formatNVD},
		{"kev keys last", `{"vulnerabilities":[{"cveID":"CVE-2020-0001"}],"count":1}`, formatKEV},
		{"nvd keys last", `{"vulnerabilities":[{"cve":{}}]}`, formatNVD},
		{"epss", seedEPSS, formatEPSS},
		{"epss no comment", "cve,epss,percentile\n", formatEPSS},
		{"yaml", "distroversion: v3.3\n", formatUnknown},
		{"array", "[1,2]", formatUnknown},
		{"empty", "", formatUnknown},
		{"other sqlite", sqliteMagic + strings.Repeat("\x00", 100), formatUnknown},
	} {
		got, _, err := sniff(strings.NewReader(tt.data))
		if got != tt.want || (tt.want == formatUnknown) != (err != nil) {
			t.Errorf("%s: sniff = %v, %v; want %v", tt.name, got, err, tt.want)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for _, tt := range []struct{ eco, in, want string }{
		{"PyPI", "Django", "django"},
		{"PyPI", "jw.util", "jw-util"},
		{"PyPI", "Foo__Bar-.-baz", "foo-bar-baz"},
		{"PyPI", "_private_", "-private-"},
		{"PyPI", "already-normal", "already-normal"},
		{"Go", "github.com/Foo/Bar_baz", "github.com/Foo/Bar_baz"},
		{"npm", "@Scope/Pkg.js", "@Scope/Pkg.js"},
		{"Debian:12", "libssl3", "libssl3"},
	} {
		if got := NormalizeName(tt.eco, tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q, %q) = %q, want %q", tt.eco, tt.in, got, tt.want)
		}
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("VIGIL_DB", "/tmp/explicit.sqlite")
	t.Setenv("XDG_CACHE_HOME", "/xdg")
	if got := DefaultPath(); got != "/tmp/explicit.sqlite" {
		t.Errorf("with VIGIL_DB: %s", got)
	}
	t.Setenv("VIGIL_DB", "")
	if got := DefaultPath(); got != "/xdg/vigil/vulndb.sqlite" {
		t.Errorf("with XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "relative/ignored")
	t.Setenv("HOME", "/home/u")
	if got := DefaultPath(); got != "/home/u/.cache/vigil/vulndb.sqlite" {
		t.Errorf("default: %s", got)
	}
}

func TestSecfixID(t *testing.T) {
	for _, tt := range []struct {
		in, key, others string
		ok              bool
	}{
		{"CVE-2019-14904", "CVE-2019-14904", "", true},
		{"CVE-2016-10013 XSA-204", "CVE-2016-10013", "XSA-204", true},
		{"CVE 2018-16859", "CVE-2018-16859", "", true},
		{"CVE_2019-2426", "CVE-2019-2426", "", true},
		{"CVE-2017-8073.patch", "CVE-2017-8073", "", true},
		{"CVE-2017-17434-1", "CVE-2017-17434", "", true},
		{"CVE-????-?????  XSA-284", "XSA-284", "", true},
		{"wnpa-sec-2017-18", "wnpa-sec-2017-18", "", true},
		{"junk", "", "", false},
		{"", "", "", false},
	} {
		key, others, ok := secfixID(tt.in)
		if key != tt.key || strings.Join(others, ",") != tt.others || ok != tt.ok {
			t.Errorf("secfixID(%q) = %q, %q, %v; want %q, %q, %v", tt.in, key, others, ok, tt.key, tt.others, tt.ok)
		}
	}
}

func TestLRU(t *testing.T) {
	c := newLRU[string, int](4)
	c.add("a", 1, 1)
	c.add("b", 2, 2)
	c.get("a")
	c.add("c", 3, 0) // costs 1: total 4, nothing evicted
	if c.len() != 3 {
		t.Fatalf("len %d, want 3", c.len())
	}
	c.add("d", 4, 1) // total 5: evicts b, the least recently used
	if _, ok := c.get("b"); ok {
		t.Error("b was not evicted")
	}
	if v, ok := c.get("a"); !ok || v != 1 || c.len() != 3 {
		t.Errorf("a = %v, %v; len %d", v, ok, c.len())
	}
	c.add("huge", 5, 10) // more than the whole cache: not kept
	if _, ok := c.get("huge"); ok || c.len() != 3 {
		t.Errorf("an entry larger than the cache was kept (len %d)", c.len())
	}
	c.add("a", 6, 3) // replacing a re-counts its cost: total 3+1+1 = 5 evicts c
	if v, _ := c.get("a"); v != 6 || c.len() != 2 {
		t.Errorf("a = %v, len %d after replacing it", v, c.len())
	}
}
