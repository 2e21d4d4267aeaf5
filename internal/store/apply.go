package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Apply writes b in one transaction; see Store.Apply. For an agent's batch
// the agent's row is locked (SELECT … FOR UPDATE on PostgreSQL; SQLite has
// one writer) so that two replicas given the same batch write it once.
func (s *db) Apply(ctx context.Context, b *Batch) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	if b.AgentID != "" && b.LastSeq > 0 && (b.FirstSeq == 0 || b.FirstSeq > b.LastSeq) {
		return 0, fmt.Errorf("batch of agent %s: bad sequence range %d..%d", b.AgentID, b.FirstSeq, b.LastSeq)
	}
	for attempt := 0; ; attempt++ {
		seq, err := s.apply(ctx, b)
		if err != nil && attempt < 5 && s.d.retryable(err) {
			continue
		}
		return seq, err
	}
}

func (s *db) apply(ctx context.Context, b *Batch) (uint64, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", s.name, err)
	}
	defer tx.Rollback()
	agent := b.AgentID != "" && b.LastSeq > 0
	var seq uint64
	if agent {
		var stored int64
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT seq FROM agents WHERE id = ?"+s.d.forUpdate), b.AgentID).Scan(&stored)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("batch of agent %s: agent %w", b.AgentID, ErrNotFound)
		}
		if err != nil {
			return 0, fmt.Errorf("batch of agent %s: %w", b.AgentID, err)
		}
		seq = uint64(stored)
		if b.LastSeq <= seq {
			return seq, nil // already stored: a resend
		}
		if b.FirstSeq != seq+1 {
			return seq, fmt.Errorf("batch of agent %s: records %d..%d after stored %d: %w", b.AgentID, b.FirstSeq, b.LastSeq, seq, ErrSeqGap)
		}
	}
	if err := s.write(ctx, tx, b); err != nil {
		return seq, fmt.Errorf("applying batch of agent %q: %w", b.AgentID, err)
	}
	if agent {
		if _, err := tx.ExecContext(ctx, s.d.rebind("UPDATE agents SET seq = ? WHERE id = ?"), int64(b.LastSeq), b.AgentID); err != nil {
			return seq, fmt.Errorf("batch of agent %s: %w", b.AgentID, err)
		}
		seq = b.LastSeq
	}
	if err := tx.Commit(); err != nil {
		if agent {
			seq = b.FirstSeq - 1
		}
		return seq, fmt.Errorf("committing batch of agent %q: %w", b.AgentID, err)
	}
	if !agent {
		return 0, nil
	}
	return seq, nil
}

const alertCols = "id, agent_id, host, time, last_seen, count, rule, priority, severity, source, tactics, techniques, output, " +
	"container_id, container_name, image, namespace, pod, class, incident_id, dedup_key, responses, raw"

func (s *db) alertArgs(dst []any, a *Alert) []any {
	return append(dst, a.ID, a.AgentID, a.Host, s.d.ts(a.Time), s.d.ts(a.LastSeen), max(1, a.Count), a.Rule, a.Priority,
		a.Severity, a.Source, jsonArg(a.Tactics), jsonArg(a.Techniques), a.Output, a.ContainerID, a.ContainerName,
		a.Image, a.Namespace, a.Pod, a.Class, a.IncidentID, a.DedupKey, jsonArg(a.Responses), rawArg(a.Raw))
}

const incidentCols = "id, agent_id, host, workload_key, title, first_seen, last_seen, alert_count, severity, priority, tactics, techniques"

const assetCols = "kind, id, agent_id, name, labels, data, first_seen, last_seen, gone"

const scanCols = "id, time, target, image_digest, source, summary, report, sbom"

const findingCols = "scan_id, n, vuln_id, cve, package, version, package_type, purl, fixed_version, severity, severity_rank, cvss, kev, epss, summary, aliases"

const responseCols = "id, agent_id, alert_id, time, action, actor, outcome, error, target, undone, record"

const profileCols = "agent_id, class, mode, updated, data"

