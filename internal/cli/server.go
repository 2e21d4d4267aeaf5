package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/vigil-cwpp/vigil/internal/console"
	"github.com/vigil-cwpp/vigil/internal/export"
	"github.com/vigil-cwpp/vigil/internal/hub"
	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/server"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// serverConfig is what `vigil server` and `vigil up` start.
type serverConfig struct {
	listen      string // API and console (HTTPS)
	agentListen string // agents (gRPC, mutual TLS)
	stateDir    string
	storeDSN    string
	hostnames   []string
	exports     []string
	exportFile  string
	admin       string
	retention   store.Retention
}

func (c *serverConfig) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&c.listen, "listen", "127.0.0.1:8443", "address of the HTTPS API and console")
	f.StringVar(&c.agentListen, "agent-listen", ":8444", "address agents connect to (gRPC over mutual TLS)")
	f.StringVar(&c.stateDir, "state-dir", "/var/lib/vigil-server", "CA, server certificate and the embedded database")
	f.StringVar(&c.storeDSN, "store", "", "store: sqlite:PATH (default STATE-DIR/vigil.db) or postgres://user:pass@host/db")
	f.StringSliceVar(&c.hostnames, "hostname", nil, "extra DNS names or IPs for the server certificate (repeatable)")
	f.StringArrayVar(&c.exports, "export", nil, "SIEM sink, e.g. syslog+tls://siem:6514?format=cef, ocsf-file:/var/log/vigil.ocsf.json (repeatable; see docs/export.md)")
	f.StringVar(&c.exportFile, "export-config", "", "YAML file of SIEM sinks (docs/export.md)")
	f.StringVar(&c.admin, "admin", "admin", "name of the first administrator, created with a random password on first start")
	f.DurationVar(&c.retention.Alerts, "retain-alerts", 90*24*time.Hour, "delete alerts and incidents older than this (0 keeps them)")
	f.DurationVar(&c.retention.Responses, "retain-responses", 365*24*time.Hour, "delete response records older than this (0 keeps them)")
	f.DurationVar(&c.retention.Scans, "retain-scans", 90*24*time.Hour, "delete scans older than this (0 keeps them)")
	f.DurationVar(&c.retention.Audit, "retain-audit", 0, "delete audit entries older than this (0 keeps them)")
}

