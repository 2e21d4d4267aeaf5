package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// access is the least a caller needs to reach a route.
type access int

const (
	accessPublic  access = iota // no authentication
	accessAny                   // any authenticated user or token (read-only and up)
	accessAnalyst               // analyst or admin
	accessAdmin                 // admin only
)

func (a access) String() string {
	switch a {
	case accessPublic:
		return "public"
	case accessAny:
		return store.RoleReadOnly
	case accessAnalyst:
		return store.RoleAnalyst
	default:
		return store.RoleAdmin
	}
}

func roleRank(role string) access {
	switch role {
	case store.RoleAdmin:
		return accessAdmin
	case store.RoleAnalyst:
		return accessAnalyst
	case store.RoleReadOnly:
		return accessAny
	}
	return accessPublic // unknown role: nothing beyond public routes
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, p *principal)

// route is one API operation. Routes are registered on the ServeMux from
// this table, and the OpenAPI test walks the same table.
type route struct {
	method, pattern string
	access          access
	// action names a mutating operation in the audit log; refusals of it
	// are audited too.
	action  string
	maxBody int64 // 0: Options.MaxBody
	h       handlerFunc
}

func (s *Server) routeTable() []route {
	return []route{
		{method: "GET", pattern: "/healthz", access: accessPublic, h: s.healthz},
		{method: "GET", pattern: "/api/v1/openapi.json", access: accessPublic, h: s.openAPI},

		{method: "POST", pattern: "/api/v1/login", access: accessPublic, action: "login", h: s.login},
		{method: "POST", pattern: "/api/v1/logout", access: accessAny, action: "logout", h: s.logout},
		{method: "GET", pattern: "/api/v1/me", access: accessAny, h: s.me},

		{method: "GET", pattern: "/api/v1/dashboard", access: accessAny, h: s.dashboard},
		{method: "GET", pattern: "/api/v1/alerts", access: accessAny, h: s.listAlerts},
		{method: "GET", pattern: "/api/v1/alerts/{id}", access: accessAny, h: s.getAlert},
		{method: "GET", pattern: "/api/v1/incidents", access: accessAny, h: s.listIncidents},
		{method: "GET", pattern: "/api/v1/incidents/{id}", access: accessAny, h: s.getIncident},

		{method: "GET", pattern: "/api/v1/responses", access: accessAny, h: s.listResponses},
		{method: "GET", pattern: "/api/v1/responses/{id}", access: accessAny, h: s.getResponse},
		{method: "POST", pattern: "/api/v1/responses", access: accessAnalyst, action: "respond", h: s.respond},
		{method: "POST", pattern: "/api/v1/responses/{id}/undo", access: accessAnalyst, action: "undo", h: s.undo},

		{method: "GET", pattern: "/api/v1/agents", access: accessAny, h: s.listAgents},
		{method: "GET", pattern: "/api/v1/agents/{id}", access: accessAny, h: s.getAgent},
		{method: "POST", pattern: "/api/v1/enroll-tokens", access: accessAdmin, action: "create-enroll-token", h: s.createEnrollToken},

		{method: "GET", pattern: "/api/v1/inventory", access: accessAny, h: s.inventory},
		{method: "GET", pattern: "/api/v1/images/{digest}", access: accessAny, h: s.getImage},
		{method: "GET", pattern: "/api/v1/images/{digest}/sbom", access: accessAny, h: s.getSBOM},
		{method: "GET", pattern: "/api/v1/scans", access: accessAny, h: s.listScans},
		{method: "GET", pattern: "/api/v1/scans/{id}", access: accessAny, h: s.getScan},
		{method: "POST", pattern: "/api/v1/scans", access: accessAnalyst, action: "upload-scan", maxBody: -1, h: s.uploadScan},

		{method: "GET", pattern: "/api/v1/profiles", access: accessAny, h: s.listProfiles},
		{method: "POST", pattern: "/api/v1/profiles/mode", access: accessAnalyst, action: "set-mode", h: s.setMode},
		{method: "GET", pattern: "/api/v1/compliance", access: accessAny, h: s.listCompliance},
		{method: "POST", pattern: "/api/v1/compliance", access: accessAnalyst, action: "upload-compliance", maxBody: -1, h: s.uploadCompliance},

		{method: "GET", pattern: "/api/v1/audit", access: accessAdmin, h: s.auditLog},
		{method: "GET", pattern: "/api/v1/tokens", access: accessAdmin, h: s.listTokens},
		{method: "POST", pattern: "/api/v1/tokens", access: accessAdmin, action: "create-token", h: s.createToken},
		{method: "DELETE", pattern: "/api/v1/tokens/{id}", access: accessAdmin, action: "delete-token", h: s.deleteToken},
		{method: "GET", pattern: "/api/v1/users", access: accessAdmin, h: s.listUsers},
		{method: "POST", pattern: "/api/v1/users", access: accessAdmin, action: "create-user", h: s.createUser},
	}
}

