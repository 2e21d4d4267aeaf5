package response

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// container is a running test container.
type container struct {
	id  string
	pid int32
}

// startContainer runs the bookworm image detached with docker run args and
// a command; it is removed when the test ends.
func startContainer(t *testing.T, args ...string) container {
	t.Helper()
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	runArgs := []string{"run", "-d", "--rm"}
	var cmd []string
	for i, a := range args {
		if a == "--" {
			runArgs = append(runArgs, args[:i]...)
			cmd = args[i+1:]
			break
		}
	}
	runArgs = append(append(runArgs, img), cmd...)
	id := strings.TrimSpace(vigiltest.Run(t, "", "docker", runArgs...))
	t.Cleanup(func() {
		// Thaw first: a frozen container cannot be removed.
		_ = os.WriteFile(filepath.Join("/sys/fs/cgroup/freezer/docker", id, "freezer.state"), []byte("THAWED"), 0)
		_ = os.WriteFile(filepath.Join("/sys/fs/cgroup/unified/docker", id, "cgroup.freeze"), []byte("0"), 0)
		_ = os.WriteFile(filepath.Join("/sys/fs/cgroup/docker", id, "cgroup.freeze"), []byte("0"), 0)
		_ = exec.Command("docker", "rm", "-f", id).Run()
	})
	pid, err := strconv.Atoi(strings.TrimSpace(vigiltest.Run(t, "", "docker", "inspect", "-f", "{{.State.Pid}}", id)))
	if err != nil || pid <= 0 {
		t.Fatalf("container %s has no PID: %v", id, err)
	}
	return container{id: id, pid: int32(pid)}
}

// target is the container's main process as the agent would name it.
func (c container) target(t *testing.T) Target {
	t.Helper()
	st, err := StartTimeOf("/proc", c.pid)
	if err != nil {
		t.Fatal(err)
	}
	return Target{PID: c.pid, StartTime: st, ContainerID: c.id, Runtime: "docker", Class: vigiltest.BookwormImage}
}

func newTestResponder(t *testing.T) (*Responder, *bytes.Buffer) {
	t.Helper()
	var log bytes.Buffer
	r, err := New(Options{Log: &log, StopGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, &log
}

// waitFor polls cond until it holds or 20 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func running(id string) bool {
	out, err := exec.Command("docker", "inspect", "-f", "{{.State.Running}}", id).Output()
	return err == nil && strings.TrimSpace(string(out)) == "true"
}

// procState is the State: letter of /proc/PID/status.
func procState(t *testing.T, pid int32) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(int(pid)), "status"))
	if err != nil {
		t.Fatal(err)
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "State:"); ok {
			return strings.TrimSpace(v)[:1]
		}
	}
	t.Fatalf("no State in /proc/%d/status", pid)
	return ""
}

