package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-cwpp/vigil/internal/agent"
	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/hub"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// TestBrowserFreezeContainer is the console's headline: an alert from a
// real container arrives from an agent (internal/uplink with the agent's
// command Handler) over the real agent channel (internal/hub), the
// analyst opens it in the browser, clicks Freeze and confirms, the page
// shows "freeze: done" and the container's cgroup freezer is FROZEN; the
// Undo button on the response thaws it.
func TestBrowserFreezeContainer(t *testing.T) {
	vigiltest.RequireRoot(t)
	image := vigiltest.RequireBookwormImage(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)

	// The hub first (the server needs it as its Agents), then the server.
	h := &lateHub{}
	e := startServer(t, h)
	h.Hub = hub.New(hub.Options{Store: e.st, CA: e.ca, Logger: quiet})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tc, err := e.ca.ServerTLS([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	hubDone := make(chan error, 1)
	go func() { hubDone <- hub.ServeListener(ctx, ln, h.Hub, tc) }()
	t.Cleanup(func() { cancel(); <-hubDone })

	// The container.
	name := fmt.Sprintf("vigil-console-%d", time.Now().UnixNano())
	cid := strings.TrimSpace(vigiltest.Run(t, "", "docker", "run", "-d", "--network", "none", "--name", name, image, "sleep", "infinity"))
	t.Cleanup(func() {
		// Thaw first: a frozen container cannot be removed.
		writeFreezer(cid, "THAWED")
		exec.Command("docker", "rm", "-f", cid).Run()
	})
	if st := freezerState(t, cid); st != "THAWED" {
		t.Fatalf("new container's freezer is %q", st)
	}

	// The agent: enroll with a one-time token, connect, and run commands
	// with the agent's own Handler over a Detector whose Responder acts
	// for real (operator commands are enforced whatever the policy).
	const token = "console-test-enroll-token"
	if err := e.st.CreateEnrollToken(ctx, store.EnrollToken{Hash: hub.TokenHash(token), CreatedBy: "test", Created: time.Now(), Expires: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	resp, err := response.New(response.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Close() })
	c, err := uplink.New(uplink.Options{Server: ln.Addr().String(), StateDir: t.TempDir(), EnrollToken: token,
		CAFingerprint: e.ca.Fingerprint(), Hostname: "console-test-host", Version: "test", Logger: quiet,
		Handler: agent.NewHandler(agent.NewDetector(agent.Detection{Responder: resp, Logger: quiet}), agent.HandlerOptions{Logger: quiet})})
	if err != nil {
		t.Fatalf("uplink.New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	upDone := make(chan error, 1)
	go func() { upDone <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-upDone })

	// The alert, as the agent's detector writes it.
	now := time.Now().UTC()
	a := alert.Alert{Time: now, Type: "alert", Rule: "Terminal shell in container", Priority: "warning", Source: alert.SourceRules,
		Tactics: []string{"TA0002 Execution"}, Techniques: []string{"T1059.004"}, Count: 1,
		Output: "A shell was spawned in a container (container=" + name + ")",
		Event: &event.Event{Time: now, Type: event.ProcessExec,
			Process:  event.Process{PID: 999999, Name: "bash", Exe: "/usr/bin/bash", CmdLine: "bash -i", User: "root"},
			Parent:   &event.Process{PID: 999998, Name: "sleep", Exe: "/usr/bin/sleep", CmdLine: "sleep infinity", User: "root"},
			Workload: &event.Workload{Host: "console-test-host", ContainerID: cid, ContainerName: name, Runtime: "docker", Image: image}},
	}
	if err := c.Send(wire.KindAlert, a); err != nil {
		t.Fatalf("uplink Send: %v", err)
	}

	// The analyst.
	b := newBrowser(t, e.base)
	b.login("admin", e.password)
	b.open("/alerts", "#alerts-body")
	b.waitText("#alerts-body", name) // the list refreshes by itself
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="alerts-table"] [data-testid="alert-link"]`)))
	b.waitText(`[data-testid="wl-container-id"]`, cid)
	waitConnected(t, h.Hub)

	b.do(chromedp.Click(chromedp.CSS("#respond-freeze")), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	if got := b.text("#confirm-text"); !strings.Contains(got, name) {
		t.Errorf("confirmation %q does not name the container %s", got, name)
	}
	b.do(chromedp.Click(chromedp.CSS("#confirm-yes")))
	b.waitText("#response-result", "freeze: done")
	if st := freezerState(t, cid); st != "FROZEN" {
		t.Fatalf("the page says freeze: done but the container's freezer is %q", st)
	}
	// Docker does not know: the freezer cgroup was written directly.
	if paused := strings.TrimSpace(vigiltest.Run(t, "", "docker", "inspect", "-f", "{{.State.Paused}}", cid)); paused != "false" {
		t.Errorf("docker inspect State.Paused = %s while frozen (docs/console.md says Docker does not know)", paused)
	}
	b.waitText(`[data-testid="responses-table"]`, "freeze")
	b.screenshot("alert-frozen")

	// Undo on the freeze record thaws it.
	b.do(chromedp.Click(chromedp.CSS(`[data-testid="responses-table"] button.undo`)), chromedp.WaitVisible(chromedp.CSS("#confirm-dialog")))
	b.do(chromedp.Click(chromedp.CSS("#confirm-yes")))
	b.waitText("#response-result", "unfreeze: done")
	if st := freezerState(t, cid); st != "THAWED" {
		t.Fatalf("the page says unfreeze: done but the container's freezer is %q", st)
	}
	b.waitText(`[data-testid="responses-table"]`, "done (undone)")
	if n := evalJS[int](b, `document.querySelectorAll('[data-testid="responses-table"] button.undo').length`); n != 0 {
		t.Errorf("%d Undo buttons left after the undo", n)
	}
	// And the container runs again: docker exec works.
	vigiltest.Run(t, "", "docker", "exec", name, "true")
}

var quiet = slog.New(slog.DiscardHandler)

// lateHub lets the server be built before the hub that needs its store.
type lateHub struct{ *hub.Hub }

func (l *lateHub) Command(ctx context.Context, id string, c wire.Command) (wire.CommandResult, error) {
	return l.Hub.Command(ctx, id, c)
}
func (l *lateHub) Connected() []string {
	if l.Hub == nil {
		return nil
	}
	return l.Hub.Connected()
}

func waitConnected(t *testing.T, h *hub.Hub) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for len(h.Connected()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not connect to the hub within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freezerPath(cid string) string {
	return filepath.Join("/sys/fs/cgroup/freezer/docker", cid, "freezer.state")
}

func freezerState(t *testing.T, cid string) string {
	t.Helper()
	b, err := os.ReadFile(freezerPath(cid))
	if err != nil {
		vigiltest.Unavailable(t, "needs the cgroup v1 freezer with the cgroupfs driver: %v", err)
	}
	return strings.TrimSpace(string(b))
}

func writeFreezer(cid, state string) { os.WriteFile(freezerPath(cid), []byte(state), 0o644) }
