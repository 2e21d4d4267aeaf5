// Package uplink is the agent's side of the channel to the server: a
// bounded on-disk spool of records with sequence numbers (alerts, response
// records, inventory, profiles) that survives restarts and server outages,
// enrollment with a one-time token, and a client that streams the spool
// over mutual TLS, resends from the last ack after a reconnect (once, in
// order) and runs the server's commands. It never blocks the agent: a full
// spool drops its oldest records and counts them. It never imports server
// or store code.
package uplink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Handler runs the server's commands. Handle is called on its own
// goroutine per command; the Result's ID is filled in by the client.
type Handler interface {
	Handle(ctx context.Context, c wire.Command) wire.CommandResult
}

// Options configure a Client. Server, StateDir and Hostname are required.
type Options struct {
	// Server is the agent channel's address, host:port.
	Server string
	// StateDir holds the identity (agent.key, agent.crt, ca.crt,
	// agent-id, all 0600) and the spool (spool.db).
	StateDir string
	// EnrollToken is the one-time token for the first start; once
	// enrolled it is not needed (and ignored).
	EnrollToken string
	// CAFingerprint (SHA-256, "AB:CD:…" as the server prints it) or
	// CAFile (the server's ca.crt) is how the server is trusted at
	// enrollment; afterwards the CA it sent is.
	CAFingerprint string
	CAFile        string
	Hostname      string
	Version       string
	// SpoolMax bounds the spool in bytes (default 256 MiB).
	SpoolMax int64
	// Spool tunes the spool further (MaxBytes is SpoolMax).
	Spool   SpoolOptions
	Handler Handler
	Logger  *slog.Logger
	// Events, when set, is reported in heartbeats (events seen, ever).
	Events func() uint64

	// BatchRecords and BatchBytes bound one batch (default 500 records,
	// 1 MiB); Window is how many batches may wait for their ack (4).
	BatchRecords, BatchBytes, Window int
	// Heartbeat is the heartbeat period (10 s); MinBackoff and MaxBackoff
	// bound the reconnection delay (500 ms, 30 s), doubled per failure
	// with jitter.
	Heartbeat, MinBackoff, MaxBackoff time.Duration
}

// Identity files under StateDir.
const (
	KeyFile     = "agent.key"
	CertFile    = "agent.crt"
	CAFileName  = "ca.crt"
	AgentIDFile = "agent-id"
	SpoolFile   = "spool.db"
)

// maxCommands bounds the server's commands running at once; more are
// answered "busy".
const maxCommands = 16

// ErrNotEnrolled is a client with neither an identity in StateDir nor an
// enrollment token.
var ErrNotEnrolled = errors.New("not enrolled with the server: an enrollment token is needed once")

// Client is the agent's uplink: the spool and the stream that empties it.
type Client struct {
	o     Options
	log   *slog.Logger
	spool *Spool

	mu      sync.Mutex
	agentID string
	tls     *clientTLS

	connected atomic.Bool
	acked     atomic.Uint64
	busy      chan struct{} // one per command running (at most maxCommands)
	events    atomic.Pointer[func() uint64]
}

// SetEventCount sets how heartbeats learn the events the agent saw
// (instead of Options.Events).
func (c *Client) SetEventCount(f func() uint64) { c.events.Store(&f) }

type clientTLS struct{ cert, key, ca []byte }