// cpuTicks is utime+stime of /proc/PID/stat.
func cpuTicks(t *testing.T, pid int32) uint64 {
	t.Helper()
	b := readTrim(t, filepath.Join("/proc", strconv.Itoa(int(pid)), "stat"))
	f := strings.Fields(b[strings.LastIndexByte(b, ')')+1:])
	u, err1 := strconv.ParseUint(f[11], 10, 64)
	s, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("parsing /proc/%d/stat: %v %v", pid, err1, err2)
	}
	return u + s
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dockerExec runs a command in the container, bounded by 20 seconds (a
// command in a frozen container would hang).
func dockerExec(id string, cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", append([]string{"exec", id}, cmd...)...).CombinedOutput()
	return string(out), err
}

func wantOutcome(t *testing.T, rec Record, outcome string) {
	t.Helper()
	if rec.Outcome != outcome {
		t.Fatalf("%s: outcome %q (error %q), want %q", rec.Action, rec.Outcome, rec.Error, outcome)
	}
}

// TestFreezeUnfreeze freezes a container through its cgroup v1 freezer: its
// process is in the kernel's frozen (D) state; Undo thaws it and it runs
// commands again. A second freeze names the container only (PID from the
// Docker API) and is undone with an explicit unfreeze.
func TestFreezeUnfreeze(t *testing.T) {
	c := startContainer(t, "--network", "none", "--", "sleep", "300")
	state := filepath.Join("/sys/fs/cgroup/freezer/docker", c.id, "freezer.state")
	if _, err := os.Stat(state); err != nil {
		vigiltest.Unavailable(t, "needs the cgroup v1 freezer of Docker's cgroupfs driver: %v", err)
	}
	r, _ := newTestResponder(t)
	ctx := context.Background()

	rec := r.Do(ctx, Freeze, c.target(t), "Detect crypto miners", true, true, "agent")
	wantOutcome(t, rec, OutcomeDone)
	if got := readTrim(t, state); got != "FROZEN" {
		t.Fatalf("freezer.state = %s after freeze, want FROZEN", got)
	}
	if got := procState(t, c.pid); got != "D" {
		t.Errorf("frozen process state %s, want D", got)
	}

	undo, err := r.Undo(ctx, rec.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if undo.Action != Unfreeze || undo.UndoOf != rec.ID || undo.Outcome != OutcomeDone || undo.Actor != "alice" || undo.Automatic {
		t.Errorf("undo record %+v", undo)
	}
	if got := readTrim(t, state); got != "THAWED" {
		t.Fatalf("freezer.state = %s after undo, want THAWED", got)
	}
	if out, err := dockerExec(c.id, "echo", "alive"); err != nil || strings.TrimSpace(out) != "alive" {
		t.Fatalf("thawed container does not run commands: %v %s", err, out)
	}
	if recs := r.Records(); !recs[0].Undone {
		t.Errorf("freeze record not marked undone: %+v", recs[0])
	}
	if _, err := r.Undo(ctx, rec.ID, "alice"); !errors.Is(err, ErrNotUndoable) {
		t.Errorf("second undo: %v, want ErrNotUndoable", err)
	}

	byID := Target{ContainerID: c.id[:12], Runtime: "docker"}
	wantOutcome(t, r.Do(ctx, Freeze, byID, "operator", true, false, "alice"), OutcomeDone)
	if got := readTrim(t, state); got != "FROZEN" {
		t.Fatalf("freezer.state = %s after freeze by container ID, want FROZEN", got)
	}
	wantOutcome(t, r.Do(ctx, Unfreeze, byID, "operator", true, false, "alice"), OutcomeDone)
	if got := readTrim(t, state); got != "THAWED" {
		t.Fatalf("freezer.state = %s after unfreeze, want THAWED", got)
	}
}

// TestFreezeCgroupV2 freezes a container through cgroup v2 (cgroup.freeze,
// cgroup.events). This host mounts v2 beside v1 (/sys/fs/cgroup/unified);
// a procfs holding only the container's "0::" line makes the Responder take
// the v2 path. The container spins on a CPU: frozen, its CPU time stands
// still; thawed, it moves again. (A v2-frozen task sleeps in a signal trap,
// so /proc shows S, not D.)
func TestFreezeCgroupV2(t *testing.T) {
	c := startContainer(t, "--network", "none", "--", "bash", "-c", "while :; do :; done")
	lines, err := cgroupLines("/proc", c.pid)
	if err != nil {
		t.Fatal(err)
	}
	var v2 string
	for _, l := range lines {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			v2 = p
		}
	}
	dir := filepath.Join("/sys/fs/cgroup", v2)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", "cgroup.controllers")); err != nil {
		dir = filepath.Join("/sys/fs/cgroup/unified", v2)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.freeze")); v2 == "" || err != nil {
		vigiltest.Unavailable(t, "needs the container in a cgroup v2 hierarchy with cgroup.freeze (line %q): %v", v2, err)
	}
	proc := t.TempDir()
	pidDir := filepath.Join(proc, strconv.Itoa(int(c.pid)))
	if err := os.Mkdir(pidDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pidDir, "cgroup"), []byte("0::"+v2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Proc: proc})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := r.Do(ctx, Freeze, Target{PID: c.pid, ContainerID: c.id}, "test", true, false, "alice")
	wantOutcome(t, rec, OutcomeDone)
	if ev := readTrim(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 1") {
		t.Fatalf("cgroup.events after freeze:\n%s", ev)
	}
	if s := filepath.Join("/sys/fs/cgroup/freezer/docker", c.id, "freezer.state"); fileExists(s) && readTrim(t, s) != "THAWED" {
		t.Errorf("the v1 freezer was used: freezer.state %s", readTrim(t, s))
	}
	before := cpuTicks(t, c.pid)
	time.Sleep(300 * time.Millisecond) // a measurement window, not a wait for an event
	if after := cpuTicks(t, c.pid); after != before {
		t.Errorf("frozen process used CPU: %d ticks, then %d", before, after)
	}
	if _, err := r.Undo(ctx, rec.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the thawed process to use CPU again", func() bool { return cpuTicks(t, c.pid) > before })
	if ev := readTrim(t, filepath.Join(dir, "cgroup.events")); !strings.Contains(ev, "frozen 0") {
		t.Fatalf("cgroup.events after undo:\n%s", ev)
	}
	if out, err := dockerExec(c.id, "echo", "alive"); err != nil || strings.TrimSpace(out) != "alive" {
		t.Fatalf("thawed container does not run commands: %v %s", err, out)
	}
}

