package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/report"
	"github.com/vigil-cwpp/vigil/internal/sbom"
	"github.com/vigil-cwpp/vigil/internal/scan"
	"github.com/vigil-cwpp/vigil/internal/version"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

// defaultIgnoreFile is read when present and --ignore-file is not given.
const defaultIgnoreFile = ".vigilignore"

type scanFlags struct {
	targetFlags
	format        string
	output        string
	dbPath        string
	dbMaxAge      time.Duration
	noVulns       bool
	severity      string
	ignoreUnfixed bool
	onlyKEV       bool
	ignoreFile    string
	vexFiles      []string
	failOn        string
	report        reportFlags
}

func newScanCmd(g *globals) *cobra.Command {
	var sf scanFlags
	cmd := &cobra.Command{
		Use:   "scan TARGET",
		Short: "Scan TARGET for vulnerable packages, ordered by risk (KEV, EPSS, CVSS)",
		Long: `Scan TARGET: inventory its packages and match them against the local
vulnerability database (vigil db update, or vigil db import for air-gapped
sites). Findings are ordered by risk: CISA KEV first, then EPSS, then CVSS.

--fail-on takes comma-separated conditions; any match exits 1:
  critical, high, medium, low   a finding of that severity or higher
  kev                           a finding in CISA's KEV catalog
  epss>0.5, epss>=0.1           an EPSS probability above a bound
  cvss>=9                       a CVSS base score above a bound
  fixed                         a finding that has a fix

` + targetHelp,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runVulnScan(cmd, g, &sf, args[0]) },
	}
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVarP(&sf.format, "format", "f", "table", "output format: table, json, sarif, cyclonedx, spdx")
	f.StringVarP(&sf.output, "output", "o", "", "write the report to this file instead of stdout")
	f.StringVar(&sf.dbPath, "db", vulndb.DefaultPath(), "vulnerability database file ($VIGIL_DB)")
	f.DurationVar(&sf.dbMaxAge, "db-max-age", 7*24*time.Hour, "warn when the database is older than this")
	f.BoolVar(&sf.noVulns, "no-vulns", false, "inventory only: do not match against the database")
	f.StringVar(&sf.severity, "severity", "", "report only findings of this severity or higher (low, medium, high, critical)")
	f.BoolVar(&sf.ignoreUnfixed, "ignore-unfixed", false, "hide findings that have no fixed version")
	f.BoolVar(&sf.onlyKEV, "only-kev", false, "report only findings in CISA's KEV catalog")
	f.StringVar(&sf.ignoreFile, "ignore-file", "", "ignore file (YAML ignores: or .trivyignore lines); default ./"+defaultIgnoreFile+" when present")
	f.StringSliceVar(&sf.vexFiles, "vex", nil, "OpenVEX document; not_affected and fixed statements suppress (repeatable)")
	f.StringVar(&sf.failOn, "fail-on", "", "exit 1 when a finding matches (see above)")
	f.StringVar(&sf.report.url, "report-to", "", "also send the scan (JSON report and CycloneDX SBOM) to this Vigil server, e.g. https://vigil:8443")
	f.StringVar(&sf.report.token, "report-token", os.Getenv("VIGIL_TOKEN"), "API token for --report-to, role analyst or admin ($VIGIL_TOKEN)")
	f.StringVar(&sf.report.caFingerprint, "report-ca-fingerprint", "", "trust the server whose CA has this SHA-256 fingerprint (printed by vigil server)")
	f.StringVar(&sf.report.caFile, "report-ca", "", "trust the server's CA from this PEM file")
	return cmd
}

func (sf *scanFlags) filter() (*vex.Filter, error) {
	f := &vex.Filter{IgnoreUnfixed: sf.ignoreUnfixed, OnlyKEV: sf.onlyKEV}
	if sf.severity != "" {
		s, err := vex.ParseSeverity(sf.severity)
		if err != nil {
			return nil, fmt.Errorf("--severity: %w", err)
		}
		f.MinSeverity = s
	}
	path := sf.ignoreFile
	if path == "" {
		if _, err := os.Stat(defaultIgnoreFile); err == nil {
			path = defaultIgnoreFile
		}
	}
	if path != "" {
		ign, err := vex.LoadIgnoreFile(path)
		if err != nil {
			return nil, err
		}
		f.Ignores = ign
	}
	for _, v := range sf.vexFiles {
		st, err := vex.LoadOpenVEX(v)
		if err != nil {
			return nil, err
		}
		f.VEX = append(f.VEX, st...)
	}
	return f, nil
}

