package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// The end-to-end detection and response scenarios of issue 5: the agent
// runs in-process with rules, profiles and a responder; real containers
// do what the scenario describes; the tests read the agent's output.
//
// Every container runs from its own tag of the bookworm image, so its
// workload class (the image repository) is the test's alone: enforcement
// is switched on for that class only, and other containers on the host
// (other tests, other engineers) are neither learned into its profile nor
// frozen or killed by it.

const minerRule = "Connection to a crypto-mining pool port"

// scRun is the agent running in-process with a detector and its control
// socket. Every alert is kept; events are kept only when their JSON line
// contains a watched string (a container ID, a marker), so a busy host does
// not fill memory.
type scRun struct {
	*agentRun
	det     *Detector
	socket  string
	watched []string // guarded by mu
}

// scStartAgent starts the agent with det and its control socket, and
// returns once the sensor is attached and the socket answers.
func scStartAgent(t *testing.T, det *Detector) *scRun {
	t.Helper()
	r := &scRun{det: det}
	dir, err := os.MkdirTemp("", "vigil-sc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the agent has stopped
	r.socket = filepath.Join(dir, "control.sock")
	r.agentRun = startAgentWith(t, func(a *agentRun, o *Options) {
		o.Detector, o.ControlSocket = det, r.socket
		o.Logger = slog.New(slog.DiscardHandler)
		a.keepLine = func(line []byte) bool {
			return slices.ContainsFunc(r.watched, func(s string) bool { return bytes.Contains(line, []byte(s)) })
		}
	})
	// Ready comes before the control socket listens.
	for deadline := time.Now().Add(20 * time.Second); ; {
		if resp, err := r.control().Get("http://vigil/v1/responses"); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control socket %s not answering after 20 s", r.socket)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	return r
}

// watch keeps the events whose JSON line contains s from now on.
func (r *scRun) watch(s string) {
	r.mu.Lock()
	r.watched = append(r.watched, s)
	r.mu.Unlock()
}

// control is an HTTP client of the agent's control socket, as `vigil
// profile` and `vigil response` use it.
func (r *scRun) control() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", r.socket)
		},
	}}
}

// call makes one control request and returns the body, failing t unless
// the status is want.
func (r *scRun) call(t *testing.T, method, path string, body io.Reader, want int) []byte {
	t.Helper()
	req, err := http.NewRequest(method, "http://vigil"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := r.control().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return b
}

// scImage tags the bookworm image under a name of this test's own and
// returns it with its workload class.
func scImage(t *testing.T, what string) (img, class string) {
	t.Helper()
	base := vigiltest.RequireBookwormImage(t)
	img = fmt.Sprintf("vigil-test/sc-%s:%d", what, time.Now().UnixNano())
	scDocker(t, "tag", base, img)
	t.Cleanup(func() { exec.Command("docker", "rmi", img).Run() })
	class = profile.ClassOf(&event.Workload{ContainerID: "x", Image: img})
	if class == "" {
		t.Fatalf("no workload class for image %s", img)
	}
	return img, class
}

// scDocker runs docker and returns its trimmed standard output.
func scDocker(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// scContainer starts a detached container and returns its ID and its
// first process's PID on the host. It is thawed (should a test have left
// it frozen) and removed when the test ends.
func scContainer(t *testing.T, args ...string) (id string, pid int) {
	t.Helper()
	id = scDocker(t, append([]string{"run", "-d"}, args...)...)
	t.Cleanup(func() {
		if f, err := scFreezerFile(pid); err == nil {
			os.WriteFile(f, []byte("THAWED"), 0)
		}
		exec.Command("docker", "rm", "-f", id).Run()
	})
	pid, err := strconv.Atoi(scDocker(t, "inspect", "-f", "{{.State.Pid}}", id))
	if err != nil || pid <= 0 {
		t.Fatalf("container %s: no PID (%d, %v)", id, pid, err)
	}
	return id, pid
}

// scFreezerFile is the cgroup v1 freezer.state of pid's cgroup (this
// project's hosts are cgroup v1), or cgroup.freeze on v2.
func scFreezerFile(pid int) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", err
	}
	for l := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if slices.Contains(strings.Split(parts[1], ","), "freezer") {
			return filepath.Join("/sys/fs/cgroup/freezer", parts[2], "freezer.state"), nil
		}
		if parts[0] == "0" && parts[1] == "" {
			if _, err := os.Stat("/sys/fs/cgroup/freezer"); err == nil {
				continue // hybrid: the v1 freezer line is the one
			}
			return filepath.Join("/sys/fs/cgroup", parts[2], "cgroup.freeze"), nil
		}
	}
	return "", fmt.Errorf("pid %d: no freezer cgroup", pid)
}

