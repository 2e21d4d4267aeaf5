package cli

import "github.com/spf13/cobra"

// newDriftCmd is `vigil drift` (container drift from its image).
func newDriftCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "drift", Short: "Files added or changed in running containers compared with their images", Hidden: true}
}
