package agent

import (
	"context"
	"os"
	"strconv"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
)

// observeFIM hands e to realtime FIM (Detection.FIM), which reports a
// change to a watched path with the process, ancestry, user and container
// the event already carries. A relative path is resolved against the
// process's working directory read now from /proc — the cached one is
// from its exec, and a shell's cd since is common — falling back to the
// cached one when the process is gone. FIM alerts go through the response
// policy like any other, but not through the detector's aggregation
// (keyed on rule and lineage, it would hold back a second path changed by
// the same program): realtime FIM debounces per path and process.
func (d *Detector) observeFIM(ctx context.Context, e *event.Event, emit func(*alert.Alert)) {
	if d.fim == nil {
		return
	}
	if e.File != nil && (relative(e.File.Path) || relative(e.File.NewPath)) {
		if cwd, err := os.Readlink("/proc/" + strconv.Itoa(int(e.Process.PID)) + "/cwd"); err == nil && cwd != e.Process.Cwd {
			c := *e
			c.Process.Cwd = cwd
			e = &c
		}
	}
	d.fim.Observe(e, func(a *alert.Alert) {
		d.respond(ctx, a)
		emit(a)
	})
}

func relative(p string) bool { return p != "" && p[0] != '/' }
