package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/vigil-cwpp/vigil/internal/vulndb"
)

func newDBCmd(g *globals) *cobra.Command {
	var dbPath string
	cmd := &cobra.Command{
		Use:   "db",
		Short: "Manage the local vulnerability database (OSV, NVD, CISA KEV, FIRST EPSS)",
	}
	cmd.PersistentFlags().StringVar(&dbPath, "db", vulndb.DefaultPath(), "vulnerability database file ($VIGIL_DB)")
	cmd.AddCommand(newDBUpdateCmd(g, &dbPath), newDBImportCmd(g, &dbPath), newDBExportCmd(g, &dbPath), newDBStatusCmd(g, &dbPath))
	return cmd
}

func newDBUpdateCmd(g *globals, dbPath *string) *cobra.Command {
	var (
		ecosystems []string
		apiKey     string
	)
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Download advisories from OSV.dev, CISA KEV, FIRST EPSS and the NVD API (conditional, incremental)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o := vulndb.DefaultUpdateOptions()
			if len(ecosystems) > 0 {
				o.Ecosystems = ecosystems
			}
			if apiKey == "" {
				apiKey = os.Getenv("NVD_API_KEY")
			}
			o.NVDAPIKey = apiKey
			o.Logger = g.logger()
			if p := newDBProgress(g); p != nil {
				o.Progress = p
			}
			rep, err := vulndb.Update(cmd.Context(), *dbPath, o)
			printDBReport(g, rep)
			if err != nil {
				return &exitError{ExitError, err}
			}
			if failed := failedSources(rep); failed != "" {
				return &exitError{ExitPartial, fmt.Errorf("update incomplete, previous data kept for: %s", failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&ecosystems, "ecosystems", nil, "OSV ecosystems to fetch (default: all Vigil matches)")
	cmd.Flags().StringVar(&apiKey, "nvd-api-key", "", "NVD API key for a higher rate limit ($NVD_API_KEY)")
	return cmd
}

func newDBImportCmd(g *globals, dbPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "import PATH…",
		Short: "Import upstream files for air-gapped sites: OSV zips or JSON dirs, KEV JSON, EPSS CSV, NVD API JSON, Alpine secdb, or a `vigil db export` file",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o := vulndb.DefaultOptions()
			o.Logger = g.logger()
			if p := newDBProgress(g); p != nil {
				o.Progress = p
			}
			rep, err := vulndb.Import(cmd.Context(), *dbPath, args, o)
			printDBReport(g, rep)
			if err != nil {
				return &exitError{ExitError, fmt.Errorf("%w (the previous database, if any, is unchanged)", err)}
			}
			return nil
		},
	}
}

func newDBExportCmd(g *globals, dbPath *string) *cobra.Command {
	return &cobra.Command{
		Use:   "export FILE",
		Short: "Write the whole database to one file, for a mirror or an air-gapped site (`vigil db import FILE` reads it)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := vulndb.Export(cmd.Context(), *dbPath, args[0]); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
}

func newDBStatusCmd(g *globals, dbPath *string) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each source: records, upstream date, fetched date, schema version, staleness",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, err := vulndb.Open(*dbPath)
			if err != nil {
				return &exitError{ExitError, err}
			}
			defer db.Close()
			st, err := db.Status(cmd.Context())
			if err != nil {
				return &exitError{ExitError, err}
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{
					"path": *dbPath, "schema_version": db.SchemaVersion(), "built": db.Built(),
					"age_seconds": int64(db.Age().Seconds()), "sources": st,
				})
			}
			fmt.Fprintf(g.stdout, "database %s (schema %d), built %s, %s old\n", *dbPath, db.SchemaVersion(),
				db.Built().UTC().Format(time.RFC3339), db.Age().Round(time.Minute))
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tRECORDS\tUPSTREAM DATE\tFETCHED\tAGE\tORIGIN")
			sort.Slice(st, func(i, j int) bool { return st[i].Name < st[j].Name })
			for _, s := range st {
				up := "-"
				if !s.UpstreamDate.IsZero() {
					up = s.UpstreamDate.UTC().Format(time.DateOnly)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", s.Name, s.Records, up, s.FetchedAt.UTC().Format(time.RFC3339),
					time.Since(s.FetchedAt).Round(time.Minute), s.Origin)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// printDBReport prints one line per source to stderr.
func printDBReport(g *globals, rep *vulndb.Report) {
	if rep == nil || g.quiet {
		return
	}
	for _, s := range rep.Sources {
		line := fmt.Sprintf("%s: %d records imported from %s", s.Name, s.Imported, s.Origin)
		switch {
		case s.Error != "":
			line = fmt.Sprintf("%s: FAILED, previous data kept: %s", s.Name, s.Error)
		case s.NotModified:
			line = fmt.Sprintf("%s: not modified upstream", s.Name)
		}
		if n := sumSkipped(s.Skipped); n > 0 {
			line += fmt.Sprintf(" (%d skipped: %s)", n, skippedReasons(s.Skipped))
		}
		fmt.Fprintln(g.stderr, line)
		if g.verbose {
			for _, w := range s.Warnings {
				fmt.Fprintln(g.stderr, "  warning:", w)
			}
		}
	}
	for _, w := range rep.Warnings {
		fmt.Fprintln(g.stderr, "warning:", w)
	}
}

func sumSkipped(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func skippedReasons(m map[string]int) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func failedSources(rep *vulndb.Report) string {
	if rep == nil {
		return ""
	}
	var names []string
	for _, s := range rep.Sources {
		if s.Error != "" {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}

// dbProgress shows one bar per source on a terminal.
type dbProgress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func newDBProgress(g *globals) *dbProgress {
	f, ok := g.stderr.(*os.File)
	if g.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &dbProgress{w: f}
}

func (p *dbProgress) Start(source string, total int64) {
	p.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.w), progressbar.OptionShowBytes(true),
		progressbar.OptionSetDescription(source), progressbar.OptionClearOnFinish())
}

func (p *dbProgress) Add(_ string, n int64) {
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *dbProgress) Done(string, error) {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

var _ vulndb.Progress = (*dbProgress)(nil)
