package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestUpDoneWhen is the platform's "done when": `vigil up` brings up the
// server, the console and this host's agent; a container doing something
// malicious (reads /etc/shadow) shows up within seconds as an alert with
// its process tree; an analyst opens it in the console (Debian's Chromium,
// driven by chromedp), freezes the container and undoes it; the same alert
// reaches a real rsyslogd as CEF and a file as OCSF.
func TestUpDoneWhen(t *testing.T) {
	vigiltest.RequireRoot(t)
	vigiltest.RequireDocker(t)
	image := vigiltest.RequireBookwormImage(t)
	syslog := startRsyslog(t)
	bin := buildVigil(t)

	dir := t.TempDir()
	ocsf := filepath.Join(dir, "alerts.ocsf.jsonl")
	up := startUp(t, bin, dir,
		"--no-scan",
		"--export", fmt.Sprintf("syslog+tcp://127.0.0.1:%d?format=cef", syslog.port),
		"--export", "ocsf-file:"+ocsf,
		"--agent-arg=--no-profiles", "--agent-arg=--control-socket=")
	api := up.login(t)

	// The local agent enrolls and connects.
	var agentID string
	waitFor(t, 60*time.Second, "the local agent to connect", func() bool {
		var out struct {
			Agents []struct {
				ID        string `json:"id"`
				Connected bool   `json:"connected"`
			} `json:"agents"`
		}
		api.get(t, "/api/v1/agents", &out)
		for _, a := range out.Agents {
			if a.Connected {
				agentID = a.ID
				return true
			}
		}
		return false
	})
	name := fmt.Sprintf("vigil-e2e-%d", time.Now().UnixNano())
	cid := strings.TrimSpace(vigiltest.Run(t, "", "docker", "run", "-d", "--rm", "--network", "none", "--name", name, image, "sleep", "infinity"))
	t.Cleanup(func() {
		exec.Command("docker", "rm", "-f", cid).Run()
	})

	// The malicious act: read /etc/shadow from a shell in the container.
	// The agent attaches its sensor once it is connected; until it has, a
	// read goes unseen, so the read is repeated until an alert arrives.
	const rule = "Read sensitive file untrusted"
	var found store.Alert
	var acted time.Time
	waitFor(t, 90*time.Second, "the alert in the server", func() bool {
		acted = time.Now()
		vigiltest.Run(t, "", "docker", "exec", name, "cat", "/etc/shadow")
		for time.Since(acted) < 5*time.Second {
			var out struct {
				Alerts []store.Alert `json:"alerts"`
			}
			api.get(t, "/api/v1/alerts?since=10m&workload="+cid[:12]+"&rule="+url.QueryEscape(rule), &out)
			if len(out.Alerts) > 0 {
				found = out.Alerts[0]
				return true
			}
			time.Sleep(100 * time.Millisecond)
		}
		return false
	})
	t.Logf("alert %s stored %s after the read", found.ID, time.Since(acted).Round(time.Millisecond))
	var detail store.Alert
	api.get(t, "/api/v1/alerts/"+found.ID, &detail)
	if detail.ContainerID != cid || detail.AgentID != agentID {
		t.Errorf("alert workload: container %q agent %q, want %q %q", detail.ContainerID, detail.AgentID, cid, agentID)
	}
	var raw alert.Alert
	if err := json.Unmarshal(detail.Raw, &raw); err != nil || raw.Event == nil {
		t.Fatalf("alert raw event: %v (%s)", err, detail.Raw)
	}
	if raw.Event.Process.Name != "cat" || raw.Event.Parent == nil {
		t.Errorf("process tree: process %q parent %+v", raw.Event.Process.Name, raw.Event.Parent)
	}

	// An analyst opens the alert in the console, sees its process tree and
	// freezes the container; then undoes it.
	b := newBrowser(t, up.url)
	b.login(up.admin, up.password)
	b.open("/alerts/"+found.ID, `[data-testid="process-tree"]`)
	b.waitText(`[data-testid="process-tree"]`, "cat /etc/shadow")
	b.waitText(`[data-testid="wl-container-id"]`, cid)
	b.click("#respond-freeze", "#confirm-dialog")
	b.click("#confirm-yes", "")
	b.waitText("#response-result", "freeze: done")
	if st := freezerState(t, cid); st != "FROZEN" {
		t.Errorf("after Freeze in the console the container's freezer is %q", st)
	}
	b.waitText(`[data-testid="responses-table"]`, "freeze")
	b.click(`[data-testid="responses-table"] button.undo`, "#confirm-dialog")
	b.click("#confirm-yes", "")
	b.waitText("#response-result", "unfreeze: done")
	if st := freezerState(t, cid); st != "THAWED" {
		t.Errorf("after Undo in the console the container's freezer is %q", st)
	}

	// The same alert reached the syslog receiver as CEF and the OCSF file.
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(syslog.out)
			t.Logf("rsyslog received:\n%s", tail(b, 4096))
			b, _ = os.ReadFile(ocsf)
			t.Logf("OCSF file:\n%s", tail(b, 4096))
		}
	}()
	waitFor(t, 20*time.Second, "the CEF line in rsyslog", func() bool {
		b, _ := os.ReadFile(syslog.out)
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "CEF:0|") && strings.Contains(l, "|"+rule+"|") && strings.Contains(l, "externalId="+found.ID+" ") &&
				strings.Contains(l, "cs2="+name+" ") {
				return true
			}
		}
		return false
	})
	waitFor(t, 20*time.Second, "the OCSF Detection Finding", func() bool {
		f, err := os.Open(ocsf)
		if err != nil {
			return false
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			var d struct {
				ClassUID    int `json:"class_uid"`
				FindingInfo struct {
					UID   string `json:"uid"`
					Title string `json:"title"`
				} `json:"finding_info"`
			}
			if json.Unmarshal(sc.Bytes(), &d) == nil && d.ClassUID == 2004 && d.FindingInfo.UID == found.ID &&
				strings.Contains(d.FindingInfo.Title, rule) && strings.Contains(sc.Text(), cid) {
				return true
			}
		}
		return false
	})
}

