package compliance

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DefaultStateDir is where runs are kept: <dir>/<benchmark>/<time>.json.
const DefaultStateDir = "/var/lib/vigil/bench"

// runTimeFormat is RFC 3339 with fixed-width nanoseconds, so that file
// names sort in time order.
const runTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Save writes a report as <dir>/<benchmark>/<time>.json (created 0700,
// written 0600 through a temporary file and a rename) and returns the
// path.
func Save(dir string, r *Report) (string, error) {
	if r.Benchmark == "" || strings.ContainsAny(r.Benchmark, `/\`) || r.Benchmark == "." || r.Benchmark == ".." {
		return "", fmt.Errorf("saving a run: bad benchmark name %q", r.Benchmark)
	}
	d := filepath.Join(dir, r.Benchmark)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return "", fmt.Errorf("saving a run: %w", err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(d, r.Time.UTC().Format(runTimeFormat)+".json")
	tmp, err := os.CreateTemp(d, ".run-*")
	if err != nil {
		return "", fmt.Errorf("saving a run: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", fmt.Errorf("saving a run: %w", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("saving a run: %w", err)
	}
	return p, nil
}

// Runs lists the saved runs of benchmark, oldest first. Files whose names
// are not run times are ignored.
func Runs(dir, benchmark string) ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(dir, benchmark))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	type run struct {
		t time.Time
		p string
	}
	var runs []run
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".json") {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSuffix(name, ".json"))
		if err != nil {
			continue
		}
		runs = append(runs, run{t, filepath.Join(dir, benchmark, name)})
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].t.Before(runs[j].t) })
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.p
	}
	return out, nil
}

// LoadReport reads a saved run.
func LoadReport(p string) (*Report, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s is not a saved run: %w", p, err)
	}
	return &r, nil
}

// Latest returns the newest saved run of benchmark, or nil when there is
// none.
func Latest(dir, benchmark string) (*Report, error) {
	runs, err := Runs(dir, benchmark)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	return LoadReport(runs[len(runs)-1])
}

// Change is one check whose outcome differs between two runs.
type Change struct {
	Key    string `json:"key"` // Result.Key()
	ID     string `json:"id"`
	Title  string `json:"title"`
	Target string `json:"target,omitempty"`
	From   string `json:"from,omitempty"` // status in the previous run
	To     string `json:"to,omitempty"`   // status now
	// Evidence is what the latest run saw (the previous run's for a
	// removed check).
	Evidence string `json:"evidence,omitempty"`
}

// Drift is how a run differs from the previous one.
type Drift struct {
	Previous  time.Time `json:"previous"`
	Current   time.Time `json:"current"`
	Regressed []Change  `json:"regressed"` // pass→warn/fail, warn→fail
	Improved  []Change  `json:"improved"`  // fail/warn→pass, fail→warn
	Changed   []Change  `json:"changed"`   // to or from error or manual
	Added     []Change  `json:"added"`     // checks or targets new in this run
	Removed   []Change  `json:"removed"`   // checks or targets gone since
}

// Empty reports whether nothing changed.
func (d *Drift) Empty() bool {
	return len(d.Regressed)+len(d.Improved)+len(d.Changed)+len(d.Added)+len(d.Removed) == 0
}

func severity(s string) (int, bool) {
	switch s {
	case Pass:
		return 0, true
	case Warn:
		return 1, true
	case Fail:
		return 2, true
	}
	return 0, false
}

// Compare says what changed from prev to cur. Results are matched by
// check ID and target (a container's results by its name and ID).
func Compare(prev, cur *Report) *Drift {
	d := &Drift{Previous: prev.Time, Current: cur.Time}
	type k struct{ id, target string }
	old := map[k]Result{}
	for _, r := range prev.Results {
		old[k{r.ID, r.Target}] = r
	}
	seen := map[k]bool{}
	for _, r := range cur.Results {
		key := k{r.ID, r.Target}
		seen[key] = true
		c := Change{Key: r.Key(), ID: r.ID, Title: r.Title, Target: r.Target, To: r.Status, Evidence: r.Evidence}
		o, ok := old[key]
		if !ok {
			d.Added = append(d.Added, c)
			continue
		}
		if o.Status == r.Status {
			continue
		}
		c.From = o.Status
		a, okA := severity(o.Status)
		b, okB := severity(r.Status)
		switch {
		case !okA || !okB:
			d.Changed = append(d.Changed, c)
		case b > a:
			d.Regressed = append(d.Regressed, c)
		default:
			d.Improved = append(d.Improved, c)
		}
	}
	for _, r := range prev.Results {
		if !seen[k{r.ID, r.Target}] {
			d.Removed = append(d.Removed, Change{Key: r.Key(), ID: r.ID, Title: r.Title, Target: r.Target, From: r.Status, Evidence: r.Evidence})
		}
	}
	for _, l := range [][]Change{d.Regressed, d.Improved, d.Changed, d.Added, d.Removed} {
		sort.SliceStable(l, func(i, j int) bool {
			if l[i].ID != l[j].ID {
				return lessID(l[i].ID, l[j].ID)
			}
			return l[i].Target < l[j].Target
		})
	}
	return d
}

// Prune removes the oldest kept runs of benchmark beyond the newest keep
// ones (keep <= 0 keeps all) and returns how many it removed.
func Prune(dir, benchmark string, keep int) (int, error) {
	if keep <= 0 {
		return 0, nil
	}
	runs, err := Runs(dir, benchmark)
	if err != nil || len(runs) <= keep {
		return 0, err
	}
	n := 0
	for _, p := range runs[:len(runs)-keep] {
		if err := os.Remove(p); err != nil {
			return n, fmt.Errorf("pruning runs: %w", err)
		}
		n++
	}
	return n, nil
}
