// Package alert is what a detection produces: the rule (or profile) that
// fired, its priority and MITRE ATT&CK tags, the rendered message and the
// triggering event with its ancestry and workload, plus the response taken.
// Aggregator folds repeats of the same alert into one line with a count. It
// does no I/O; the agent writes alerts and the server stores them.
package alert

import (
	"slices"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Source says what raised an alert.
const (
	SourceRules   = "rules"
	SourceProfile = "profile"
)

// Alert is one detection. The JSON "type" is always "alert", so alerts and
// events can share one stream and be told apart on that field.
type Alert struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	Rule     string    `json:"rule"`
	Priority string    `json:"priority"`
	Source   string    `json:"source"`
	Tags     []string  `json:"tags,omitempty"`
	// Tactics ("TA0002 Execution") and Techniques ("T1059.004") come from
	// the rule's tags.
	Tactics    []string `json:"mitre_tactics,omitempty"`
	Techniques []string `json:"mitre_techniques,omitempty"`
	Output     string   `json:"output"`
	// Count is how many occurrences this line stands for: 1 for the first
	// one, which is written at once; an aggregate line written when the
	// window closes counts the repeats that were held back.
	Count     int       `json:"count"`
	FirstSeen time.Time `json:"first_seen,omitzero"`
	LastSeen  time.Time `json:"last_seen,omitzero"`
	// Aggregate marks a line that summarises repeats of an alert already
	// written; its Event is the last repeat.
	Aggregate bool `json:"aggregate,omitempty"`
	// Responses are the actions taken or, in monitor mode, that would have
	// been taken: "freeze: done", "kill: would-do".
	Responses []string     `json:"responses,omitempty"`
	Event     *event.Event `json:"event"`
}

// Key identifies repeats: the same rule, the same workload and the same
// process lineage (executable, parent's and grandparent's).
func Key(a *Alert) string {
	var b strings.Builder
	b.WriteString(a.Rule)
	b.WriteByte(0)
	e := a.Event
	if e == nil {
		return b.String()
	}
	if e.Workload != nil {
		b.WriteString(e.Workload.Host)
		b.WriteByte('/')
		b.WriteString(e.Workload.ContainerID)
	}
	b.WriteByte(0)
	b.WriteString(exeOrName(e.Process.Exe, e.Process.Name))
	if e.Parent != nil {
		b.WriteByte(0)
		b.WriteString(exeOrName(e.Parent.Exe, e.Parent.Name))
	}
	if len(e.Ancestors) > 0 {
		b.WriteByte(0)
		b.WriteString(exeOrName(e.Ancestors[0].Exe, e.Ancestors[0].Name))
	}
	return b.String()
}

func exeOrName(exe, name string) string {
	if exe != "" {
		return exe
	}
	return name
}

// Aggregator holds back repeats of an alert within a window. It is not safe
// for concurrent use.
type Aggregator struct {
	window time.Duration
	max    int
	open   map[string]*pending
}

type pending struct {
	first   time.Time
	last    *Alert
	repeats int
}

// NewAggregator aggregates repeats within window, tracking at most max
// distinct alerts at once (the oldest are closed early beyond that).
func NewAggregator(window time.Duration, max int) *Aggregator {
	if max <= 0 {
		max = 4096
	}
	return &Aggregator{window: window, max: max, open: make(map[string]*pending)}
}

// Add reports whether a should be written now: true for the first
// occurrence in a window, false for a repeat, which is counted and comes
// back from Flush when the window closes. Closed windows whose repeats are
// due are returned as aggregate alerts, so a caller that only calls Add
// still sees them.
func (g *Aggregator) Add(a *Alert) (emit bool, due []Alert) {
	if g.window <= 0 {
		return true, nil
	}
	due = g.Flush(a.Time)
	k := Key(a)
	if p, ok := g.open[k]; ok {
		p.repeats++
		p.last = a
		return false, due
	}
	if len(g.open) >= g.max {
		due = append(due, g.closeOldest()...)
	}
	g.open[k] = &pending{first: a.Time}
	a.Count, a.FirstSeen, a.LastSeen = 1, a.Time, a.Time
	return true, due
}

// Flush closes the windows that ended before now and returns an aggregate
// alert for each that held repeats back, oldest first.
func (g *Aggregator) Flush(now time.Time) []Alert {
	var out []Alert
	for k, p := range g.open {
		if now.Sub(p.first) < g.window {
			continue
		}
		if a, ok := p.summary(); ok {
			out = append(out, a)
		}
		delete(g.open, k)
	}
	sortByTime(out)
	return out
}

// Close closes every window.
func (g *Aggregator) Close() []Alert {
	var out []Alert
	for k, p := range g.open {
		if a, ok := p.summary(); ok {
			out = append(out, a)
		}
		delete(g.open, k)
	}
	sortByTime(out)
	return out
}

func (g *Aggregator) closeOldest() []Alert {
	var oldest string
	var t time.Time
	for k, p := range g.open {
		if oldest == "" || p.first.Before(t) {
			oldest, t = k, p.first
		}
	}
	p := g.open[oldest]
	delete(g.open, oldest)
	if a, ok := p.summary(); ok {
		return []Alert{a}
	}
	return nil
}

func (p *pending) summary() (Alert, bool) {
	if p.repeats == 0 || p.last == nil {
		return Alert{}, false
	}
	a := *p.last
	a.Aggregate = true
	a.Count = p.repeats
	a.FirstSeen = p.first
	a.LastSeen = p.last.Time
	return a, true
}

func sortByTime(as []Alert) {
	slices.SortFunc(as, func(a, b Alert) int { return a.LastSeen.Compare(b.LastSeen) })
}
