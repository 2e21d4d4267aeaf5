package cli

import "github.com/spf13/cobra"

// newReportCmd is `vigil report` (compliance reports).
func newReportCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "report", Short: "Compliance reports per framework", Hidden: true}
}