// wrap applies the route's body cap, authentication, CSRF check and role
// check, auditing refusals of mutating routes.
func (s *Server) wrap(rt route) http.Handler {
	limit := rt.maxBody
	switch {
	case limit < 0:
		limit = s.o.MaxScanBody
	case limit == 0:
		limit = s.o.MaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
		}
		if rt.access == accessPublic {
			rt.h(w, r, nil)
			return
		}
		p, status, msg := s.authenticate(r)
		if p == nil {
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vigil"`)
			}
			if rt.action != "" {
				s.audit(r, nil, rt.action, r.URL.Path, "refused: "+msg, false)
			}
			writeError(w, status, "%s", msg)
			return
		}
		setActor(r.Context(), p.Actor)
		if rt.action != "" && p.Session != nil {
			got := r.Header.Get(csrfHeader)
			if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.Session.CSRF)) != 1 {
				s.audit(r, p, rt.action, r.URL.Path, "refused: missing or wrong "+csrfHeader+" header", false)
				writeError(w, http.StatusForbidden, "missing or wrong %s header (the csrf value from the login response)", csrfHeader)
				return
			}
		}
		if roleRank(p.Role) < rt.access {
			s.audit(r, p, rt.action, r.URL.Path, "refused: role "+p.Role+" may not "+rt.method+" "+rt.pattern, false)
			writeError(w, http.StatusForbidden, "role %s may not %s %s (needs %s)", p.Role, rt.method, rt.pattern, rt.access)
			return
		}
		rt.h(w, r, p)
	})
}

const (
	sessionCookie = "vigil_session"
	csrfHeader    = "X-Vigil-CSRF"
)

// principal is the authenticated caller.
type principal struct {
	Name string
	Role string
	// Actor is what the audit log and agents record: the user name, or
	// "token:<name>".
	Actor       string
	Session     *store.Session
	SessionHash string
	Token       *store.APIToken
}

// authenticate finds the caller from a Bearer token or the session
// cookie. On failure it returns the status (401, or 503 when the store
// does not answer) and why.
func (s *Server) authenticate(r *http.Request) (*principal, int, string) {
	ctx := r.Context()
	now := s.o.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return nil, http.StatusUnauthorized, "the Authorization header must be \"Bearer <API token>\""
		}
		t, err := s.o.Store.APIToken(ctx, hashSecret(strings.TrimSpace(tok)), now)
		if err != nil {
			return nil, authStatus(err), authMessage(err, "API token")
		}
		return &principal{Name: t.Name, Role: t.Role, Actor: "token:" + t.Name, Token: &t}, 0, ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return nil, http.StatusUnauthorized, "authentication required: log in (session cookie) or send Authorization: Bearer <API token>"
	}
	h := hashSecret(c.Value)
	sess, err := s.o.Store.Session(ctx, h, now)
	if err != nil {
		return nil, authStatus(err), authMessage(err, "session")
	}
	return &principal{Name: sess.User, Role: sess.Role, Actor: sess.User, Session: &sess, SessionHash: h}, 0, ""
}

func authStatus(err error) int {
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrExpired) {
		return http.StatusUnauthorized
	}
	return http.StatusServiceUnavailable
}

func authMessage(err error, what string) string {
	switch {
	case errors.Is(err, store.ErrExpired):
		return what + " expired"
	case errors.Is(err, store.ErrNotFound):
		return "unknown " + what
	}
	return "cannot check the " + what + ": the store does not answer"
}

// audit writes one audit entry; a failure to write it is logged.
func (s *Server) audit(r *http.Request, p *principal, action, target, detail string, ok bool) {
	actor := "anonymous"
	if p != nil {
		actor = p.Actor
	}
	e := store.AuditEntry{Time: s.o.Now().UTC(), Actor: actor, Action: action, Target: target, Detail: detail, Remote: remoteHost(r), OK: ok}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5e9)
	defer cancel()
	if err := s.o.Store.Audit(ctx, e); err != nil {
		s.log.Error("writing the audit log failed", "action", action, "actor", actor, "target", target, "ok", ok, "err", err)
	}
}
