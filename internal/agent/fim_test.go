package agent

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/fim"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// fimWatch watches dir/watched/ (but not dir/watched/skip/) on the host
// and /etc/vigil-fim-test/ as a container sees it.
func fimWatch(dir string) fim.Watch {
	watched, skip := filepath.Join(dir, "watched")+"/", filepath.Join(dir, "watched", "skip")+"/"
	return fim.WatchFunc(func(p string) (string, bool) {
		switch {
		case strings.HasPrefix(p, skip):
			return "", false
		case strings.HasPrefix(p, watched):
			return "test-tree", true
		case strings.HasPrefix(p, "/etc/vigil-fim-test/"):
			return "container-etc", true
		}
		return "", false
	})
}

// startFIMAgent runs the agent with realtime FIM over fimWatch(dir), a
// short debounce window and no rules or profiles; events are written but
// not decoded (alerts are).
func startFIMAgent(t *testing.T, dir string) *agentRun {
	t.Helper()
	return startFIMAgentUp(t, dir, nil, 2*time.Second)
}

// startFIMAgentUp is startFIMAgent reporting to up, when not nil, with a
// debounce window.
func startFIMAgentUp(t *testing.T, dir string, up Uplink, window time.Duration) *agentRun {
	t.Helper()
	return startAgentWith(t, func(a *agentRun, o *Options) {
		o.Uplink = up
		// Keep only the events of the test's files, to explain a failure.
		a.keepLine = func(line []byte) bool {
			return bytes.Contains(line, []byte(dir)) || bytes.Contains(line, []byte("vigil-fim-test"))
		}
		a.explain = func() string {
			var b strings.Builder
			fmt.Fprintf(&b, "\nagent: %s\nevents of the test's files:", a.stats())
			for _, e := range a.events {
				fmt.Fprintf(&b, "\n  %s %s pid=%d cwd=%q file=%+v ret=%d", e.Type, e.Process.Name, e.Process.PID, e.Process.Cwd, *e.File, e.Ret)
			}
			return b.String()
		}
		o.Detector = NewDetector(Detection{FIM: fim.NewRealtime(fimWatch(dir), fim.RealtimeOptions{Window: window})})
	})
}

func fimAlertsFor(a *agentRun, path string) func(*alert.Alert) bool {
	return func(al *alert.Alert) bool {
		return al.Source == fim.SourceFIM && strings.Contains(al.Output, " path="+path+" ")
	}
}

