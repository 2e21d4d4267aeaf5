// Package vulnmatch matches a software inventory against the vulnerability
// database: each package is compared with the advisories of its own
// ecosystem under that ecosystem's version rules (osv-scalibr's semantic
// package) and the OSV range algorithm, and each finding is enriched with
// CVSS, KEV and EPSS data.
//
// Distro packages are matched only against their own release's advisories,
// by source package, so backported fixes are not reported; language
// packages an OS package installed are left to the OS package.
//
// Matching does no I/O beyond the Source it is given.
package vulnmatch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
	"golang.org/x/sync/errgroup"
)

// Options tune Match.
type Options struct {
	// Logger receives debug lines: skipped packages and unparsable
	// installed versions; GIT ranges and ranges with unparsable versions,
	// when the advisory is first compiled (compiled advisories are kept
	// for later calls); invalid CVSS vectors. Nil discards them.
	Logger *slog.Logger
	// Workers is the number of Source lookups run in parallel; 0 means
	// the default, 4.
	Workers int
}

// DefaultOptions returns the options Match uses for zero values: no
// logging, 4 workers.
func DefaultOptions() Options {
	return Options{Logger: slog.New(slog.DiscardHandler), Workers: 4}
}

// summaryMax is the length, in runes, a summary taken from an advisory's
// details is cut to.
const summaryMax = 200

// Match matches every package of rep against src and returns the findings,
// ordered by package (as in rep) then advisory ID, and the count of
// packages that could not be matched, by reason. It fails only when src
// fails or ctx ends.
func Match(ctx context.Context, src Source, rep *inventory.Report, o Options) (*Result, error) {
	if rep == nil {
		rep = &inventory.Report{}
	}
	def := DefaultOptions()
	if o.Logger == nil {
		o.Logger = def.Logger
	}
	if o.Workers <= 0 {
		o.Workers = def.Workers
	}
	res := &Result{Findings: []Finding{}, Skipped: map[string]int{}}
	targets := plan(rep, o.Logger, res.Skipped)
	groups := groupTargets(targets)

	hits := make([][]hit, len(groups))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(o.Workers)
	for i := range groups {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			h, err := matchGroup(gctx, src, &groups[i], targets, o.Logger)
			hits[i] = h
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	res.Findings = assemble(rep, targets, hits, newScorer(o.Logger))
	if err := enrich(ctx, src, res.Findings, o.Workers, o.Logger); err != nil {
		return nil, err
	}
	for i := range res.Findings {
		f := &res.Findings[i]
		f.Severity = findingSeverity(f.CVSS, f.DistroSeverity)
	}
	if len(res.Skipped) == 0 {
		res.Skipped = nil
	}
	return res, nil
}

// group is the targets that share one lookup.
type group struct {
	key     lookupKey
	targets []int
}

func groupTargets(targets []target) []group {
	index := make(map[lookupKey]int)
	var out []group
	for i := range targets {
		k := targets[i].key
		gi, ok := index[k]
		if !ok {
			gi = len(out)
			index[k] = gi
			out = append(out, group{key: k})
		}
		out[gi].targets = append(out[gi].targets, i)
	}
	return out
}

// hit is one advisory affecting one target.
type hit struct {
	target  int
	adv     *vulndb.Advisory
	entries []int    // matched Affected indexes
	fixed   []string // fixed versions above the installed one, in order
}

// matchGroup looks the group's key up and evaluates every advisory
// against each of the group's targets.
func matchGroup(ctx context.Context, src Source, g *group, targets []target, log *slog.Logger) ([]hit, error) {
	advs, err := src.Advisories(ctx, g.key.ecosystem, g.key.name)
	if err != nil {
		return nil, fmt.Errorf("looking up advisories for %s package %s: %w", g.key.ecosystem, g.key.name, err)
	}
	cache := parserFor(g.key.ecosystem)
	seen := make(map[string]bool, len(advs))
	var out []hit
	var fixedBuf []*event
	for _, adv := range advs {
		if adv == nil || !adv.Withdrawn.IsZero() || seen[adv.ID] {
			continue
		}
		seen[adv.ID] = true
		ck := compiledKey{adv.ID, fingerprint(adv), g.key}
		entries, ok := compiled.get(ck)
		if !ok {
			entries = compileEntries(adv, g.key, cache, log)
			compiled.put(ck, entries)
		}
		for _, ti := range g.targets {
			t := &targets[ti]
			var matched []int
			fixedBuf = fixedBuf[:0]
			for i := range entries {
				var ok bool
				listed := adv.Affected[entries[i].index].Versions
				if ok, fixedBuf = entries[i].match(listed, t.version, t.parsed, fixedBuf); ok {
					matched = append(matched, entries[i].index)
				}
			}
			if len(matched) > 0 {
				out = append(out, hit{target: ti, adv: adv, entries: matched, fixed: fixedStrings(fixedBuf)})
			}
		}
	}
	return out, nil
}

// compiled holds advisories' affected entries compiled for a lookup key
// (events parsed and sorted), across calls of Match: the same advisories
// come back scan after scan. The key is the advisory's ID and a
// fingerprint of its affected entries, so a changed record is compiled
// anew and a Source may hand out fresh copies or shared ones. Compiled
// entries are only read. At most 16k are kept.
var compiled = newBoundedCache[compiledKey, []affectedEntry](1 << 14)

type compiledKey struct {
	id          string
	fingerprint uint64
	key         lookupKey
}

var fingerprintSeed = maphash.MakeSeed()

// fingerprint hashes what compileEntries reads of an advisory: packages
// and ranges (versions[] lists are read from the advisory at match time).
func fingerprint(adv *vulndb.Advisory) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	str := func(s string) {
		h.WriteString(s)
		h.WriteByte(0)
	}
	for i := range adv.Affected {
		a := &adv.Affected[i]
		str(a.Package.Ecosystem)
		str(a.Package.Name)
		for _, r := range a.Ranges {
			str(r.Type)
			for _, e := range r.Events {
				str(e.Introduced)
				str(e.Fixed)
				str(e.LastAffected)
				str(e.Limit)
			}
			h.WriteByte(1)
		}
		h.WriteByte(2)
	}
	return h.Sum64()
}

