package uplink_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/agent"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// lateHandler forwards to the agent's Handler, which needs the client
// (for its spool) before it can be made.
type lateHandler struct{ h *agent.Handler }

func (l *lateHandler) Handle(ctx context.Context, c wire.Command) wire.CommandResult {
	return l.h.Handle(ctx, c)
}

// agentSide is an uplink client with a real Detector behind its commands:
// a Responder whose records go up through agent.ResponseLog, and a profile
// store.
type agentSide struct {
	*client
	det   *agent.Detector
	prof  *profile.Store
	resp  *response.Responder
	agent string
}

func newAgentSide(t *testing.T, srv *testServer) *agentSide {
	t.Helper()
	late := &lateHandler{}
	c := runClient(t, uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: srv.token(t),
		CAFingerprint: srv.ca.Fingerprint(), Handler: late})
	resp, err := response.New(response.Options{Log: agent.ResponseLog(c, nil), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Close() })
	ps, err := profile.New(profile.Options{Dir: filepath.Join(t.TempDir(), "profiles"), Learn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	det := agent.NewDetector(agent.Detection{Responder: resp, Profiles: ps, Policy: response.DefaultPolicy()})
	late.h = agent.NewHandler(det, agent.HandlerOptions{Uplink: c, Logger: quietLogger()})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	return &agentSide{client: c, det: det, prof: ps, resp: resp, agent: c.AgentID()}
}

func (a *agentSide) command(t *testing.T, srv *testServer, c wire.Command) wire.CommandResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := srv.hub.Command(ctx, a.agent, c)
	if err != nil {
		t.Fatalf("command %s: %v", c.Kind, err)
	}
	return res
}

// waitResponse waits for a response row matching ok in the store.
func waitResponse(t *testing.T, st store.Store, agentID string, what string, ok func(store.Response) bool) store.Response {
	t.Helper()
	var found store.Response
	waitFor(t, what, 20*time.Second, func() bool {
		rs, err := st.Responses(context.Background(), agentID, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if ok(r) {
				found = r
				return true
			}
		}
		return false
	})
	return found
}

// TestRespondFreezeCommand freezes a real container on a respond command
// the server pushes (hub.Command), then thaws it with undo: the container's
// freezer says FROZEN then THAWED, and both response records reach the
// store with the operator as actor.
func TestRespondFreezeCommand(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	id := strings.TrimSpace(vigiltest.Run(t, "", "docker", "run", "-d", "--rm", img, "sleep", "600"))
	state := filepath.Join("/sys/fs/cgroup/freezer/docker", id, "freezer.state")
	t.Cleanup(func() {
		_ = os.WriteFile(state, []byte("THAWED"), 0)
		_ = exec.Command("docker", "rm", "-f", id).Run()
	})
	if _, err := os.Stat(state); err != nil {
		vigiltest.Unavailable(t, "needs the cgroup v1 freezer of Docker containers: %v", err)
	}
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	a := newAgentSide(t, srv)

	target, _ := json.Marshal(response.Target{ContainerID: id})
	res := a.command(t, srv, wire.Command{Kind: wire.CommandRespond, Actor: "alice", Action: "freeze", Target: target, Reason: "console"})
	if !res.OK || res.Error != "" {
		t.Fatalf("freeze: %+v", res)
	}
	var rec response.Record
	if err := json.Unmarshal(res.Record, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Action != response.Freeze || rec.Mode != response.ModeEnforce || rec.Automatic || rec.Actor != "alice" || rec.Outcome != response.OutcomeDone {
		t.Errorf("freeze record %+v", rec)
	}
	if got := readTrim(t, state); got != "FROZEN" {
		t.Fatalf("freezer.state %s after the freeze command, want FROZEN", got)
	}
	row := waitResponse(t, srv.st, a.agent, "the freeze record in the store", func(r store.Response) bool { return r.ID == rec.ID })
	if row.Action != "freeze" || row.Actor != "alice" || row.Outcome != "done" || row.Target != id {
		t.Errorf("stored response %+v", row)
	}

	res = a.command(t, srv, wire.Command{Kind: wire.CommandUndo, Actor: "bob", RecordID: rec.ID})
	if !res.OK {
		t.Fatalf("undo: %+v", res)
	}
	if got := readTrim(t, state); got != "THAWED" {
		t.Fatalf("freezer.state %s after undo, want THAWED", got)
	}
	waitResponse(t, srv.st, a.agent, "the unfreeze record in the store", func(r store.Response) bool {
		return r.Action == "unfreeze" && r.Actor == "bob" && r.Outcome == "done"
	})
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestCommandsWithoutDocker checks the commands that need no container:
// bad requests are refused with a reason, set_mode switches a profile's
// mode and the profile reaches the store, profiles sends them all.
func TestCommandsWithoutDocker(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	a := newAgentSide(t, srv)

	for name, c := range map[string]wire.Command{
		"unknown kind":   {Kind: "format-disk"},
		"unknown action": {Kind: wire.CommandRespond, Action: "nuke", Target: json.RawMessage(`{"container_id":"abc"}`)},
		"bad target":     {Kind: wire.CommandRespond, Action: "freeze", Target: json.RawMessage(`{"container":"abc"}`)},
		"host target":    {Kind: wire.CommandRespond, Action: "freeze", Target: json.RawMessage(`{"pid":1234}`)},
		"undo unknown":   {Kind: wire.CommandUndo, RecordID: "0011223344556677"},
		"bad mode":       {Kind: wire.CommandSetMode, Class: "nginx", Mode: "paranoid"},
		"unknown class":  {Kind: wire.CommandSetMode, Class: "nope", Mode: "protect"},
		"rules disabled": {Kind: wire.CommandRules, Rules: []byte("- rule: x")},
	} {
		res := a.command(t, srv, c)
		if res.OK || res.Error == "" {
			t.Errorf("%s: %+v, want a refusal with a reason", name, res)
		}
	}
	// A freeze refused for a host target still leaves a failed record.
	waitResponse(t, srv.st, a.agent, "the refused freeze's record", func(r store.Response) bool {
		return r.Action == "freeze" && r.Outcome == "failed"
	})

	// A profile to switch: one container exec learned.
	a.prof.Observe(&event.Event{Type: event.ProcessExec, Time: time.Now(),
		Process:  event.Process{PID: 42, Name: "nginx", Exe: "/usr/sbin/nginx"},
		Workload: &event.Workload{ContainerID: strings.Repeat("ab", 32), Runtime: "docker", Image: "nginx:1.25"}})
	ps := a.prof.List()
	if len(ps) != 1 {
		t.Fatalf("%d profiles learned, want 1", len(ps))
	}
	class := ps[0].Class
	res := a.command(t, srv, wire.Command{Kind: wire.CommandSetMode, Actor: "alice", Class: class, Mode: "protect"})
	if !res.OK {
		t.Fatalf("set_mode: %+v", res)
	}
	if p, _ := a.prof.Get(class); p.Mode != profile.Protect {
		t.Errorf("mode after set_mode: %s", p.Mode)
	}
	waitFor(t, "the protect-mode profile in the store", 20*time.Second, func() bool {
		ps, err := srv.st.Profiles(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.AgentID == a.agent && p.Class == class && p.Mode == "protect" {
				return true
			}
		}
		return false
	})
	if res := a.command(t, srv, wire.Command{Kind: wire.CommandProfiles}); !res.OK {
		t.Errorf("profiles: %+v", res)
	}
}
