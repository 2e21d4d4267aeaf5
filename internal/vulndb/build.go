package vulndb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// builder writes a new version of the database: a copy of the current file
// in a temporary file beside it, renamed over the original by commit. Until
// commit succeeds the original file is never opened for writing; abort (or
// any failure) deletes the temporary file.
type builder struct {
	final string // absolute path of the database
	tmp   string
	mode  fs.FileMode
	db    *sql.DB
	codec codec
	now   func() time.Time
	log   *slog.Logger
	done  bool
}

// buildPragmas make the throw-away temporary file fast to write: it is
// fsynced once before the rename, and a crash leaves only a stray temp file.
const buildPragmas = "_pragma=journal_mode(MEMORY)&_pragma=synchronous(OFF)" +
	"&_pragma=cache_size(-32768)&_pragma=locking_mode(EXCLUSIVE)"

// newBuilder starts a build of the database at path. An existing database
// is copied; one of another schema version (or unreadable) is replaced by
// an empty one and a warning returned; a file that is not a Vigil database
// is never replaced.
func newBuilder(ctx context.Context, path string, c codec, now func() time.Time, log *slog.Logger) (*builder, []string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("database path %s: %w", path, err)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("creating directory for %s: %w", path, err)
	}
	b := &builder{final: abs, mode: 0o644, codec: c, now: now, log: log}
	var warnings []string
	fresh := true
	if fi, err := os.Stat(abs); err == nil {
		b.mode = fi.Mode().Perm()
		if err := checkHeader(abs); err != nil {
			if errors.Is(err, errNotVigilDB) {
				return nil, nil, fmt.Errorf("refusing to replace %s: %w", path, err)
			}
			return nil, nil, fmt.Errorf("reading %s: %w", path, err)
		}
		meta, err := readMetaFile(ctx, abs)
		v, _ := strconv.Atoi(meta["schema_version"])
		switch {
		case err != nil:
			warnings = append(warnings, fmt.Sprintf("existing database %s is unreadable (%v): building a new one", path, err))
		case v != CurrentSchema:
			warnings = append(warnings, fmt.Sprintf("existing database %s has schema version %d, not %d: building a new one", path, v, CurrentSchema))
		default:
			fresh = false
			if b.codec, err = parseCodec(meta["codec"]); err != nil {
				return nil, nil, fmt.Errorf("reading %s: %w", path, err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("database path %s: %w", path, err)
	}

	f, err := os.CreateTemp(dir, "."+filepath.Base(abs)+".*.tmp")
	if err != nil {
		return nil, nil, fmt.Errorf("creating temporary database beside %s: %w", path, err)
	}
	b.tmp = f.Name()
	if !fresh {
		err = copyFile(ctx, f, abs)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.openTmp(ctx, fresh)
	}
	if err != nil {
		b.abort()
		return nil, nil, fmt.Errorf("preparing a new copy of %s: %w", path, err)
	}
	return b, warnings, nil
}

// readMetaFile reads the meta table of a database file without building.
func readMetaFile(ctx context.Context, path string) (map[string]string, error) {
	d, err := dsn(path, "mode=ro&immutable=1")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", d)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return readMeta(ctx, db)
}

// copyFile appends the file at src to dst, checking ctx between chunks.
func copyFile(ctx context.Context, dst io.Writer, src string) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.CopyBuffer(dst, ctxReader{ctx, f}, make([]byte, 1<<20))
	return err
}

// ctxReader fails reads once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

func (b *builder) openTmp(ctx context.Context, fresh bool) error {
	d, err := dsn(b.tmp, buildPragmas+"&_txlock=immediate")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", d)
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	b.db = db
	if !fresh {
		return nil
	}
	stmts := append([]string{fmt.Sprintf("PRAGMA application_id = %d", applicationID)}, schemaSQL...)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
	}
	for k, v := range map[string]string{
		"schema_version": strconv.Itoa(CurrentSchema),
		"application":    "vigil-vulndb",
		"codec":          string(b.codec),
	} {
		if _, err := db.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)`, k, v); err != nil {
			return fmt.Errorf("creating schema: %w", err)
		}
	}
	return nil
}

// replaceWith makes the file at path (an Export of a database of the current
// schema, validated first) the new content of the build.
func (b *builder) replaceWith(ctx context.Context, path string) error {
	if err := validateDBFile(ctx, path); err != nil {
		return err
	}
	if err := b.db.Close(); err != nil {
		return err
	}
	f, err := os.OpenFile(b.tmp, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = copyFile(ctx, f, path)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copying %s: %w", path, err)
	}
	if err := b.openTmp(ctx, false); err != nil {
		return err
	}
	meta, err := readMeta(ctx, b.db)
	if err != nil {
		return err
	}
	b.codec, err = parseCodec(meta["codec"])
	return err
}

// validateDBFile checks that path is a sound Vigil database of the current
// schema.
func validateDBFile(ctx context.Context, path string) error {
	if err := checkHeader(path); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	meta, err := readMetaFile(ctx, path)
	if err != nil {
		return fmt.Errorf("%s: reading meta table: %w", path, err)
	}
	if v, _ := strconv.Atoi(meta["schema_version"]); v != CurrentSchema {
		return &SchemaError{Path: path, Version: v, Supported: CurrentSchema}
	}
	if _, err := parseCodec(meta["codec"]); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	d, err := dsn(path, "mode=ro&immutable=1")
	if err != nil {
		return err
	}
	db, err := sql.Open("sqlite", d)
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&res); err != nil {
		return fmt.Errorf("%s: checking integrity: %w", path, err)
	}
	if res != "ok" {
		return fmt.Errorf("%s: database is damaged: %s", path, res)
	}
	return nil
}

// commit finishes the build: it records the build time, compacts the file
// (VACUUM) when replaced sources left free pages, fsyncs it and renames it
// over the database.
func (b *builder) commit(ctx context.Context) error {
	fail := func(err error) error {
		b.abort()
		return fmt.Errorf("writing %s: %w", b.final, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if _, err := b.db.ExecContext(ctx, `INSERT OR REPLACE INTO meta (key, value) VALUES ('built', ?)`,
		formatTime(b.now())); err != nil {
		return fail(err)
	}
	if err := b.vacuum(ctx); err != nil {
		return fail(err)
	}
	if err := b.db.Close(); err != nil {
		return fail(err)
	}
	if err := syncFile(b.tmp, b.mode); err != nil {
		return fail(err)
	}
	// Last point of no return: a cancellation before the rename still
	// leaves the old file in place.
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	if err := os.Rename(b.tmp, b.final); err != nil {
		return fail(err)
	}
	b.done = true
	syncDir(filepath.Dir(b.final))
	return nil
}

// vacuum compacts the file when at least a tenth of its pages are free
// (left by replaced sources); a fresh build has none and skips the cost.
func (b *builder) vacuum(ctx context.Context) error {
	var pages, free int64
	if err := b.db.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages); err != nil {
		return err
	}
	if err := b.db.QueryRowContext(ctx, `PRAGMA freelist_count`).Scan(&free); err != nil {
		return err
	}
	if free == 0 || free*10 < pages {
		return nil
	}
	_, err := b.db.ExecContext(ctx, `VACUUM`)
	return err
}

// abort drops the build; the original database is untouched.
func (b *builder) abort() {
	if b.done {
		return
	}
	b.done = true
	if b.db != nil {
		b.db.Close()
	}
	for _, p := range []string{b.tmp, b.tmp + "-journal", b.tmp + "-wal", b.tmp + "-shm"} {
		os.Remove(p)
	}
}

func syncFile(path string, mode fs.FileMode) error {
	if err := os.Chmod(path, mode); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable; errors are ignored because some
// file systems cannot fsync directories.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// sources returns the sources table of the build by name.
func (b *builder) sources(ctx context.Context) (map[string]sourceRow, error) {
	rows, err := readSources(ctx, b.db)
	if err != nil {
		return nil, err
	}
	m := make(map[string]sourceRow, len(rows))
	for _, r := range rows {
		m[r.Name] = r
	}
	return m, nil
}

// tx runs fn in one transaction: everything fn wrote is rolled back when it
// (or the commit) fails.
func (b *builder) tx(ctx context.Context, fn func(w *writer) error) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	w := &writer{ctx: ctx, tx: tx, codec: b.codec, stmts: map[string]*sql.Stmt{}}
	err = fn(w)
	for _, s := range w.stmts {
		s.Close()
	}
	if err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writer writes rows inside one transaction.
type writer struct {
	ctx   context.Context
	tx    *sql.Tx
	codec codec
	stmts map[string]*sql.Stmt
}

func (w *writer) exec(q string, args ...any) (sql.Result, error) {
	s, ok := w.stmts[q]
	if !ok {
		var err error
		if s, err = w.tx.PrepareContext(w.ctx, q); err != nil {
			return nil, err
		}
		w.stmts[q] = s
	}
	return s.ExecContext(w.ctx, args...)
}

// deleteAdvisories removes every advisory of source and its index rows.
func (w *writer) deleteAdvisories(source string) error {
	if _, err := w.exec(`DELETE FROM affected WHERE adv IN (SELECT rowid FROM advisories WHERE source = ?)`, source); err != nil {
		return err
	}
	_, err := w.exec(`DELETE FROM advisories WHERE source = ?`, source)
	return err
}

// renameAdvisories moves the advisories of from to source to, replacing
// what to had.
func (w *writer) renameAdvisories(from, to string) error {
	if from == to {
		return nil
	}
	if err := w.deleteAdvisories(to); err != nil {
		return err
	}
	_, err := w.exec(`UPDATE advisories SET source = ? WHERE source = ?`, to, from)
	return err
}

// prepared is an advisory encoded for storage.
type prepared struct {
	a    *Advisory
	blob []byte
}

// prepare encodes a with c; it runs on worker goroutines.
func prepare(c codec, a *Advisory) (prepared, error) {
	js, err := json.Marshal(a)
	if err != nil {
		return prepared{}, err
	}
	blob, err := c.encode(nil, js)
	if err != nil {
		return prepared{}, err
	}
	return prepared{a, blob}, nil
}

// putAdvisory stores p under source and indexes its affected packages.
// rowid is the row of an earlier advisory with the same ID in the same
// source, which it replaces; 0 inserts a new row. It returns the row.
func (w *writer) putAdvisory(source string, p prepared, rowid int64) (int64, error) {
	a := p.a
	withdrawn := 0
	if !a.Withdrawn.IsZero() {
		withdrawn = 1
	}
	if rowid != 0 {
		if _, err := w.exec(`DELETE FROM affected WHERE adv = ?`, rowid); err != nil {
			return 0, err
		}
		if _, err := w.exec(`UPDATE advisories SET modified = ?, withdrawn = ?, data = ? WHERE rowid = ?`,
			a.Modified.UnixMilli(), withdrawn, p.blob, rowid); err != nil {
			return 0, err
		}
	} else {
		res, err := w.exec(`INSERT INTO advisories (source, id, modified, withdrawn, data) VALUES (?, ?, ?, ?, ?)`,
			source, a.ID, a.Modified.UnixMilli(), withdrawn, p.blob)
		if err != nil {
			return 0, err
		}
		if rowid, err = res.LastInsertId(); err != nil {
			return 0, err
		}
	}
	for _, af := range a.Affected {
		eco, name := af.Package.Ecosystem, af.Package.Name
		if eco == "" || name == "" {
			continue
		}
		if _, err := w.exec(`INSERT OR IGNORE INTO affected (ecosystem, name, adv) VALUES (?, ?, ?)`,
			eco, NormalizeName(eco, name), rowid); err != nil {
			return 0, err
		}
	}
	return rowid, nil
}

func (w *writer) putKEV(k *KEV) error {
	ransom := 0
	if k.KnownRansomware {
		ransom = 1
	}
	_, err := w.exec(`INSERT OR REPLACE INTO kev (cve, vendor_project, product, name, date_added, due_date,
		required_action, known_ransomware, short_description) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.CVE, k.VendorProject, k.Product, k.Name, k.DateAdded, k.DueDate, k.RequiredAction, ransom, k.ShortDescription)
	return err
}

