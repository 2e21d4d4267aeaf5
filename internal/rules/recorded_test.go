package rules

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// recordedEvents reads testdata/recorded-events.jsonl.gz: 2,164 events
// `vigil agent --emit events` wrote on the project machine on 2026-11-30
// while builds, tests, Docker containers and a `cat /etc/shadow` ran. The
// sample keeps every kind of event (opens, execs, forks and exits
// thinned out); the VM's own init and tool runner are anonymised in the
// ancestry and their own events dropped.
func recordedEvents(tb testing.TB) []*event.Event {
	tb.Helper()
	f, err := os.Open("testdata/recorded-events.jsonl.gz")
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var evs []*event.Event
	sc := bufio.NewScanner(zr)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		e := &event.Event{}
		if err := json.Unmarshal(sc.Bytes(), e); err != nil {
			tb.Fatalf("line %d: %v", len(evs)+1, err)
		}
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return evs
}

// TestRecordedEvents: on real events from a busy machine the stable
// rules fire once, on the one real read of /etc/shadow, and nothing else.
func TestRecordedEvents(t *testing.T) {
	evs := recordedEvents(t)
	if len(evs) < 2000 {
		t.Fatalf("%d recorded events", len(evs))
	}
	got := map[string]int{}
	rs := stableRuleset(t)
	for _, e := range evs {
		rs.Match(e, func(r *Rule) {
			got[r.Name]++
			t.Logf("%s: %s", r.Name, r.Render(e))
		})
	}
	if diff := cmp.Diff(map[string]int{"Read sensitive file untrusted": 1}, got); diff != "" {
		t.Errorf("stable rules fired on recorded events (-want +got):\n%s", diff)
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]int{}
	for _, e := range evs {
		def.Match(e, func(r *Rule) { all[r.Name]++ })
	}
	t.Logf("built-in ruleset on recorded events: %v", all)
}

// BenchmarkMatchRecorded runs the recorded real events through the
// built-in ruleset.
func BenchmarkMatchRecorded(b *testing.B) {
	rs, err := Default()
	if err != nil {
		b.Fatal(err)
	}
	evs := recordedEvents(b)
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