// scFrozen reports whether pid's freezer cgroup is frozen.
func scFrozen(t *testing.T, pid int) bool {
	t.Helper()
	f, err := scFreezerFile(pid)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	return s == "FROZEN" || s == "1"
}

// scBuild builds a package of testdata statically for bind-mounting,
// and returns the directory the binary is in.
func scBuild(t *testing.T, pkg string) string {
	t.Helper()
	return filepath.Dir(buildTestProgram(t, pkg))
}

// scCounter reads the miner's hash counter: -1 before its first write
// (the alert may come between the miner's connect and that write).
func scCounter(file string) (int64, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return -1, nil
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// scAdvances waits until the miner's counter moves past its current value.
func scAdvances(t *testing.T, file string, timeout time.Duration) {
	t.Helper()
	c0, err := scCounter(file)
	if err != nil {
		t.Fatalf("miner counter: %v", err)
	}
	for deadline := time.Now().Add(timeout); ; {
		if c, err := scCounter(file); err == nil && c > c0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("miner counter stuck at %d for %s", c0, timeout)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// scMiner runs the miner scenario: the pool and the miner in one
// container without a network. The policy is the default one, in monitor
// mode, or with the container's class switched to enforce.
func scMiner(t *testing.T, enforce bool) (run *scRun, id string, pid int, counter string, a *alert.Alert) {
	vigiltest.RequireRoot(t)
	img, class := scImage(t, "miner")
	bin := scBuild(t, "testdata/miner")
	out := t.TempDir()
	counter = filepath.Join(out, "counter")

	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := response.New(response.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pol := response.DefaultPolicy()
	if enforce {
		c := pol.Default
		c.Mode = response.ModeEnforce
		pol.Classes = map[string]response.ClassPolicy{class: c}
	}
	run = scStartAgent(t, NewDetector(Detection{Rules: rs, Responder: resp, Policy: pol, Window: time.Minute}))
	run.watch(img)
	run.explain = func() string {
		var b strings.Builder
		for _, e := range run.events {
			if e.Type == event.NetConnect || e.Type == event.ProcessExec {
				fmt.Fprintf(&b, "\n  %s %s pid %d container %.12s net %+v", e.Type, e.Process.Exe, e.Process.PID, e.Workload.ContainerID, e.Net)
			}
		}
		return "; the container's execs and connects seen:" + b.String()
	}
	id, pid = scContainer(t, "--network", "none", "-v", bin+":/sim:ro", "-v", out+":/out", img,
		"sh", "-c", "/sim/miner pool 127.0.0.1:3333 & exec /sim/miner mine 127.0.0.1:3333 /out/counter")
	a = run.waitAlert(t, 60*time.Second, minerRule+" from "+id[:12], func(a *alert.Alert) bool {
		return a.Rule == minerRule && a.Event.Workload != nil && a.Event.Workload.ContainerID == id
	})
	if !slices.Contains(a.Techniques, "T1496") || !slices.Contains(a.Tactics, "TA0040 Impact") {
		t.Errorf("alert MITRE tags: tactics %q techniques %q, want TA0040 Impact and T1496", a.Tactics, a.Techniques)
	}
	if a.Priority != "CRITICAL" || a.Event.Net == nil || a.Event.Net.Dst.Port() != 3333 || a.Event.Process.Name != "miner" {
		t.Errorf("alert: priority %s, process %s, connection %+v", a.Priority, a.Event.Process.Name, a.Event.Net)
	}
	return run, id, pid, counter, a
}

// TestScMinerMonitor: a miner speaking Stratum to a pool on 127.0.0.1:3333
// in a container raises the mining alert with T1496; the default policy
// (monitor) records that it would freeze the container, and the container
// keeps running and hashing.
func TestScMinerMonitor(t *testing.T) {
	run, id, pid, counter, a := scMiner(t, false)
	if !slices.Contains(a.Responses, "freeze: would-do") {
		t.Errorf("responses %q, want freeze: would-do", a.Responses)
	}
	var recs []response.Record
	if err := json.Unmarshal(run.call(t, http.MethodGet, "/v1/responses", nil, http.StatusOK), &recs); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(recs, func(r response.Record) bool {
		return r.Action == response.Freeze && r.Target.ContainerID == id && r.Mode == response.ModeMonitor &&
			r.Outcome == response.OutcomeWouldDo && r.Reason == minerRule && r.Automatic
	}) {
		t.Errorf("no monitor-mode freeze record for %s in %+v", id[:12], recs)
	}
	if scFrozen(t, pid) {
		t.Fatal("container frozen in monitor mode")
	}
	scAdvances(t, counter, 10*time.Second)
}

// TestScMinerEnforce: the same miner with its class in enforce mode is
// frozen (freezer.state FROZEN, the hash counter stops), and the
// operator's undo over the control socket thaws it.
func TestScMinerEnforce(t *testing.T) {
	run, id, pid, counter, a := scMiner(t, true)
	if !slices.Contains(a.Responses, "freeze: done") {
		t.Fatalf("responses %q, want freeze: done", a.Responses)
	}
	if !scFrozen(t, pid) {
		t.Fatal("alert says frozen, freezer.state does not")
	}
	c1, err := scCounter(counter)
	if err != nil {
		t.Fatal(err)
	}
	// Not a synchronisation: a frozen miner must make no progress over a
	// stretch of time in which a running one makes thousands of hashes.
	time.Sleep(time.Second)
	if c2, err := scCounter(counter); err != nil || c2 != c1 {
		t.Fatalf("frozen miner's counter moved from %d to %d (%v)", c1, c2, err)
	}

	var recs []response.Record
	if err := json.Unmarshal(run.call(t, http.MethodGet, "/v1/responses", nil, http.StatusOK), &recs); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(recs, func(r response.Record) bool {
		return r.Action == response.Freeze && r.Target.ContainerID == id && r.Outcome == response.OutcomeDone
	})
	if i < 0 {
		t.Fatalf("no freeze record for %s in %+v", id[:12], recs)
	}
	var undo response.Record
	body := strings.NewReader(url.Values{"id": {recs[i].ID}, "actor": {"sc-test"}}.Encode())
	if err := json.Unmarshal(run.call(t, http.MethodPost, "/v1/responses/undo", body, http.StatusOK), &undo); err != nil {
		t.Fatal(err)
	}
	if undo.Action != response.Unfreeze || undo.Outcome != response.OutcomeDone || undo.UndoOf != recs[i].ID || undo.Actor != "sc-test" {
		t.Errorf("undo record %+v", undo)
	}
	if scFrozen(t, pid) {
		t.Fatal("still frozen after the undo")
	}
	scAdvances(t, counter, 10*time.Second)
}

// scExec runs a command in a container and returns its output and exit
// code (-1 when docker itself failed).
func scExec(t *testing.T, timeout time.Duration, id string, cmd ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", id}, cmd...)...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("docker exec %s %q: still running after %s", id[:12], cmd, timeout)
	}
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("docker exec %s %q: %v\n%s", id[:12], cmd, err, out)
	return "", -1
}

// scLearned starts the agent with a profile store (learning window of a
// few seconds; zeroDrift for new profiles) and the default response policy
// with the test's class in enforce mode, runs a container with a normal
// workload loop plus one `docker exec sh -c` an operator would do, waits
// until the class is promoted to monitor and checks that the loop raises
// no deviation then.
func scLearned(t *testing.T, what string, zeroDrift bool) (run *scRun, store *profile.Store, id, class string) {
	t.Helper()
	vigiltest.RequireRoot(t)
	img, class := scImage(t, what)
	const learn = 12 * time.Second
	store, err := profile.New(profile.Options{Learn: learn, Hash: ExeHash("/proc"), ZeroDrift: zeroDrift})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := response.New(response.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	pol := response.DefaultPolicy()
	c := pol.Default
	c.Mode = response.ModeEnforce
	pol.Classes = map[string]response.ClassPolicy{class: c}
	run = scStartAgent(t, NewDetector(Detection{Profiles: store, Responder: resp, Policy: pol, Window: time.Minute}))
	run.watch(img)
	run.explain = func() string {
		var b strings.Builder
		b.WriteString("; the container's execs other than the loop's, and the profile alerts:")
		for _, e := range run.events {
			if e.Type == event.ProcessExec && !slices.Contains([]string{"/usr/bin/ls", "/usr/bin/cat", "/usr/bin/sleep"}, e.Process.Exe) {
				fmt.Fprintf(&b, "\n  exec %s %q pid %d parent %s container %.12s", e.Process.Exe, e.Process.Args, e.Process.PID, e.Parent.Exe, e.Workload.ContainerID)
			}
		}
		for _, a := range run.alerts {
			if a.Source == alert.SourceProfile {
				fmt.Fprintf(&b, "\n  alert %s", a.Output)
			}
		}
		return b.String()
	}

	id, _ = scContainer(t, "--network", "none", img,
		"sh", "-c", "while :; do ls / >/dev/null; cat /etc/hostname >/dev/null; sleep 0.2; done")
	ofContainer := func(e *event.Event) bool { return e.Workload != nil && e.Workload.ContainerID == id }
	// What an operator's `docker exec ... sh -c` does in normal operation,
	// learned too.
	if out, code := scExec(t, time.Minute, id, "sh", "-c", "cat /etc/hostname; true"); code != 0 {
		t.Fatalf("learning exec: exit %d: %s", code, out)
	}
	run.waitEvent(t, 30*time.Second, "the learning exec's cat", func(e *event.Event) bool {
		return ofContainer(e) && e.Type == event.ProcessExec && e.Process.Exe == "/usr/bin/cat" &&
			e.Parent != nil && slices.Contains(e.Parent.Args, "cat /etc/hostname; true")
	})
	p, ok := store.Get(class)
	if !ok {
		t.Fatalf("no profile for %s after the container's first events", class)
	}
	if p.Mode != profile.Discover {
		t.Fatalf("profile promoted to %s before the learning exec was seen: raise the window (%s)", p.Mode, learn)
	}
	for deadline := time.Now().Add(learn + 30*time.Second); p.Mode != profile.Monitor; p, _ = store.Get(class) {
		if time.Now().After(deadline) {
			t.Fatalf("profile still in %s %s after the window", p.Mode, learn+30*time.Second)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
	// A process that exits before the agent reads /proc/PID/exe is learned
	// by its path alone.
	hashed := 0
	for _, exe := range []string{"/usr/bin/ls", "/usr/bin/cat", "/usr/bin/sleep", "/usr/bin/sh"} {
		i := slices.IndexFunc(p.Executables, func(x profile.Exec) bool { return x.Path == exe })
		if i < 0 {
			t.Fatalf("learned executables lack %s: %+v", exe, p.Executables)
		}
		if len(p.Executables[i].SHA256) == 64 {
			hashed++
		}
	}
	t.Logf("the loop's 4 executables learned, %d with their SHA-256", hashed)
	if p.ZeroDrift != zeroDrift {
		t.Errorf("profile zero_drift %v, want %v", p.ZeroDrift, zeroDrift)
	}
	promoted := time.Now()
	// The normal loop goes on without deviations once monitored.
	run.waitEvent(t, 30*time.Second, "a sleep of the loop after promotion", func(e *event.Event) bool {
		return ofContainer(e) && e.Type == event.ProcessExec && e.Process.Exe == "/usr/bin/sleep" && e.Time.After(promoted.Add(time.Second))
	})
	if devs := run.alertsWhere(func(a *alert.Alert) bool {
		return a.Source == alert.SourceProfile && a.Event.Workload != nil && a.Event.Workload.ContainerID == id
	}); len(devs) > 0 {
		t.Fatalf("the learned loop deviates: %d alerts, the first: %s", len(devs), devs[0].Output)
	}
	return run, store, id, class
}

// TestScHostMountNamespace: the mount namespaces the detector maps to
// container classes — where protect mode with zero drift puts the
// in-kernel exec policy, which kills memfd and upper-layer execs — never
// include the host's, whatever events the container runtime makes while
// it sets a container up or execs into it.
func TestScHostMountNamespace(t *testing.T) {
	if host, class := scHostNamespaceMapped(t); class != "" {
		t.Errorf("the host's mount namespace %d is mapped to class %q: protect with zero drift would put the exec policy on the host", host, class)
	}
}

// scHostNamespaceMapped runs the agent with profiles while a container
// starts and is exec'd into, stops it, and returns the host's mount
// namespace and the class the detector mapped it to ("" if none).
func scHostNamespaceMapped(t *testing.T) (host uint32, class string) {
	t.Helper()
	vigiltest.RequireRoot(t)
	img, mine := scImage(t, "hostns")
	link, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscanf(link, "mnt:[%d]", &host); err != nil {
		t.Fatalf("mount namespace %q: %v", link, err)
	}
	store, err := profile.New(profile.Options{Learn: -1})
	if err != nil {
		t.Fatal(err)
	}
	run := scStartAgent(t, NewDetector(Detection{Profiles: store}))
	run.watch(img)
	id, _ := scContainer(t, "--network", "none", img, "sh", "-c", "ls / >/dev/null; cat /etc/hostname; sleep 60")
	run.waitEvent(t, 30*time.Second, "the container's cat", func(e *event.Event) bool {
		return e.Workload != nil && e.Workload.ContainerID == id && e.Type == event.ProcessExec && e.Process.Exe == "/usr/bin/cat"
	})
	if out, code := scExec(t, time.Minute, id, "sh", "-c", "ls /; true"); code != 0 {
		t.Fatalf("docker exec: exit %d: %s", code, out)
	}
	run.waitEvent(t, 30*time.Second, "the docker exec's ls", func(e *event.Event) bool {
		return e.Workload != nil && e.Workload.ContainerID == id && e.Type == event.ProcessExec && e.Process.Exe == "/usr/bin/ls" &&
			e.Parent != nil && slices.Contains(e.Parent.Args, "ls /; true")
	})
	run.stop() // the detector's maps are the agent goroutine's until it stops
	classes := map[uint32]string{}
	for ns, st := range run.det.ns {
		classes[ns] = st.class
	}
	if !slices.Contains(slices.Collect(maps.Values(classes)), mine) {
		t.Fatalf("no mount namespace mapped to %s: %v", mine, classes)
	}
	return host, classes[host]
}

// TestScZeroDrift: a class learned with zero drift and switched to protect
// gets the sensor's in-kernel exec policy: a binary copied into the
// running container (overlay upper layer) is killed by the kernel at its
// exec, before it runs — the event says "blocked" — and the alert names
// the drift.
func TestScZeroDrift(t *testing.T) {
	// Protect with zero drift kills memfd and upper-layer execs in every
	// mount namespace mapped to the class: never run it where the host's
	// could be one of them.
	if host, class := scHostNamespaceMapped(t); class != "" {
		t.Fatalf("not switching a class to protect with zero drift: the detector maps the host's mount namespace %d to a container class (%q), so the kernel would kill the host's memfd execs (see TestScHostMountNamespace)", host, class)
	}
	run, store, id, class := scLearned(t, "drift", true)
	ofContainer := func(e *event.Event) bool { return e.Workload != nil && e.Workload.ContainerID == id }
	run.call(t, http.MethodPost, "/v1/profiles/mode", strings.NewReader(url.Values{"class": {class}, "mode": {"protect"}}.Encode()), http.StatusNoContent)
	if p, _ := store.Get(class); p.Mode != profile.Protect {
		t.Fatalf("mode %s after switching to protect", p.Mode)
	}
	// The policy is put in the kernel as the next event is handled: wait
	// for one of the container's written after the switch.
	switched := time.Now()
	run.waitEvent(t, 30*time.Second, "an event of the loop after the switch", func(e *event.Event) bool {
		return ofContainer(e) && e.Time.After(switched.Add(100*time.Millisecond))
	})
	// The drift binary arrives the way a dropper's would: a new file in
	// the container's writable layer (docker cp writes it from the host,
	// so no write by the container itself deviates first). It would serve
	// HTTP forever if it ran.
	bin := scBuild(t, "testdata/miner")
	scDocker(t, "cp", filepath.Join(bin, "miner"), id+":/tmp/drift")
	out, code := scExec(t, time.Minute, id, "/tmp/drift", "web", "127.0.0.1:0")
	if code != 137 {
		t.Fatalf("drift binary in protect mode: exit %d, want 137 (SIGKILL by the kernel): %s", code, out)
	}
	if strings.Contains(out, "listening") {
		t.Fatalf("the drift binary ran before it was killed: %s", out)
	}
	ex := run.waitEvent(t, 30*time.Second, "the blocked exec of /tmp/drift", func(e *event.Event) bool {
		return ofContainer(e) && e.Type == event.ProcessExec && e.Process.Exe == "/tmp/drift"
	})
	if !ex.Blocked || !ex.Process.ExeUpper {
		t.Errorf("exec of /tmp/drift: blocked %v, upper layer %v; want both", ex.Blocked, ex.Process.ExeUpper)
	}
	a := run.waitAlert(t, 30*time.Second, "the drift alert", func(a *alert.Alert) bool {
		return a.Source == alert.SourceProfile && a.Event.Process.PID == ex.Process.PID && a.Event.Workload != nil && a.Event.Workload.ContainerID == id
	})
	if a.Rule != "Profile deviation: binary not in the image" || a.Priority != "CRITICAL" || !slices.Contains(a.Tags, "mode_protect") {
		t.Errorf("drift alert: rule %q, priority %s, tags %q", a.Rule, a.Priority, a.Tags)
	}
	t.Logf("drift alert: %s; responses %q", a.Output, a.Responses)
}

// TestScProfile: a container's normal loop is learned (discover), promoted
// to monitor when the window ends; an unknown binary then alerts without
// being stopped; the profile, exported, edited to allow it and imported
// over the control socket, no longer alerts on it; in protect mode an
// unknown binary is killed by the default policy's profile trigger, the
// class being in enforce mode.
func TestScProfile(t *testing.T) {
	run, store, id, class := scLearned(t, "profile", false)
	ofContainer := func(e *event.Event) bool { return e.Workload != nil && e.Workload.ContainerID == id }
	ofMe := func(a *alert.Alert) bool {
		return a.Source == alert.SourceProfile && a.Event.Workload != nil && a.Event.Workload.ContainerID == id
	}

	// Monitor: an unknown binary alerts and runs.
	if out, code := scExec(t, time.Minute, id, "sh", "-c", "/usr/bin/id; true"); code != 0 || !strings.Contains(out, "uid=0(root)") {
		t.Fatalf("id in monitor mode: exit %d: %s", code, out)
	}
	a := run.waitAlert(t, 30*time.Second, "exec deviation of id", func(a *alert.Alert) bool {
		return ofMe(a) && a.Rule == "Profile deviation: unexpected executable" && a.Event.Process.Exe == "/usr/bin/id"
	})
	if a.Priority != "WARNING" || !slices.Contains(a.Tags, "mode_monitor") || len(a.Responses) > 0 || !slices.Contains(a.Techniques, "T1059") {
		t.Errorf("monitor deviation: priority %s, tags %q, responses %q, techniques %q", a.Priority, a.Tags, a.Responses, a.Techniques)
	}
	if a.Event.Parent == nil || a.Event.Parent.Exe == "" {
		t.Fatalf("deviation of id without its parent: %+v", a.Event.Parent)
	}

	// Export, allow id (the executable and the shell starting it), import.
	var doc struct {
		Profiles []profile.Profile `yaml:"profiles"`
	}
	exported := run.call(t, http.MethodGet, "/v1/profiles?class="+url.QueryEscape(class), nil, http.StatusOK)
	if err := yaml.Unmarshal(exported, &doc); err != nil || len(doc.Profiles) != 1 || doc.Profiles[0].Mode != profile.Monitor {
		t.Fatalf("exported profile (%v):\n%s", err, exported)
	}
	doc.Profiles[0].Executables = append(doc.Profiles[0].Executables, profile.Exec{Path: "/usr/bin/id"})
	doc.Profiles[0].Pairs = append(doc.Profiles[0].Pairs, profile.Pair{Parent: a.Event.Parent.Exe, Child: "/usr/bin/id"})
	edited, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	run.call(t, http.MethodPut, "/v1/profiles", bytes.NewReader(edited), http.StatusNoContent)
	imported := time.Now()
	if out, code := scExec(t, time.Minute, id, "sh", "-c", "/usr/bin/id; true"); code != 0 || !strings.Contains(out, "uid=0(root)") {
		t.Fatalf("id after the import: exit %d: %s", code, out)
	}
	// An event is written after the alerts it raised: once id's exit is
	// out, any deviation of it is too.
	ex := run.waitEvent(t, 30*time.Second, "exit of id after the import", func(e *event.Event) bool {
		return ofContainer(e) && e.Type == event.ProcessExit && e.Process.Exe == "/usr/bin/id" && e.Time.After(imported)
	})
	if devs := run.alertsWhere(func(a *alert.Alert) bool { return ofMe(a) && a.Event.Process.PID == ex.Process.PID }); len(devs) > 0 {
		t.Fatalf("id still deviates after the edited profile was imported: %s", devs[0].Output)
	}

	// Protect: an unknown binary is killed.
	run.call(t, http.MethodPost, "/v1/profiles/mode", strings.NewReader(url.Values{"class": {class}, "mode": {"protect"}}.Encode()), http.StatusNoContent)
	if p, _ := store.Get(class); p.Mode != profile.Protect {
		t.Fatalf("mode %s after switching to protect", p.Mode)
	}
	// whoami exits within a millisecond, before a signal from user space
	// could reach it: protect mode puts the learned executables on the
	// kernel's allow list, and the kernel kills whoami at exec, before it
	// runs. The shell sees it killed (137); the exec event says blocked.
	if out, code := scExec(t, time.Minute, id, "sh", "-c", "/usr/bin/whoami; echo rc=$?"); !strings.Contains(out, "rc=137") {
		t.Errorf("whoami in protect mode: exit %d, output %q; want the shell to report 137 (killed at exec)", code, out)
	}
	a = run.waitAlert(t, 30*time.Second, "protect deviation of whoami", func(a *alert.Alert) bool {
		return ofMe(a) && a.Rule == "Profile deviation: unexpected executable" && a.Event.Process.Exe == "/usr/bin/whoami"
	})
	if a.Priority != "CRITICAL" || !slices.Contains(a.Tags, "mode_protect") || !a.Event.Blocked ||
		!slices.Contains(a.Responses, "kill: done in the kernel at exec") {
		t.Errorf("protect deviation of whoami: priority %s, tags %q, blocked %v, responses %q", a.Priority, a.Tags, a.Event.Blocked, a.Responses)
	}
	t.Logf("whoami: %q", a.Responses)
	// A binary that would run until stopped is killed too: SIGKILL, exit
	// code 137.
	type result struct {
		out  string
		code int
	}
	tail := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "docker", "exec", id, "/usr/bin/tail", "-f", "/dev/null").CombinedOutput()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		tail <- result{string(out), code}
	}()
	a = run.waitAlert(t, 30*time.Second, "protect deviation of tail", func(a *alert.Alert) bool {
		return ofMe(a) && a.Rule == "Profile deviation: unexpected executable" && a.Event.Process.Exe == "/usr/bin/tail"
	})
	if !slices.Contains(a.Responses, "kill: done in the kernel at exec") || !a.Event.Blocked {
		// The container's removal at cleanup ends the docker exec.
		t.Fatalf("tail's alert: blocked %v, responses %q, want killed in the kernel at exec", a.Event.Blocked, a.Responses)
	}
	select {
	case r := <-tail:
		if r.code != 137 {
			t.Fatalf("unknown tail in protect mode: exit %d, want 137 (SIGKILL): %s", r.code, r.out)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tail still running 30 s after kill: done")
	}
	run.waitEvent(t, 30*time.Second, "tail's exit by signal 9", func(e *event.Event) bool {
		return ofContainer(e) && e.Type == event.ProcessExit && e.Process.PID == a.Event.Process.PID && e.Exit != nil && e.Exit.Signal == 9
	})
}

// TestScBenign: with the default rules, profiles learning and the default
// response policy, a web server container answering requests, a database
// container doing work and a Go build on the host raise no alert.
func TestScBenign(t *testing.T) {
	vigiltest.RequireRoot(t)
	img, _ := scImage(t, "benign")
	bin := scBuild(t, "testdata/miner")
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	store, err := profile.New(profile.Options{Hash: ExeHash("/proc")})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := response.New(response.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	run := scStartAgent(t, NewDetector(Detection{Rules: rs, Profiles: store, Responder: resp,
		Policy: response.DefaultPolicy(), Window: time.Minute}))
	marker := fmt.Sprintf("vigil-sc-marker-%d", time.Now().UnixNano())
	run.watch(marker)
	run.watch(img) // every event of the test's containers names the image
	mod := t.TempDir()
	run.watch(mod) // the build's processes work in the module's directory

	// The web server, on the host's network, answers 200 requests.
	port := scFreePort(t)
	web, _ := scContainer(t, "--network", "host", "-v", bin+":/sim:ro", img, "/sim/miner", "web", fmt.Sprintf("127.0.0.1:%d", port))
	hc := &http.Client{Timeout: 10 * time.Second}
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("web server not answering after 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	for i := range 200 {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/item/%d", port, i))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "ok\n" {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, b)
		}
	}

	// The database: 10k rows inserted and queried in the container's own
	// filesystem.
	dbName := uniqueName(t, "db")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", dbName).Run() })
	out := scDocker(t, "run", "--name", dbName, "--network", "none", "-v", bin+":/sim:ro", img, "/sim/miner", "db", "/tmp/orders.db", "10000")
	if !strings.Contains(out, "db: 10000 rows") {
		t.Fatalf("database workload: %s", out)
	}
	db := scDocker(t, "inspect", "-f", "{{.Id}}", dbName)

	// A package build on the host, compiled from scratch (own build cache),
	// without the network.
	for name, src := range map[string]string{
		"go.mod":  "module example.com/hello\n\ngo 1.26\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() { fmt.Fprintln(os.Stdout, \"hello\") }\n",
	} {
		if err := os.WriteFile(filepath.Join(mod, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-o", filepath.Join(mod, "hello"), ".")
	build.Dir = mod
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOCACHE="+filepath.Join(mod, "cache"), "CGO_ENABLED=0")
	var bout bytes.Buffer
	build.Stdout, build.Stderr = &bout, &bout
	if err := build.Start(); err != nil {
		t.Fatal(err)
	}
	buildPID := int32(build.Process.Pid)
	if err := build.Wait(); err != nil {
		t.Fatalf("go build: %v\n%s", err, bout.Bytes())
	}

	// Everything before the marker's exec has been judged once it is out.
	if err := exec.Command("/bin/sh", "-c", ": "+marker).Run(); err != nil {
		t.Fatal(err)
	}
	run.waitEvent(t, 60*time.Second, "the marker exec", func(e *event.Event) bool {
		return e.Type == event.ProcessExec && slices.Contains(e.Process.Args, ": "+marker)
	})
	inBuild := func(e *event.Event) bool {
		return e.Process.PID == buildPID || e.Process.PPID == buildPID ||
			slices.ContainsFunc(e.Ancestors, func(x event.Ancestor) bool { return x.PID == buildPID })
	}
	of := func(e *event.Event, id string) bool { return e.Workload != nil && e.Workload.ContainerID == id }
	// The workloads' own events reached the agent: otherwise "no alert"
	// would prove nothing.
	run.waitEvent(t, time.Second, "an accept by the web server", func(e *event.Event) bool { return of(e, web) && e.Type == event.NetAccept })
	run.waitEvent(t, time.Second, "a write of the database file", func(e *event.Event) bool {
		return of(e, db) && e.Type == event.FileOpen && e.File != nil && e.File.Path == "/tmp/orders.db"
	})
	run.waitEvent(t, time.Second, "an exec of the compiler by go build", func(e *event.Event) bool {
		return inBuild(e) && e.Type == event.ProcessExec && strings.HasSuffix(e.Process.Exe, "/compile")
	})
	scoped := run.alertsWhere(func(a *alert.Alert) bool { return of(a.Event, web) || of(a.Event, db) || inBuild(a.Event) })
	if len(scoped) > 0 {
		var b strings.Builder
		for _, a := range scoped {
			fmt.Fprintf(&b, "\n  %s [%s] %s", a.Rule, a.Priority, a.Output)
		}
		t.Fatalf("%d alerts on the benign workloads:%s", len(scoped), b.String())
	}
	t.Logf("benign workloads: no alerts (%d alerts on the host in all, from other activity)", len(run.alertsWhere(func(*alert.Alert) bool { return true })))
}

// scFreePort is a TCP port free on 127.0.0.1 that no mining rule watches.
func scFreePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if port != 45560 && port != 45700 {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
