package agent

import (
	"context"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/workload"
)

// workloadCache remembers each live process's workload, so identity costs
// one map lookup per event instead of a /proc read (on cgroup v1 hosts the
// eBPF cgroup id cannot key the cache). An entry is dropped when its process
// execs (it may have changed cgroup on the way, as runc's init does) or
// exits, so a reused PID is looked up afresh. Used by one goroutine.
type workloadCache struct {
	max int
	m   map[int32]cachedWorkload
	// names resolves user and group names (users.go).
	names *workload.Names
}

func newWorkloadCache(max int) *workloadCache {
	return &workloadCache{max: max, m: make(map[int32]cachedWorkload), names: workload.NewNames(workload.NamesOptions{})}
}

// cachedWorkload is a process's workload and the process's start time: an
// entry whose process started at another time belongs to an earlier
// process with the same PID (its exit event was lost) and is not used.
type cachedWorkload struct {
	w     *event.Workload
	start time.Time
}

// lookup returns pid's cached workload if it is e's process's.
func (c *workloadCache) lookup(pid int32, e *event.Event) (*event.Workload, bool) {
	ent, ok := c.m[pid]
	if !ok {
		return nil, false
	}
	if st := e.Process.StartTime; !st.IsZero() && !ent.start.IsZero() && !st.Equal(ent.start) {
		delete(c.m, pid)
		return nil, false
	}
	return ent.w, true
}

func (c *workloadCache) get(ctx context.Context, res *workload.Resolver, e *event.Event) *event.Workload {
	pid := e.Process.PID
	switch e.Type {
	case event.ProcessExit:
		w, ok := c.lookup(pid, e)
		delete(c.m, pid)
		if ok {
			return w
		}
		return identify(ctx, res, e)
	case event.ProcessExec, event.ProcessFork:
		delete(c.m, pid)
	}
	if w, ok := c.lookup(pid, e); ok {
		return w
	}
	w := identify(ctx, res, e)
	if len(c.m) >= c.max {
		clear(c.m) // crude but bounded; refilled on the next events
	}
	c.m[pid] = cachedWorkload{w: w, start: e.Process.StartTime}
	return w
}

// identify finds the workload of e. The sensor names the cgroup of an
// exec'ing process (Process.CgroupName, read in the kernel), which holds
// even when the process is gone before its event is handled — a container
// that ran one command within milliseconds. A container found that way
// whose runtime knows it is the answer; otherwise the process's cgroup
// (by ID or /proc), then the ancestry: the nearest live ancestor in a
// container, else the container runtime's shim, whose "-id" argument names
// the container. An ID from the cgroup name that the runtime does not know
// (Docker away, or a container nested in another) is kept as the last
// resort rather than saying "host".
func identify(ctx context.Context, res *workload.Resolver, e *event.Event) *event.Workload {
	var byName *event.Workload
	if id, rt, ok := workload.ContainerIDFromCgroupName(e.Process.CgroupName); ok {
		byName = res.ForContainer(ctx, id, rt)
		if byName.ContainerName != "" {
			return byName
		}
	}
	w := identifyByProcess(ctx, res, e)
	if w.ContainerID == "" && byName != nil {
		return byName
	}
	return w
}

// identifyByProcess finds the workload of e from its process's cgroup, else
// its ancestry.
func identifyByProcess(ctx context.Context, res *workload.Resolver, e *event.Event) *event.Workload {
	w, sure := res.LookupCgroupID(ctx, e.Process.CgroupID, int(e.Process.PID))
	// A live process's own cgroup is the answer; only a process already
	// gone is identified through its ancestors (whose PIDs may have been
	// reused since: a host process must never borrow a container that way).
	if sure || (w != nil && w.ContainerID != "") {
		return w
	}
	chain := make([]event.Ancestor, 0, len(e.Ancestors)+1)
	if e.Parent != nil {
		chain = append(chain, event.Ancestor{PID: e.Parent.PID, Name: e.Parent.Name, Args: e.Parent.Args})
	}
	chain = append(chain, e.Ancestors...)
	for _, a := range chain {
		if strings.HasPrefix(a.Name, "containerd-shim") || strings.HasPrefix(a.Name, "conmon") {
			if id := shimContainerID(a.Args); id != "" {
				if cw := res.ForContainer(ctx, id, ""); cw != nil && cw.ContainerID != "" {
					return cw
				}
			}
			break // above the shim is the host
		}
		if aw := res.ForPID(ctx, int(a.PID)); aw != nil && aw.ContainerID != "" {
			return aw
		}
	}
	return w
}

// shimContainerID is the value of the "-id" (containerd shims) or "-c"
// (conmon) argument.
func shimContainerID(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-id" || args[i] == "--id" || args[i] == "-c" || args[i] == "--cid" {
			return args[i+1]
		}
	}
	return ""
}