// compileEntries returns the advisory's affected entries for key, with
// their ranges parsed. GIT ranges and ranges with unparsable versions are
// left out, with a debug line.
func compileEntries(adv *vulndb.Advisory, key lookupKey, cache ecosystemParser, log *slog.Logger) []affectedEntry {
	var out []affectedEntry
	for i := range adv.Affected {
		a := &adv.Affected[i]
		if !packageMatches(a.Package, key) {
			continue
		}
		e := affectedEntry{index: i}
		for _, r := range a.Ranges {
			cr, err := compileRange(r, cache.parse)
			if err != nil {
				if errors.Is(err, errGITRange) {
					log.Debug("skipping GIT range", "advisory", adv.ID, "package", a.Package.Name, "repo", r.Repo)
				} else {
					log.Debug("skipping range", "advisory", adv.ID, "package", a.Package.Name, "ecosystem", a.Package.Ecosystem, "err", err)
				}
				continue
			}
			e.ranges = append(e.ranges, cr)
		}
		out = append(out, e)
	}
	return out
}

// packageMatches reports whether an affected entry names the looked-up
// package: a distro entry must have the exact ecosystem ("Debian:12" is
// not "Debian:11"), a language entry the same base ecosystem; names are
// compared normalised.
func packageMatches(p vulndb.Package, key lookupKey) bool {
	if key.distro {
		if p.Ecosystem != key.ecosystem {
			return false
		}
	} else if baseEcosystem(p.Ecosystem) != key.ecosystem {
		return false
	}
	return p.Name == key.name || normalizeName(key.ecosystem, p.Name) == key.name
}

// fixedStrings sorts fixed events by version and returns their distinct
// version strings.
func fixedStrings(evs []*event) []string {
	if len(evs) == 0 {
		return nil
	}
	slices.SortStableFunc(evs, func(a, b *event) int { return compareVersions(a.v, b.v) })
	out := make([]string, 0, len(evs))
	for _, e := range evs {
		if !slices.Contains(out, e.raw) {
			out = append(out, e.raw)
		}
	}
	return out
}

// assemble turns hits into findings: one per (package, advisory ID),
// ordered by package then ID.
func assemble(rep *inventory.Report, targets []target, hits [][]hit, sc *scorer) []Finding {
	type ref struct {
		pkg int
		h   *hit
	}
	var refs []ref
	for gi := range hits {
		for hi := range hits[gi] {
			h := &hits[gi][hi]
			refs = append(refs, ref{targets[h.target].pkg, h})
		}
	}
	slices.SortStableFunc(refs, func(a, b ref) int {
		if c := cmp.Compare(a.pkg, b.pkg); c != 0 {
			return c
		}
		return strings.Compare(a.h.adv.ID, b.h.adv.ID)
	})
	out := make([]Finding, 0, len(refs))
	for i, r := range refs {
		t := &targets[r.h.target]
		if i > 0 && refs[i-1].pkg == r.pkg && refs[i-1].h.adv.ID == r.h.adv.ID {
			// The same advisory through a second lookup of the package
			// (a Red Hat binary and source RPM name).
			f := &out[len(out)-1]
			f.FixedVersions = mergeFixed(t.key.ecosystem, f.FixedVersions, r.h.fixed)
			continue
		}
		out = append(out, newFinding(&rep.Packages[r.pkg], t, *r.h, sc))
	}
	return out
}

