package server

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// healthCache pings the store at most once per ttl, so /healthz stays
// cheap however often it is polled.
type healthCache struct {
	ttl  time.Duration
	ping func(context.Context) error
	now  func() time.Time

	mu  sync.Mutex
	at  time.Time
	err error
}

// pingTimeout bounds one store ping.
const pingTimeout = 2 * time.Second

func (h *healthCache) check(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if !h.at.IsZero() && now.Sub(h.at) < h.ttl && now.Sub(h.at) >= 0 {
		return h.err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pingTimeout)
	defer cancel()
	h.err = h.ping(ctx)
	h.at = h.now()
	return h.err
}

type healthResponse struct {
	Status string `json:"status"`
	Store  string `json:"store,omitempty"`
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, _ *principal) {
	if err := s.health.check(r.Context()); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, healthResponse{Status: "degraded", Store: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, healthResponse{Status: "ok"})
}
