package vigiltest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test PostgreSQL role: a superuser that logs in over TCP with a password.
const (
	pgRole     = "vigil"
	pgPassword = "vigil-test"
)

// postgresBin returns the newest installed PostgreSQL server's bin
// directory (/usr/lib/postgresql/N/bin), or "".
func postgresBin() string {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(m) == 0 {
		return ""
	}
	sort.Slice(m, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[j]))))
		return vi < vj
	})
	return filepath.Dir(m[len(m)-1])
}

func requirePostgres(t testing.TB) string {
	t.Helper()
	RequireRoot(t)
	bin := postgresBin()
	if bin == "" {
		Unavailable(t, "needs the PostgreSQL server (Debian package postgresql; make test installs it)")
	}
	if _, err := user.Lookup("postgres"); err != nil {
		Unavailable(t, "needs the postgres user (Debian package postgresql): %v", err)
	}
	return bin
}

// asPostgres runs a command as the postgres user.
func asPostgres(name string, args ...string) ([]byte, error) {
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	cmd.Dir = "/"
	return cmd.CombinedOutput()
}

var (
	clusterOnce sync.Once
	clusterPort int
	clusterErr  error
)

// startCluster starts the system's first cluster if it is down, waits for
// it and creates the test role; it returns the cluster's port.
func startCluster() (int, error) {
	out, err := exec.Command("pg_lsclusters", "--no-header").Output()
	if err != nil {
		return 0, fmt.Errorf("pg_lsclusters (Debian package postgresql-common): %v", err)
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	f := strings.Fields(line)
	if len(f) < 4 {
		return 0, fmt.Errorf("no PostgreSQL cluster (pg_createcluster 15 main): pg_lsclusters says %q", line)
	}
	port, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, fmt.Errorf("pg_lsclusters: port %q", f[2])
	}
	if f[3] != "online" {
		if out, err := exec.Command("pg_ctlcluster", f[0], f[1], "start").CombinedOutput(); err != nil {
			return 0, fmt.Errorf("pg_ctlcluster %s %s start: %v: %s", f[0], f[1], err, bytes.TrimSpace(out))
		}
	}
	if err := waitReady(port, "/var/run/postgresql"); err != nil {
		return 0, err
	}
	sql := fmt.Sprintf(`DO $$ BEGIN
IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%[1]s') THEN CREATE ROLE %[1]s LOGIN SUPERUSER PASSWORD '%[2]s';
ELSE ALTER ROLE %[1]s LOGIN SUPERUSER PASSWORD '%[2]s'; END IF; END $$;`, pgRole, pgPassword)
	if out, err := asPostgres("psql", "-X", "-q", "-p", strconv.Itoa(port), "-v", "ON_ERROR_STOP=1", "-c", sql); err != nil {
		return 0, fmt.Errorf("creating role %s: %v: %s", pgRole, err, bytes.TrimSpace(out))
	}
	return port, nil
}

// waitReady polls pg_isready until the server accepts connections.
func waitReady(port int, sockDir string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command("pg_isready", "-q", "-h", sockDir, "-p", strconv.Itoa(port)).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL on port %d not ready after 60s: %v %s", port, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// Postgres returns the DSN of a fresh database, uniquely named, on the
// local PostgreSQL cluster (started if down), dropped when t ends. It needs
// root and the Debian package postgresql: skipped without them, failing
// under CI=true.
func Postgres(t testing.TB) string {
	t.Helper()
	requirePostgres(t)
	clusterOnce.Do(func() { clusterPort, clusterErr = startCluster() })
	if clusterErr != nil {
		Unavailable(t, "needs a running PostgreSQL: %v", clusterErr)
	}
	name := randomName("vigil_test_")
	port := strconv.Itoa(clusterPort)
	if out, err := asPostgres("psql", "-X", "-q", "-p", port, "-v", "ON_ERROR_STOP=1", "-c", "CREATE DATABASE "+name+" OWNER "+pgRole); err != nil {
		t.Fatalf("creating database %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := asPostgres("psql", "-X", "-q", "-p", port, "-c", "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping database %s: %v: %s", name, err, bytes.TrimSpace(out))
		}
	})
	return fmt.Sprintf("postgres://%s:%s@127.0.0.1:%d/%s?sslmode=disable", pgRole, pgPassword, clusterPort, name)
}

// PrivatePostgres makes a PostgreSQL cluster of t's own (initdb into a
// temporary directory, its own port, trust authentication on 127.0.0.1),
// starts it and returns a DSN to its "postgres" database with stop and
// start functions the test may call to take the database away and bring
// it back. The cluster is stopped and removed when t ends.
func PrivatePostgres(t testing.TB) (dsn string, stop func(), start func()) {
	t.Helper()
	bin := requirePostgres(t)
	u, err := user.Lookup("postgres")
	if err != nil {
		Unavailable(t, "needs the postgres user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "vigil-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if out, err := asPostgres(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		t.Fatalf("initdb %s: %v: %s", data, err, out)
	}
	port := freePort(t)
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", port, dir)
	logf := filepath.Join(dir, "postgres.log")
	var mu sync.Mutex
	running := false
	start = func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if running {
			return
		}
		if out, err := asPostgres(filepath.Join(bin, "pg_ctl"), "-D", data, "-l", logf, "-o", opts, "-w", "-t", "60", "start"); err != nil {
			log, _ := os.ReadFile(logf)
			t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
		}
		running = true
	}
	stop = func() {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if !running {
			return
		}
		if out, err := asPostgres(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "60", "stop"); err != nil {
			t.Fatalf("pg_ctl stop: %v: %s", err, out)
		}
		running = false
	}
	start()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if running {
			asPostgres(filepath.Join(bin, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop")
		}
	})
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop, start
}

// freePort returns a TCP port on 127.0.0.1 nothing listened on just now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
