package agent

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/rules"
)

func TestDNSWatchNamesConnections(t *testing.T) {
	addrs := map[string][]netip.Addr{
		"kubernetes.default.svc.cluster.local": {netip.MustParseAddr("10.96.0.1")},
		"pool.example.org":                     {netip.MustParseAddr("10.0.0.9"), netip.MustParseAddr("::ffff:10.96.0.1")},
	}
	resolve := func(ctx context.Context, name string) ([]netip.Addr, error) {
		if a, ok := addrs[name]; ok {
			return a, nil
		}
		return nil, errors.New("no such host")
	}
	w := newDNSWatch([]string{"kubernetes.default.svc.cluster.local", "pool.example.org", "gone.example.org"}, resolve, time.Hour)
	w.refresh(t.Context(), time.Second)

	conn := &event.Event{Type: event.NetConnect, Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort("10.96.0.1:443")}}
	w.fill(conn)
	if want := []string{"kubernetes.default.svc.cluster.local", "pool.example.org"}; !slices.Equal(conn.Net.Names, want) {
		t.Errorf("connect to 10.96.0.1: names %q, want %q", conn.Net.Names, want)
	}
	acc := &event.Event{Type: event.NetAccept, Net: &event.Net{Family: "inet", Src: netip.MustParseAddrPort("10.0.0.9:5555")}}
	w.fill(acc)
	if want := []string{"pool.example.org"}; !slices.Equal(acc.Net.Names, want) {
		t.Errorf("accept from 10.0.0.9: names %q, want %q", acc.Net.Names, want)
	}
	other := &event.Event{Type: event.NetConnect, Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort("127.0.0.1:80")}}
	w.fill(other)
	if len(other.Net.Names) != 0 {
		t.Errorf("connect to 127.0.0.1 named %q", other.Net.Names)
	}
	bind := &event.Event{Type: event.NetBind, Net: &event.Net{Family: "inet", Src: netip.MustParseAddrPort("10.0.0.9:1")}}
	w.fill(bind)
	if len(bind.Net.Names) != 0 {
		t.Errorf("bind named %q; only connect and accept have a remote end", bind.Net.Names)
	}
}

// TestDetectorReloadWatchesNewNames: rules loaded by a reload bring their
// names into the DNS watch.
func TestDetectorReloadWatchesNewNames(t *testing.T) {
	load := func(name string) *rules.Ruleset {
		rs, err := rules.Load(rules.File{Name: "r.yaml", Data: []byte(`
- rule: r
  desc: d
  condition: evt.type = connect and fd.sip.name = "` + name + `"
  output: x
  priority: NOTICE
`)})
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	resolve := func(_ context.Context, name string) ([]netip.Addr, error) {
		return []netip.Addr{netip.MustParseAddr("10.1.1.1")}, nil
	}
	d := NewDetector(Detection{Rules: load("a.example.org"), Resolve: resolve, WatchNames: []string{"extra.example.org"}})
	d.dns.refresh(t.Context(), time.Second)
	e := &event.Event{Type: event.NetConnect, Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort("10.1.1.1:443")}}
	d.dns.fill(e)
	if want := []string{"a.example.org", "extra.example.org"}; !slices.Equal(e.Net.Names, want) {
		t.Fatalf("names %q, want %q", e.Net.Names, want)
	}
	d.SetRules(load("b.example.org"))
	d.dns.refresh(t.Context(), time.Second)
	e.Net.Names = nil
	d.dns.fill(e)
	if want := []string{"b.example.org", "extra.example.org"}; !slices.Equal(e.Net.Names, want) {
		t.Errorf("after the reload: names %q, want %q", e.Net.Names, want)
	}
}
