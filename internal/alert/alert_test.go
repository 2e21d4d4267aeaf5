package alert

import (
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

func mk(rule, container, exe string, t time.Time) *Alert {
	return &Alert{
		Time: t, Type: "alert", Rule: rule,
		Event: &event.Event{
			Process:  event.Process{PID: 1, Exe: exe},
			Parent:   &event.Process{Exe: "/bin/sh"},
			Workload: &event.Workload{Host: "h", ContainerID: container},
		},
	}
}

func TestAggregatorFoldsRepeats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := NewAggregator(10*time.Second, 0)

	emit, due := g.Add(mk("R", "c1", "/bin/cat", t0))
	if !emit || len(due) != 0 {
		t.Fatalf("first alert: emit=%v due=%d, want true 0", emit, len(due))
	}
	for i := 1; i <= 4; i++ {
		if emit, _ := g.Add(mk("R", "c1", "/bin/cat", t0.Add(time.Duration(i)*time.Second))); emit {
			t.Fatalf("repeat %d emitted", i)
		}
	}
	// Another container, another rule and another lineage are not repeats.
	for _, a := range []*Alert{mk("R", "c2", "/bin/cat", t0), mk("S", "c1", "/bin/cat", t0), mk("R", "c1", "/bin/grep", t0)} {
		if emit, _ := g.Add(a); !emit {
			t.Errorf("%s/%s/%s held back as a repeat", a.Rule, a.Event.Workload.ContainerID, a.Event.Process.Exe)
		}
	}
	if got := g.Flush(t0.Add(9 * time.Second)); len(got) != 0 {
		t.Fatalf("flush inside the window returned %d alerts", len(got))
	}
	// The window closes: one aggregate line for the 4 repeats.
	emit, due = g.Add(mk("R", "c1", "/bin/cat", t0.Add(11*time.Second)))
	if !emit {
		t.Error("first alert of a new window held back")
	}
	if len(due) != 1 {
		t.Fatalf("due after the window = %d alerts, want 1: %+v", len(due), due)
	}
	a := due[0]
	if !a.Aggregate || a.Count != 4 || !a.FirstSeen.Equal(t0) || !a.LastSeen.Equal(t0.Add(4*time.Second)) {
		t.Errorf("aggregate = {agg %v count %d first %v last %v}, want {true 4 %v %v}",
			a.Aggregate, a.Count, a.FirstSeen, a.LastSeen, t0, t0.Add(4*time.Second))
	}
	// Close returns nothing for windows without repeats.
	if got := g.Close(); len(got) != 0 {
		t.Errorf("Close returned %d aggregates, want 0", len(got))
	}
}

func TestAggregatorBound(t *testing.T) {
	t0 := time.Unix(1000, 0)
	g := NewAggregator(time.Hour, 2)
	g.Add(mk("A", "c", "/x", t0))
	g.Add(mk("A", "c", "/x", t0.Add(time.Second))) // repeat of A
	g.Add(mk("B", "c", "/x", t0.Add(2*time.Second)))
	_, due := g.Add(mk("C", "c", "/x", t0.Add(3*time.Second))) // evicts A, the oldest
	if len(due) != 1 || due[0].Rule != "A" || due[0].Count != 1 {
		t.Fatalf("eviction returned %+v, want A's aggregate with count 1", due)
	}
	if len(g.open) != 2 {
		t.Errorf("open windows = %d, want 2", len(g.open))
	}
}

func TestAggregatorDisabled(t *testing.T) {
	g := NewAggregator(0, 0)
	for range 3 {
		if emit, _ := g.Add(mk("R", "c", "/x", time.Unix(1, 0))); !emit {
			t.Fatal("window 0 must write every alert")
		}
	}
}

func BenchmarkAggregatorRepeat(b *testing.B) {
	g := NewAggregator(time.Hour, 0)
	a := mk("R", "c1", "/bin/cat", time.Unix(1000, 0))
	b.ReportAllocs()
	for b.Loop() {
		g.Add(a)
	}
}
