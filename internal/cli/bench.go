package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/compliance/kubebench"
)

// benchFlags are the flags of `vigil bench linux|docker|kubernetes`.
type benchFlags struct {
	format     string
	root       string
	stateDir   string
	noSave     bool
	keep       int
	compare    bool
	failOn     string
	dockerHost string
	kubeCfg    string
	kubeVer    string
	kubeTarget []string
	report     reportFlags
}

// newBenchCmd is `vigil bench` (CIS benchmarks).
func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run CIS benchmarks: linux, docker, kubernetes",
		Long: `Run a CIS benchmark on this host and keep the run, so that the next run
shows what regressed and what improved (posture drift).

  linux       CIS Debian Linux 12 (automated subset, Level 1 and some Level 2)
  docker      CIS Docker: daemon configuration, files, every running container
  kubernetes  CIS Kubernetes node/control plane checks from kube-bench's definitions

Each result is pass, fail, warn, manual or error (could not be checked, with
the reason), with the evidence seen and the remediation. Runs are kept as
JSON under --state-dir/<benchmark>/<time>.json.

Exit codes: 0 done (no --fail-on match); 1 --fail-on matched a scored check;
2 usage or runtime error; 3 a report was written but some checks could not be
evaluated (status error).`,
	}
	for _, b := range []struct{ use, bench, short string }{
		{"linux", compliance.BenchLinux, "CIS Debian Linux 12 checks of this host (or of --root)"},
		{"docker", compliance.BenchDocker, "CIS Docker checks: daemon, files and every running container"},
		{"kubernetes", compliance.BenchKubernetes, "CIS Kubernetes checks (kube-bench definitions) of this node"},
	} {
		b := b
		f := &benchFlags{}
		c := &cobra.Command{
			Use:   b.use,
			Short: b.short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return runBench(cmd.Context(), g, b.bench, f)
			},
		}
		fl := c.Flags()
		fl.StringVarP(&f.format, "format", "f", "table", "output format: table or json (the compliance.Report; with --compare the drift)")
		fl.StringVar(&f.root, "root", "/", "filesystem root to check (a mounted host image); commands run only when it is /")
		fl.StringVar(&f.stateDir, "state-dir", compliance.DefaultStateDir, "where runs are kept, one JSON file per run")
		fl.BoolVar(&f.noSave, "no-save", false, "do not keep this run")
		fl.IntVar(&f.keep, "keep", 0, "keep only this many newest runs of the benchmark (0: all)")
		fl.BoolVar(&f.compare, "compare", false, "print only what changed since the previous kept run")
		fl.StringVar(&f.failOn, "fail-on", "", "exit 1 when a scored check has this status or worse: fail, or warn (warn and fail)")
		fl.StringVar(&f.report.url, "report-to", "", "also send the report to this Vigil server (POST /api/v1/compliance), e.g. https://vigil:8443")
		fl.StringVar(&f.report.token, "report-token", os.Getenv("VIGIL_TOKEN"), "API token for --report-to ($VIGIL_TOKEN)")
		fl.StringVar(&f.report.caFingerprint, "report-ca-fingerprint", "", "trust the server whose CA has this SHA-256 fingerprint (printed by vigil server)")
		fl.StringVar(&f.report.caFile, "report-ca", "", "trust the server's CA from this PEM file")
		switch b.use {
		case "docker":
			fl.StringVar(&f.dockerHost, "docker-host", "", "Docker endpoint (default $DOCKER_HOST or the local socket)")
		case "kubernetes":
			fl.StringVar(&f.kubeCfg, "config-dir", "", "kube-bench cfg folder (config.yaml, cis-<v>/); default the embedded CIS 1.12 definitions")
			fl.StringVar(&f.kubeVer, "benchmark", "", `definition ("cis-1.12") or Kubernetes version ("1.33"); default the newest`)
			fl.StringSliceVar(&f.kubeTarget, "targets", nil, "targets: master, node, controlplane, etcd, policies (default: node, plus what runs here)")
		}
		cmd.AddCommand(c)
	}
	return cmd
}

