// Package export feeds the server's alerts, response actions, vulnerability
// findings and compliance results to SIEMs: syslog (RFC 5424 over TCP, TLS
// or UDP, plain or CEF payload), Splunk HEC, Elasticsearch/OpenSearch bulk
// with ECS field names, OCSF 1.1 JSON to a file or an HTTP endpoint, and a
// generic webhook signed with HMAC-SHA256.
//
// A Manager gives every sink its own bounded buffer and goroutine, so a slow
// or unreachable SIEM never blocks the caller: Publish only appends to the
// buffers, dropping (and counting) the oldest items when one is full; the
// sink's goroutine sends in batches and retries failures with exponential
// back-off and jitter. It reads nothing from the store and writes nothing
// but to its sinks.
package export

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// Config lists the sinks a Manager feeds.
type Config struct {
	Sinks []SinkConfig `yaml:"sinks"`
}

// SinkStats is one sink's counters since New.
type SinkStats struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Sent counts items the receiver accepted.
	Sent uint64 `json:"sent"`
	// Failed counts failed delivery attempts (a batch retried three times
	// counts three).
	Failed uint64 `json:"failed"`
	// Dropped counts items given up on: pushed out of a full buffer,
	// refused for good by the receiver (a 4xx other than 429, an
	// Elasticsearch mapping error), past MaxAttempts, or left at Close.
	Dropped uint64 `json:"dropped"`
	// Queued is how many items wait in the buffer (and in flight) now.
	Queued    int       `json:"queued"`
	LastError string    `json:"last_error,omitempty"`
	LastErrAt time.Time `json:"last_error_at,omitzero"`
}

// Manager fans batches out to the configured sinks.
type Manager struct {
	log    *slog.Logger
	sinks  []*runner
	closed chan struct{}
	once   sync.Once
}

// New builds every sink of c and starts its goroutine. A sink whose
// configuration is wrong fails New, naming the sink; a receiver that is
// down does not (the sink retries).
func New(c Config, log *slog.Logger) (*Manager, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Manager{log: log, closed: make(chan struct{})}
	names := map[string]bool{}
	for i, sc := range c.Sinks {
		sc, err := sc.withDefaults()
		if err != nil {
			return nil, fmt.Errorf("export sink %d (%s): %w", i, sc.Name, err)
		}
		if names[sc.Name] {
			sc.Name = fmt.Sprintf("%s-%d", sc.Name, i)
		}
		names[sc.Name] = true
		s, err := newSender(sc)
		if err != nil {
			for _, r := range m.sinks {
				r.sender.close()
			}
			return nil, fmt.Errorf("export sink %s: %w", sc.Name, err)
		}
		m.sinks = append(m.sinks, newRunner(sc, s, log.With("sink", sc.Name)))
	}
	for _, r := range m.sinks {
		go r.run()
	}
	return m, nil
}

// Publish queues what b brings for every sink and returns at once: the new
// alerts (not AlertUpdates, which only fold repeats into an alert already
// exported), the responses, each scan's findings one item per finding, and
// the compliance results. It keeps the row values of b, and shares (never
// modifies) their JSON fields: the caller must not modify b's Raw/Record/Data
// bytes afterwards. Publish after Close does nothing.
func (m *Manager) Publish(b *store.Batch) {
	if m == nil || b == nil || len(m.sinks) == 0 {
		return
	}
	select {
	case <-m.closed:
		return
	default:
	}
	items := itemsOf(b)
	if len(items) == 0 {
		return
	}
	for _, r := range m.sinks {
		r.push(items)
	}
}

// Stats returns every sink's counters, in configuration order.
func (m *Manager) Stats() []SinkStats {
	if m == nil {
		return nil
	}
	out := make([]SinkStats, 0, len(m.sinks))
	for _, r := range m.sinks {
		out = append(out, r.stats())
	}
	return out
}

// Close stops accepting items and sends what the buffers hold until ctx
// ends; what is left then is dropped and counted. It returns an error
// naming the sinks that could not flush everything.
func (m *Manager) Close(ctx context.Context) error {
	if m == nil {
		return nil
	}
	m.once.Do(func() { close(m.closed) })
	var errs []error
	for _, r := range m.sinks {
		if err := r.stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("export sink %s: %w", r.cfg.Name, err))
		}
	}
	return errors.Join(errs...)
}
