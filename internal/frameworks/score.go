package frameworks

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/compliance"
)

// ReportSchema names the JSON report's format.
const ReportSchema = "vigil.compliance-report/v1"

// Requirement statuses.
const (
	Met        = "met"
	NotMet     = "not-met"
	Partial    = "partial"
	NoEvidence = "no-evidence"
)

// Item statuses beyond compliance's pass/fail/warn/manual/error: none. An
// item is evaluated when it passed, failed or warned; manual and error
// items are listed but not scored.

// Item is one piece of evidence bearing on a requirement.
type Item struct {
	// Kind is check, alert, scan, fim, audit or monitoring.
	Kind string `json:"kind"`
	// Key is the evidence key the mapping matched ("cis-docker:5.4",
	// "rule:Terminal shell in container", "finding:kev").
	Key         string `json:"key"`
	Title       string `json:"title"`
	Status      string `json:"status"`
	Target      string `json:"target,omitempty"`
	Evidence    string `json:"evidence,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Count is how many occurrences an alert item stands for.
	Count int `json:"count,omitempty"`
	// Via names the mapping entries that tie this item to the requirement.
	Via []string `json:"via"`
}

// MappingRef is a mapping entry as a report cites it.
type MappingRef struct {
	ID     string `json:"id"`
	Basis  string `json:"basis"`
	Source string `json:"source,omitempty"`
	Note   string `json:"note"`
}

// Requirement is one requirement's score and the evidence behind it.
type Requirement struct {
	ID        string `json:"id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	Passed    int    `json:"passed"`
	Evaluated int    `json:"evaluated"`
	// Score is Passed/Evaluated (0 when nothing was evaluated).
	Score    float64      `json:"score"`
	Items    []Item       `json:"evidence"`
	Mappings []MappingRef `json:"mappings"`
}

// Summary counts requirements by status.
type Summary struct {
	Requirements int `json:"requirements"`
	Met          int `json:"met"`
	NotMet       int `json:"not_met"`
	Partial      int `json:"partial"`
	NoEvidence   int `json:"no_evidence"`
	// Score is Met over the requirements with evidence (0 when none).
	Score float64 `json:"score"`
	// Passed and Evaluated add up the requirements' item counts.
	Passed    int `json:"passed"`
	Evaluated int `json:"evaluated"`
}

// Report is one framework's compliance report.
type Report struct {
	Schema          string        `json:"schema"`
	Framework       string        `json:"framework"`
	FrameworkName   string        `json:"framework_name"`
	FrameworkSource string        `json:"framework_source"`
	DerivedFrom     string        `json:"derived_from,omitempty"`
	Generated       time.Time     `json:"generated"`
	Host            string        `json:"host"`
	Tool            string        `json:"tool,omitempty"`
	Sources         []string      `json:"sources"`
	Hosts           []string      `json:"evidence_hosts"`
	Summary         Summary       `json:"summary"`
	Requirements    []Requirement `json:"requirements"`
	// Unmapped lists evidence keys no mapping entry covers at all: a gap
	// in the mapping data, shown so that it is noticed.
	Unmapped []string `json:"unmapped"`
}

// Options are the report's header fields.
type Options struct {
	Host string    // where the report was generated
	Time time.Time // generation time; zero: now
	Tool string    // "vigil 1.2.3"
}

// piece is an evidence item before it is attached to requirements.
type piece struct {
	item Item
	keys []string // mapping keys it is looked up under
}

