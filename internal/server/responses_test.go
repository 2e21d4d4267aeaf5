package server

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// agentAnswers answers respond and undo the way the agent's Responder
// would: a record with the command's action and target, done.
func agentAnswers(now time.Time) func(context.Context, string, wire.Command) (wire.CommandResult, error) {
	return func(_ context.Context, _ string, c wire.Command) (wire.CommandResult, error) {
		rec := response.Record{ID: "rec-" + c.ID, Time: now, Reason: c.Reason, Mode: response.ModeEnforce, Actor: c.Actor, Outcome: response.OutcomeDone}
		switch c.Kind {
		case wire.CommandRespond:
			rec.Action = response.Action(c.Action)
			if err := json.Unmarshal(c.Target, &rec.Target); err != nil {
				return wire.CommandResult{ID: c.ID, Error: err.Error()}, nil
			}
		case wire.CommandUndo:
			rec.Action, rec.UndoOf = response.Unfreeze, c.RecordID
			rec.Target.ContainerID = strings.Repeat("a", 64)
		default:
			return wire.CommandResult{ID: c.ID, OK: true}, nil
		}
		b, _ := json.Marshal(rec)
		return wire.CommandResult{ID: c.ID, OK: true, Record: b}, nil
	}
}

// TestRespond: a response on an alert pushes the right command to the
// alert's agent with the target from its raw event, stores and publishes
// the record, links it to the alert, and can be undone once.
func TestRespond(t *testing.T) { testRespond(t) }