// TestKillPIDReuseGuard kills a container's main process, and first shows
// that a start time other than the process's own (the PID reused) is refused
// and leaves it running.
func TestKillPIDReuseGuard(t *testing.T) {
	c := startContainer(t, "--network", "none", "--", "sleep", "300")
	r, _ := newTestResponder(t)
	ctx := context.Background()
	tg := c.target(t)

	wrong := tg
	wrong.StartTime = tg.StartTime.Add(-2 * time.Second)
	rec := r.Do(ctx, Kill, wrong, "test", true, true, "agent")
	wantOutcome(t, rec, OutcomeFailed)
	if !strings.Contains(rec.Error, "PID was reused") {
		t.Errorf("error %q, want the PID-reuse refusal", rec.Error)
	}
	other := tg
	other.ContainerID = strings.Repeat("0", 64)
	wantOutcome(t, r.Do(ctx, Kill, other, "test", true, true, "agent"), OutcomeFailed)
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(int(c.pid)))); err != nil || !running(c.id) {
		t.Fatalf("refused kill still killed the process: %v", err)
	}

	wantOutcome(t, r.Do(ctx, Kill, tg, "test", true, true, "agent"), OutcomeDone)
	waitFor(t, "the container to exit after its process was killed", func() bool { return !running(c.id) })
}

