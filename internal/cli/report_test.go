package cli

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/frameworks"
	"github.com/vigil-cwpp/vigil/internal/server"
	"github.com/vigil-cwpp/vigil/internal/store"
)

func writeJSONFile(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func dockerRun() compliance.Report {
	return compliance.Report{Benchmark: compliance.BenchDocker, Host: "node1", Time: time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC),
		Results: []compliance.Result{
			{Benchmark: compliance.BenchDocker, ID: "5.4", Title: "Ensure that privileged containers are not used", Status: compliance.Fail,
				Target: "web (0123abcd)", Evidence: "HostConfig.Privileged=true", Remediation: "Do not run containers with --privileged."},
			{Benchmark: compliance.BenchDocker, ID: "2.1", Title: "icc", Status: compliance.Pass, Evidence: "icc=false"},
		}}
}

func reportRequirement(t *testing.T, rep *frameworks.Report, id string) frameworks.Requirement {
	t.Helper()
	for _, r := range rep.Requirements {
		if r.ID == id {
			return r
		}
	}
	t.Fatalf("no requirement %s in %s", id, rep.Framework)
	return frameworks.Requirement{}
}

// TestReportComplianceFiles is the "done when": a PCI DSS report
// an auditor can read, from a `vigil bench docker` run that flags a
// privileged container.
func TestReportComplianceFiles(t *testing.T) {
	dir := t.TempDir()
	bench := writeJSONFile(t, dir, "docker.json", dockerRun())
	alerts := filepath.Join(dir, "alerts.jsonl")
	os.WriteFile(alerts, []byte(`{"time":"2026-11-30T07:01:00Z","rule":"Terminal shell in container","priority":"Notice","source":"syscall","mitre_tactics":["TA0002 Execution"],"output":"shell in web","count":1}`+"\n"), 0o644)
	out := filepath.Join(dir, "pci.json")
	code, _, stderr := run(t, "report", "compliance", "--framework", "pci-dss", "--bench", bench, "--alerts", alerts, "-f", "json", "-o", out)
	if code != ExitClean {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "PCI DSS v4.0") || !strings.Contains(stderr, "not met") {
		t.Errorf("stderr %q", stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rep frameworks.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	r := reportRequirement(t, &rep, "2.2.6")
	if r.Status != frameworks.NotMet || r.Items[0].Evidence != "HostConfig.Privileged=true" {
		t.Errorf("2.2.6 = %s %+v, want not met by the privileged container", r.Status, r.Items)
	}
	if r := reportRequirement(t, &rep, "11.5.1"); r.Status != frameworks.Met {
		t.Errorf("11.5.1 = %s, want met (alerts given)", r.Status)
	}

	html := filepath.Join(dir, "pci.html")
	if code, _, stderr := run(t, "report", "compliance", "--framework", "pci-dss", "--bench", bench, "-o", html); code != ExitClean {
		t.Fatalf("html: exit %d: %s", code, stderr)
	}
	h, _ := os.ReadFile(html)
	if !bytes.HasPrefix(h, []byte("<!DOCTYPE html>")) || !bytes.Contains(h, []byte("HostConfig.Privileged=true")) || bytes.Contains(h, []byte("<script")) {
		t.Errorf("html report: %.300s", h)
	}
}

func TestReportComplianceBadInput(t *testing.T) {
	dir := t.TempDir()
	bench := writeJSONFile(t, dir, "docker.json", dockerRun())
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"benchmark":"cis-docker","results":[{"id":"1","status":"great"}]}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--framework", "sox", "--bench", bench}, `unknown framework "sox"`},
		{[]string{"--bench", bench}, "--framework is required"},
		{[]string{"--framework", "hipaa"}, "no evidence"},
		{[]string{"--framework", "hipaa", "--bench", filepath.Join(dir, "missing.json")}, "missing.json"},
		{[]string{"--framework", "hipaa", "--bench", bad}, `status "great"`},
		{[]string{"--framework", "hipaa", "--scan", bench}, "want vigil.scan/v1"},
		{[]string{"--framework", "hipaa", "--bench", bench, "-f", "pdf"}, `--format "pdf"`},
		{[]string{"--framework", "hipaa", "--from-server", "https://127.0.0.1:1", "--report-token", ""}, "--report-token"},
	} {
		code, _, stderr := run(t, append([]string{"report", "compliance"}, c.args...)...)
		if code != ExitError || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 naming %q", c.args, code, stderr, c.want)
		}
	}
}

// TestReportComplianceServer sends a benchmark run to a real server with
// --report-to, then builds the report from that server with --from-server.
func TestReportComplianceServer(t *testing.T) {
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := server.New(server.Options{Store: st, Argon2: server.Argon2Params{Memory: 1024, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	pw, _, err := srv.Bootstrap(t.Context(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	token := apiToken(t, ts, pw)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644)
	bench := writeJSONFile(t, dir, "docker.json", dockerRun())

	code, _, stderr := run(t, "report", "compliance", "--framework", "nist-800-53", "--bench", bench, "-f", "json", "-o", filepath.Join(dir, "local.json"),
		"--report-to", ts.URL, "--report-token", token, "--report-ca", ca)
	if code != ExitClean || !strings.Contains(stderr, "stored 2") {
		t.Fatalf("--report-to: exit %d: %s", code, stderr)
	}
	out := filepath.Join(dir, "server.json")
	code, _, stderr = run(t, "report", "compliance", "--framework", "fedramp-moderate", "--from-server", ts.URL, "--report-token", token, "--report-ca", ca, "-f", "json", "-o", out)
	if code != ExitClean {
		t.Fatalf("--from-server: exit %d: %s", code, stderr)
	}
	b, _ := os.ReadFile(out)
	var rep frameworks.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	r := reportRequirement(t, &rep, "AC-6")
	if r.Status != frameworks.NotMet || r.Items[0].Key != "cis-docker:5.4" || r.Items[0].Target != "web (0123abcd)" {
		t.Errorf("AC-6 from the server = %s %+v", r.Status, r.Items)
	}
	if r := reportRequirement(t, &rep, "AU-2"); r.Status != frameworks.Met {
		t.Errorf("AU-2 = %s %+v, want met by the server's audit log (admin token)", r.Status, r.Items)
	}
}

// apiToken logs in as admin and creates an admin API token.
func apiToken(t *testing.T, ts *httptest.Server, pw string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := ts.Client()
	hc.Jar = jar
	post := func(path string, body any, hdr map[string]string, out any) {
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", ts.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("POST %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	var lr struct {
		CSRF string `json:"csrf"`
	}
	post("/api/v1/login", map[string]string{"username": "admin", "password": pw}, nil, &lr)
	var tr struct {
		Token string `json:"token"`
	}
	post("/api/v1/tokens", map[string]string{"name": "report", "role": "admin"}, map[string]string{"X-Vigil-CSRF": lr.CSRF}, &tr)
	return tr.Token
}
