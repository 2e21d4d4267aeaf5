package store

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// Migrations are migrations/NNNN_name.sql, applied in order, each in its
// own transaction, and recorded in schema_migrations. On PostgreSQL a
// transaction-level advisory lock makes replicas starting at once take
// turns: the first migrates, the others find the versions recorded.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// migrationLock is the pg_advisory_xact_lock key ("vigilmig").
const migrationLock = 0x766967696c6d6967

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	ents, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range ents {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration file %s: want NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// statements splits a migration into statements (";" ending a line),
// dropping comment lines and filling the dialect's type tokens.
func (d *dialect) statements(text string) []string {
	for k, v := range d.types {
		text = strings.ReplaceAll(text, "{{"+k+"}}", v)
	}
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// migrate brings the schema to the newest version.
func (s *db) migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.migrateOne(ctx, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (s *db) migrateOne(ctx context.Context, m migration) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.d.dollar {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrationLock)); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied "+s.d.types["TIME"]+")"); err != nil {
		return err
	}
	var n int
	err = tx.QueryRowContext(ctx, s.d.rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n)
	if err != nil {
		return err
	}
	if n > 0 {
		return tx.Commit()
	}
	for _, st := range s.d.statements(m.sql) {
		if _, err := tx.ExecContext(ctx, st); err != nil {
			return fmt.Errorf("%w\n%s", err, st)
		}
	}
	if step := migrationSteps[m.version]; step != nil {
		if err := step(ctx, s, tx); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.d.rebind("INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, "+s.now()+")"), m.version, m.name); err != nil {
		return err
	}
	return tx.Commit()
}

// now is the engine's current time in a time column's representation.
func (s *db) now() string {
	if s.d.textTime {
		return "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
	}
	return "now()"
}

// SchemaVersion returns the newest migration applied.
func (s *db) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.r.QueryRowContext(ctx, "SELECT max(version) FROM schema_migrations").Scan(&v)
	return int(v.Int64), err
}

// migrationSteps are Go steps run after a version's SQL, in its
// transaction.
var migrationSteps = map[int]func(context.Context, *db, *sql.Tx) error{
	2: backfillAlertCounts,
}

// backfillAlertCounts counts the alerts stored before alert_counts existed.
func backfillAlertCounts(ctx context.Context, s *db, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT time, priority, rule, container_name, container_id, host, techniques FROM alerts WHERE time IS NOT NULL")
	if err != nil {
		return err
	}
	c := alertCounts{}
	err = func() error {
		defer rows.Close()
		for rows.Next() {
			var a Alert
			if err := rows.Scan(timeCol{&a.Time}, &a.Priority, &a.Rule, &a.ContainerName, &a.ContainerID, &a.Host, jsonCol{&a.Techniques}); err != nil {
				return err
			}
			c.add(&a)
		}
		return rows.Err()
	}()
	if err != nil {
		return err
	}
	return s.writeCounts(ctx, tx, c)
}
