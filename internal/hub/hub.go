// Package hub is the server's end of the agent channel (wire's
// vigil.agent.v1.Agent service over mutual TLS).
//
// Enroll trades a one-time token (stored by its SHA-256) and a certificate
// request for a client certificate signed by the server's CA (internal/pki)
// whose subject CN is the new agent's ID (a UUIDv7). A replayed token is
// refused with PermissionDenied, an expired one with PermissionDenied
// saying "expired", an unknown one with Unauthenticated.
//
// Connect serves one agent's stream. The client certificate must chain to
// the CA, be valid now, name an enrolled agent that is not revoked, and
// carry the serial issued at enrollment; anything else is refused with
// Unauthenticated and logged. The first message must be Hello, answered
// with an Ack of the sequence already stored. Each Batch becomes ONE
// store.Batch (records at or below the stored sequence are dropped as
// resends), applied in one transaction with the agent's new sequence, then
// acked, then published (SIEM export). While the store fails, the batch is
// retried with back-off for as long as the stream lives and is not acked:
// nothing is dropped, the agent keeps it spooled. A record that cannot be
// converted (bad JSON, unknown kind) is logged with its sequence and kind
// and skipped, so one bad record cannot wedge an agent; a message that
// cannot be decoded, or one over wire.MaxMessageSize, ends that stream only.
//
// Alerts are deduplicated (same agent and alert.Key within DedupWindow of
// the row's first occurrence: a count on the stored row instead of a new
// one) and correlated into incidents (same agent and workload within
// IncidentWindow of the incident's last alert; techniques appended in
// order of first appearance). That state is kept per stream, in memory,
// and seeded from the store when the agent connects.
//
// Serve the channel with ServerOptions (or Serve/ServeListener): TLS that
// requests any client certificate and leaves its verification to the hub,
// so that a forged or expired one is refused with Unauthenticated and
// logged rather than failing the handshake unseen, plus the 4 MiB message
// bound and keepalives.
//
// Command pushes an operator's command down an agent's live stream and
// waits for its Result. hub holds no HTTP or access-control logic: callers
// (internal/server) decide who may command what.
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Defaults for Options' zero values.
const (
	DefaultDedupWindow    = 10 * time.Minute
	DefaultIncidentWindow = 30 * time.Minute
)

// ErrNotConnected is a command for an agent without a live stream.
var ErrNotConnected = errors.New("agent not connected")

// Options configure a Hub. Store and CA are required.
type Options struct {
	Store store.Store
	CA    *pki.CA
	// Publish receives every batch once stored (the SIEM export); it must
	// not block. Nil publishes nothing.
	Publish func(*store.Batch)
	Logger  *slog.Logger
	// CertTTL is an agent certificate's lifetime (default
	// pki.DefaultAgentValidity).
	CertTTL time.Duration
	// DedupWindow and IncidentWindow: see the package doc (defaults
	// DefaultDedupWindow and DefaultIncidentWindow).
	DedupWindow, IncidentWindow time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// RetryMin and RetryMax bound the back-off of a failing store write
	// (default 100ms and 5s).
	RetryMin, RetryMax time.Duration
}

// Hub serves the agent channel. It is safe for concurrent use.
type Hub struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	conns map[string]*conn // agent ID → its live stream
}

// New returns a Hub.
func New(o Options) *Hub {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CertTTL <= 0 {
		o.CertTTL = pki.DefaultAgentValidity
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = DefaultDedupWindow
	}
	if o.IncidentWindow <= 0 {
		o.IncidentWindow = DefaultIncidentWindow
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(5*time.Second, o.RetryMin)
	}
	if o.Publish == nil {
		o.Publish = func(*store.Batch) {}
	}
	return &Hub{opts: o, log: o.Logger, conns: make(map[string]*conn)}
}

// Register serves the Agent service on s. s should be made with
// ServerOptions (or at least wire.ServerOptions) so that oversized
// messages are refused at wire.MaxMessageSize.
func (h *Hub) Register(s grpc.ServiceRegistrar) { wire.RegisterAgentServer(s, server{h}) }

// ServerOptions are the gRPC server options for the agent channel over
// tlsConf (pki's CA.ServerTLS): TLS credentials that request a client
// certificate without verifying it in the handshake, so that the hub
// verifies it itself and a forged, expired or revoked certificate is
// logged and refused with Unauthenticated instead of a bare handshake
// failure; the message size bounds; and keepalives that notice a dead
// agent within a minute.
func ServerOptions(tlsConf *tls.Config) []grpc.ServerOption {
	c := tlsConf.Clone()
	c.ClientAuth = tls.RequestClientCert
	c.ClientCAs = nil // ask for any certificate: a foreign one is logged, not silently withheld
	return append(wire.ServerOptions(),
		grpc.Creds(credentials.NewTLS(c)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	)
}

// Serve listens on addr and serves the agent channel until ctx ends, then
// stops gracefully (at most 5 s).
func Serve(ctx context.Context, addr string, h *Hub, tlsConf *tls.Config) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("agent channel: listening on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h, tlsConf)
}

// ServeListener is Serve on a listener already open.
func ServeListener(ctx context.Context, ln net.Listener, h *Hub, tlsConf *tls.Config) error {
	s := grpc.NewServer(ServerOptions(tlsConf)...)
	h.Register(s)
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stopped:
			return
		}
		done := make(chan struct{})
		go func() { s.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			s.Stop()
		}
	}()
	err := s.Serve(ln)
	close(stopped)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Connected returns the IDs of the agents with a live stream, sorted.
func (h *Hub) Connected() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.conns))
	for id := range h.conns {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Disconnect ends agentID's live stream, if any (after a revocation: the
// agent's next Connect is refused). It reports whether there was one.
func (h *Hub) Disconnect(agentID string) bool {
	h.mu.Lock()
	cn := h.conns[agentID]
	h.mu.Unlock()
	if cn == nil {
		return false
	}
	cn.log.Info("agent stream ended by the server")
	cn.cancel()
	return true
}

// Command pushes c to agentID's live stream and waits for its Result, or
// for ctx to end. c.ID is filled in when empty. It fails with
// ErrNotConnected when the agent has no stream, and when the stream ends
// before the answer.
func (h *Hub) Command(ctx context.Context, agentID string, c wire.Command) (wire.CommandResult, error) {
	h.mu.Lock()
	cn := h.conns[agentID]
	h.mu.Unlock()
	if cn == nil {
		return wire.CommandResult{}, fmt.Errorf("command %s to agent %s: %w", c.Kind, agentID, ErrNotConnected)
	}
	if c.ID == "" {
		c.ID = newID()
	}
	return cn.command(ctx, c)
}

// server adapts Hub to wire.AgentServer without exporting the methods on
// Hub itself.
type server struct{ h *Hub }

func (s server) Enroll(ctx context.Context, r *wire.EnrollRequest) (*wire.EnrollResponse, error) {
	return s.h.enroll(ctx, r)
}

func (s server) Connect(st grpc.BidiStreamingServer[wire.AgentMessage, wire.ServerMessage]) error {
	return s.h.connect(st)
}
