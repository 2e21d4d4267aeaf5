package rules

import (
	"testing"

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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs.Match(evs[i%len(evs)], fn)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
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
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rs.Match(evs[i%len(evs)], fn)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
