package vulnmatch

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// OSV range evaluation (https://ossf.github.io/osv-schema/#evaluation):
//
//	vulnerable = false
//	for evt in sorted(range.events):
//	  if evt.introduced and v >= evt.introduced: vulnerable = true
//	  elif evt.fixed and v >= evt.fixed:         vulnerable = false
//	  elif evt.last_affected and v > evt.last_affected: vulnerable = false
//
// guarded by BeforeLimits (v < some limit; "*" is infinity; no limit means
// no bound). Events are sorted by version with a stable sort, so events at
// the same version keep the record's order: [introduced X, fixed X] is an
// empty range, [fixed X, introduced X] re-opens one at X. "introduced: 0"
// sorts before every version.

var (
	errGITRange  = errors.New("GIT ranges need the repository's commit graph")
	errRangeType = errors.New("unknown range type")
)

type eventKind uint8

const (
	evIntroduced eventKind = iota
	evFixed
	evLastAffected
)

type event struct {
	kind eventKind
	zero bool // introduced "0": before every version
	raw  string
	v    semantic.Version
}

// osvRange is one ECOSYSTEM or SEMVER range, parsed and sorted.
type osvRange struct {
	events   []event
	limits   []semantic.Version
	infinite bool // a "*" limit
}

// compileRange parses and sorts r's events with parse. It fails for GIT
// ranges, unknown types and versions the ecosystem cannot parse; the
// caller skips such a range.
func compileRange(r vulndb.Range, parse func(string) (semantic.Version, error)) (osvRange, error) {
	switch r.Type {
	case "ECOSYSTEM", "SEMVER":
	case "GIT":
		return osvRange{}, errGITRange
	default:
		return osvRange{}, fmt.Errorf("%w: %q", errRangeType, r.Type)
	}
	out := osvRange{events: make([]event, 0, len(r.Events))}
	for _, e := range r.Events {
		var ev event
		switch {
		case e.Introduced != "":
			ev = event{kind: evIntroduced, raw: e.Introduced, zero: e.Introduced == "0"}
		case e.Fixed != "":
			ev = event{kind: evFixed, raw: e.Fixed}
		case e.LastAffected != "":
			ev = event{kind: evLastAffected, raw: e.LastAffected}
		case e.Limit != "":
			if strings.Contains(e.Limit, "*") {
				out.infinite = true
				continue
			}
			v, err := parse(e.Limit)
			if err != nil {
				return osvRange{}, fmt.Errorf("limit %q: %w", e.Limit, err)
			}
			out.limits = append(out.limits, v)
			continue
		default:
			continue // an empty event carries nothing
		}
		if !ev.zero {
			v, err := parse(ev.raw)
			if err != nil {
				return osvRange{}, fmt.Errorf("version %q: %w", ev.raw, err)
			}
			ev.v = v
		}
		out.events = append(out.events, ev)
	}
	slices.SortStableFunc(out.events, func(a, b event) int {
		switch {
		case a.zero && b.zero:
			return 0
		case a.zero:
			return -1
		case b.zero:
			return 1
		}
		return compareVersions(a.v, b.v)
	})
	return out, nil
}

// contains reports whether v lies in the range.
func (r *osvRange) contains(v semantic.Version) bool {
	if !r.beforeLimits(v) {
		return false
	}
	vulnerable := false
	for i := range r.events {
		e := &r.events[i]
		if e.zero {
			vulnerable = true
			continue
		}
		c := compareVersions(v, e.v)
		if c < 0 {
			// This event and, the events being sorted, all later ones
			// are above v: none of them changes the outcome.
			break
		}
		switch e.kind {
		case evIntroduced:
			vulnerable = true
		case evFixed:
			vulnerable = false
		case evLastAffected:
			if c > 0 {
				vulnerable = false
			}
		}
	}
	return vulnerable
}

func (r *osvRange) beforeLimits(v semantic.Version) bool {
	if r.infinite || len(r.limits) == 0 {
		return true
	}
	for _, l := range r.limits {
		if compareVersions(v, l) < 0 {
			return true
		}
	}
	return false
}

// fixedAbove appends the range's fixed events above v to dst.
func (r *osvRange) fixedAbove(dst []*event, v semantic.Version) []*event {
	for i := range r.events {
		e := &r.events[i]
		if e.kind == evFixed && compareVersions(e.v, v) > 0 {
			dst = append(dst, e)
		}
	}
	return dst
}

// affectedEntry is one affected[] entry of an advisory, compiled for one
// ecosystem: its evaluable ranges.
type affectedEntry struct {
	index  int // in Advisory.Affected
	ranges []osvRange
}

// match reports whether the installed version (raw string and parsed) is
// affected, by the ranges or by the entry's explicit versions list, with
// the fixed versions above it: from the ranges that contain it, or, when
// only the versions list names it, from all of the entry's ranges.
func (a *affectedEntry) match(versions []string, raw string, v semantic.Version, fixed []*event) (bool, []*event) {
	hit := false
	for i := range a.ranges {
		if a.ranges[i].contains(v) {
			hit = true
			fixed = a.ranges[i].fixedAbove(fixed, v)
		}
	}
	if hit {
		return true, fixed
	}
	if slices.Contains(versions, raw) {
		for i := range a.ranges {
			fixed = a.ranges[i].fixedAbove(fixed, v)
		}
		return true, fixed
	}
	return false, fixed
}
