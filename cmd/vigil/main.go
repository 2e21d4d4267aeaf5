// Command vigil is the Vigil cloud workload protection platform: scanner,
// node agent and server in one binary. See `vigil --help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/vigil-cwpp/vigil/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
