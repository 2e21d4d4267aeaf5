package frameworks

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/rules"
)

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func benchReport(results ...compliance.Result) compliance.Report {
	return compliance.Report{Benchmark: compliance.BenchDocker, Host: "node1", Time: t0, Results: results}
}

func req(t *testing.T, r *Report, id string) *Requirement {
	t.Helper()
	for i := range r.Requirements {
		if r.Requirements[i].ID == id {
			return &r.Requirements[i]
		}
	}
	t.Fatalf("%s: no requirement %s", r.Framework, id)
	return nil
}

func TestScoreAllPass(t *testing.T) {
	ev := &Evidence{Bench: []compliance.Report{benchReport(
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.4", Title: "privileged", Status: compliance.Pass, Evidence: "Privileged=false"},
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.10", Title: "memory", Status: compliance.Pass, Evidence: "Memory=512m"},
	)}}
	rep, err := Default().Score(NIST, ev, Options{Host: "h", Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	r := req(t, rep, "AC-6")
	if r.Status != Met || r.Passed != 2 || r.Evaluated != 2 || r.Score != 1 {
		t.Errorf("AC-6 = %s %d/%d score %v, want met 2/2 1.0", r.Status, r.Passed, r.Evaluated, r.Score)
	}
	if got := req(t, rep, "RA-5").Status; got != NoEvidence {
		t.Errorf("RA-5 = %s, want no-evidence (no scan given)", got)
	}
	if rep.Summary.NotMet != 0 || rep.Summary.Met == 0 || rep.Summary.Score != 1 {
		t.Errorf("summary = %+v, want all requirements with evidence met", rep.Summary)
	}
}

func TestScoreOneFailing(t *testing.T) {
	ev := &Evidence{Bench: []compliance.Report{benchReport(
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.4", Title: "Ensure privileged containers are not used", Status: compliance.Fail,
			Target: "web (abc123)", Evidence: "HostConfig.Privileged=true", Remediation: "do not run --privileged"},
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.10", Title: "memory", Status: compliance.Pass},
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.11", Title: "cpu", Status: compliance.Manual},
		compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.12", Title: "ro", Status: compliance.Error, Error: "inspect: no such container"},
	)}}
	for _, tc := range []struct{ fw, id string }{{NIST, "AC-6"}, {FedRAMP, "AC-6"}, {PCI, "2.2.6"}, {HIPAA, "164.312(a)(1)"}, {CISv8, "5.4"}} {
		rep, err := Default().Score(tc.fw, ev, Options{Host: "h", Time: t0})
		if err != nil {
			t.Fatal(err)
		}
		r := req(t, rep, tc.id)
		if r.Status != NotMet || r.Passed != 1 || r.Evaluated != 2 {
			t.Errorf("%s %s = %s %d/%d, want not-met 1/2", tc.fw, tc.id, r.Status, r.Passed, r.Evaluated)
			continue
		}
		first := r.Items[0]
		if first.Key != "cis-docker:5.4" || first.Status != compliance.Fail || first.Evidence != "HostConfig.Privileged=true" || first.Target != "web (abc123)" {
			t.Errorf("%s %s: first item %+v, want the failing 5.4 with its evidence", tc.fw, tc.id, first)
		}
		if len(r.Items) != 4 || r.Items[1].Status != compliance.Error || !strings.Contains(r.Items[1].Evidence, "no such container") || r.Items[2].Status != compliance.Manual {
			t.Errorf("%s %s: items %+v, want manual and error listed too", tc.fw, tc.id, r.Items)
		}
	}
}

func TestScoreAlertsScansFIM(t *testing.T) {
	ev := &Evidence{
		AlertsGiven: true,
		Alerts: []Alert{
			{Time: t0, Host: "node1", Rule: "Terminal shell in container", Priority: "Notice", Source: "syscall",
				Tactics: []string{"TA0002 Execution"}, Output: "shell in web", Count: 2, Responses: []string{"freeze: done"}},
			{Time: t0.Add(time.Minute), Host: "node1", Rule: "Terminal shell in container", Tactics: []string{"TA0002 Execution"}, Count: 1},
			{Time: t0, Host: "node1", Rule: "File integrity: etc", Source: "fim", Output: "/etc/passwd modified by vi", Count: 1},
		},
		Scans: []Scan{{Target: "nginx:1", Critical: 1, High: 2, KEV: 1, Total: 5}, {Target: "app:2", Total: 0}},
		FIM:   []FIMRun{{Host: "node1", Tampered: true}},
	}
	c := Default()
	rep, err := c.Score(PCI, ev, Options{Host: "h", Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	// The shell alert counts against 2.2.4 (via its rule and TA0002).
	r := req(t, rep, "2.2.4")
	var shell *Item
	for i := range r.Items {
		if r.Items[i].Key == "rule:Terminal shell in container" {
			shell = &r.Items[i]
		}
	}
	if r.Status != NotMet || shell == nil || shell.Count != 3 || !strings.Contains(shell.Evidence, "shell in web") {
		t.Errorf("2.2.4 = %s %+v, want not-met with the shell alert (3×)", r.Status, r.Items)
	}
	// 11.5.2: the tampered FIM baseline fails it; the FIM alert is a change to review.
	r = req(t, rep, "11.5.2")
	if r.Status != NotMet || r.Items[0].Kind != "fim" {
		t.Errorf("11.5.2 = %s %+v, want not-met led by the tampered baseline", r.Status, r.Items)
	}
	// 6.3.3: one scan fails (critical + KEV), one passes.
	r = req(t, rep, "6.3.3")
	if r.Status != NotMet || r.Passed != 2 || r.Evaluated != 4 {
		t.Errorf("6.3.3 = %s %d/%d, want not-met 2/4", r.Status, r.Passed, r.Evaluated)
	}
	// Monitoring and response are evidence for 11.5.1 and 12.10.5.
	if r := req(t, rep, "11.5.1"); r.Status != Met {
		t.Errorf("11.5.1 = %s %+v, want met (runtime detection reporting)", r.Status, r.Items)
	}
	if r := req(t, rep, "12.10.1"); r.Status != Met || !strings.Contains(r.Items[0].Evidence, "freeze: done") {
		t.Errorf("12.10.1 = %s %+v, want met by the response taken", r.Status, r.Items)
	}
	// FedRAMP through NIST: SI-7 not met, RA-5 not met.
	fed, _ := c.Score(FedRAMP, ev, Options{Host: "h", Time: t0})
	for _, id := range []string{"SI-7", "RA-5", "CM-7"} {
		if r := req(t, fed, id); r.Status != NotMet {
			t.Errorf("FedRAMP %s = %s, want not-met", id, r.Status)
		}
	}
	// An unknown rule shows up as unmapped evidence.
	ev.Alerts = append(ev.Alerts, Alert{Rule: "My custom rule", Count: 1})
	rep, _ = c.Score(PCI, ev, Options{Host: "h", Time: t0})
	if len(rep.Unmapped) != 1 || rep.Unmapped[0] != "rule:My custom rule" {
		t.Errorf("unmapped = %v, want [rule:My custom rule]", rep.Unmapped)
	}
}

func TestScoreFIMChangesPartial(t *testing.T) {
	rep, err := Default().Score(HIPAA, &Evidence{FIM: []FIMRun{{Host: "n", Changed: 2, Sample: []string{"/etc/hosts"}}}}, Options{Time: t0})
	if err != nil {
		t.Fatal(err)
	}
	if r := req(t, rep, "164.312(c)(1)"); r.Status != Partial || !strings.Contains(r.Items[0].Evidence, "/etc/hosts") {
		t.Errorf("164.312(c)(1) = %s %+v, want partial naming /etc/hosts", r.Status, r.Items)
	}
}

func TestUnknownFramework(t *testing.T) {
	_, err := Default().Score("sox", &Evidence{}, Options{})
	if err == nil || !strings.Contains(err.Error(), `unknown framework "sox"`) {
		t.Fatalf("err = %v", err)
	}
}

// TestBuiltinRulesMapped: every built-in runtime rule is mapped by name
// (so a new rule cannot land unreviewed), and every rule the mapping names
// exists.
func TestBuiltinRulesMapped(t *testing.T) {
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	c := Default()
	names := map[string]bool{}
	for _, r := range rs.Rules() {
		names[r.Name] = true
		if len(c.Lookup(KeyRule+r.Name)) == 0 {
			t.Errorf("built-in rule %q: no mapping by name in mappings.yaml", r.Name)
		}
		for _, ta := range r.MITRE.Tactics {
			id, _, _ := strings.Cut(ta, " ")
			if len(c.Lookup(KeyTactic+id)) == 0 {
				t.Errorf("rule %q: tactic %s has no mapping", r.Name, ta)
			}
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d built-in rules loaded", len(names))
	}
	for _, m := range c.Mappings {
		for _, k := range m.Match {
			if n, ok := strings.CutPrefix(k, KeyRule); ok && !names[n] {
				t.Errorf("mapping %s names rule %q, which is not a built-in rule", m.ID, n)
			}
		}
	}
}

func TestHTMLSelfContainedAndEscaped(t *testing.T) {
	hostile := `<script>alert("x")</script><img src=x onerror=alert(1)>`
	ev := &Evidence{
		Sources: []string{"bench.json"},
		Bench: []compliance.Report{benchReport(compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.4", Title: hostile,
			Status: compliance.Fail, Target: hostile, Evidence: hostile, Remediation: hostile})},
		AlertsGiven: true,
		Alerts:      []Alert{{Rule: "Terminal shell in container", Output: hostile, Count: 1, Time: t0}},
	}
	for _, fw := range Names {
		rep, err := Default().Score(fw, ev, Options{Host: "auditor-box", Time: t0, Tool: "vigil test"})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := WriteHTML(&b, rep); err != nil {
			t.Fatal(err)
		}
		s := b.String()
		if strings.Contains(s, "<script") || strings.Contains(s, "<img") {
			t.Fatalf("%s: hostile evidence rendered as markup", fw)
		}
		if !strings.Contains(s, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
			t.Errorf("%s: escaped evidence text missing", fw)
		}
		if regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).MatchString(s) || strings.Contains(s, "@import") || strings.Contains(s, "url(") {
			t.Errorf("%s: the page refers to an external asset", fw)
		}
		for _, want := range []string{rep.FrameworkName, "auditor-box", "2026-11-30 08:00:00 UTC", "Vigil judgement", "Not met"} {
			if !strings.Contains(s, want) {
				t.Errorf("%s: page lacks %q", fw, want)
			}
		}
		checkWellFormed(t, fw, s)
	}
}

// checkWellFormed parses the page and checks that every element the
// template opens is closed in order (html.Parse alone forgives anything).
func checkWellFormed(t *testing.T, name, s string) {
	t.Helper()
	if _, err := html.Parse(strings.NewReader(s)); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	void := map[string]bool{"meta": true, "br": true, "img": true, "link": true, "hr": true, "input": true}
	z := html.NewTokenizer(strings.NewReader(s))
	var stack []string
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if len(stack) != 0 {
				t.Fatalf("%s: unclosed elements %v", name, stack)
			}
			return
		case html.StartTagToken:
			n, _ := z.TagName()
			if !void[string(n)] {
				stack = append(stack, string(n))
			}
		case html.EndTagToken:
			n, _ := z.TagName()
			if len(stack) == 0 || stack[len(stack)-1] != string(n) {
				t.Fatalf("%s: </%s> closes %v", name, n, stack)
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func TestJSONReport(t *testing.T) {
	ev := &Evidence{Bench: []compliance.Report{benchReport(compliance.Result{Benchmark: compliance.BenchDocker, ID: "5.4", Title: "p", Status: compliance.Fail, Evidence: "Privileged=true"})}}
	rep, _ := Default().Score(CISv8, ev, Options{Host: "h", Time: t0})
	var b bytes.Buffer
	if err := WriteJSON(&b, rep); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != ReportSchema || back.Framework != CISv8 || req(t, &back, "5.4").Status != NotMet || req(t, &back, "5.4").Items[0].Evidence != "Privileged=true" {
		t.Errorf("round trip lost data: %s", b.String()[:min(400, b.Len())])
	}
}

// benchEvidence is a realistic load: 300 check results across the three
// benchmarks (half failing), 2000 alerts of 40 rules, 50 scans.
func benchEvidence() *Evidence {
	ev := &Evidence{AlertsGiven: true}
	ids := []string{"1.1.1.1", "2.1.3", "3.3.1", "5.1.20", "6.1.1", "6.3.1.2", "7.1.5"}
	var dr, dk compliance.Report
	dr.Benchmark, dk.Benchmark = compliance.BenchLinux, compliance.BenchDocker
	for i := 0; i < 150; i++ {
		st := compliance.Pass
		if i%2 == 0 {
			st = compliance.Fail
		}
		dr.Results = append(dr.Results, compliance.Result{Benchmark: dr.Benchmark, ID: ids[i%len(ids)], Status: st, Evidence: "seen"})
		dk.Results = append(dk.Results, compliance.Result{Benchmark: dk.Benchmark, ID: "5." + string(rune('1'+i%9)), Status: st, Target: "c", Evidence: "seen"})
	}
	ev.Bench = []compliance.Report{dr, dk}
	rs, _ := rules.Default()
	names := rs.Rules()
	for i := 0; i < 2000; i++ {
		r := names[i%len(names)]
		ev.Alerts = append(ev.Alerts, Alert{Time: t0.Add(time.Duration(i) * time.Second), Rule: r.Name, Tactics: r.MITRE.Tactics, Count: 1, Output: "x"})
	}
	for i := 0; i < 50; i++ {
		ev.Scans = append(ev.Scans, Scan{Target: "img", High: i % 3, KEV: i % 7 / 6})
	}
	return ev
}

func TestParseAlertsFormats(t *testing.T) {
	lines := `{"type":"event","event_type":"process_exec"}
{"type":"alert","time":"2026-11-30T07:00:00Z","rule":"Crypto-miner started","count":0}
`
	as, err := ParseAlerts([]byte(lines))
	if err != nil || len(as) != 1 || as[0].Rule != "Crypto-miner started" || as[0].Count != 1 {
		t.Fatalf("JSON lines: %+v %v", as, err)
	}
	page := `{"alerts":[{"id":"x","rule":"Log file deleted","count":4,"mitre_tactics":["TA0005 Defense Evasion"]}],"next":"x"}`
	as, err = ParseAlerts([]byte(page))
	if err != nil || len(as) != 1 || as[0].Count != 4 || as[0].Tactics[0] != "TA0005 Defense Evasion" {
		t.Fatalf("server page: %+v %v", as, err)
	}
	for _, bad := range []string{`{"time":"2026-11-30T07:00:00Z"}`, `[{"rule":5}]`, "{\"rule\":\"a\"}\nnot json"} {
		if _, err := ParseAlerts([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseFIMReport(t *testing.T) {
	// The shape `vigil fim check -f json` writes (internal/fim.Report).
	rep := `{"baseline":"2026-11-30T06:00:00Z","summary":{"entries":10,"added":1,"removed":0,"changed":1,"errors":0},
"added":[{"path":"/etc/new","type":"file","rule":"etc"}],"removed":[],"changed":[{"path":"/etc/passwd","type":"file","rule":"etc","changes":[{"attr":"sha256","old":"a","new":"b"}]}],"errors":[]}`
	run, err := ParseFIM([]byte(rep))
	if err != nil || run.Added != 1 || run.Changed != 1 || run.Removed != 0 || run.Tampered || len(run.Sample) != 2 || run.Sample[0] != "/etc/new" {
		t.Fatalf("%+v %v", run, err)
	}
	if _, err := ParseFIM([]byte(`{"benchmark":"cis-docker"}`)); err == nil {
		t.Error("a benchmark report was read as a FIM report")
	}
}
