package vulnmatch

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

var fuzzEcosystems = []string{
	"Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.19", "Red Hat:enterprise_linux:9::baseos", "AlmaLinux:9",
	"Rocky Linux:9", "openSUSE:Leap 15.5", "SUSE:Linux Enterprise Server 15 SP5", "Go", "npm", "PyPI",
	"Maven", "crates.io", "RubyGems", "Packagist", "NuGet",
}

// parseFuzzEvents reads "i:1.0;f:2.0;l:3.0;x:4.0" (introduced, fixed,
// last_affected, limit; anything else is an empty event).
func parseFuzzEvents(s string) []vulndb.Event {
	var evs []vulndb.Event
	for part := range strings.SplitSeq(s, ";") {
		k, v, _ := strings.Cut(part, ":")
		switch k {
		case "i":
			evs = append(evs, vulndb.Event{Introduced: v})
		case "f":
			evs = append(evs, vulndb.Event{Fixed: v})
		case "l":
			evs = append(evs, vulndb.Event{LastAffected: v})
		case "x":
			evs = append(evs, vulndb.Event{Limit: v})
		default:
			evs = append(evs, vulndb.Event{})
		}
	}
	return evs
}

// FuzzRangeEval feeds random events and versions, in every supported
// ecosystem, through range evaluation and the whole Match: nothing may
// panic, and evaluation must be deterministic.
func FuzzRangeEval(f *testing.F) {
	f.Add(uint8(0), "i:0;f:3.0.11-1~deb12u2", "3.0.11-1~deb12u1", "ECOSYSTEM")
	f.Add(uint8(2), "i:0;f:3.1.4-r1", "3.1.4_rc1-r5", "ECOSYSTEM")
	f.Add(uint8(3), "i:0;f:1:3.0.7-27.el9", "3.0.7-24.el9", "ECOSYSTEM")
	f.Add(uint8(8), "i:1.22.0-0;f:1.22.1;i:0;f:1.21.8", "1.22rc1", "SEMVER")
	f.Add(uint8(8), "i:2.0.0+incompatible;f:2.7.0-rc.0+incompatible", "0.0.0-20220314234659-1baeb1ce4c0b", "SEMVER")
	f.Add(uint8(9), "f:3.2.5;i:3.0.0;f:1.0.2;i:1.0.0;x:*", "1.0.2-rc.1", "SEMVER")
	f.Add(uint8(10), "i:0;l:1.11.0", "1.0rc1.post2.dev3", "ECOSYSTEM")
	f.Add(uint8(11), "i:2.0-alpha-1;x:2.10", "2.10-SNAPSHOT", "ECOSYSTEM")
	f.Add(uint8(13), "i:0;f:2.2.0", "2.2.0.pre", "ECOSYSTEM")
	f.Add(uint8(14), "i:5.0.0;f:5.4.20", "dev-master", "ECOSYSTEM")
	f.Add(uint8(15), "i:0;f:13.0.1", "13.0.1-beta1", "ECOSYSTEM")
	f.Add(uint8(10), "i:0;f:deadbeef", "1.0", "GIT")
	f.Add(uint8(0), "i:;f:", "", "ECOSYSTEM")
	f.Fuzz(func(t *testing.T, eco uint8, events, installed, typ string) {
		ecosystem := fuzzEcosystems[int(eco)%len(fuzzEcosystems)]
		r := vulndb.Range{Type: typ, Events: parseFuzzEvents(events)}

		cache := parserFor(ecosystem)
		if cr, err := compileRange(r, cache.parse); err == nil {
			if v, err := parseVersion(ecosystem, installed); err == nil {
				got := cr.contains(v)
				if again := cr.contains(v); again != got {
					t.Fatalf("contains(%q) not deterministic", installed)
				}
				_ = fixedStrings(cr.fixedAbove(nil, v))
			}
		}

		adv := &vulndb.Advisory{ID: "FUZZ-1", Affected: []vulndb.Affected{{
			Package:  vulndb.Package{Ecosystem: ecosystem, Name: "p"},
			Ranges:   []vulndb.Range{r},
			Versions: []string{installed},
		}}}
		pkg := inventory.Package{Name: "p", Version: installed, Ecosystem: ecosystem, SourceName: "p", SourceVersion: installed}
		if _, err := Match(context.Background(), newFakeSource(adv), &inventory.Report{Packages: []inventory.Package{pkg}}, Options{Workers: 1}); err != nil {
			t.Fatalf("Match: %v", err)
		}
	})
}
