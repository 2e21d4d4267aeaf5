package hub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

type stream = grpc.BidiStreamingServer[wire.AgentMessage, wire.ServerMessage]

// conn is one agent's live stream.
type conn struct {
	h      *Hub
	agent  store.Agent
	st     stream
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{} // closed when the stream's handler returns

	sendMu sync.Mutex
	ing    *ingester // used by the stream's handler goroutine only

	mu      sync.Mutex
	pending map[string]chan wire.CommandResult
	closed  bool
}

// authenticate checks the stream's client certificate and returns the
// agent it names.
func (h *Hub) authenticate(ctx context.Context) (store.Agent, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return store.Agent{}, errors.New("no peer")
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return store.Agent{}, errors.New("not a TLS connection")
	}
	if len(ti.State.PeerCertificates) == 0 {
		return store.Agent{}, errors.New("no client certificate")
	}
	id, serial, err := h.opts.CA.VerifyAgent(ti.State.PeerCertificates[0], h.opts.Now())
	if err != nil {
		return store.Agent{}, err
	}
	a, err := h.opts.Store.Agent(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Agent{}, fmt.Errorf("agent %s is not enrolled", id)
	}
	if err != nil {
		return store.Agent{}, errStore{err}
	}
	if a.Revoked {
		return store.Agent{}, fmt.Errorf("agent %s is revoked", id)
	}
	if a.CertSerial != serial {
		return store.Agent{}, fmt.Errorf("agent %s: certificate serial %s is not the one issued (%s)", id, serial, a.CertSerial)
	}
	return a, nil
}

type errStore struct{ error }

func (h *Hub) connect(st stream) error {
	ctx, cancel := context.WithCancel(st.Context())
	defer cancel()
	rlog := h.log.With("remote", remote(ctx))
	a, err := h.authenticate(ctx)
	if err != nil {
		var es errStore
		if errors.As(err, &es) {
			rlog.Error("agent stream: store", "err", err)
			return status.Errorf(codes.Unavailable, "store: %v", es.error)
		}
		rlog.Warn("agent stream refused", "err", err)
		return status.Errorf(codes.Unauthenticated, "%v", err)
	}
	c := &conn{
		h: h, agent: a, st: st, cancel: cancel, done: make(chan struct{}),
		log:     rlog.With("agent", a.ID, "hostname", a.Hostname),
		pending: make(map[string]chan wire.CommandResult),
	}
	defer close(c.done)

	// The first message is Hello.
	m, err := st.Recv()
	if err != nil {
		return c.recvError(err)
	}
	if err := m.Validate(); err != nil || m.Hello == nil {
		c.log.Warn("agent stream: first message is not a hello")
		return status.Error(codes.InvalidArgument, "the first message must be a hello")
	}
	if err := c.hello(ctx, m.Hello); err != nil {
		return err
	}
	defer c.close()
	return c.run(ctx)
}

// hello takes over the agent's previous stream, if any, seeds the
// correlation state and acks what is stored.
func (c *conn) hello(ctx context.Context, hl *wire.Hello) error {
	h := c.h
	if err := c.takeOver(ctx); err != nil {
		return err
	}
	// Re-read the agent: the old stream may have stored more.
	a, err := h.opts.Store.Agent(ctx, c.agent.ID)
	if err != nil {
		c.log.Error("agent stream: store", "err", err)
		return status.Errorf(codes.Unavailable, "store: %v", err)
	}
	now := h.opts.Now()
	if hl.Hostname != "" && len(hl.Hostname) <= maxHostnameLen && !strings.ContainsFunc(hl.Hostname, isControl) &&
		len(hl.Version) <= maxVersionLen && !strings.ContainsFunc(hl.Version, isControl) &&
		(hl.Hostname != a.Hostname || hl.Version != a.Version) {
		a.Hostname, a.Version, a.LastSeen = hl.Hostname, hl.Version, now
		if err := h.opts.Store.PutAgent(ctx, a); err != nil {
			c.log.Warn("agent stream: updating hostname and version", "err", err)
		}
	} else if err := h.opts.Store.TouchAgent(ctx, a.ID, now); err != nil {
		c.log.Warn("agent stream: heartbeat", "err", err)
	}
	c.agent = a
	c.ing = newIngester(h, a)
	if err := c.ing.seed(ctx); err != nil {
		c.log.Error("agent stream: seeding the correlation state", "err", err)
		return status.Errorf(codes.Unavailable, "store: %v", err)
	}
	if hl.NextSeq > a.Seq+1 {
		c.log.Warn("agent lost records before they were delivered (spool full?)", "stored_seq", a.Seq, "next_seq", hl.NextSeq)
	}
	if err := c.send(&wire.ServerMessage{Ack: &wire.Ack{Seq: a.Seq}}); err != nil {
		return err
	}
	// Registered once acked, so a command never overtakes the ack.
	h.mu.Lock()
	old := h.conns[a.ID]
	h.conns[a.ID] = c
	h.mu.Unlock()
	if old != nil { // a third stream raced this one: the newest wins
		old.cancel()
	}
	c.log.Info("agent connected", "seq", a.Seq, "next_seq", hl.NextSeq, "version", hl.Version)
	return nil
}

