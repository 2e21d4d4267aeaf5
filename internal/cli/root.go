// Package cli defines vigil's commands: it parses flags, builds options and
// calls the capability packages. It holds no scanning logic of its own.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/version"
)

// Exit codes, documented in `vigil --help`.
const (
	ExitClean   = 0 // nothing to report, or a report was written
	ExitPolicy  = 1 // a policy (such as --fail-on) matched
	ExitError   = 2 // usage or runtime error
	ExitPartial = 3 // a report was written but some inputs could not be read
)

// ExitError carries an exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// globals are the flags every command shares.
type globals struct {
	verbose bool
	quiet   bool
	stdout  io.Writer
	stderr  io.Writer
}

func (g *globals) logger() *slog.Logger {
	level := slog.LevelWarn
	if g.verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: level}))
}

// Run executes vigil with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitClean
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.code != ExitPolicy && ee.code != ExitPartial {
			fmt.Fprintln(stderr, "vigil:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "vigil:", err)
	return ExitError
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "vigil",
		Short: "Vigil protects what runs inside workloads: images, hosts, containers, pods",
		Long: `Vigil is a cloud workload protection platform in one binary.

Exit codes:
  0  clean: the command finished and, for scans, nothing matched a policy
  1  a policy matched (for example --fail-on); the build should fail
  2  usage or runtime error
  3  partial result: a report was written but some inputs could not be read`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version.Version,
	}
	root.PersistentFlags().BoolVarP(&g.verbose, "verbose", "v", false, "log debug messages to stderr")
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "no progress bar and no summary on stderr")
	root.AddCommand(newVersionCmd(g), newSBOMCmd(g), newScanCmd(g), newDBCmd(g), newAgentCmd(g), newRulesCmd(g), newProfileCmd(g), newResponseCmd(g), newServerCmd(g), newUpCmd(g), newFIMCmd(g), newBenchCmd(g), newReportCmd(g), newDriftCmd(g))
	return root
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(g.stdout, "vigil %s", version.Version)
			if c := version.Commit(); c != "" {
				fmt.Fprintf(g.stdout, " (%s)", c)
			}
			fmt.Fprintln(g.stdout)
			return nil
		},
	}
}
