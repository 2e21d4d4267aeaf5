package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// engine gives a fresh, empty database's DSN.
type engine func(t *testing.T) string

func sqliteDSN(t *testing.T) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "vigil.db")
}

func TestSQLite(t *testing.T) { runSuite(t, sqliteDSN) }

func TestPostgres(t *testing.T) {
	vigiltest.Postgres(t) // skip (or fail in CI) once, before the subtests
	runSuite(t, func(t *testing.T) string { return vigiltest.Postgres(t) })
}

func open(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// base is a time with microseconds, the precision both engines keep.
var base = time.Date(2026, 11, 30, 6, 0, 0, 123456000, time.UTC)

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func runSuite(t *testing.T, eng engine) {
	tests := []struct {
		name string
		run  func(t *testing.T, eng engine)
	}{
		{"Agents", testAgents},
		{"ApplySequence", testApplySequence},
		{"ApplySameBatchTwoStores", testApplySameBatchTwoStores},
		{"ApplyConcurrentAgents", testApplyConcurrentAgents},
		{"AlertsFilterAndPaging", testAlertsFilterAndPaging},
		{"AlertsWideTimeRange", testAlertsWideTimeRange},
		{"AlertUpdates", testAlertUpdates},
		{"AlertStats", testAlertStats},
		{"Incidents", testIncidents},
		{"Assets", testAssets},
		{"ScansAndFindings", testScansAndFindings},
		{"ResponsesProfilesCompliance", testResponsesProfilesCompliance},
		{"EnrollTokens", testEnrollTokens},
		{"EnrollTokenConcurrentUse", testEnrollTokenConcurrentUse},
		{"UsersSessionsTokens", testUsersSessionsTokens},
		{"Audit", testAudit},
		{"Prune", testPrune},
		{"Migrations", testMigrations},
		{"MigrationBackfillsAlertStats", testMigrationBackfill},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, eng) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v, want %v", err, target)
	}
}

func putAgent(t *testing.T, s store.Store, id string) {
	t.Helper()
	must(t, s.PutAgent(context.Background(), store.Agent{ID: id, Hostname: "host-" + id, Version: "1.0", Enrolled: base,
		CertSerial: "0a", CertNotAfter: base.Add(24 * time.Hour)}))
}

func alert(agent string, at time.Time, rule string, sev int) store.Alert {
	prio := []string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}[sev]
	return store.Alert{ID: newID(), AgentID: agent, Host: "host-" + agent, Time: at, LastSeen: at, Count: 1, Rule: rule,
		Priority: prio, Severity: sev, Source: "syscall", Tactics: []string{"execution"}, Techniques: []string{"T1059"},
		Output: "output of " + rule, Raw: json.RawMessage(`{"rule":"` + rule + `"}`)}
}

func testAgents(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	_, err := s.Agent(ctx, "nope")
	wantErr(t, err, store.ErrNotFound)
	wantErr(t, s.TouchAgent(ctx, "nope", base), store.ErrNotFound)
	want := store.Agent{ID: "a1", Hostname: "node1", Version: "1.2", Enrolled: base, CertSerial: "ff01", CertNotAfter: base.Add(time.Hour)}
	must(t, s.PutAgent(ctx, want))
	putAgent(t, s, "a0")
	got, err := s.Agent(ctx, "a1")
	must(t, err)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Agent (-want +got):\n%s", d)
	}
	must(t, s.TouchAgent(ctx, "a1", base.Add(time.Minute)))
	if _, err := s.Apply(ctx, &store.Batch{AgentID: "a1", FirstSeq: 1, LastSeq: 7}); err != nil {
		t.Fatal(err)
	}
	// PutAgent again (re-enrollment, revocation) keeps the stored sequence.
	want.Revoked = true
	want.Seq = 0
	must(t, s.PutAgent(ctx, want))
	got, err = s.Agent(ctx, "a1")
	must(t, err)
	if !got.Revoked || got.Seq != 7 || !got.LastSeen.IsZero() {
		t.Fatalf("after PutAgent: %+v, want revoked, seq 7, last seen as put (zero)", got)
	}
	all, err := s.Agents(ctx)
	must(t, err)
	if len(all) != 2 || all[0].ID != "a0" || all[1].ID != "a1" {
		t.Fatalf("Agents = %+v, want a0 (host-a0) then a1 (node1)", all)
	}
	must(t, s.TouchAgent(ctx, "a1", base.Add(time.Minute)))
	got, _ = s.Agent(ctx, "a1")
	if !got.LastSeen.Equal(base.Add(time.Minute)) {
		t.Fatalf("LastSeen = %v after TouchAgent", got.LastSeen)
	}
}

func countAlerts(t *testing.T, s store.Store, f store.AlertFilter) int {
	t.Helper()
	f.Limit = 1000
	as, err := s.Alerts(context.Background(), f)
	must(t, err)
	return len(as)
}

