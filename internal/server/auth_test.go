package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery", testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with the parameters", h)
	}
	h2, _ := HashPassword("correct horse battery", testArgon2)
	if h == h2 {
		t.Error("two hashes of one password are equal: no random salt")
	}
	for _, c := range []struct {
		pw   string
		want bool
	}{{"correct horse battery", true}, {"correct horse batterY", false}, {"", false}} {
		ok, err := CheckPassword(h, c.pw)
		if err != nil || ok != c.want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", c.pw, ok, err, c.want)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5", "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$a2V5"} {
		if ok, err := CheckPassword(bad, "x"); ok || err == nil {
			t.Errorf("CheckPassword(%q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

// TestSession: login sets a hardened cookie and returns the CSRF token;
// mutating requests need the token; logout ends the session; sessions
// expire after SessionTTL.
func TestSession(t *testing.T) { testSession(t) }

func testSession(t *testing.T) {
	e := newEnv(t)
	anon := e.client()
	if st := anon.do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("GET /me without auth: %d, want 401", st)
	}
	if st := anon.do("POST", "/api/v1/login", map[string]string{"username": "admin", "password": "wrong password"}, nil); st != 401 {
		t.Errorf("wrong password: %d, want 401", st)
	}
	if st := anon.do("POST", "/api/v1/login", map[string]string{"username": "nobody", "password": "wrong password"}, nil); st != 401 {
		t.Errorf("unknown user: %d, want 401", st)
	}
	if !e.auditHas("login", "admin", false) || !e.auditHas("login", "nobody", false) {
		t.Error("failed logins not audited")
	}

	// The cookie's attributes, read off the raw response.
	st, _ := anon.raw("POST", "/api/v1/login", map[string]string{"username": "admin", "password": e.adminPW}, nil)
	if st != 200 {
		t.Fatalf("login: %d", st)
	}
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/login", strings.NewReader(`{"username":"admin","password":"`+e.adminPW+`"}`))
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || len(ck.Value) < 40 || ck.MaxAge != int((12*time.Hour).Seconds()) {
		t.Errorf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict, 32 random bytes, 12h", ck)
	}
	if !e.auditHas("login", "admin", true) {
		t.Error("login not audited")
	}

	c := e.login("admin", e.adminPW)
	var me meResponse
	if st := c.do("GET", "/api/v1/me", nil, &me); st != 200 || me.User != "admin" || me.Role != "admin" || me.Kind != "session" {
		t.Errorf("GET /me: %d %+v", st, me)
	}
	// A mutating request without the CSRF header is refused and audited.
	csrf := c.csrf
	c.csrf = ""
	if st := c.do("POST", "/api/v1/enroll-tokens", map[string]string{}, nil); st != 403 {
		t.Errorf("POST without %s: %d, want 403", csrfHeader, st)
	}
	c.csrf = "wrong" + csrf
	if st := c.do("POST", "/api/v1/enroll-tokens", map[string]string{}, nil); st != 403 {
		t.Errorf("POST with a wrong %s: %d, want 403", csrfHeader, st)
	}
	if !e.auditHas("create-enroll-token", "admin", false) {
		t.Error("CSRF refusal not audited")
	}
	c.csrf = csrf
	var et enrollResponse
	if st := c.do("POST", "/api/v1/enroll-tokens", map[string]string{}, &et); st != 201 || !strings.HasPrefix(et.Token, "vigil-enroll-") {
		t.Errorf("POST with CSRF: %d %+v", st, et)
	}
	if got, want := et.Expires, e.clk.Now().Add(time.Hour); !got.Equal(want) {
		t.Errorf("enroll token expires %s, want %s (default 1h)", got, want)
	}

	// Logout ends the session.
	if st := c.do("POST", "/api/v1/logout", nil, nil); st != 200 {
		t.Errorf("logout: %d", st)
	}
	if !e.auditHas("logout", "admin", true) {
		t.Error("logout not audited")
	}
	// The jar dropped the cookie; replay the old one by hand.
	if st := c.do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("GET /me after logout: %d, want 401", st)
	}

	// Expiry: 12h later the session is gone.
	c2 := e.login("admin", e.adminPW)
	e.clk.Add(11 * time.Hour)
	if st := c2.do("GET", "/api/v1/me", nil, nil); st != 200 {
		t.Errorf("GET /me after 11h: %d, want 200", st)
	}
	e.clk.Add(time.Hour + time.Second)
	if st := c2.do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("GET /me after 12h: %d, want 401", st)
	}
}

