package vulndb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// cacheAdvisories bounds the per-handle cache of decoded Advisories
// results by the number of advisories held (a lookup that found none
// counts as one), a few tens of MB of decoded records at most.
const cacheAdvisories = 20000

// DB is a read-only handle on a vulnerability database. It is safe for
// concurrent use. Advisories are decoded once per (ecosystem, name) and
// cached; callers must not modify what they get back.
type DB struct {
	path    string
	sql     *sql.DB
	codec   codec
	version int
	built   time.Time
	checked time.Time // newest SourceStatus.CheckedAt
	cache   *lru[string, []*Advisory]

	advStmt, kevStmt, epssStmt, cvssStmt *sql.Stmt
}

// Open opens the database at path read-only. It fails when the file is
// missing, is not a Vigil database, or has another schema version
// (*SchemaError); every error names the path.
func Open(path string) (*DB, error) {
	if err := checkHeader(path); err != nil {
		if errors.Is(err, errNotVigilDB) {
			return nil, fmt.Errorf("opening %s: %w", path, errNotVigilDB)
		}
		return nil, fmt.Errorf("opening vulnerability database %s: %w (run `vigil db update` or `vigil db import` to create it)", path, err)
	}
	// immutable=1: the file is never written in place (builds rename a new
	// file over it), so SQLite needs no locks and no change detection.
	d, err := dsn(path, "mode=ro&immutable=1&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	sdb, err := sql.Open("sqlite", d)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	sdb.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	db := &DB{path: path, sql: sdb, cache: newLRU[string, []*Advisory](cacheAdvisories)}
	if err := db.init(); err != nil {
		sdb.Close()
		return nil, err
	}
	return db, nil
}

func (db *DB) init() error {
	meta, err := readMeta(context.Background(), db.sql)
	if err != nil {
		return fmt.Errorf("opening %s: reading meta table: %w", db.path, err)
	}
	v, _ := strconv.Atoi(meta["schema_version"])
	if v != CurrentSchema {
		return &SchemaError{Path: db.path, Version: v, Supported: CurrentSchema}
	}
	db.version = v
	if db.codec, err = parseCodec(meta["codec"]); err != nil {
		return fmt.Errorf("opening %s: %w", db.path, err)
	}
	db.built, _ = time.Parse(time.RFC3339Nano, meta["built"])
	srcs, err := readSources(context.Background(), db.sql)
	if err != nil {
		return fmt.Errorf("opening %s: reading sources: %w", db.path, err)
	}
	for _, s := range srcs {
		if s.CheckedAt.After(db.checked) {
			db.checked = s.CheckedAt
		}
	}

	prep := []struct {
		dst **sql.Stmt
		q   string
	}{
		{&db.advStmt, `SELECT a.id, a.data FROM affected i JOIN advisories a ON a.rowid = i.adv
			WHERE i.ecosystem = ? AND i.name = ? ORDER BY a.id, a.modified DESC, a.source`},
		{&db.kevStmt, `SELECT vendor_project, product, name, date_added, due_date, required_action,
			known_ransomware, short_description FROM kev WHERE cve = ?`},
		{&db.epssStmt, `SELECT score, percentile, date FROM epss WHERE cve = ?`},
		{&db.cvssStmt, `SELECT version, vector, base_score, severity, source FROM nvd_cvss WHERE cve = ? ORDER BY seq`},
	}
	for _, p := range prep {
		if *p.dst, err = db.sql.Prepare(p.q); err != nil {
			return fmt.Errorf("opening %s: %w", db.path, err)
		}
	}
	return nil
}

// readMeta returns the meta table; a file without one is an error.
func readMeta(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT key, value FROM meta`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, rows.Err()
}

// Close releases the handle.
func (db *DB) Close() error {
	return db.sql.Close()
}

// Path is the file the handle reads.
func (db *DB) Path() string { return db.path }

// Built is when the database file was last written.
func (db *DB) Built() time.Time { return db.built }

// SchemaVersion is the file's schema version (CurrentSchema once opened).
func (db *DB) SchemaVersion() int { return db.version }

// Age is the time since upstream last confirmed any source (the newest
// SourceStatus.CheckedAt), or since Built when there are no sources. Callers
// warn when it is older than they accept.
func (db *DB) Age() time.Duration {
	t := db.checked
	if t.IsZero() {
		t = db.built
	}
	return time.Since(t)
}

// Advisories returns every advisory with an affected entry for name in
// ecosystem — the exact OSV ecosystem string ("Go", "PyPI", "Debian:12",
// "Alpine:v3.11"); name is normalised with NormalizeName. Withdrawn
// advisories are included. An ID stored by several sources is returned once,
// the most recently modified copy. The result is sorted by ID, shared
// between callers and must not be modified.
func (db *DB) Advisories(ctx context.Context, ecosystem, name string) ([]*Advisory, error) {
	name = NormalizeName(ecosystem, name)
	key := ecosystem + "\x00" + name
	if v, ok := db.cache.get(key); ok {
		return v, nil
	}
	advs, err := db.lookup(ctx, ecosystem, name)
	if err != nil {
		return nil, err
	}
	db.cache.add(key, advs, len(advs))
	return advs, nil
}

// lookup reads and decodes the advisories for (ecosystem, name) uncached.
func (db *DB) lookup(ctx context.Context, ecosystem, name string) ([]*Advisory, error) {
	rows, err := db.advStmt.QueryContext(ctx, ecosystem, name)
	if err != nil {
		return nil, fmt.Errorf("looking up %s/%s in %s: %w", ecosystem, name, db.path, err)
	}
	defer rows.Close()
	var (
		advs []*Advisory
		last string
	)
	for rows.Next() {
		var (
			id   string
			blob []byte
		)
		if err := rows.Scan(&id, &blob); err != nil {
			return nil, fmt.Errorf("looking up %s/%s in %s: %w", ecosystem, name, db.path, err)
		}
		if id == last {
			continue // an older copy of the same advisory from another source
		}
		last = id
		js, err := db.codec.decode(blob)
		if err != nil {
			return nil, fmt.Errorf("decoding advisory %s in %s: %w", id, db.path, err)
		}
		a := new(Advisory)
		if err := json.Unmarshal(js, a); err != nil {
			return nil, fmt.Errorf("decoding advisory %s in %s: %w", id, db.path, err)
		}
		advs = append(advs, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up %s/%s in %s: %w", ecosystem, name, db.path, err)
	}
	return advs, nil
}

// normCVE upper-cases and trims a CVE ID the way the tables store it.
func normCVE(cve string) string { return strings.ToUpper(strings.TrimSpace(cve)) }

// KEV returns the KEV catalog entry for cve, nil (and no error) when the
// CVE is not in the catalog.
func (db *DB) KEV(ctx context.Context, cve string) (*KEV, error) {
	k := KEV{CVE: normCVE(cve)}
	var ransom int
	err := db.kevStmt.QueryRowContext(ctx, k.CVE).Scan(&k.VendorProject, &k.Product, &k.Name,
		&k.DateAdded, &k.DueDate, &k.RequiredAction, &ransom, &k.ShortDescription)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up KEV %s in %s: %w", cve, db.path, err)
	}
	k.KnownRansomware = ransom != 0
	return &k, nil
}

// EPSS returns the EPSS score for cve, nil (and no error) when none is known.
func (db *DB) EPSS(ctx context.Context, cve string) (*EPSS, error) {
	e := EPSS{CVE: normCVE(cve)}
	err := db.epssStmt.QueryRowContext(ctx, e.CVE).Scan(&e.Score, &e.Percentile, &e.Date)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("looking up EPSS %s in %s: %w", cve, db.path, err)
	}
	return &e, nil
}

// CVSS returns NVD's CVSS base metrics for cve: newest CVSS version first
// (4.0, 3.1, 3.0, 2.0) and, within a version, the Primary source (NVD)
// before Secondary ones. It is empty when NVD data has none.
func (db *DB) CVSS(ctx context.Context, cve string) ([]CVSS, error) {
	rows, err := db.cvssStmt.QueryContext(ctx, normCVE(cve))
	if err != nil {
		return nil, fmt.Errorf("looking up CVSS %s in %s: %w", cve, db.path, err)
	}
	defer rows.Close()
	var out []CVSS
	for rows.Next() {
		var c CVSS
		if err := rows.Scan(&c.Version, &c.Vector, &c.BaseScore, &c.Severity, &c.Source); err != nil {
			return nil, fmt.Errorf("looking up CVSS %s in %s: %w", cve, db.path, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up CVSS %s in %s: %w", cve, db.path, err)
	}
	return out, nil
}

// Status describes every source in the database, sorted by name.
func (db *DB) Status(ctx context.Context) ([]SourceStatus, error) {
	st, err := readSources(ctx, db.sql)
	if err != nil {
		return nil, fmt.Errorf("reading sources of %s: %w", db.path, err)
	}
	out := make([]SourceStatus, 0, len(st))
	for _, s := range st {
		out = append(out, s.SourceStatus)
	}
	return out, nil
}

// sourceRow is a sources table row: the public status plus the NVD cursor.
type sourceRow struct {
	SourceStatus
	cursor string
}

func readSources(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]sourceRow, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, records, upstream_date, fetched_at, checked_at,
		origin, etag, last_modified, cursor FROM sources ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sourceRow
	for rows.Next() {
		var (
			r                         sourceRow
			upstream, fetched, checkd string
		)
		if err := rows.Scan(&r.Name, &r.Records, &upstream, &fetched, &checkd,
			&r.Origin, &r.ETag, &r.LastModified, &r.cursor); err != nil {
			return nil, err
		}
		r.UpstreamDate = parseTime(upstream)
		r.FetchedAt = parseTime(fetched)
		r.CheckedAt = parseTime(checkd)
		out = append(out, r)
	}
	return out, rows.Err()
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}
