package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/server"
	"github.com/vigil-cwpp/vigil/internal/store"
)

func benchRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(context.Background(), append([]string{"bench"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// benchRoot is a small host tree: sshd forbids root logins.
func benchRoot(t *testing.T) string {
	root := t.TempDir()
	for p, c := range map[string]string{
		"/etc/ssh/sshd_config": "PermitRootLogin no\n",
		"/etc/passwd":          "root:x:0:0::/root:/bin/bash\n",
		"/etc/group":           "root:x:0:\n",
	} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestBenchLinuxCLI(t *testing.T) {
	root, state := benchRoot(t), t.TempDir()

	code, out, errs := benchRun(t, "linux", "--root", root, "--state-dir", state, "-f", "json", "--fail-on", "fail")
	if code != ExitPolicy {
		t.Fatalf("exit %d, want %d (scored checks fail on a bare tree); stderr %s", code, ExitPolicy, errs)
	}
	var rep compliance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not a compliance.Report: %v\n%s", err, out)
	}
	if rep.Benchmark != compliance.BenchLinux || len(rep.Results) < 40 {
		t.Fatalf("benchmark %q with %d results", rep.Benchmark, len(rep.Results))
	}
	for _, r := range rep.Results {
		if r.ID == "5.1.20" && r.Status != compliance.Pass {
			t.Errorf("5.1.20 = %s %q, want pass", r.Status, r.Evidence)
		}
	}
	if runs, _ := compliance.Runs(state, compliance.BenchLinux); len(runs) != 1 {
		t.Fatalf("%d kept runs, want 1", len(runs))
	}

	// Regress: root logins allowed. --compare prints the drift.
	os.WriteFile(filepath.Join(root, "/etc/ssh/sshd_config"), []byte("PermitRootLogin yes\n"), 0o600)
	code, out, errs = benchRun(t, "linux", "--root", root, "--state-dir", state, "--compare")
	if code != ExitPartial && code != ExitClean {
		t.Fatalf("exit %d; stderr %s", code, errs)
	}
	if !strings.Contains(out, "1 regressed") || !strings.Contains(out, "regressed 5.1.20 pass→fail Ensure sshd PermitRootLogin is disabled") ||
		!strings.Contains(out, "seen: PermitRootLogin yes (/etc/ssh/sshd_config:1)") {
		t.Errorf("drift output:\n%s", out)
	}

	// The table without --compare: results, then the drift since the last run.
	code, out, _ = benchRun(t, "linux", "--root", root, "--state-dir", state, "--no-save")
	found := false
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == "5.1.20" {
			found = f[0] == "FAIL"
		}
	}
	if !found {
		t.Errorf("table lacks a FAIL line for 5.1.20:\n%s", out)
	}
	if !strings.Contains(out, "0 regressed") || code == ExitPolicy {
		t.Errorf("exit %d; table drift:\n%s", code, out)
	}
	if runs, _ := compliance.Runs(state, compliance.BenchLinux); len(runs) != 2 {
		t.Errorf("%d kept runs after --no-save, want 2", len(runs))
	}
	benchRun(t, "linux", "--root", root, "--state-dir", state, "--keep", "1")
	if runs, _ := compliance.Runs(state, compliance.BenchLinux); len(runs) != 1 {
		t.Errorf("%d kept runs after --keep 1, want 1", len(runs))
	}
}

func TestBenchBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"linux", "-f", "xml"},
		{"linux", "--fail-on", "sometimes"},
		{"linux", "--root", "/no/such/dir"},
		{"linux", "--report-to", "https://x", "--report-token", ""},
	} {
		if code, _, errs := benchRun(t, args...); code != ExitError || errs == "" {
			t.Errorf("%v: exit %d stderr %q, want %d with a message", args, code, errs, ExitError)
		}
	}
}

// TestBenchReportTo: --report-to POSTs the compliance.Report JSON to
// /api/v1/compliance with the token, trusting the CA given.
func TestBenchReportTo(t *testing.T) {
	var got compliance.Report
	var auth, path string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, auth = r.URL.Path, r.Header.Get("Authorization")
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &got); err != nil {
			http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"stored": 97}`)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)

	code, _, errs := benchRun(t, "linux", "--root", benchRoot(t), "--state-dir", t.TempDir(), "-f", "json",
		"--report-to", srv.URL, "--report-token", "tok", "--report-ca", ca)
	if code != ExitClean && code != ExitPartial {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if path != "/api/v1/compliance" || auth != "Bearer tok" {
		t.Errorf("posted to %q with %q", path, auth)
	}
	if got.Benchmark != compliance.BenchLinux || len(got.Results) < 40 || got.Summary.Pass+got.Summary.Fail+got.Summary.Error == 0 {
		t.Errorf("posted report: %s with %d results, summary %+v", got.Benchmark, len(got.Results), got.Summary)
	}
	if !strings.Contains(errs, "stored 97") {
		t.Errorf("stderr %q does not say what the server stored", errs)
	}
}

// TestBenchReportToServer sends a run to a real server (SQLite store) and
// checks every result was stored.
func TestBenchReportToServer(t *testing.T) {
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
	token := apiToken(t, ts, pw) // report_test.go
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600)

	code, out, errs := benchRun(t, "linux", "--root", benchRoot(t), "--state-dir", t.TempDir(), "-f", "json",
		"--report-to", ts.URL, "--report-token", token, "--report-ca", ca)
	if code != ExitClean && code != ExitPartial {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep compliance.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("stored %d", len(rep.Results)); !strings.Contains(errs, want) {
		t.Errorf("stderr %q, want %q", errs, want)
	}
}

// TestBenchUnwritableStateDir: a run that cannot be kept still prints its
// report, with a warning.
func TestBenchUnwritableStateDir(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o600)
	code, out, errs := benchRun(t, "linux", "--root", benchRoot(t), "--state-dir", f, "-f", "json")
	if code == ExitError || !strings.Contains(errs, "the run is not kept") || !strings.Contains(out, `"benchmark": "cis-debian-12"`) {
		t.Errorf("exit %d, stderr %q, stdout %d bytes", code, errs, len(out))
	}
}
