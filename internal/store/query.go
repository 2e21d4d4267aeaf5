package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Row limits: the default and the most one call returns.
const (
	defaultLimit = 100
	maxAlerts    = 1000
	maxRows      = 10000
)

func clamp(limit, most int) int {
	if limit <= 0 {
		return defaultLimit
	}
	return min(limit, most)
}

// query runs a read on the read pool.
func (s *db) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	rows, err := s.r.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", s.name, err)
	}
	return rows, nil
}

// collect scans every row with scan.
func collect[T any](rows *sql.Rows, scan func(*sql.Rows, *T) error) ([]T, error) {
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := scan(rows, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// one returns the single row of a query, or ErrNotFound naming what.
func one[T any](s *db, ctx context.Context, what string, scan func(*sql.Rows, *T) error, q string, args ...any) (T, error) {
	var zero T
	rows, err := s.query(ctx, q, args...)
	if err != nil {
		return zero, err
	}
	xs, err := collect(rows, scan)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	if len(xs) == 0 {
		return zero, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return xs[0], nil
}

func scanAlert(r *sql.Rows, a *Alert) error {
	return r.Scan(&a.ID, &a.AgentID, &a.Host, timeCol{&a.Time}, timeCol{&a.LastSeen}, &a.Count, &a.Rule, &a.Priority,
		&a.Severity, &a.Source, jsonCol{&a.Tactics}, jsonCol{&a.Techniques}, &a.Output, &a.ContainerID, &a.ContainerName,
		&a.Image, &a.Namespace, &a.Pod, &a.Class, &a.IncidentID, &a.DedupKey, jsonCol{&a.Responses}, rawCol{&a.Raw})
}

// where builds a WHERE clause from conditions joined by AND.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

func severityFilter(f AlertFilter) (int, bool) {
	if f.HasSeverity {
		return f.MaxSeverity, f.MaxSeverity >= 0
	}
	return f.MaxSeverity, f.MaxSeverity > 0
}

// Alerts lists alerts newest first. Since is inclusive, Until exclusive.
func (s *db) Alerts(ctx context.Context, f AlertFilter) ([]Alert, error) {
	var w where
	tcol := "time"
	if (!f.Since.IsZero() || !f.Until.IsZero()) && !s.d.dollar {
		wide, err := s.wideRange(ctx, f.Since, f.Until)
		if err != nil {
			return nil, err
		}
		if wide {
			// "+time" keeps SQLite from the time index, which would have
			// it sort every row of the range by ID.
			tcol = "+time"
		}
	}
	if !f.Since.IsZero() {
		w.add(tcol+" >= ?", s.d.ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add(tcol+" < ?", s.d.ts(f.Until))
	}
	if sev, ok := severityFilter(f); ok {
		w.add("severity <= ?", sev)
	}
	if f.Workload != "" {
		w.add("(substr(container_id, 1, ?) = ? OR container_name = ? OR image = ? OR pod = ? OR class = ? OR host = ?)",
			utf8.RuneCountInString(f.Workload), f.Workload, f.Workload, f.Workload, f.Workload, f.Workload, f.Workload)
	}
	if f.Rule != "" {
		w.add("rule = ?", f.Rule)
	}
	if f.AgentID != "" {
		w.add("agent_id = ?", f.AgentID)
	}
	if f.IncidentID != "" {
		w.add("incident_id = ?", f.IncidentID)
	}
	if f.Before != "" {
		w.add("id < ?", f.Before)
	}
	rows, err := s.query(ctx, "SELECT "+alertCols+" FROM alerts"+w.String()+" ORDER BY id DESC LIMIT ?",
		append(w.args, clamp(f.Limit, maxAlerts))...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAlert)
}

// wideRangeRows is where a time range becomes wide: SQLite then walks the
// alerts newest first and filters by time, instead of reading the range
// through the time index and sorting it by ID.
const wideRangeRows = 2000

// wideRange says whether at least wideRangeRows alerts fall in the time
// range (counted through the time index, stopping there). SQLite's
// planner has no statistics to tell, and prefers the index always: one
// second and more for "the last 24 hours" of a busy store.
func (s *db) wideRange(ctx context.Context, since, until time.Time) (bool, error) {
	var w where
	if !since.IsZero() {
		w.add("time >= ?", s.d.ts(since))
	}
	if !until.IsZero() {
		w.add("time < ?", s.d.ts(until))
	}
	var n int
	err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM alerts"+w.String()+" LIMIT ?)", append(w.args, wideRangeRows)...).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("store %s: %w", s.name, err)
	}
	return n >= wideRangeRows, nil
}

func (s *db) Alert(ctx context.Context, id string) (Alert, error) {
	return one(s, ctx, "alert "+id, scanAlert, "SELECT "+alertCols+" FROM alerts WHERE id = ?", id)
}

const topN = 10

// AlertStats summarises alerts whose Time is at or after since, at the
// resolution of a minute. It reads the counts Apply keeps per minute and
// per hour (alert_counts, alert_counts_hour), never the alert rows, so its
// cost does not grow with the number of alerts: whole hours come from the
// hourly counts, the minutes before since's first whole hour from the
// per-minute ones. since is rounded down to its minute, bucket up to whole
// minutes (default an hour). Rows are counted (one per deduplicated alert,
// whatever its Count). Buckets are aligned to multiples of bucket since
// the Unix epoch and run without gaps from since's bucket to the newest
// one holding alerts.
func (s *db) AlertStats(ctx context.Context, since time.Time, bucket time.Duration) (AlertStats, error) {
	st := AlertStats{ByPriority: map[string]int{}, Buckets: []Bucket{}, TopRules: []Count{}, TopTechniques: []Count{}, TopWorkloads: []Count{}}
	if bucket <= 0 {
		bucket = time.Hour
	}
	bm := max(int64(1), int64((bucket+time.Minute-1)/time.Minute)) // minutes a bucket
	fail := func(err error) (AlertStats, error) { return AlertStats{}, fmt.Errorf("alert stats: %w", err) }

	// Buckets by priority; the per-priority totals follow from them.
	sub, args := countsSince("p", since, bm%60 == 0)
	rows, err := s.query(ctx, "SELECT minute / ?, name, CAST(sum(n) AS BIGINT) FROM ("+sub+") u GROUP BY 1, 2 ORDER BY 1",
		append([]any{bm}, args...)...)
	if err != nil {
		return fail(err)
	}
	type bp struct {
		b    int64
		prio string
		n    int
	}
	bps, err := collect(rows, func(r *sql.Rows, v *bp) error { return r.Scan(&v.b, &v.prio, &v.n) })
	if err != nil {
		return fail(err)
	}
	byBucket := map[int64]map[string]int{}
	var first, last int64
	for i, v := range bps {
		if i == 0 || v.b < first {
			first = v.b
		}
		if i == 0 || v.b > last {
			last = v.b
		}
		if byBucket[v.b] == nil {
			byBucket[v.b] = map[string]int{}
		}
		byBucket[v.b][v.prio] += v.n
		st.ByPriority[v.prio] += v.n
		st.Total += v.n
	}
	start := func(k int64) time.Time { return time.Unix(k*bm*60, 0).UTC() }
	if len(bps) > 0 {
		if !since.IsZero() {
			first = min(first, floorDiv(floorDiv(since.Unix(), 60), bm))
		}
		if last-first > 10000 { // too many to fill: only the buckets holding alerts
			keys := make([]int64, 0, len(byBucket))
			for k := range byBucket {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
			for _, k := range keys {
				st.Buckets = append(st.Buckets, Bucket{Start: start(k), Counts: byBucket[k]})
			}
		} else {
			for k := first; k <= last; k++ {
				c := byBucket[k]
				if c == nil {
					c = map[string]int{}
				}
				st.Buckets = append(st.Buckets, Bucket{Start: start(k), Counts: c})
			}
		}
	}

	scanCount := func(r *sql.Rows, c *Count) error { return r.Scan(&c.Name, &c.Count) }
	for _, top := range []struct {
		dim string
		dst *[]Count
	}{{"r", &st.TopRules}, {"w", &st.TopWorkloads}, {"t", &st.TopTechniques}} {
		sub, args := countsSince(top.dim, since, true)
		rows, err = s.query(ctx, "SELECT name, CAST(sum(n) AS BIGINT) FROM ("+sub+") u GROUP BY name ORDER BY 2 DESC, 1 LIMIT ?", append(args, topN)...)
		if err != nil {
			return fail(err)
		}
		if *top.dst, err = collect(rows, scanCount); err != nil {
			return fail(err)
		}
		if *top.dst == nil {
			*top.dst = []Count{}
		}
	}
	return st, nil
}

// countsSince selects (minute, name, n) rows of one dimension's counts from
// since's minute on: whole hours from the hourly counts when hours may be
// used, the rest from the per-minute counts.
func countsSince(dim string, since time.Time, hours bool) (string, []any) {
	const (
		byHour   = "SELECT hour * 60 AS minute, name, n FROM alert_counts_hour WHERE dim = ?"
		byMinute = "SELECT minute, name, n FROM alert_counts WHERE dim = ?"
	)
	switch {
	case since.IsZero() && hours:
		return byHour, []any{dim}
	case since.IsZero():
		return byMinute, []any{dim}
	case !hours:
		return byMinute + " AND minute >= ?", []any{dim, floorDiv(since.Unix(), 60)}
	}
	m := floorDiv(since.Unix(), 60)
	h := floorDiv(m+59, 60) // the first whole hour
	return byHour + " AND hour >= ? UNION ALL " + byMinute + " AND minute >= ? AND minute < ?", []any{dim, h, dim, m, h * 60}
}

// floorDiv is a / b rounded towards minus infinity.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// top returns the n largest counts, ties by name.
func top(m map[string]int, n int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Count: v})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Name < out[j].Name
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}

func scanIncident(r *sql.Rows, n *Incident) error {
	return r.Scan(&n.ID, &n.AgentID, &n.Host, &n.WorkloadKey, &n.Title, timeCol{&n.FirstSeen}, timeCol{&n.LastSeen},
		&n.AlertCount, &n.Severity, &n.Priority, jsonCol{&n.Tactics}, jsonCol{&n.Techniques})
}

func (s *db) OpenIncidents(ctx context.Context, agentID string, since time.Time) ([]Incident, error) {
	rows, err := s.query(ctx, "SELECT "+incidentCols+" FROM incidents WHERE agent_id = ? AND last_seen > ? ORDER BY last_seen DESC, id DESC",
		agentID, s.d.ts(since))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanIncident)
}