func testApplySequence(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	b := func(first, last uint64) *store.Batch {
		var as []store.Alert
		for i := first; i <= last; i++ {
			as = append(as, alert("ag", base.Add(time.Duration(i)*time.Second), fmt.Sprint("rule", i), 4))
		}
		return &store.Batch{AgentID: "ag", FirstSeq: first, LastSeq: last, Alerts: as}
	}
	_, err := s.Apply(ctx, b(1, 3))
	wantErr(t, err, store.ErrNotFound) // PutAgent first
	putAgent(t, s, "ag")
	seq, err := s.Apply(ctx, b(1, 3))
	if err != nil || seq != 3 {
		t.Fatalf("Apply 1..3 = %d, %v; want 3", seq, err)
	}
	// Resends change nothing.
	for _, r := range [][2]uint64{{1, 3}, {2, 3}, {3, 3}, {1, 1}} {
		seq, err := s.Apply(ctx, b(r[0], r[1]))
		if err != nil || seq != 3 {
			t.Fatalf("resend %d..%d = %d, %v; want 3, nil", r[0], r[1], seq, err)
		}
	}
	if n := countAlerts(t, s, store.AlertFilter{}); n != 3 {
		t.Fatalf("%d alerts after resends, want 3", n)
	}
	// A gap, and an overlap that is not a pure resend.
	for _, r := range [][2]uint64{{5, 6}, {3, 4}} {
		seq, err = s.Apply(ctx, b(r[0], r[1]))
		wantErr(t, err, store.ErrSeqGap)
		if seq != 3 {
			t.Fatalf("Apply %d..%d with a gap returned seq %d, want 3", r[0], r[1], seq)
		}
	}
	if _, err := s.Apply(ctx, &store.Batch{AgentID: "ag", FirstSeq: 6, LastSeq: 5}); err == nil {
		t.Fatal("Apply 6..5 succeeded")
	}
	if seq, err = s.Apply(ctx, b(4, 5)); err != nil || seq != 5 {
		t.Fatalf("Apply 4..5 = %d, %v; want 5", seq, err)
	}
	if n := countAlerts(t, s, store.AlertFilter{}); n != 5 {
		t.Fatalf("%d alerts, want 5", n)
	}
	a, _ := s.Agent(ctx, "ag")
	if a.Seq != 5 {
		t.Fatalf("agent seq %d, want 5", a.Seq)
	}
	// Not an agent's batch: no sequence.
	seq, err = s.Apply(ctx, &store.Batch{Alerts: []store.Alert{alert("", base, "ci", 3)}})
	if err != nil || seq != 0 {
		t.Fatalf("non-agent Apply = %d, %v; want 0, nil", seq, err)
	}
	// A failing batch writes nothing and keeps the sequence.
	bad := b(6, 6)
	bad.Scans = []store.Scan{{ID: "s", Time: base}, {ID: "s2", Time: base}}
	bad.Profiles = []store.Profile{{AgentID: "ag", Class: "c", Mode: "monitor"}}
	bad.Alerts = append(bad.Alerts, store.Alert{ID: bad.Alerts[0].ID + "-x", Time: base})
	bad.AlertUpdates = []store.AlertUpdate{{ID: bad.Alerts[0].ID, AddCount: 1}}
	ctxc, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Apply(ctxc, bad); err == nil {
		t.Fatal("Apply with a cancelled context succeeded")
	}
	if a, _ := s.Agent(ctx, "ag"); a.Seq != 5 {
		t.Fatalf("seq %d after a failed Apply, want 5", a.Seq)
	}
	if n := countAlerts(t, s, store.AlertFilter{}); n != 6 {
		t.Fatalf("%d alerts after a failed Apply, want 6", n)
	}
}