const complianceCols = "id, agent_id, time, benchmark, check_id, title, status, data"

// excluded is "c = excluded.c, …" for the columns after the key ones.
func excluded(cols string, skip ...string) string {
	var parts []string
	for _, c := range strings.Split(cols, ", ") {
		if slices.Contains(skip, c) {
			continue
		}
		parts = append(parts, c+" = excluded."+c)
	}
	return strings.Join(parts, ", ")
}

var (
	incidentUpsert = " ON CONFLICT (id) DO UPDATE SET " + excluded(incidentCols, "id")
	assetUpsert    = " ON CONFLICT (kind, id) DO UPDATE SET " + excluded(assetCols, "kind", "id", "first_seen") + ", first_seen = COALESCE(assets.first_seen, excluded.first_seen)"
	scanUpsert     = " ON CONFLICT (id) DO UPDATE SET " + excluded(scanCols, "id")
	// A response is stored twice: by the server from the command's result
	// (with the alert it answers) and by the hub from the agent's own
	// record (without it). Neither copy may unlink the alert or un-undo
	// the action.
	responseUpsert = " ON CONFLICT (id) DO UPDATE SET " + excluded(responseCols, "id", "alert_id", "undone") +
		", alert_id = COALESCE(NULLIF(excluded.alert_id, ''), responses.alert_id)" +
		", undone = (responses.undone OR excluded.undone)"
	profileUpsert    = " ON CONFLICT (agent_id, class) DO UPDATE SET " + excluded(profileCols, "agent_id", "class")
	complianceUpsert = " ON CONFLICT (id) DO UPDATE SET " + excluded(complianceCols, "id")
)

func (s *db) write(ctx context.Context, tx *sql.Tx, b *Batch) error {
	added, err := s.insertAlerts(ctx, tx, b.Alerts)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	for i := range b.AlertUpdates {
		if err := s.updateAlert(ctx, tx, &b.AlertUpdates[i]); err != nil {
			return fmt.Errorf("alert update %s: %w", b.AlertUpdates[i].ID, err)
		}
	}
	if len(b.Incidents) > 0 {
		inc := dedupe(b.Incidents, func(n Incident) string { return n.ID })
		err := s.insert(ctx, tx, "incidents", incidentCols, incidentUpsert, len(inc), func(dst []any, i int) []any {
			n := &inc[i]
			return append(dst, n.ID, n.AgentID, n.Host, n.WorkloadKey, n.Title, s.d.ts(n.FirstSeen), s.d.ts(n.LastSeen),
				n.AlertCount, n.Severity, n.Priority, jsonArg(n.Tactics), jsonArg(n.Techniques))
		})
		if err != nil {
			return fmt.Errorf("incidents: %w", err)
		}
	}
	if len(b.Assets) > 0 {
		// One row per key (the last wins) and a fixed order, so that two
		// PostgreSQL transactions upserting the same assets lock them in
		// the same order and an upsert never meets its own row twice.
		as := dedupe(b.Assets, func(a Asset) [2]string { return [2]string{a.Kind, a.ID} })
		err := s.insert(ctx, tx, "assets", assetCols, assetUpsert, len(as), func(dst []any, i int) []any {
			a := &as[i]
			return append(dst, a.Kind, a.ID, a.AgentID, a.Name, mapArg(a.Labels), rawArg(a.Data), s.d.ts(a.FirstSeen), s.d.ts(a.LastSeen), a.Gone)
		})
		if err != nil {
			return fmt.Errorf("assets: %w", err)
		}
	}
	for i := range b.Scans {
		if err := s.writeScan(ctx, tx, &b.Scans[i]); err != nil {
			return fmt.Errorf("scan %s: %w", b.Scans[i].ID, err)
		}
	}
	if len(b.Responses) > 0 {
		rs := dedupe(b.Responses, func(r Response) string { return r.ID })
		err := s.insert(ctx, tx, "responses", responseCols, responseUpsert, len(rs), func(dst []any, i int) []any {
			r := &rs[i]
			return append(dst, r.ID, r.AgentID, r.AlertID, s.d.ts(r.Time), r.Action, r.Actor, r.Outcome, r.Error, r.Target, r.Undone, rawArg(r.Record))
		})
		if err != nil {
			return fmt.Errorf("responses: %w", err)
		}
	}
	if len(b.Profiles) > 0 {
		ps := dedupe(b.Profiles, func(p Profile) [2]string { return [2]string{p.AgentID, p.Class} })
		err := s.insert(ctx, tx, "profiles", profileCols, profileUpsert, len(ps), func(dst []any, i int) []any {
			p := &ps[i]
			return append(dst, p.AgentID, p.Class, p.Mode, s.d.ts(p.Updated), rawArg(p.Data))
		})
		if err != nil {
			return fmt.Errorf("profiles: %w", err)
		}
	}
	if len(b.Compliance) > 0 {
		cs := dedupe(b.Compliance, func(c ComplianceResult) string { return c.ID })
		err := s.insert(ctx, tx, "compliance", complianceCols, complianceUpsert, len(cs), func(dst []any, i int) []any {
			c := &cs[i]
			return append(dst, c.ID, c.AgentID, s.d.ts(c.Time), c.Benchmark, c.CheckID, c.Title, c.Status, rawArg(c.Data))
		})
		if err != nil {
			return fmt.Errorf("compliance: %w", err)
		}
	}
	// Last: these rows are shared by every agent's alerts of the same
	// minute and rule, and stay locked (PostgreSQL) until the commit.
	if err := s.countAlerts(ctx, tx, added); err != nil {
		return fmt.Errorf("alert counts: %w", err)
	}
	return nil
}