// TestFIMRealtimeHost changes files on the host with a known bash: the
// watched one is reported once with that bash, its parent (this test) and
// its user; the unwatched and excluded ones, written first by the same
// process, are not reported.
func TestFIMRealtimeHost(t *testing.T) {
	vigiltest.RequireRoot(t)
	dir := t.TempDir()
	for _, d := range []string{"watched/skip", "unwatched"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	up := &fakeUplink{}
	a := startFIMAgentUp(t, dir, up, 2*time.Second)
	target := filepath.Join(dir, "watched", "conf")
	cmd := exec.Command("bash", "-c", `D=$1; echo a > $D/unwatched/f; echo b > $D/watched/skip/f; echo c > $D/watched/conf; chmod 600 $D/watched/conf`, "bash", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash: %v: %s", err, out)
	}
	pid := cmd.Process.Pid
	got := a.waitAlert(t, 30*time.Second, "FIM alert for "+target, fimAlertsFor(a, target))
	if got.Rule != "File integrity: test-tree" || got.Priority != "WARNING" || got.Count != 1 {
		t.Errorf("alert: rule %q priority %q count %d", got.Rule, got.Priority, got.Count)
	}
	e := got.Event
	if int(e.Process.PID) != pid || e.Process.Name != "bash" || e.Process.User != "root" {
		t.Errorf("process: pid %d (want %d) name %q user %q", e.Process.PID, pid, e.Process.Name, e.Process.User)
	}
	if e.Parent == nil || int(e.Parent.PID) != os.Getpid() {
		t.Errorf("parent: %+v, want this test (pid %d)", e.Parent, os.Getpid())
	}
	for _, s := range []string{"change=write", fmt.Sprintf("pid=%d", pid), "process=bash", "user=root", "parent=", "container=host"} {
		if !strings.Contains(got.Output, s) {
			t.Errorf("output %q lacks %q", got.Output, s)
		}
	}
	perm := a.waitAlert(t, 30*time.Second, "chmod alert", func(al *alert.Alert) bool {
		return fimAlertsFor(a, target)(al) && strings.Contains(al.Output, "change=chmod")
	})
	if len(perm.Techniques) != 1 || perm.Techniques[0] != "T1222" || !strings.Contains(perm.Output, "mode=0600") {
		t.Errorf("chmod alert: %v %q", perm.Techniques, perm.Output)
	}
	// The alert went to the server's uplink too.
	sent := false
	for _, r := range up.take() {
		sent = sent || r.Kind == wire.KindAlert && strings.Contains(string(r.Data), `"source":"fim"`) &&
			strings.Contains(string(r.Data), target)
	}
	if !sent {
		t.Errorf("the FIM alert was not sent to the uplink")
	}
	// Events are handled in order: the earlier writes were seen and not
	// reported.
	for _, p := range []string{filepath.Join(dir, "unwatched", "f"), filepath.Join(dir, "watched", "skip", "f")} {
		if n := a.alertsWhere(fimAlertsFor(a, p)); len(n) != 0 {
			t.Errorf("%s is not watched but raised %d alerts: %q", p, len(n), n[0].Output)
		}
	}
}

// TestFIMRealtimeRelative writes a watched file by a relative path from
// a shell that changed directory after its exec: the path is placed with
// the working directory read when the event arrived. The shell stays alive
// until the alert is seen (a process already gone when its event is
// handled has only the working directory of its exec: docs/drift.md).
func TestFIMRealtimeRelative(t *testing.T) {
	vigiltest.RequireRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "watched", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := startFIMAgent(t, dir)
	cmd := exec.Command("bash", "-c", `cd "$1/watched/sub" && echo x > ../rel.conf && read line`, "bash", dir)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	got := a.waitAlert(t, 30*time.Second, "FIM alert for the relative path", fimAlertsFor(a, filepath.Join(dir, "watched", "rel.conf")))
	if int(got.Event.Process.PID) != cmd.Process.Pid {
		t.Errorf("pid %d, want %d", got.Event.Process.PID, cmd.Process.Pid)
	}
}

// TestFIMRealtimeBurst writes one watched file 1000 times from one
// process: one alert at once, then one count line for the other 999.
func TestFIMRealtimeBurst(t *testing.T) {
	vigiltest.RequireRoot(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "watched"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A 10 s window: the burst, however slow on a loaded machine, is in
	// one window (event times are the kernel's).
	a := startFIMAgentUp(t, dir, nil, 10*time.Second)
	target := filepath.Join(dir, "watched", "log")
	cmd := exec.Command("bash", "-c", `for i in $(seq 1000); do echo $i >> `+target+`; done`)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bash: %v: %s", err, out)
	}
	pid := cmd.Process.Pid
	mine := func(al *alert.Alert) bool { return fimAlertsFor(a, target)(al) && int(al.Event.Process.PID) == pid }
	a.waitAlert(t, 30*time.Second, "first alert of the burst", mine)
	// The count line is written when the window closes, on the next
	// event the agent handles: make some.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				os.WriteFile(filepath.Join(dir, "nudge"), nil, 0o644)
			}
		}
	}()
	agg := a.waitAlert(t, 30*time.Second, "count line of the burst", func(al *alert.Alert) bool { return mine(al) && al.Aggregate })
	all := a.alertsWhere(mine)
	if len(all) != 2 {
		t.Fatalf("%d alerts for the burst, want 2 (the first and one count line)", len(all))
	}
	if drops := a.drops(t); drops == 0 && agg.Count != 999 {
		t.Errorf("count line: count %d, want 999", agg.Count)
	}
}

// TestFIMRealtimeContainer changes a watched file inside a container: the
// alert names the container, its image and the process.
func TestFIMRealtimeContainer(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	dir := t.TempDir()
	a := startFIMAgent(t, dir)
	name := uniqueName(t, "fim")
	if out, err := exec.Command("docker", "run", "-d", "--name", name, img, "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	if out, err := exec.Command("docker", "exec", name, "bash", "-c", "mkdir /etc/vigil-fim-test && echo x > /etc/vigil-fim-test/app.conf").CombinedOutput(); err != nil {
		t.Fatalf("docker exec: %v: %s", err, out)
	}
	got := a.waitAlert(t, 30*time.Second, "FIM alert from the container", fimAlertsFor(a, "/etc/vigil-fim-test/app.conf"))
	w := got.Event.Workload
	if w == nil || w.ContainerName != name || w.Image != img {
		t.Fatalf("workload: %+v, want container %s of %s", w, name, img)
	}
	if got.Event.Process.Name != "bash" || got.Event.Process.User != "root" {
		t.Errorf("process %q user %q", got.Event.Process.Name, got.Event.Process.User)
	}
	for _, s := range []string{"container=" + name, "image=" + img, "process=bash", "change=write"} {
		if !strings.Contains(got.Output, s) {
			t.Errorf("output %q lacks %q", got.Output, s)
		}
	}
	if _, err := os.Stat("/etc/vigil-fim-test"); err == nil {
		t.Errorf("the host has /etc/vigil-fim-test: the test is not telling container paths apart")
	}
}
