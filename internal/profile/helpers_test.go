package profile

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// clock is a fake clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 30, 4, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

const learnWindow = 10 * time.Minute

func newStore(t testing.TB, c *clock, mod func(*Options)) *Store {
	t.Helper()
	o := Options{Learn: learnWindow, Now: c.Now}
	if mod != nil {
		mod(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var web = &event.Workload{Host: "node1", ContainerID: "c0ffee", Image: "nginx:1.25", ImageDigest: "sha256:aaaa"}

const webClass = "docker.io/library/nginx"

func execEv(w *event.Workload, parent, exe string) *event.Event {
	e := &event.Event{Type: event.ProcessExec, Process: event.Process{PID: 10, Exe: exe, ExeInode: inodeOf(exe)}, Workload: w}
	if parent != "" {
		e.Parent = &event.Process{PID: 1, Exe: parent}
	}
	return e
}

// inodeOf gives each test path its own inode number.
func inodeOf(p string) uint64 {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(p); i++ {
		h = (h ^ uint64(p[i])) * 1099511628211
	}
	return h | 1
}

func bindEv(w *event.Workload, typ string, port uint16) *event.Event {
	return &event.Event{Type: event.NetBind, Process: event.Process{PID: 10, Exe: "/usr/sbin/nginx"}, Workload: w,
		Net: &event.Net{Family: "inet", Type: typ, Src: netip.AddrPortFrom(netip.IPv4Unspecified(), port)}}
}

func connectEv(w *event.Workload, dst string, names ...string) *event.Event {
	return &event.Event{Type: event.NetConnect, Process: event.Process{PID: 10, Exe: "/usr/sbin/nginx"}, Workload: w,
		Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort(dst), Names: names}}
}

func writeEv(w *event.Workload, p string) *event.Event {
	return &event.Event{Type: event.FileOpen, Process: event.Process{PID: 10, Exe: "/usr/sbin/nginx"}, Workload: w,
		File: &event.File{Path: p, Flags: oWronly | oCreat}}
}

// normal is the web workload's normal behaviour.
func normal(w *event.Workload) []*event.Event {
	return []*event.Event{
		execEv(w, "/usr/bin/containerd-shim-runc-v2", "/docker-entrypoint.sh"),
		execEv(w, "/docker-entrypoint.sh", "/usr/sbin/nginx"),
		execEv(w, "/usr/sbin/nginx", "/bin/sh"),
		bindEv(w, "stream", 80),
		connectEv(w, "10.0.0.5:5432"),
		connectEv(w, "93.184.215.14:443", "api.example.com"),
		writeEv(w, "/var/log/nginx/access.log"),
		writeEv(w, "/var/cache/nginx/client_temp/0000000001"),
		writeEv(w, "/run/nginx.pid"),
	}
}

func observeAll(t *testing.T, s *Store, evs []*event.Event) []Deviation {
	t.Helper()
	var out []Deviation
	for _, e := range evs {
		out = append(out, s.Observe(e)...)
	}
	return out
}

// learned returns a store that learned normal(web) and was promoted.
func learned(t *testing.T, c *clock, mod func(*Options)) *Store {
	t.Helper()
	s := newStore(t, c, mod)
	if d := observeAll(t, s, normal(web)); d != nil {
		t.Fatalf("deviations in discover mode: %v", d)
	}
	c.Add(learnWindow)
	if d := observeAll(t, s, normal(web)); d != nil {
		t.Fatalf("normal behaviour after promotion deviates: %v", d)
	}
	if p, _ := s.Get(webClass); p.Mode != Monitor {
		t.Fatalf("mode after the learning window = %q, want monitor", p.Mode)
	}
	return s
}
