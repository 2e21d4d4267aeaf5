package hub

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// env is a hub served over real mutual TLS on 127.0.0.1 with a real store.
type env struct {
	t     testing.TB
	ca    *pki.CA
	st    store.Store
	hub   *Hub
	addr  string
	mu    sync.Mutex
	pubs  []*store.Batch
	pubCh chan *store.Batch
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	if o.Store == nil {
		st, err := store.Open(ctx, "sqlite:"+filepath.Join(dir, "vigil.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		o.Store = st
	}
	return newEnvStore(t, o)
}

func newEnvStore(t testing.TB, o Options) *env {
	t.Helper()
	ca, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ca: ca, st: o.Store, pubCh: make(chan *store.Batch, 1024)}
	o.CA = ca
	o.Publish = func(b *store.Batch) {
		e.mu.Lock()
		e.pubs = append(e.pubs, b)
		e.mu.Unlock()
		select {
		case e.pubCh <- b:
		default:
		}
	}
	e.hub = New(o)
	tlsConf, err := ca.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeListener(ctx, ln, e.hub, tlsConf) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return e
}

// token stores a new enrollment token valid for ttl.
func (e *env) token(ttl time.Duration) string {
	e.t.Helper()
	tok := fmt.Sprintf("tok-%d-%d", time.Now().UnixNano(), len(e.t.Name()))
	err := e.st.CreateEnrollToken(context.Background(), store.EnrollToken{
		Hash: TokenHash(tok), CreatedBy: "test", Created: time.Now(), Expires: time.Now().Add(ttl),
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) dial(conf *tls.Config) *grpc.ClientConn {
	e.t.Helper()
	cc, err := grpc.NewClient(e.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cc.Close() })
	return cc
}

// pinned is a client for enrollment.
func (e *env) pinned() *wire.AgentClient {
	return wire.NewAgentClient(e.dial(pki.PinnedTLS(e.ca.Fingerprint())))
}

// agent is an enrolled test agent.
type agent struct {
	id               string
	certPEM, keyPEM  []byte
	cc               *grpc.ClientConn
	client           *wire.AgentClient
	hostname         string
	enrolledResponse *wire.EnrollResponse
}

func (e *env) enroll(hostname string) *agent {
	e.t.Helper()
	keyPEM, csrPEM, err := pki.NewKeyCSR(hostname)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := e.pinned().Enroll(ctx, &wire.EnrollRequest{Token: e.token(time.Hour), Hostname: hostname, Version: "test", CSR: csrPEM})
	if err != nil {
		e.t.Fatalf("enroll %s: %v", hostname, err)
	}
	return e.agentWith(r.AgentID, hostname, r.Certificate, keyPEM, r)
}

func (e *env) agentWith(id, hostname string, certPEM, keyPEM []byte, r *wire.EnrollResponse) *agent {
	e.t.Helper()
	conf, err := pki.AgentTLS(certPEM, keyPEM, e.ca.CertPEM())
	if err != nil {
		e.t.Fatal(err)
	}
	cc := e.dial(conf)
	return &agent{id: id, certPEM: certPEM, keyPEM: keyPEM, cc: cc, client: wire.NewAgentClient(cc), hostname: hostname, enrolledResponse: r}
}

// connect opens a stream, says hello and returns it with the ack.
func (a *agent) connect(t testing.TB, ctx context.Context) (wire.AgentStream, uint64) {
	t.Helper()
	st, err := a.client.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Send(&wire.AgentMessage{Hello: &wire.Hello{Hostname: a.hostname, Version: "test"}}); err != nil {
		t.Fatal(err)
	}
	m, err := st.Recv()
	if err != nil {
		t.Fatalf("agent %s hello: %v", a.id, err)
	}
	if m.Ack == nil {
		t.Fatalf("reply to hello = %+v, want an ack", m)
	}
	return st, m.Ack.Seq
}

// recvAck reads messages until an ack.
func recvAck(t testing.TB, st wire.AgentStream) uint64 {
	t.Helper()
	for {
		m, err := st.Recv()
		if err != nil {
			t.Fatalf("waiting for an ack: %v", err)
		}
		if m.Ack != nil {
			return m.Ack.Seq
		}
	}
}

// mkAlert is an alert of rule on container (host-level when ""), by exe.
func mkAlert(rule, container, exe string, t time.Time, techniques ...string) *alert.Alert {
	w := &event.Workload{Host: "node-1"}
	if container != "" {
		w.ContainerID, w.ContainerName, w.Image = container, "name-"+container, "docker.io/library/nginx:1.25"
	}
	return &alert.Alert{
		Time: t, Type: "alert", Rule: rule, Priority: "Warning", Source: alert.SourceRules,
		Techniques: techniques, Output: rule + " fired", Count: 1,
		Event: &event.Event{
			Time: t, Type: event.ProcessExec,
			Process:  event.Process{PID: 42, Name: "sh", Exe: exe},
			Parent:   &event.Process{PID: 41, Exe: "/usr/bin/bash"},
			Workload: w,
		},
	}
}

func rec(t testing.TB, seq uint64, kind string, v any) wire.Record {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Record{Seq: seq, Kind: kind, Time: time.Now().UTC(), Data: b}
}

// send sends one batch and waits for its ack.
func send(t testing.TB, st wire.AgentStream, recs ...wire.Record) uint64 {
	t.Helper()
	if err := st.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: recs}}); err != nil {
		t.Fatal(err)
	}
	return recvAck(t, st)
}
