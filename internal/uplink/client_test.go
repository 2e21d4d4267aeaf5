package uplink_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/hub"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// testServer is the real server side of the channel: a SQLite store, the
// CA and the hub behind gRPC over mutual TLS on 127.0.0.1.
type testServer struct {
	t    testing.TB
	dir  string
	addr string
	ca   *pki.CA
	st   store.Store
	hub  *hub.Hub
	gs   *grpc.Server
	done chan error
}

func quietLogger() *slog.Logger {
	if os.Getenv("VIGIL_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

// startServer serves dir's store and CA on addr ("127.0.0.1:0" picks a
// port).
func startServer(t testing.TB, dir, addr string) *testServer {
	t.Helper()
	s, err := serve(dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	s.t = t
	t.Cleanup(s.stop)
	return s
}

func serve(dir, addr string) (*testServer, error) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "vigil.db"))
	if err != nil {
		return nil, err
	}
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki"))
	if err != nil {
		st.Close()
		return nil, err
	}
	tlsConf, err := ca.ServerTLS(nil)
	if err != nil {
		st.Close()
		return nil, err
	}
	var ln net.Listener
	for deadline := time.Now().Add(10 * time.Second); ; {
		ln, err = net.Listen("tcp", addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond) // the port of a killed server: retried until free
	}
	if err != nil {
		st.Close()
		return nil, err
	}
	h := hub.New(hub.Options{Store: st, CA: ca, Logger: quietLogger(), RetryMin: 10 * time.Millisecond})
	gs := grpc.NewServer(hub.ServerOptions(tlsConf)...)
	h.Register(gs)
	s := &testServer{dir: dir, addr: ln.Addr().String(), ca: ca, st: st, hub: h, gs: gs, done: make(chan error, 1)}
	go func() { s.done <- gs.Serve(ln) }()
	return s, nil
}

func (s *testServer) stop() {
	if s.gs == nil {
		return
	}
	s.gs.Stop()
	<-s.done
	s.st.Close()
	s.gs = nil
}

func (s *testServer) token(t testing.TB) string {
	t.Helper()
	tok := fmt.Sprintf("tok-%d", time.Now().UnixNano())
	if err := createToken(s.st, tok); err != nil {
		t.Fatal(err)
	}
	return tok
}

func createToken(st store.Store, tok string) error {
	return st.CreateEnrollToken(context.Background(), store.EnrollToken{
		Hash: hub.TokenHash(tok), CreatedBy: "test", Created: time.Now(), Expires: time.Now().Add(time.Hour),
	})
}

type client struct {
	*uplink.Client
	cancel context.CancelFunc
	done   chan error
}

// runClient starts a client; it is stopped and closed at cleanup.
func runClient(t testing.TB, o uplink.Options) *client {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.Hostname == "" {
		o.Hostname = "test-host"
	}
	o.MaxBackoff = min(o.MaxBackoff, time.Second)
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Second
	}
	o.MinBackoff = 20 * time.Millisecond
	c, err := uplink.New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cl := &client{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { cl.done <- c.Run(ctx) }()
	t.Cleanup(func() { cl.stop(); c.Close() })
	return cl
}

func (c *client) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	<-c.done
	c.cancel = nil
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// delivered says every spooled record is acked.
func delivered(c *uplink.Client) bool {
	s := c.Spool().Stats()
	return s.Queued == 0 && s.Acked+1 >= s.Next && s.Records == 0
}

