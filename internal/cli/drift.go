package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/drift"
)

// newDriftCmd is `vigil drift` (container drift from its image).
func newDriftCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "drift [CONTAINER...]",
		Short: "Files added or changed in running containers compared with their images",
		Long: `Compare each container's writable layer (overlay2's upper directory) with its
image's layers and list what was added, changed (content, mode, owner or link
target), deleted or replaced (a directory removed and made again). Added or
changed executables are marked: running one is drift, which the agent's
zero-drift rules alert on at exec.

Without arguments every running container is checked. Needs root (the layers
are under /var/lib/docker) and the Docker socket.

Exit codes: 0 no drift, 1 drift found, 2 error, 3 a container could not be
fully checked (the report says why).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if format != "table" && format != "json" {
				return &exitError{ExitError, fmt.Errorf("--format %q: want table or json", format)}
			}
			c, err := client.New(client.FromEnv)
			if err != nil {
				return &exitError{ExitError, fmt.Errorf("docker client: %w", err)}
			}
			defer c.Close()
			reps, err := drift.Containers(cmd.Context(), c, args)
			if err != nil {
				return &exitError{ExitError, err}
			}
			if format == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(reps); err != nil {
					return &exitError{ExitError, err}
				}
			} else {
				writeDriftTable(g, reps)
			}
			drifted, partial := false, false
			for i := range reps {
				drifted = drifted || reps[i].Drifted()
				partial = partial || reps[i].Error != ""
			}
			switch {
			case partial:
				return &exitError{ExitPartial, fmt.Errorf("some containers could not be fully checked")}
			case drifted:
				return &exitError{ExitPolicy, nil}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "output format: table or json")
	return cmd
}

func writeDriftTable(g *globals, reps []drift.Report) {
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	for i, r := range reps {
		if i > 0 {
			fmt.Fprintln(tw)
		}
		fmt.Fprintf(tw, "container %s (%s) image %s: %d changes, %d executables\n", r.Name, driftShortID(r.ID), r.Image, len(r.Changes), len(r.Executables()))
		if r.Error != "" {
			fmt.Fprintf(tw, "  not fully checked: %s\n", r.Error)
		}
		if len(r.Changes) == 0 {
			continue
		}
		fmt.Fprintln(tw, "KIND\tTYPE\tMODE\tSIZE\tEXEC\tDIFFERS\tPATH")
		for _, c := range r.Changes {
			exe := ""
			if c.Executable {
				exe = "exec"
				if c.ELF {
					exe = "elf"
				}
			}
			p := c.Path
			if c.Target != "" {
				p += " -> " + c.Target
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", c.Kind, c.Type, c.Mode, c.Size, exe, strings.Join(c.Differs, ","), p)
		}
	}
}

func driftShortID(id string) string { return id[:min(12, len(id))] }