// insertAlerts inserts new alerts and returns those that were: an ID
// already stored (or twice in the batch) is left alone and not counted
// again on the dashboard.
func (s *db) insertAlerts(ctx context.Context, tx *sql.Tx, as []Alert) ([]*Alert, error) {
	if len(as) == 0 {
		return nil, nil
	}
	var added []*Alert
	const tail = " ON CONFLICT (id) DO NOTHING"
	if s.d.rowInserts {
		st, err := tx.PrepareContext(ctx, s.insertSQL("alerts", alertCols, tail, alertNCols, 1))
		if err != nil {
			return nil, err
		}
		defer st.Close()
		args := make([]any, 0, alertNCols)
		for i := range as {
			res, err := st.ExecContext(ctx, s.alertArgs(args[:0], &as[i])...)
			if err != nil {
				return nil, err
			}
			if n, err := res.RowsAffected(); err == nil && n == 1 {
				added = append(added, &as[i])
			}
		}
		return added, nil
	}
	per := min(500, s.d.maxParams/alertNCols)
	args := make([]any, 0, min(len(as), per)*alertNCols)
	for start := 0; start < len(as); start += per {
		end := min(len(as), start+per)
		args = args[:0]
		for i := start; i < end; i++ {
			args = s.alertArgs(args, &as[i])
		}
		rows, err := tx.QueryContext(ctx, s.insertSQL("alerts", alertCols, tail+" RETURNING id", alertNCols, end-start), args...)
		if err != nil {
			return nil, err
		}
		ids, err := collect(rows, func(r *sql.Rows, id *string) error { return r.Scan(id) })
		if err != nil {
			return nil, err
		}
		inserted := make(map[string]bool, len(ids))
		for _, id := range ids {
			inserted[id] = true
		}
		for i := start; i < end; i++ {
			if inserted[as[i].ID] {
				delete(inserted, as[i].ID) // the first of the ID in the batch
				added = append(added, &as[i])
			}
		}
	}
	return added, nil
}

var alertNCols = strings.Count(alertCols, ",") + 1

