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
// the event already carries. FIM alerts go through the response policy
// like any other, but not through the detector's aggregation (keyed on
// rule and lineage, it would hold back a second path changed by the same
// program): realtime FIM debounces per path and process.
func (d *Detector) observeFIM(ctx context.Context, e *event.Event, emit func(*alert.Alert)) {
	if d.fim == nil {
		return
	}
	d.fim.Observe(e, func(a *alert.Alert) {
		d.respond(ctx, a)
		emit(a)
	})
}

// freshCwd sets the working directory of a file event with a relative
// path from /proc, read as the event arrives (before the detector's
// queue), because the one the process cache holds is from the process's
// exec and a shell's cd since is common. When the process is already gone
// the cached one stays; when that is empty, FIM cannot place the path.
func freshCwd(e *event.Event) {
	if e.File == nil || !(relative(e.File.Path) || relative(e.File.NewPath)) {
		return
	}
	if cwd, err := os.Readlink("/proc/" + strconv.Itoa(int(e.Process.PID)) + "/cwd"); err == nil {
		e.Process.Cwd = cwd
	}
}

func relative(p string) bool { return p != "" && p[0] != '/' }