func newFinding(p *inventory.Package, t *target, h hit, sc *scorer) Finding {
	adv := h.adv
	f := Finding{
		ID:               adv.ID,
		Aliases:          slices.Clone(adv.Aliases),
		Summary:          summary(adv),
		Package:          *p,
		Ecosystem:        t.key.ecosystem,
		MatchedName:      t.key.name,
		InstalledVersion: t.version,
		FixedVersions:    h.fixed,
		CVSS:             sc.advisoryCVSS(adv, h.entries),
		DistroSeverity:   distroSeverity(adv, h.entries),
	}
	if cves := cveIDs(adv); len(cves) > 0 {
		f.CVE = cves[0]
	}
	for _, r := range adv.References {
		if r.URL != "" && !slices.Contains(f.References, r.URL) {
			f.References = append(f.References, r.URL)
		}
	}
	return f
}

// mergeFixed unions two sorted fixed-version lists.
func mergeFixed(ecosystem string, a, b []string) []string {
	var evs []*event
	for _, s := range slices.Concat(a, b) {
		v, err := parseVersion(ecosystem, s)
		if err != nil {
			continue
		}
		evs = append(evs, &event{kind: evFixed, raw: s, v: v})
	}
	return fixedStrings(evs)
}

// cveIDs are the advisory's CVE IDs: its ID when it is one, then its CVE
// aliases, without repeats.
func cveIDs(adv *vulndb.Advisory) []string {
	var out []string
	if strings.HasPrefix(adv.ID, "CVE-") {
		out = append(out, adv.ID)
	}
	for _, a := range adv.Aliases {
		if strings.HasPrefix(a, "CVE-") && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

// summary is the advisory's summary, else the first line of its details
// cut to summaryMax runes.
func summary(adv *vulndb.Advisory) string {
	if s := strings.TrimSpace(adv.Summary); s != "" {
		return s
	}
	rest := adv.Details
	for rest != "" {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		n := 0
		for i := range line {
			if n == summaryMax-1 && utf8.RuneCountInString(line[i:]) > 1 {
				return strings.TrimSpace(line[:i]) + "…"
			}
			n++
		}
		return line
	}
	return ""
}

// cveInfo is what the Source knows about one CVE.
type cveInfo struct {
	needCVSS bool
	kev      *vulndb.KEV
	epss     *vulndb.EPSS
	cvss     []vulndb.CVSS
}

// enrich adds KEV, EPSS and, where the advisory had no vector, NVD's CVSS
// to the findings. Each CVE is looked up once; an advisory's other CVE
// aliases are tried when its first CVE has no data.
func enrich(ctx context.Context, src Source, fs []Finding, workers int, log *slog.Logger) error {
	infos := make(map[string]*cveInfo)
	cvesOf := make([][]string, len(fs))
	for i := range fs {
		f := &fs[i]
		cves := cveIDs(&vulndb.Advisory{ID: f.ID, Aliases: f.Aliases})
		cvesOf[i] = cves
		for _, c := range cves {
			info := infos[c]
			if info == nil {
				info = &cveInfo{}
				infos[c] = info
			}
			if f.CVSS == nil {
				info.needCVSS = true
			}
		}
	}
	ids := make([]string, 0, len(infos))
	for id := range infos {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for _, id := range ids {
		info := infos[id]
		g.Go(func() error {
			var err error
			if info.kev, err = src.KEV(gctx, id); err != nil {
				return fmt.Errorf("looking up KEV entry for %s: %w", id, err)
			}
			if info.epss, err = src.EPSS(gctx, id); err != nil {
				return fmt.Errorf("looking up EPSS score for %s: %w", id, err)
			}
			if info.needCVSS {
				if info.cvss, err = src.CVSS(gctx, id); err != nil {
					return fmt.Errorf("looking up CVSS for %s: %w", id, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	sc := newScorer(log)
	for i := range fs {
		f := &fs[i]
		for _, c := range cvesOf[i] {
			info := infos[c]
			if f.KEV == nil && info.kev != nil {
				f.KEV = info.kev
			}
			if f.EPSS == nil && info.epss != nil {
				f.EPSS = info.epss
			}
		}
		if f.CVSS == nil {
			for _, c := range cvesOf[i] {
				if best := sc.nvdCVSS(infos[c].cvss); best != nil {
					f.CVSS = best
					break
				}
			}
		}
	}
	return nil
}
