package profile

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// BenchmarkObserveKnown is the steady state of a monitored workload: every
// event already in the profile (exec with a verified hash, pair, listen,
// outbound, write under a glob). It must not allocate.
func BenchmarkObserveKnown(b *testing.B) {
	c := newClock()
	hash := func(e *event.Event) (string, error) { return strings.Repeat("a", 64), nil }
	s := newStore(b, c, func(o *Options) { o.Hash = hash })
	evs := normal(web)
	for i := range 200 {
		evs = append(evs, writeEv(web, fmt.Sprintf("/var/lib/app/run-%d/state", 1000+i)))
	}
	for _, e := range evs {
		s.Observe(e)
	}
	c.Add(learnWindow)
	for _, e := range evs {
		if d := s.Observe(e); d != nil {
			b.Fatalf("known event deviates: %v", d)
		}
	}
	evs = evs[:len(normal(web))]
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if d := s.Observe(evs[i%len(evs)]); d != nil {
			b.Fatal(d)
		}
	}
}

// BenchmarkObserveIgnored is an event kind profiles do not look at.
func BenchmarkObserveIgnored(b *testing.B) {
	s := newStore(b, newClock(), nil)
	e := &event.Event{Type: event.PrivSetuid, Workload: web}
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(e)
	}
}

// BenchmarkObserveDeviation is an unknown exec in monitor mode (builds the
// deviations).
func BenchmarkObserveDeviation(b *testing.B) {
	c := newClock()
	s := newStore(b, c, nil)
	for _, e := range normal(web) {
		s.Observe(e)
	}
	c.Add(learnWindow)
	e := execEv(web, "/bin/sh", "/tmp/xmrig")
	b.ReportAllocs()
	for b.Loop() {
		s.Observe(e)
	}
}

// BenchmarkExportImport round-trips a full profile (1024 items per list).
func BenchmarkExportImport(b *testing.B) {
	c := newClock()
	s := newStore(b, c, nil)
	for i := range 1024 {
		s.Observe(execEv(web, "/bin/sh", fmt.Sprintf("/opt/bin/t%c%c", 'a'+i%26, 'a'+i/26)))
		s.Observe(bindEv(web, "stream", uint16(1+i)))
	}
	var y bytes.Buffer
	if err := s.Export(&y); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(y.Len()))
	b.ReportAllocs()
	for b.Loop() {
		var out bytes.Buffer
		if err := s.Export(&out); err != nil {
			b.Fatal(err)
		}
		if err := s.Import(&out); err != nil {
			b.Fatal(err)
		}
	}
}
