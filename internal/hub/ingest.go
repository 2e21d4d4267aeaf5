package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Bounds of the correlation state of one agent's stream.
const (
	// aggregateGrace keeps a dedup entry past DedupWindow for the agent's
	// aggregate line, which comes when the agent's own window closes.
	aggregateGrace = 5 * time.Minute
	// maxState bounds each map; beyond it the state is pruned hard (the
	// oldest entries go, the next repeat makes a new row).
	maxState = 100_000
	// seedAlerts is how many recent alerts seed the dedup state.
	seedAlerts = 1000
)

// severities ranks Falco's priorities: emergency 0 … debug 7.
var severities = map[string]int{
	"emergency": 0, "alert": 1, "critical": 2, "error": 3,
	"warning": 4, "notice": 5, "informational": 6, "info": 6, "debug": 7,
}

// Severity is the rank of a Falco priority (case-insensitive), 0 for
// emergency to 7 for debug. An unknown priority ranks as warning (4): the
// alert is kept, not dropped for its wording.
func Severity(priority string) int {
	if s, ok := severities[strings.ToLower(priority)]; ok {
		return s
	}
	return severities["warning"]
}

// ingester turns one agent's records into store batches, with the agent's
// dedup and incident state. It is used by one goroutine.
type ingester struct {
	h     *Hub
	agent store.Agent
	seq   uint64 // stored sequence

	dedup     map[string]*dedupEntry     // dedup key → alert row
	incidents map[string]*store.Incident // workload key → open incident
	byRule    map[string]string          // rule\x00container → latest alert ID, to link responses
	clock     time.Time                  // the latest alert time seen
	pruned    time.Time

	// Per batch.
	newRows  []*dedupEntry
	updates  map[string]int // alert ID → index in the batch's AlertUpdates
	touched  map[string]*store.Incident
	incOrder []string
}

type dedupEntry struct {
	id       string
	first    time.Time
	incident string // incident ID
	workload string // workload key
	pending  int    // index in the batch's Alerts while it is being built, else -1
}

func newIngester(h *Hub, a store.Agent) *ingester {
	return &ingester{
		h: h, agent: a, seq: a.Seq,
		dedup:     make(map[string]*dedupEntry),
		incidents: make(map[string]*store.Incident),
		byRule:    make(map[string]string),
	}
}

// seed loads the agent's open incidents and recent alerts.
func (g *ingester) seed(ctx context.Context) error {
	now := g.h.opts.Now()
	incs, err := g.h.opts.Store.OpenIncidents(ctx, g.agent.ID, now.Add(-g.h.opts.IncidentWindow))
	if err != nil {
		return fmt.Errorf("open incidents: %w", err)
	}
	for i := range incs {
		n := incs[i]
		if cur := g.incidents[n.WorkloadKey]; cur == nil || n.LastSeen.After(cur.LastSeen) {
			g.incidents[n.WorkloadKey] = &n
		}
	}
	as, err := g.h.opts.Store.Alerts(ctx, store.AlertFilter{
		AgentID: g.agent.ID, Since: now.Add(-g.h.opts.DedupWindow - aggregateGrace), Limit: seedAlerts,
	})
	if err != nil {
		return fmt.Errorf("recent alerts: %w", err)
	}
	for i := len(as) - 1; i >= 0; i-- { // oldest first: the newest row of a key wins
		a := &as[i]
		key := a.DedupKey
		if key == "" {
			var raw alert.Alert
			if json.Unmarshal(a.Raw, &raw) != nil {
				continue
			}
			key = dedupKey(g.agent.ID, alert.Key(&raw))
		}
		g.dedup[key] = &dedupEntry{id: a.ID, first: a.Time, incident: a.IncidentID, workload: workloadKey(a.ContainerID, a.Host), pending: -1}
		g.byRule[a.Rule+"\x00"+a.ContainerID] = a.ID
		if a.LastSeen.After(g.clock) {
			g.clock = a.LastSeen
		}
	}
	return nil
}

// stored records the sequence the store now has.
func (g *ingester) stored(seq uint64) { g.seq = max(g.seq, seq) }

