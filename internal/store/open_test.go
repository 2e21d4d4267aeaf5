package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://vigil:s3cret@db:5432/vigil?sslmode=disable": "postgres://vigil:xxxxx@db:5432/vigil?sslmode=disable",
		"postgresql://db/vigil?user=v&password=s3cret":          "postgresql://db/vigil?password=xxxxx&user=v",
		"host=db user=vigil password=s3cret dbname=vigil":       "host=db user=vigil password=xxxxx dbname=vigil",
		"sqlite:/var/lib/vigil-server/vigil.db":                 "sqlite:/var/lib/vigil-server/vigil.db",
		"postgres://vigil:s3cret@[::1:5432/vigil":               "postgres://…",
		"postgres://vigil@db/vigil":                             "postgres://vigil@db/vigil",
	} {
		if got := store.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDB := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 300)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dsn, want string }{
		{"", "empty DSN"},
		{"mysql://root@db/vigil", "mysql://root@db/vigil: unknown scheme"},
		{"sqlite:", "no file path"},
		{"sqlite:" + file + "/vigil.db", file},
		{notDB, notDB},
		// Nothing listens on port 1: the error names the DSN without the password.
		{"postgres://vigil:s3cret@127.0.0.1:1/vigil?connect_timeout=5", "postgres://vigil:xxxxx@127.0.0.1:1/vigil"},
	} {
		s, err := store.Open(ctx, c.dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", c.dsn)
			continue
		}
		t.Logf("Open(%q): %v", c.dsn, err)
		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %v, want an error naming %q and no password", c.dsn, err, c.want)
		}
	}
}

// A plain path opens SQLite, and the file is a WAL database.
func TestOpenPlainPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "vigil.db")
	s := open(t, path)
	putAgent(t, s, "ag")
	if _, err := os.Stat(path + "-wal"); err != nil {
		t.Fatalf("no WAL beside %s: %v", path, err)
	}
	must(t, s.Close())
	s = open(t, "sqlite:"+path)
	if _, err := s.Agent(context.Background(), "ag"); err != nil {
		t.Fatal(err)
	}
}

// PostgreSQL going away makes Ping and Apply fail; when it is back the
// same Store works again without being reopened.
func TestPostgresDownAndBack(t *testing.T) {
	dsn, stop, start := vigiltest.PrivatePostgres(t)
	ctx := context.Background()
	s := open(t, dsn)
	putAgent(t, s, "ag")
	b := func(seq uint64) *store.Batch {
		return &store.Batch{AgentID: "ag", FirstSeq: seq, LastSeq: seq, Alerts: []store.Alert{alert("ag", base, "r", 4)}}
	}
	if _, err := s.Apply(ctx, b(1)); err != nil {
		t.Fatal(err)
	}
	stop()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Ping(tctx); err == nil {
		t.Fatal("Ping succeeded with PostgreSQL stopped")
	} else if !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("Ping error does not name the store: %v", err)
	}
	if _, err := s.Apply(tctx, b(2)); err == nil {
		t.Fatal("Apply succeeded with PostgreSQL stopped")
	}
	start()
	deadline := time.Now().Add(30 * time.Second)
	for s.Ping(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("Ping still failing 30s after PostgreSQL restarted")
		}
		time.Sleep(50 * time.Millisecond)
	}
	seq, err := s.Apply(ctx, b(2))
	if err != nil || seq != 2 {
		t.Fatalf("Apply after restart = %d, %v; want 2", seq, err)
	}
	if n := countAlerts(t, s, store.AlertFilter{}); n != 2 {
		t.Fatalf("%d alerts, want 2", n)
	}
}
