package server

import (
	"context"
	"sync"
	"time"
)

// dashCache keeps each dashboard window's figures for ttl and refreshes
// them in the background once stale, serving the stale copy meanwhile:
// the statistics are aggregate queries over every alert in the window,
// too slow to run on each console poll with a large store. Concurrent
// requests for a missing window share one computation.
type dashCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*dashEntry
}

type dashEntry struct {
	ready      chan struct{} // closed once the first computation ended
	at         time.Time
	val        dashboardResponse
	err        error
	refreshing bool
}

// maxDashWindows bounds the cache; beyond it the oldest entry goes.
const maxDashWindows = 32

// dashComputeTimeout bounds one computation, which runs detached from the
// request that started it.
const dashComputeTimeout = time.Minute

func (c *dashCache) get(ctx context.Context, key string, compute func(context.Context) (dashboardResponse, error)) (dashboardResponse, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]*dashEntry{}
	}
	e, ok := c.entries[key]
	if !ok {
		e = &dashEntry{ready: make(chan struct{})}
		c.evict()
		c.entries[key] = e
		c.mu.Unlock()
		go c.run(key, e, compute)
	} else {
		c.mu.Unlock()
	}
	select {
	case <-e.ready:
	case <-ctx.Done():
		return dashboardResponse{}, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.err == nil && !e.refreshing && c.now().Sub(e.at) >= c.ttl {
		e.refreshing = true
		go c.run(key, e, compute)
	}
	return e.val, e.err
}

// run computes key's figures into e.
func (c *dashCache) run(key string, e *dashEntry, compute func(context.Context) (dashboardResponse, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), dashComputeTimeout)
	defer cancel()
	v, err := compute(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	first := e.at.IsZero() && e.err == nil
	if err == nil || first {
		e.val, e.err, e.at = v, err, c.now()
	}
	e.refreshing = false
	if first {
		close(e.ready)
	}
	if err != nil && first && c.entries[key] == e {
		// Do not keep a failure: the next request tries again. (A failed
		// refresh keeps the last good figures.)
		delete(c.entries, key)
	}
}

func (c *dashCache) evict() {
	if len(c.entries) < maxDashWindows {
		return
	}
	var oldest string
	var at time.Time
	for k, e := range c.entries {
		if oldest == "" || e.at.Before(at) {
			oldest, at = k, e.at
		}
	}
	delete(c.entries, oldest)
}