func TestEnrollAndConnect(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	tok := srv.token(t)
	state := t.TempDir()
	c := runClient(t, uplink.Options{Server: srv.addr, StateDir: state, EnrollToken: tok, CAFingerprint: srv.ca.Fingerprint(), Version: "test"})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	id := c.AgentID()
	if got := srv.hub.Connected(); len(got) != 1 || got[0] != id {
		t.Fatalf("hub sees %v connected, want [%s]", got, id)
	}
	a, err := srv.st.Agent(context.Background(), id)
	if err != nil || a.Hostname != "test-host" || a.Version != "test" {
		t.Fatalf("stored agent %+v, %v", a, err)
	}
	for _, f := range []string{uplink.KeyFile, uplink.CertFile, uplink.CAFileName, uplink.AgentIDFile} {
		fi, err := os.Stat(filepath.Join(state, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	c.stop()
	c.Close()

	// The same token a second time, from another agent: refused, and Run
	// gives up instead of retrying forever.
	o2 := uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: tok, CAFingerprint: srv.ca.Fingerprint(),
		Hostname: "other", Logger: quietLogger()}
	c2, err := uplink.New(o2)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = c2.Run(ctx)
	if status.Code(err) != codes.PermissionDenied && !strings.Contains(err.Error(), "already used") {
		t.Errorf("second enrollment with the token: %v, want PermissionDenied", err)
	}

	// Restarted without a token, the first agent reuses its identity.
	c3 := runClient(t, uplink.Options{Server: srv.addr, StateDir: state})
	waitFor(t, "the reconnection", 20*time.Second, func() bool { return c3.Connected() })
	if c3.AgentID() != id {
		t.Errorf("after a restart the agent is %s, was %s", c3.AgentID(), id)
	}

	// A wrong fingerprint is refused at enrollment.
	tok2 := srv.token(t)
	var logBuf syncBuffer
	c4, err := uplink.New(uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: tok2, Hostname: "x",
		CAFingerprint: strings.Repeat("AB:", 31) + "AB", MaxBackoff: 50 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer c4.Close()
	ctx4, cancel4 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel4()
	if err := c4.Run(ctx4); !errors.Is(err, context.DeadlineExceeded) || c4.AgentID() != "" {
		t.Errorf("enrolling with a server of another CA: %v, agent %q", err, c4.AgentID())
	}
	if !strings.Contains(logBuf.String(), "no CA with fingerprint") {
		t.Errorf("the log does not say the fingerprint did not match:\n%s", logBuf.String())
	}
}

func TestNewRefusesBadSetup(t *testing.T) {
	for name, o := range map[string]uplink.Options{
		"no token":           {Server: "127.0.0.1:1", StateDir: t.TempDir(), Hostname: "h"},
		"no ca":              {Server: "127.0.0.1:1", StateDir: t.TempDir(), Hostname: "h", EnrollToken: "t"},
		"bad fingerprint":    {Server: "127.0.0.1:1", StateDir: t.TempDir(), Hostname: "h", EnrollToken: "t", CAFingerprint: "zz"},
		"no server":          {StateDir: t.TempDir(), Hostname: "h", EnrollToken: "t", CAFingerprint: "zz"},
		"no state directory": {Server: "127.0.0.1:1", Hostname: "h", EnrollToken: "t", CAFingerprint: "zz"},
	} {
		if c, err := uplink.New(o); err == nil {
			c.Close()
			t.Errorf("%s: New did not fail", name)
		}
	}
	// A half-written identity (agent-id without the key) is an error
	// naming what is missing, not a silent re-enrollment.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, uplink.AgentIDFile), []byte("x\n"), 0o600)
	if _, err := uplink.New(uplink.Options{Server: "127.0.0.1:1", StateDir: dir, Hostname: "h"}); err == nil || !strings.Contains(err.Error(), uplink.KeyFile) {
		t.Errorf("half identity: %v", err)
	}
	// With a token it enrolls again instead.
	c, err := uplink.New(uplink.Options{Server: "127.0.0.1:1", StateDir: dir, Hostname: "h", EnrollToken: "t", CAFingerprint: strings.Repeat("AB", 32)})
	if err != nil {
		t.Fatalf("half identity with a token: %v", err)
	}
	if c.AgentID() != "" {
		t.Errorf("half identity taken as agent %q", c.AgentID())
	}
	c.Close()
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testAlert(i int) *alert.Alert {
	return &alert.Alert{Time: time.Unix(1_700_000_000, 0).Add(time.Duration(i) * time.Millisecond), Type: "alert",
		Rule: fmt.Sprintf("rule %05d", i), Priority: "WARNING", Source: alert.SourceRules, Count: 1,
		Output: fmt.Sprintf("alert number %d", i)}
}

// storedRules returns the rules of every stored alert, oldest first.
func storedRules(t testing.TB, st store.Store) []string {
	t.Helper()
	var out []string
	before := ""
	for {
		as, err := st.Alerts(context.Background(), store.AlertFilter{Limit: 1000, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		if len(as) == 0 {
			break
		}
		for _, a := range as {
			out = append(out, a.Rule)
		}
		before = as[len(as)-1].ID
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func checkExactlyOnce(t *testing.T, rules []string, n int) {
	t.Helper()
	if len(rules) != n {
		t.Errorf("%d alerts stored, want %d", len(rules), n)
	}
	for i := range min(len(rules), n) {
		if want := fmt.Sprintf("rule %05d", i); rules[i] != want {
			t.Fatalf("stored alert %d is %q, want %q (lost, duplicated or out of order)", i, rules[i], want)
		}
	}
}

// TestDeliveryAcrossServerRestart stops the server (grpc Stop: streams cut)
// in the middle of a stream of 2000 alerts and restarts it on the same port
// with the same store: every alert is stored once, in order.
func TestDeliveryAcrossServerRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	addr := srv.addr
	c := runClient(t, uplink.Options{Server: addr, StateDir: t.TempDir(), EnrollToken: srv.token(t),
		CAFingerprint: srv.ca.Fingerprint(), BatchRecords: 50})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	const n = 2000
	for i := range n {
		if err := c.Send(wire.KindAlert, testAlert(i)); err != nil {
			t.Fatal(err)
		}
		if i == 700 {
			waitFor(t, "some alerts acked", 20*time.Second, func() bool { return c.Spool().Stats().Acked > 100 })
			st := c.Spool().Stats()
			srv.stop()
			t.Logf("stopped the server at send %d: acked %d, committed up to %d", i, st.Acked, st.Next-1)
		}
		if i == 1400 {
			srv = startServer(t, dir, addr)
		}
	}
	waitFor(t, "every alert acked", 60*time.Second, func() bool { return delivered(c.Client) })
	checkExactlyOnce(t, storedRules(t, srv.st), n)
	if d := c.Spool().Stats().Dropped; d != 0 {
		t.Errorf("%d records dropped", d)
	}
}

// TestDeliveryAcrossServerKill runs the server in a child process and
// SIGKILLs it twice in the middle of a stream of alerts: every alert
// arrives exactly once.
func TestDeliveryAcrossServerKill(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	dir := t.TempDir()
	tok := "kill-test-token"
	start := func(addr string) (*exec.Cmd, string) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestServerChild$")
		cmd.Env = append(os.Environ(), "VIGIL_UPLINK_SERVER="+dir+","+addr+","+tok)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				go io.Copy(io.Discard, out)
				return cmd, a
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("the server child did not start")
		return nil, ""
	}
	child, addr := start("127.0.0.1:0")
	t.Cleanup(func() { child.Process.Kill(); child.Wait() })
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki"))
	if err != nil {
		t.Fatal(err)
	}
	c := runClient(t, uplink.Options{Server: addr, StateDir: t.TempDir(), EnrollToken: tok,
		CAFingerprint: ca.Fingerprint(), BatchRecords: 50})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	const n = 3000
	for i := range n {
		if err := c.Send(wire.KindAlert, testAlert(i)); err != nil {
			t.Fatal(err)
		}
		if i == 800 || i == 2000 {
			acked := c.Spool().Stats().Acked
			waitFor(t, "more alerts acked", 20*time.Second, func() bool { return c.Spool().Stats().Acked > acked+100 })
			st := c.Spool().Stats()
			child.Process.Signal(syscall.SIGKILL)
			child.Wait()
			t.Logf("killed the server at send %d: acked %d, committed up to %d", i, st.Acked, st.Next-1)
			child, _ = start(addr)
		}
	}
	waitFor(t, "every alert acked", 60*time.Second, func() bool { return delivered(c.Client) })
	child.Process.Signal(syscall.SIGTERM)
	child.Wait()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkExactlyOnce(t, storedRules(t, st), n)
}

// TestServerChild is the server of TestDeliveryAcrossServerKill when
// VIGIL_UPLINK_SERVER (dir,addr,token) is set.
func TestServerChild(t *testing.T) {
	env := os.Getenv("VIGIL_UPLINK_SERVER")
	if env == "" {
		t.Skip("the server half of TestDeliveryAcrossServerKill")
	}
	parts := strings.SplitN(env, ",", 3)
	s, err := serve(parts[0], parts[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if err := createToken(s.st, parts[2]); err != nil && !errors.Is(err, store.ErrExists) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println("listening " + s.addr)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	<-sig
	s.stop()
	os.Exit(0)
}

// TestSpoolFullWhileServerDown sends more than the spool holds while the
// server is away: the oldest are dropped and counted, the newest arrive
// once, in order.
func TestSpoolFullWhileServerDown(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	addr := srv.addr
	c := runClient(t, uplink.Options{Server: addr, StateDir: t.TempDir(), EnrollToken: srv.token(t),
		CAFingerprint: srv.ca.Fingerprint(), SpoolMax: 100_000})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	srv.stop()
	const n = 2000
	for i := range n {
		if err := c.Send(wire.KindAlert, testAlert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Spool().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := c.Spool().Stats()
	if st.Dropped == 0 || st.Bytes > 100_000 {
		t.Fatalf("spool %+v: nothing dropped, or over its bound", st)
	}
	srv = startServer(t, dir, addr)
	waitFor(t, "the kept alerts acked", 60*time.Second, func() bool { return delivered(c.Client) })
	rules := storedRules(t, srv.st)
	if uint64(len(rules)) != n-st.Dropped {
		t.Fatalf("%d alerts stored; %d sent, %d dropped", len(rules), n, st.Dropped)
	}
	for i, r := range rules {
		if want := fmt.Sprintf("rule %05d", int(st.Dropped)+i); r != want {
			t.Fatalf("stored alert %d is %q, want %q", i, r, want)
		}
	}
}

// Heartbeats keep the agent's last-seen time moving while it has nothing
// to send.
func TestHeartbeat(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := runClient(t, uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: srv.token(t),
		CAFingerprint: srv.ca.Fingerprint(), Heartbeat: 20 * time.Millisecond})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	a, err := srv.st.Agent(context.Background(), c.AgentID())
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a heartbeat", 20*time.Second, func() bool {
		b, err := srv.st.Agent(context.Background(), c.AgentID())
		return err == nil && b.LastSeen.After(a.LastSeen)
	})
}

// An agent enrolled with one server, started with a token and the CA of
// another (make up with a fresh state directory), enrolls with the new one.
func TestEnrollAgainWithAnotherServer(t *testing.T) {
	state := t.TempDir()
	a := startServer(t, t.TempDir(), "127.0.0.1:0")
	c := runClient(t, uplink.Options{Server: a.addr, StateDir: state, EnrollToken: a.token(t), CAFingerprint: a.ca.Fingerprint()})
	waitFor(t, "the connection to the first server", 20*time.Second, func() bool { return c.Connected() })
	first := c.AgentID()
	c.stop()
	c.Close()
	a.stop()

	b := startServer(t, t.TempDir(), "127.0.0.1:0")
	c = runClient(t, uplink.Options{Server: b.addr, StateDir: state, EnrollToken: b.token(t), CAFingerprint: b.ca.Fingerprint()})
	waitFor(t, "the connection to the second server", 20*time.Second, func() bool { return c.Connected() })
	if c.AgentID() == first || len(b.hub.Connected()) != 1 || b.hub.Connected()[0] != c.AgentID() {
		t.Errorf("agent %s (was %s), second server sees %v", c.AgentID(), first, b.hub.Connected())
	}
}

// A server whose store was reset (same CA) refuses the agent's
// certificate; given its token again, the agent enrolls anew and delivers.
func TestEnrollAgainAfterStoreReset(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, "127.0.0.1:0")
	addr := srv.addr
	tok := srv.token(t)
	c := runClient(t, uplink.Options{Server: addr, StateDir: t.TempDir(), EnrollToken: tok, CAFingerprint: srv.ca.Fingerprint()})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })
	first := c.AgentID()
	srv.stop()
	for _, f := range []string{"vigil.db", "vigil.db-wal", "vigil.db-shm"} {
		os.Remove(filepath.Join(dir, f))
	}
	srv = startServer(t, dir, addr)
	if err := createToken(srv.st, tok); err != nil { // the operator makes the token again
		t.Fatal(err)
	}
	for i := range 10 {
		c.Send(wire.KindAlert, testAlert(i))
	}
	waitFor(t, "the alerts delivered after enrolling again", 30*time.Second, func() bool { return delivered(c.Client) })
	if c.AgentID() == first {
		t.Error("the agent kept its old ID")
	}
	checkExactlyOnce(t, storedRules(t, srv.st), 10)
}

// The server can be trusted at enrollment by its CA file instead of the
// fingerprint; a CA file that is not a certificate stops Run with an error
// naming it.
func TestEnrollWithCAFile(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	os.WriteFile(caFile, srv.ca.CertPEM(), 0o600)
	c := runClient(t, uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: srv.token(t), CAFile: caFile})
	waitFor(t, "the connection", 20*time.Second, func() bool { return c.Connected() })

	bad := filepath.Join(t.TempDir(), "bad.crt")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	c2, err := uplink.New(uplink.Options{Server: srv.addr, StateDir: t.TempDir(), EnrollToken: srv.token(t), CAFile: bad, Hostname: "h", Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c2.Run(ctx); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Run with a bad CA file: %v", err)
	}
}

// An agent whose spool was deleted starts its sequence again at 1 while the
// server holds more: the records are renumbered after the server's, not
// taken for ones it has.
func TestSpoolLostServerAhead(t *testing.T) {
	srv := startServer(t, t.TempDir(), "127.0.0.1:0")
	state := t.TempDir()
	o := uplink.Options{Server: srv.addr, StateDir: state, EnrollToken: srv.token(t), CAFingerprint: srv.ca.Fingerprint()}
	c := runClient(t, o)
	for i := range 10 {
		c.Send(wire.KindAlert, testAlert(i))
	}
	waitFor(t, "the first alerts delivered", 20*time.Second, func() bool { return delivered(c.Client) && c.Spool().Stats().Next == 11 })
	c.stop()
	c.Close()
	if err := os.Remove(filepath.Join(state, uplink.SpoolFile)); err != nil {
		t.Fatal(err)
	}
	c = runClient(t, o)
	for i := 10; i < 15; i++ {
		c.Send(wire.KindAlert, testAlert(i))
	}
	waitFor(t, "the later alerts delivered", 20*time.Second, func() bool { return delivered(c.Client) && c.Spool().Stats().Next == 16 })
	checkExactlyOnce(t, storedRules(t, srv.st), 15)
}

// An agent started before its server enrolls once the server is up.
func TestEnrollWhenTheServerComesUp(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ca, err := pki.LoadOrCreate(filepath.Join(dir, "pki")) // the server's CA, made ahead
	if err != nil {
		t.Fatal(err)
	}
	tok := "early-agent-token"
	var logBuf syncBuffer
	c := runClient(t, uplink.Options{Server: addr, StateDir: t.TempDir(), EnrollToken: tok, CAFingerprint: ca.Fingerprint(),
		Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	c.Send(wire.KindAlert, testAlert(0))
	waitFor(t, "a failed enrollment attempt", 20*time.Second, func() bool { return strings.Contains(logBuf.String(), "enrollment failed, retrying") })
	// The token is in the store before the server listens.
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := createToken(st, tok); err != nil {
		t.Fatal(err)
	}
	st.Close()
	srv := startServer(t, dir, addr)
	waitFor(t, "the alert delivered", 30*time.Second, func() bool { return delivered(c.Client) })
	checkExactlyOnce(t, storedRules(t, srv.st), 1)
}

// A damaged spool file is set aside and an empty spool started: the agent
// keeps reporting.
func TestDamagedSpoolSetAside(t *testing.T) {
	state := t.TempDir()
	junk := []byte(strings.Repeat("this is not a bbolt file ", 400))
	os.WriteFile(filepath.Join(state, uplink.SpoolFile), junk, 0o600)
	c, err := uplink.New(uplink.Options{Server: "127.0.0.1:1", StateDir: state, Hostname: "h", EnrollToken: "t",
		CAFingerprint: strings.Repeat("AB", 32), Logger: quietLogger()})
	if err != nil {
		t.Fatalf("New with a damaged spool: %v", err)
	}
	defer c.Close()
	if err := c.Send(wire.KindAlert, testAlert(1)); err != nil {
		t.Fatal(err)
	}
	if err := c.Spool().Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := c.Spool().Stats(); st.Records != 1 {
		t.Errorf("the new spool holds %d records", st.Records)
	}
	aside, _ := filepath.Glob(filepath.Join(state, uplink.SpoolFile+".damaged-*"))
	if len(aside) != 1 {
		t.Fatalf("set aside: %v", aside)
	}
	if b, _ := os.ReadFile(aside[0]); string(b) != string(junk) {
		t.Error("the damaged file was not kept as it was")
	}
}