// dedupe keeps the last of each key, sorted by key.
func dedupe[T any, K interface{ ~string | ~[2]string }](xs []T, key func(T) K) []T {
	if len(xs) < 2 {
		return xs
	}
	last := make(map[K]int, len(xs))
	for i, x := range xs {
		last[key(x)] = i
	}
	out := make([]T, 0, len(last))
	for i, x := range xs {
		if last[key(x)] == i {
			out = append(out, x)
		}
	}
	slices.SortStableFunc(out, func(a, b T) int { return compareKey(key(a), key(b)) })
	return out
}

func compareKey[K interface{ ~string | ~[2]string }](a, b K) int {
	switch a := any(a).(type) {
	case string:
		return strings.Compare(a, any(b).(string))
	case [2]string:
		bb := any(b).([2]string)
		if c := strings.Compare(a[0], bb[0]); c != 0 {
			return c
		}
		return strings.Compare(a[1], bb[1])
	}
	return 0
}

// insert writes n rows: on PostgreSQL with multi-row INSERTs, as many rows
// a statement as the placeholder limit (and 500) allow, to save round
// trips; on SQLite one single-row INSERT prepared per call and executed per row, which
// is cheaper in process than binding thousands of parameters at once.
func (s *db) insert(ctx context.Context, tx *sql.Tx, table, cols, tail string, n int, row func(dst []any, i int) []any) error {
	if n == 0 {
		return nil
	}
	ncol := strings.Count(cols, ",") + 1
	if s.d.rowInserts {
		st, err := tx.PrepareContext(ctx, s.insertSQL(table, cols, tail, ncol, 1))
		if err != nil {
			return err
		}
		defer st.Close()
		args := make([]any, 0, ncol)
		for i := 0; i < n; i++ {
			if _, err := st.ExecContext(ctx, row(args[:0], i)...); err != nil {
				return err
			}
		}
		return nil
	}
	per := min(500, s.d.maxParams/ncol)
	args := make([]any, 0, min(n, per)*ncol)
	for start := 0; start < n; start += per {
		end := min(n, start+per)
		args = args[:0]
		for i := start; i < end; i++ {
			args = row(args, i)
		}
		if _, err := tx.ExecContext(ctx, s.insertSQL(table, cols, tail, ncol, end-start), args...); err != nil {
			return err
		}
	}
	return nil
}

func (s *db) insertSQL(table, cols, tail string, ncol, rows int) string {
	var b strings.Builder
	b.Grow(len(table) + len(cols) + len(tail) + rows*(ncol*4+4) + 32)
	b.WriteString("INSERT INTO ")
	b.WriteString(table)
	b.WriteString(" (")
	b.WriteString(cols)
	b.WriteString(") VALUES ")
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := 0; c < ncol; c++ {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('?')
		}
		b.WriteByte(')')
	}
	b.WriteString(tail)
	return s.d.rebind(b.String())
}

// updateAlert folds repeats into a stored alert. An update of an alert no
// longer stored (pruned) changes nothing.
func (s *db) updateAlert(ctx context.Context, tx *sql.Tx, u *AlertUpdate) error {
	var responses any
	set := "count = count + ?, last_seen = CASE WHEN last_seen IS NULL OR last_seen < ? THEN ? ELSE last_seen END, raw = COALESCE(?, raw)"
	if len(u.Responses) > 0 {
		var cur []string
		err := tx.QueryRowContext(ctx, s.d.rebind("SELECT responses FROM alerts WHERE id = ?"+s.d.forUpdate), u.ID).Scan(jsonCol{&cur})
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, r := range u.Responses {
			if !slices.Contains(cur, r) {
				cur = append(cur, r)
			}
		}
		responses = jsonArg(cur)
		set += ", responses = ?"
	}
	t := s.d.ts(u.LastSeen)
	args := []any{u.AddCount, t, t, rawArg(u.Raw)}
	if responses != nil {
		args = append(args, responses)
	}
	args = append(args, u.ID)
	_, err := tx.ExecContext(ctx, s.d.rebind("UPDATE alerts SET "+set+" WHERE id = ?"), args...)
	return err
}