// build converts the records of in above the stored sequence into one
// batch; nil when there are none (a resend of what is stored). Records
// must have increasing sequence numbers. A record that does not convert is
// logged and skipped.
func (g *ingester) build(in *wire.Batch) (*store.Batch, error) {
	var prev uint64
	for i := range in.Records {
		s := in.Records[i].Seq
		if s == 0 || s <= prev {
			return nil, fmt.Errorf("record %d of the batch has sequence %d, not above the previous (%d)", i, s, prev)
		}
		prev = s
	}
	recs := in.Records
	for len(recs) > 0 && recs[0].Seq <= g.seq {
		recs = recs[1:]
	}
	if len(recs) == 0 {
		return nil, nil
	}
	if recs[0].Seq > g.seq+1 {
		g.h.log.Warn("agent records never delivered (lost on the agent)", "agent", g.agent.ID,
			"from", g.seq+1, "to", recs[0].Seq-1)
	}
	b := &store.Batch{AgentID: g.agent.ID, FirstSeq: g.seq + 1, LastSeq: recs[len(recs)-1].Seq}
	g.newRows, g.updates, g.touched, g.incOrder = g.newRows[:0], map[string]int{}, map[string]*store.Incident{}, g.incOrder[:0]
	for i := range recs {
		if err := g.record(b, &recs[i]); err != nil {
			g.h.log.Warn("agent record skipped", "agent", g.agent.ID, "err", err)
		}
	}
	for _, e := range g.newRows {
		e.pending = -1
	}
	for _, id := range g.incOrder {
		n := *g.touched[id]
		n.Tactics, n.Techniques = slices.Clone(n.Tactics), slices.Clone(n.Techniques)
		b.Incidents = append(b.Incidents, n)
	}
	g.prune()
	return b, nil
}

// record converts one record into b. Its error names the record.
func (g *ingester) record(b *store.Batch, r *wire.Record) error {
	var err error
	switch r.Kind {
	case wire.KindAlert:
		err = g.alert(b, r)
	case wire.KindResponse:
		err = g.response(b, r)
	case wire.KindAsset:
		err = g.asset(b, r)
	case wire.KindScan:
		err = g.scan(b, r)
	case wire.KindProfile:
		err = g.profile(b, r)
	case wire.KindCompliance:
		err = g.compliance(b, r)
	default:
		err = errors.New("unknown kind")
	}
	if err != nil {
		return fmt.Errorf("record %d (%s): %w", r.Seq, clip(r.Kind, 32), err)
	}
	return nil
}

var decodeOptions = jsonv1.DefaultOptionsV1()

// decode reads a record's data into v, refusing an absent one.
func decode(r *wire.Record, v any) error {
	if len(r.Data) == 0 || string(r.Data) == "null" {
		return errors.New("no data")
	}
	if err := jsonv2.Unmarshal(r.Data, v, decodeOptions); err != nil {
		return fmt.Errorf("decoding: %w", err)
	}
	return nil
}

func workloadKey(containerID, host string) string {
	if containerID != "" {
		return containerID
	}
	return "host:" + host
}

