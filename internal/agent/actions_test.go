package agent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// agentRun is the agent running in-process for a test, its output read
// from the start and kept: the raw lines and the decoded events.
type agentRun struct {
	mu     sync.Mutex
	lines  [][]byte
	events []event.Event
	bad    []string // lines that do not decode
	more   chan struct{}
	closed bool
}

// startAgent starts the agent and returns once its sensor is attached.
// The agent is stopped when the test ends.
func startAgent(t *testing.T) *agentRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	ready := make(chan struct{})
	done := make(chan error, 1)
	o := DefaultOptions()
	o.Output = pw
	o.Ready = func(net.Addr) { close(ready) }
	go func() { done <- Run(ctx, o); pw.Close() }()
	a := &agentRun{more: make(chan struct{}, 1)}
	read := make(chan struct{})
	go func() {
		defer close(read)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := bytes.Clone(sc.Bytes())
			var e event.Event
			err := json.Unmarshal(line, &e)
			a.mu.Lock()
			a.lines = append(a.lines, line)
			if err != nil {
				a.bad = append(a.bad, fmt.Sprintf("%v: %.300s", err, line))
			} else {
				a.events = append(a.events, e)
			}
			a.mu.Unlock()
			a.notify()
		}
		io.Copy(io.Discard, pr)
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		a.notify()
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
		<-read
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready after 60 s")
	}
	return a
}

func (a *agentRun) notify() {
	select {
	case a.more <- struct{}{}:
	default:
	}
}

// waitAll waits until every matcher has matched an event, or the timeout
// passes, and returns the first event each matched. Events already written
// count. Missing matches are returned by name.
func (a *agentRun) waitAll(timeout time.Duration, match map[string]func(*event.Event) bool) (map[string]*event.Event, []string) {
	got := make(map[string]*event.Event, len(match))
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	next, expired := 0, false
	for {
		a.mu.Lock()
		evs, closed := a.events[next:], a.closed
		next = len(a.events)
		a.mu.Unlock()
		for i := range evs {
			e := &evs[i]
			for name, m := range match {
				if got[name] == nil && m(e) {
					got[name] = e
				}
			}
		}
		if len(got) == len(match) || closed || expired {
			return got, missing(match, got)
		}
		select {
		case <-a.more:
		case <-deadline.C:
			expired = true // one last pass over what arrived meanwhile
		}
	}
}

func missing(match map[string]func(*event.Event) bool, got map[string]*event.Event) []string {
	var out []string
	for name := range match {
		if got[name] == nil {
			out = append(out, name)
		}
	}
	return out
}

// buildActor builds testdata/actor statically, for bind-mounting into
// containers, and returns its path.
func buildActor(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	out := filepath.Join(t.TempDir(), "actor")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/actor")
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the actor: %v\n%s", err, b)
	}
	return out
}

// uniqueName is a container name for this test and run.
func uniqueName(t *testing.T, what string) string {
	return strings.ToLower(fmt.Sprintf("vigil-%s-%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), what, time.Now().UnixNano()))
}
