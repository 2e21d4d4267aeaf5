package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// sender delivers one batch. It returns nil when every item was accepted.
// A *sendError says which items to retry and how many were refused for
// good; any other error retries the whole batch.
type sender interface {
	send(ctx context.Context, items []*Item) error
	close() error
}

// sendError is a partial or permanent failure.
type sendError struct {
	err error
	// retry are the indexes of the items to send again.
	retry []int
	// dropped counts items refused for good.
	dropped int
	// permanent: every item not in retry was refused for good (4xx).
	permanent bool
}

func (e *sendError) Error() string { return e.err.Error() }
func (e *sendError) Unwrap() error { return e.err }

// permanentError refuses the whole batch for good.
func permanentError(n int, err error) error {
	return &sendError{err: err, dropped: n, permanent: true}
}

// runner is one sink's buffer and goroutine.
type runner struct {
	cfg    SinkConfig
	sender sender
	log    *slog.Logger

	mu      sync.Mutex
	buf     []*Item // ring buffer of cfg.Buffer slots
	head, n int
	st      SinkStats
	flying  int
	// leftover counts items dropped because Close's context ended.
	leftover int
	// exited: the goroutine has ended; push drops.
	exited bool

	// filtered: Kinds or MinPriority is set; minRank is MinPriority's
	// rank, -1 without one.
	filtered bool
	minRank  int

	wake     chan struct{}
	stopping chan struct{}
	stopOnce sync.Once
	// flushCtx is the Close context, set before stopping closes.
	flushCtx context.Context
	done     chan struct{}
}