// takeOver ends the agent's previous stream, if any, and waits for it to
// finish, so two streams never ingest for one agent: the agent reconnected
// before the server saw the old one end.
func (c *conn) takeOver(ctx context.Context) error {
	c.h.mu.Lock()
	old := c.h.conns[c.agent.ID]
	c.h.mu.Unlock()
	if old == nil {
		return nil
	}
	c.log.Info("agent stream replaces a previous one")
	old.cancel()
	select {
	case <-old.done:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (c *conn) send(m *wire.ServerMessage) error {
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.st.Send(m)
}

// recvError maps a receive error to the stream's end.
func (c *conn) recvError(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Canceled, codes.DeadlineExceeded:
			return err
		case codes.ResourceExhausted:
			c.log.Warn("agent stream: oversized message", "err", s.Message())
			return err
		case codes.Internal, codes.Unknown, codes.InvalidArgument:
			// gRPC has already ended the stream with Internal.
			c.log.Warn("agent stream: undecodable message", "err", s.Message())
			return err
		}
	}
	c.log.Warn("agent stream: receive", "err", err)
	return err
}

// run reads the stream until it ends. Command results are routed as they
// arrive, so a command is answered even while a batch waits for the store.
func (c *conn) run(ctx context.Context) error {
	msgs := make(chan *wire.AgentMessage, 4)
	errc := make(chan error, 1)
	go func() {
		for {
			m, err := c.st.Recv()
			if err != nil {
				errc <- c.recvError(err)
				return
			}
			if err := m.Validate(); err != nil {
				c.log.Warn("agent stream: bad message", "err", err)
				errc <- status.Errorf(codes.InvalidArgument, "%v", err)
				return
			}
			if m.Result != nil {
				c.result(*m.Result)
				continue
			}
			select {
			case msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			select {
			case err := <-errc:
				return err
			default:
			}
			return status.FromContextError(ctx.Err()).Err()
		case err := <-errc:
			return err
		case m := <-msgs:
			var err error
			switch {
			case m.Batch != nil:
				err = c.batch(ctx, m.Batch)
			case m.Heartbeat != nil:
				if terr := c.h.opts.Store.TouchAgent(ctx, c.agent.ID, c.h.opts.Now()); terr != nil {
					c.log.Warn("agent heartbeat: store", "err", terr)
				}
			case m.Hello != nil:
				err = status.Error(codes.InvalidArgument, "a second hello on one stream")
			}
			if err != nil {
				return err
			}
		}
	}
}

// batch ingests one batch: converted, applied (retried while the store
// fails), acked, published.
func (c *conn) batch(ctx context.Context, in *wire.Batch) error {
	b, err := c.ing.build(in)
	if err != nil {
		c.log.Warn("agent batch refused", "err", err)
		return status.Errorf(codes.InvalidArgument, "%v", err)
	}
	if b == nil { // every record was already stored: a resend
		return c.send(&wire.ServerMessage{Ack: &wire.Ack{Seq: c.ing.seq}})
	}
	seq, err := c.apply(ctx, b)
	if err != nil {
		return err
	}
	c.ing.stored(seq)
	if err := c.send(&wire.ServerMessage{Ack: &wire.Ack{Seq: seq}}); err != nil {
		// Stored but not acked: the agent resends, and the records at or
		// below the stored sequence are dropped then. Publish anyway.
		c.h.opts.Publish(forExport(b))
		return err
	}
	c.h.opts.Publish(forExport(b))
	return nil
}

// forExport is b without the response records an operator asked for: the
// server that ran the command has stored and published those already,
// linked to the alert they answer; the agent's copy only confirms them.
// The agent's own (automatic) responses are published here.
func forExport(b *store.Batch) *store.Batch {
	if !slices.ContainsFunc(b.Responses, operatorResponse) {
		return b
	}
	x := *b
	x.Responses = slices.DeleteFunc(slices.Clone(b.Responses), operatorResponse)
	return &x
}

func operatorResponse(r store.Response) bool { return r.Actor != "agent" }

// apply writes b, retrying with back-off while the store fails and the
// stream lives.
func (c *conn) apply(ctx context.Context, b *store.Batch) (uint64, error) {
	wait := c.h.opts.RetryMin
	for attempt := 1; ; attempt++ {
		seq, err := c.h.opts.Store.Apply(ctx, b)
		if err == nil {
			if attempt > 1 {
				c.log.Info("agent batch stored after retries", "attempts", attempt, "seq", seq)
			}
			return seq, nil
		}
		if errors.Is(err, store.ErrSeqGap) {
			// The stored sequence moved under this stream (another
			// server replica?): the agent reconnects and learns it.
			c.log.Warn("agent batch does not follow the stored sequence", "first", b.FirstSeq, "err", err)
			return 0, status.Errorf(codes.FailedPrecondition, "batch %d..%d: %v; reconnect", b.FirstSeq, b.LastSeq, err)
		}
		if ctx.Err() != nil {
			return 0, status.FromContextError(ctx.Err()).Err()
		}
		if attempt%5 == 0 && c.h.opts.Store.Ping(ctx) == nil {
			// Not an outage: the store answers but refuses this batch. It
			// is kept (retried, not acked) for an operator to see.
			c.log.Error("agent batch refused by a store that answers; retrying", "attempt", attempt, "first", b.FirstSeq, "last", b.LastSeq, "err", err)
		} else {
			c.log.Warn("agent batch: store failed, retrying", "attempt", attempt, "retry_in", wait, "first", b.FirstSeq, "last", b.LastSeq, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, status.FromContextError(ctx.Err()).Err()
		}
		wait = min(wait*2, c.h.opts.RetryMax)
	}
}

// command sends c down the stream and waits for its result.
func (c *conn) command(ctx context.Context, cmd wire.Command) (wire.CommandResult, error) {
	ch := make(chan wire.CommandResult, 1)
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return wire.CommandResult{}, fmt.Errorf("command %s to agent %s: %w", cmd.Kind, c.agent.ID, ErrNotConnected)
	}
	c.pending[cmd.ID] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, cmd.ID)
		c.mu.Unlock()
	}()
	if err := c.send(&wire.ServerMessage{Command: &cmd}); err != nil {
		return wire.CommandResult{}, fmt.Errorf("command %s to agent %s: %w: %v", cmd.Kind, c.agent.ID, ErrNotConnected, err)
	}
	c.log.Info("command sent", "command", cmd.ID, "kind", cmd.Kind, "actor", cmd.Actor)
	select {
	case r, ok := <-ch:
		if !ok {
			return wire.CommandResult{}, fmt.Errorf("command %s to agent %s: the stream ended before the answer: %w", cmd.Kind, c.agent.ID, ErrNotConnected)
		}
		return r, nil
	case <-ctx.Done():
		return wire.CommandResult{}, fmt.Errorf("command %s to agent %s: %w", cmd.Kind, c.agent.ID, ctx.Err())
	}
}

func (c *conn) result(r wire.CommandResult) {
	c.mu.Lock()
	ch := c.pending[r.ID]
	delete(c.pending, r.ID)
	c.mu.Unlock()
	if ch == nil {
		c.log.Warn("agent answered a command nobody waits for", "command", clip(r.ID, 64))
		return
	}
	ch <- r
}

// close unregisters the stream and fails the commands still waiting.
func (c *conn) close() {
	h := c.h
	h.mu.Lock()
	if h.conns[c.agent.ID] == c {
		delete(h.conns, c.agent.ID)
	}
	h.mu.Unlock()
	c.mu.Lock()
	c.closed = true
	for id, ch := range c.pending {
		close(ch)
		delete(c.pending, id)
	}
	c.mu.Unlock()
	c.log.Info("agent disconnected")
}
