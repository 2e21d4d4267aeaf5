package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/inventory"
)

// newUpCmd is the single-node job. Until the server exists it inventories
// this host's root filesystem and every local Docker image.
func newUpCmd(g *globals) *cobra.Command {
	var (
		tf   targetFlags
		root string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Inventory this host and every local Docker image, with a summary per target",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			targets := []string{"dir:" + root}
			imgs, err := localImages(ctx)
			if err != nil {
				fmt.Fprintf(g.stderr, "vigil: Docker images skipped: %v\n", err)
			}
			for _, im := range imgs {
				targets = append(targets, "docker:"+im)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "TARGET\tOS\tPACKAGES\tBY TYPE\tSTATUS")
			failed := 0
			for _, t := range targets {
				r, err := inventoryOf(ctx, g, t, &tf)
				if err != nil {
					failed++
					fmt.Fprintf(tw, "%s\t-\t-\t-\terror: %v\n", t, err)
					continue
				}
				status := "ok"
				if r.Partial {
					status = fmt.Sprintf("partial (%d errors)", len(r.Errors))
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", t, osName(r), len(r.Packages), byType(r), status)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if failed == len(targets) {
				return &exitError{ExitError, fmt.Errorf("no target could be scanned")}
			}
			return nil
		},
	}
	tf.register(cmd)
	cmd.Flags().StringVar(&root, "root", "/", "the host root filesystem to inventory")
	return cmd
}

func osName(r *inventory.Report) string {
	if r.OS == nil {
		return "-"
	}
	return strings.TrimSpace(r.OS.ID + " " + r.OS.VersionID)
}

func byType(r *inventory.Report) string {
	n := map[string]int{}
	for _, p := range r.Packages {
		n[p.Type]++
	}
	var parts []string
	for _, t := range slices.Sorted(maps.Keys(n)) {
		parts = append(parts, fmt.Sprintf("%s=%d", t, n[t]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
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