// Incidents lists incidents newest (highest ID) first. The filter's times
// select incidents overlapping [Since, Until); Workload matches the
// workload key (prefix) or host; Rule keeps incidents with an alert of
// that rule.
func (s *db) Incidents(ctx context.Context, f AlertFilter) ([]Incident, error) {
	var w where
	if !f.Since.IsZero() {
		w.add("last_seen >= ?", s.d.ts(f.Since))
	}
	if !f.Until.IsZero() {
		w.add("first_seen < ?", s.d.ts(f.Until))
	}
	if sev, ok := severityFilter(f); ok {
		w.add("severity <= ?", sev)
	}
	if f.Workload != "" {
		w.add("(substr(workload_key, 1, ?) = ? OR host = ?)", utf8.RuneCountInString(f.Workload), f.Workload, f.Workload)
	}
	if f.Rule != "" {
		w.add("id IN (SELECT incident_id FROM alerts WHERE rule = ?)", f.Rule)
	}
	if f.AgentID != "" {
		w.add("agent_id = ?", f.AgentID)
	}
	if f.IncidentID != "" {
		w.add("id = ?", f.IncidentID)
	}
	if f.Before != "" {
		w.add("id < ?", f.Before)
	}
	rows, err := s.query(ctx, "SELECT "+incidentCols+" FROM incidents"+w.String()+" ORDER BY id DESC LIMIT ?",
		append(w.args, clamp(f.Limit, maxAlerts))...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanIncident)
}