// New opens the spool and reads the identity, if any. It does no network
// I/O: Run enrolls and connects.
func New(o Options) (*Client, error) {
	if o.Server == "" {
		return nil, errors.New("uplink: no server address")
	}
	if o.StateDir == "" {
		return nil, errors.New("uplink: no state directory")
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("uplink: hostname: %w", err)
		}
		o.Hostname = h
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BatchRecords <= 0 {
		o.BatchRecords = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 1 << 20
	}
	if o.Window <= 0 {
		o.Window = 4
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 10 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("uplink: state directory: %w", err)
	}
	c := &Client{o: o, log: o.Logger.With("server", o.Server), busy: make(chan struct{}, maxCommands)}
	id, t, err := loadIdentity(o.StateDir)
	switch {
	case err == nil && o.EnrollToken != "" && otherCA(t.ca, o):
		// A token and a server CA that is not the one enrolled with: a
		// new server (make up with a fresh state): enroll with it.
		c.log.Warn("uplink: the identity in the state directory is for another server's CA; enrolling again with the token",
			"agent", id)
	case err == nil:
		c.agentID, c.tls = id, t
	case !errors.Is(err, os.ErrNotExist) && o.EnrollToken != "" && (o.CAFingerprint != "" || o.CAFile != ""):
		c.log.Warn("uplink: the identity in the state directory is damaged; enrolling again with the token", "err", err)
	case errors.Is(err, os.ErrNotExist):
		if o.EnrollToken == "" {
			return nil, fmt.Errorf("uplink: %s: %w", o.StateDir, ErrNotEnrolled)
		}
		if o.CAFingerprint == "" && o.CAFile == "" {
			return nil, errors.New("uplink: enrolling needs the server's CA fingerprint or CA file")
		}
		if o.CAFingerprint != "" {
			if _, err := pki.ParseFingerprint(o.CAFingerprint); err != nil {
				return nil, fmt.Errorf("uplink: %w", err)
			}
		}
	default:
		return nil, fmt.Errorf("uplink: %w", err)
	}
	so := o.Spool
	so.Logger = o.Logger
	if o.SpoolMax > 0 {
		so.MaxBytes = o.SpoolMax
	}
	path := filepath.Join(o.StateDir, SpoolFile)
	sp, err := OpenSpool(path, so)
	if err != nil && !errors.Is(err, bolt.ErrTimeout) && !errors.Is(err, fs.ErrPermission) {
		// A damaged spool is set aside, not a reason to stop the agent:
		// its records are lost, the sequence recovers against the
		// server's (Spool.SkipTo).
		aside := fmt.Sprintf("%s.damaged-%d", path, time.Now().Unix())
		if rerr := os.Rename(path, aside); rerr == nil {
			c.log.Error("uplink: the spool cannot be opened; set aside, starting an empty one", "err", err, "moved_to", aside)
			sp, err = OpenSpool(path, so)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	c.spool = sp
	return c, nil
}

// loadIdentity reads the identity files; os.ErrNotExist when the agent
// never enrolled (no agent-id).
func loadIdentity(dir string) (string, *clientTLS, error) {
	id, err := os.ReadFile(filepath.Join(dir, AgentIDFile))
	if err != nil {
		return "", nil, err
	}
	var t clientTLS
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{KeyFile, &t.key}, {CertFile, &t.cert}, {CAFileName, &t.ca}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			return "", nil, fmt.Errorf("%s exists but the identity is incomplete: %v", AgentIDFile, err)
		}
		*f.dst = b
	}
	if _, err := pki.AgentTLS(t.cert, t.key, t.ca); err != nil {
		return "", nil, fmt.Errorf("identity in %s: %w", dir, err)
	}
	return strings.TrimSpace(string(id)), &t, nil
}

// Send spools v (marshalled to JSON; a json.RawMessage or []byte is taken
// as JSON already) as a record of kind. It never waits for the network.
func (c *Client) Send(kind string, v any) error {
	if raw, ok := v.(json.RawMessage); ok {
		v = []byte(raw)
	}
	if b, ok := v.([]byte); ok {
		// Compacted and HTML-escaped as json.Marshal would, so the batch
		// that carries it is no larger than the spool record.
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			return fmt.Errorf("spooling a %s: %w", kind, err)
		}
		var esc bytes.Buffer
		json.HTMLEscape(&esc, buf.Bytes())
		v = esc.Bytes()
	}
	return c.spool.Send(kind, v)
}

// Spool is the client's spool.
func (c *Client) Spool() *Spool { return c.spool }

// AgentID is the ID the server gave at enrollment ("" before).
func (c *Client) AgentID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.agentID
}

// Connected says whether a stream is up (the server answered its hello).
func (c *Client) Connected() bool { return c.connected.Load() }

// Close closes the spool, committing what is queued. Call it after Run
// returned.
func (c *Client) Close() error { return c.spool.Close() }

