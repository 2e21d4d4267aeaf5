package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// dummyHash is checked against when the user does not exist, so that an
// unknown name takes as long as a wrong password.
var (
	dummyOnce sync.Once
	dummyHash string
)

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type loginResponse struct {
	User    string    `json:"user"`
	Role    string    `json:"role"`
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *principal) {
	remote := remoteHost(r)
	if wait := s.limiter.blocked(remote, s.o.Now()); wait > 0 {
		s.audit(r, nil, "login", "", "refused: too many failed logins from "+remote, false)
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
		writeError(w, http.StatusTooManyRequests, "too many failed logins from %s; retry in %s", remote, wait.Round(time.Second))
		return
	}
	var req loginRequest
	if err := decodeJSON(r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	if req.Username == "" || req.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	ctx := r.Context()
	u, err := s.o.Store.User(ctx, req.Username)
	hash := u.PasswordHash
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.fail(w, r, fmt.Errorf("looking up user %s: %w", req.Username, err))
			return
		}
		dummyOnce.Do(func() { dummyHash, _ = HashPassword("not a password", s.o.Argon2) })
		hash = dummyHash
	}
	ok, cerr := s.checkPassword(ctx, hash, req.Password)
	if cerr != nil && err == nil {
		s.log.Error("checking a password failed", "user", req.Username, "err", cerr)
	}
	if err != nil || !ok {
		s.limiter.fail(remote, s.o.Now())
		s.audit(r, &principal{Actor: req.Username}, "login", req.Username, "wrong user name or password", false)
		writeError(w, http.StatusUnauthorized, "wrong user name or password")
		return
	}
	now := s.o.Now().UTC()
	secret := randomToken(32)
	sess := store.Session{
		Hash: hashSecret(secret), User: u.Name, Role: u.Role, CSRF: randomToken(32),
		Created: now, Expires: now.Add(s.o.SessionTTL),
	}
	if err := s.o.Store.CreateSession(ctx, sess); err != nil {
		s.fail(w, r, fmt.Errorf("creating a session: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: secret, Path: "/", Expires: sess.Expires, MaxAge: int(s.o.SessionTTL.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
	s.audit(r, &principal{Actor: u.Name}, "login", u.Name, "", true)
	writeJSON(w, http.StatusOK, loginResponse{User: u.Name, Role: u.Role, CSRF: sess.CSRF, Expires: sess.Expires})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.Session == nil {
		writeError(w, http.StatusBadRequest, "logout ends a console session; API tokens are deleted with DELETE /api/v1/tokens/{id}")
		return
	}
	if err := s.o.Store.DeleteSession(r.Context(), p.SessionHash); err != nil && !errors.Is(err, store.ErrNotFound) {
		s.fail(w, r, fmt.Errorf("deleting the session: %w", err))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	s.audit(r, p, "logout", p.Name, "", true)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type meResponse struct {
	User    string    `json:"user"`
	Role    string    `json:"role"`
	Kind    string    `json:"kind"` // "session" or "token"
	Expires time.Time `json:"expires,omitzero"`
	CSRF    string    `json:"csrf,omitempty"`
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *principal) {
	m := meResponse{User: p.Name, Role: p.Role, Kind: "token"}
	if p.Session != nil {
		m.Kind, m.Expires, m.CSRF = "session", p.Session.Expires, p.Session.CSRF
	} else if p.Token != nil {
		m.Expires = p.Token.Expires
	}
	writeJSON(w, http.StatusOK, m)
}

// loginLimiter counts failed logins per remote address in a sliding
// window.
type loginLimiter struct {
	max    int
	window time.Duration
	mu     sync.Mutex
	fails  map[string][]time.Time
}

func newLoginLimiter(max int, window time.Duration) *loginLimiter {
	return &loginLimiter{max: max, window: window, fails: make(map[string][]time.Time)}
}

// blocked returns how long remote must wait, 0 when it may try.
func (l *loginLimiter) blocked(remote string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.prune(remote, now)
	if len(f) < l.max {
		return 0
	}
	return f[0].Add(l.window).Sub(now)
}

func (l *loginLimiter) fail(remote string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.prune(remote, now)
	l.fails[remote] = append(f, now)
	// Bound memory: forget addresses whose failures are all old.
	if len(l.fails) > 10000 {
		for k := range l.fails {
			l.prune(k, now)
		}
	}
}

func (l *loginLimiter) prune(remote string, now time.Time) []time.Time {
	f := l.fails[remote]
	i := 0
	for i < len(f) && now.Sub(f[i]) >= l.window {
		i++
	}
	f = f[i:]
	if len(f) == 0 {
		delete(l.fails, remote)
		return nil
	}
	l.fails[remote] = f
	return f
}

// checkName accepts user and token names: 1–64 letters, digits, and
// ". _ - @".
func checkName(field, name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%s: 1 to 64 characters", field)
	}
	for _, c := range name {
		if !(unicode.IsLetter(c) || unicode.IsDigit(c) || c == '.' || c == '_' || c == '-' || c == '@') {
			return fmt.Errorf("%s: %q is not allowed (letters, digits and . _ - @)", field, c)
		}
	}
	return nil
}

func checkRole(role string) error {
	switch role {
	case store.RoleAdmin, store.RoleAnalyst, store.RoleReadOnly:
		return nil
	}
	return fmt.Errorf("role: %q is not one of admin, analyst, read-only", role)
}

// ctxTimeout is a child of r's context bounded by d.
func ctxTimeout(r *http.Request, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d)
}