func (s *db) writeScan(ctx context.Context, tx *sql.Tx, sc *Scan) error {
	sum, _ := json.Marshal(sc.Summary)
	_, err := tx.ExecContext(ctx, s.insertSQL("scans", scanCols, scanUpsert, 8, 1),
		sc.ID, s.d.ts(sc.Time), sc.Target, sc.ImageDigest, sc.Source, string(sum), rawArg(sc.Report), rawArg(sc.SBOM))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("DELETE FROM findings WHERE scan_id = ?"), sc.ID); err != nil {
		return err
	}
	if len(sc.Findings) == 0 {
		return nil
	}
	return s.insert(ctx, tx, "findings", findingCols, "", len(sc.Findings), func(dst []any, i int) []any {
		f := &sc.Findings[i]
		return append(dst, sc.ID, i, f.VulnID, f.CVE, f.Package, f.Version, f.PackageType, f.PURL, f.FixedVersion,
			f.Severity, severityRank(f.Severity), f.CVSS, f.KEV, f.EPSS, f.Summary, jsonArg(f.Aliases))
	})
}

// severityRank orders finding severities, most severe first.
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical":
		return 0
	case "high", "important":
		return 1
	case "medium", "moderate":
		return 2
	case "low":
		return 3
	case "negligible", "minimal":
		return 4
	}
	return 5
}

// countKey is one row of alert_counts (hour false) or alert_counts_hour.
type countKey struct {
	hour bool
	dim  string
	t    int64 // minute or hour since the Unix epoch
	name string
}

// alertCounts are increments of the dashboard's counts.
type alertCounts map[countKey]int64

// workloadOf names an alert's workload on the dashboard: the container
// name, else the container ID, else "host:<host>".
func workloadOf(a *Alert) string {
	switch {
	case a.ContainerName != "":
		return a.ContainerName
	case a.ContainerID != "":
		return a.ContainerID
	}
	return "host:" + a.Host
}

// add counts one new alert (none without a time).
func (c alertCounts) add(a *Alert) {
	if a.Time.IsZero() {
		return
	}
	minute := floorDiv(a.Time.Unix(), 60)
	hour := floorDiv(minute, 60)
	inc := func(dim, name string) {
		c[countKey{false, dim, minute, name}]++
		c[countKey{true, dim, hour, name}]++
	}
	inc("p", a.Priority)
	inc("r", a.Rule)
	inc("w", workloadOf(a))
	seen := map[string]bool{}
	for _, t := range a.Techniques {
		if !seen[t] {
			seen[t] = true
			inc("t", t)
		}
	}
}

// countAlerts adds new alerts to the dashboard's counts.
func (s *db) countAlerts(ctx context.Context, tx *sql.Tx, as []*Alert) error {
	c := alertCounts{}
	for _, a := range as {
		c.add(a)
	}
	return s.writeCounts(ctx, tx, c)
}

func (s *db) writeCounts(ctx context.Context, tx *sql.Tx, c alertCounts) error {
	for _, hour := range []bool{false, true} {
		var keys []countKey
		for k := range c {
			if k.hour == hour {
				keys = append(keys, k)
			}
		}
		// A fixed order: concurrent batches lock rows in the same order.
		slices.SortFunc(keys, func(a, b countKey) int {
			if c := strings.Compare(a.dim, b.dim); c != 0 {
				return c
			}
			if a.t != b.t {
				return cmp.Compare(a.t, b.t)
			}
			return strings.Compare(a.name, b.name)
		})
		table, col := "alert_counts", "minute"
		if hour {
			table, col = "alert_counts_hour", "hour"
		}
		err := s.insert(ctx, tx, table, "dim, "+col+", name, n", " ON CONFLICT (dim, "+col+", name) DO UPDATE SET n = "+table+".n + excluded.n",
			len(keys), func(dst []any, i int) []any {
				k := keys[i]
				return append(dst, k.dim, k.t, k.name, c[k])
			})
		if err != nil {
			return err
		}
	}
	return nil
}