// TestIsolate cuts a bridge-networked container off: a TCP connect from it
// to a listener on the host stops working while loopback keeps answering;
// the nftables table is in the container's namespace, not the host's; Undo
// restores the network. A host-network container is refused.
func TestIsolate(t *testing.T) {
	c := startContainer(t, "--", "sleep", "300")
	gw := strings.TrimSpace(vigiltest.Run(t, "", "docker", "inspect", "-f", "{{.NetworkSettings.Gateway}}", c.id))
	if gw == "" {
		vigiltest.Unavailable(t, "needs Docker's default bridge network")
	}
	nsenter := vigiltest.RequireCommand(t, "nsenter")
	nft := vigiltest.RequireCommand(t, "nft")
	ln, err := net.Listen("tcp", net.JoinHostPort(gw, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	connect := func(host, port string) (string, error) {
		return dockerExec(c.id, "timeout", "3", "bash", "-c", "exec 3<>/dev/tcp/"+host+"/"+port+" && echo connected")
	}
	if out, err := connect(gw, port); err != nil || !strings.Contains(out, "connected") {
		t.Fatalf("before isolation the container cannot reach the host listener: %v %s", err, out)
	}

	r, _ := newTestResponder(t)
	ctx := context.Background()
	rec := r.Do(ctx, Isolate, c.target(t), "Outbound connection to C2", true, true, "agent")
	wantOutcome(t, rec, OutcomeDone)
	pid := strconv.Itoa(int(c.pid))
	table := vigiltest.Run(t, "", nsenter, "-t", pid, "-n", nft, "list", "table", "inet", IsolateTable)
	for _, want := range []string{"hook input", "hook output", "policy drop", `iifname "lo" accept`, `oifname "lo" accept`} {
		if !strings.Contains(table, want) {
			t.Errorf("table in the container's namespace lacks %q:\n%s", want, table)
		}
	}
	l2 := vigiltest.Run(t, "", nsenter, "-t", pid, "-n", nft, "list", "table", "netdev", IsolateTable)
	for _, want := range []string{`hook ingress device "eth0"`, `hook egress device "eth0"`} {
		if !strings.Contains(l2, want+" priority -500; policy drop;") {
			t.Errorf("device-layer table lacks %q with policy drop:\n%s", want, l2)
		}
	}
	if strings.Contains(l2, `"lo"`) {
		t.Errorf("device-layer table drops loopback:\n%s", l2)
	}
	if err := exec.Command(nft, "list", "table", "inet", IsolateTable).Run(); err == nil {
		t.Errorf("the host's namespace has the isolation table too")
	}
	out, err := connect(gw, port)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 124 || strings.Contains(out, "connected") {
		t.Errorf("isolated container reached the host: err %v (want timeout's 124), output %q", err, out)
	}
	// Loopback still works: a closed port answers at once with a reset.
	if out, _ := connect("127.0.0.1", "1"); !strings.Contains(out, "Connection refused") {
		t.Errorf("loopback in the isolated container: %q, want Connection refused", out)
	}

	undo, err := r.Undo(ctx, rec.ID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if undo.Action != Unisolate || undo.UndoOf != rec.ID {
		t.Errorf("undo record %+v", undo)
	}
	if out, err := connect(gw, port); err != nil || !strings.Contains(out, "connected") {
		t.Fatalf("after undo the container cannot reach the host listener: %v %s", err, out)
	}
	for _, family := range []string{"inet", "netdev"} {
		if err := exec.Command(nsenter, "-t", pid, "-n", nft, "list", "table", family, IsolateTable).Run(); err == nil {
			t.Errorf("the %s isolation table is still there after undo", family)
		}
	}
	// Lifting an isolation that is not there is an error, not a silent success.
	if rec := r.Do(ctx, Unisolate, c.target(t), "operator", true, false, "alice"); rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, "not isolated") {
		t.Errorf("unisolate of a non-isolated container: %+v", rec)
	}

	hc := startContainer(t, "--network", "host", "--", "sleep", "300")
	rec = r.Do(ctx, Isolate, hc.target(t), "test", true, true, "agent")
	if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, "host network") {
		t.Errorf("isolate of a host-network container: %+v, want refused", rec)
	}
	if err := exec.Command(nft, "list", "table", "inet", IsolateTable).Run(); err == nil {
		t.Errorf("the host's namespace got the isolation table")
	}
}

// TestStop stops a container through the Docker API.
func TestStop(t *testing.T) {
	c := startContainer(t, "--network", "none", "--", "sleep", "300")
	r, _ := newTestResponder(t)
	wantOutcome(t, r.Do(context.Background(), Stop, c.target(t), "test", true, false, "alice"), OutcomeDone)
	waitFor(t, "the container to stop", func() bool { return !running(c.id) })
}

// TestMonitorModeTouchesNothing asks for every action in monitor mode: each
// is recorded as would-do and the container keeps running, thawed, with its
// network and its process.
func TestMonitorModeTouchesNothing(t *testing.T) {
	c := startContainer(t, "--", "sleep", "300")
	r, log := newTestResponder(t)
	ctx := context.Background()
	tg := c.target(t)
	for _, a := range []Action{Freeze, Isolate, Kill, Stop} {
		wantOutcome(t, r.Do(ctx, a, tg, "Detect crypto miners", false, true, "agent"), OutcomeWouldDo)
	}
	if n := strings.Count(log.String(), `"outcome":"would-do"`); n != 4 {
		t.Errorf("%d would-do lines in the audit log, want 4:\n%s", n, log)
	}
	if !running(c.id) {
		t.Fatal("container stopped in monitor mode")
	}
	st, err := StartTimeOf("/proc", c.pid)
	if err != nil || !st.Equal(tg.StartTime) {
		t.Fatalf("process killed or replaced in monitor mode: %v", err)
	}
	if got := procState(t, c.pid); got == "D" {
		t.Errorf("process state %s in monitor mode", got)
	}
	if s := filepath.Join("/sys/fs/cgroup/freezer/docker", c.id, "freezer.state"); fileExists(s) && readTrim(t, s) != "THAWED" {
		t.Errorf("freezer.state %s in monitor mode", readTrim(t, s))
	}
	if nsenter, err := exec.LookPath("nsenter"); err == nil {
		if err := exec.Command(nsenter, "-t", strconv.Itoa(int(c.pid)), "-n", "nft", "list", "table", "inet", IsolateTable).Run(); err == nil {
			t.Errorf("isolation table created in monitor mode")
		}
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// BenchmarkFreezeThaw measures one freeze and thaw of a container's cgroup
// v1 freezer, each waited for until the kernel reports it.
func BenchmarkFreezeThaw(b *testing.B) {
	vigiltest.RequireRoot(b)
	vigiltest.RequireBookwormImage(b)
	out, err := exec.Command("docker", "run", "-d", "--rm", "--network", "none", vigiltest.BookwormImage, "sleep", "600").Output()
	if err != nil {
		b.Fatal(err)
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command("docker", "rm", "-f", id).Run()
	r, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tg := Target{ContainerID: id}
	f, err := r.freezerOf(ctx, tg)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := f.set(ctx, true); err != nil {
			b.Fatal(err)
		}
		if err := f.set(ctx, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIsolateUnisolate measures isolating a container's network and
// lifting it again (two nftables transactions in its namespace, each with
// its netns resolution and checks).
func BenchmarkIsolateUnisolate(b *testing.B) {
	vigiltest.RequireRoot(b)
	vigiltest.RequireBookwormImage(b)
	out, err := exec.Command("docker", "run", "-d", "--rm", vigiltest.BookwormImage, "sleep", "600").Output()
	if err != nil {
		b.Fatal(err)
	}
	id := strings.TrimSpace(string(out))
	defer exec.Command("docker", "rm", "-f", id).Run()
	pidOut, err := exec.Command("docker", "inspect", "-f", "{{.State.Pid}}", id).Output()
	if err != nil {
		b.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidOut)))
	r, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tg := Target{PID: int32(pid), ContainerID: id}
	for b.Loop() {
		if rec := r.Do(ctx, Isolate, tg, "bench", true, true, "agent"); rec.Outcome != OutcomeDone {
			b.Fatal(rec.Error)
		}
		if rec := r.Do(ctx, Unisolate, tg, "bench", true, true, "agent"); rec.Outcome != OutcomeDone {
			b.Fatal(rec.Error)
		}
	}
}

// BenchmarkKill measures a checked kill (pidfd, start time, cgroup, signal)
// of a host child process; starting the process is not timed.
func BenchmarkKill(b *testing.B) {
	vigiltest.RequireRoot(b)
	r, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		cmd := exec.Command("sleep", "60")
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		pid := int32(cmd.Process.Pid)
		st, err := StartTimeOf("/proc", pid)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if rec := r.Do(ctx, Kill, Target{PID: pid, StartTime: st}, "bench", true, true, "agent"); rec.Outcome != OutcomeDone {
			b.Fatal(rec.Error)
		}
		b.StopTimer()
		_ = cmd.Wait()
		b.StartTimer()
	}
}
