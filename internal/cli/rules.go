package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/agent"
	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/rules"
)

func newRulesCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check and try out runtime detection rules (Falco-compatible YAML)",
	}
	cmd.AddCommand(newRulesValidateCmd(g), newRulesTestCmd(g))
	return cmd
}

// loadRules reads rules files in order; none means the built-in ruleset.
func loadRules(paths []string) (*rules.Ruleset, error) {
	if len(paths) == 0 {
		return rules.Default()
	}
	files := make([]rules.File, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("reading rules: %w", err)
		}
		files = append(files, rules.File{Name: p, Data: b})
	}
	return rules.Load(files...)
}

func newRulesValidateCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "validate [FILE...]",
		Short: "Load rules files and list every rule as loaded or skipped, with the reason",
		Long: `Load rules files (later files override earlier ones, as in Falco) and list
every rule: loaded, disabled, or skipped with the field, operator or source
it needs that Vigil does not have. Without files the built-in ruleset is
checked. A syntax error, an unknown macro, a macro cycle or a regex that
does not compile is an error naming the file, line and rule (exit 2).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rs, err := loadRules(args)
			if err != nil {
				return &exitError{ExitError, err}
			}
			st := rs.Statuses()
			if format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"rules": st, "warnings": rs.Warnings()})
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STATUS\tRULE\tWHERE\tREASON")
			loaded, skipped, disabled := 0, 0, 0
			for _, s := range st {
				status := "loaded"
				switch {
				case !s.Loaded:
					status = "skipped"
					skipped++
				case !s.Enabled:
					status = "disabled"
					disabled++
				default:
					loaded++
				}
				fmt.Fprintf(tw, "%s\t%s\t%s:%d\t%s\n", status, s.Name, s.File, s.Line, s.Reason)
			}
			tw.Flush()
			fmt.Fprintf(g.stdout, "\n%d rules: %d loaded, %d disabled, %d skipped\n", len(st), loaded, disabled, skipped)
			for _, w := range rs.Warnings() {
				fmt.Fprintln(g.stderr, "warning:", w)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "table", "table or json")
	return cmd
}

func newRulesTestCmd(g *globals) *cobra.Command {
	var (
		ruleFiles []string
		events    string
	)
	cmd := &cobra.Command{
		Use:   "test --events FILE",
		Short: "Replay recorded events (vigil agent JSON lines) through the rules and print the alerts",
		Long: `Replay a file of events recorded by 'vigil agent' (one JSON event per line;
alert lines in it are ignored) through the rules and print the alerts as
JSON lines. Exit code 1 when any rule fired. A line that is not an event is
reported with its line number and skipped.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if events == "" {
				return &exitError{ExitError, fmt.Errorf("--events is required")}
			}
			rs, err := loadRules(ruleFiles)
			if err != nil {
				return &exitError{ExitError, err}
			}
			var in io.Reader = os.Stdin
			if events != "-" {
				f, err := os.Open(events)
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer f.Close()
				in = f
			}
			d := agent.NewDetector(agent.Detection{Rules: rs})
			n, bad, err := replay(cmd.Context(), in, events, d, g)
			if err != nil {
				return &exitError{ExitError, err}
			}
			fmt.Fprintf(g.stderr, "%d alerts from %s\n", n, events)
			switch {
			case bad > 0:
				return &exitError{ExitPartial, fmt.Errorf("%s: %d lines could not be read", events, bad)}
			case n > 0:
				return &exitError{ExitPolicy, nil}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&ruleFiles, "rules", nil, "rules files (default: the built-in ruleset)")
	f.StringVar(&events, "events", "", "recorded events, JSON lines (- for stdin)")
	return cmd
}

func replay(ctx context.Context, in io.Reader, name string, d *agent.Detector, g *globals) (alerts, bad int, err error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	enc := json.NewEncoder(g.stdout)
	emit := func(a *alert.Alert) {
		alerts++
		_ = enc.Encode(a)
	}
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(b) == 0 {
			continue
		}
		var probe struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &probe); err != nil {
			fmt.Fprintf(g.stderr, "%s:%d: not JSON: %v\n", name, line, err)
			bad++
			continue
		}
		if probe.Type == "alert" {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(b, &e); err != nil || e.Type == event.KindUnknown {
			if err == nil {
				err = fmt.Errorf("unknown event type %q", probe.Type)
			}
			fmt.Fprintf(g.stderr, "%s:%d: not an event: %v\n", name, line, err)
			bad++
			continue
		}
		d.Process(ctx, &e, emit)
	}
	d.Close(emit)
	if err := sc.Err(); err != nil {
		return alerts, bad, fmt.Errorf("reading %s: %w", name, err)
	}
	return alerts, bad, nil
}