func runBench(ctx context.Context, g *globals, bench string, f *benchFlags) error {
	if f.format != "table" && f.format != "json" {
		return &exitError{ExitError, fmt.Errorf("--format %q: want table or json", f.format)}
	}
	if f.failOn != "" && f.failOn != compliance.Fail && f.failOn != compliance.Warn {
		return &exitError{ExitError, fmt.Errorf("--fail-on %q: want fail or warn", f.failOn)}
	}
	if f.report.url != "" && f.report.token == "" {
		return &exitError{ExitError, fmt.Errorf("--report-to needs --report-token or $VIGIL_TOKEN")}
	}
	if fi, err := os.Stat(f.root); err != nil || !fi.IsDir() {
		return &exitError{ExitError, fmt.Errorf("--root %s: not a directory", f.root)}
	}
	rep, err := benchReport(ctx, g, bench, f)
	if err != nil {
		return &exitError{ExitError, err}
	}

	var drift *compliance.Drift
	prev, err := compliance.Latest(f.stateDir, bench)
	if err != nil {
		fmt.Fprintf(g.stderr, "vigil: previous run unreadable, no drift shown: %v\n", err)
	} else if prev != nil {
		drift = compliance.Compare(prev, rep)
	}
	if !f.noSave {
		// Not being able to keep the run (not root, read-only disk) costs
		// the next run its drift, not this run its report.
		if _, err := compliance.Save(f.stateDir, rep); err != nil {
			fmt.Fprintf(g.stderr, "vigil: the run is not kept (use --state-dir or --no-save): %v\n", err)
		} else if _, err := compliance.Prune(f.stateDir, bench, f.keep); err != nil {
			fmt.Fprintf(g.stderr, "vigil: %v\n", err)
		}
	}

	if err := writeBench(g.stdout, f, rep, drift); err != nil {
		return &exitError{ExitError, err}
	}
	if f.report.url != "" {
		id, err := uploadCompliance(ctx, &f.report, rep)
		if err != nil {
			return &exitError{ExitError, err}
		}
		if !g.quiet {
			fmt.Fprintf(g.stderr, "reported to %s (%s)\n", f.report.url, id)
		}
	}
	if f.failOn != "" {
		for _, r := range rep.Results {
			if r.Scored && (r.Status == compliance.Fail || (f.failOn == compliance.Warn && r.Status == compliance.Warn)) {
				return &exitError{ExitPolicy, fmt.Errorf("scored check %s is %s", r.ID, r.Status)}
			}
		}
	}
	if rep.Summary.Error > 0 {
		return &exitError{ExitPartial, fmt.Errorf("%d checks could not be evaluated", rep.Summary.Error)}
	}
	return nil
}

// benchReport runs one benchmark.
func benchReport(ctx context.Context, g *globals, bench string, f *benchFlags) (*compliance.Report, error) {
	opts := compliance.Options{Root: f.root}
	switch bench {
	case compliance.BenchDocker:
		d, err := compliance.NewDockerClient(f.dockerHost)
		if err == nil {
			defer d.Close()
			opts.Docker = d
		}
	case compliance.BenchKubernetes:
		return kubeReport(ctx, g, f)
	}
	return compliance.Run(ctx, bench, opts)
}

// kubeReport runs kube-bench's definitions and wraps them in a report.
func kubeReport(ctx context.Context, g *globals, f *benchFlags) (*compliance.Report, error) {
	var b *kubebench.Benchmark
	var err error
	if f.kubeCfg != "" {
		b, err = kubebench.Load(f.kubeCfg, f.kubeVer)
	} else if f.kubeVer != "" && f.kubeVer != kubebench.DefaultVersion {
		return nil, fmt.Errorf("--benchmark %s: the embedded definitions are %s; give --config-dir for others", f.kubeVer, kubebench.DefaultVersion)
	} else {
		b, err = kubebench.Default()
	}
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	log := g.logger()
	results, err := b.Run(ctx, kubebench.Options{Targets: f.kubeTarget, Root: f.root, Target: host,
		Warnf: func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }})
	if err != nil {
		return nil, err
	}
	rep := &compliance.Report{Benchmark: compliance.BenchKubernetes, Version: b.Version, Host: host,
		Time: time.Now().UTC(), Results: results}
	rep.Summary = compliance.Summarize(results)
	return rep, nil
}

