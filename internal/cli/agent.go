package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-cwpp/vigil/internal/agent"
)

func newAgentCmd(g *globals) *cobra.Command {
	var (
		output   string
		file     string
		metrics  string
		hostname string
		prefixes []string
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the node agent: eBPF process, file and network events with container identity",
		Long: `Run the node agent. It loads Vigil's eBPF programs on kernel tracepoints and
writes one JSON event per line (process exec/fork/exit, file opens and
changes, connect/accept/bind/listen, privilege and kernel actions), each
with its process ancestry and workload (host, container, pod).

Needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN). In a container run it
with --pid host and /sys/kernel/tracing, /sys/fs/cgroup and the Docker
socket mounted (see docs/agent.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "json" {
				return &exitError{ExitError, fmt.Errorf("--output %q: only json is supported", output)}
			}
			var w io.Writer = g.stdout
			if file != "" {
				f, err := os.OpenFile(file, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer f.Close()
				w = f
			}
			o := agent.DefaultOptions()
			o.Output, o.MetricsAddr, o.Hostname, o.Logger = w, metrics, hostname, g.logger()
			if len(prefixes) > 0 {
				o.Sensor.SensitivePrefixes = prefixes
			}
			if err := agent.Run(cmd.Context(), o); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&output, "output", "json", "event format (json lines)")
	f.StringVar(&file, "file", "", "append events to this file instead of stdout")
	f.StringVar(&metrics, "metrics-addr", "127.0.0.1:9464", "serve Prometheus /metrics and /healthz here (\"\" disables)")
	f.StringVar(&hostname, "hostname", "", "host name to report (default: the system's)")
	f.StringSliceVar(&prefixes, "sensitive-prefix", nil, "paths whose read-only opens are reported (default: /etc/shadow, /etc/sudoers, /etc/ssh/, …)")
	return cmd
}
