package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
)

var priorities = []string{"emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"}

// testAlert is an alert as the hub would store it, with the agent's raw
// alert JSON: process pid and start time, container and runtime.
func testAlert(agentID, containerID string, at time.Time, sev int, rule string) store.Alert {
	start := at.Add(-time.Minute).Truncate(10 * time.Millisecond).UTC()
	raw := alert.Alert{
		Time: at, Type: "alert", Rule: rule, Priority: priorities[sev], Source: alert.SourceRules, Output: rule + " fired", Count: 1,
		Event: &event.Event{
			Time: at, Type: event.ProcessExec,
			Process:  event.Process{PID: 4242, Name: "sh", Exe: "/bin/sh", StartTime: start},
			Parent:   &event.Process{PID: 4000, Name: "bash"},
			Workload: &event.Workload{Host: "node1", ContainerID: containerID, ContainerName: "web", Runtime: "docker", Image: "nginx:1"},
		},
	}
	b, err := json.Marshal(raw)
	if err != nil {
		panic(err)
	}
	return store.Alert{
		ID: uuid.Must(uuid.NewV7()).String(), AgentID: agentID, Host: "node1", Time: at.UTC(), LastSeen: at.UTC(), Count: 1,
		Rule: rule, Priority: priorities[sev], Severity: sev, Source: "rules", Output: rule + " fired",
		Techniques: []string{"T1059"}, ContainerID: containerID, ContainerName: "web", Image: "nginx:1", Class: "web",
		DedupKey: uuid.NewString(), Raw: b,
	}
}

// seedAlerts stores n alerts, one a minute up to now, oldest first (so
// their UUIDv7 IDs sort by time): severity i%8, rule R<i%3>, container
// aaaa… for even i and bbbb… for odd.
func seedAlerts(t testing.TB, st store.Store, now time.Time, n int) []store.Alert {
	t.Helper()
	var as []store.Alert
	for i := range n {
		cid := strings.Repeat("a", 64)
		if i%2 == 1 {
			cid = strings.Repeat("b", 64)
		}
		as = append(as, testAlert("agent-1", cid, now.Add(-time.Duration(n-i)*time.Minute), i%8, fmt.Sprintf("R%d", i%3)))
	}
	if _, err := st.Apply(t.Context(), &store.Batch{Alerts: as}); err != nil {
		t.Fatalf("storing alerts: %v", err)
	}
	return as
}

func TestAlertFiltersAndPaging(t *testing.T) { testAlertFiltersAndPaging(t) }

