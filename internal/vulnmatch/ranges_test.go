package vulnmatch

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

func introduced(v string) vulndb.Event   { return vulndb.Event{Introduced: v} }
func fixed(v string) vulndb.Event        { return vulndb.Event{Fixed: v} }
func lastAffected(v string) vulndb.Event { return vulndb.Event{LastAffected: v} }
func limit(v string) vulndb.Event        { return vulndb.Event{Limit: v} }

// evalEntry evaluates one affected entry (ranges and versions) for an
// installed version, as matching does.
func evalEntry(t *testing.T, ecosystem string, ranges []vulndb.Range, versions []string, installed string) (bool, []string) {
	t.Helper()
	cache := parserFor(ecosystem)
	var e affectedEntry
	for _, r := range ranges {
		cr, err := compileRange(r, cache.parse)
		if err != nil {
			continue
		}
		e.ranges = append(e.ranges, cr)
	}
	v, err := parseVersion(ecosystem, installed)
	if err != nil {
		t.Fatalf("parse %q: %v", installed, err)
	}
	ok, evs := e.match(versions, installed, v, nil)
	return ok, fixedStrings(evs)
}

func TestRangeSemantics(t *testing.T) {
	semverRange := func(evs ...vulndb.Event) []vulndb.Range {
		return []vulndb.Range{{Type: "SEMVER", Events: evs}}
	}
	tests := []struct {
		name      string
		ranges    []vulndb.Range
		versions  []string
		installed string
		want      bool
		wantFixed []string
	}{
		{"introduced 0: from the beginning", semverRange(introduced("0"), fixed("1.0.2")), nil, "0.0.1", true, []string{"1.0.2"}},
		{"below fixed", semverRange(introduced("0"), fixed("1.0.2")), nil, "1.0.1", true, []string{"1.0.2"}},
		{"prerelease of fixed is below it", semverRange(introduced("0"), fixed("1.0.2")), nil, "1.0.2-rc.1", true, []string{"1.0.2"}},
		{"fixed excludes", semverRange(introduced("0"), fixed("1.0.2")), nil, "1.0.2", false, nil},
		{"above fixed", semverRange(introduced("0"), fixed("1.0.2")), nil, "2.0.0", false, nil},
		{"before introduced", semverRange(introduced("1.0.0"), fixed("1.0.2")), nil, "0.9.9", false, nil},
		{"introduced includes", semverRange(introduced("1.0.0"), fixed("1.0.2")), nil, "1.0.0", true, []string{"1.0.2"}},
		{"last_affected includes", semverRange(introduced("0"), lastAffected("2.1.214")), nil, "2.1.214", true, nil},
		{"above last_affected", semverRange(introduced("0"), lastAffected("2.1.214")), nil, "2.1.215", false, nil},
		{"no upper bound", semverRange(introduced("1.2.0")), nil, "99.0.0", true, nil},
		{"first of two pairs", semverRange(introduced("1.0.0"), fixed("1.0.2"), introduced("3.0.0"), fixed("3.2.5")), nil, "1.0.1", true, []string{"1.0.2", "3.2.5"}},
		{"between two pairs", semverRange(introduced("1.0.0"), fixed("1.0.2"), introduced("3.0.0"), fixed("3.2.5")), nil, "2.0.0", false, nil},
		{"second of two pairs", semverRange(introduced("1.0.0"), fixed("1.0.2"), introduced("3.0.0"), fixed("3.2.5")), nil, "3.2.4", true, []string{"3.2.5"}},
		{"after two pairs", semverRange(introduced("1.0.0"), fixed("1.0.2"), introduced("3.0.0"), fixed("3.2.5")), nil, "3.2.5", false, nil},
		{"events out of order are sorted", semverRange(fixed("3.2.5"), introduced("3.0.0"), fixed("1.0.2"), introduced("1.0.0")), nil, "3.1.0", true, []string{"3.2.5"}},
		{"events out of order, between", semverRange(fixed("3.2.5"), introduced("3.0.0"), fixed("1.0.2"), introduced("1.0.0")), nil, "2.0.0", false, nil},
		{"empty range [X, X)", semverRange(introduced("1.0.0"), fixed("1.0.0")), nil, "1.0.0", false, nil},
		{"re-introduced at the fix", semverRange(introduced("1.0.0"), fixed("2.0.0"), introduced("2.0.0"), fixed("3.0.0")), nil, "2.0.0", true, []string{"3.0.0"}},
		{"below limit", semverRange(introduced("0"), limit("2.0.0")), nil, "1.5.0", true, nil},
		{"at limit", semverRange(introduced("0"), limit("2.0.0")), nil, "2.0.0", false, nil},
		{"limit * is infinity", semverRange(introduced("0"), limit("*")), nil, "9.9.9", true, nil},
		{"two ranges, second matches", []vulndb.Range{
			{Type: "SEMVER", Events: []vulndb.Event{introduced("1.0.0"), fixed("1.1.0")}},
			{Type: "SEMVER", Events: []vulndb.Event{introduced("2.0.0"), fixed("2.1.0")}},
		}, nil, "2.0.5", true, []string{"2.1.0"}},
		{"versions[] only", nil, []string{"0.5", "0.6"}, "0.5", true, nil},
		{"not in versions[]", nil, []string{"0.5", "0.6"}, "0.7", false, nil},
		{"versions[] lists it, ranges do not: fixes from the ranges", semverRange(introduced("1.0.0"), fixed("1.2.0")), []string{"0.9.0"}, "0.9.0", true, []string{"1.2.0"}},
		{"GIT range skipped, versions[] still count", []vulndb.Range{{Type: "GIT", Repo: "https://example.com/r", Events: []vulndb.Event{introduced("0"), fixed("abc123")}}}, []string{"1.0.0"}, "1.0.0", true, nil},
		{"GIT range alone matches nothing", []vulndb.Range{{Type: "GIT", Repo: "https://example.com/r", Events: []vulndb.Event{introduced("0"), fixed("abc123")}}}, nil, "1.0.0", false, nil},
		{"duplicate fixed deduped", []vulndb.Range{
			{Type: "SEMVER", Events: []vulndb.Event{introduced("0"), fixed("1.2.0")}},
			{Type: "SEMVER", Events: []vulndb.Event{introduced("1.0.0"), fixed("1.2.0")}},
		}, nil, "1.1.0", true, []string{"1.2.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, gotFixed := evalEntry(t, "npm", tt.ranges, tt.versions, tt.installed)
			if got != tt.want {
				t.Errorf("affected(%s) = %v, want %v", tt.installed, got, tt.want)
			}
			if diff := cmp.Diff(tt.wantFixed, gotFixed); diff != "" {
				t.Errorf("fixed versions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCompileRangeErrors(t *testing.T) {
	cache := parserFor("Debian:12")
	for _, r := range []vulndb.Range{
		{Type: "GIT", Events: []vulndb.Event{introduced("0"), fixed("deadbeef")}},
		{Type: "UNKNOWN", Events: []vulndb.Event{introduced("0")}},
		{Type: "ECOSYSTEM", Events: []vulndb.Event{introduced("0"), fixed("x:1.0-1")}},
	} {
		if _, err := compileRange(r, cache.parse); err == nil {
			t.Errorf("compileRange(%+v) succeeded, want an error", r)
		}
	}
}
