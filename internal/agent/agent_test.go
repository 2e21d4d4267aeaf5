package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestContainerShadowRead is issue 4's "done when": with the agent running,
// `docker run --rm --network none IMG sh -c 'cat /etc/shadow'` yields the
// exec and the open events with the container's ID, name and image. It
// also checks the metrics and health endpoints.
func TestContainerShadowRead(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pr, pw := io.Pipe()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	o := DefaultOptions()
	o.Output, o.MetricsAddr = pw, "127.0.0.1:0"
	o.Ready = func(a net.Addr) { ready <- a }
	go func() { done <- Run(ctx, o); pw.Close() }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready after 60 s")
	}

	// Read the output from the start, as a terminal or a file would.
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	name := "vigil-agent-test-" + strings.ReplaceAll(t.Name(), "/", "-")
	out, err := exec.Command("docker", "run", "--rm", "--name", strings.ToLower(name), "--network", "none", img,
		"sh", "-c", "cat /etc/shadow >/dev/null").CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	id := ""
	var gotExec, gotOpen *event.Event
	deadline := time.AfterFunc(30*time.Second, func() { cancel() })
	defer deadline.Stop()
	for sc.Scan() && (gotExec == nil || gotOpen == nil) {
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("bad event line %q: %v", sc.Text(), err)
		}
		if e.Process.Name != "cat" || e.Workload == nil || e.Workload.ContainerName != strings.ToLower(name) {
			continue
		}
		switch {
		case e.Type == event.ProcessExec && len(e.Process.Args) == 2 && e.Process.Args[1] == "/etc/shadow":
			gotExec = &e
		case e.Type == event.FileOpen && e.File != nil && e.File.Path == "/etc/shadow":
			gotOpen = &e
		}
		id = e.Workload.ContainerID
	}
	if gotExec == nil || gotOpen == nil {
		t.Fatalf("events not seen before the deadline: exec %v, open %v", gotExec != nil, gotOpen != nil)
	}
	for _, e := range []*event.Event{gotExec, gotOpen} {
		w := e.Workload
		if len(w.ContainerID) != 64 || w.ContainerID != id || w.Image != img || w.Runtime != "docker" || w.NetworkMode != "none" {
			t.Errorf("%s: workload %+v", e.Type, w)
		}
		if e.Parent == nil || e.Parent.Name != "sh" {
			t.Errorf("%s: parent %+v, want the container's sh", e.Type, e.Parent)
		}
	}
	if gotExec.Process.Exe != "/usr/bin/cat" && gotExec.Process.Exe != "/bin/cat" {
		t.Errorf("exec of %q", gotExec.Process.Exe)
	}

	for _, path := range []string{"/metrics", "/healthz"} {
		resp, err := http.Get("http://" + addr.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		want := map[string]string{"/metrics": "vigil_agent_events_total", "/healthz": `"Attached":true`}[path]
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body lacks %q", path, resp.StatusCode, want)
		}
	}
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Errorf("agent: %v", err)
	}
}