// alertDoc is the part of an alert.Alert the hub reads: the columns, and
// what alert.Key and profile.ClassOf look at. Decoding only these is half
// the cost of the whole alert with its event (arguments, times, …); the
// row keeps the whole document as Raw.
type alertDoc struct {
	Time       time.Time `json:"time"`
	Rule       string    `json:"rule"`
	Priority   string    `json:"priority"`
	Source     string    `json:"source"`
	Tactics    []string  `json:"mitre_tactics"`
	Techniques []string  `json:"mitre_techniques"`
	Output     string    `json:"output"`
	Count      int       `json:"count"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Aggregate  bool      `json:"aggregate"`
	Responses  []string  `json:"responses"`
	Event      *struct {
		Process   procDoc         `json:"process"`
		Parent    *procDoc        `json:"parent_process"`
		Ancestors []procDoc       `json:"ancestors"`
		Workload  *event.Workload `json:"workload"`
	} `json:"event"`
}

type procDoc struct {
	Name string `json:"name"`
	Exe  string `json:"exe"`
}

// alert returns the alert.Alert alert.Key needs.
func (d *alertDoc) alert() *alert.Alert {
	a := &alert.Alert{Rule: d.Rule}
	if d.Event == nil {
		return a
	}
	e := &event.Event{Workload: d.Event.Workload}
	e.Process.Name, e.Process.Exe = d.Event.Process.Name, d.Event.Process.Exe
	if p := d.Event.Parent; p != nil {
		e.Parent = &event.Process{Name: p.Name, Exe: p.Exe}
	}
	if len(d.Event.Ancestors) > 0 {
		e.Ancestors = []event.Ancestor{{Name: d.Event.Ancestors[0].Name, Exe: d.Event.Ancestors[0].Exe}}
	}
	a.Event = e
	return a
}

func (g *ingester) alert(b *store.Batch, r *wire.Record) error {
	var a alertDoc
	if err := decode(r, &a); err != nil {
		return err
	}
	if a.Rule == "" {
		return errors.New("alert without a rule")
	}
	t := a.Time
	if t.IsZero() {
		t = r.Time
	}
	if t.IsZero() {
		t = g.h.opts.Now()
	}
	first, last, count := t, t, max(a.Count, 1)
	if a.Aggregate {
		if !a.FirstSeen.IsZero() {
			first = a.FirstSeen
		}
		if !a.LastSeen.IsZero() {
			last = a.LastSeen
		}
	}
	if last.After(g.clock) {
		g.clock = last
	}
	host := g.agent.Hostname
	var containerID, containerName, image, ns, pod, class string
	if a.Event != nil && a.Event.Workload != nil {
		w := a.Event.Workload
		if w.Host != "" {
			host = w.Host
		}
		containerID, containerName, image, ns, pod = w.ContainerID, w.ContainerName, w.Image, w.PodNamespace, w.PodName
		class = profile.ClassOf(w)
	}
	key := dedupKey(g.agent.ID, alert.Key(a.alert()))
	containerID, host = clean(containerID), clean(host)
	wk := workloadKey(containerID, host)

	if e := g.dedup[key]; e != nil && (a.Aggregate || absDur(first.Sub(e.first)) < g.h.opts.DedupWindow) {
		g.repeat(b, e, count, last, cleanAll(a.Responses))
		if n := g.incidents[e.workload]; n != nil && n.ID == e.incident && last.After(n.LastSeen) {
			n.LastSeen = last
			g.touch(n)
		}
		return nil
	}

	sev := Severity(a.Priority)
	row := store.Alert{
		ID: newID(), AgentID: g.agent.ID, Host: host,
		Time: first, LastSeen: last, Count: count,
		Rule: a.Rule, Priority: a.Priority, Severity: sev, Source: a.Source,
		Tactics: a.Tactics, Techniques: a.Techniques, Output: a.Output,
		ContainerID: containerID, ContainerName: containerName, Image: image, Namespace: ns, Pod: pod, Class: class,
		DedupKey: key, Responses: a.Responses, Raw: r.Data,
	}
	cleanAlert(&row)
	n := g.correlate(&row, wk, row.ContainerName)
	row.IncidentID = n.ID
	e := &dedupEntry{id: row.ID, first: first, incident: n.ID, workload: wk, pending: len(b.Alerts)}
	g.dedup[key] = e
	g.newRows = append(g.newRows, e)
	g.byRule[a.Rule+"\x00"+containerID] = row.ID
	b.Alerts = append(b.Alerts, row)
	return nil
}

// repeat folds count more occurrences into the row e.
func (g *ingester) repeat(b *store.Batch, e *dedupEntry, count int, last time.Time, responses []string) {
	if e.pending >= 0 {
		row := &b.Alerts[e.pending]
		row.Count += count
		if last.After(row.LastSeen) {
			row.LastSeen = last
		}
		row.Responses = appendNew(row.Responses, responses...)
		return
	}
	if i, ok := g.updates[e.id]; ok {
		u := &b.AlertUpdates[i]
		u.AddCount += count
		if last.After(u.LastSeen) {
			u.LastSeen = last
		}
		u.Responses = appendNew(u.Responses, responses...)
		return
	}
	g.updates[e.id] = len(b.AlertUpdates)
	b.AlertUpdates = append(b.AlertUpdates, store.AlertUpdate{ID: e.id, AddCount: count, LastSeen: last, Responses: slices.Clone(responses)})
}

// correlate puts a new alert into its workload's open incident, or opens
// one.
func (g *ingester) correlate(a *store.Alert, wk, name string) *store.Incident {
	n := g.incidents[wk]
	w := g.h.opts.IncidentWindow
	if n == nil || a.Time.Sub(n.LastSeen) >= w || n.FirstSeen.Sub(a.Time) >= w {
		where := name
		if where == "" {
			where = wk
		}
		n = &store.Incident{
			ID: newID(), AgentID: a.AgentID, Host: a.Host, WorkloadKey: wk,
			Title:     a.Rule + " on " + where,
			FirstSeen: a.Time, LastSeen: a.LastSeen, Severity: a.Severity, Priority: a.Priority,
		}
		g.incidents[wk] = n
	}
	n.AlertCount++
	if a.Time.Before(n.FirstSeen) {
		n.FirstSeen = a.Time
	}
	if a.LastSeen.After(n.LastSeen) {
		n.LastSeen = a.LastSeen
	}
	if a.Severity < n.Severity {
		n.Severity, n.Priority = a.Severity, a.Priority
	}
	n.Tactics = appendNew(n.Tactics, a.Tactics...)
	n.Techniques = appendNew(n.Techniques, a.Techniques...)
	g.touch(n)
	return n
}

func (g *ingester) touch(n *store.Incident) {
	if _, ok := g.touched[n.ID]; !ok {
		g.incOrder = append(g.incOrder, n.ID)
	}
	g.touched[n.ID] = n
}

// appendNew appends the values of add not yet in s, in order.
func appendNew(s []string, add ...string) []string {
	for _, v := range add {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	return s
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// prune forgets dedup entries and incidents that can no longer match,
// measured on the agent's alert clock, at most once a minute.
func (g *ingester) prune() {
	if g.clock.Sub(g.pruned) < time.Minute && len(g.dedup) < maxState && len(g.incidents) < maxState {
		return
	}
	g.pruned = g.clock
	for k, e := range g.dedup {
		if g.clock.Sub(e.first) > g.h.opts.DedupWindow+aggregateGrace {
			delete(g.dedup, k)
		}
	}
	for k, n := range g.incidents {
		if g.clock.Sub(n.LastSeen) > g.h.opts.IncidentWindow {
			delete(g.incidents, k)
		}
	}
	if len(g.dedup) >= maxState {
		clear(g.dedup)
	}
	if len(g.incidents) >= maxState {
		clear(g.incidents)
	}
	if len(g.byRule) >= maxState {
		clear(g.byRule)
	}
}

func (g *ingester) response(b *store.Batch, r *wire.Record) error {
	var rec response.Record
	if err := decode(r, &rec); err != nil {
		return err
	}
	if rec.ID == "" {
		return errors.New("response record without an id")
	}
	target := rec.Target.ContainerID
	if target == "" && rec.Target.PID != 0 {
		target = strconv.Itoa(int(rec.Target.PID))
	}
	t := rec.Time
	if t.IsZero() {
		t = r.Time
	}
	resp := store.Response{
		ID: clean(rec.ID), AgentID: g.agent.ID, Time: t, Action: clean(string(rec.Action)), Actor: clean(rec.Actor),
		Outcome: clean(rec.Outcome), Error: clean(rec.Error), Target: clean(target), Undone: rec.Undone, Record: cleanRaw(r.Data),
	}
	if rec.Automatic {
		// The agent responded to its own alert: the latest alert of that
		// rule on that container.
		resp.AlertID = g.byRule[rec.Reason+"\x00"+rec.Target.ContainerID]
	}
	b.Responses = append(b.Responses, resp)
	return nil
}

func (g *ingester) asset(b *store.Batch, r *wire.Record) error {
	var a store.Asset
	if err := decode(r, &a); err != nil {
		return err
	}
	switch a.Kind {
	case store.KindHost, store.KindContainer, store.KindImage, store.KindWorkload, store.KindFunction:
	default:
		return fmt.Errorf("asset of unknown kind %q", clip(a.Kind, 32))
	}
	if a.ID == "" {
		return fmt.Errorf("%s asset without an id", a.Kind)
	}
	a.AgentID = g.agent.ID
	a.ID, a.Name, a.Labels, a.Data = clean(a.ID), clean(a.Name), cleanLabels(a.Labels), cleanRaw(a.Data)
	if a.LastSeen.IsZero() {
		a.LastSeen = r.Time
	}
	if a.FirstSeen.IsZero() {
		a.FirstSeen = a.LastSeen
	}
	b.Assets = append(b.Assets, a)
	return nil
}

func (g *ingester) scan(b *store.Batch, r *wire.Record) error {
	var s wire.Scan
	if err := decode(r, &s); err != nil {
		return err
	}
	sc, err := store.ParseScanReport(s.Report)
	if err != nil {
		return err
	}
	sc.ID = newID()
	sc.Time = r.Time
	if sc.Time.IsZero() {
		sc.Time = g.h.opts.Now()
	}
	if s.Target != "" {
		sc.Target = clean(s.Target)
	}
	if s.ImageDigest != "" {
		sc.ImageDigest = clean(s.ImageDigest)
	}
	sc.Source = "agent:" + g.agent.ID
	b.Scans = append(b.Scans, sc)
	return nil
}

func (g *ingester) profile(b *store.Batch, r *wire.Record) error {
	var p wire.Profile
	if err := decode(r, &p); err != nil {
		return err
	}
	if p.Class == "" {
		return errors.New("profile without a class")
	}
	b.Profiles = append(b.Profiles, store.Profile{AgentID: g.agent.ID, Class: clean(p.Class), Mode: clean(p.Mode), Updated: r.Time, Data: cleanRaw(p.Data)})
	return nil
}

func (g *ingester) compliance(b *store.Batch, r *wire.Record) error {
	var c store.ComplianceResult
	if err := decode(r, &c); err != nil {
		return err
	}
	if c.Benchmark == "" || c.CheckID == "" {
		return errors.New("compliance result without a benchmark or check id")
	}
	c.AgentID = g.agent.ID
	c.ID, c.Benchmark, c.CheckID, c.Title, c.Status, c.Data = clean(c.ID), clean(c.Benchmark), clean(c.CheckID), clean(c.Title), clean(c.Status), cleanRaw(c.Data)
	if c.ID == "" {
		c.ID = newID()
	}
	if c.Time.IsZero() {
		c.Time = r.Time
	}
	b.Compliance = append(b.Compliance, c)
	return nil
}
