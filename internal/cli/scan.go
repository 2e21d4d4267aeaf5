package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/artifact"
	"github.com/vigil-cwpp/vigil/internal/inventory"
	"github.com/vigil-cwpp/vigil/internal/sbom"
	"github.com/vigil-cwpp/vigil/internal/scan"
	"github.com/vigil-cwpp/vigil/internal/version"
	"github.com/vigil-cwpp/vigil/internal/vex"
	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// targetFlags are how a scan target is reached.
type targetFlags struct {
	insecure     bool
	username     string
	password     string
	platform     string
	maxFileSize  int64
	maxLayerSize int64
}

func (t *targetFlags) register(cmd *cobra.Command) {
	d := artifact.DefaultOptions()
	f := cmd.Flags()
	f.BoolVar(&t.insecure, "insecure", false, "allow plain HTTP and unverified TLS to the registry")
	f.StringVar(&t.username, "username", os.Getenv("VIGIL_REGISTRY_USERNAME"), "registry user (default $VIGIL_REGISTRY_USERNAME; else Docker config credentials)")
	f.StringVar(&t.password, "password", "", "registry password (default $VIGIL_REGISTRY_PASSWORD)")
	f.StringVar(&t.platform, "platform", d.Platform, "platform to pick from a multi-platform image")
	f.Int64Var(&t.maxFileSize, "max-file-size", d.MaxFileSize, "skip files larger than this many bytes")
	f.Int64Var(&t.maxLayerSize, "max-layer-size", d.MaxLayerSize, "fail a layer larger than this many uncompressed bytes")
}

const targetHelp = `TARGET is a directory or root filesystem, an image archive or layout, or an
image reference, with an optional kind prefix:

  dir:PATH               a directory or root filesystem
  docker-archive:FILE    a tarball written by 'docker save'
  oci-dir:DIR            an OCI image layout
  registry:REF           an image in a registry (--insecure for plain HTTP)
  docker:REF             an image in the local Docker daemon

Without a prefix an existing directory is dir: (oci-dir: when it holds an
oci-layout file), an existing file is docker-archive:, and anything else is an
image looked up in the Docker daemon, then in its registry.`

// artifactOptions turns the target flags into artifact options.
func (t *targetFlags) artifactOptions() artifact.Options {
	o := artifact.DefaultOptions()
	o.Insecure, o.Username, o.Password, o.Platform = t.insecure, t.username, t.password, t.platform
	if o.Password == "" {
		o.Password = os.Getenv("VIGIL_REGISTRY_PASSWORD")
	}
	o.MaxFileSize, o.MaxLayerSize = t.maxFileSize, t.maxLayerSize
	return o
}

// runScan parses target and runs a scan with a progress display on a
// terminal. db may be nil for an inventory only.
func runScan(ctx context.Context, g *globals, target string, tf *targetFlags, db vulnmatch.Source, filter *vex.Filter) (*scan.Result, error) {
	ref, err := artifact.ParseRef(target)
	if err != nil {
		return nil, err
	}
	o := scan.Options{Artifact: tf.artifactOptions(), DB: db, Filter: filter, Logger: g.logger()}
	if bar := newProgress(g, ref.String()); bar != nil {
		o.Artifact.Progress = bar
		o.Walked = bar.Walked
		defer bar.Finish()
	}
	return scan.Run(ctx, ref, o)
}

// inventoryOf opens target and extracts its inventory.
func inventoryOf(ctx context.Context, g *globals, target string, tf *targetFlags) (*inventory.Report, error) {
	res, err := runScan(ctx, g, target, tf, nil, nil)
	if err != nil {
		return nil, err
	}
	return res.Inventory, nil
}

// summarize prints warnings and errors of a report to stderr.
func summarize(g *globals, r *inventory.Report) {
	if g.quiet {
		return
	}
	if n := len(r.Warnings); n > 0 {
		fmt.Fprintf(g.stderr, "vigil: %d entries skipped on purpose (devices, paths leaving the target, oversize); -v lists them\n", n)
		if g.verbose {
			for _, w := range r.Warnings {
				fmt.Fprintf(g.stderr, "  skipped %s: %s\n", w.Path, w.Reason)
			}
		}
	}
	for _, e := range r.Errors {
		fmt.Fprintf(g.stderr, "vigil: error: %s: %s\n", e.Path, e.Error)
	}
	if r.Partial {
		fmt.Fprintf(g.stderr, "vigil: partial result: %d inputs could not be read\n", len(r.Errors))
	}
}

func newSBOMCmd(g *globals) *cobra.Command {
	var (
		tf     targetFlags
		format string
		output string
	)
	cmd := &cobra.Command{
		Use:   "sbom TARGET",
		Short: "Write a software bill of materials of TARGET",
		Long:  "Write a software bill of materials of TARGET.\n\n" + targetHelp,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := sbom.ParseFormat(format)
			if err != nil {
				return &exitError{ExitError, err}
			}
			r, err := inventoryOf(cmd.Context(), g, args[0], &tf)
			if err != nil {
				return &exitError{ExitError, err}
			}
			err = writeTo(g, output, func(w io.Writer) error {
				return sbom.Encode(w, f, r, sbom.Options{ToolName: "vigil", ToolVersion: version.Version})
			})
			if err != nil {
				return &exitError{ExitError, err}
			}
			summarize(g, r)
			if r.Partial {
				return &exitError{code: ExitPartial}
			}
			return nil
		},
	}
	tf.register(cmd)
	cmd.Flags().StringVarP(&format, "format", "f", "cyclonedx", "output format: cyclonedx, spdx, json, table")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the report to this file instead of stdout")
	return cmd
}

// writeTo writes through enc to the output file, or stdout when it is "".
func writeTo(g *globals, output string, enc func(io.Writer) error) error {
	if output == "" {
		return enc(g.stdout)
	}
	f, err := os.Create(output)
	if err != nil {
		return err
	}
	if err := enc(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", output, err)
	}
	return f.Close()
}
