package response

import (
	"context"
	"fmt"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-cwpp/vigil/internal/workload"
)

// stop stops the container through the Docker API.
func (r *Responder) stop(ctx context.Context, t Target) error {
	if t.Runtime != "" && t.Runtime != workload.RuntimeDocker {
		return fmt.Errorf("stop container %s: runtime %q is not supported (Docker only)", t.ContainerID, t.Runtime)
	}
	if t.PID > 0 {
		// The process named must still be in that container.
		if _, err := r.checkPID(t, false); err != nil {
			return fmt.Errorf("stop: %w", err)
		}
	}
	c, err := r.dockerClient()
	if err != nil {
		return fmt.Errorf("stop container %s: %w", t.ContainerID, err)
	}
	timeout := int((r.o.StopGrace + time.Second - 1) / time.Second)
	if _, err := c.ContainerStop(ctx, t.ContainerID, client.ContainerStopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("stop container %s: %w", t.ContainerID, err)
	}
	return nil
}