func (s *db) Incident(ctx context.Context, id string) (Incident, error) {
	return one(s, ctx, "incident "+id, scanIncident, "SELECT "+incidentCols+" FROM incidents WHERE id = ?", id)
}

func scanAsset(r *sql.Rows, a *Asset) error {
	return r.Scan(&a.Kind, &a.ID, &a.AgentID, &a.Name, jsonCol{&a.Labels}, rawCol{&a.Data}, timeCol{&a.FirstSeen}, timeCol{&a.LastSeen}, &a.Gone)
}

func (s *db) Assets(ctx context.Context, kind string) ([]Asset, error) {
	var w where
	if kind != "" {
		w.add("kind = ?", kind)
	}
	rows, err := s.query(ctx, "SELECT "+assetCols+" FROM assets"+w.String()+" ORDER BY kind, name, id", w.args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAsset)
}

func (s *db) Asset(ctx context.Context, kind, id string) (Asset, error) {
	return one(s, ctx, kind+" "+id, scanAsset, "SELECT "+assetCols+" FROM assets WHERE kind = ? AND id = ?", kind, id)
}

func scanScan(r *sql.Rows, sc *Scan) error {
	return r.Scan(&sc.ID, timeCol{&sc.Time}, &sc.Target, &sc.ImageDigest, &sc.Source, jsonCol{&sc.Summary}, rawCol{&sc.Report}, rawCol{&sc.SBOM})
}