// Run enrolls if needed, then keeps a stream to the server until ctx is
// done: it resends from the last ack, sends new records as they are
// committed, heartbeats and runs commands, and reconnects with back-off
// after any error. It returns ctx's error, or an enrollment refusal (a
// used, expired or unknown token) that retrying cannot cure.
func (c *Client) Run(ctx context.Context) error {
	bo := c.o.MinBackoff
	wait := func() error {
		d := bo/2 + rand.N(bo/2+1)
		bo = min(bo*2, c.o.MaxBackoff)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for c.tlsIdentity() == nil {
		err := c.enroll(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if permanent(err) {
			return err
		}
		c.log.Warn("uplink: enrollment failed, retrying", "err", err)
		if err := wait(); err != nil {
			return err
		}
	}
	cc, err := c.dial()
	if err != nil {
		return err
	}
	defer func() { cc.Close() }()
	api := wire.NewAgentClient(cc)
	bo = c.o.MinBackoff
	reenrolled := false
	for {
		up, err := c.session(ctx, api)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if up {
			bo = c.o.MinBackoff
		}
		if status.Code(err) == codes.Unauthenticated && c.o.EnrollToken != "" && !reenrolled {
			// The server does not know this certificate (its store was
			// reset): the token, given again, enrolls anew, once.
			reenrolled = true
			c.log.Warn("uplink: the server refused this agent's certificate; enrolling again with the token", "err", err)
			if err := c.enroll(ctx); err != nil {
				if permanent(err) || ctx.Err() != nil {
					return err
				}
				reenrolled = false // the server was away: try again
				c.log.Warn("uplink: enrollment failed, retrying", "err", err)
				if err := wait(); err != nil {
					return err
				}
				continue
			}
			cc.Close()
			if cc, err = c.dial(); err != nil {
				return err
			}
			api = wire.NewAgentClient(cc)
			continue
		}
		c.log.Warn("uplink: stream ended, reconnecting", "err", err)
		if err := wait(); err != nil {
			return err
		}
	}
}

// otherCA says the enrollment options name a CA other than caPEM (the one
// the identity was issued under).
func otherCA(caPEM []byte, o Options) bool {
	blk, _ := pem.Decode(caPEM)
	if blk == nil {
		return false
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return false
	}
	have := sha256.Sum256(cert.Raw)
	var want []byte
	switch {
	case o.CAFingerprint != "":
		want, _ = pki.ParseFingerprint(o.CAFingerprint)
	case o.CAFile != "":
		b, err := os.ReadFile(o.CAFile)
		if err != nil {
			return false
		}
		if blk, _ := pem.Decode(b); blk != nil {
			if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
				sum := sha256.Sum256(c.Raw)
				want = sum[:]
			}
		}
	}
	return want != nil && !bytes.Equal(want, have[:])
}

// permanent says an enrollment error will not go away by retrying.
func permanent(err error) bool {
	switch status.Code(err) {
	case codes.PermissionDenied, codes.Unauthenticated, codes.InvalidArgument:
		return true
	}
	var pe *permanentError
	return errors.As(err, &pe)
}

type permanentError struct{ error }

func (e *permanentError) Unwrap() error { return e.error }

func (c *Client) tlsIdentity() *clientTLS {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tls
}

// enrollFingerprint is the CA the server is trusted by at enrollment: the
// fingerprint given, the CA file's, or (enrolling again) the CA of the
// identity held.
func (c *Client) enrollFingerprint() (string, error) {
	if c.o.CAFingerprint != "" {
		return c.o.CAFingerprint, nil
	}
	if t := c.tlsIdentity(); c.o.CAFile == "" && t != nil {
		if blk, _ := pem.Decode(t.ca); blk != nil {
			if cert, err := x509.ParseCertificate(blk.Bytes); err == nil {
				return pki.Fingerprint(cert), nil
			}
		}
	}
	b, err := os.ReadFile(c.o.CAFile)
	if err != nil {
		return "", &permanentError{fmt.Errorf("uplink: CA file: %w", err)}
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return "", &permanentError{fmt.Errorf("uplink: CA file %s: no PEM certificate", c.o.CAFile)}
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return "", &permanentError{fmt.Errorf("uplink: CA file %s: %w", c.o.CAFile, err)}
	}
	return pki.Fingerprint(cert), nil
}

// enroll trades the token and a new key's CSR for a certificate, and
// writes the identity to StateDir.
func (c *Client) enroll(ctx context.Context) error {
	fp, err := c.enrollFingerprint()
	if err != nil {
		return err
	}
	keyPEM, csrPEM, err := pki.NewKeyCSR(c.o.Hostname)
	if err != nil {
		return &permanentError{err}
	}
	cc, err := grpc.NewClient(c.o.Server, grpc.WithTransportCredentials(credentials.NewTLS(pki.PinnedTLS(fp))))
	if err != nil {
		return &permanentError{fmt.Errorf("uplink: server address %q: %w", c.o.Server, err)}
	}
	defer cc.Close()
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := wire.NewAgentClient(cc).Enroll(ectx, &wire.EnrollRequest{
		Token: c.o.EnrollToken, Hostname: c.o.Hostname, Version: c.o.Version, CSR: csrPEM,
	})
	if err != nil {
		return fmt.Errorf("uplink: enrolling with %s: %w", c.o.Server, err)
	}
	if resp.AgentID == "" || strings.ContainsAny(resp.AgentID, "/\n\x00") {
		return &permanentError{fmt.Errorf("uplink: enrolling with %s: bad agent ID %q", c.o.Server, resp.AgentID)}
	}
	if _, err := pki.AgentTLS(resp.Certificate, keyPEM, resp.CA); err != nil {
		return &permanentError{fmt.Errorf("uplink: enrolling with %s: the certificate sent back: %w", c.o.Server, err)}
	}
	// agent-id last: it marks the identity complete.
	for _, f := range []struct {
		name string
		b    []byte
	}{{KeyFile, keyPEM}, {CertFile, resp.Certificate}, {CAFileName, resp.CA}, {AgentIDFile, []byte(resp.AgentID + "\n")}} {
		if err := writeFileAtomic(filepath.Join(c.o.StateDir, f.name), f.b); err != nil {
			return &permanentError{fmt.Errorf("uplink: saving the identity: %w", err)}
		}
	}
	c.mu.Lock()
	c.agentID, c.tls = resp.AgentID, &clientTLS{cert: resp.Certificate, key: keyPEM, ca: resp.CA}
	c.mu.Unlock()
	c.log.Info("uplink: enrolled", "agent", resp.AgentID)
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// dial makes the mTLS connection the streams run on. gRPC reconnects it
// underneath with the same bounds as the stream back-off.
func (c *Client) dial() (*grpc.ClientConn, error) {
	t := c.tlsIdentity()
	conf, err := pki.AgentTLS(t.cert, t.key, t.ca)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	bc := backoff.DefaultConfig
	bc.BaseDelay, bc.MaxDelay = c.o.MinBackoff, c.o.MaxBackoff
	cc, err := grpc.NewClient(c.o.Server,
		grpc.WithTransportCredentials(credentials.NewTLS(conf)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 10 * time.Second}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 20 * time.Second}),
	)
	if err != nil {
		return nil, &permanentError{fmt.Errorf("uplink: server address %q: %w", c.o.Server, err)}
	}
	return cc, nil
}

