package response

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// freezer is one container's cgroup freezer: a cgroup v1 freezer directory
// (freezer.state) or a cgroup v2 directory (cgroup.freeze, cgroup.events).
type freezer struct {
	dir string
	v2  bool
}

// pollEvery is how often a freezer's state is read while waiting for it.
const pollEvery = 5 * time.Millisecond

// freezerOf finds the freezer cgroup of the target's container: from a
// process's /proc/PID/cgroup, the v1 "freezer" line when there is one, else
// the v2 "0::" line. The cgroup must be the container's own (its path names
// the container): the root or a host slice is never frozen.
func (r *Responder) freezerOf(ctx context.Context, t Target) (freezer, error) {
	pid, lines, err := r.pidOf(ctx, t)
	if err != nil {
		return freezer{}, err
	}
	var v1, v2 string
	for _, l := range lines {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			if c == "freezer" {
				v1 = parts[2]
			}
		}
	}
	var f freezer
	switch {
	case v1 != "":
		f = freezer{dir: filepath.Join(r.o.Cgroup, "freezer", path.Clean("/"+v1))}
	case v2 != "":
		root := r.o.Cgroup
		if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
			root = filepath.Join(r.o.Cgroup, "unified") // hybrid layout
		}
		f = freezer{dir: filepath.Join(root, path.Clean("/"+v2)), v2: true}
	default:
		return freezer{}, fmt.Errorf("pid %d: no freezer cgroup in %s/%d/cgroup", pid, r.o.Proc, pid)
	}
	cg := strings.TrimPrefix(f.dir, r.o.Cgroup)
	if id := containerOf([]string{cg}); !sameContainer(id, t.ContainerID) {
		return freezer{}, fmt.Errorf("pid %d: cgroup %s is not container %s's own: refusing to freeze it", pid, f.dir, t.ContainerID)
	}
	file := f.stateFile()
	if _, err := os.Stat(file); err != nil {
		return freezer{}, fmt.Errorf("container %s: no freezer: %w", t.ContainerID, err)
	}
	return f, nil
}

func (f freezer) stateFile() string {
	if f.v2 {
		return filepath.Join(f.dir, "cgroup.freeze")
	}
	return filepath.Join(f.dir, "freezer.state")
}

// set freezes (frozen true) or thaws the cgroup and waits until the kernel
// reports the new state. When a freeze does not complete before ctx ends,
// the cgroup is thawed again: a half-frozen container is left to no one.
func (f freezer) set(ctx context.Context, frozen bool) error {
	verb := "thawing"
	if frozen {
		verb = "freezing"
	}
	if err := f.write(frozen); err != nil {
		return fmt.Errorf("%s %s: %w", verb, f.dir, err)
	}
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		ok, err := f.is(frozen)
		if err != nil {
			return fmt.Errorf("%s %s: %w", verb, f.dir, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			err := fmt.Errorf("%s %s: state not reached: %w", verb, f.dir, ctx.Err())
			if frozen {
				if terr := f.write(false); terr != nil {
					err = fmt.Errorf("%w; thawing it back failed too: %v", err, terr)
				} else {
					err = fmt.Errorf("%w (thawed back)", err)
				}
			}
			return err
		case <-tick.C:
		}
	}
}

func (f freezer) write(frozen bool) error {
	var v string
	switch {
	case f.v2 && frozen:
		v = "1"
	case f.v2:
		v = "0"
	case frozen:
		v = "FROZEN"
	default:
		v = "THAWED"
	}
	return os.WriteFile(f.stateFile(), []byte(v), 0)
}

// is reports whether the kernel says the cgroup is (not) frozen: v1's
// freezer.state reads FROZEN or THAWED (FREEZING in between), v2's
// cgroup.events holds "frozen 1" or "frozen 0".
func (f freezer) is(frozen bool) (bool, error) {
	if !f.v2 {
		b, err := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
		if err != nil {
			return false, err
		}
		s := strings.TrimSpace(string(b))
		return (s == "FROZEN") == frozen && s != "FREEZING", nil
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "cgroup.events"))
	if err != nil {
		return false, err
	}
	want := "frozen 0"
	if frozen {
		want = "frozen 1"
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if strings.TrimSpace(l) == want {
			return true, nil
		}
	}
	return false, nil
}