func newRunner(cfg SinkConfig, s sender, log *slog.Logger) *runner {
	rank := -1
	if cfg.MinPriority != "" {
		rank = priorityRank(cfg.MinPriority)
	}
	return &runner{
		cfg: cfg, sender: s, log: log,
		filtered: len(cfg.Kinds) > 0 || rank >= 0, minRank: rank,
		buf:      make([]*Item, cfg.Buffer),
		st:       SinkStats{Name: cfg.Name, Type: cfg.Type},
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// wants reports whether the sink's filters keep it.
func (r *runner) wants(it *Item) bool {
	if len(r.cfg.Kinds) > 0 && !slices.Contains(r.cfg.Kinds, it.Kind) {
		return false
	}
	if r.minRank >= 0 && it.Kind == KindAlert && it.Alert.Severity > r.minRank {
		return false
	}
	return true
}

// push appends items, pushing the oldest out when the buffer is full.
func (r *runner) push(items []*Item) {
	r.mu.Lock()
	if r.exited {
		r.st.Dropped += uint64(len(items))
		r.mu.Unlock()
		return
	}
	c := len(r.buf)
	for _, it := range items {
		if r.filtered && !r.wants(it) {
			continue
		}
		if r.n == c {
			r.buf[r.head] = nil
			r.head = (r.head + 1) % c
			r.n--
			r.st.Dropped++
		}
		r.buf[(r.head+r.n)%c] = it
		r.n++
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// take removes up to max items from the front.
func (r *runner) take(max int) []*Item {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := min(max, r.n)
	if k == 0 {
		return nil
	}
	out := make([]*Item, k)
	c := len(r.buf)
	for i := range k {
		out[i] = r.buf[(r.head+i)%c]
		r.buf[(r.head+i)%c] = nil
	}
	r.head = (r.head + k) % c
	r.n -= k
	r.flying = k
	return out
}

func (r *runner) stats() SinkStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.st
	s.Queued = r.n + r.flying
	return s
}

func (r *runner) run() {
	defer close(r.done)
	defer func() {
		// A Publish racing Close finds the goroutine gone: what it
		// brings is counted dropped, not left queued forever.
		r.mu.Lock()
		r.exited = true
		r.st.Dropped += uint64(r.n)
		r.leftover += r.n
		r.n = 0
		r.mu.Unlock()
	}()
	// ctx is cancelled only when Close's context ends.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.stopping:
			select {
			case <-r.flushCtx.Done():
				cancel()
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
	}()
	for {
		batch := r.take(r.cfg.Batch)
		if batch == nil {
			select {
			case <-r.wake:
				continue
			case <-r.stopping:
				if r.take0() {
					continue
				}
				return
			}
		}
		r.deliver(ctx, batch)
		if ctx.Err() != nil {
			r.dropRest()
			return
		}
	}
}

// take0 reports whether items arrived (a push racing the stop).
func (r *runner) take0() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n > 0
}

func (r *runner) dropRest() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leftover = r.n + r.flying
	r.st.Dropped += uint64(r.leftover)
	for i := range r.buf {
		r.buf[i] = nil
	}
	r.n, r.flying = 0, 0
}

// deliver sends batch until every item is accepted or refused for good,
// MaxAttempts is reached or ctx ends.
func (r *runner) deliver(ctx context.Context, batch []*Item) {
	attempt := 0
	for len(batch) > 0 {
		attempt++
		sctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
		err := r.sender.send(sctx, batch)
		cancel()
		if err == nil {
			r.account(len(batch), 0, nil, 0)
			return
		}
		var se *sendError
		var retry []*Item
		dropped := 0
		if errors.As(err, &se) {
			for _, i := range se.retry {
				if i >= 0 && i < len(batch) {
					retry = append(retry, batch[i])
				}
			}
			dropped = se.dropped
			if se.permanent {
				dropped = len(batch) - len(retry)
			}
		} else {
			retry = batch
		}
		sent := len(batch) - len(retry) - dropped
		if sent < 0 {
			sent = 0
		}
		if r.cfg.MaxAttempts > 0 && attempt >= r.cfg.MaxAttempts && len(retry) > 0 {
			dropped += len(retry)
			err = fmt.Errorf("giving up after %d attempts: %w", attempt, err)
			retry = nil
		}
		r.account(sent, dropped, err, len(retry))
		r.log.Warn("export failed", "attempt", attempt, "items", len(batch), "retry", len(retry), "dropped", dropped, "err", err)
		batch = retry
		if len(batch) == 0 {
			return
		}
		wait := backoff(r.cfg.BackoffMin, r.cfg.BackoffMax, attempt)
		var ra interface{ retryAfter() time.Duration }
		if errors.As(err, &ra) && ra.retryAfter() > wait {
			// The receiver said when to come back (429/503 Retry-After),
			// within BackoffMax.
			wait = min(ra.retryAfter(), r.cfg.BackoffMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

func (r *runner) account(sent, dropped int, err error, flying int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Sent += uint64(sent)
	r.st.Dropped += uint64(dropped)
	r.flying = flying
	if err != nil {
		r.st.Failed++
		r.st.LastError = err.Error()
		r.st.LastErrAt = time.Now()
	}
}

// backoff is the wait before attempt+1: min·2^(attempt-1) capped at max,
// with "equal jitter" (half fixed, half random) so that sinks retrying
// together spread out.
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(half+1)
}

// stop makes the goroutine flush and end; it waits until it has, or ctx
// ends.
func (r *runner) stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.flushCtx = ctx
		close(r.stopping)
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		<-r.done // the goroutine ends promptly once ctx is done
	}
	err := r.sender.close()
	r.mu.Lock()
	left := r.leftover
	r.mu.Unlock()
	if left > 0 {
		err = errors.Join(fmt.Errorf("%d items not delivered before the close deadline", left), err)
	}
	return err
}

var (
	_ sender = (*syslogSink)(nil)
	_ sender = (*splunkSink)(nil)
	_ sender = (*elasticSink)(nil)
	_ sender = (*ocsfFileSink)(nil)
	_ sender = (*ocsfHTTPSink)(nil)
	_ sender = (*webhookSink)(nil)
)
