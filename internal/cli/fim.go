package cli

import "github.com/spf13/cobra"

// newFIMCmd is `vigil fim` (file integrity monitoring).
func newFIMCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "fim", Short: "File integrity monitoring: init, check and update a baseline", Hidden: true}
}
