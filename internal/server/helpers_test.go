package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// testArgon2 keeps password hashing cheap in tests; the PHC string
// carries the parameters, so the code path is the production one.
var testArgon2 = Argon2Params{Memory: 1024, Time: 1, Threads: 1}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakeAgents stands in for the hub in unit tests only: it records the
// commands and answers with what answer returns.
type fakeAgents struct {
	mu        sync.Mutex
	connected []string
	cmds      []wire.Command
	answer    func(ctx context.Context, agentID string, c wire.Command) (wire.CommandResult, error)
}

func (f *fakeAgents) Command(ctx context.Context, agentID string, c wire.Command) (wire.CommandResult, error) {
	f.mu.Lock()
	f.cmds = append(f.cmds, c)
	ans := f.answer
	f.mu.Unlock()
	if ans == nil {
		return wire.CommandResult{ID: c.ID, OK: true}, nil
	}
	return ans(ctx, agentID, c)
}

func (f *fakeAgents) Connected() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.connected)
}

func (f *fakeAgents) commands() []wire.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.cmds)
}

// env is a server on real TLS over a real store.
type env struct {
	t         *testing.T
	st        store.Store
	srv       *Server
	ts        *httptest.Server
	clk       *clock
	agents    *fakeAgents
	published chan *store.Batch
	adminPW   string
}

// openStore opens a store for tests: a temporary SQLite file.
func openStore(t testing.TB) store.Store {
	t.Helper()
	st, err := store.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newEnv(t *testing.T, mod ...func(*Options)) *env {
	t.Helper()
	return newEnvStore(t, storeOpener(t), mod...)
}

func newEnvStore(t *testing.T, st store.Store, mod ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, st: st, clk: &clock{t: time.Now().UTC().Truncate(time.Second)}, agents: &fakeAgents{}, published: make(chan *store.Batch, 100)}
	o := Options{
		Store: st, Agents: e.agents, Argon2: testArgon2, Now: e.clk.Now,
		Publish: func(b *store.Batch) { e.published <- b },
	}
	for _, m := range mod {
		m(&o)
	}
	srv, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.ts = httptest.NewTLSServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	pw, created, err := srv.Bootstrap(t.Context(), "admin")
	if err != nil || !created || len(pw) < 16 {
		t.Fatalf("Bootstrap: %q %v %v", pw, created, err)
	}
	e.adminPW = pw
	return e
}

// client is one HTTP client with its own cookie jar and, after login,
// the CSRF token; or an API token.
type client struct {
	e     *env
	hc    *http.Client
	csrf  string
	token string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	hc := e.ts.Client()
	hc = &http.Client{Transport: hc.Transport, Jar: jar}
	return &client{e: e, hc: hc}
}

func (e *env) tokenClient(token string) *client {
	c := e.client()
	c.token = token
	return c
}

// login logs user in and keeps the session cookie and CSRF token.
func (e *env) login(user, password string) *client {
	e.t.Helper()
	c := e.client()
	var lr loginResponse
	if st := c.do("POST", "/api/v1/login", map[string]string{"username": user, "password": password}, &lr); st != 200 {
		e.t.Fatalf("login %s: status %d", user, st)
	}
	c.csrf = lr.CSRF
	return c
}

// do sends body (JSON-encoded unless it is []byte) and decodes the answer
// into out when out is not nil. It returns the status.
func (c *client) do(method, path string, body, out any) int {
	c.e.t.Helper()
	st, b := c.raw(method, path, body, nil)
	if out != nil && st/100 == 2 {
		if err := json.Unmarshal(b, out); err != nil {
			c.e.t.Fatalf("%s %s: decoding %s: %v", method, path, b, err)
		}
	}
	return st
}

func (c *client) raw(method, path string, body any, hdr http.Header) (int, []byte) {
	c.e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(c.e.t.Context(), method, c.e.ts.URL+path, rd)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set(csrfHeader, c.csrf)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.e.t.Fatal(err)
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			c.e.t.Errorf("%s %s: status %d without a JSON error: %q", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode, b
}

// newToken creates an API token with role through the API and returns it.
func (e *env) newToken(admin *client, name, role string) string {
	e.t.Helper()
	var tr tokenResponse
	if st := admin.do("POST", "/api/v1/tokens", map[string]string{"name": name, "role": role}, &tr); st != 201 {
		e.t.Fatalf("creating token %s: status %d", name, st)
	}
	return tr.Token
}

// auditHas reports whether the audit log has an entry matching all of
// action, actor (when not empty) and ok.
func (e *env) auditHas(action, actor string, ok bool) bool {
	e.t.Helper()
	es, err := e.st.AuditLog(e.t.Context(), 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, x := range es {
		if x.Action == action && (actor == "" || x.Actor == actor) && x.OK == ok && x.Remote != "" {
			return true
		}
	}
	return false
}

func newTLS(t testing.TB, srv *Server) *httptest.Server {
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// storeOpener opens the store newEnv uses: SQLite, or PostgreSQL inside
// TestPostgres.
var storeOpener = openStore

// TestPostgres runs the key API tests against PostgreSQL.
func TestPostgres(t *testing.T) {
	for _, c := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Session", testSession}, {"APITokens", testAPITokens}, {"LoginRateLimit", testLoginRateLimit},
		{"RolesMatrix", testRolesMatrix}, {"AlertFiltersAndPaging", testAlertFiltersAndPaging},
		{"Dashboard", testDashboard}, {"Respond", testRespond}, {"SetMode", testSetMode}, {"ScanUpload", testScanUpload},
	} {
		t.Run(c.name, func(t *testing.T) {
			storeOpener = func(t testing.TB) store.Store {
				t.Helper()
				st, err := store.Open(t.Context(), vigiltest.Postgres(t))
				if err != nil {
					t.Fatalf("opening the PostgreSQL store: %v", err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			t.Cleanup(func() { storeOpener = openStore })
			c.fn(t)
		})
	}
}
