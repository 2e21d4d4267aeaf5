package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/report"
	"github.com/vigil-cwpp/vigil/internal/sbom"
	"github.com/vigil-cwpp/vigil/internal/scan"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/version"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// newUpCmd is the single-node platform: the server with its embedded store,
// this host's agent enrolled to it, the console, and a first scan of the
// local Docker images reported into it.
func newUpCmd(g *globals) *cobra.Command {
	var (
		c          serverConfig
		tf         targetFlags
		noAgent    bool
		noScan     bool
		agentState string
		agentArgs  []string
		dbPath     string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole platform on this node: server, console, local agent, and a first scan of the local images",
		Long: `Run the whole platform on this node:
  - the server with its embedded SQLite store (vigil server),
  - the console on https://127.0.0.1:8443, with the first administrator's
    password printed on first start,
  - this host's agent (vigil agent), enrolled to the server with a one-time
    token, restarted if it exits; its log is STATE-DIR/agent.log,
  - a scan of every local Docker image, and the CIS Debian Linux and Docker
    benchmarks of this host, reported into the server.
It runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			p, err := startServer(ctx, g, &c)
			if err != nil {
				return &exitError{ExitError, err}
			}
			p.printInfo(g)
			if !noAgent {
				go p.superviseAgent(ctx, g, agentState, agentArgs)
			}
			if !noScan {
				go func() {
					p.firstScan(ctx, g, &tf, dbPath)
					p.firstBench(ctx, g)
				}()
			}
			return p.wait(ctx)
		},
	}
	c.register(cmd)
	tf.register(cmd)
	f := cmd.Flags()
	must(f.Set("agent-listen", "127.0.0.1:8444"))
	f.Lookup("agent-listen").DefValue = "127.0.0.1:8444"
	f.BoolVar(&noAgent, "no-agent", false, "do not start the local agent")
	f.BoolVar(&noScan, "no-scan", false, "do not scan the local images nor run the CIS benchmarks")
	f.StringVar(&agentState, "agent-state-dir", "/var/lib/vigil", "the local agent's state directory (profiles, certificate, spool)")
	f.StringArrayVar(&agentArgs, "agent-arg", nil, "extra argument for the local agent, e.g. --agent-arg=--enforce (repeatable)")
	f.StringVar(&dbPath, "db", vulndb.DefaultPath(), "vulnerability database for the first scan; without one the scan is an inventory")
	return cmd
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// superviseAgent runs `vigil agent` enrolled to this server and restarts
// it, with back-off, whenever it exits, until ctx ends.
func (p *platform) superviseAgent(ctx context.Context, g *globals, stateDir string, extra []string) {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: the local agent cannot start: %v\n", err)
		return
	}
	logPath := filepath.Join(p.cfg.stateDir, "agent.log")
	backoff := time.Second
	for ctx.Err() == nil {
		tok, err := p.srv.NewEnrollToken(ctx, "vigil-up", 10*time.Minute)
		if err != nil {
			fmt.Fprintf(g.stderr, "vigil: enrollment token for the local agent: %v\n", err)
			return
		}
		args := append([]string{"agent", "--server", p.agentAddr, "--enroll-token", tok,
			"--ca-fingerprint", p.ca.Fingerprint(), "--state-dir", stateDir, "--emit", "alerts"}, extra...)
		logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(g.stderr, "vigil: agent log %s: %v\n", logPath, err)
			return
		}
		cmd := exec.CommandContext(ctx, self, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		start := time.Now()
		fmt.Fprintf(g.stdout, "  local agent       started (log %s)\n", logPath)
		err = cmd.Run()
		logf.Close()
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > time.Minute {
			backoff = time.Second
		}
		fmt.Fprintf(g.stderr, "vigil: the local agent exited (%v); restarting in %s; see %s\n", err, backoff, logPath)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

// firstScan scans every local Docker image and reports each into the
// server over its own API, as CI does with --report-to.
func (p *platform) firstScan(ctx context.Context, g *globals, tf *targetFlags, dbPath string) {
	imgs, err := localImages(ctx)
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: first scan skipped: Docker: %v\n", err)
		return
	}
	var db *vulndb.DB
	if _, err := os.Stat(dbPath); err == nil {
		if db, err = vulndb.Open(dbPath); err != nil {
			fmt.Fprintf(g.stderr, "vigil: first scan without vulnerabilities: %v\n", err)
		} else {
			defer db.Close()
		}
	} else {
		fmt.Fprintf(g.stderr, "vigil: no vulnerability database at %s (vigil db update or vigil db import): the first scan is an inventory\n", dbPath)
	}
	tok, err := p.srv.NewAPIToken(ctx, "vigil-up first scan", store.RoleAnalyst, time.Hour)
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: first scan: %v\n", err)
		return
	}
	rf := reportFlags{url: p.url(), token: tok, caFingerprint: p.ca.Fingerprint()}
	hc, err := rf.client()
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: first scan: %v\n", err)
		return
	}
	quiet := *g
	quiet.quiet = true
	var lines []string
	for _, im := range imgs {
		var res *scan.Result
		if db != nil {
			res, err = runScan(ctx, &quiet, "docker:"+im, tf, db, &vex.Filter{})
		} else {
			res, err = runScan(ctx, &quiet, "docker:"+im, tf, nil, nil)
		}
		if err != nil {
			lines = append(lines, fmt.Sprintf("%s\t-\t-\t-\terror: %v", im, err))
			continue
		}
		rs := &report.Scan{Inventory: res.Inventory, Findings: res.Findings, Suppressed: res.Suppressed,
			Tool: report.Tool{Name: "vigil", Version: version.Version}}
		var rj, sb bytes.Buffer
		err = report.WriteJSON(&rj, rs)
		if err == nil {
			err = sbom.EncodeCycloneDXWithVulns(&sb, res.Inventory, res.Findings, sbom.Options{ToolName: "vigil", ToolVersion: version.Version})
		}
		if err == nil {
			_, err = uploadScan(ctx, hc, rf.url, tok, rj.Bytes(), sb.Bytes())
		}
		status := "reported"
		if err != nil {
			status = "error: " + err.Error()
		}
		kev := 0
		for _, f := range res.Findings {
			if f.KEV != nil {
				kev++
			}
		}
		lines = append(lines, fmt.Sprintf("%s\t%d\t%d\t%d\t%s", im, len(res.Inventory.Packages), len(res.Findings), kev, status))
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "First scan of %d local images:\nIMAGE\tPACKAGES\tFINDINGS\tKEV\tSTATUS\n", len(imgs))
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	tw.Flush()
}

// firstBench runs the CIS Debian Linux and Docker benchmarks on this host
// and reports them into the server, as `vigil bench --report-to` does.
func (p *platform) firstBench(ctx context.Context, g *globals) {
	tok, err := p.srv.NewAPIToken(ctx, "vigil-up benchmarks", store.RoleAnalyst, time.Hour)
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: benchmarks: %v\n", err)
		return
	}
	rf := reportFlags{url: p.url(), token: tok, caFingerprint: p.ca.Fingerprint()}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "CIS benchmarks of this host:\nBENCHMARK\tPASS\tFAIL\tWARN\tMANUAL\tERROR\tSTATUS\n")
	for _, bench := range []string{compliance.BenchLinux, compliance.BenchDocker} {
		rep, err := benchReport(ctx, g, bench, &benchFlags{root: "/"})
		if err != nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\terror: %v\n", bench, err)
			continue
		}
		status := "reported"
		if _, err := uploadCompliance(ctx, &rf, rep); err != nil {
			status = "error: " + err.Error()
		}
		sm := rep.Summary
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\n", bench, sm.Pass, sm.Fail, sm.Warn, sm.Manual, sm.Error, status)
	}
	tw.Flush()
}

// localImages lists the tagged images of the local Docker daemon.
func localImages(ctx context.Context) ([]string, error) {
	c, err := client.New(client.FromEnv)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	res, err := c.ImageList(ctx, client.ImageListOptions{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, im := range res.Items {
		for _, t := range im.RepoTags {
			if t != "<none>:<none>" {
				out = append(out, t)
				break
			}
		}
	}
	slices.Sort(out)
	return out, nil
}
