package hub

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestEnrollAndConnect(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	a := e.enroll("node-1")

	block, _ := pem.Decode(a.certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != a.id {
		t.Errorf("certificate CN %q, agent ID %q", cert.Subject.CommonName, a.id)
	}
	if string(a.enrolledResponse.CA) != string(e.ca.CertPEM()) {
		t.Error("enrollment did not return the CA certificate")
	}
	stored, err := e.st.Agent(ctx, a.id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Hostname != "node-1" || stored.CertSerial != pki.Serial(cert) || stored.Revoked {
		t.Errorf("stored agent %+v, want node-1 with serial %s", stored, pki.Serial(cert))
	}

	st, seq := a.connect(t, ctx)
	if seq != 0 {
		t.Errorf("hello ack = %d, want 0 for a new agent", seq)
	}
	waitFor(t, func() bool { return slices.Contains(e.hub.Connected(), a.id) }, "agent listed as connected")
	if err := st.Send(&wire.AgentMessage{Heartbeat: &wire.Heartbeat{Time: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	st.CloseSend()
	if _, err := st.Recv(); err == nil {
		t.Error("stream still open after CloseSend")
	}
	waitFor(t, func() bool { return !slices.Contains(e.hub.Connected(), a.id) }, "agent gone from Connected")
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnrollRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	c := e.pinned()
	_, csr, _ := pki.NewKeyCSR("n")

	used := e.token(time.Hour)
	if _, err := c.Enroll(ctx, &wire.EnrollRequest{Token: used, Hostname: "n", CSR: csr}); err != nil {
		t.Fatal(err)
	}
	expired := e.token(-time.Minute)
	badCSR := e.token(time.Hour)
	for _, tc := range []struct {
		name string
		req  *wire.EnrollRequest
		code codes.Code
		msg  string
	}{
		{"replayed token", &wire.EnrollRequest{Token: used, Hostname: "n", CSR: csr}, codes.PermissionDenied, "already used"},
		{"expired token", &wire.EnrollRequest{Token: expired, Hostname: "n", CSR: csr}, codes.PermissionDenied, "expired"},
		{"unknown token", &wire.EnrollRequest{Token: "nope", Hostname: "n", CSR: csr}, codes.Unauthenticated, "unknown"},
		{"no token", &wire.EnrollRequest{Hostname: "n", CSR: csr}, codes.Unauthenticated, "missing"},
		{"bad CSR", &wire.EnrollRequest{Token: badCSR, Hostname: "n", CSR: []byte("junk")}, codes.InvalidArgument, "certificate request"},
		{"control characters in the hostname", &wire.EnrollRequest{Token: badCSR, Hostname: "n\x1b[31m", CSR: csr}, codes.InvalidArgument, "hostname"},
	} {
		_, err := c.Enroll(ctx, tc.req)
		if s := status.Convert(err); s.Code() != tc.code || !strings.Contains(s.Message(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.code, tc.msg)
		}
	}
	// A refused request did not spend its token.
	if _, err := c.Enroll(ctx, &wire.EnrollRequest{Token: badCSR, Hostname: "n", CSR: csr}); err != nil {
		t.Errorf("the token refused with a bad CSR was spent: %v", err)
	}
	agents, _ := e.st.Agents(ctx)
	if len(agents) != 2 {
		t.Errorf("%d agents stored, want 2 (one per accepted enrollment)", len(agents))
	}
}

func TestConnectRefusals(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	good := e.enroll("good")

	// Another CA's certificate for the same agent ID.
	otherCA, _ := pki.LoadOrCreate(t.TempDir())
	key, csr, _ := pki.NewKeyCSR("x")
	forgedPEM, _, _, _ := otherCA.SignAgent(csr, good.id, time.Hour)
	forged := e.agentWith(good.id, "good", forgedPEM, key, nil)

	// Our CA, the right ID, but not the serial issued at enrollment.
	reissuedPEM, _, _, _ := e.ca.SignAgent(csr, good.id, time.Hour)
	reissued := e.agentWith(good.id, "good", reissuedPEM, key, nil)

	// A revoked agent.
	revoked := e.enroll("revoked")
	ra, _ := e.st.Agent(ctx, revoked.id)
	ra.Revoked = true
	if err := e.st.PutAgent(ctx, ra); err != nil {
		t.Fatal(err)
	}

	// An expired certificate, issued and stored as the agent's.
	expiredID := "00000000-0000-7000-8000-000000000001"
	expiredPEM, serial, notAfter, _ := e.ca.SignAgent(csr, expiredID, time.Nanosecond)
	e.st.PutAgent(ctx, store.Agent{ID: expiredID, Hostname: "old", Enrolled: time.Now(), CertSerial: serial, CertNotAfter: notAfter})
	expired := e.agentWith(expiredID, "old", expiredPEM, key, nil)

	// A certificate of our CA for an agent never stored.
	strangerPEM, _, _, _ := e.ca.SignAgent(csr, "stranger", time.Hour)
	stranger := e.agentWith("stranger", "s", strangerPEM, key, nil)

	noCert := &agent{client: e.pinned(), id: "none"}

	for _, tc := range []struct {
		name string
		a    *agent
		msg  string
	}{
		{"certificate of another CA", forged, "unknown authority"},
		{"certificate not the one issued", reissued, "serial"},
		{"revoked agent", revoked, "revoked"},
		{"expired certificate", expired, "expired"},
		{"agent not enrolled", stranger, "not enrolled"},
		{"no client certificate", noCert, "no client certificate"},
	} {
		st, err := tc.a.client.Connect(ctx)
		if err == nil {
			st.Send(&wire.AgentMessage{Hello: &wire.Hello{Hostname: "x"}})
			_, err = st.Recv()
		}
		if s := status.Convert(err); s.Code() != codes.Unauthenticated || !strings.Contains(s.Message(), tc.msg) {
			t.Errorf("%s: %v, want Unauthenticated containing %q", tc.name, err, tc.msg)
		}
	}
	// The rightful agent still connects.
	st, _ := good.connect(t, ctx)
	st.CloseSend()
	if n := len(e.hub.Connected()); n > 1 {
		t.Errorf("%d agents connected, want at most the good one", n)
	}
}

// rawCodec sends bytes as they are, under the JSON codec's name.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (rawCodec) Name() string { return wire.Codec }

func rawStream(t *testing.T, ctx context.Context, a *agent, opts ...grpc.CallOption) grpc.ClientStream {
	t.Helper()
	s, err := a.cc.NewStream(ctx, &wire.ServiceDesc.Streams[0], wire.ConnectMethod, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendMsg([]byte(`{"hello":{"hostname":"raw"}}`)); err != nil {
		t.Fatal(err)
	}
	var ack []byte
	if err := s.RecvMsg(&ack); err != nil {
		t.Fatalf("hello on a raw stream: %v", err)
	}
	return s
}

func TestBadMessagesEndOnlyTheirStream(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	bad, good := e.enroll("bad"), e.enroll("good")
	gs, _ := good.connect(t, ctx)
	seq := uint64(0)
	goodBatch := func() {
		seq++
		if got := send(t, gs, rec(t, seq, wire.KindAlert, mkAlert(fmt.Sprintf("R%d", seq), "", "/bin/sh", time.Now()))); got != seq {
			t.Fatalf("good agent ack %d, want %d", got, seq)
		}
	}
	goodBatch()

	for _, tc := range []struct {
		name string
		msg  []byte
		code codes.Code
	}{
		// gRPC itself ends a stream whose message does not decode, with
		// Internal; the hub logs it.
		{"invalid JSON", []byte(`{"batch":{"records":[{"seq":1,`), codes.Internal},
		{"binary garbage", []byte("\x00\x01\x02\xff\xfe"), codes.Internal},
		{"wrong types", []byte(`{"batch":{"records":"many"}}`), codes.Internal},
		{"two fields set", []byte(`{"batch":{"records":[]},"heartbeat":{}}`), codes.InvalidArgument},
		{"empty message", []byte(`{}`), codes.InvalidArgument},
		{"records out of order", []byte(`{"batch":{"records":[{"seq":2,"kind":"alert"},{"seq":1,"kind":"alert"}]}}`), codes.InvalidArgument},
		{"oversized", []byte(`{"hello":{"hostname":"` + strings.Repeat("x", wire.MaxMessageSize) + `"}}`), codes.ResourceExhausted},
	} {
		s := rawStream(t, ctx, bad, grpc.ForceCodec(rawCodec{}))
		if err := s.SendMsg(tc.msg); err != nil {
			t.Fatalf("%s: send: %v", tc.name, err)
		}
		var reply []byte
		err := s.RecvMsg(&reply)
		if status.Code(err) != tc.code {
			t.Errorf("%s: stream ended with %v, want %v", tc.name, err, tc.code)
		}
		goodBatch() // the other agent's stream is undisturbed
	}

	// Another codec altogether: protobuf content type on the same method.
	s, err := bad.cc.NewStream(ctx, &wire.ServiceDesc.Streams[0], wire.ConnectMethod)
	if err == nil {
		s.SendMsg(&wire.AgentMessage{Hello: &wire.Hello{}})
		err = s.RecvMsg(new(wire.ServerMessage))
	}
	if err == nil {
		t.Error("a protobuf-coded stream was served")
	}
	goodBatch()
	if got := len(mustAlerts(t, e.st, store.AlertFilter{})); got != int(seq) {
		t.Errorf("%d alerts stored, want %d (the good agent's)", got, seq)
	}
}

func mustAlerts(t *testing.T, st store.Store, f store.AlertFilter) []store.Alert {
	t.Helper()
	if f.Limit == 0 {
		f.Limit = 1000
	}
	as, err := st.Alerts(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

// Exactly once: 1000 alerts in batches of 25, the connection cut with
// batches in flight, the agent resending from its last ack.
func TestExactlyOnceAcrossReconnect(t *testing.T) {
	e := newEnv(t, Options{})
	a := e.enroll("node-1")
	const total, per = 1000, 25
	recs := make([]wire.Record, total)
	t0 := time.Now()
	for i := range recs {
		// Distinct rules: dedup must not merge them.
		recs[i] = rec(t, uint64(i+1), wire.KindAlert, mkAlert(fmt.Sprintf("rule-%04d", i+1), "c1", "/bin/sh", t0.Add(time.Duration(i)*time.Millisecond)))
	}

	acked := uint64(0)
	// First connection: send 16 batches without waiting, read a few acks,
	// then cut it.
	ctx1, cut := context.WithCancel(timeout(t))
	st, seq := a.connect(t, ctx1)
	if seq != 0 {
		t.Fatalf("hello ack %d, want 0", seq)
	}
	for i := 0; i < 16; i++ {
		if err := st.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: recs[i*per : (i+1)*per]}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5; i++ {
		acked = recvAck(t, st)
	}
	cut()
	if acked < 5*per {
		t.Fatalf("acked %d after 5 acks", acked)
	}

	// Reconnect and resend everything from the last ack on, as the spool
	// does, even though the server may have stored more.
	ctx := timeout(t)
	waitFor(t, func() bool { return !slices.Contains(e.hub.Connected(), a.id) }, "the cut stream to end")
	st, seq = a.connect(t, ctx)
	if seq < acked {
		t.Fatalf("hello ack %d below the last ack %d", seq, acked)
	}
	for next := acked; next < total; {
		end := min(next+per, total)
		got := send(t, st, recs[next:end]...)
		// The ack may be beyond the batch: a resent batch is answered
		// with what is stored, and the agent drops up to there.
		if got < end || got > total {
			t.Fatalf("ack %d for records %d..%d", got, next+1, end)
		}
		next = got
	}
	// A resend of a stored batch is acked and changes nothing.
	if got := send(t, st, recs[:per]...); got != total {
		t.Errorf("ack of a resent batch %d, want %d", got, total)
	}

	as := mustAlerts(t, e.st, store.AlertFilter{})
	if len(as) != total {
		t.Fatalf("%d alerts stored, want %d", len(as), total)
	}
	rules := map[string]bool{}
	for _, x := range as {
		if rules[x.Rule] || x.Count != 1 {
			t.Fatalf("alert %s stored twice or counted %d", x.Rule, x.Count)
		}
		rules[x.Rule] = true
	}
	stats, err := e.st.AlertStats(ctx, t0.Add(-time.Hour), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Total != total {
		t.Errorf("AlertStats.Total %d, want %d", stats.Total, total)
	}
	ag, _ := e.st.Agent(ctx, a.id)
	if ag.Seq != total {
		t.Errorf("stored sequence %d, want %d", ag.Seq, total)
	}
	// Every stored alert was published exactly once.
	e.mu.Lock()
	published := 0
	for _, b := range e.pubs {
		published += len(b.Alerts)
	}
	e.mu.Unlock()
	if published != total {
		t.Errorf("%d alerts published, want %d", published, total)
	}
}

func TestDedupAndIncidents(t *testing.T) {
	e := newEnv(t, Options{DedupWindow: time.Minute, IncidentWindow: 10 * time.Minute})
	ctx := timeout(t)
	a := e.enroll("node-1")
	st, _ := a.connect(t, ctx)
	// The last alerts fall within the windows of the store's "now", so a
	// reconnect seeds them.
	t0 := time.Now().Add(-31 * time.Minute).Truncate(time.Second)
	at := func(d time.Duration) time.Time { return t0.Add(d) }

	shell := mkAlert("Terminal shell in container", "c1", "/bin/sh", at(0), "T1059")
	seq := uint64(0)
	next := func(v any, kind string) wire.Record { seq++; return rec(t, seq, kind, v) }
	send(t, st,
		next(shell, wire.KindAlert),
		next(mkAlert("Terminal shell in container", "c1", "/bin/sh", at(10*time.Second), "T1059"), wire.KindAlert),
	)
	send(t, st,
		next(mkAlert("Terminal shell in container", "c1", "/bin/sh", at(20*time.Second), "T1059"), wire.KindAlert),
		next(mkAlert("Drop and execute new binary", "c1", "/tmp/x", at(30*time.Second), "T1610", "T1059"), wire.KindAlert),
		next(mkAlert("Terminal shell in container", "c2", "/bin/sh", at(40*time.Second), "T1059"), wire.KindAlert),
		// Outside the dedup window: a new row, same incident.
		next(mkAlert("Terminal shell in container", "c1", "/bin/sh", at(2*time.Minute), "T1059"), wire.KindAlert),
		// Outside the incident window: a new incident.
		next(mkAlert("Terminal shell in container", "c1", "/bin/sh", at(30*time.Minute), "T1059"), wire.KindAlert),
	)
	as := mustAlerts(t, e.st, store.AlertFilter{AgentID: a.id})
	if len(as) != 5 {
		t.Fatalf("%d alert rows, want 5: %+v", len(as), as)
	}
	slices.SortFunc(as, func(x, y store.Alert) int { return x.Time.Compare(y.Time) })
	first := as[0]
	if first.Count != 3 || !first.LastSeen.Equal(at(20*time.Second)) {
		t.Errorf("deduplicated row: count %d last seen %v, want 3 at %v", first.Count, first.LastSeen, at(20*time.Second))
	}
	if first.Severity != 4 || first.ContainerID != "c1" || first.Class == "" {
		t.Errorf("row columns: severity %d container %q class %q", first.Severity, first.ContainerID, first.Class)
	}
	inc1 := first.IncidentID
	if as[1].IncidentID != inc1 || as[3].IncidentID != inc1 {
		t.Errorf("c1's alerts within the window are not in one incident: %s %s %s", inc1, as[1].IncidentID, as[3].IncidentID)
	}
	if as[2].IncidentID == inc1 || as[2].ContainerID != "c2" {
		t.Errorf("c2's alert shares c1's incident")
	}
	if as[4].IncidentID == inc1 || as[4].IncidentID == "" {
		t.Errorf("an alert 28 minutes after the last one joined the old incident")
	}
	inc, err := e.st.Incident(ctx, inc1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(inc.Techniques, []string{"T1059", "T1610"}) || inc.AlertCount != 3 || inc.WorkloadKey != "c1" {
		t.Errorf("incident %+v, want techniques [T1059 T1610], 3 alerts, workload c1", inc)
	}

	// After a reconnect the state is seeded from the store: a repeat
	// within the window still folds into the stored row, and an aggregate
	// line from the agent adds its count.
	st.CloseSend()
	waitFor(t, func() bool { return len(e.hub.Connected()) == 0 }, "stream end")
	st, ack := a.connect(t, ctx)
	if ack != seq {
		t.Fatalf("hello ack %d, want %d", ack, seq)
	}
	last := as[4]
	agg := mkAlert("Terminal shell in container", "c1", "/bin/sh", at(30*time.Minute+5*time.Second), "T1059")
	agg.Aggregate, agg.Count, agg.FirstSeen, agg.LastSeen = true, 7, at(30*time.Minute+time.Second), at(30*time.Minute+5*time.Second)
	send(t, st,
		next(mkAlert("Terminal shell in container", "c1", "/bin/sh", at(30*time.Minute+time.Second), "T1059"), wire.KindAlert),
		next(agg, wire.KindAlert),
	)
	got, err := e.st.Alert(ctx, last.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Count != 1+1+7 {
		t.Errorf("row after a reconnect: count %d, want 9", got.Count)
	}
	if n := len(mustAlerts(t, e.st, store.AlertFilter{AgentID: a.id})); n != 5 {
		t.Errorf("%d rows after the repeats, want still 5", n)
	}
}

func TestCommandRoundTrip(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	a := e.enroll("node-1")

	if _, err := e.hub.Command(ctx, a.id, wire.Command{Kind: wire.CommandProfiles}); !errors.Is(err, ErrNotConnected) {
		t.Errorf("command to an agent not connected: %v, want ErrNotConnected", err)
	}
	st, _ := a.connect(t, ctx)
	waitFor(t, func() bool { return slices.Contains(e.hub.Connected(), a.id) }, "connected")

	// The fake agent answers respond commands, and ignores set_mode.
	go func() {
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			if c := m.Command; c != nil && c.Kind == wire.CommandRespond {
				st.Send(&wire.AgentMessage{Result: &wire.CommandResult{
					ID: c.ID, OK: true, Record: []byte(`{"id":"r1","action":"` + c.Action + `","outcome":"done"}`),
				}})
			}
		}
	}()
	r, err := e.hub.Command(ctx, a.id, wire.Command{Kind: wire.CommandRespond, Action: "freeze", Actor: "alice", Target: []byte(`{"container_id":"c1"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.OK || r.ID == "" || !strings.Contains(string(r.Record), `"action":"freeze"`) {
		t.Errorf("result %+v", r)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := e.hub.Command(short, a.id, wire.Command{Kind: wire.CommandSetMode, Class: "x", Mode: "protect"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered command: %v, want the context's deadline", err)
	}
	// A command waiting when the stream ends fails at once.
	done := make(chan error, 1)
	go func() {
		_, err := e.hub.Command(ctx, a.id, wire.Command{Kind: wire.CommandSetMode, Class: "x", Mode: "protect"})
		done <- err
	}()
	time.AfterFunc(100*time.Millisecond, func() { st.CloseSend() })
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotConnected) {
			t.Errorf("command cut by the stream's end: %v, want ErrNotConnected", err)
		}
	case <-ctx.Done():
		t.Fatal("command still waiting after the stream ended")
	}
}

// flaky fails Apply a number of times, as a store that is down would.
type flaky struct {
	store.Store
	failures atomic.Int32
	calls    atomic.Int32
}

func (f *flaky) Apply(ctx context.Context, b *store.Batch) (uint64, error) {
	f.calls.Add(1)
	if f.failures.Add(-1) >= 0 {
		return 0, errors.New("connection refused")
	}
	return f.Store.Apply(ctx, b)
}

func TestStoreDownRetriesWithoutAck(t *testing.T) {
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &flaky{Store: st}
	e := newEnvStore(t, Options{Store: f, RetryMin: time.Millisecond, RetryMax: 10 * time.Millisecond})
	ctx := timeout(t)
	a := e.enroll("node-1")
	s, _ := a.connect(t, ctx)
	f.failures.Store(5)
	if got := send(t, s, rec(t, 1, wire.KindAlert, mkAlert("R", "", "/bin/sh", time.Now()))); got != 1 {
		t.Fatalf("ack %d, want 1", got)
	}
	if n := f.calls.Load(); n != 6 {
		t.Errorf("%d Apply calls, want 5 failures then a success", n)
	}
	if n := len(mustAlerts(t, st, store.AlertFilter{})); n != 1 {
		t.Errorf("%d alerts stored, want 1", n)
	}

	// While the store stays down nothing is acked; when the stream ends
	// the batch is still the agent's to resend.
	f.failures.Store(1 << 30)
	short, cancel := context.WithCancel(ctx)
	s2, _ := a.connect(t, short)
	s2.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: []wire.Record{rec(t, 2, wire.KindAlert, mkAlert("S", "", "/bin/sh", time.Now()))}}})
	waitFor(t, func() bool { return f.calls.Load() > 10 }, "retries")
	cancel()
	f.failures.Store(0)
	s3, seq := a.connect(t, ctx)
	if seq != 1 {
		t.Fatalf("hello ack %d after the outage, want 1", seq)
	}
	if got := send(t, s3, rec(t, 2, wire.KindAlert, mkAlert("S", "", "/bin/sh", time.Now()))); got != 2 {
		t.Errorf("ack %d, want 2", got)
	}
	if n := len(mustAlerts(t, st, store.AlertFilter{})); n != 2 {
		t.Errorf("%d alerts stored, want 2", n)
	}
}

func TestRecordKinds(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	a := e.enroll("node-1")
	s, _ := a.connect(t, ctx)
	report, err := os.ReadFile("../report/testdata/scan.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	kill := mkAlert("Drop and execute new binary", "c9", "/tmp/x", now, "T1610")
	got := send(t, s,
		rec(t, 1, wire.KindAlert, kill),
		rec(t, 2, wire.KindResponse, response.Record{ID: "resp-1", Time: now, Action: response.Freeze, Target: response.Target{ContainerID: "c9"},
			Reason: "Drop and execute new binary", Mode: "enforce", Automatic: true, Actor: "agent", Outcome: "done"}),
		rec(t, 3, wire.KindAsset, store.Asset{Kind: store.KindContainer, ID: "c9", Name: "web", Labels: map[string]string{"app": "web"}}),
		rec(t, 4, wire.KindScan, wire.Scan{Target: "nginx:1.25", Report: report}),
		rec(t, 5, wire.KindProfile, wire.Profile{Class: "docker.io/library/nginx", Mode: "monitor", Data: []byte(`{"execs":["/bin/sh"]}`)}),
		rec(t, 6, wire.KindCompliance, store.ComplianceResult{Benchmark: "cis-docker", CheckID: "5.4", Title: "privileged", Status: "fail"}),
		// Bad records are skipped, not fatal.
		rec(t, 7, "gossip", map[string]int{"x": 1}),
		wire.Record{Seq: 8, Kind: wire.KindAlert, Data: []byte(`{"rule":7}`)},
		rec(t, 9, wire.KindAsset, store.Asset{Kind: "planet", ID: "mars"}),
	)
	if got != 9 {
		t.Fatalf("ack %d, want 9", got)
	}
	as := mustAlerts(t, e.st, store.AlertFilter{})
	if len(as) != 1 {
		t.Fatalf("%d alerts, want 1", len(as))
	}
	rs, _ := e.st.Responses(ctx, a.id, 10)
	if len(rs) != 1 || rs[0].Target != "c9" || rs[0].Action != "freeze" || rs[0].AlertID != as[0].ID {
		t.Errorf("responses %+v, want the freeze of c9 linked to alert %s", rs, as[0].ID)
	}
	asset, err := e.st.Asset(ctx, store.KindContainer, "c9")
	if err != nil || asset.AgentID != a.id || asset.Labels["app"] != "web" {
		t.Errorf("asset %+v, %v", asset, err)
	}
	scans, _ := e.st.Scans(ctx, 10)
	if len(scans) != 1 || scans[0].Source != "agent:"+a.id || scans[0].Target != "nginx:1.25" || !strings.HasPrefix(scans[0].ImageDigest, "sha256:") {
		t.Fatalf("scans %+v", scans)
	}
	fs, _ := e.st.Findings(ctx, scans[0].ID)
	if len(fs) == 0 || len(fs) != scans[0].Summary.Findings || !fs[0].KEV {
		t.Errorf("%d findings (summary says %d), first KEV=%v; want all, KEV first", len(fs), scans[0].Summary.Findings, len(fs) > 0 && fs[0].KEV)
	}
	ps, _ := e.st.Profiles(ctx)
	if len(ps) != 1 || ps[0].Mode != "monitor" || ps[0].AgentID != a.id {
		t.Errorf("profiles %+v", ps)
	}
	cs, _ := e.st.Compliance(ctx, 10)
	if len(cs) != 1 || cs[0].Status != "fail" || cs[0].AgentID != a.id {
		t.Errorf("compliance %+v", cs)
	}
	// One batch, one publish, with every row.
	select {
	case b := <-e.pubCh:
		if b.FirstSeq != 1 || b.LastSeq != 9 || len(b.Alerts) != 1 || len(b.Responses) != 1 || len(b.Scans) != 1 {
			t.Errorf("published batch %d..%d with %d alerts %d responses %d scans", b.FirstSeq, b.LastSeq, len(b.Alerts), len(b.Responses), len(b.Scans))
		}
	default:
		t.Error("nothing published")
	}
}

func TestSeverity(t *testing.T) {
	for p, want := range map[string]int{"Emergency": 0, "ALERT": 1, "critical": 2, "Error": 3, "Warning": 4, "Notice": 5, "Informational": 6, "info": 6, "Debug": 7, "bogus": 4} {
		if got := Severity(p); got != want {
			t.Errorf("Severity(%q) = %d, want %d", p, got, want)
		}
	}
}

// On PostgreSQL: the same ingest, with text PostgreSQL refuses as it comes
// (NUL in strings and in the raw JSON), acked and stored cleaned.
func TestPostgresIngest(t *testing.T) {
	dsn := vigiltest.Postgres(t)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e := newEnvStore(t, Options{Store: st})
	ctx := timeout(t)
	a := e.enroll("node-1")
	s, _ := a.connect(t, ctx)
	nul := mkAlert("Rule\x00with NUL", "c\x001", "/bin/sh\x00", time.Now(), "T1059")
	nul.Output = "out\x00put"
	got := send(t, s,
		rec(t, 1, wire.KindAlert, nul),
		rec(t, 2, wire.KindAlert, mkAlert("Plain", "c2", "/bin/sh", time.Now())),
		rec(t, 3, wire.KindAsset, store.Asset{Kind: store.KindHost, ID: "h\x00", Labels: map[string]string{"k\x00": "v"}, Data: []byte(`{"os":"\u0000"}`)}),
	)
	if got != 3 {
		t.Fatalf("ack %d, want 3", got)
	}
	as := mustAlerts(t, st, store.AlertFilter{})
	if len(as) != 2 {
		t.Fatalf("%d alerts, want 2", len(as))
	}
	for _, x := range as {
		if strings.ContainsRune(x.Rule+x.Output+x.ContainerID, 0) {
			t.Errorf("NUL stored: %q", x.Rule)
		}
	}
}

// Records the agent lost before delivering them (a full spool) leave a
// gap: the next records are stored, the gap logged, never waited for.
func TestSequenceGapAccepted(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	a := e.enroll("node-1")
	st, _ := a.connect(t, ctx)
	if got := send(t, st, rec(t, 1, wire.KindAlert, mkAlert("A", "", "/bin/sh", time.Now()))); got != 1 {
		t.Fatalf("ack %d, want 1", got)
	}
	if got := send(t, st, rec(t, 7, wire.KindAlert, mkAlert("B", "", "/bin/sh", time.Now()))); got != 7 {
		t.Fatalf("ack %d after a gap, want 7", got)
	}
	if n := len(mustAlerts(t, e.st, store.AlertFilter{})); n != 2 {
		t.Errorf("%d alerts, want 2", n)
	}
}

func TestDisconnectAfterRevocation(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := timeout(t)
	a := e.enroll("node-1")
	st, _ := a.connect(t, ctx)
	waitFor(t, func() bool { return slices.Contains(e.hub.Connected(), a.id) }, "connected")
	ag, _ := e.st.Agent(ctx, a.id)
	ag.Revoked = true
	e.st.PutAgent(ctx, ag)
	if !e.hub.Disconnect(a.id) {
		t.Fatal("Disconnect found no stream")
	}
	if _, err := st.Recv(); status.Code(err) != codes.Canceled {
		t.Errorf("stream after Disconnect: %v, want Canceled", err)
	}
	st2, err := a.client.Connect(ctx)
	if err == nil {
		st2.Send(&wire.AgentMessage{Hello: &wire.Hello{}})
		_, err = st2.Recv()
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("reconnect of a revoked agent: %v, want Unauthenticated", err)
	}
	if e.hub.Disconnect(a.id) {
		t.Error("Disconnect of an agent without a stream reported one")
	}
}

// notify is a slog handler that signals each record whose message
// contains substr.
type notify struct {
	substr string
	ch     chan struct{}
}

func (n *notify) Enabled(context.Context, slog.Level) bool { return true }
func (n *notify) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, n.substr) {
		select {
		case n.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (n *notify) WithAttrs([]slog.Attr) slog.Handler { return n }
func (n *notify) WithGroup(string) slog.Handler      { return n }

// PostgreSQL stopped under a live stream: the batch is retried, not
// acked, and stored exactly once when the database is back.
func TestPostgresOutage(t *testing.T) {
	dsn, stop, start := vigiltest.PrivatePostgres(t)
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	retrying := &notify{substr: "retrying", ch: make(chan struct{}, 1)}
	e := newEnvStore(t, Options{Store: st, RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: slog.New(retrying)})
	ctx := timeout(t)
	a := e.enroll("node-1")
	s, _ := a.connect(t, ctx)
	if got := send(t, s, rec(t, 1, wire.KindAlert, mkAlert("before", "", "/bin/sh", time.Now()))); got != 1 {
		t.Fatalf("ack %d, want 1", got)
	}

	stop()
	var recs []wire.Record
	for i := 2; i <= 11; i++ {
		recs = append(recs, rec(t, uint64(i), wire.KindAlert, mkAlert(fmt.Sprintf("during-%d", i), "", "/bin/sh", time.Now())))
	}
	if err := s.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: recs}}); err != nil {
		t.Fatal(err)
	}
	acks := make(chan uint64, 1)
	go func() {
		m, err := s.Recv()
		if err == nil && m.Ack != nil {
			acks <- m.Ack.Seq
		}
		close(acks)
	}()
	select {
	case <-retrying.ch:
	case seq := <-acks:
		t.Fatalf("acked %d while the database was down", seq)
	case <-ctx.Done():
		t.Fatal("no retry logged")
	}
	start()
	select {
	case seq := <-acks:
		if seq != 11 {
			t.Fatalf("ack %d after the outage, want 11", seq)
		}
	case <-ctx.Done():
		t.Fatal("no ack after the database came back")
	}
	if n := len(mustAlerts(t, st, store.AlertFilter{})); n != 11 {
		t.Errorf("%d alerts stored, want 11", n)
	}
}

// TestForExport: an operator's response comes back from the agent as a
// confirmation the server already published; only the agent's own are
// published from the stream.
func TestForExport(t *testing.T) {
	b := &store.Batch{Responses: []store.Response{{ID: "auto", Actor: "agent"}, {ID: "op", Actor: "admin"}}}
	x := forExport(b)
	if len(x.Responses) != 1 || x.Responses[0].ID != "auto" {
		t.Errorf("exported responses %+v, want only the agent's", x.Responses)
	}
	if len(b.Responses) != 2 {
		t.Errorf("the stored batch lost a response: %+v", b.Responses)
	}
	if only := (&store.Batch{Responses: []store.Response{{ID: "auto", Actor: "agent"}}}); forExport(only) != only {
		t.Error("a batch with nothing to leave out was copied")
	}
}