func testRespond(t *testing.T) {
	e := newEnv(t)
	now := e.clk.Now()
	as := seedAlerts(t, e.st, now, 4)
	e.agents.connected = []string{"agent-1"}
	e.agents.answer = agentAnswers(now)
	admin := e.login("admin", e.adminPW)
	ana := e.tokenClient(e.newToken(admin, "ana", "analyst"))

	// freeze: the container, without the (possibly gone) process.
	var fr store.Response
	st, body := ana.raw("POST", "/api/v1/responses", map[string]string{"alert_id": as[0].ID, "action": "freeze"}, nil)
	if st != 200 {
		t.Fatalf("freeze: %d %s", st, body)
	}
	checkSchema(t, "Response", body)
	json.Unmarshal(body, &fr)
	cmds := e.agents.commands()
	if len(cmds) != 1 {
		t.Fatalf("%d commands sent, want 1", len(cmds))
	}
	c := cmds[0]
	var tgt response.Target
	json.Unmarshal(c.Target, &tgt)
	if want := (response.Target{ContainerID: as[0].ContainerID, Runtime: "docker", Class: "web"}); c.Kind != wire.CommandRespond || c.Action != "freeze" || c.Actor != "token:ana" || c.Reason != as[0].Rule || tgt != want {
		t.Errorf("command %+v target %+v, want respond/freeze by token:ana on %+v", c, tgt, want)
	}
	if fr.ID != "rec-"+c.ID || fr.AlertID != as[0].ID || fr.AgentID != "agent-1" || fr.Outcome != "done" || fr.Target != as[0].ContainerID || len(fr.Record) == 0 {
		t.Errorf("stored response %+v", fr)
	}
	select {
	case b := <-e.published:
		if len(b.Responses) != 1 || b.Responses[0].ID != fr.ID || b.AgentID != "" {
			t.Errorf("published %+v", b)
		}
	case <-time.After(5 * time.Second):
		t.Error("the response was not published")
	}
	var d alertDetail
	if ana.do("GET", "/api/v1/alerts/"+as[0].ID, nil, &d); len(d.Actions) != 1 || d.Actions[0].ID != fr.ID {
		t.Errorf("alert actions %+v, want the freeze", d.Actions)
	}
	if want := "freeze: done (token:ana, response " + fr.ID + ")"; len(d.Responses) != 1 || d.Responses[0] != want || !d.LastSeen.Equal(as[0].LastSeen) {
		t.Errorf("alert responses %q last seen %s, want [%q] and the last seen unchanged", d.Responses, d.LastSeen, want)
	}
	// The agent spools its own copy of the record; the hub upserts it
	// without the alert ID. The alert still lists the action.
	hubCopy := fr
	hubCopy.AlertID = ""
	if err := e.st.PutAgent(t.Context(), store.Agent{ID: "agent-1", Hostname: "node1", Enrolled: now}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Apply(t.Context(), &store.Batch{AgentID: "agent-1", FirstSeq: 1, LastSeq: 1, Responses: []store.Response{hubCopy}}); err != nil {
		t.Fatal(err)
	}
	if ana.do("GET", "/api/v1/alerts/"+as[0].ID, nil, &d); len(d.Actions) != 1 || d.Actions[0].ID != fr.ID {
		t.Errorf("after the hub's copy: alert actions %+v, want the freeze", d.Actions)
	}

	// kill: the process with its start time (the PID-reuse guard).
	if st := ana.do("POST", "/api/v1/responses", map[string]string{"alert_id": as[1].ID, "action": "kill"}, nil); st != 200 {
		t.Fatalf("kill: %d", st)
	}
	cmds = e.agents.commands()
	json.Unmarshal(cmds[1].Target, &tgt)
	wantStart := as[1].Time.Add(-time.Minute).Truncate(10 * time.Millisecond)
	if tgt.PID != 4242 || !tgt.StartTime.Equal(wantStart) || tgt.ContainerID != as[1].ContainerID {
		t.Errorf("kill target %+v, want pid 4242 started %s in %s", tgt, wantStart, as[1].ContainerID)
	}

	// A direct target, without an alert.
	direct := map[string]any{"agent_id": "agent-1", "action": "isolate", "target": map[string]string{"container_id": "abc"}}
	if st := ana.do("POST", "/api/v1/responses", direct, nil); st != 200 {
		t.Errorf("direct target: %d", st)
	}

	// Undo the freeze once; a second undo and an undo of a kill conflict.
	var un store.Response
	if st := ana.do("POST", "/api/v1/responses/"+fr.ID+"/undo", nil, &un); st != 200 || un.Action != "unfreeze" || un.AlertID != as[0].ID {
		t.Fatalf("undo: %d %+v", st, un)
	}
	if last := e.agents.commands()[3]; last.Kind != wire.CommandUndo || last.RecordID != fr.ID {
		t.Errorf("undo command %+v", last)
	}
	var orig store.Response
	if ana.do("GET", "/api/v1/responses/"+fr.ID, nil, &orig); !orig.Undone {
		t.Error("the freeze is not marked undone")
	}
	if st := ana.do("POST", "/api/v1/responses/"+fr.ID+"/undo", nil, nil); st != 409 {
		t.Errorf("second undo: %d, want 409", st)
	}
	rs, _ := e.st.Responses(t.Context(), "agent-1", 10)
	for _, x := range rs {
		if x.Action == "kill" {
			if st := ana.do("POST", "/api/v1/responses/"+x.ID+"/undo", nil, nil); st != 409 {
				t.Errorf("undo of a kill: %d, want 409", st)
			}
		}
	}

	// Refusals: bad action, unknown alert, both forms, a disconnected
	// agent, a read-only token.
	other := testAlert("agent-2", strings.Repeat("c", 64), now, 2, "R")
	if _, err := e.st.Apply(t.Context(), &store.Batch{Alerts: []store.Alert{other}}); err != nil {
		t.Fatal(err)
	}
	n := len(e.agents.commands())
	for _, c := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"alert_id": as[0].ID, "action": "explode"}, 400},
		{map[string]any{"alert_id": uuid.NewString(), "action": "kill"}, 404},
		{map[string]any{"alert_id": as[0].ID, "agent_id": "agent-1", "action": "kill"}, 400},
		{map[string]any{"action": "kill"}, 400},
		{map[string]any{"alert_id": as[0].ID, "action": "kill", "pid": 1}, 400},
		{map[string]any{"alert_id": other.ID, "action": "freeze"}, 409},
	} {
		if st, b := ana.raw("POST", "/api/v1/responses", c.body, nil); st != c.want {
			t.Errorf("%v: %d %s, want %d", c.body, st, b, c.want)
		}
	}
	ro := e.tokenClient(e.newToken(admin, "ro", "read-only"))
	if st := ro.do("POST", "/api/v1/responses", map[string]string{"alert_id": as[0].ID, "action": "freeze"}, nil); st != 403 {
		t.Errorf("read-only respond: %d, want 403", st)
	}
	if got := len(e.agents.commands()); got != n {
		t.Errorf("refused requests sent %d commands", got-n)
	}
	for _, a := range []struct {
		action, actor string
		ok            bool
	}{{"respond", "token:ana", true}, {"respond", "token:ana", false}, {"respond", "token:ro", false}, {"undo", "token:ana", true}, {"undo", "token:ana", false}} {
		if !e.auditHas(a.action, a.actor, a.ok) {
			t.Errorf("no audit entry %s by %s ok=%v", a.action, a.actor, a.ok)
		}
	}
}