// TestSessionReplayAfterLogout sends a logged-out session's cookie again.
func TestSessionReplayAfterLogout(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/login", strings.NewReader(`{"username":"admin","password":"`+e.adminPW+`"}`))
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	send := func(method, path, csrf string) int {
		req, _ := http.NewRequest(method, e.ts.URL+path, nil)
		for _, c := range cookies {
			req.AddCookie(c)
		}
		if csrf != "" {
			req.Header.Set(csrfHeader, csrf)
		}
		resp, err := e.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send("GET", "/api/v1/me", ""); st != 200 {
		t.Fatalf("GET /me with the cookie: %d", st)
	}
	c := e.client()
	c.hc.Jar.SetCookies(req.URL, cookies)
	var me meResponse
	c.do("GET", "/api/v1/me", nil, &me)
	if st := send("POST", "/api/v1/logout", me.CSRF); st != 200 {
		t.Fatalf("logout: %d", st)
	}
	if st := send("GET", "/api/v1/me", ""); st != 401 {
		t.Errorf("the logged-out cookie still works: %d", st)
	}
}

// TestLoginRateLimit: after 10 failures in a minute from one address the
// next attempt gets 429, even with the right password, until the window
// passes.
func TestLoginRateLimit(t *testing.T) { testLoginRateLimit(t) }

func testLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for i := range 10 {
		if st := c.do("POST", "/api/v1/login", map[string]string{"username": "admin", "password": "guess" + string(rune('a'+i))}, nil); st != 401 {
			t.Fatalf("failure %d: %d, want 401", i, st)
		}
	}
	st, _ := c.raw("POST", "/api/v1/login", map[string]string{"username": "admin", "password": e.adminPW}, nil)
	if st != 429 {
		t.Errorf("11th attempt: %d, want 429", st)
	}
	if !e.auditHas("login", "anonymous", false) {
		t.Error("a rate-limited login was not audited")
	}
	e.clk.Add(61 * time.Second)
	if st := c.do("POST", "/api/v1/login", map[string]string{"username": "admin", "password": e.adminPW}, nil); st != 200 {
		t.Errorf("after the window: %d, want 200", st)
	}
}

// TestAPITokens: created once with its secret, listed without it, used as
// a Bearer token with its role, deleted and refused afterwards.
func TestAPITokens(t *testing.T) { testAPITokens(t) }

func testAPITokens(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	var tr tokenResponse
	if st := admin.do("POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "analyst", "ttl": "24h"}, &tr); st != 201 {
		t.Fatalf("create token: %d", st)
	}
	if !strings.HasPrefix(tr.Token, "vigil_") || tr.ID == "" || tr.Role != "analyst" || !tr.Expires.Equal(e.clk.Now().Add(24*time.Hour)) {
		t.Errorf("created token %+v", tr)
	}
	if st := admin.do("POST", "/api/v1/tokens", map[string]any{"name": "ci", "role": "analyst"}, nil); st != 409 {
		t.Errorf("second token named ci: %d, want 409", st)
	}
	if st := admin.do("POST", "/api/v1/tokens", map[string]any{"name": "x", "role": "root"}, nil); st != 400 {
		t.Errorf("role root: %d, want 400", st)
	}
	st, body := admin.raw("GET", "/api/v1/tokens", nil, nil)
	if st != 200 || strings.Contains(string(body), tr.Token) || !strings.Contains(string(body), `"ci"`) {
		t.Errorf("GET /tokens: %d %s (must list ci without its secret)", st, body)
	}
	ci := e.tokenClient(tr.Token)
	var me meResponse
	if st := ci.do("GET", "/api/v1/me", nil, &me); st != 200 || me.User != "ci" || me.Role != "analyst" || me.Kind != "token" {
		t.Errorf("GET /me with the token: %d %+v", st, me)
	}
	if st := ci.do("GET", "/api/v1/tokens", nil, nil); st != 403 {
		t.Errorf("analyst token on GET /tokens: %d, want 403", st)
	}
	if st := e.tokenClient(tr.Token+"x").do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("a wrong token: %d, want 401", st)
	}
	// Expiry.
	e.clk.Add(25 * time.Hour)
	if st := ci.do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("expired token: %d, want 401", st)
	}
	e.clk.Add(-25 * time.Hour)
	admin = e.login("admin", e.adminPW)
	if st := admin.do("DELETE", "/api/v1/tokens/"+tr.ID, nil, nil); st != 200 {
		t.Errorf("delete: %d", st)
	}
	if st := ci.do("GET", "/api/v1/me", nil, nil); st != 401 {
		t.Errorf("deleted token: %d, want 401", st)
	}
	if st := admin.do("DELETE", "/api/v1/tokens/"+tr.ID, nil, nil); st != 404 {
		t.Errorf("deleting again: %d, want 404", st)
	}
	for _, a := range []struct {
		action string
		ok     bool
	}{{"create-token", true}, {"create-token", false}, {"delete-token", true}, {"delete-token", false}} {
		if !e.auditHas(a.action, "admin", a.ok) {
			t.Errorf("no audit entry %s ok=%v", a.action, a.ok)
		}
	}
}

