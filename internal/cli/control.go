package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// defaultControlSocket is where `vigil agent` serves its control API.
const defaultControlSocket = "/run/vigil/agent.sock"

// controlClient talks HTTP to the agent's control socket.
type controlClient struct {
	socket string
	hc     *http.Client
}

func newControlClient(socket string) *controlClient {
	return &controlClient{socket: socket, hc: &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

// do sends a request and copies a successful body to out.
func (c *controlClient) do(ctx context.Context, method, path string, body io.Reader, ctype string, out io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent control socket %s: %w (is `vigil agent` running?)", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("agent: %s", strings.TrimSpace(string(msg)))
	}
	if out != nil {
		_, err = io.Copy(out, resp.Body)
	}
	return err
}

func newProfileCmd(g *globals) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "profile",
		Short: "Review and edit the behaviour profiles of a running agent",
		Long: `Behaviour profiles are learned per workload class (image repository or
Kubernetes workload): executables, parent→child pairs, listening ports,
outbound destinations and written paths. A class is in discover (learning),
monitor (deviations alert) or protect (deviations are blocked) mode. These
commands talk to the running agent over its control socket.`,
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", defaultControlSocket, "the agent's control socket")
	cl := func() *controlClient { return newControlClient(socket) }

	list := &cobra.Command{
		Use: "list", Short: "List the profiles (JSON)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cl().do(cmd.Context(), "GET", "/v1/profiles?format=json", nil, "", g.stdout); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	export := &cobra.Command{
		Use: "export [CLASS...]", Short: "Write profiles as YAML, for review and editing",
		RunE: func(cmd *cobra.Command, args []string) error {
			q := url.Values{"class": args}
			if err := cl().do(cmd.Context(), "GET", "/v1/profiles?"+q.Encode(), nil, "", g.stdout); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	imp := &cobra.Command{
		Use: "import FILE", Short: "Replace the classes in FILE (YAML from export, edited) in the running agent", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return &exitError{ExitError, err}
				}
				defer f.Close()
				in = f
			}
			if err := cl().do(cmd.Context(), "PUT", "/v1/profiles", in, "application/yaml", nil); err != nil {
				return &exitError{ExitError, fmt.Errorf("importing %s: %w", args[0], err)}
			}
			return nil
		},
	}
	mode := &cobra.Command{
		Use: "mode CLASS discover|monitor|protect", Short: "Switch a class's mode", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			form := url.Values{"class": {args[0]}, "mode": {args[1]}}
			if err := cl().do(cmd.Context(), "POST", "/v1/profiles/mode", strings.NewReader(form.Encode()),
				"application/x-www-form-urlencoded", nil); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	cmd.AddCommand(list, export, imp, mode)
	return cmd
}

func newResponseCmd(g *globals) *cobra.Command {
	var socket string
	cmd := &cobra.Command{
		Use:   "response",
		Short: "List the response actions a running agent took (or would have taken) and undo freezes and isolations",
	}
	cmd.PersistentFlags().StringVar(&socket, "socket", defaultControlSocket, "the agent's control socket")
	list := &cobra.Command{
		Use: "list", Short: "List response records (JSON)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := newControlClient(socket).do(cmd.Context(), "GET", "/v1/responses", nil, "", g.stdout); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	var actor string
	undo := &cobra.Command{
		Use: "undo RECORD-ID", Short: "Undo a freeze or an isolation", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			form := url.Values{"id": {args[0]}, "actor": {actor}}
			if err := newControlClient(socket).do(cmd.Context(), "POST", "/v1/responses/undo", strings.NewReader(form.Encode()),
				"application/x-www-form-urlencoded", g.stdout); err != nil {
				return &exitError{ExitError, err}
			}
			return nil
		},
	}
	undo.Flags().StringVar(&actor, "actor", os.Getenv("USER"), "who is undoing it, for the audit trail")
	cmd.AddCommand(list, undo)
	return cmd
}