// TestRespondAgentFailures: an agent that does not answer in time gives
// 504, one that refuses 422, a failed action is stored with its outcome.
func TestRespondAgentFailures(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CommandTimeout = 200 * time.Millisecond })
	as := seedAlerts(t, e.st, e.clk.Now(), 1)
	e.agents.connected = []string{"agent-1"}
	ana := e.tokenClient(e.newToken(e.login("admin", e.adminPW), "ana", "analyst"))
	req := map[string]string{"alert_id": as[0].ID, "action": "freeze"}

	e.agents.answer = func(ctx context.Context, _ string, c wire.Command) (wire.CommandResult, error) {
		<-ctx.Done() // the hub waits on the context; so does this double
		return wire.CommandResult{}, ctx.Err()
	}
	if st := ana.do("POST", "/api/v1/responses", req, nil); st != 504 {
		t.Errorf("silent agent: %d, want 504", st)
	}
	e.agents.answer = func(_ context.Context, _ string, c wire.Command) (wire.CommandResult, error) {
		return wire.CommandResult{ID: c.ID, Error: "busy"}, nil
	}
	if st, b := ana.raw("POST", "/api/v1/responses", req, nil); st != 422 || !strings.Contains(string(b), "busy") {
		t.Errorf("refusing agent: %d %s, want 422 with its error", st, b)
	}
	e.agents.answer = func(_ context.Context, _ string, c wire.Command) (wire.CommandResult, error) {
		rec, _ := json.Marshal(response.Record{ID: "r1", Action: response.Freeze, Outcome: response.OutcomeFailed, Error: "container is not running", Target: response.Target{ContainerID: "x"}})
		return wire.CommandResult{ID: c.ID, OK: false, Error: "container is not running", Record: rec}, nil
	}
	var r store.Response
	if st := ana.do("POST", "/api/v1/responses", req, &r); st != 200 || r.Outcome != "failed" || r.Error == "" {
		t.Errorf("failed action: %d %+v, want 200 with outcome failed", st, r)
	}
	if !e.auditHas("respond", "token:ana", false) {
		t.Error("failed response not audited as not ok")
	}
}

// TestSetMode pushes set_mode and records the mode on the stored profile.
func TestSetMode(t *testing.T) { testSetMode(t) }

func testSetMode(t *testing.T) {
	e := newEnv(t)
	e.agents.connected = []string{"agent-1"}
	if _, err := e.st.Apply(t.Context(), &store.Batch{Profiles: []store.Profile{{AgentID: "agent-1", Class: "web", Mode: "discover", Updated: e.clk.Now(), Data: json.RawMessage(`{}`)}}}); err != nil {
		t.Fatal(err)
	}
	c := e.login("admin", e.adminPW)
	st, body := c.raw("POST", "/api/v1/profiles/mode", map[string]string{"agent_id": "agent-1", "class": "web", "mode": "protect"}, nil)
	if st != 200 {
		t.Fatalf("set mode: %d %s", st, body)
	}
	checkSchema(t, "ModeResponse", body)
	cmds := e.agents.commands()
	if len(cmds) != 1 || cmds[0].Kind != wire.CommandSetMode || cmds[0].Class != "web" || cmds[0].Mode != "protect" || cmds[0].Actor != "admin" {
		t.Errorf("commands %+v", cmds)
	}
	ps, _ := e.st.Profiles(t.Context())
	if len(ps) != 1 || ps[0].Mode != "protect" {
		t.Errorf("stored profiles %+v, want web in protect", ps)
	}
	for _, c2 := range []struct {
		body map[string]string
		want int
	}{
		{map[string]string{"agent_id": "agent-1", "class": "web", "mode": "enforce"}, 400},
		{map[string]string{"agent_id": "agent-1", "mode": "monitor"}, 400},
		{map[string]string{"agent_id": "agent-9", "class": "web", "mode": "monitor"}, 409},
	} {
		if st := c.do("POST", "/api/v1/profiles/mode", c2.body, nil); st != c2.want {
			t.Errorf("%v: %d, want %d", c2.body, st, c2.want)
		}
	}
	if !e.auditHas("set-mode", "admin", true) || !e.auditHas("set-mode", "admin", false) {
		t.Error("mode changes not audited")
	}
}
