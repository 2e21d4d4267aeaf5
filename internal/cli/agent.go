package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/agent"
	"github.com/vigil-cwpp/vigil/internal/fim"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/sensor"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/version"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

func newAgentCmd(g *globals) *cobra.Command {
	var (
		output     string
		file       string
		metrics    string
		hostname   string
		prefixes   []string
		emit       []string
		ruleFiles  []string
		noRules    bool
		window     time.Duration
		stateDir   string
		noProfiles bool
		learn      time.Duration
		zeroDrift  bool
		policyFile string
		enforce    bool
		noResponse bool
		control    string
		fallbacks  string
		server     string
		enrollTok  string
		caFP       string
		caFile     string
		spoolMax   int64
		fimConfig  string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: eBPF events with container identity, Falco-compatible rules, profiles and response",
		Long: `Run the node agent. It loads Vigil's eBPF programs on kernel tracepoints and
writes one JSON line per event (process exec/fork/exit, file opens and
changes, connect/accept/bind/listen, privilege and kernel actions), each
with its process ancestry and workload (host, container, pod), and one JSON
line per alert ("type": "alert") from the rules and behaviour profiles.

Rules: the built-in ruleset (Falco's stable rules, unmodified, plus Vigil's
own) or --rules FILE... (Falco YAML; later files override earlier ones).
SIGHUP reloads the rules files; when the new rules fail to load the agent
says why and keeps the previous ones.

Profiles: each workload class (image repository or Kubernetes workload) is
learned for --learn (discover), then deviations alert (monitor); a class
switched to protect (vigil profile mode) has deviations blocked.

Response: --policy FILE decides actions (kill, freeze, isolate, stop) per
class; without it nothing is enforced and what would have been done is
recorded (monitor-only). --enforce turns the default policy's actions on.

Server: --server HOST:PORT reports alerts, response records, the host,
containers, images and profiles to a vigil server through an on-disk spool
(--state-dir/spool.db, bounded by --spool-max: the oldest records go first)
and runs the server's commands (respond, undo, profile mode, rules). The
first start enrolls with --enroll-token (or VIGIL_ENROLL_TOKEN) and
--ca-fingerprint (or --ca-file); the identity is kept in --state-dir. The
JSON output goes on as without a server.

Needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN). In a container run it
with --pid host and /sys/kernel/tracing, /sys/fs/cgroup and the Docker
socket mounted (see docs/agent.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "json" {
				return &exitError{ExitError, fmt.Errorf("--output %q: only json is supported", output)}
			}
			for _, e := range emit {
				if e != "events" && e != "alerts" {
					return &exitError{ExitError, fmt.Errorf("--emit %q: want events and/or alerts", e)}
				}
			}
			var w io.Writer = g.stdout
			if file != "" {
				f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer f.Close()
				w = f
			}
			log := g.logger()
			o := agent.DefaultOptions()
			o.Output, o.MetricsAddr, o.Hostname, o.Logger = w, metrics, hostname, log
			o.EmitEvents, o.EmitAlerts = slices.Contains(emit, "events"), slices.Contains(emit, "alerts")
			if len(prefixes) > 0 {
				o.Sensor.SensitivePrefixes = prefixes
			}
			switch fallbacks {
			case "auto":
				o.Sensor.Fallbacks = sensor.FallbackAuto
			case "always":
				o.Sensor.Fallbacks = sensor.FallbackAlways
			case "never":
				o.Sensor.Fallbacks = sensor.FallbackNever
			default:
				return &exitError{ExitError, fmt.Errorf("--syscall-fallbacks %q: want auto, always or never", fallbacks)}
			}

			det := agent.Detection{Window: window, Logger: log}
			if !noRules {
				rs, err := loadRules(ruleFiles)
				if err != nil {
					return &exitError{ExitError, err}
				}
				det.Rules = rs
			}
			if fimConfig != "" {
				c, err := fim.LoadConfig(fimConfig)
				if err != nil {
					return &exitError{ExitError, err}
				}
				det.FIM = fim.NewRealtime(fim.ConfigWatch(c), fim.RealtimeOptions{})
			}
			if stateDir != "" {
				if err := os.MkdirAll(stateDir, 0o700); err != nil {
					return &exitError{ExitError, err}
				}
			}
			var up *uplink.Client
			cmds := &commandHandler{}
			if server != "" {
				if enrollTok == "" {
					enrollTok = os.Getenv("VIGIL_ENROLL_TOKEN")
				}
				var err error
				up, err = uplink.New(uplink.Options{Server: server, StateDir: stateDir, EnrollToken: enrollTok,
					CAFingerprint: caFP, CAFile: caFile, Hostname: hostname, Version: version.Version,
					SpoolMax: spoolMax, Handler: cmds, Logger: log})
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer up.Close()
				o.Uplink = up
			}
			if !noProfiles {
				po := profile.Options{Learn: learn, Dir: filepath.Join(stateDir, "profiles"), ZeroDrift: zeroDrift,
					Hash: agent.ExeHash("/proc")}
				ps, err := profile.New(po)
				if err != nil {
					return &exitError{ExitError, err}
				}
				det.Profiles = ps
				defer func() {
					if err := ps.Save(); err != nil {
						log.Warn("saving profiles", "err", err)
					}
				}()
			}
			if !noResponse {
				pol := response.DefaultPolicy()
				if policyFile != "" {
					b, err := os.ReadFile(policyFile)
					if err != nil {
						return &exitError{ExitError, err}
					}
					if pol, err = response.LoadPolicy(b); err != nil {
						return &exitError{ExitError, fmt.Errorf("%s: %w", policyFile, err)}
					}
				}
				if enforce {
					pol.Default.Mode = response.ModeEnforce
					for k, c := range pol.Classes {
						c.Mode = response.ModeEnforce
						pol.Classes[k] = c
					}
				}
				lf, err := os.OpenFile(filepath.Join(stateDir, "responses.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer lf.Close()
				var rlog io.Writer = lf
				if up != nil {
					rlog = io.MultiWriter(lf, agent.ResponseLog(up, log))
				}
				r, err := response.New(response.Options{Log: rlog, Logger: log})
				if err != nil {
					return &exitError{ExitError, err}
				}
				det.Responder, det.Policy = r, pol
			}
			d := agent.NewDetector(det)
			o.Detector, o.ControlSocket = d, control

			// Rules the server pushed are loaded after the agent's own and
			// kept across SIGHUP reloads.
			var extraMu sync.Mutex
			var extra []byte
			reload := func(next []byte, replace bool) (*rules.Ruleset, error) {
				extraMu.Lock()
				defer extraMu.Unlock()
				if !replace {
					next = extra
				}
				rs, err := loadAgentRules(ruleFiles, next)
				if err == nil {
					extra = next
				}
				return rs, err
			}
			ho := agent.HandlerOptions{Logger: log}
			if up != nil {
				ho.Uplink = up
			}
			if !noRules {
				ho.Rules = func(b []byte) (*rules.Ruleset, error) { return reload(b, true) }
			}
			cmds.h = agent.NewHandler(d, ho)

			if !noRules {
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer signal.Stop(hup)
				go func() {
					for range hup {
						rs, err := reload(nil, false)
						if err != nil {
							log.Error("reloading rules failed; keeping the previous rules", "err", err)
							continue
						}
						d.SetRules(rs)
						log.Info("rules reloaded", "rules", len(rs.Rules()))
					}
				}()
			}
			if det.FIM != nil {
				// SIGHUP reloads the FIM configuration too; one that does
				// not load leaves the previous one watching.
				fhup := make(chan os.Signal, 1)
				signal.Notify(fhup, syscall.SIGHUP)
				defer signal.Stop(fhup)
				go func() {
					for range fhup {
						c, err := fim.LoadConfig(fimConfig)
						if err != nil {
							log.Error("reloading the FIM configuration failed; keeping the previous one", "err", err)
							continue
						}
						det.FIM.SetWatch(fim.ConfigWatch(c))
						log.Info("FIM configuration reloaded", "file", fimConfig, "rules", len(c.Rules))
					}
				}()
			}
			if up != nil {
				ctx, cancel := context.WithCancel(cmd.Context())
				done := make(chan struct{})
				go func() {
					defer close(done)
					if err := up.Run(ctx); err != nil && ctx.Err() == nil {
						// Detection and the JSON output go on without it.
						log.Error("uplink to the server stopped", "server", server, "err", err)
					}
				}()
				defer func() { cancel(); <-done }()
			}
			if err := agent.Run(cmd.Context(), o); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", "json", "output format (json lines)")
	f.StringVar(&file, "file", "", "append events and alerts to this file instead of stdout")
	f.StringSliceVar(&emit, "emit", []string{"events", "alerts"}, "what to write: events, alerts or both")
	f.StringVar(&metrics, "metrics-addr", "127.0.0.1:9464", "serve Prometheus /metrics and /healthz here (\"\" disables)")
	f.StringVar(&hostname, "hostname", "", "host name to report (default: the system's)")
	f.StringSliceVar(&prefixes, "sensitive-prefix", nil, "paths whose read-only opens are reported (default: /etc/shadow, /etc/sudoers, /etc/ssh/, …)")
	f.StringSliceVar(&ruleFiles, "rules", nil, "rules files, Falco YAML (default: the built-in ruleset)")
	f.BoolVar(&noRules, "no-rules", false, "evaluate no rules")
	f.DurationVar(&window, "alert-window", time.Minute, "fold repeats of an alert (same rule, workload and lineage) within this window into one line with a count (0 writes each)")
	f.StringVar(&stateDir, "state-dir", "/var/lib/vigil", "where profiles and the response log are kept")
	f.BoolVar(&noProfiles, "no-profiles", false, "do not learn or check behaviour profiles")
	f.DurationVar(&learn, "learn", 14*24*time.Hour, "learning window of a new workload class before it is monitored")
	f.BoolVar(&zeroDrift, "zero-drift", false, "in monitor and protect, any executable that did not come with the image is a deviation")
	f.StringVar(&policyFile, "policy", "", "response policy (YAML; see docs/response.md)")
	f.BoolVar(&enforce, "enforce", false, "carry out the policy's actions instead of recording what would have been done")
	f.BoolVar(&noResponse, "no-response", false, "take and record no response actions")
	f.StringVar(&fallbacks, "syscall-fallbacks", "auto", "attach raw sys_enter/sys_exit programs for syscalls without tracepoints (init_module): auto (only where modules can be loaded), always, never; costs ~0.25 µs per syscall")
	f.StringVar(&server, "server", "", "report to this vigil server's agent channel (host:port) through an on-disk spool, and run its commands")
	f.StringVar(&enrollTok, "enroll-token", "", "one-time enrollment token for the first start with --server (default: $VIGIL_ENROLL_TOKEN)")
	f.StringVar(&caFP, "ca-fingerprint", "", "SHA-256 fingerprint of the server's CA, as the server prints it, to trust it at enrollment")
	f.StringVar(&caFile, "ca-file", "", "the server's CA certificate (PEM), instead of --ca-fingerprint")
	f.Int64Var(&spoolMax, "spool-max", 256<<20, "bytes of records kept for the server while it cannot be reached; past it the oldest are dropped and counted")
	f.StringVar(&control, "control-socket", defaultControlSocket, "serve the control API (vigil profile, vigil response) on this unix socket (\"\" disables)")
	f.StringVar(&fimConfig, "fim-config", "", "realtime file integrity: alert on changes to the paths this FIM configuration watches (see docs/drift.md), naming the process, user and container")
	return cmd
}

// loadAgentRules loads the agent's rules (the files, or the built-in set)
// with extra, the server's rules, after them.
func loadAgentRules(paths []string, extra []byte) (*rules.Ruleset, error) {
	if len(extra) == 0 {
		return loadRules(paths)
	}
	files := rules.DefaultFiles()
	if len(paths) > 0 {
		files = nil
		for _, p := range paths {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("reading rules: %w", err)
			}
			files = append(files, rules.File{Name: p, Data: b})
		}
	}
	return rules.Load(append(files, rules.File{Name: "rules from the server", Data: extra})...)
}

// commandHandler hands the server's commands to the agent's Handler, made
// once the detector is (after the uplink client, whose spool the
// responder's log needs).
type commandHandler struct{ h *agent.Handler }

func (c *commandHandler) Handle(ctx context.Context, cmd wire.Command) wire.CommandResult {
	if c.h == nil {
		return wire.CommandResult{ID: cmd.ID, Error: "the agent is not ready for commands"}
	}
	return c.h.Handle(ctx, cmd)
}