// TestUpFirstScan: `vigil up` scans the local Docker images and runs the
// CIS Linux and Docker benchmarks, and reports each into its server.
func TestUpFirstScan(t *testing.T) {
	vigiltest.RequireRoot(t)
	vigiltest.RequireDocker(t)
	image := vigiltest.RequireBookwormImage(t)
	bin := buildVigil(t)
	up := startUp(t, bin, t.TempDir(), "--no-agent", "--db", filepath.Join(t.TempDir(), "none.sqlite"))
	api := up.login(t)
	waitFor(t, 120*time.Second, "the scan of "+image, func() bool {
		var out struct {
			Scans []store.Scan `json:"scans"`
		}
		api.get(t, "/api/v1/scans", &out)
		for _, s := range out.Scans {
			if strings.Contains(s.Target, image) && s.Summary.Packages > 50 {
				return true
			}
		}
		return false
	})
	waitFor(t, 120*time.Second, "the CIS benchmarks of the host", func() bool {
		var out struct {
			Results []store.ComplianceResult `json:"results"`
		}
		api.get(t, "/api/v1/compliance?limit=1000", &out)
		n := map[string]int{}
		for _, r := range out.Results {
			n[r.Benchmark]++
		}
		// Every check of both benchmarks has a result: the CIS Debian
		// benchmark has over 100 checks, CIS Docker over 60 host and
		// daemon checks (more with containers running).
		return n["cis-debian-12"] >= 100 && n["cis-docker"] >= 40
	})
}

var buildOnce struct {
	sync.Once
	bin string
	err error
}

// buildVigil builds the vigil binary once per test run.
func buildVigil(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "vigil-e2e-bin")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.bin = filepath.Join(dir, "vigil")
		out, err := exec.Command("go", "build", "-o", buildOnce.bin, "github.com/vigil-cwpp/vigil/cmd/vigil").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.bin
}

// upProcess is a running `vigil up`.
type upProcess struct {
	state       string
	url         string
	fingerprint string
	admin       string
	password    string
}

var (
	reURL  = regexp.MustCompile(`console and API\s+(https://\S+)`)
	reFP   = regexp.MustCompile(`CA fingerprint\s+(\S+)`)
	rePass = regexp.MustCompile(`first admin\s+user "([^"]+)" password "([^"]+)"`)
)

func startUp(t *testing.T, bin, dir string, args ...string) *upProcess {
	t.Helper()
	p := &upProcess{state: filepath.Join(dir, "server")}
	args = append([]string{"up", "--listen", "127.0.0.1:0", "--agent-listen", "127.0.0.1:0",
		"--state-dir", p.state, "--agent-state-dir", filepath.Join(dir, "agent")}, args...)
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("vigil up stderr:\n%s", stderr.String())
			if b, err := os.ReadFile(filepath.Join(p.state, "agent.log")); err == nil {
				t.Logf("agent log (last 4 KB):\n%s", tail(b, 4096))
			}
		}
	})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for p.url == "" || p.fingerprint == "" || p.password == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("vigil up exited before printing its address and first password; stderr:\n%s", stderr.String())
			}
			if m := reURL.FindStringSubmatch(l); m != nil {
				p.url = m[1]
			}
			if m := reFP.FindStringSubmatch(l); m != nil {
				p.fingerprint = m[1]
			}
			if m := rePass.FindStringSubmatch(l); m != nil {
				p.admin, p.password = m[1], m[2]
			}
		case <-deadline:
			t.Fatalf("vigil up printed no address or password in 60s; stderr:\n%s", stderr.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return p
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// apiClient is a logged-in console session.
type apiClient struct {
	base string
	c    *http.Client
	csrf string
}

func (p *upProcess) login(t *testing.T) *apiClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = pki.PinnedTLS(p.fingerprint)
	a := &apiClient{base: p.url, c: &http.Client{Transport: tr, Jar: jar, Timeout: 60 * time.Second}}
	var out struct {
		CSRF string `json:"csrf"`
	}
	a.post(t, "/api/v1/login", map[string]string{"username": p.admin, "password": p.password}, &out)
	a.csrf = out.CSRF
	return a
}

func (a *apiClient) get(t *testing.T, path string, out any) {
	t.Helper()
	a.do(t, http.MethodGet, path, nil, out)
}

func (a *apiClient) post(t *testing.T, path string, body, out any) {
	t.Helper()
	a.do(t, http.MethodPost, path, body, out)
}

func (a *apiClient) do(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.csrf != "" {
		req.Header.Set("X-Vigil-CSRF", a.csrf)
	}
	resp, err := a.c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freezerState reads the container's cgroup v1 freezer state.
func freezerState(t *testing.T, cid string) string {
	t.Helper()
	for _, p := range []string{"/sys/fs/cgroup/freezer/docker/" + cid + "/freezer.state",
		"/sys/fs/cgroup/freezer/system.slice/docker-" + cid + ".scope/freezer.state"} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	// cgroup v2: cgroup.freeze
	for _, p := range []string{"/sys/fs/cgroup/system.slice/docker-" + cid + ".scope/cgroup.freeze"} {
		if b, err := os.ReadFile(p); err == nil {
			if strings.TrimSpace(string(b)) == "1" {
				return "FROZEN"
			}
			return "THAWED"
		}
	}
	t.Fatalf("no freezer state found for container %s", cid)
	return ""
}