func testAlertFiltersAndPaging(t *testing.T) {
	e := newEnv(t)
	as := seedAlerts(t, e.st, e.clk.Now(), 50)
	c := e.tokenClient(e.newToken(e.login("admin", e.adminPW), "reader", "read-only"))

	ids := func(q string) []string {
		t.Helper()
		st, body := c.raw("GET", "/api/v1/alerts?"+q, nil, nil)
		if st != 200 {
			t.Fatalf("GET /alerts?%s: %d %s", q, st, body)
		}
		checkSchema(t, "AlertPage", body)
		var p alertPage
		json.Unmarshal(body, &p)
		var out []string
		for _, a := range p.Alerts {
			out = append(out, a.ID)
		}
		return out
	}
	want := func(keep func(i int, a store.Alert) bool) []string {
		var out []string
		for i := len(as) - 1; i >= 0; i-- {
			if keep(i, as[i]) {
				out = append(out, as[i].ID)
			}
		}
		return out
	}
	for _, c := range []struct {
		q    string
		keep func(i int, a store.Alert) bool
	}{
		{"", func(int, store.Alert) bool { return true }},
		{"severity=warning", func(_ int, a store.Alert) bool { return a.Severity <= 4 }},
		{"severity=critical", func(_ int, a store.Alert) bool { return a.Severity <= 2 }},
		{"severity=0", func(_ int, a store.Alert) bool { return a.Severity == 0 }},
		{"since=10m", func(i int, _ store.Alert) bool { return i >= 40 }},
		{"since=" + url.QueryEscape(e.clk.Now().Add(-20*time.Minute).Format(time.RFC3339)) + "&until=" + url.QueryEscape(e.clk.Now().Add(-10*time.Minute).Format(time.RFC3339)),
			func(i int, _ store.Alert) bool { return i >= 30 && i < 40 }},
		{"workload=aaaaaaaa", func(i int, _ store.Alert) bool { return i%2 == 0 }},
		{"rule=R1", func(i int, _ store.Alert) bool { return i%3 == 1 }},
		{"rule=R1&severity=error&since=30m", func(i int, a store.Alert) bool { return i%3 == 1 && a.Severity <= 3 && i >= 20 }},
	} {
		got, w := ids(c.q), want(c.keep)
		if !slices.Equal(got, w) {
			t.Errorf("?%s: %d alerts, want %d\n got %v\nwant %v", c.q, len(got), len(w), got, w)
		}
	}

	// Paging with the cursor gives every alert once, newest first.
	var all []string
	next := ""
	for pages := 0; ; pages++ {
		if pages > 20 {
			t.Fatal("paging does not end")
		}
		q := "limit=7"
		if next != "" {
			q += "&before=" + next
		}
		var p alertPage
		if st := c.do("GET", "/api/v1/alerts?"+q, nil, &p); st != 200 || len(p.Alerts) > 7 {
			t.Fatalf("page %d: %d, %d alerts", pages, st, len(p.Alerts))
		}
		for _, a := range p.Alerts {
			all = append(all, a.ID)
		}
		if next = p.Next; next == "" {
			break
		}
	}
	if w := want(func(int, store.Alert) bool { return true }); !slices.Equal(all, w) {
		t.Errorf("paged through %d alerts, want the %d in order", len(all), len(w))
	}

	for _, q := range []string{"severity=bogus", "severity=9", "since=yesterday", "since=-5h", "limit=0", "limit=1001", "limit=x", "sevrity=warning",
		"since=1h&until=2h", "severity=warning&severity=error", "rule=" + url.QueryEscape("a\x00b")} {
		st, body := c.raw("GET", "/api/v1/alerts?"+q, nil, nil)
		param, _, _ := strings.Cut(q, "=")
		if st != 400 || !strings.Contains(string(body), param[:4]) {
			t.Errorf("?%s: %d %s, want 400 naming %s", q, st, body, param)
		}
	}

	// One alert: its raw event comes back whole.
	var d alertDetail
	st, body := c.raw("GET", "/api/v1/alerts/"+as[7].ID, nil, nil)
	if st != 200 {
		t.Fatalf("GET alert: %d", st)
	}
	checkSchema(t, "AlertDetail", body)
	json.Unmarshal(body, &d)
	var raw alert.Alert
	if err := json.Unmarshal(d.Raw, &raw); err != nil || raw.Event == nil || raw.Event.Process.PID != 4242 || raw.Event.Parent == nil || d.Actions == nil {
		t.Errorf("alert detail %+v / raw %+v (%v)", d, raw, err)
	}
	if st := c.do("GET", "/api/v1/alerts/"+uuid.NewString(), nil, nil); st != 404 {
		t.Errorf("unknown alert: %d, want 404", st)
	}
}

func TestDashboard(t *testing.T) { testDashboard(t) }

