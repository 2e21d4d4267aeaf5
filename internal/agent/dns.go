package agent

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Resolver resolves a DNS name to addresses.
type Resolver func(ctx context.Context, name string) ([]netip.Addr, error)

// systemResolver uses the host's resolver (/etc/hosts, then DNS).
func systemResolver(ctx context.Context, name string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", name)
}

// dnsWatch knows the addresses of the DNS names the rules compare
// connections with (fd.sip.name and friends), the way Falco does: it
// resolves those names itself, at start and then periodically, and names
// a connection's remote address when it is one of them. Processes' own
// DNS traffic is not inspected.
type dnsWatch struct {
	resolve Resolver
	every   time.Duration

	mu     sync.RWMutex
	names  []string
	byAddr map[netip.Addr][]string
}

func newDNSWatch(names []string, r Resolver, every time.Duration) *dnsWatch {
	if r == nil {
		r = systemResolver
	}
	if every <= 0 {
		every = time.Minute
	}
	return &dnsWatch{names: names, resolve: r, every: every, byAddr: map[netip.Addr][]string{}}
}

// refresh resolves every name, each within timeout, in parallel, and
// replaces the table. A name that fails to resolve keeps no addresses.
func (w *dnsWatch) refresh(ctx context.Context, timeout time.Duration) {
	w.mu.RLock()
	names := w.names
	w.mu.RUnlock()
	if len(names) == 0 {
		w.mu.Lock()
		w.byAddr = map[netip.Addr][]string{}
		w.mu.Unlock()
		return
	}
	type res struct {
		name  string
		addrs []netip.Addr
	}
	out := make(chan res, len(names))
	sem := make(chan struct{}, 8)
	for _, n := range names {
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			c, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			addrs, _ := w.resolve(c, n)
			out <- res{n, addrs}
		}()
	}
	m := make(map[netip.Addr][]string)
	for range names {
		r := <-out
		for _, a := range r.addrs {
			a = a.Unmap()
			if !slices.Contains(m[a], r.name) {
				m[a] = append(m[a], r.name)
			}
		}
	}
	for _, names := range m {
		slices.Sort(names) // the lookups finish in any order
	}
	w.mu.Lock()
	w.byAddr = m
	w.mu.Unlock()
}

// setNames replaces the watched names (after a rules reload); the next
// refresh resolves them.
func (w *dnsWatch) setNames(names []string) {
	w.mu.Lock()
	w.names = names
	w.mu.Unlock()
}

// run refreshes the table until ctx is done.
func (w *dnsWatch) run(ctx context.Context) {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.refresh(ctx, 5*time.Second)
		}
	}
}

// fill adds the watched names of e's remote address to e.Net.Names.
func (w *dnsWatch) fill(e *event.Event) {
	if e.Net == nil {
		return
	}
	var ap netip.AddrPort
	switch e.Type {
	case event.NetConnect:
		ap = e.Net.Dst
	case event.NetAccept:
		ap = e.Net.Src
	default:
		return
	}
	if !ap.IsValid() {
		return
	}
	w.mu.RLock()
	names := w.byAddr[ap.Addr().Unmap()]
	w.mu.RUnlock()
	for _, n := range names {
		if !slices.Contains(e.Net.Names, n) {
			e.Net.Names = append(e.Net.Names, n)
		}
	}
}