// Score builds framework fw's report from ev.
func (c *Catalog) Score(fw string, ev *Evidence, o Options) (*Report, error) {
	f, err := c.Framework(fw)
	if err != nil {
		return nil, err
	}
	if o.Time.IsZero() {
		o.Time = time.Now()
	}
	rep := &Report{Schema: ReportSchema, Framework: f.ID, FrameworkName: f.Name, FrameworkSource: f.Source,
		DerivedFrom: f.DerivedFrom, Generated: o.Time.UTC(), Host: o.Host, Tool: o.Tool,
		Sources: append([]string{}, ev.Sources...), Hosts: []string{}, Unmapped: []string{}}
	reqs := c.Requirements(fw)
	byID := map[string]*Requirement{}
	rep.Requirements = make([]Requirement, len(reqs))
	for i, r := range reqs {
		rep.Requirements[i] = Requirement{ID: r.ID, Title: r.Title, Items: []Item{}, Mappings: []MappingRef{}}
		byID[r.ID] = &rep.Requirements[i]
	}
	hosts := map[string]bool{}
	unmapped := map[string]bool{}
	for _, p := range pieces(ev, hosts) {
		any := false
		refs := map[string]map[string]bool{} // requirement → mapping IDs
		for _, k := range p.keys {
			if len(c.Lookup(k)) > 0 {
				any = true
			}
			for id, ms := range c.RefsFor(fw, k) {
				if refs[id] == nil {
					refs[id] = map[string]bool{}
				}
				for _, m := range ms {
					refs[id][m.ID] = true
				}
			}
		}
		if !any {
			unmapped[p.keys[0]] = true
		}
		for id, ms := range refs {
			r := byID[id]
			if r == nil {
				continue
			}
			it := p.item
			it.Via = sortedKeys(ms)
			r.Items = append(r.Items, it)
		}
	}
	mref := map[string]*Mapping{}
	for _, m := range c.Mappings {
		mref[m.ID] = m
	}
	for i := range rep.Requirements {
		r := &rep.Requirements[i]
		score(r)
		// The mappings that can bear on the requirement, whether or not
		// evidence arrived through them: the auditor sees the basis.
		for _, m := range c.Mappings {
			src := fw
			if f.DerivedFrom != "" {
				src = f.DerivedFrom
			}
			for _, id := range m.Refs[src] {
				if id == r.ID {
					r.Mappings = append(r.Mappings, MappingRef{ID: m.ID, Basis: m.Basis, Source: m.Source, Note: m.Note})
				}
			}
		}
		s := &rep.Summary
		s.Requirements++
		s.Passed += r.Passed
		s.Evaluated += r.Evaluated
		switch r.Status {
		case Met:
			s.Met++
		case NotMet:
			s.NotMet++
		case Partial:
			s.Partial++
		default:
			s.NoEvidence++
		}
	}
	if with := rep.Summary.Requirements - rep.Summary.NoEvidence; with > 0 {
		rep.Summary.Score = float64(rep.Summary.Met) / float64(with)
	}
	rep.Hosts = sortedKeys(hosts)
	rep.Unmapped = sortedKeys(unmapped)
	return rep, nil
}

// score sets a requirement's counts and status from its items: any failed
// item → not met; else any warning → partial; else met when something was
// evaluated; else no evidence. Failed items sort first.
func score(r *Requirement) {
	fail, warn := 0, 0
	for _, it := range r.Items {
		switch it.Status {
		case compliance.Pass:
			r.Passed++
			r.Evaluated++
		case compliance.Fail:
			fail++
			r.Evaluated++
		case compliance.Warn:
			warn++
			r.Evaluated++
		}
	}
	switch {
	case fail > 0:
		r.Status = NotMet
	case warn > 0:
		r.Status = Partial
	case r.Evaluated > 0:
		r.Status = Met
	default:
		r.Status = NoEvidence
	}
	if r.Evaluated > 0 {
		r.Score = float64(r.Passed) / float64(r.Evaluated)
	}
	rank := map[string]int{compliance.Fail: 0, compliance.Warn: 1, compliance.Error: 2, compliance.Manual: 3, compliance.Pass: 4}
	sort.SliceStable(r.Items, func(i, j int) bool {
		if a, b := rank[r.Items[i].Status], rank[r.Items[j].Status]; a != b {
			return a < b
		}
		return r.Items[i].Key < r.Items[j].Key
	})
}