func runVulnScan(cmd *cobra.Command, g *globals, sf *scanFlags, target string) error {
	ctx := cmd.Context()
	format := strings.ToLower(sf.format)
	switch format {
	case "table", "json", "sarif", "cyclonedx", "cdx", "cyclonedx-json", "spdx", "spdx-json":
	default:
		return &exitError{ExitError, fmt.Errorf("unknown format %q: want table, json, sarif, cyclonedx or spdx", sf.format)}
	}
	var failOn *vex.FailOn
	if sf.failOn != "" {
		var err error
		if failOn, err = vex.ParseFailOn(sf.failOn); err != nil {
			return &exitError{ExitError, fmt.Errorf("--fail-on: %w", err)}
		}
	}
	filter, err := sf.filter()
	if err != nil {
		return &exitError{ExitError, err}
	}
	var (
		db     *vulndb.DB
		dbInfo report.DBInfo
	)
	if !sf.noVulns {
		db, err = vulndb.Open(sf.dbPath)
		if err != nil {
			return &exitError{ExitError, fmt.Errorf("%w; --no-vulns scans the inventory only", err)}
		}
		defer db.Close()
		st, err := db.Status(ctx)
		if err != nil {
			return &exitError{ExitError, err}
		}
		dbInfo = report.DBInfo{Built: db.Built(), Sources: st, Stale: db.Age() > sf.dbMaxAge}
		if dbInfo.Stale && !g.quiet {
			fmt.Fprintf(g.stderr, "vigil: warning: the vulnerability database %s is %s old (more than --db-max-age %s); run `vigil db update`\n",
				sf.dbPath, db.Age().Round(time.Hour), sf.dbMaxAge)
		}
	}
	for _, ig := range filter.Expired() {
		fmt.Fprintf(g.stderr, "vigil: warning: ignore of %s (%s) expired on %s and no longer applies\n", ig.ID, ig.Source, ig.Expires.Format(time.DateOnly))
	}

	var res *scan.Result
	if db != nil {
		res, err = runScan(ctx, g, target, &sf.targetFlags, db, filter)
	} else {
		res, err = runScan(ctx, g, target, &sf.targetFlags, nil, nil)
	}
	if err != nil {
		return &exitError{ExitError, err}
	}
	rs := &report.Scan{
		Inventory: res.Inventory, Findings: res.Findings, Suppressed: res.Suppressed, DB: dbInfo,
		Tool: report.Tool{Name: "vigil", Version: version.Version},
	}
	so := sbom.Options{ToolName: "vigil", ToolVersion: version.Version}
	err = writeTo(g, sf.output, func(w io.Writer) error {
		switch format {
		case "json":
			return report.WriteJSON(w, rs)
		case "sarif":
			return report.WriteSARIF(w, rs)
		case "cyclonedx", "cdx", "cyclonedx-json":
			return sbom.EncodeCycloneDXWithVulns(w, res.Inventory, res.Findings, so)
		case "spdx", "spdx-json":
			return sbom.EncodeSPDX(w, res.Inventory, so)
		}
		if db == nil {
			// --no-vulns: there are no findings to show, so show the packages.
			return sbom.WriteTable(w, res.Inventory)
		}
		return report.WriteTable(w, rs, report.TableOptions{})
	})
	if err != nil {
		return &exitError{ExitError, err}
	}
	summarize(g, res.Inventory)
	if sf.report.url != "" {
		id, err := sendScan(ctx, &sf.report, rs, res, so)
		if err != nil {
			return &exitError{ExitError, err}
		}
		if !g.quiet {
			fmt.Fprintf(g.stderr, "vigil: scan reported to %s as %s\n", sf.report.url, id)
		}
	}
	if failOn != nil {
		if hit := failOn.Match(res.Findings); len(hit) > 0 {
			if !g.quiet {
				fmt.Fprintf(g.stderr, "vigil: --fail-on %s: %d findings match (first: %s in %s)\n", sf.failOn, len(hit), hit[0].ID, hit[0].Package.Name)
			}
			return &exitError{code: ExitPolicy}
		}
	}
	if res.Inventory.Partial {
		return &exitError{code: ExitPartial}
	}
	return nil
}

// sendScan uploads a finished scan to the server named by rf.
func sendScan(ctx context.Context, rf *reportFlags, rs *report.Scan, res *scan.Result, so sbom.Options) (string, error) {
	if rf.token == "" {
		return "", fmt.Errorf("--report-to needs --report-token or $VIGIL_TOKEN")
	}
	c, err := rf.client()
	if err != nil {
		return "", err
	}
	var rj, sb bytes.Buffer
	if err := report.WriteJSON(&rj, rs); err != nil {
		return "", err
	}
	if err := sbom.EncodeCycloneDXWithVulns(&sb, res.Inventory, res.Findings, so); err != nil {
		return "", err
	}
	return uploadScan(ctx, c, rf.url, rf.token, rj.Bytes(), sb.Bytes())
}