// session runs one stream until it fails or ctx ends; up says the server
// answered the hello.
func (c *Client) session(ctx context.Context, api *wire.AgentClient) (up bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := api.Connect(sctx)
	if err != nil {
		return false, fmt.Errorf("opening the stream: %w", err)
	}
	sp := c.spool
	first := sp.Stats().First
	if err := st.Send(&wire.AgentMessage{Hello: &wire.Hello{Hostname: c.o.Hostname, Version: c.o.Version, NextSeq: first}}); err != nil {
		return false, fmt.Errorf("hello: %w", err)
	}
	hello := time.AfterFunc(30*time.Second, cancel)
	m, err := st.Recv()
	hello.Stop()
	if err != nil {
		return false, fmt.Errorf("waiting for the hello's ack: %w", err)
	}
	if m.Ack == nil {
		return false, errors.New("the server answered the hello without an ack")
	}
	if m.Ack.Seq >= sp.Stats().Next {
		// The server has more of this agent than the spool ever wrote:
		// the spool was lost. Renumber what it holds after the server's.
		n, err := sp.SkipTo(m.Ack.Seq)
		if err != nil {
			return true, err
		}
		c.log.Warn("uplink: the server holds records beyond this spool's sequence (spool deleted or restored?); renumbered the spooled records after them",
			"server_seq", m.Ack.Seq, "renumbered", n)
		first = sp.Stats().First
	}
	if err := sp.Ack(m.Ack.Seq); err != nil {
		return true, err
	}
	c.acked.Store(m.Ack.Seq)
	c.connected.Store(true)
	c.log.Info("uplink: connected", "acked", m.Ack.Seq, "next_seq", first)
	sent := max(m.Ack.Seq, first-1) // the last sequence number sent

	acks := make(chan uint64, 64)
	results := make(chan wire.CommandResult, 16)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			m, err := st.Recv()
			if err != nil {
				errc <- err
				return
			}
			switch {
			case m.Ack != nil:
				select {
				case acks <- m.Ack.Seq:
				case <-sctx.Done():
					return
				}
			case m.Command != nil:
				cmd := *m.Command
				select {
				case c.busy <- struct{}{}:
				default:
					r := wire.CommandResult{ID: cmd.ID, Error: fmt.Sprintf("agent busy: %d commands running", cap(c.busy))}
					select {
					case results <- r:
					case <-sctx.Done():
					}
					continue
				}
				// Not cut short by the stream's end: an action half done
				// is worse than a result nobody reads.
				go func() {
					defer func() { <-c.busy }()
					r := c.handle(ctx, cmd)
					select {
					case results <- r:
					case <-sctx.Done():
					}
				}()
			}
		}
	}()

	var inflight []uint64 // last sequence of each batch not yet acked
	hb := time.NewTicker(c.o.Heartbeat)
	defer hb.Stop()
	var reportedDrops uint64
	for {
		for len(inflight) < c.o.Window {
			recs, err := sp.Pending(sent+1, c.o.BatchRecords, c.o.BatchBytes)
			if err != nil {
				return true, err
			}
			if len(recs) == 0 {
				break
			}
			if err := st.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: recs}}); err != nil {
				return true, fmt.Errorf("sending a batch: %w", err)
			}
			sent = recs[len(recs)-1].Seq
			inflight = append(inflight, sent)
		}
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case err := <-errc:
			return true, fmt.Errorf("receiving: %w", err)
		case seq := <-acks:
			// What was not sent cannot have been stored.
			seq = min(seq, sent)
			if err := sp.Ack(seq); err != nil {
				return true, err
			}
			c.acked.Store(seq)
			for len(inflight) > 0 && inflight[0] <= seq {
				inflight = inflight[1:]
			}
		case <-sp.Committed():
		case r := <-results:
			if err := st.Send(&wire.AgentMessage{Result: &r}); err != nil {
				return true, fmt.Errorf("sending a command result: %w", err)
			}
		case now := <-hb.C:
			s := sp.Stats()
			h := &wire.Heartbeat{Time: now, Spooled: s.Records + s.Queued, Dropped: s.Dropped}
			if f := c.events.Load(); f != nil {
				h.Events = (*f)()
			} else if c.o.Events != nil {
				h.Events = c.o.Events()
			}
			if s.Dropped > reportedDrops {
				c.log.Warn("uplink: records lost to a full spool", "dropped", s.Dropped)
				reportedDrops = s.Dropped
			}
			if err := st.Send(&wire.AgentMessage{Heartbeat: h}); err != nil {
				return true, fmt.Errorf("heartbeat: %w", err)
			}
		}
	}
}

// handle runs one command; a panic in the handler is an error result,
// not a dead agent.
func (c *Client) handle(ctx context.Context, cmd wire.Command) (r wire.CommandResult) {
	defer func() {
		if p := recover(); p != nil {
			r = wire.CommandResult{Error: fmt.Sprintf("command %s panicked: %v", cmd.Kind, p)}
			c.log.Error("uplink: command handler panicked", "kind", cmd.Kind, "panic", p)
		}
		r.ID = cmd.ID
	}()
	c.log.Info("uplink: command", "id", cmd.ID, "kind", cmd.Kind, "actor", cmd.Actor)
	if c.o.Handler == nil {
		return wire.CommandResult{Error: "this agent runs no commands"}
	}
	return c.o.Handler.Handle(ctx, cmd)
}
