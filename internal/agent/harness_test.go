package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
)

// The test harness shared by the agent's end-to-end tests: the agent
// running in-process, its output read and decoded as it comes, waits for
// what a test expects with a deadline, and the testdata programs built
// statically for bind-mounting into containers.

// agentRun is the agent running in-process for a test, its output read
// from the start: the alerts, the events (all, or those its filters keep)
// and, when keepLines is set, every raw line.
type agentRun struct {
	// Set by a setup function before the agent starts.
	keepLines bool // keep every raw output line in lines
	// keepLine, when set, says (called with mu held) whether an event line
	// is decoded and kept; alerts are always kept.
	keepLine func(line []byte) bool
	// onEvent, when set, is called (with mu held) with each decoded event
	// and says whether to keep it; it may trim the event.
	onEvent func(e *event.Event) bool
	// explain, when set, adds to the message of a wait that timed out
	// (called with mu held).
	explain func() string

	mu     sync.Mutex
	lines  [][]byte
	events []event.Event
	alerts []alert.Alert
	bad    []string // lines that do not decode
	more   chan struct{}
	closed bool
	log    lockedBuffer // the agent's log, when a setup sends it there
	addr   net.Addr     // of its metrics and health endpoint

	stopOnce sync.Once
	stopErr  error
	shutdown func() error
}

// withDebugLog keeps every output line and the agent's log at debug level.
func withDebugLog(a *agentRun, o *Options) {
	a.keepLines = true
	o.Logger = slog.New(slog.NewTextHandler(&a.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startAgent starts the agent with the default options, every output line
// kept and its debug log in a.log, and returns once its sensor is
// attached. The agent is stopped when the test ends.
func startAgent(t *testing.T) *agentRun {
	t.Helper()
	return startAgentWith(t, withDebugLog)
}

// startAgentWith starts the agent with the default options as setup
// changes them, and returns once its sensor is attached. When the test
// ends, the agent is stopped (if stop was not called before) and its error
// and any output line that did not decode fail the test.
func startAgentWith(t *testing.T, setup func(*agentRun, *Options)) *agentRun {
	t.Helper()
	a, err := launchAgent(setup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.stop(); err != nil {
			t.Errorf("agent: %v", err)
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if len(a.bad) > 0 {
			t.Errorf("%d output lines do not decode, the first: %s", len(a.bad), a.bad[0])
		}
	})
	return a
}

// launchAgent starts the agent with the default options as setup (if not
// nil) changes them — Output, MetricsAddr and Ready are the harness's —
// and returns once its sensor is attached; stop ends it.
func launchAgent(setup func(*agentRun, *Options)) (*agentRun, error) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	ready := make(chan struct{})
	done := make(chan error, 1)
	a := &agentRun{more: make(chan struct{}, 1)}
	o := DefaultOptions()
	if setup != nil {
		setup(a, &o)
	}
	o.Output = pw
	o.MetricsAddr = "127.0.0.1:0"
	o.Ready = func(addr net.Addr) { a.addr = addr; close(ready) }
	go func() { done <- Run(ctx, o); pw.Close() }()
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		for sc.Scan() {
			a.take(sc.Bytes())
		}
		io.Copy(io.Discard, pr)
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.notify()
	}()
	a.shutdown = func() error {
		cancel()
		err := <-done
		<-read
		return err
	}
	select {
	case <-ready:
		return a, nil
	case err := <-done:
		cancel()
		<-read
		return nil, fmt.Errorf("agent stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		a.stop()
		return nil, fmt.Errorf("agent not ready after 60 s")
	}
}

// stop stops the agent and waits for it; later calls return the first
// call's error.
func (a *agentRun) stop() error {
	a.stopOnce.Do(func() { a.stopErr = a.shutdown() })
	return a.stopErr
}

// take files one output line.
func (a *agentRun) take(line []byte) {
	if bytes.Contains(line[:min(len(line), 80)], []byte(`"type":"alert"`)) {
		var al alert.Alert
		err := json.Unmarshal(line, &al)
		a.mu.Lock()
		if a.keepLines {
			a.lines = append(a.lines, bytes.Clone(line))
		}
		if err != nil {
			a.bad = append(a.bad, fmt.Sprintf("%v: %.300s", err, line))
		} else {
			a.alerts = append(a.alerts, al)
		}
		a.mu.Unlock()
		a.notify()
		return
	}
	a.mu.Lock()
	if a.keepLines {
		a.lines = append(a.lines, bytes.Clone(line))
	}
	keep := a.keepLine == nil || a.keepLine(line)
	a.mu.Unlock()
	if !keep {
		return
	}
	var e event.Event
	err := json.Unmarshal(line, &e)
	a.mu.Lock()
	if err != nil {
		a.bad = append(a.bad, fmt.Sprintf("%v: %.300s", err, line))
	} else if a.onEvent == nil || a.onEvent(&e) {
		a.events = append(a.events, e)
	}
	a.mu.Unlock()
	a.notify()
}

func (a *agentRun) notify() {
	select {
	case a.more <- struct{}{}:
	default:
	}
}

// wait calls cond (with a.mu held) whenever output arrives until it
// returns true, the output ends or the timeout passes (then it looks one
// last time); it reports whether cond returned true and whether the
// output had ended.
func (a *agentRun) wait(timeout time.Duration, cond func() bool) (ok, closed bool) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for expired := false; ; {
		a.mu.Lock()
		ok, closed = cond(), a.closed
		a.mu.Unlock()
		if ok || closed || expired {
			return ok, closed
		}
		select {
		case <-a.more:
		case <-deadline.C:
			expired = true // one last look at what arrived meanwhile
		}
	}
}

// waitOrFail is wait failing t, naming what, when cond did not hold in
// time.
func (a *agentRun) waitOrFail(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if ok, closed := a.wait(timeout, cond); !ok {
		more := ""
		if a.explain != nil {
			a.mu.Lock()
			more = a.explain()
			a.mu.Unlock()
		}
		t.Fatalf("%s: not seen within %s (agent output closed: %v)%s", what, timeout, closed, more)
	}
}

// waitAlert waits for the first alert (since the start) that match
// accepts, and fails t, naming what, when none comes in time.
func (a *agentRun) waitAlert(t *testing.T, timeout time.Duration, what string, match func(*alert.Alert) bool) *alert.Alert {
	t.Helper()
	var got *alert.Alert
	a.waitOrFail(t, timeout, what, func() bool {
		for i := range a.alerts {
			if match(&a.alerts[i]) {
				al := a.alerts[i]
				got = &al
				return true
			}
		}
		return false
	})
	return got
}

// waitEvent waits for the first kept event that match accepts, and fails
// t, naming what, when none comes in time.
func (a *agentRun) waitEvent(t *testing.T, timeout time.Duration, what string, match func(*event.Event) bool) *event.Event {
	t.Helper()
	var got *event.Event
	a.waitOrFail(t, timeout, what, func() bool {
		for i := range a.events {
			if match(&a.events[i]) {
				e := a.events[i]
				got = &e
				return true
			}
		}
		return false
	})
	return got
}

// waitAll waits until every matcher has matched an event, or the timeout
// passes, and returns the first event each matched. Events already written
// count. Missing matches are returned by name.
func (a *agentRun) waitAll(timeout time.Duration, match map[string]func(*event.Event) bool) (map[string]*event.Event, []string) {
	got := make(map[string]*event.Event, len(match))
	next := 0
	a.wait(timeout, func() bool {
		for i := next; i < len(a.events); i++ {
			e := a.events[i]
			for name, m := range match {
				if got[name] == nil && m(&e) {
					got[name] = &e
				}
			}
		}
		next = len(a.events)
		return len(got) == len(match)
	})
	var missing []string
	for name := range match {
		if got[name] == nil {
			missing = append(missing, name)
		}
	}
	return got, missing
}

// alertsWhere returns the alerts so far that match accepts.
func (a *agentRun) alertsWhere(match func(*alert.Alert) bool) []alert.Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []alert.Alert
	for _, al := range a.alerts {
		if match(&al) {
			out = append(out, al)
		}
	}
	return out
}