// pieces turns the evidence into items with their lookup keys.
func pieces(ev *Evidence, hosts map[string]bool) []piece {
	var out []piece
	for _, rep := range ev.Bench {
		if rep.Host != "" {
			hosts[rep.Host] = true
		}
		for _, r := range rep.Results {
			if r.Benchmark == "" {
				r.Benchmark = rep.Benchmark
			}
			ev := r.Evidence
			if r.Status == compliance.Error && r.Error != "" {
				ev = strings.TrimSpace(ev + " (could not be checked: " + r.Error + ")")
			}
			target := r.Target
			if target == "" {
				target = rep.Host
			}
			out = append(out, piece{keys: []string{r.Key()}, item: Item{Kind: "check", Key: r.Key(),
				Title: r.Title, Status: r.Status, Target: target, Evidence: ev, Remediation: r.Remediation}})
		}
	}
	out = append(out, alertPieces(ev, hosts)...)
	for _, s := range ev.Scans {
		out = append(out, scanPieces(s)...)
	}
	for _, f := range ev.FIM {
		if f.Host != "" {
			hosts[f.Host] = true
		}
		it := Item{Kind: "fim", Key: KeyFinding + FindingFIMChange, Title: "File integrity check", Target: f.Host}
		n := f.Added + f.Removed + f.Changed
		it.Evidence = fmt.Sprintf("%d added, %d removed, %d changed", f.Added, f.Removed, f.Changed)
		if len(f.Sample) > 0 {
			it.Evidence += " (" + strings.Join(f.Sample, ", ") + ")"
		}
		switch {
		case f.Tampered:
			it.Status = compliance.Fail
			it.Evidence = "the baseline database failed its integrity check (tampered); " + it.Evidence
			it.Remediation = "Investigate who changed the baseline; re-initialise it from a trusted state."
		case n > 0 || f.Errors > 0:
			it.Status = compliance.Warn
			if f.Errors > 0 {
				it.Evidence += fmt.Sprintf(", %d paths could not be checked", f.Errors)
			}
			it.Remediation = "Review each change against approved change records; update the baseline (vigil fim update) only for approved changes."
		default:
			it.Status = compliance.Pass
		}
		out = append(out, piece{keys: []string{it.Key}, item: it})
	}
	if ev.AuditEntries > 0 {
		out = append(out, piece{keys: []string{KeyFinding + FindingAuditLog}, item: Item{Kind: "audit",
			Key: KeyFinding + FindingAuditLog, Title: "Vigil audit log", Status: compliance.Pass,
			Evidence: fmt.Sprintf("%d audit entries of operator actions recorded by the server", ev.AuditEntries)}})
	}
	return out
}

func scanPieces(s Scan) []piece {
	var out []piece
	v := Item{Kind: "scan", Key: KeyFinding + FindingVulnerability, Title: "Vulnerability scan", Target: s.Target,
		Evidence: fmt.Sprintf("%d findings: %d critical, %d high, %d medium, %d low", s.Total, s.Critical, s.High, s.Medium, s.Low)}
	if s.Critical+s.High > 0 {
		v.Status = compliance.Fail
		v.Remediation = "Update the affected packages or rebuild the image; `vigil scan` lists the fixed versions."
	} else {
		v.Status = compliance.Pass
	}
	out = append(out, piece{keys: []string{v.Key}, item: v})
	k := Item{Kind: "scan", Key: KeyFinding + FindingKEV, Title: "Known exploited vulnerabilities (CISA KEV)", Target: s.Target,
		Evidence: fmt.Sprintf("%d findings in CISA's KEV catalog", s.KEV)}
	if s.KEV > 0 {
		k.Status = compliance.Fail
		k.Remediation = "Remediate KEV findings first, by the catalog's due date."
	} else {
		k.Status = compliance.Pass
	}
	out = append(out, piece{keys: []string{k.Key}, item: k})
	if s.Secrets > 0 {
		out = append(out, piece{keys: []string{KeyFinding + FindingSecret}, item: Item{Kind: "scan", Key: KeyFinding + FindingSecret,
			Title: "Embedded secrets", Target: s.Target, Status: compliance.Fail, Evidence: fmt.Sprintf("%d secrets found", s.Secrets),
			Remediation: "Remove the credential from the image and rotate it."}})
	}
	return out
}

