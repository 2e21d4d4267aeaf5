package cli

import "github.com/spf13/cobra"

// newBenchCmd is `vigil bench` (CIS benchmarks).
func newBenchCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "bench", Short: "Run CIS benchmarks: linux, docker, kubernetes", Hidden: true}
}