func (w *writer) putEPSS(e *EPSS) error {
	_, err := w.exec(`INSERT OR REPLACE INTO epss (cve, score, percentile, date) VALUES (?, ?, ?, ?)`,
		e.CVE, e.Score, e.Percentile, e.Date)
	return err
}

// putCVSS replaces NVD's metrics for cve with ms (none deletes them).
func (w *writer) putCVSS(cve string, ms []CVSS) error {
	if _, err := w.exec(`DELETE FROM nvd_cvss WHERE cve = ?`, cve); err != nil {
		return err
	}
	for i, m := range ms {
		if _, err := w.exec(`INSERT INTO nvd_cvss (cve, seq, version, vector, base_score, severity, source)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, cve, i, m.Version, m.Vector, m.BaseScore, m.Severity, m.Source); err != nil {
			return err
		}
	}
	return nil
}

// count returns the result of a SELECT count(*) query.
func (w *writer) count(q string, args ...any) (int, error) {
	var n int
	err := w.tx.QueryRowContext(w.ctx, q, args...).Scan(&n)
	return n, err
}

// setSource writes the sources row for r.Name.
func (w *writer) setSource(r sourceRow) error {
	_, err := w.exec(`INSERT OR REPLACE INTO sources (name, records, upstream_date, fetched_at, checked_at,
		origin, etag, last_modified, cursor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Name, r.Records, formatTime(r.UpstreamDate), formatTime(r.FetchedAt), formatTime(r.CheckedAt),
		r.Origin, r.ETag, r.LastModified, r.cursor)
	return err
}

// touchSource records that upstream confirmed source unchanged at t.
func (w *writer) touchSource(name string, t time.Time) error {
	_, err := w.exec(`UPDATE sources SET checked_at = ? WHERE name = ?`, formatTime(t), name)
	return err
}

// source reads the sources row for name inside the transaction.
func (w *writer) source(name string) (sourceRow, bool, error) {
	rows, err := readSources(w.ctx, w.tx)
	if err != nil {
		return sourceRow{}, false, err
	}
	for _, r := range rows {
		if r.Name == name {
			return r, true, nil
		}
	}
	return sourceRow{}, false, nil
}
