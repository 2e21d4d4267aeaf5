package export

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
)

func TestItemsOfBatch(t *testing.T) {
	items := testItems(t)
	var kinds []string
	for _, it := range items {
		kinds = append(kinds, it.Kind)
	}
	want := []string{KindAlert, KindResponse, KindFinding, KindFinding, KindCompliance}
	if len(kinds) != len(want) {
		t.Fatalf("kinds = %v, want %v (AlertUpdates are not exported)", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("kinds = %v, want %v", kinds, want)
		}
	}
	if items[2].Finding.ScanID != "scan-1" || items[3].Scan.ImageDigest != "sha256:abcd" {
		t.Errorf("finding item lost its scan: %+v %+v", items[2].Finding, items[3].Scan)
	}
	a := items[0].AgentAlert()
	if a == nil || a.Event == nil || a.Event.Parent == nil || a.Event.Workload.PodNamespace != "prod" {
		t.Fatalf("alert Raw not decoded into the agent's alert: %+v", a)
	}
}

func TestBackoffGrowsAndIsBounded(t *testing.T) {
	lo, hi := 100*time.Millisecond, time.Second
	for attempt := 1; attempt < 12; attempt++ {
		d := backoff(lo, hi, attempt)
		full := min(lo<<(attempt-1), hi)
		if d < full/2 || d > full {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, full/2, full)
		}
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A receiver that never answers: Publish keeps returning at once, the
// buffer holds at most Buffer items (+ the batch in flight) and the rest
// are counted as dropped.
func TestPublishNeverBlocksOnABlockedReceiver(t *testing.T) {
	release := make(chan struct{})
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	defer srv.Close()
	const buffer, batch = 100, 10
	m, err := New(Config{Sinks: []SinkConfig{{Type: TypeSplunk, URL: srv.URL, Token: "t", Buffer: buffer, Batch: batch, Timeout: time.Minute}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	defer close(release) // before Close, which flushes
	b := &store.Batch{Alerts: []store.Alert{testAlert(t, "a")}}
	// The first batch goes in flight and blocks the sink.
	m.Publish(b)
	waitFor(t, "the first request", func() bool { return requests.Load() == 1 })
	const n = 5000
	done := make(chan struct{})
	go func() {
		for range n {
			m.Publish(b)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Publish blocked on a blocked receiver")
	}
	s := m.Stats()[0]
	if s.Queued > buffer+batch {
		t.Errorf("queued %d > buffer %d + batch %d", s.Queued, buffer, batch)
	}
	if want := uint64(n - buffer); s.Dropped != want {
		t.Errorf("dropped = %d, want %d", s.Dropped, want)
	}
	if s.Sent != 0 {
		t.Errorf("sent = %d while the receiver is blocked", s.Sent)
	}
}

// Close flushes what is queued, and gives up (counting the drops) when its
// context ends.
func TestCloseFlushesAndGivesUp(t *testing.T) {
	var got atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	defer ok.Close()
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer down.Close()
	m, err := New(Config{Sinks: []SinkConfig{
		{Name: "ok", Type: TypeSplunk, URL: ok.URL, Token: "t", Batch: 1},
		{Name: "down", Type: TypeSplunk, URL: down.URL, Token: "t", BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		m.Publish(&store.Batch{Alerts: []store.Alert{testAlert(t, "a")}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err = m.Close(ctx)
	if err == nil {
		t.Fatal("Close reported success with a receiver down")
	}
	st := m.Stats()
	if st[0].Sent != 20 || got.Load() != 20 {
		t.Errorf("ok sink: sent %d, receiver got %d, want 20", st[0].Sent, got.Load())
	}
	if st[1].Dropped != 20 || st[1].Queued != 0 || st[1].Failed == 0 || st[1].LastError == "" {
		t.Errorf("down sink stats %+v: want 20 dropped, failures and an error", st[1])
	}
	m.Publish(&store.Batch{Alerts: []store.Alert{testAlert(t, "late")}}) // after Close: ignored, no panic
}

func TestMaxAttemptsDrops(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	m, err := New(Config{Sinks: []SinkConfig{{Type: TypeWebhook, URL: srv.URL, Secret: "s", MaxAttempts: 3, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	m.Publish(testBatch(t))
	waitFor(t, "the batch to be dropped", func() bool { return m.Stats()[0].Dropped == 5 })
	if s := m.Stats()[0]; s.Failed != 3 || calls.Load() != 3 || s.Sent != 0 {
		t.Errorf("stats %+v after %d calls: want 3 failed attempts, 3 calls", s, calls.Load())
	}
}

func TestNewRefusesBadSinks(t *testing.T) {
	for _, c := range []SinkConfig{
		{Type: "kafka"},
		{Type: TypeSyslog, Address: "nohostport"},
		{Type: TypeSyslog, Address: "h:1", Format: "leef"},
		{Type: TypeSplunk, URL: "https://h"},  // no token
		{Type: TypeWebhook, URL: "https://h"}, // no secret
		{Type: TypeElastic, URL: "ftp://h"},
		{Type: TypeOCSFFile},
		{Type: TypeOCSFFile, Path: "/tmp/x", Buffer: MaxBuffer + 1},
		{Type: TypeSyslog, Address: "h:1", Network: "tls", TLS: TLSConfig{CA: "/nonexistent/ca.pem"}},
	} {
		if m, err := New(Config{Sinks: []SinkConfig{c}}, nil); err == nil {
			m.Close(context.Background())
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}

func TestSinkFilters(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var docs []map[string]any
		if err := json.NewDecoder(r.Body).Decode(&docs); err != nil {
			w.WriteHeader(400)
			return
		}
		for _, d := range docs {
			if d["kind"] == "alert" && d["alert"].(map[string]any)["priority"] != "critical" {
				w.WriteHeader(400) // the filter let a warning through
				return
			}
		}
		got.Add(int64(len(docs)))
	}))
	defer srv.Close()
	c, err := ParseSink("webhook+http://" + srv.Listener.Addr().String() + "/?secret=s&kinds=alert,finding&min_priority=critical")
	if err != nil {
		t.Fatal(err)
	}
	m := runSink(t, c)
	b := testBatch(t)
	warn := testAlert(t, "warn")
	warn.Priority, warn.Severity = "warning", 4
	b.Alerts = append(b.Alerts, warn)
	m.Publish(b)
	waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 3 })
	if s := m.Stats()[0]; got.Load() != 3 || s.Dropped != 0 || s.Failed != 0 {
		t.Errorf("receiver got %d, stats %+v: want the critical alert and the 2 findings", got.Load(), s)
	}
	for _, bad := range []string{"kinds=alerts", "min_priority=urgent"} {
		c, err := ParseSink("webhook+https://h/?secret=s&" + bad)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := New(Config{Sinks: []SinkConfig{c}}, nil); err == nil {
			m.Close(context.Background())
			t.Errorf("%s accepted", bad)
		}
	}
}