func testDashboard(t *testing.T) {
	e := newEnv(t)
	seedAlerts(t, e.st, e.clk.Now(), 30)
	e.agents.connected = []string{"agent-1"}
	for _, id := range []string{"agent-1", "agent-2"} {
		if err := e.st.PutAgent(t.Context(), store.Agent{ID: id, Hostname: id, Enrolled: e.clk.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	digest := "sha256:" + strings.Repeat("1", 64)
	clean := "sha256:" + strings.Repeat("2", 64)
	b := &store.Batch{
		Scans: []store.Scan{
			{ID: uuid.Must(uuid.NewV7()).String(), Time: e.clk.Now().Add(-time.Hour), Target: "nginx:1", ImageDigest: digest, Source: "agent:agent-1",
				Summary:  store.ScanSummary{Findings: 3, Critical: 1, High: 1, KEV: 1},
				Findings: []store.Finding{{VulnID: "CVE-1", Package: "openssl", Version: "1", Severity: "CRITICAL", KEV: true}, {VulnID: "CVE-2", Package: "zlib", Version: "1", Severity: "HIGH"}, {VulnID: "CVE-3", Package: "x", Version: "1", Severity: "LOW"}}},
			{ID: uuid.Must(uuid.NewV7()).String(), Time: e.clk.Now().Add(-time.Hour), Target: "busybox:1", ImageDigest: clean, Source: "agent:agent-1",
				Summary: store.ScanSummary{Findings: 1, Low: 1}, Findings: []store.Finding{{VulnID: "CVE-9", Package: "y", Version: "1", Severity: "LOW"}}},
		},
		Assets: []store.Asset{
			{Kind: store.KindContainer, ID: strings.Repeat("a", 64), AgentID: "agent-1", Name: "web", Data: json.RawMessage(`{"image":"nginx:1","image_digest":"` + digest + `"}`), FirstSeen: e.clk.Now(), LastSeen: e.clk.Now()},
			{Kind: store.KindContainer, ID: strings.Repeat("b", 64), AgentID: "agent-1", Name: "box", Data: json.RawMessage(`{"image":"busybox:1"}`), FirstSeen: e.clk.Now(), LastSeen: e.clk.Now()},
			{Kind: store.KindContainer, ID: strings.Repeat("c", 64), AgentID: "agent-1", Name: "unscanned", Data: json.RawMessage(`{"image":"alpine:3"}`), FirstSeen: e.clk.Now(), LastSeen: e.clk.Now()},
		},
	}
	if _, err := e.st.Apply(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	c := e.login("admin", e.adminPW)
	st, body := c.raw("GET", "/api/v1/dashboard?since=1h", nil, nil)
	if st != 200 {
		t.Fatalf("dashboard: %d %s", st, body)
	}
	checkSchema(t, "Dashboard", body)
	var d dashboardResponse
	json.Unmarshal(body, &d)
	if d.Stats.Total != 30 || d.Agents.Total != 2 || d.Agents.Connected != 1 {
		t.Errorf("total %d agents %+v, want 30 alerts, 2 agents, 1 connected", d.Stats.Total, d.Agents)
	}
	if len(d.KEVExposure) != 1 || d.KEVExposure[0].ImageDigest != digest || d.KEVExposure[0].Summary.KEV != 1 {
		t.Errorf("kev exposure %+v, want only %s", d.KEVExposure, digest)
	}
	if len(d.VulnerableWorkloads) != 2 || d.VulnerableWorkloads[0].Name != "web" || d.VulnerableWorkloads[1].Name != "box" {
		t.Errorf("vulnerable workloads %+v, want web (KEV, critical) then box (by reference)", d.VulnerableWorkloads)
	}
	if st, _ := c.raw("GET", "/api/v1/dashboard?since=soon", nil, nil); st != 400 {
		t.Errorf("since=soon: %d", st)
	}
	// The image page: findings KEV first.
	var img imageDetail
	if st := c.do("GET", "/api/v1/images/"+digest, nil, &img); st != 200 || len(img.Findings) != 3 || !img.Findings[0].KEV || img.Scan == nil {
		t.Errorf("image %s: %d %+v", digest, st, img)
	}
	if st := c.do("GET", "/api/v1/images/sha256:"+strings.Repeat("9", 64), nil, nil); st != 404 {
		t.Errorf("unknown image: %d, want 404", st)
	}
	if st := c.do("GET", "/api/v1/images/"+digest+"/sbom", nil, nil); st != 404 {
		t.Errorf("SBOM of a scan without one: %d, want 404", st)
	}
	var inv struct{ Assets []store.Asset }
	if st := c.do("GET", "/api/v1/inventory?kind=container", nil, &inv); st != 200 || len(inv.Assets) != 3 {
		t.Errorf("inventory: %d, %d assets", st, len(inv.Assets))
	}
	if st := c.do("GET", "/api/v1/inventory?kind=vm", nil, nil); st != 400 {
		t.Errorf("kind=vm: %d, want 400", st)
	}
}

// countingStore counts AlertStats calls on a real store.
type countingStore struct {
	store.Store
	mu    sync.Mutex
	stats int
}

func (c *countingStore) AlertStats(ctx context.Context, since time.Time, bucket time.Duration) (store.AlertStats, error) {
	c.mu.Lock()
	c.stats++
	c.mu.Unlock()
	return c.Store.AlertStats(ctx, since, bucket)
}

func (c *countingStore) calls() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// TestDashboardCache: within the TTL the figures come from the cache;
// once stale the stale copy is served and a background refresh brings
// the new figures.
func TestDashboardCache(t *testing.T) {
	cs := &countingStore{Store: openStore(t)}
	e := newEnvStore(t, cs, func(o *Options) { o.DashboardTTL = 10 * time.Second })
	c := e.login("admin", e.adminPW)
	total := func() int {
		var d dashboardResponse
		if st := c.do("GET", "/api/v1/dashboard", nil, &d); st != 200 {
			t.Fatalf("dashboard: %d", st)
		}
		return d.Stats.Total
	}
	if n := total(); n != 0 {
		t.Fatalf("empty store: %d alerts", n)
	}
	seedAlerts(t, e.st, e.clk.Now(), 5)
	if n := total(); n != 0 || cs.calls() != 1 {
		t.Errorf("within the TTL: %d alerts, %d computations; want the cached 0 and 1", n, cs.calls())
	}
	e.clk.Add(11 * time.Second)
	total() // stale: served, refresh started
	deadline := time.Now().Add(20 * time.Second)
	for total() != 5 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh never brought the 5 new alerts")
		}
		time.Sleep(10 * time.Millisecond) // polling interval
	}
	if n := cs.calls(); n != 2 {
		t.Errorf("%d computations, want 2", n)
	}
}
