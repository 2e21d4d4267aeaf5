package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers database/sql driver "pgx"
	_ "modernc.org/sqlite"             // registers database/sql driver "sqlite"
)

// Open opens (creating and migrating as needed) the store a DSN names:
//
//	sqlite:/var/lib/vigil-server/vigil.db   embedded SQLite (a plain path works too)
//	postgres://user:pass@host:5432/db       PostgreSQL (also postgresql://…)
//
// Errors name the DSN with its password removed.
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, dsn, strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "//"))
	case dsn == "":
		return nil, fmt.Errorf("opening store: empty DSN (want sqlite:/path or postgres://…)")
	case strings.Contains(dsn, "://"):
		return nil, fmt.Errorf("opening store %s: unknown scheme (want sqlite:/path or postgres://…)", Redact(dsn))
	default:
		return openSQLite(ctx, dsn, dsn)
	}
}

var kvPassword = regexp.MustCompile(`(?i)(password=)(\S+)`)

// Redact returns dsn with any password replaced by "xxxxx".
func Redact(dsn string) string {
	if strings.Contains(dsn, "://") {
		if u, err := url.Parse(dsn); err == nil {
			q := u.Query()
			if q.Has("password") {
				q.Set("password", "xxxxx")
				u.RawQuery = q.Encode()
			}
			return u.Redacted()
		}
		// Unparseable: keep only the scheme.
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://…"
	}
	return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
}

func openSQLite(ctx context.Context, dsn, path string) (Store, error) {
	fail := func(err error) (Store, error) {
		return nil, fmt.Errorf("opening store %s: %w", dsn, err)
	}
	if path == "" {
		return fail(fmt.Errorf("no file path"))
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fail(err)
		}
	}
	// modernc.org/sqlite reads _pragma and _txlock from a file: URI.
	base := "file:" + (&url.URL{Path: path}).EscapedPath()
	pragmas := "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)" +
		"&_pragma=foreign_keys(0)&_pragma=temp_store(MEMORY)"
	// One writer connection: SQLite serialises writers anyway, and one
	// connection keeps prepared statements warm and never sees SQLITE_BUSY
	// from itself. BEGIN IMMEDIATE takes the write lock up front against
	// other processes.
	// Checkpoints copy the WAL into the database file. SQLite runs them in
	// the committing writer by default (a quarter of Apply's time under
	// load); here a background connection does that work in parallel
	// every checkpointEvery, and the writer only checkpoints itself when
	// the WAL passes 64 MB (16384 pages of 4 KB), if the background falls
	// behind.
	w, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=cache_size(-16000)&_pragma=wal_autocheckpoint(16384)&_pragma=journal_size_limit(67108864)&_txlock=immediate")
	if err != nil {
		return fail(err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Page caches: 16 MB for the writer (the indexes it appends to), 4 MB
	// a reader, SQLite's 2 MB default for the checkpointer.
	r, err := sql.Open("sqlite", base+"?"+pragmas+"&_pragma=cache_size(-4000)&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return fail(err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	r.SetConnMaxIdleTime(0)
	cp, err := sql.Open("sqlite", base+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return fail(err)
	}
	cp.SetMaxOpenConns(1)
	s := &db{d: sqliteDialect, w: w, r: r, name: dsn, cp: cp, stop: make(chan struct{}), done: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		close(s.done)
		s.Close()
		return fail(err)
	}
	go s.checkpoints()
	return s, nil
}

// checkpointEvery is how often the SQLite WAL is checkpointed in the
// background.
const checkpointEvery = 200 * time.Millisecond

// checkpoints runs passive WAL checkpoints until Close: they never wait
// for the writer or readers, and copy what they can.
func (s *db) checkpoints() {
	defer close(s.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.cp.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		}
	}
}

func openPostgres(ctx context.Context, dsn string) (Store, error) {
	fail := func(err error) (Store, error) {
		return nil, fmt.Errorf("opening store %s: %w", Redact(dsn), err)
	}
	p, err := sql.Open("pgx", dsn)
	if err != nil {
		return fail(err)
	}
	p.SetMaxOpenConns(16)
	p.SetMaxIdleConns(16)
	s := &db{d: postgresDialect, w: p, r: p, name: Redact(dsn)}
	if err := p.PingContext(ctx); err != nil {
		p.Close()
		return fail(err)
	}
	if err := s.migrate(ctx); err != nil {
		p.Close()
		return fail(err)
	}
	return s, nil
}

// db is the one SQL implementation of Store; d hides the engines'
// differences. w takes every write; r the reads (the same pool on
// PostgreSQL, parallel read-only connections on SQLite).
type db struct {
	d    *dialect
	w, r *sql.DB
	name string // the DSN, redacted

	// SQLite's background checkpointer: its connection, stop and done.
	cp         *sql.DB
	stop, done chan struct{}

	closed sync.Once
}

func (s *db) Close() error {
	var err error
	s.closed.Do(func() {
		if s.cp != nil {
			close(s.stop)
			<-s.done
			s.cp.Close()
		}
		err = s.w.Close()
		if s.r != s.w {
			if e := s.r.Close(); err == nil {
				err = e
			}
		}
	})
	return err
}

func (s *db) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("store %s: %w", s.name, err)
	}
	return nil
}
