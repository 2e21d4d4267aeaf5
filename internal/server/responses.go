package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

type respondRequest struct {
	// AlertID names the alert to act on: agent and target come from it.
	AlertID string `json:"alert_id,omitempty"`
	// AgentID and Target name the target directly (without AlertID).
	AgentID string           `json:"agent_id,omitempty"`
	Target  *response.Target `json:"target,omitempty"`
	Action  string           `json:"action"`
	Reason  string           `json:"reason,omitempty"`
}

var respondActions = []string{"kill", "freeze", "unfreeze", "isolate", "unisolate", "stop"}

func (s *Server) respond(w http.ResponseWriter, r *http.Request, p *principal) {
	var req respondRequest
	if err := decodeJSON(r, &req); err != nil {
		s.audit(r, p, "respond", "", "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	agentID, target, reason, err := s.respondTarget(r, &req)
	auditTarget := req.Action + " " + targetName(target)
	if req.AlertID != "" {
		auditTarget += " (alert " + req.AlertID + ")"
	}
	if err != nil {
		s.audit(r, p, "respond", auditTarget, "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	tj, _ := json.Marshal(target)
	cmd := wire.Command{ID: uuid.Must(uuid.NewV7()).String(), Kind: wire.CommandRespond, Actor: p.Actor, Action: req.Action, Target: tj, Reason: reason}
	res, err := s.command(r.Context(), agentID, cmd)
	if err != nil {
		s.audit(r, p, "respond", auditTarget, "failed: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	resp, err := storedResponse(res, agentID, req.AlertID, p.Actor, s.o.Now())
	if err != nil {
		s.audit(r, p, "respond", auditTarget, "failed: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	b := &store.Batch{Responses: []store.Response{resp}}
	if a, ok := s.linkToAlert(r.Context(), req.AlertID, resp); ok {
		b.AlertUpdates = append(b.AlertUpdates, a)
	}
	if err := s.apply(r.Context(), b); err != nil {
		s.audit(r, p, "respond", auditTarget, "done by the agent but not stored: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	s.audit(r, p, "respond", auditTarget, "outcome "+resp.Outcome+" "+resp.Error, resp.Outcome != response.OutcomeFailed)
	writeJSON(w, http.StatusOK, resp)
}

// respondTarget finds the agent and the target of a response request.
func (s *Server) respondTarget(r *http.Request, req *respondRequest) (string, response.Target, string, error) {
	var t response.Target
	if !slices.Contains(respondActions, req.Action) {
		return "", t, "", errorf(http.StatusBadRequest, "action: %q is not one of %s", req.Action, strings.Join(respondActions, ", "))
	}
	reason := req.Reason
	if len(reason) > 1024 {
		return "", t, "", errorf(http.StatusBadRequest, "reason: longer than 1024 bytes")
	}
	if req.AlertID == "" {
		if req.AgentID == "" || req.Target == nil {
			return "", t, "", errorf(http.StatusBadRequest, "alert_id, or agent_id and target, are required")
		}
		if reason == "" {
			reason = "operator"
		}
		return req.AgentID, *req.Target, reason, nil
	}
	if req.Target != nil || req.AgentID != "" {
		return "", t, "", errorf(http.StatusBadRequest, "give alert_id, or agent_id and target, not both")
	}
	a, err := s.o.Store.Alert(r.Context(), req.AlertID)
	if err != nil {
		return "", t, "", notFound(err, "alert", req.AlertID)
	}
	t, err = alertTarget(a, response.Action(req.Action))
	if err != nil {
		return "", t, "", errorf(http.StatusUnprocessableEntity, "alert %s: %v", a.ID, err)
	}
	if reason == "" {
		reason = a.Rule
	}
	return a.AgentID, t, reason, nil
}

// alertTarget builds the target of action on the alert's event: the
// process (PID and start time, which guard against PID reuse) for kill;
// the container for the others, with the PID only for runtimes other than
// Docker, where the agent cannot look the container's init up itself (a
// PID in the target must still be alive, and the alert's process often
// is not).
func alertTarget(a store.Alert, action response.Action) (response.Target, error) {
	var t response.Target
	var raw alert.Alert
	if len(a.Raw) > 0 {
		if err := json.Unmarshal(a.Raw, &raw); err != nil {
			return t, fmt.Errorf("reading its raw event: %w", err)
		}
	}
	t.ContainerID, t.Class = a.ContainerID, a.Class
	var pid int32
	if e := raw.Event; e != nil {
		pid, t.StartTime = e.Process.PID, e.Process.StartTime
		if w := e.Workload; w != nil {
			if t.ContainerID == "" {
				t.ContainerID = w.ContainerID
			}
			t.Runtime = w.Runtime
		}
	}
	switch action {
	case response.Kill:
		if pid <= 0 {
			return t, errors.New("no process in its event to kill")
		}
		t.PID = pid
	default:
		if t.ContainerID == "" {
			return t, fmt.Errorf("%s acts on a container and the alert is not in one", action)
		}
		if t.Runtime != "" && t.Runtime != "docker" {
			t.PID = pid
		} else {
			t.StartTime = time.Time{}
		}
	}
	return t, nil
}

func targetName(t response.Target) string {
	switch {
	case t.ContainerID != "" && t.PID > 0:
		return fmt.Sprintf("container %s pid %d", shortID(t.ContainerID), t.PID)
	case t.ContainerID != "":
		return "container " + shortID(t.ContainerID)
	case t.PID > 0:
		return "pid " + strconv.Itoa(int(t.PID))
	}
	return "(no target)"
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// command pushes c to agentID and waits up to CommandTimeout. Errors are
// *httpError: 409 when the agent is not connected, 504 when it does not
// answer in time, 502 for other failures of the channel.
func (s *Server) command(ctx context.Context, agentID string, c wire.Command) (wire.CommandResult, error) {
	if s.o.Agents == nil || !slices.Contains(s.o.Agents.Connected(), agentID) {
		return wire.CommandResult{}, errorf(http.StatusConflict, "agent %q is not connected", agentID)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.CommandTimeout)
	defer cancel()
	res, err := s.o.Agents.Command(ctx, agentID, c)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return res, errorf(http.StatusGatewayTimeout, "agent %q did not answer within %s", agentID, s.o.CommandTimeout)
	case err != nil:
		return res, errorf(http.StatusBadGateway, "agent %q: %v", agentID, err)
	}
	return res, nil
}

// storedResponse turns an agent's answer to respond or undo into the row
// kept in the store.
func storedResponse(res wire.CommandResult, agentID, alertID, actor string, now time.Time) (store.Response, error) {
	if len(res.Record) == 0 {
		if !res.OK {
			return store.Response{}, errorf(http.StatusUnprocessableEntity, "agent %q refused: %s", agentID, res.Error)
		}
		return store.Response{}, errorf(http.StatusBadGateway, "agent %q answered without a response record", agentID)
	}
	var rec response.Record
	if err := json.Unmarshal(res.Record, &rec); err != nil {
		return store.Response{}, errorf(http.StatusBadGateway, "agent %q answered with an unreadable response record: %v", agentID, err)
	}
	if rec.ID == "" {
		rec.ID = res.ID
	}
	if rec.Time.IsZero() {
		rec.Time = now
	}
	if rec.Actor == "" {
		rec.Actor = actor
	}
	if rec.Outcome == "" {
		rec.Outcome = response.OutcomeFailed
		if res.OK {
			rec.Outcome = response.OutcomeDone
		}
	}
	if rec.Error == "" && !res.OK {
		rec.Error = res.Error
	}
	target := rec.Target.ContainerID
	if target == "" && rec.Target.PID > 0 {
		target = strconv.Itoa(int(rec.Target.PID))
	}
	return store.Response{
		ID: rec.ID, AgentID: agentID, AlertID: alertID, Time: rec.Time.UTC(), Action: string(rec.Action),
		Actor: rec.Actor, Outcome: rec.Outcome, Error: rec.Error, Target: target, Undone: rec.Undone, Record: res.Record,
	}, nil
}

// linkToAlert notes resp on its alert's Responses ("freeze: done (admin,
// response <id>)"). The alert_id column of the response row is the
// primary link, but the agent spools its own copy of the record, and the
// hub's upsert of it has no alert ID; the note on the alert survives
// that, and responsesOf reads both.
func (s *Server) linkToAlert(ctx context.Context, alertID string, resp store.Response) (store.AlertUpdate, bool) {
	if alertID == "" {
		return store.AlertUpdate{}, false
	}
	a, err := s.o.Store.Alert(ctx, alertID)
	if err != nil {
		return store.AlertUpdate{}, false
	}
	note := fmt.Sprintf("%s: %s (%s, response %s)", resp.Action, resp.Outcome, resp.Actor, resp.ID)
	return store.AlertUpdate{ID: alertID, LastSeen: a.LastSeen, Responses: []string{note}}, true
}

// alertNoting finds the alert whose notes name resp (see linkToAlert),
// among the newest alerts of resp's agent on resp's target; "" if none.
func (s *Server) alertNoting(ctx context.Context, resp store.Response) string {
	as, err := s.o.Store.Alerts(ctx, store.AlertFilter{AgentID: resp.AgentID, Workload: resp.Target, Limit: maxPage})
	if err != nil {
		return ""
	}
	for _, a := range as {
		for _, n := range a.Responses {
			if m := responseNote.FindStringSubmatch(n); m != nil && m[1] == resp.ID {
				return a.ID
			}
		}
	}
	return ""
}

// responseNote finds the response ID in a note linkToAlert wrote.
var responseNote = regexp.MustCompile(`, response ([^\s()]+)\)$`)

// apply stores b and hands it to Publish.
func (s *Server) apply(ctx context.Context, b *store.Batch) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if _, err := s.o.Store.Apply(ctx, b); err != nil {
		return fmt.Errorf("storing: %w", err)
	}
	if s.o.Publish != nil {
		s.o.Publish(b)
	}
	return nil
}

func (s *Server) undo(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	orig, err := s.o.Store.Response(r.Context(), id)
	if err != nil {
		err = notFound(err, "response", id)
		s.audit(r, p, "undo", id, "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	auditTarget := orig.Action + " " + orig.Target + " (response " + id + ")"
	switch {
	case orig.Action != string(response.Freeze) && orig.Action != string(response.Isolate):
		err = errorf(http.StatusConflict, "response %s is a %s, which cannot be undone (only freeze and isolate)", id, orig.Action)
	case orig.Outcome != response.OutcomeDone:
		err = errorf(http.StatusConflict, "response %s was not done (outcome %s): nothing to undo", id, orig.Outcome)
	case orig.Undone:
		err = errorf(http.StatusConflict, "response %s is already undone", id)
	}
	if err != nil {
		s.audit(r, p, "undo", auditTarget, "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	if orig.AlertID == "" {
		orig.AlertID = s.alertNoting(r.Context(), orig)
	}
	cmd := wire.Command{ID: uuid.Must(uuid.NewV7()).String(), Kind: wire.CommandUndo, Actor: p.Actor, RecordID: id}
	res, err := s.command(r.Context(), orig.AgentID, cmd)
	if err == nil {
		var resp store.Response
		resp, err = storedResponse(res, orig.AgentID, orig.AlertID, p.Actor, s.o.Now())
		if err == nil {
			b := &store.Batch{Responses: []store.Response{resp}}
			if resp.Outcome == response.OutcomeDone {
				orig.Undone = true
				b.Responses = append(b.Responses, orig)
			}
			if a, ok := s.linkToAlert(r.Context(), orig.AlertID, resp); ok {
				b.AlertUpdates = append(b.AlertUpdates, a)
			}
			if err = s.apply(r.Context(), b); err == nil {
				s.audit(r, p, "undo", auditTarget, "outcome "+resp.Outcome+" "+resp.Error, resp.Outcome == response.OutcomeDone)
				writeJSON(w, http.StatusOK, resp)
				return
			}
		}
	}
	s.audit(r, p, "undo", auditTarget, "failed: "+err.Error(), false)
	s.fail(w, r, err)
}

func (s *Server) listResponses(w http.ResponseWriter, r *http.Request, _ *principal) {
	limit, err := queryLimit(r, defaultPage, maxPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rs, err := s.o.Store.Responses(r.Context(), r.URL.Query().Get("agent"), limit)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing responses: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"responses": nonNil(rs)})
}

func (s *Server) getResponse(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := r.PathValue("id")
	x, err := s.o.Store.Response(r.Context(), id)
	if err != nil {
		s.fail(w, r, notFound(err, "response", id))
		return
	}
	writeJSON(w, http.StatusOK, x)
}

type modeRequest struct {
	AgentID string `json:"agent_id"`
	Class   string `json:"class"`
	Mode    string `json:"mode"`
}

var profileModes = []string{"discover", "monitor", "protect"}

func (s *Server) setMode(w http.ResponseWriter, r *http.Request, p *principal) {
	var req modeRequest
	err := decodeJSON(r, &req)
	switch {
	case err != nil:
	case req.AgentID == "":
		err = errorf(http.StatusBadRequest, "agent_id is required")
	case req.Class == "" || len(req.Class) > 256:
		err = errorf(http.StatusBadRequest, "class: 1 to 256 bytes")
	case !slices.Contains(profileModes, req.Mode):
		err = errorf(http.StatusBadRequest, "mode: %q is not one of discover, monitor, protect", req.Mode)
	}
	auditTarget := req.Class + " on " + req.AgentID + " → " + req.Mode
	if err != nil {
		s.audit(r, p, "set-mode", auditTarget, "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	cmd := wire.Command{ID: uuid.Must(uuid.NewV7()).String(), Kind: wire.CommandSetMode, Actor: p.Actor, Class: req.Class, Mode: req.Mode}
	res, err := s.command(r.Context(), req.AgentID, cmd)
	if err == nil && !res.OK {
		err = errorf(http.StatusUnprocessableEntity, "agent %q refused: %s", req.AgentID, res.Error)
	}
	var prof *store.Profile
	if err == nil {
		prof, err = s.updateProfileMode(r.Context(), req)
	}
	if err != nil {
		s.audit(r, p, "set-mode", auditTarget, "failed: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	s.audit(r, p, "set-mode", auditTarget, "", true)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "profile": prof})
}

// updateProfileMode records the new mode on the stored profile, when there
// is one (the agent also reports it with its next profile record).
func (s *Server) updateProfileMode(ctx context.Context, req modeRequest) (*store.Profile, error) {
	ps, err := s.o.Store.Profiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading profiles: %w", err)
	}
	for _, x := range ps {
		if x.AgentID == req.AgentID && x.Class == req.Class {
			x.Mode, x.Updated = req.Mode, s.o.Now().UTC()
			if err := s.apply(ctx, &store.Batch{Profiles: []store.Profile{x}}); err != nil {
				return nil, err
			}
			return &x, nil
		}
	}
	return nil, nil
}

func (s *Server) listProfiles(w http.ResponseWriter, r *http.Request, _ *principal) {
	ps, err := s.o.Store.Profiles(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing profiles: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"profiles": nonNil(ps)})
}

func (s *Server) listCompliance(w http.ResponseWriter, r *http.Request, _ *principal) {
	limit, err := queryLimit(r, defaultPage, 10000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, err := s.o.Store.Compliance(r.Context(), limit)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing compliance results: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": nonNil(cs)})
}

// agentView is an enrolled agent and whether it is connected now.
type agentView struct {
	store.Agent
	Connected bool `json:"connected"`
}

func (s *Server) connectedSet() map[string]bool {
	m := map[string]bool{}
	if s.o.Agents != nil {
		for _, id := range s.o.Agents.Connected() {
			m[id] = true
		}
	}
	return m
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ *principal) {
	as, err := s.o.Store.Agents(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing agents: %w", err))
		return
	}
	conn := s.connectedSet()
	out := make([]agentView, 0, len(as))
	for _, a := range as {
		out = append(out, agentView{Agent: a, Connected: conn[a.ID]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"agents": out})
}

func (s *Server) getAgent(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := r.PathValue("id")
	a, err := s.o.Store.Agent(r.Context(), id)
	if err != nil {
		s.fail(w, r, notFound(err, "agent", id))
		return
	}
	writeJSON(w, http.StatusOK, agentView{Agent: a, Connected: s.connectedSet()[id]})
}
