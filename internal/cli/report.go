package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/frameworks"
	"github.com/vigil-cwpp/vigil/internal/version"
)

// reportCompliance holds the flags of `vigil report compliance`.
type reportCompliance struct {
	framework  string
	bench      []string
	alerts     []string
	scans      []string
	fim        []string
	format     string
	output     string
	fromServer string
	since      string
	server     reportFlags // --report-to and the credentials shared with --from-server
}

// newReportCmd is `vigil report` (compliance reports).
func newReportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "Compliance reports per framework"}
	var f reportCompliance
	cc := &cobra.Command{
		Use:   "compliance",
		Short: "Score a framework's requirements on benchmark runs, alerts, scans and FIM checks",
		Long: `Map Vigil's evidence to a compliance framework and score every requirement:
met, not met (any mapped evidence failed), partial (only items to review),
or no evidence — with the evidence behind each (checks with what was seen,
alerts, scans, FIM runs) and the basis of each mapping (Vigil's judgement
or an official crosswalk). The mapping is data: internal/frameworks/data.

Frameworks: pci-dss, nist-800-53, hipaa, fedramp-moderate (through NIST
800-53 and the FedRAMP Rev 5 Moderate baseline), cis-controls-v8.

Evidence from files:
  --bench FILE   vigil bench ... -f json (repeatable)
  --alerts FILE  alerts: vigil agent JSON lines, or a JSON array (repeatable)
  --scan FILE    vigil scan -f json (repeatable)
  --fim FILE     vigil fim check -f json (repeatable)
or from a server (--from-server URL): the newest compliance result of every
check and target, alerts since --since, scans, and (admin tokens) the audit
log. --report-to sends the --bench files to a server (POST /api/v1/compliance).

Formats: html (one self-contained page: no script, no external asset) or json
(schema vigil.compliance-report/v1).

Exit codes: 0 report written; 2 usage or runtime error.`,
		Example: `  vigil bench docker -f json > docker.json
  vigil report compliance --framework pci-dss --bench docker.json -f html -o pci.html
  vigil report compliance --framework fedramp-moderate --from-server https://vigil:8443 \
      --report-token $TOKEN --report-ca-fingerprint SHA256 -f json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReportCompliance(cmd.Context(), g, &f) },
	}
	fl := cc.Flags()
	fl.StringVar(&f.framework, "framework", "", "framework: "+strings.Join(frameworks.Names, ", "))
	fl.StringArrayVar(&f.bench, "bench", nil, "benchmark report (vigil bench -f json); repeatable")
	fl.StringArrayVar(&f.alerts, "alerts", nil, "alerts file (JSON lines or array); repeatable")
	fl.StringArrayVar(&f.scans, "scan", nil, "scan report (vigil scan -f json); repeatable")
	fl.StringArrayVar(&f.fim, "fim", nil, "FIM check report (vigil fim check -f json); repeatable")
	fl.StringVarP(&f.format, "format", "f", "html", "output format: html or json")
	fl.StringVarP(&f.output, "output", "o", "", "write the report to this file (default: standard output)")
	fl.StringVar(&f.fromServer, "from-server", "", "read the evidence from this Vigil server, e.g. https://vigil:8443")
	fl.StringVar(&f.since, "since", "30d", "with --from-server: alerts since (24h, 7d, or an RFC 3339 time)")
	fl.StringVar(&f.server.url, "report-to", "", "also send the --bench reports to this Vigil server (POST /api/v1/compliance)")
	fl.StringVar(&f.server.token, "report-token", os.Getenv("VIGIL_TOKEN"), "API token for --from-server (read-only and up) and --report-to (analyst) ($VIGIL_TOKEN)")
	fl.StringVar(&f.server.caFingerprint, "report-ca-fingerprint", "", "trust the server whose CA has this SHA-256 fingerprint (printed by vigil server)")
	fl.StringVar(&f.server.caFile, "report-ca", "", "trust the server's CA from this PEM file")
	cmd.AddCommand(cc)
	return cmd
}

func runReportCompliance(ctx context.Context, g *globals, f *reportCompliance) error {
	usage := func(format string, a ...any) error { return &exitError{ExitError, fmt.Errorf(format, a...)} }
	cat := frameworks.Default()
	if f.framework == "" {
		return usage("--framework is required (one of %s)", strings.Join(frameworks.Names, ", "))
	}
	if _, err := cat.Framework(f.framework); err != nil {
		return usage("--framework: %w", err)
	}
	if f.format != "html" && f.format != "json" {
		return usage("--format %q: want html or json", f.format)
	}
	files := len(f.bench) + len(f.alerts) + len(f.scans) + len(f.fim)
	switch {
	case f.fromServer == "" && files == 0:
		return usage("no evidence: give --bench, --alerts, --scan or --fim files, or --from-server")
	case (f.fromServer != "" || f.server.url != "") && f.server.token == "":
		return usage("--from-server and --report-to need --report-token or $VIGIL_TOKEN")
	case f.server.url != "" && len(f.bench) == 0:
		return usage("--report-to sends the --bench reports: give at least one --bench")
	}
	ev := &frameworks.Evidence{}
	var benchReps []compliance.Report
	read := func(flag, path string) ([]byte, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, &exitError{ExitError, fmt.Errorf("--%s: %w", flag, err)}
		}
		ev.Sources = append(ev.Sources, filepath.Base(path))
		return b, nil
	}
	for _, p := range f.bench {
		b, err := read("bench", p)
		if err != nil {
			return err
		}
		reps, err := frameworks.ParseBench(b)
		if err != nil {
			return usage("--bench %s: %w", p, err)
		}
		benchReps = append(benchReps, reps...)
	}
	ev.Bench = append(ev.Bench, benchReps...)
	for _, p := range f.alerts {
		b, err := read("alerts", p)
		if err != nil {
			return err
		}
		as, err := frameworks.ParseAlerts(b)
		if err != nil {
			return usage("--alerts %s: %w", p, err)
		}
		ev.Alerts = append(ev.Alerts, as...)
		ev.AlertsGiven = true
	}
	for _, p := range f.scans {
		b, err := read("scan", p)
		if err != nil {
			return err
		}
		ss, err := frameworks.ParseScan(b)
		if err != nil {
			return usage("--scan %s: %w", p, err)
		}
		ev.Scans = append(ev.Scans, ss...)
	}
	for _, p := range f.fim {
		b, err := read("fim", p)
		if err != nil {
			return err
		}
		run, err := frameworks.ParseFIM(b)
		if err != nil {
			return usage("--fim %s: %w", p, err)
		}
		ev.FIM = append(ev.FIM, run)
	}
	if f.fromServer != "" {
		if err := fetchEvidence(ctx, f, ev); err != nil {
			return &exitError{ExitError, err}
		}
	}
	host, _ := os.Hostname()
	rep, err := cat.Score(f.framework, ev, frameworks.Options{Host: host, Tool: "vigil " + version.Version})
	if err != nil {
		return &exitError{ExitError, err}
	}
	var buf bytes.Buffer
	if f.format == "json" {
		err = frameworks.WriteJSON(&buf, rep)
	} else {
		err = frameworks.WriteHTML(&buf, rep)
	}
	if err != nil {
		return &exitError{ExitError, err}
	}
	if f.output == "" {
		if _, err := g.stdout.Write(buf.Bytes()); err != nil {
			return &exitError{ExitError, err}
		}
	} else if err := writeFileAtomic(f.output, buf.Bytes()); err != nil {
		return &exitError{ExitError, fmt.Errorf("--output: %w", err)}
	}
	if !g.quiet {
		s := rep.Summary
		fmt.Fprintf(g.stderr, "%s: %d requirements — %d met, %d not met, %d partial, %d without evidence\n",
			rep.FrameworkName, s.Requirements, s.Met, s.NotMet, s.Partial, s.NoEvidence)
		if len(rep.Unmapped) > 0 {
			fmt.Fprintf(g.stderr, "vigil: %d evidence keys have no mapping (listed in the report): %s\n", len(rep.Unmapped), strings.Join(rep.Unmapped[:min(3, len(rep.Unmapped))], ", "))
		}
	}
	if f.server.url != "" {
		for i := range benchReps {
			what, err := uploadCompliance(ctx, &f.server, &benchReps[i])
			if err != nil {
				return &exitError{ExitError, err}
			}
			if !g.quiet {
				fmt.Fprintf(g.stderr, "reported %s (%s) to %s: %s\n", benchReps[i].Benchmark, benchReps[i].Host, f.server.url, what)
			}
		}
	}
	return nil
}

func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".vigil-report-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Limits on what is read from a server.
const (
	serverComplianceLimit = 10000
	serverPage            = 1000
	serverAlertPages      = 50
	serverAnswerCap       = 256 << 20
)

// fetchEvidence reads a server's compliance results (the newest of each
// check and target), alerts since f.since, scans and, when the token may,
// the audit log.
func fetchEvidence(ctx context.Context, f *reportCompliance, ev *frameworks.Evidence) error {
	c, err := f.server.client()
	if err != nil {
		return err
	}
	base := strings.TrimRight(f.fromServer, "/")
	get := func(path string, q url.Values, out any) (int, error) {
		u := base + path
		if len(q) > 0 {
			u += "?" + q.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return 0, fmt.Errorf("--from-server %s: %w", f.fromServer, err)
		}
		req.Header.Set("Authorization", "Bearer "+f.server.token)
		resp, err := c.Do(req)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", u, err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, serverAnswerCap))
		if err != nil {
			return resp.StatusCode, fmt.Errorf("reading %s: %w", u, err)
		}
		if resp.StatusCode != http.StatusOK {
			var e struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(b, &e)
			return resp.StatusCode, fmt.Errorf("reading %s: %s %s", u, resp.Status, e.Error)
		}
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("reading %s: the answer is not the JSON expected: %w", u, err)
		}
		return resp.StatusCode, nil
	}
	ev.Sources = append(ev.Sources, base)

	var cl struct {
		Results []struct {
			Time      time.Time       `json:"time"`
			Benchmark string          `json:"benchmark"`
			CheckID   string          `json:"check_id"`
			Title     string          `json:"title"`
			Status    string          `json:"status"`
			Data      json.RawMessage `json:"data"`
		} `json:"results"`
	}
	if _, err := get("/api/v1/compliance", url.Values{"limit": {fmt.Sprint(serverComplianceLimit)}}, &cl); err != nil {
		return err
	}
	// Newest first: keep the first result of each check and target.
	byBench := map[string]*compliance.Report{}
	var order []string
	seen := map[string]bool{}
	for _, s := range cl.Results {
		var r compliance.Result
		if len(s.Data) > 0 && json.Unmarshal(s.Data, &r) == nil && r.ID != "" {
			// the stored result as the benchmark wrote it
		} else {
			r = compliance.Result{Benchmark: s.Benchmark, ID: s.CheckID, Title: s.Title, Status: s.Status}
		}
		if r.Benchmark == "" {
			r.Benchmark = s.Benchmark
		}
		k := r.Key() + "\x00" + r.Target
		if seen[k] {
			continue
		}
		seen[k] = true
		rep := byBench[r.Benchmark]
		if rep == nil {
			rep = &compliance.Report{Benchmark: r.Benchmark, Time: s.Time}
			byBench[r.Benchmark] = rep
			order = append(order, r.Benchmark)
		}
		rep.Results = append(rep.Results, r)
	}
	for _, b := range order {
		ev.Bench = append(ev.Bench, *byBench[b])
	}

	q := url.Values{"limit": {fmt.Sprint(serverPage)}, "since": {f.since}}
	for page := 0; page < serverAlertPages; page++ {
		var ap struct {
			Alerts []frameworks.Alert `json:"alerts"`
			Next   string             `json:"next"`
		}
		if _, err := get("/api/v1/alerts", q, &ap); err != nil {
			return err
		}
		ev.Alerts = append(ev.Alerts, ap.Alerts...)
		if ap.Next == "" {
			break
		}
		q.Set("before", ap.Next)
	}
	for i := range ev.Alerts {
		if ev.Alerts[i].Count <= 0 {
			ev.Alerts[i].Count = 1
		}
	}
	ev.AlertsGiven = true

	var sl json.RawMessage
	if _, err := get("/api/v1/scans", url.Values{"limit": {fmt.Sprint(serverPage)}}, &sl); err != nil {
		return err
	}
	scans, err := frameworks.ParseScan(sl)
	if err != nil {
		return fmt.Errorf("reading %s/api/v1/scans: %w", base, err)
	}
	ev.Scans = append(ev.Scans, newestPerTarget(scans)...)

	var al struct {
		Entries []json.RawMessage `json:"entries"`
	}
	if st, err := get("/api/v1/audit", url.Values{"limit": {fmt.Sprint(serverPage)}}, &al); err == nil {
		ev.AuditEntries = len(al.Entries)
	} else if st != http.StatusForbidden {
		return err
	}
	return nil
}

// newestPerTarget keeps the newest scan of each target (the server lists
// newest first).
func newestPerTarget(ss []frameworks.Scan) []frameworks.Scan {
	seen := map[string]bool{}
	var out []frameworks.Scan
	for _, s := range ss {
		if !seen[s.Target] {
			seen[s.Target] = true
			out = append(out, s)
		}
	}
	return out
}