// eventsOf counts the kept events match accepts.
func (a *agentRun) eventsOf(match func(*event.Event) bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for i := range a.events {
		if match(&a.events[i]) {
			n++
		}
	}
	return n
}

// health returns the "Stats" of the agent's /healthz (events, ring-buffer
// drops).
func (a *agentRun) health() (json.RawMessage, error) {
	resp, err := http.Get("http://" + a.addr.String() + "/healthz")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var h struct{ Stats json.RawMessage }
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		return nil, err
	}
	return h.Stats, nil
}

// stats returns the agent's /healthz counters, for failure messages.
func (a *agentRun) stats() string {
	s, err := a.health()
	if err != nil {
		return err.Error()
	}
	return string(s)
}

// drops is the sensor's count of events lost because the ring buffer was
// full, from the agent's /healthz.
func (a *agentRun) drops(t *testing.T) uint64 {
	t.Helper()
	s, err := a.health()
	var st struct{ Drops uint64 }
	if err == nil {
		err = json.Unmarshal(s, &st)
	}
	if err != nil {
		t.Fatalf("agent health: %v", err)
	}
	return st.Drops
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written.
func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// grep returns the log lines that contain s.
func (l *lockedBuffer) grep(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out strings.Builder
	for line := range strings.Lines(l.b.String()) {
		if strings.Contains(line, s) {
			out.WriteString(line)
		}
	}
	return out.String()
}

// buildTestProgram builds the package pkg of this directory (such as
// "testdata/miner") statically, for bind-mounting into containers, and
// returns the binary's path: a file named after the package in a
// directory of its own.
func buildTestProgram(t *testing.T, pkg string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, "./"+pkg)
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// buildActor builds testdata/actor, the program performing the actions
// shell tools cannot, and returns its path.
func buildActor(t *testing.T) string {
	t.Helper()
	return buildTestProgram(t, "testdata/actor")
}

// uniqueName is a container name for this test and run.
func uniqueName(t *testing.T, what string) string {
	return strings.ToLower(fmt.Sprintf("vigil-%s-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), what, time.Now().UnixNano()))
}
