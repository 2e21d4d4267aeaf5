package response

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/workload"
)

// userHZ is the unit of /proc/PID/stat's starttime (USER_HZ, 100 on Linux).
const userHZ = 100

// StartTimeSlack is how far Target.StartTime may be from the start time
// /proc gives before Kill refuses: one clock tick, the resolution of
// /proc/PID/stat.
const StartTimeSlack = time.Second / userHZ

// StartTimeOf returns when pid started, the way Target.StartTime wants it:
// the boot time (btime of <proc>/stat) plus starttime of <proc>/<pid>/stat.
func StartTimeOf(proc string, pid int32) (time.Time, error) {
	boot, err := bootTime(proc)
	if err != nil {
		return time.Time{}, err
	}
	ticks, err := startTicks(proc, pid)
	if err != nil {
		return time.Time{}, err
	}
	return boot.Add(time.Duration(ticks) * time.Second / userHZ), nil
}

func bootTime(proc string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading boot time: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parsing btime %q in %s/stat: %w", v, proc, err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("no btime in %s/stat", proc)
}

// startTicks reads field 22 (starttime) of <proc>/<pid>/stat.
func startTicks(proc string, pid int32) (uint64, error) {
	p := filepath.Join(proc, strconv.Itoa(int(pid)), "stat")
	b, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", p, err)
	}
	return parseStartTicks(p, b)
}

// parseStartTicks reads starttime from the text of a /proc/PID/stat file
// named p.
func parseStartTicks(p string, b []byte) (uint64, error) {
	// comm (field 2) may hold spaces and parentheses: fields resume after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parsing %s: no ')' after comm", p)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("parsing %s: %d fields after comm, want at least 20", p, len(f))
	}
	t, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing starttime in %s: %w", p, err)
	}
	return t, nil
}

// cgroupLines reads <proc>/<pid>/cgroup.
func cgroupLines(proc string, pid int32) ([]string, error) {
	p := filepath.Join(proc, strconv.Itoa(int(pid)), "cgroup")
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var out []string
	for l := range strings.SplitSeq(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out, nil
}

// containerOf returns the container ID pid's cgroups name, or "".
func containerOf(lines []string) string {
	for _, l := range lines {
		if id, _, ok := workload.ContainerIDFromCgroup(l); ok {
			return id
		}
	}
	return ""
}

// sameContainer reports whether an ID from the cgroup path and one from the
// target agree; either may be the short (12-hex) form.
func sameContainer(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a)
}

// checkPID verifies that pid is the process the target means: its start
// time matches when one is given, and it is in the target's container when
// one is named. It returns pid's cgroup lines.
func (r *Responder) checkPID(t Target, needStart bool) ([]string, error) {
	if needStart && t.StartTime.IsZero() {
		return nil, fmt.Errorf("pid %d: the target has no start time; refusing to act without a guard against PID reuse", t.PID)
	}
	if !t.StartTime.IsZero() {
		st, err := StartTimeOf(r.o.Proc, t.PID)
		if err != nil {
			return nil, fmt.Errorf("pid %d: %w", t.PID, err)
		}
		if d := st.Sub(t.StartTime); d > StartTimeSlack || d < -StartTimeSlack {
			return nil, fmt.Errorf("pid %d started at %s, not %s: the PID was reused, refusing",
				t.PID, st.UTC().Format(time.RFC3339Nano), t.StartTime.UTC().Format(time.RFC3339Nano))
		}
	}
	lines, err := cgroupLines(r.o.Proc, t.PID)
	if err != nil {
		return nil, fmt.Errorf("pid %d: %w", t.PID, err)
	}
	if t.ContainerID != "" {
		if got := containerOf(lines); !sameContainer(got, t.ContainerID) {
			if got == "" {
				got = "the host"
			}
			return nil, fmt.Errorf("pid %d is in %s, not in container %s: refusing", t.PID, got, t.ContainerID)
		}
	}
	return lines, nil
}

// kill sends SIGKILL through a pidfd opened before the start time is
// checked, so the process checked is the process signalled.
func (r *Responder) kill(t Target) error {
	fd, err := unix.PidfdOpen(int(t.PID), 0)
	if err != nil {
		return fmt.Errorf("kill pid %d: opening pidfd: %w", t.PID, err)
	}
	defer unix.Close(fd)
	if _, err := r.checkPID(t, true); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill pid %d: the process already exited", t.PID)
		}
		return fmt.Errorf("kill pid %d: %w", t.PID, err)
	}
	return nil
}

// pidOf returns a process of the target: its PID, checked, or the
// container's main process from the Docker API.
func (r *Responder) pidOf(ctx context.Context, t Target) (int32, []string, error) {
	if t.PID > 0 {
		lines, err := r.checkPID(t, false)
		return t.PID, lines, err
	}
	if t.Runtime != "" && t.Runtime != workload.RuntimeDocker {
		return 0, nil, fmt.Errorf("container %s: no PID in the target and runtime %q is not Docker", t.ContainerID, t.Runtime)
	}
	c, err := r.dockerClient()
	if err != nil {
		return 0, nil, err
	}
	res, err := c.ContainerInspect(ctx, t.ContainerID, client.ContainerInspectOptions{})
	if err != nil {
		return 0, nil, fmt.Errorf("inspecting container %s: %w", t.ContainerID, err)
	}
	st := res.Container.State
	if st == nil || !st.Running || st.Pid <= 0 {
		return 0, nil, fmt.Errorf("container %s is not running", t.ContainerID)
	}
	pid := int32(st.Pid)
	lines, err := r.checkPID(Target{PID: pid, ContainerID: t.ContainerID}, false)
	return pid, lines, err
}
