package rules

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// benchEvents is a mix resembling a busy node: mostly opens, execs and
// connects that match nothing, with a few that do.
func benchEvents() []*event.Event {
	evs := benignEvents()
	for _, e := range stableCases() {
		evs = append(evs, e)
	}
	return evs
}

// BenchmarkMatch runs a realistic mix through the built-in ruleset.
func BenchmarkMatch(b *testing.B) {
	rs, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	evs := benchEvents()
	n := 0
	fn := func(*Rule) { n++ }
	b.ReportAllocs()
	done := measureCPU(b)
	for i := 0; i < b.N; i++ {
		rs.Match(evs[i%len(evs)], fn)
	}
	done()
	reportRate(b)
}

// BenchmarkMatchNoMatch runs only events that match no rule: it must not
// allocate.
func BenchmarkMatchNoMatch(b *testing.B) {
	rs, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	evs := benignEvents()
	fn := func(*Rule) { b.Fatal("unexpected match") }
	b.ReportAllocs()
	done := measureCPU(b)
	for i := 0; i < b.N; i++ {
		rs.Match(evs[i%len(evs)], fn)
	}
	done()
	reportRate(b)
}

// threadCPU is the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU pins the benchmark goroutine to its thread so reportRate can
// give events per CPU-second of that thread: a per-core rate that holds
// on a busy machine, where wall time does not.
func measureCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start := threadCPU()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		cpu := threadCPU() - start
		runtime.UnlockOSThread()
		if cpu > 0 {
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		}
	}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestMatchNoAlloc: evaluating events that match nothing allocates
// nothing per event (allocation counts, not timings).
func TestMatchNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector (sync.Pool drops items)")
	}
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	evs := benignEvents()
	fn := func(r *Rule) { t.Errorf("unexpected match %s", r.Name) }
	i := 0
	if avg := testing.AllocsPerRun(2000, func() {
		rs.Match(evs[i%len(evs)], fn)
		i++
	}); avg >= 1 {
		t.Errorf("Match allocates %.2f times per event", avg)
	}
}

// TestMatchConcurrent: Match is safe for concurrent use (run with -race).
func TestMatchConcurrent(t *testing.T) {
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := stableCases()
	done := make(chan map[string]int)
	for g := 0; g < 4; g++ {
		go func() {
			n := map[string]int{}
			for k := 0; k < 50; k++ {
				for _, e := range cases {
					rs.Match(e, func(r *Rule) { n[r.Name]++; r.Render(e) })
				}
			}
			done <- n
		}()
	}
	for g := 0; g < 4; g++ {
		n := <-done
		if len(n) != 25 {
			t.Errorf("goroutine saw %d rules fire, want 25", len(n))
		}
		for name, c := range n {
			if c != 50 {
				t.Errorf("%s fired %d times, want 50", name, c)
			}
		}
	}
}