// Two server replicas handed the same batch (an agent reconnecting to the
// other one) store it once.
func testApplySameBatchTwoStores(t *testing.T, eng engine) {
	ctx := context.Background()
	dsn := eng(t)
	s1, s2 := open(t, dsn), open(t, dsn)
	putAgent(t, s1, "ag")
	var batches []*store.Batch
	for i := uint64(1); i <= 20; i++ {
		batches = append(batches, &store.Batch{AgentID: "ag", FirstSeq: i, LastSeq: i, Alerts: []store.Alert{alert("ag", base.Add(time.Duration(i)*time.Second), "r", 4)}})
	}
	var wg sync.WaitGroup
	for _, s := range []store.Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, b := range batches {
				if _, err := s.Apply(ctx, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := countAlerts(t, s1, store.AlertFilter{}); n != 20 {
		t.Fatalf("%d alerts, want 20 (each batch once)", n)
	}
}

func testApplyConcurrentAgents(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	const agents, batches, per = 8, 10, 20
	for i := range agents {
		putAgent(t, s, fmt.Sprint("ag", i))
	}
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprint("ag", i)
			for j := range batches {
				b := &store.Batch{AgentID: id, FirstSeq: uint64(j*per + 1), LastSeq: uint64(j*per + per)}
				for k := range per {
					b.Alerts = append(b.Alerts, alert(id, base.Add(time.Duration(j*per+k)*time.Millisecond), "r", 4))
				}
				// Every agent reports the same image: concurrent upserts of one row.
				b.Assets = []store.Asset{{Kind: store.KindImage, ID: "sha256:shared", Name: "img", LastSeen: base}, {Kind: store.KindHost, ID: id, Name: id}}
				if _, err := s.Apply(ctx, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i := range agents {
		id := fmt.Sprint("ag", i)
		if n := countAlerts(t, s, store.AlertFilter{AgentID: id}); n != batches*per {
			t.Errorf("agent %s: %d alerts, want %d", id, n, batches*per)
		}
		if a, _ := s.Agent(ctx, id); a.Seq != batches*per {
			t.Errorf("agent %s: seq %d, want %d", id, a.Seq, batches*per)
		}
	}
}

func testAlertsFilterAndPaging(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	var all []store.Alert
	for i := range 30 {
		a := alert("ag", base.Add(time.Duration(i)*time.Minute), fmt.Sprint("rule", i%3), i%8)
		if i%5 == 0 {
			a.ContainerID, a.ContainerName, a.Image, a.Pod, a.Class = "abcdef123456", "web", "nginx:1", "web-0", "nginx"
		}
		if i == 7 {
			a.IncidentID = "inc1"
		}
		all = append(all, a)
	}
	_, err := s.Apply(ctx, &store.Batch{Alerts: all})
	must(t, err)

	got, err := s.Alert(ctx, all[5].ID)
	must(t, err)
	if d := cmp.Diff(all[5], got); d != "" {
		t.Fatalf("Alert round trip (-want +got):\n%s", d)
	}
	_, err = s.Alert(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)

	ids := func(as []store.Alert) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		return out
	}
	want := func(keep func(i int, a store.Alert) bool) []string {
		var out []string
		for i := len(all) - 1; i >= 0; i-- {
			if keep(i, all[i]) {
				out = append(out, all[i].ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		f    store.AlertFilter
		keep func(i int, a store.Alert) bool
	}{
		{"all", store.AlertFilter{}, func(int, store.Alert) bool { return true }},
		{"since until", store.AlertFilter{Since: base.Add(10 * time.Minute), Until: base.Add(20 * time.Minute)}, func(i int, _ store.Alert) bool { return i >= 10 && i < 20 }},
		{"at least warning", store.AlertFilter{MaxSeverity: 4, HasSeverity: true}, func(_ int, a store.Alert) bool { return a.Severity <= 4 }},
		{"emergency only", store.AlertFilter{MaxSeverity: 0, HasSeverity: true}, func(_ int, a store.Alert) bool { return a.Severity == 0 }},
		{"severity -1 keeps all", store.AlertFilter{MaxSeverity: -1, HasSeverity: true}, func(int, store.Alert) bool { return true }},
		{"rule", store.AlertFilter{Rule: "rule1"}, func(_ int, a store.Alert) bool { return a.Rule == "rule1" }},
		{"container ID prefix", store.AlertFilter{Workload: "abcdef"}, func(i int, _ store.Alert) bool { return i%5 == 0 }},
		{"container name", store.AlertFilter{Workload: "web"}, func(i int, _ store.Alert) bool { return i%5 == 0 }},
		{"image", store.AlertFilter{Workload: "nginx:1"}, func(i int, _ store.Alert) bool { return i%5 == 0 }},
		{"pod", store.AlertFilter{Workload: "web-0"}, func(i int, _ store.Alert) bool { return i%5 == 0 }},
		{"class", store.AlertFilter{Workload: "nginx"}, func(i int, _ store.Alert) bool { return i%5 == 0 }},
		{"host", store.AlertFilter{Workload: "host-ag"}, func(int, store.Alert) bool { return true }},
		{"workload no match", store.AlertFilter{Workload: "bcdef"}, func(int, store.Alert) bool { return false }},
		{"incident", store.AlertFilter{IncidentID: "inc1"}, func(i int, _ store.Alert) bool { return i == 7 }},
		{"agent", store.AlertFilter{AgentID: "other"}, func(int, store.Alert) bool { return false }},
		{"rule and severity", store.AlertFilter{Rule: "rule2", MaxSeverity: 3, HasSeverity: true}, func(_ int, a store.Alert) bool { return a.Rule == "rule2" && a.Severity <= 3 }},
	}
	for _, c := range cases {
		got, err := s.Alerts(ctx, c.f)
		must(t, err)
		if d := cmp.Diff(want(c.keep), ids(got)); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
	// Paging with the cursor walks every alert once, newest first.
	var paged []string
	f := store.AlertFilter{Limit: 7}
	for {
		page, err := s.Alerts(ctx, f)
		must(t, err)
		if len(page) == 0 {
			break
		}
		if len(page) > 7 {
			t.Fatalf("page of %d, limit 7", len(page))
		}
		paged = append(paged, ids(page)...)
		f.Before = page[len(page)-1].ID
	}
	if d := cmp.Diff(want(func(int, store.Alert) bool { return true }), paged); d != "" {
		t.Fatalf("paging (-want +got):\n%s", d)
	}
}

func testAlertUpdates(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	a := alert("ag", base, "r", 4)
	_, err := s.Apply(ctx, &store.Batch{Alerts: []store.Alert{a}})
	must(t, err)
	_, err = s.Apply(ctx, &store.Batch{AlertUpdates: []store.AlertUpdate{
		{ID: a.ID, AddCount: 2, LastSeen: base.Add(time.Minute), Responses: []string{"resp1"}},
		{ID: a.ID, AddCount: 1, LastSeen: base.Add(30 * time.Second), Responses: []string{"resp1", "resp2"}, Raw: json.RawMessage(`{"n":2}`)},
		{ID: "pruned-meanwhile", AddCount: 1},
	}})
	must(t, err)
	got, err := s.Alert(ctx, a.ID)
	must(t, err)
	if got.Count != 4 || !got.LastSeen.Equal(base.Add(time.Minute)) || string(got.Raw) != `{"n":2}` ||
		!cmp.Equal(got.Responses, []string{"resp1", "resp2"}) || !got.Time.Equal(base) {
		t.Fatalf("after updates: count %d last seen %v raw %s responses %v time %v", got.Count, got.LastSeen, got.Raw, got.Responses, got.Time)
	}
}

func testAlertStats(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	var as []store.Alert
	add := func(at time.Duration, rule string, sev int, container string, techs ...string) {
		a := alert("ag", base.Truncate(time.Hour).Add(at), rule, sev)
		a.ContainerName = container
		a.Techniques = techs
		as = append(as, a)
	}
	add(-2*time.Hour, "old", 0, "") // before since
	add(0, "shell", 4, "web", "T1059", "T1611")
	add(10*time.Minute, "shell", 4, "web", "T1059")
	add(20*time.Minute, "shell", 2, "db", "T1059")
	add(3*time.Hour+5*time.Minute, "miner", 2, "", "T1496")
	_, err := s.Apply(ctx, &store.Batch{Alerts: as})
	must(t, err)
	// Alerts already stored, and an ID twice in one batch, are not counted again.
	_, err = s.Apply(ctx, &store.Batch{Alerts: []store.Alert{as[1], as[2], as[1]}})
	must(t, err)
	since := base.Truncate(time.Hour)
	st, err := s.AlertStats(ctx, since, time.Hour)
	must(t, err)
	h := func(n int) time.Time { return since.Add(time.Duration(n) * time.Hour) }
	want := store.AlertStats{
		Total: 4,
		Buckets: []store.Bucket{
			{Start: h(0), Counts: map[string]int{"warning": 2, "critical": 1}},
			{Start: h(1), Counts: map[string]int{}},
			{Start: h(2), Counts: map[string]int{}},
			{Start: h(3), Counts: map[string]int{"critical": 1}},
		},
		ByPriority:    map[string]int{"warning": 2, "critical": 1 + 1},
		TopRules:      []store.Count{{Name: "shell", Count: 3}, {Name: "miner", Count: 1}},
		TopTechniques: []store.Count{{Name: "T1059", Count: 3}, {Name: "T1496", Count: 1}, {Name: "T1611", Count: 1}},
		TopWorkloads:  []store.Count{{Name: "web", Count: 2}, {Name: "db", Count: 1}, {Name: "host:host-ag", Count: 1}},
	}
	if d := cmp.Diff(want, st); d != "" {
		t.Fatalf("AlertStats (-want +got):\n%s", d)
	}
	// Since in the middle of an hour: that hour's minutes, then whole hours.
	st, err = s.AlertStats(ctx, since.Add(5*time.Minute), time.Hour)
	must(t, err)
	want = store.AlertStats{
		Total: 3,
		Buckets: []store.Bucket{
			{Start: h(0), Counts: map[string]int{"warning": 1, "critical": 1}},
			{Start: h(1), Counts: map[string]int{}},
			{Start: h(2), Counts: map[string]int{}},
			{Start: h(3), Counts: map[string]int{"critical": 1}},
		},
		ByPriority:    map[string]int{"warning": 1, "critical": 2},
		TopRules:      []store.Count{{Name: "shell", Count: 2}, {Name: "miner", Count: 1}},
		TopTechniques: []store.Count{{Name: "T1059", Count: 2}, {Name: "T1496", Count: 1}},
		TopWorkloads:  []store.Count{{Name: "db", Count: 1}, {Name: "host:host-ag", Count: 1}, {Name: "web", Count: 1}},
	}
	if d := cmp.Diff(want, st); d != "" {
		t.Fatalf("AlertStats since mid-hour (-want +got):\n%s", d)
	}
	// Everything, 10-minute buckets.
	st, err = s.AlertStats(ctx, time.Time{}, 10*time.Minute)
	must(t, err)
	if st.Total != 5 || len(st.Buckets) != 5*6+1 || st.Buckets[0].Counts["emergency"] != 1 {
		t.Fatalf("AlertStats all: total %d, %d buckets, first %v", st.Total, len(st.Buckets), st.Buckets[0])
	}
	// Nothing since: empty, not nil.
	st, err = s.AlertStats(ctx, base.Add(24*time.Hour), time.Hour)
	must(t, err)
	if st.Total != 0 || st.Buckets == nil || st.TopRules == nil || st.ByPriority == nil {
		t.Fatalf("empty AlertStats = %+v", st)
	}
}

func testIncidents(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	old := store.Incident{ID: newID(), AgentID: "ag", Host: "h", WorkloadKey: "host:h", FirstSeen: base.Add(-time.Hour), LastSeen: base.Add(-time.Hour), AlertCount: 1, Severity: 2}
	inc := store.Incident{ID: newID(), AgentID: "ag", Host: "h", WorkloadKey: "abc123", Title: "shell in web", FirstSeen: base,
		LastSeen: base.Add(time.Minute), AlertCount: 1, Severity: 4, Priority: "warning", Tactics: []string{"execution"}, Techniques: []string{"T1059"}}
	other := store.Incident{ID: newID(), AgentID: "ag2", Host: "h2", WorkloadKey: "zzz", FirstSeen: base, LastSeen: base, Severity: 6}
	a := alert("ag", base, "Terminal shell", 4)
	a.IncidentID = inc.ID
	_, err := s.Apply(ctx, &store.Batch{Incidents: []store.Incident{old, inc, other}, Alerts: []store.Alert{a}})
	must(t, err)
	// Upsert: the hub appends a technique.
	inc.Techniques = append(inc.Techniques, "T1611")
	inc.AlertCount, inc.LastSeen = 2, base.Add(2*time.Minute)
	_, err = s.Apply(ctx, &store.Batch{Incidents: []store.Incident{inc}})
	must(t, err)
	got, err := s.Incident(ctx, inc.ID)
	must(t, err)
	if d := cmp.Diff(inc, got); d != "" {
		t.Fatalf("Incident (-want +got):\n%s", d)
	}
	_, err = s.Incident(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
	open, err := s.OpenIncidents(ctx, "ag", base.Add(-time.Minute))
	must(t, err)
	if len(open) != 1 || open[0].ID != inc.ID {
		t.Fatalf("OpenIncidents = %+v, want only %s", open, inc.ID)
	}
	ids := func(f store.AlertFilter) []string {
		xs, err := s.Incidents(ctx, f)
		must(t, err)
		var out []string
		for _, x := range xs {
			out = append(out, x.ID)
		}
		return out
	}
	for _, c := range []struct {
		name string
		f    store.AlertFilter
		want []string
	}{
		{"all", store.AlertFilter{}, []string{other.ID, inc.ID, old.ID}},
		{"agent", store.AlertFilter{AgentID: "ag"}, []string{inc.ID, old.ID}},
		{"since", store.AlertFilter{Since: base}, []string{other.ID, inc.ID}},
		{"until", store.AlertFilter{Until: base}, []string{old.ID}},
		{"severity", store.AlertFilter{MaxSeverity: 4, HasSeverity: true}, []string{inc.ID, old.ID}},
		{"workload", store.AlertFilter{Workload: "abc"}, []string{inc.ID}},
		{"rule", store.AlertFilter{Rule: "Terminal shell"}, []string{inc.ID}},
		{"id", store.AlertFilter{IncidentID: old.ID}, []string{old.ID}},
		{"before", store.AlertFilter{Before: other.ID, Limit: 1}, []string{inc.ID}},
	} {
		if d := cmp.Diff(c.want, ids(c.f)); d != "" {
			t.Errorf("Incidents %s (-want +got):\n%s", c.name, d)
		}
	}
}

func testAssets(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	c := store.Asset{Kind: store.KindContainer, ID: "c1", AgentID: "ag", Name: "web", Labels: map[string]string{"app": "web"},
		Data: json.RawMessage(`{"image":"nginx"}`), FirstSeen: base, LastSeen: base}
	img := store.Asset{Kind: store.KindImage, ID: "sha256:aa", Name: "nginx:1", FirstSeen: base, LastSeen: base}
	host := store.Asset{Kind: store.KindHost, ID: "ag", Name: "node1", FirstSeen: base, LastSeen: base}
	_, err := s.Apply(ctx, &store.Batch{Assets: []store.Asset{c, img, host}})
	must(t, err)
	// Seen again later, then gone: FirstSeen stays.
	c2 := c
	c2.FirstSeen, c2.LastSeen, c2.Gone = base.Add(time.Hour), base.Add(time.Hour), true
	_, err = s.Apply(ctx, &store.Batch{Assets: []store.Asset{c2, c2}})
	must(t, err)
	got, err := s.Asset(ctx, store.KindContainer, "c1")
	must(t, err)
	want := c2
	want.FirstSeen = base
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("Asset (-want +got):\n%s", d)
	}
	_, err = s.Asset(ctx, store.KindImage, "c1")
	wantErr(t, err, store.ErrNotFound)
	all, err := s.Assets(ctx, "")
	must(t, err)
	if len(all) != 3 || all[0].Kind != store.KindContainer || all[1].Kind != store.KindHost || all[2].Kind != store.KindImage {
		t.Fatalf("Assets() = %+v", all)
	}
	imgs, err := s.Assets(ctx, store.KindImage)
	must(t, err)
	if len(imgs) != 1 || imgs[0].ID != "sha256:aa" {
		t.Fatalf("Assets(image) = %+v", imgs)
	}
}

func testScansAndFindings(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	fs := []store.Finding{
		{VulnID: "GHSA-low", Package: "a", Version: "1", Severity: "LOW", EPSS: 0.9},
		{VulnID: "CVE-crit-lowepss", CVE: "CVE-1", Package: "b", Version: "1", Severity: "CRITICAL", CVSS: 9.8, EPSS: 0.01},
		{VulnID: "CVE-kev-medium", Package: "c", Version: "2", Severity: "MEDIUM", KEV: true, EPSS: 0.5, Aliases: []string{"GHSA-x"}},
		{VulnID: "CVE-crit-highepss", Package: "d", Version: "1", Severity: "critical", EPSS: 0.7, FixedVersion: "1.1", PURL: "pkg:deb/debian/d@1", PackageType: "deb", Summary: "bad"},
		{VulnID: "CVE-kev-high", Package: "e", Version: "1", Severity: "HIGH", KEV: true, EPSS: 0.2},
		{VulnID: "CVE-unknown", Package: "f", Version: "1", Severity: "UNKNOWN"},
	}
	older := store.Scan{ID: "scan-old", Time: base, Target: "nginx:1", ImageDigest: "sha256:aa", Source: "ci:pipeline",
		Summary: store.ScanSummary{Packages: 10, Findings: 1}, Findings: fs[:1]}
	newer := store.Scan{ID: "scan-new", Time: base.Add(time.Hour), Target: "nginx:1", ImageDigest: "sha256:aa", Source: "agent:ag",
		Summary: store.ScanSummary{Packages: 10, Findings: 6, Critical: 2, KEV: 2}, Findings: fs,
		Report: json.RawMessage(`{"schema":"vigil.scan/v1"}`), SBOM: json.RawMessage(`{"bomFormat":"CycloneDX"}`)}
	host := store.Scan{ID: "scan-host", Time: base.Add(2 * time.Hour), Target: "/", Source: "agent:ag"}
	_, err := s.Apply(ctx, &store.Batch{Scans: []store.Scan{older, newer, host}})
	must(t, err)
	got, err := s.Findings(ctx, "scan-new")
	must(t, err)
	var order []string
	for _, f := range got {
		order = append(order, f.VulnID)
	}
	wantOrder := []string{"CVE-kev-high", "CVE-kev-medium", "CVE-crit-highepss", "CVE-crit-lowepss", "GHSA-low", "CVE-unknown"}
	if d := cmp.Diff(wantOrder, order); d != "" {
		t.Fatalf("Findings order (-want +got):\n%s", d)
	}
	wantF := fs[3]
	wantF.ScanID = "scan-new"
	if d := cmp.Diff(wantF, got[2]); d != "" {
		t.Fatalf("Finding round trip (-want +got):\n%s", d)
	}
	of, err := s.ScanOf(ctx, "sha256:aa")
	must(t, err)
	wantScan := newer
	wantScan.Findings = nil
	if d := cmp.Diff(wantScan, of); d != "" {
		t.Fatalf("ScanOf (-want +got):\n%s", d)
	}
	_, err = s.ScanOf(ctx, "sha256:none")
	wantErr(t, err, store.ErrNotFound)
	list, err := s.Scans(ctx, 2)
	must(t, err)
	if len(list) != 2 || list[0].ID != "scan-host" || list[1].ID != "scan-new" || list[1].Summary.Critical != 2 {
		t.Fatalf("Scans(2) = %+v", list)
	}
	// Re-sent scan replaces its findings.
	newer.Findings = fs[:2]
	_, err = s.Apply(ctx, &store.Batch{Scans: []store.Scan{newer}})
	must(t, err)
	got, err = s.Findings(ctx, "scan-new")
	must(t, err)
	if len(got) != 2 {
		t.Fatalf("%d findings after re-sending the scan with 2", len(got))
	}
	_, err = s.Scan(ctx, "missing")
	wantErr(t, err, store.ErrNotFound)
}

func testResponsesProfilesCompliance(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	r1 := store.Response{ID: "r1", AgentID: "ag", AlertID: "al", Time: base, Action: "freeze", Actor: "alice", Outcome: "done", Target: "abc", Record: json.RawMessage(`{"action":"freeze"}`)}
	r2 := store.Response{ID: "r2", AgentID: "ag2", Time: base.Add(time.Minute), Action: "kill", Actor: "policy", Outcome: "failed", Error: "gone", Target: "123"}
	p := store.Profile{AgentID: "ag", Class: "nginx", Mode: "discover", Updated: base, Data: json.RawMessage(`{"execs":["nginx"]}`)}
	c := store.ComplianceResult{ID: "c1", AgentID: "ag", Time: base, Benchmark: "cis-docker", CheckID: "5.4", Title: "no privileged", Status: "fail"}
	_, err := s.Apply(ctx, &store.Batch{Responses: []store.Response{r1, r2}, Profiles: []store.Profile{p}, Compliance: []store.ComplianceResult{c}})
	must(t, err)
	r1.Undone = true
	p.Mode = "protect"
	_, err = s.Apply(ctx, &store.Batch{Responses: []store.Response{r1}, Profiles: []store.Profile{p}})
	must(t, err)
	got, err := s.Response(ctx, "r1")
	must(t, err)
	if d := cmp.Diff(r1, got); d != "" {
		t.Fatalf("Response (-want +got):\n%s", d)
	}
	// The agent's own copy of the record arrives later, without the alert
	// and before it knew of the undo: neither is lost.
	agentCopy := r1
	agentCopy.AlertID, agentCopy.Undone = "", false
	_, err = s.Apply(ctx, &store.Batch{Responses: []store.Response{agentCopy}})
	must(t, err)
	got, err = s.Response(ctx, "r1")
	must(t, err)
	if d := cmp.Diff(r1, got); d != "" {
		t.Fatalf("Response after the agent's copy (-want +got):\n%s", d)
	}
	all, err := s.Responses(ctx, "", 0)
	must(t, err)
	if len(all) != 2 || all[0].ID != "r2" {
		t.Fatalf("Responses = %+v, want r2 then r1", all)
	}
	mine, err := s.Responses(ctx, "ag", 10)
	must(t, err)
	if len(mine) != 1 || mine[0].ID != "r1" {
		t.Fatalf("Responses(ag) = %+v", mine)
	}
	_, err = s.Response(ctx, "r3")
	wantErr(t, err, store.ErrNotFound)
	ps, err := s.Profiles(ctx)
	must(t, err)
	if d := cmp.Diff([]store.Profile{p}, ps); d != "" {
		t.Fatalf("Profiles (-want +got):\n%s", d)
	}
	cs, err := s.Compliance(ctx, 0)
	must(t, err)
	if d := cmp.Diff([]store.ComplianceResult{c}, cs); d != "" {
		t.Fatalf("Compliance (-want +got):\n%s", d)
	}
}

func testEnrollTokens(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	tok := store.EnrollToken{Hash: "h1", CreatedBy: "admin", Created: base, Expires: base.Add(time.Hour)}
	must(t, s.CreateEnrollToken(ctx, tok))
	wantErr(t, s.CreateEnrollToken(ctx, tok), store.ErrExists)
	wantErr(t, s.UseEnrollToken(ctx, "unknown", "ag", base), store.ErrNotFound)
	wantErr(t, s.UseEnrollToken(ctx, "h1", "ag", base.Add(2*time.Hour)), store.ErrExpired)
	must(t, s.UseEnrollToken(ctx, "h1", "ag", base.Add(time.Minute)))
	wantErr(t, s.UseEnrollToken(ctx, "h1", "ag2", base.Add(2*time.Minute)), store.ErrTokenUsed)
	// At Expires exactly it is still valid ("after Expires" expires).
	must(t, s.CreateEnrollToken(ctx, store.EnrollToken{Hash: "h2", Created: base, Expires: base.Add(time.Hour)}))
	must(t, s.UseEnrollToken(ctx, "h2", "ag", base.Add(time.Hour)))
}

func testEnrollTokenConcurrentUse(t *testing.T, eng engine) {
	ctx := context.Background()
	dsn := eng(t)
	s1, s2 := open(t, dsn), open(t, dsn)
	for round := range 10 {
		hash := fmt.Sprint("tok", round)
		must(t, s1.CreateEnrollToken(ctx, store.EnrollToken{Hash: hash, Created: base, Expires: base.Add(time.Hour)}))
		var ok, used atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, s := range []store.Store{s1, s2, s1, s2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				err := s.UseEnrollToken(ctx, hash, fmt.Sprint("agent", i), base)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrTokenUsed):
					used.Add(1)
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || used.Load() != 3 {
			t.Fatalf("round %d: %d uses succeeded, %d refused as used; want 1 and 3", round, ok.Load(), used.Load())
		}
	}
}

func testUsersSessionsTokens(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	u := store.User{Name: "alice", PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA", Role: store.RoleAdmin, Created: base}
	must(t, s.CreateUser(ctx, u))
	wantErr(t, s.CreateUser(ctx, u), store.ErrExists)
	must(t, s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: "x", Role: store.RoleReadOnly, Created: base}))
	got, err := s.User(ctx, "alice")
	must(t, err)
	if d := cmp.Diff(u, got); d != "" {
		t.Fatalf("User (-want +got):\n%s", d)
	}
	_, err = s.User(ctx, "carol")
	wantErr(t, err, store.ErrNotFound)
	us, err := s.Users(ctx)
	must(t, err)
	if len(us) != 2 || us[0].Name != "alice" || us[1].Name != "bob" {
		t.Fatalf("Users = %+v", us)
	}

	sess := store.Session{Hash: "sh", User: "alice", Role: store.RoleAdmin, CSRF: "csrf", Created: base, Expires: base.Add(time.Hour)}
	must(t, s.CreateSession(ctx, sess))
	gs, err := s.Session(ctx, "sh", base.Add(time.Minute))
	must(t, err)
	if d := cmp.Diff(sess, gs); d != "" {
		t.Fatalf("Session (-want +got):\n%s", d)
	}
	_, err = s.Session(ctx, "sh", base.Add(2*time.Hour))
	wantErr(t, err, store.ErrExpired)
	_, err = s.Session(ctx, "sh", base.Add(time.Minute)) // deleted on expiry
	wantErr(t, err, store.ErrNotFound)
	must(t, s.CreateSession(ctx, store.Session{Hash: "sh2", User: "bob", Role: store.RoleReadOnly, Created: base, Expires: base.Add(time.Hour)}))
	must(t, s.DeleteSession(ctx, "sh2"))
	_, err = s.Session(ctx, "sh2", base)
	wantErr(t, err, store.ErrNotFound)
	must(t, s.DeleteSession(ctx, "sh2"))

	tok := store.APIToken{ID: "t1", Name: "ci", Hash: "th1", Role: store.RoleAnalyst, CreatedBy: "alice", Created: base, Expires: base.Add(time.Hour)}
	forever := store.APIToken{ID: "t2", Name: "script", Hash: "th2", Role: store.RoleReadOnly, CreatedBy: "alice", Created: base.Add(time.Second)}
	must(t, s.CreateAPIToken(ctx, tok))
	must(t, s.CreateAPIToken(ctx, forever))
	wantErr(t, s.CreateAPIToken(ctx, store.APIToken{ID: "t3", Hash: "th1", Role: "admin"}), store.ErrExists)
	gt, err := s.APIToken(ctx, "th1", base)
	must(t, err)
	if d := cmp.Diff(tok, gt); d != "" {
		t.Fatalf("APIToken (-want +got):\n%s", d)
	}
	_, err = s.APIToken(ctx, "th1", base.Add(2*time.Hour))
	wantErr(t, err, store.ErrExpired)
	if _, err := s.APIToken(ctx, "th2", base.Add(10000*time.Hour)); err != nil {
		t.Fatalf("token without expiry: %v", err)
	}
	_, err = s.APIToken(ctx, "nope", base)
	wantErr(t, err, store.ErrNotFound)
	ts, err := s.APITokens(ctx)
	must(t, err)
	if len(ts) != 2 || ts[0].ID != "t1" || ts[1].ID != "t2" {
		t.Fatalf("APITokens = %+v", ts)
	}
	must(t, s.DeleteAPIToken(ctx, "t1"))
	wantErr(t, s.DeleteAPIToken(ctx, "t1"), store.ErrNotFound)
	_, err = s.APIToken(ctx, "th1", base)
	wantErr(t, err, store.ErrNotFound)
}

func testAudit(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	var want []store.AuditEntry
	for i := range 5 {
		e := store.AuditEntry{Time: base.Add(time.Duration(i/2) * time.Second), Actor: "alice", Action: fmt.Sprint("act", i), Target: "t", Detail: "d", Remote: "127.0.0.1", OK: i%2 == 0}
		must(t, s.Audit(ctx, e))
		want = append([]store.AuditEntry{e}, want...)
	}
	got, err := s.AuditLog(ctx, 0)
	must(t, err)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("AuditLog (-want +got):\n%s", d)
	}
	got, err = s.AuditLog(ctx, 2)
	must(t, err)
	if len(got) != 2 || got[0].Action != "act4" {
		t.Fatalf("AuditLog(2) = %+v", got)
	}
}

func testPrune(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	now := base.Add(30 * 24 * time.Hour)
	old, recent := base, now.Add(-time.Hour)
	oldA, newA := alert("ag", old, "r", 4), alert("ag", recent, "r", 4)
	repeating := alert("ag", old, "r", 4) // first seen long ago, still repeating
	repeating.LastSeen = recent
	b := &store.Batch{
		Alerts:    []store.Alert{oldA, newA, repeating},
		Incidents: []store.Incident{{ID: "i-old", LastSeen: old}, {ID: "i-new", LastSeen: recent}},
		Responses: []store.Response{{ID: "r-old", Time: old}, {ID: "r-new", Time: recent}},
		Scans: []store.Scan{
			{ID: "s-old", Time: old, ImageDigest: "sha256:a", Findings: []store.Finding{{VulnID: "x"}, {VulnID: "y"}}},
			{ID: "s-new", Time: recent, ImageDigest: "sha256:a"},
			{ID: "s-only", Time: old, ImageDigest: "sha256:b", Findings: []store.Finding{{VulnID: "z"}}}, // newest of its image: kept
			{ID: "s-host", Time: old, Target: "/"},
		},
	}
	_, err := s.Apply(ctx, b)
	must(t, err)
	must(t, s.Audit(ctx, store.AuditEntry{Time: old, Action: "old"}))
	must(t, s.Audit(ctx, store.AuditEntry{Time: recent, Action: "new"}))
	must(t, s.CreateSession(ctx, store.Session{Hash: "expired", User: "u", Role: "admin", Expires: now.Add(-time.Minute)}))
	must(t, s.CreateSession(ctx, store.Session{Hash: "live", User: "u", Role: "admin", Expires: now.Add(time.Minute)}))

	n, err := s.Prune(ctx, store.Retention{}, now)
	must(t, err)
	if n != 1 {
		t.Fatalf("Prune with zero retention removed %d rows, want 1 (the expired session)", n)
	}
	week := 7 * 24 * time.Hour
	n, err = s.Prune(ctx, store.Retention{Alerts: week, Responses: week, Scans: week, Audit: week}, now)
	must(t, err)
	// alert, incident, response, audit entry, 2 scans (s-old, s-host) and 2 findings.
	if n != 8 {
		t.Fatalf("Prune removed %d rows, want 8", n)
	}
	as, _ := s.Alerts(ctx, store.AlertFilter{})
	if len(as) != 2 {
		t.Fatalf("%d alerts left, want 2 (recent and still repeating)", len(as))
	}
	for _, id := range []string{"s-old", "s-host"} {
		if _, err := s.Scan(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("scan %s: %v, want pruned", id, err)
		}
	}
	if fs, _ := s.Findings(ctx, "s-old"); len(fs) != 0 {
		t.Errorf("findings of a pruned scan remain: %v", fs)
	}
	if fs, _ := s.Findings(ctx, "s-only"); len(fs) != 1 {
		t.Errorf("findings of the kept scan: %v", fs)
	}
	if _, err := s.Incident(ctx, "i-new"); err != nil {
		t.Error(err)
	}
	if _, err := s.Response(ctx, "r-old"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("r-old: %v, want pruned", err)
	}
	if log, _ := s.AuditLog(ctx, 0); len(log) != 1 || log[0].Action != "new" {
		t.Errorf("audit after prune: %+v", log)
	}
	n, err = s.Prune(ctx, store.Retention{Alerts: week, Responses: week, Scans: week, Audit: week}, now)
	if err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0", n, err)
	}
}

func testMigrations(t *testing.T, eng engine) {
	ctx := context.Background()
	dsn := eng(t)
	s := open(t, dsn)
	putAgent(t, s, "ag")
	must(t, s.Close())
	// Re-opening re-runs no migration and keeps the data; replicas starting
	// at once do not trip over each other.
	var wg sync.WaitGroup
	stores := make([]store.Store, 4)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := store.Open(ctx, dsn)
			if err != nil {
				t.Error(err)
				return
			}
			stores[i] = s
		}()
	}
	wg.Wait()
	for _, s := range stores {
		if s == nil {
			t.FailNow()
		}
		defer s.Close()
		if _, err := s.Agent(ctx, "ag"); err != nil {
			t.Fatal(err)
		}
		must(t, s.Ping(ctx))
		v, err := s.(interface {
			SchemaVersion(context.Context) (int, error)
		}).SchemaVersion(ctx)
		if err != nil || v != latestMigration(t) {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latestMigration(t))
		}
	}
}

func latestMigration(t *testing.T) int {
	m, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(m) == 0 {
		t.Fatalf("no migrations: %v", err)
	}
	var v int
	fmt.Sscanf(filepath.Base(m[len(m)-1]), "%d_", &v)
	return v
}

// rawDB opens the store's database directly, as an operator would.
func rawDB(t *testing.T, dsn string) (*sql.DB, func(string) string) {
	t.Helper()
	driver, name, rebind := "sqlite", strings.TrimPrefix(dsn, "sqlite:"), func(q string) string { return q }
	if strings.HasPrefix(dsn, "postgres") {
		driver, name = "pgx", dsn
		rebind = func(q string) string { return strings.Replace(q, "?", "$1", 1) }
	}
	db, err := sql.Open(driver, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, rebind
}

// A database at version 1 (alerts, no per-minute counts) migrated to the
// newest version gets counts for the alerts it holds.
func testMigrationBackfill(t *testing.T, eng engine) {
	ctx := context.Background()
	dsn := eng(t)
	s := open(t, dsn)
	var as []store.Alert
	for i := range 50 {
		a := alert("ag", base.Add(time.Duration(i)*17*time.Second), fmt.Sprint("rule", i%4), i%8)
		if i%3 == 0 {
			a.ContainerID, a.ContainerName = "c0ffee", fmt.Sprint("web", i%2)
		}
		if i%5 == 0 {
			a.Techniques = nil
		}
		as = append(as, a)
	}
	_, err := s.Apply(ctx, &store.Batch{Alerts: as})
	must(t, err)
	want, err := s.AlertStats(ctx, base.Add(-time.Hour), 5*time.Minute)
	must(t, err)
	if want.Total != 50 {
		t.Fatalf("Total %d, want 50", want.Total)
	}
	must(t, s.Close())
	db, rebind := rawDB(t, dsn)
	for _, q := range []string{"DROP TABLE alert_counts", "DROP TABLE alert_counts_hour", rebind("DELETE FROM schema_migrations WHERE version = ?")} {
		args := []any{}
		if strings.Contains(q, "version") {
			args = append(args, 2)
		}
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s = open(t, dsn)
	got, err := s.AlertStats(ctx, base.Add(-time.Hour), 5*time.Minute)
	must(t, err)
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("AlertStats after the migration backfilled (-before +after):\n%s", d)
	}
}

// Time ranges holding many alerts are read newest first by ID like narrow
// ones (SQLite plans them differently).
func testAlertsWideTimeRange(t *testing.T, eng engine) {
	ctx := context.Background()
	s := open(t, eng(t))
	const n = 3000
	b := &store.Batch{}
	for i := range n {
		b.Alerts = append(b.Alerts, alert("ag", base.Add(time.Duration(i)*time.Second), "r", i%8))
	}
	_, err := s.Apply(ctx, b)
	must(t, err)
	for _, c := range []struct {
		name     string
		from, to int // alert indexes: [from, to)
		f        store.AlertFilter
	}{
		{"wide since", 100, n, store.AlertFilter{Since: base.Add(100 * time.Second)}},
		{"wide since until", 100, 2900, store.AlertFilter{Since: base.Add(100 * time.Second), Until: base.Add(2900 * time.Second)}},
		{"wide until", 0, 2500, store.AlertFilter{Until: base.Add(2500 * time.Second)}},
		{"narrow", 1000, 1050, store.AlertFilter{Since: base.Add(1000 * time.Second), Until: base.Add(1050 * time.Second)}},
	} {
		var got []string
		f := c.f
		f.Limit = 1000
		for {
			page, err := s.Alerts(ctx, f)
			must(t, err)
			if len(page) == 0 {
				break
			}
			for _, a := range page {
				got = append(got, a.ID)
			}
			f.Before = page[len(page)-1].ID
		}
		var want []string
		for i := c.to - 1; i >= c.from; i-- {
			want = append(want, b.Alerts[i].ID)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", c.name, d)
		}
	}
}