// Scans lists scans newest first, without their Report and SBOM (Scan and
// ScanOf return those).
func (s *db) Scans(ctx context.Context, limit int) ([]Scan, error) {
	rows, err := s.query(ctx, "SELECT id, time, target, image_digest, source, summary, NULL, NULL FROM scans ORDER BY time DESC, id DESC LIMIT ?", clamp(limit, maxRows))
	if err != nil {
		return nil, err
	}
	return collect(rows, scanScan)
}

func (s *db) Scan(ctx context.Context, id string) (Scan, error) {
	return one(s, ctx, "scan "+id, scanScan, "SELECT "+scanCols+" FROM scans WHERE id = ?", id)
}

func (s *db) ScanOf(ctx context.Context, digest string) (Scan, error) {
	return one(s, ctx, "scan of "+digest, scanScan, "SELECT "+scanCols+" FROM scans WHERE image_digest = ? ORDER BY time DESC, id DESC LIMIT 1", digest)
}

// Findings lists a scan's findings in risk order: KEV first, then by
// severity, EPSS and CVSS, then by ID and package.
func (s *db) Findings(ctx context.Context, scanID string) ([]Finding, error) {
	rows, err := s.query(ctx, "SELECT scan_id, vuln_id, cve, package, version, package_type, purl, fixed_version, severity, cvss, kev, epss, summary, aliases"+
		" FROM findings WHERE scan_id = ? ORDER BY kev DESC, severity_rank, epss DESC, cvss DESC, vuln_id, package, n", scanID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows, f *Finding) error {
		return r.Scan(&f.ScanID, &f.VulnID, &f.CVE, &f.Package, &f.Version, &f.PackageType, &f.PURL, &f.FixedVersion,
			&f.Severity, &f.CVSS, &f.KEV, &f.EPSS, &f.Summary, jsonCol{&f.Aliases})
	})
}

func scanResponse(r *sql.Rows, x *Response) error {
	return r.Scan(&x.ID, &x.AgentID, &x.AlertID, timeCol{&x.Time}, &x.Action, &x.Actor, &x.Outcome, &x.Error, &x.Target, &x.Undone, rawCol{&x.Record})
}

func (s *db) Responses(ctx context.Context, agentID string, limit int) ([]Response, error) {
	var w where
	if agentID != "" {
		w.add("agent_id = ?", agentID)
	}
	rows, err := s.query(ctx, "SELECT "+responseCols+" FROM responses"+w.String()+" ORDER BY time DESC, id DESC LIMIT ?", append(w.args, clamp(limit, maxRows))...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanResponse)
}

func (s *db) Response(ctx context.Context, id string) (Response, error) {
	return one(s, ctx, "response "+id, scanResponse, "SELECT "+responseCols+" FROM responses WHERE id = ?", id)
}

func (s *db) Profiles(ctx context.Context) ([]Profile, error) {
	rows, err := s.query(ctx, "SELECT "+profileCols+" FROM profiles ORDER BY agent_id, class")
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows, p *Profile) error {
		return r.Scan(&p.AgentID, &p.Class, &p.Mode, timeCol{&p.Updated}, rawCol{&p.Data})
	})
}

func (s *db) Compliance(ctx context.Context, limit int) ([]ComplianceResult, error) {
	rows, err := s.query(ctx, "SELECT "+complianceCols+" FROM compliance ORDER BY time DESC, id DESC LIMIT ?", clamp(limit, maxRows))
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows, c *ComplianceResult) error {
		return r.Scan(&c.ID, &c.AgentID, timeCol{&c.Time}, &c.Benchmark, &c.CheckID, &c.Title, &c.Status, rawCol{&c.Data})
	})
}

var errNoRows = sql.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