func writeBench(w io.Writer, f *benchFlags, rep *compliance.Report, drift *compliance.Drift) error {
	if f.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if f.compare {
			if drift == nil {
				drift = &compliance.Drift{Current: rep.Time}
			}
			return enc.Encode(drift)
		}
		return enc.Encode(rep)
	}
	if f.compare {
		if drift == nil {
			_, err := fmt.Fprintf(w, "no previous %s run in %s to compare with\n", rep.Benchmark, f.stateDir)
			return err
		}
		return writeDrift(w, drift, true)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s on %s at %s\n\n", rep.Benchmark+versionSuffix(rep.Version), rep.Host, rep.Time.Format(time.RFC3339))
	for _, r := range rep.Results {
		target := ""
		if r.Target != "" && r.Target != rep.Host {
			target = " [" + r.Target + "]"
		}
		scored := ""
		if !r.Scored {
			scored = " (not scored)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s%s%s\n", strings.ToUpper(r.Status), r.ID, r.Title, scored, target)
		switch {
		case r.Status == compliance.Error:
			fmt.Fprintf(tw, "\t\t  could not check: %s\n", r.Error)
		case r.Status != compliance.Pass:
			fmt.Fprintf(tw, "\t\t  seen: %s\n", r.Evidence)
			if r.Remediation != "" {
				fmt.Fprintf(tw, "\t\t  fix:  %s\n", r.Remediation)
			}
		}
	}
	s := rep.Summary
	fmt.Fprintf(tw, "\n%d pass, %d fail, %d warn, %d manual, %d error\n", s.Pass, s.Fail, s.Warn, s.Manual, s.Error)
	if err := tw.Flush(); err != nil {
		return err
	}
	if drift != nil {
		return writeDrift(w, drift, false)
	}
	return nil
}

func versionSuffix(v string) string {
	if v == "" {
		return ""
	}
	return " (" + v + ")"
}

// writeDrift prints the posture drift; full lists every change, otherwise
// regressions are listed and the rest counted.
func writeDrift(w io.Writer, d *compliance.Drift, full bool) error {
	fmt.Fprintf(w, "\nsince the run of %s: %d regressed, %d improved, %d changed, %d new, %d removed\n",
		d.Previous.Format(time.RFC3339), len(d.Regressed), len(d.Improved), len(d.Changed), len(d.Added), len(d.Removed))
	lists := []struct {
		name string
		l    []compliance.Change
	}{{"regressed", d.Regressed}}
	if full {
		lists = append(lists, struct {
			name string
			l    []compliance.Change
		}{"improved", d.Improved}, struct {
			name string
			l    []compliance.Change
		}{"changed", d.Changed}, struct {
			name string
			l    []compliance.Change
		}{"new", d.Added}, struct {
			name string
			l    []compliance.Change
		}{"removed", d.Removed})
	}
	for _, l := range lists {
		for _, c := range l.l {
			target := ""
			if c.Target != "" {
				target = " [" + c.Target + "]"
			}
			from, to := c.From, c.To
			if from == "" {
				from = "-"
			}
			if to == "" {
				to = "-"
			}
			fmt.Fprintf(w, "  %-9s %s %s→%s %s%s\n", l.name, c.ID, from, to, c.Title, target)
			if c.Evidence != "" && l.name != "removed" {
				fmt.Fprintf(w, "            seen: %s\n", c.Evidence)
			}
		}
	}
	return nil
}

// uploadCompliance posts the report (the compliance.Report JSON, as is)
// to the server's /api/v1/compliance and returns what the server calls it.
func uploadCompliance(ctx context.Context, rf *reportFlags, rep *compliance.Report) (string, error) {
	c, err := rf.client()
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(rep)
	if err != nil {
		return "", err
	}
	rb, err := postJSON(ctx, c, rf.url, "/api/v1/compliance", rf.token, b)
	if err != nil {
		return "", err
	}
	var out map[string]any
	if json.Unmarshal(rb, &out) == nil {
		for _, k := range []string{"id", "stored", "count"} {
			if v, ok := out[k]; ok {
				return fmt.Sprintf("%s %v", k, v), nil
			}
		}
	}
	return "stored", nil
}