// TestUsers: an admin creates an analyst, who logs in with that role.
func TestUsers(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	if st := admin.do("POST", "/api/v1/users", map[string]string{"name": "ana", "password": "short", "role": "analyst"}, nil); st != 400 {
		t.Errorf("short password: %d, want 400", st)
	}
	if st := admin.do("POST", "/api/v1/users", map[string]string{"name": "ana", "password": "a long enough password", "role": "analyst"}, nil); st != 201 {
		t.Fatalf("create user: %d", st)
	}
	if st := admin.do("POST", "/api/v1/users", map[string]string{"name": "ana", "password": "a long enough password", "role": "analyst"}, nil); st != 409 {
		t.Errorf("second user ana: %d, want 409", st)
	}
	ana := e.login("ana", "a long enough password")
	var me meResponse
	if ana.do("GET", "/api/v1/me", nil, &me); me.Role != "analyst" {
		t.Errorf("ana's role %q", me.Role)
	}
	if st := ana.do("POST", "/api/v1/users", map[string]string{"name": "eve", "password": "a long enough password", "role": "admin"}, nil); st != 403 {
		t.Errorf("analyst creating an admin: %d, want 403", st)
	}
	if !e.auditHas("create-user", "admin", true) || !e.auditHas("create-user", "ana", false) {
		t.Error("user creation / refusal not audited")
	}
	// Bootstrap does nothing once users exist.
	if pw, created, err := e.srv.Bootstrap(t.Context(), "admin2"); err != nil || created || pw != "" {
		t.Errorf("second Bootstrap: %q %v %v", pw, created, err)
	}
}

// TestEnrollTokens: the token shown once is stored by its hex SHA-256 (the
// hub's lookup), works once, expires with its ttl; out-of-range ttls are
// refused; the CLI path (IssueEnrollToken) stores and audits the same way.
func TestEnrollTokens(t *testing.T) {
	e := newEnv(t)
	admin := e.login("admin", e.adminPW)
	var et enrollResponse
	if st := admin.do("POST", "/api/v1/enroll-tokens", map[string]string{"ttl": "2h"}, &et); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if !et.Expires.Equal(e.clk.Now().Add(2 * time.Hour)) {
		t.Errorf("expires %s, want now+2h", et.Expires)
	}
	sum := sha256.Sum256([]byte(et.Token))
	hash := hex.EncodeToString(sum[:])
	if err := e.st.UseEnrollToken(t.Context(), hash, "agent-x", e.clk.Now()); err != nil {
		t.Fatalf("using the token by its SHA-256: %v", err)
	}
	if err := e.st.UseEnrollToken(t.Context(), hash, "agent-y", e.clk.Now()); !errors.Is(err, store.ErrTokenUsed) {
		t.Errorf("second use: %v, want ErrTokenUsed", err)
	}
	for _, ttl := range []string{"200h", "30s", "-1h"} {
		if st := admin.do("POST", "/api/v1/enroll-tokens", map[string]string{"ttl": ttl}, nil); st != 400 {
			t.Errorf("ttl %s: %d, want 400", ttl, st)
		}
	}
	if !e.auditHas("create-enroll-token", "admin", true) || !e.auditHas("create-enroll-token", "admin", false) {
		t.Error("enroll tokens not audited")
	}

	tok, err := IssueEnrollToken(t.Context(), e.st, "cli:root", 0, e.clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256([]byte(tok))
	if err := e.st.UseEnrollToken(t.Context(), hex.EncodeToString(sum[:]), "agent-z", e.clk.Now().Add(61*time.Minute)); !errors.Is(err, store.ErrExpired) {
		t.Errorf("a default (1h) token used after 61 minutes: %v, want ErrExpired", err)
	}
	if _, err := IssueEnrollToken(t.Context(), e.st, "cli:root", 8*24*time.Hour, e.clk.Now()); err == nil {
		t.Error("an 8-day token was issued")
	}
	es, _ := e.st.AuditLog(t.Context(), 100)
	found := false
	for _, x := range es {
		found = found || (x.Actor == "cli:root" && x.Action == "create-enroll-token" && x.OK)
	}
	if !found {
		t.Error("IssueEnrollToken did not audit")
	}
}