// alertPieces groups alerts by rule: one item per rule, counting against
// the requirements its rule and tactics map to; FIM and drift alerts count
// as their finding type; responses taken are incident handling; and the
// stream itself shows runtime monitoring is deployed.
func alertPieces(ev *Evidence, hosts map[string]bool) []piece {
	type group struct {
		a           Alert
		count       int
		first, last time.Time
		hosts       map[string]bool
		responses   []string
	}
	groups := map[string]*group{}
	var order []string
	total, responses := 0, 0
	var first, last time.Time
	for _, a := range ev.Alerts {
		if a.Host != "" {
			hosts[a.Host] = true
		}
		total += a.Count
		if first.IsZero() || a.Time.Before(first) {
			first = a.Time
		}
		if a.Time.After(last) {
			last = a.Time
		}
		key := alertFindingType(&a) + "\x00" + a.Rule
		g := groups[key]
		if g == nil {
			g = &group{a: a, first: a.Time, last: a.Time, hosts: map[string]bool{}}
			groups[key] = g
			order = append(order, key)
		}
		g.count += a.Count
		if a.Time.Before(g.first) {
			g.first = a.Time
		}
		if a.Time.After(g.last) {
			g.last = a.Time
		}
		if a.Host != "" {
			g.hosts[a.Host] = true
		}
		for _, r := range a.Responses {
			responses++
			if len(g.responses) < 5 {
				g.responses = append(g.responses, r)
			}
		}
	}
	var out []piece
	for _, k := range order {
		g := groups[k]
		a := g.a
		ev := fmt.Sprintf("%d× between %s and %s", g.count, g.first.UTC().Format(time.RFC3339), g.last.UTC().Format(time.RFC3339))
		if len(g.hosts) > 0 {
			ev += " on " + strings.Join(sortedKeys(g.hosts), ", ")
		}
		if a.Output != "" {
			ev += "; e.g. " + a.Output
		}
		it := Item{Kind: "alert", Title: a.Rule, Count: g.count, Evidence: ev, Target: a.Container}
		var keys []string
		switch ft := alertFindingType(&a); ft {
		case FindingFIMChange:
			it.Key, it.Status = KeyFinding+ft, compliance.Warn
			it.Remediation = "Review the change and who made it against approved change records."
			keys = []string{it.Key}
		case FindingContainerDrift:
			it.Key, it.Status = KeyFinding+ft, compliance.Fail
			it.Remediation = "Rebuild and redeploy the container from its image; changes belong in the image."
			keys = []string{it.Key}
		default:
			it.Key, it.Status = KeyRule+a.Rule, compliance.Fail
			it.Remediation = "Investigate the alert and handle it as an incident; tune the rule only with a recorded reason."
			keys = []string{it.Key}
			for _, t := range a.Tactics {
				id, _, _ := strings.Cut(t, " ")
				keys = append(keys, KeyTactic+id)
			}
		}
		out = append(out, piece{keys: keys, item: it})
		if len(g.responses) > 0 {
			out = append(out, piece{keys: []string{KeyFinding + FindingResponseAction}, item: Item{Kind: "alert",
				Key: KeyFinding + FindingResponseAction, Title: "Response to " + a.Rule, Status: compliance.Pass,
				Evidence: strings.Join(g.responses, "; ")}})
		}
	}
	if ev.AlertsGiven {
		txt := fmt.Sprintf("%d alerts from %d rules", total, len(groups))
		if total > 0 {
			txt += fmt.Sprintf(" between %s and %s", first.UTC().Format(time.RFC3339), last.UTC().Format(time.RFC3339))
		}
		if responses > 0 {
			txt += fmt.Sprintf("; %d responses taken", responses)
		}
		out = append(out, piece{keys: []string{KeyFinding + FindingRuntimeMonitoring}, item: Item{Kind: "monitoring",
			Key: KeyFinding + FindingRuntimeMonitoring, Title: "Runtime detection deployed and reporting", Status: compliance.Pass, Evidence: txt}})
	}
	return out
}
