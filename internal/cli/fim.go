package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/fim"
)

const fimExitHelp = `
Exit codes (as AIDE's):
  0   no differences
  1   entries were added          (bits are combined:
  2   entries were removed         7 = added, removed and changed)
  4   entries were changed
  14  configuration, key, baseline or I/O error: nothing was compared
  16  the baseline's MAC does not verify (tampered, or the wrong key): not trusted
Paths that could not be read are listed in the report and do not change the code.`

type fimFlags struct {
	config, db, key, format, auditLog string
	workers                           int
}

func (f *fimFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "configuration: YAML, or an aide.conf subset when the name ends in .conf (default "+fim.DefaultConfigPath+" if it exists, else the built-in one)")
	cmd.Flags().StringVar(&f.db, "db", "", "baseline database (default: the configuration's, "+fim.DefaultDatabase+")")
	cmd.Flags().StringVar(&f.key, "key", "", "MAC key file, kept outside the database (default: the configuration's, "+fim.DefaultKey+")")
	cmd.Flags().IntVar(&f.workers, "workers", 0, "goroutines that stat and hash (default 2×GOMAXPROCS)")
}

func (f *fimFlags) options() (fim.Options, error) {
	var cfg *fim.Config
	var err error
	switch {
	case f.config != "":
		cfg, err = fim.LoadConfig(f.config)
	default:
		if _, serr := os.Stat(fim.DefaultConfigPath); serr == nil {
			cfg, err = fim.LoadConfig(fim.DefaultConfigPath)
		} else {
			cfg = fim.DefaultConfig()
		}
	}
	if err != nil {
		return fim.Options{}, err
	}
	return fim.Options{Config: cfg, Database: f.db, Key: f.key, AuditLog: f.auditLog, Scan: fim.ScanOptions{Workers: f.workers}}, nil
}

// fimFail maps an error to fim's exit codes.
func fimFail(err error) error {
	if errors.Is(err, fim.ErrTampered) {
		return &exitError{fim.ExitTampered, fmt.Errorf("%w\nthe baseline is not trusted: nothing was compared", err)}
	}
	return &exitError{fim.ExitError, err}
}

func writeFIMReport(w io.Writer, rep *fim.Report, format string) error {
	if format == "json" {
		return rep.WriteJSON(w)
	}
	return rep.WriteTable(w)
}

// newFIMCmd is `vigil fim` (file integrity monitoring).
func newFIMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fim",
		Short: "File integrity monitoring: init, check and update a baseline",
		Long: `File integrity monitoring in the manner of AIDE: init records the watched files'
attributes in a baseline protected by a keyed MAC, check compares the files with
it, update accepts the current state as the new baseline (and says so in the
audit log next to the database). See docs/fim.md.
` + fimExitHelp,
	}
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{fim.ExitError, err} })
	args := func(c *cobra.Command, a []string) error {
		if len(a) > 0 {
			return &exitError{fim.ExitError, fmt.Errorf("%s takes no arguments", c.CommandPath())}
		}
		return nil
	}

	var initFlags fimFlags
	var force bool
	initCmd := &cobra.Command{
		Use:   "init",
		Short: "Scan the watched files and write the baseline (creating the key if needed)",
		Long:  "Scan the watched files and write the baseline, creating the MAC key (0600) if it does not exist.\n" + fimExitHelp,
		Args:  args,
		RunE: func(c *cobra.Command, _ []string) error {
			o, err := initFlags.options()
			if err != nil {
				return fimFail(err)
			}
			res, err := fim.Init(c.Context(), o, force)
			if err != nil {
				return fimFail(err)
			}
			for _, e := range res.Errors {
				fmt.Fprintf(g.stderr, "vigil: fim: %s: %s\n", e.Path, e.Err)
			}
			if !g.quiet {
				db := o.Database
				if db == "" {
					db = o.Config.Database
				}
				fmt.Fprintf(g.stdout, "baseline %s: %d entries, %d files hashed (%d bytes), %d unreadable\n", db, len(res.Entries), res.Hashed, res.Bytes, len(res.Errors))
			}
			return nil
		},
	}
	initFlags.add(initCmd)
	initCmd.Flags().BoolVar(&force, "force", false, "replace an existing (or tampered) baseline")

	compare := func(update bool) *cobra.Command {
		var f fimFlags
		use, short := "check", "Compare the watched files with the baseline"
		if update {
			use, short = "update", "Compare, then accept the current state as the new baseline (audited)"
		}
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Long:  short + ".\n" + fimExitHelp,
			Args:  args,
			RunE: func(c *cobra.Command, _ []string) error {
				if f.format != "table" && f.format != "json" {
					return &exitError{fim.ExitError, fmt.Errorf("--format %q: want table or json", f.format)}
				}
				o, err := f.options()
				if err != nil {
					return fimFail(err)
				}
				var rep *fim.Report
				if update {
					rep, err = fim.Update(c.Context(), o)
				} else {
					rep, err = fim.Check(c.Context(), o)
				}
				if err != nil {
					return fimFail(err)
				}
				if err := writeFIMReport(g.stdout, rep, f.format); err != nil {
					return fimFail(err)
				}
				if code := rep.ExitCode(); code != 0 {
					return &exitError{code: code}
				}
				return nil
			},
		}
		f.add(c)
		c.Flags().StringVar(&f.format, "format", "table", "report format: table or json")
		if update {
			c.Flags().StringVar(&f.auditLog, "audit-log", "", "audit log (default <db>.audit.log)")
		}
		return c
	}
	initCmd.Flags().StringVar(&initFlags.auditLog, "audit-log", "", "audit log (default <db>.audit.log)")
	cmd.AddCommand(initCmd, compare(false), compare(true))
	return cmd
}
