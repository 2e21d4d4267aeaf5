// Package server is Vigil's HTTPS REST API: console users, sessions and
// API tokens with roles, the audit log of operator actions, the dashboard,
// alerts and incidents, response actions pushed to agents, inventory and
// scans (CI uploads included), profiles, enrollment tokens, health and the
// OpenAPI document that describes every route.
//
// It decides access (who may do what) and turns requests into store reads,
// store writes and agent commands; it neither stores anything itself (that
// is internal/store) nor speaks to agents directly (that is the Agents it
// is given, internal/hub in the binary). It does not import the console:
// the console's handler is handed in through Options.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Agents is the channel to connected agents (internal/hub's *Hub).
type Agents interface {
	// Command pushes c to the agent and waits for its result or ctx.
	Command(ctx context.Context, agentID string, c wire.Command) (wire.CommandResult, error)
	// Connected lists the IDs of the agents connected now.
	Connected() []string
}

// Options configure a Server. Store is required; the zero value of every
// other field means its default.
type Options struct {
	Store store.Store
	// Agents carries commands to agents; nil answers 409 to every
	// response and mode switch.
	Agents Agents
	// Publish receives every batch the server writes (responses taken
	// from the API, CI scans), after it is stored: the SIEM export.
	Publish func(*store.Batch)
	// Console is mounted at "/" (the embedded web console); nil serves
	// 404 there.
	Console http.Handler
	// TLS is the listener's configuration (pki's server config); Serve
	// refuses to start without it.
	TLS    *tls.Config
	Logger *slog.Logger

	// MaxBody caps request bodies (default 1 MiB); MaxScanBody caps
	// POST /api/v1/scans (default 64 MiB).
	MaxBody, MaxScanBody int64
	// SessionTTL is how long a console session lasts (default 12h).
	SessionTTL time.Duration
	// CommandTimeout bounds one command to an agent (default 30s).
	CommandTimeout time.Duration
	// LoginFailures failed logins per LoginWindow from one remote address
	// are allowed before the next attempts get 429 (default 10 per minute).
	LoginFailures int
	LoginWindow   time.Duration
	// Argon2 are the parameters new password hashes are made with
	// (default DefaultArgon2). Existing hashes carry their own.
	Argon2 Argon2Params
	// DashboardTTL is how long the dashboard's figures are served before
	// they are recomputed in the background (default 10s; the stale copy
	// is served while that runs).
	DashboardTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Server serves the REST API.
type Server struct {
	o       Options
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	routes  []route
	limiter *loginLimiter
	health  *healthCache
	dash    *dashCache
	// hashSem bounds concurrent password hashing (argon2id takes tens of
	// MiB each).
	hashSem chan struct{}
}

// New checks o and builds the server's routes.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: Options.Store is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxScanBody <= 0 {
		o.MaxScanBody = 64 << 20
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.CommandTimeout <= 0 {
		o.CommandTimeout = 30 * time.Second
	}
	if o.LoginFailures <= 0 {
		o.LoginFailures = 10
	}
	if o.LoginWindow <= 0 {
		o.LoginWindow = time.Minute
	}
	if o.Argon2 == (Argon2Params{}) {
		o.Argon2 = DefaultArgon2
	}
	if err := o.Argon2.check(); err != nil {
		return nil, fmt.Errorf("server: Options.Argon2: %w", err)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DashboardTTL <= 0 {
		o.DashboardTTL = 10 * time.Second
	}
	s := &Server{
		o:       o,
		log:     o.Logger,
		mux:     http.NewServeMux(),
		limiter: newLoginLimiter(o.LoginFailures, o.LoginWindow),
		hashSem: make(chan struct{}, 2),
	}
	s.health = &healthCache{ttl: time.Second, ping: o.Store.Ping, now: o.Now}
	s.dash = &dashCache{ttl: o.DashboardTTL, now: o.Now}
	s.routes = s.routeTable()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	// A known path asked with another method gets 405 with Allow; the
	// method-less mux below finds the path's pattern.
	allow := map[string][]string{}
	paths := http.NewServeMux()
	for _, rt := range s.routes {
		if _, ok := allow[rt.pattern]; !ok {
			paths.Handle(rt.pattern, http.NotFoundHandler())
		}
		allow[rt.pattern] = append(allow[rt.pattern], rt.method)
	}
	s.mux.Handle("/api/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pat := paths.Handler(r); pat != "" {
			w.Header().Set("Allow", strings.Join(allow[pat], ", "))
			writeError(w, http.StatusMethodNotAllowed, "%s is not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow[pat], ", "))
			return
		}
		writeError(w, http.StatusNotFound, "no such API route: %s %s", r.Method, r.URL.Path)
	}))
	if o.Console != nil {
		s.mux.Handle("/", o.Console)
	} else {
		s.mux.Handle("/", http.NotFoundHandler())
	}
	s.handler = s.recoverer(s.logRequests(securityHeaders(s.mux)))
	return s, nil
}

// Handler is the whole HTTP handler: API, health, OpenAPI and console.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves HTTPS on ln until ctx ends, then shuts down gracefully
// (requests in flight get up to 10 seconds). It returns nil after a
// shutdown caused by ctx.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.o.TLS == nil {
		return errors.New("server: Options.TLS is required to serve")
	}
	tc := s.o.TLS.Clone()
	// pki's server configuration asks agents for client certificates; the
	// API authenticates with sessions and tokens, and a certificate
	// request makes some browsers prompt for a certificate.
	tc.ClientAuth, tc.ClientCAs = tls.NoClientCert, nil
	if len(tc.NextProtos) == 0 {
		tc.NextProtos = []string{"h2", "http/1.1"}
	}
	hs := &http.Server{
		Handler:           s.handler,
		TLSConfig:         tc,
		ReadHeaderTimeout: 10 * time.Second,
		// Scan uploads of up to MaxScanBody must fit in ReadTimeout.
		ReadTimeout:    5 * time.Minute,
		WriteTimeout:   5 * time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:    func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(tls.NewListener(ln, tc)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("server: serving %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := hs.Shutdown(sctx)
	if e := <-errc; e != nil && !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	if err != nil {
		return fmt.Errorf("server: shutting down: %w", err)
	}
	return nil
}

// Bootstrap creates the first admin, named admin, with a random password
// when the store has no user at all, and returns that password (the CLI
// prints it once). With users already there it returns created false and
// changes nothing.
func (s *Server) Bootstrap(ctx context.Context, admin string) (password string, created bool, err error) {
	if err := checkName("admin", admin); err != nil {
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	users, err := s.o.Store.Users(ctx)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: listing users: %w", err)
	}
	if len(users) > 0 {
		return "", false, nil
	}
	password = randomToken(18)
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: %w", err)
	}
	err = s.o.Store.CreateUser(ctx, store.User{Name: admin, PasswordHash: hash, Role: store.RoleAdmin, Created: s.o.Now().UTC()})
	if errors.Is(err, store.ErrExists) {
		// Another replica bootstrapped at the same moment.
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("bootstrap: creating %s: %w", admin, err)
	}
	_ = s.o.Store.Audit(ctx, store.AuditEntry{Time: s.o.Now().UTC(), Actor: "server", Action: "create-user", Target: admin, Detail: "first admin (bootstrap)", OK: true})
	return password, true, nil
}