func newServerCmd(g *globals) *cobra.Command {
	var c serverConfig
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the server: agent enrollment and ingest, the REST API, the console and SIEM export",
		Long: `Run the Vigil server. Agents enroll with a one-time token and then stream
alerts, response records, inventory and profiles over gRPC with mutual TLS;
the HTTPS API and the web console show them and act on them; SIEM sinks
receive every alert, finding and response.

On first start the server makes its CA and a self-signed server certificate
in --state-dir (its fingerprint is printed: agents and CI pin it) and an
administrator with a random password, printed once and kept in
STATE-DIR/admin-password (mode 0600).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := startServer(cmd.Context(), g, &c)
			if err != nil {
				return &exitError{ExitError, err}
			}
			p.printInfo(g)
			return p.wait(cmd.Context())
		},
	}
	c.register(cmd)
	cmd.AddCommand(newEnrollTokenCmd(g))
	return cmd
}

// newEnrollTokenCmd makes a one-time enrollment token on the server's host,
// straight in its store (the API's POST /api/v1/enroll-tokens does the
// same for a remote admin).
func newEnrollTokenCmd(g *globals) *cobra.Command {
	var (
		stateDir, dsn string
		ttl           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "enroll-token",
		Short: "Print a one-time token an agent enrolls with (vigil agent --enroll-token)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if dsn == "" {
				dsn = "sqlite:" + filepath.Join(stateDir, "vigil.db")
			}
			st, err := store.Open(ctx, dsn)
			if err != nil {
				return &exitError{ExitError, err}
			}
			defer st.Close()
			actor := "cli"
			if u := os.Getenv("SUDO_USER"); u != "" {
				actor = "cli:" + u
			} else if u := os.Getenv("USER"); u != "" {
				actor = "cli:" + u
			}
			tok, err := server.IssueEnrollToken(ctx, st, actor, ttl, time.Now())
			if err != nil {
				return &exitError{ExitError, err}
			}
			fmt.Fprintln(g.stdout, tok)
			if !g.quiet {
				fmt.Fprintf(g.stderr, "vigil: the token works once, until %s\n", time.Now().Add(ttl).UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "/var/lib/vigil-server", "the server's state directory")
	cmd.Flags().StringVar(&dsn, "store", "", "the server's store (default sqlite:STATE-DIR/vigil.db)")
	cmd.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	return cmd
}

// platform is a running server.
type platform struct {
	cfg          *serverConfig
	ca           *pki.CA
	st           store.Store
	hub          *hub.Hub
	srv          *server.Server
	exp          *export.Manager
	grpc         *grpc.Server
	apiAddr      string
	agentAddr    string
	admin        string
	password     string // "" when the admin existed before
	passwordFile string
	errc         chan error
	cancel       context.CancelFunc // stops the API server
	apiDone      chan struct{}      // closed when it has stopped
	log          *slog.Logger
}

func startServer(ctx context.Context, g *globals, c *serverConfig) (*platform, error) {
	log := g.logger()
	if err := os.MkdirAll(c.stateDir, 0o700); err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	dsn := c.storeDSN
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(c.stateDir, "vigil.db")
	}
	st, err := store.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	p := &platform{cfg: c, st: st, errc: make(chan error, 4), log: log, admin: c.admin, apiDone: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			p.close()
		}
	}()
	if p.ca, err = pki.LoadOrCreate(filepath.Join(c.stateDir, "pki")); err != nil {
		return nil, err
	}
	hosts := append([]string{"localhost", "127.0.0.1"}, c.hostnames...)
	if h, err := os.Hostname(); err == nil {
		hosts = append(hosts, h)
	}
	tlsConf, err := p.ca.ServerTLS(hosts)
	if err != nil {
		return nil, err
	}

	ec, err := export.Load(c.exports, c.exportFile)
	if err != nil {
		return nil, err
	}
	if p.exp, err = export.New(ec, log); err != nil {
		return nil, err
	}

	p.hub = hub.New(hub.Options{Store: st, CA: p.ca, Publish: p.exp.Publish, Logger: log})
	p.srv, err = server.New(server.Options{
		Store: st, Agents: p.hub, Publish: p.exp.Publish, Console: console.Handler(), TLS: tlsConf, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	pw, created, err := p.srv.Bootstrap(ctx, c.admin)
	if err != nil {
		return nil, fmt.Errorf("creating the first administrator: %w", err)
	}
	p.passwordFile = filepath.Join(c.stateDir, "admin-password")
	if created {
		p.password = pw
		if err := os.WriteFile(p.passwordFile, []byte(c.admin+":"+pw+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("saving the first password: %w", err)
		}
	}

	apiLn, err := net.Listen("tcp", c.listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", c.listen, err)
	}
	p.apiAddr = apiLn.Addr().String()
	agentLn, err := net.Listen("tcp", c.agentListen)
	if err != nil {
		apiLn.Close()
		return nil, fmt.Errorf("--agent-listen %s: %w", c.agentListen, err)
	}
	p.agentAddr = agentLn.Addr().String()

	p.grpc = grpc.NewServer(hub.ServerOptions(tlsConf)...)
	p.hub.Register(p.grpc)
	go func() { p.errc <- p.grpc.Serve(agentLn) }()
	sctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	go func() {
		defer close(p.apiDone)
		p.errc <- p.srv.Serve(sctx, apiLn)
	}()
	go p.prune(ctx)
	ok = true
	return p, nil
}

// prune applies retention once an hour.
func (p *platform) prune(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := p.st.Prune(ctx, p.cfg.retention, time.Now())
		if err != nil && ctx.Err() == nil {
			p.log.Warn("retention", "err", err)
		} else if n > 0 {
			p.log.Info("retention", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (p *platform) url() string {
	host, port, _ := net.SplitHostPort(p.apiAddr)
	if host == "" || host == "::" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	return "https://" + net.JoinHostPort(host, port)
}

func (p *platform) printInfo(g *globals) {
	w := g.stdout
	fmt.Fprintf(w, "Vigil server\n")
	fmt.Fprintf(w, "  console and API   %s\n", p.url())
	fmt.Fprintf(w, "  agents            %s (gRPC, mutual TLS)\n", p.agentAddr)
	fmt.Fprintf(w, "  CA fingerprint    %s\n", p.ca.Fingerprint())
	if p.password != "" {
		fmt.Fprintf(w, "  first admin       user %q password %q (also in %s)\n", p.admin, p.password, p.passwordFile)
	} else {
		fmt.Fprintf(w, "  admin             the first password is in %s\n", p.passwordFile)
	}
}

// wait runs until ctx ends or a listener fails, then shuts down.
func (p *platform) wait(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-p.errc:
	}
	p.close()
	if err != nil && !errors.Is(err, grpc.ErrServerStopped) && ctx.Err() == nil {
		return &exitError{ExitError, err}
	}
	return nil
}

func (p *platform) close() {
	if p.cancel != nil {
		// Requests in flight finish (the server gives them 10 s) before
		// the store they use is closed.
		p.cancel()
		select {
		case <-p.apiDone:
		case <-time.After(15 * time.Second):
		}
	}
	if p.grpc != nil {
		stopped := make(chan struct{})
		go func() { p.grpc.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(5 * time.Second):
			p.grpc.Stop()
		}
	}
	if p.exp != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p.exp.Close(cctx)
		cancel()
	}
	if p.st != nil {
		p.st.Close()
	}
}

// tlsPinned is the client side of a server this binary started: trust its
// CA only.
func tlsPinned(ca *pki.CA) *tls.Config {
	return pki.PinnedTLS(ca.Fingerprint())
}
