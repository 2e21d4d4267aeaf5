package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/store"
)

const (
	defaultEnrollTTL = time.Hour
	maxEnrollTTL     = 7 * 24 * time.Hour
	minPasswordLen   = 12
)

// duration is a JSON Go duration string ("1h", "30m").
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("ttl: a duration string such as \"1h\" is expected")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("ttl: %w", err)
	}
	*d = duration(v)
	return nil
}

type enrollRequest struct {
	TTL duration `json:"ttl"`
}

type enrollResponse struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

func (s *Server) createEnrollToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var req enrollRequest
	if r.ContentLength != 0 {
		if err := decodeJSON(r, &req); err != nil {
			s.audit(r, p, "create-enroll-token", "", "refused: "+err.Error(), false)
			s.fail(w, r, err)
			return
		}
	}
	tok, t, err := issueEnrollToken(r.Context(), s.o.Store, p.Actor, time.Duration(req.TTL), s.o.Now())
	if err != nil {
		s.audit(r, p, "create-enroll-token", "", "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	s.audit(r, p, "create-enroll-token", t.Hash[:12], "expires "+t.Expires.Format(time.RFC3339), true)
	writeJSON(w, http.StatusCreated, enrollResponse{Token: tok, Expires: t.Expires})
}

// issueEnrollToken makes and stores a token valid for ttl (0: one hour;
// 1m to 7 days).
func issueEnrollToken(ctx context.Context, st store.Store, actor string, ttl time.Duration, now time.Time) (string, store.EnrollToken, error) {
	if ttl == 0 {
		ttl = defaultEnrollTTL
	}
	if ttl < time.Minute || ttl > maxEnrollTTL {
		return "", store.EnrollToken{}, errorf(http.StatusBadRequest, "ttl: %s is out of range 1m..168h", ttl)
	}
	now = now.UTC()
	tok := "vigil-enroll-" + randomToken(32)
	t := store.EnrollToken{Hash: hashSecret(tok), CreatedBy: actor, Created: now, Expires: now.Add(ttl)}
	if err := st.CreateEnrollToken(ctx, t); err != nil {
		return "", t, fmt.Errorf("creating an enrollment token: %w", err)
	}
	return tok, t, nil
}

type tokenRequest struct {
	Name string   `json:"name"`
	Role string   `json:"role"`
	TTL  duration `json:"ttl"` // 0: never expires
}

type tokenResponse struct {
	store.APIToken
	// Token is the secret, shown only in the creation response.
	Token string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var req tokenRequest
	err := decodeJSON(r, &req)
	if err == nil {
		err = checkName("name", req.Name)
	}
	if err == nil {
		err = checkRole(req.Role)
	}
	if err == nil && req.TTL < 0 {
		err = errors.New("ttl: must not be negative")
	}
	if err != nil {
		s.audit(r, p, "create-token", req.Name, "refused: "+err.Error(), false)
		s.fail(w, r, badRequest(err))
		return
	}
	// Names are what the audit log and scan sources show: keep them unique.
	existing, err := s.o.Store.APITokens(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing API tokens: %w", err))
		return
	}
	for _, x := range existing {
		if x.Name == req.Name {
			s.audit(r, p, "create-token", req.Name, "refused: name taken", false)
			writeError(w, http.StatusConflict, "an API token named %q exists", req.Name)
			return
		}
	}
	now := s.o.Now().UTC()
	secret := "vigil_" + randomToken(32)
	t := store.APIToken{ID: uuid.Must(uuid.NewV7()).String(), Name: req.Name, Hash: hashSecret(secret), Role: req.Role, CreatedBy: p.Actor, Created: now}
	if req.TTL > 0 {
		t.Expires = now.Add(time.Duration(req.TTL))
	}
	if err := s.o.Store.CreateAPIToken(r.Context(), t); err != nil {
		if errors.Is(err, store.ErrExists) {
			s.audit(r, p, "create-token", req.Name, "refused: name taken", false)
			writeError(w, http.StatusConflict, "an API token named %q exists", req.Name)
			return
		}
		s.fail(w, r, fmt.Errorf("creating API token %s: %w", req.Name, err))
		return
	}
	s.audit(r, p, "create-token", t.Name, "role "+t.Role+", id "+t.ID, true)
	writeJSON(w, http.StatusCreated, tokenResponse{APIToken: t, Token: secret})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ *principal) {
	ts, err := s.o.Store.APITokens(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing API tokens: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": nonNil(ts)})
}

func (s *Server) deleteToken(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	err := s.o.Store.DeleteAPIToken(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		s.audit(r, p, "delete-token", id, "refused: no such token", false)
		writeError(w, http.StatusNotFound, "no API token with id %q", id)
		return
	}
	if err != nil {
		s.fail(w, r, fmt.Errorf("deleting API token %s: %w", id, err))
		return
	}
	s.audit(r, p, "delete-token", id, "", true)
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

type userRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var req userRequest
	err := decodeJSON(r, &req)
	if err == nil {
		err = checkName("name", req.Name)
	}
	if err == nil {
		err = checkRole(req.Role)
	}
	if err == nil && len(req.Password) < minPasswordLen {
		err = fmt.Errorf("password: at least %d characters", minPasswordLen)
	}
	if err == nil && len(req.Password) > 1024 {
		err = errors.New("password: at most 1024 bytes")
	}
	if err != nil {
		s.audit(r, p, "create-user", req.Name, "refused: "+err.Error(), false)
		s.fail(w, r, badRequest(err))
		return
	}
	hash, err := s.hashPassword(r.Context(), req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	u := store.User{Name: req.Name, PasswordHash: hash, Role: req.Role, Created: s.o.Now().UTC()}
	if err := s.o.Store.CreateUser(r.Context(), u); err != nil {
		if errors.Is(err, store.ErrExists) {
			s.audit(r, p, "create-user", req.Name, "refused: name taken", false)
			writeError(w, http.StatusConflict, "a user named %q exists", req.Name)
			return
		}
		s.fail(w, r, fmt.Errorf("creating user %s: %w", req.Name, err))
		return
	}
	s.audit(r, p, "create-user", u.Name, "role "+u.Role, true)
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *principal) {
	us, err := s.o.Store.Users(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing users: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": nonNil(us)})
}

func (s *Server) auditLog(w http.ResponseWriter, r *http.Request, _ *principal) {
	limit, err := queryLimit(r, 200, 10000)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	es, err := s.o.Store.AuditLog(r.Context(), limit)
	if err != nil {
		s.fail(w, r, fmt.Errorf("reading the audit log: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"entries": nonNil(es)})
}

func badRequest(err error) error {
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return errorf(http.StatusBadRequest, "%v", err)
}

// queryLimit reads ?limit=, def when absent, refusing values outside
// 1..max.
func queryLimit(r *http.Request, def, max int) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > max {
		return 0, errorf(http.StatusBadRequest, "limit: %q is not a number in 1..%d", v, max)
	}
	return n, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
