package proccache

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// userHZ is the unit of /proc/<pid>/stat times. The kernel exports
// USER_HZ, which is 100 on every Linux architecture Vigil supports.
const userHZ = 100

// stat is what Vigil uses of /proc/<pid>/stat.
type stat struct {
	PID        int32
	Comm       string
	State      byte
	PPID       int32
	PGRP       int32
	Session    int32
	TTY        uint32 // tty_nr
	StartTicks uint64 // starttime, clock ticks since boot
}

var errStat = errors.New("malformed stat")

// parseStat parses /proc/<pid>/stat. The comm field may hold spaces and
// parentheses ("(a) b)"), so it runs from the first '(' to the last ')'.
func parseStat(b []byte) (stat, error) {
	var s stat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return s, fmt.Errorf("%w: no (comm)", errStat)
	}
	pid, err := strconv.ParseInt(string(bytes.TrimSpace(b[:open])), 10, 32)
	if err != nil {
		return s, fmt.Errorf("%w: pid: %w", errStat, err)
	}
	s.PID = int32(pid)
	s.Comm = string(b[open+1 : end])
	f := strings.Fields(string(b[end+1:]))
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 {
		return s, fmt.Errorf("%w: %d fields after comm, want at least 20", errStat, len(f))
	}
	if len(f[0]) != 1 {
		return s, fmt.Errorf("%w: state %q", errStat, f[0])
	}
	s.State = f[0][0]
	ppid, err := strconv.ParseInt(f[1], 10, 32)
	if err != nil {
		return s, fmt.Errorf("%w: ppid: %w", errStat, err)
	}
	s.PPID = int32(ppid)
	pgrp, err := strconv.ParseInt(f[2], 10, 32)
	if err != nil {
		return s, fmt.Errorf("%w: pgrp: %w", errStat, err)
	}
	s.PGRP = int32(pgrp)
	sid, err := strconv.ParseInt(f[3], 10, 32)
	if err != nil {
		return s, fmt.Errorf("%w: session: %w", errStat, err)
	}
	s.Session = int32(sid)
	tty, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil {
		return s, fmt.Errorf("%w: tty_nr: %w", errStat, err)
	}
	s.TTY = uint32(tty)
	if s.StartTicks, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return s, fmt.Errorf("%w: starttime: %w", errStat, err)
	}
	return s, nil
}

// splitCmdline splits NUL-separated argv; a missing final NUL (a
// truncated read, or a process that rewrote its argv) is tolerated.
func splitCmdline(b []byte) []string {
	b = bytes.TrimRight(b, "\x00")
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte{0})
	args := make([]string, len(parts))
	for i, p := range parts {
		args[i] = string(p)
	}
	return args
}

// status is what Vigil uses of /proc/<pid>/status.
type status struct {
	UID, EUID, GID, EGID uint32
	CapEff, CapPrm       uint64
	// VPID is the last NSpid field: the pid in the process's own pid
	// namespace.
	VPID int32
}

// parseStatus reads Uid, Gid, CapEff, CapPrm and NSpid; missing or
// malformed lines leave zeros.
func parseStatus(b []byte) status {
	var s status
	for line := range strings.Lines(string(b)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		switch k {
		case "Uid":
			s.UID, s.EUID = idField(f, 0), idField(f, 1)
		case "Gid":
			s.GID, s.EGID = idField(f, 0), idField(f, 1)
		case "CapEff":
			if len(f) > 0 {
				s.CapEff, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "CapPrm":
			if len(f) > 0 {
				s.CapPrm, _ = strconv.ParseUint(f[0], 16, 64)
			}
		case "NSpid":
			if len(f) > 0 {
				if n, err := strconv.ParseInt(f[len(f)-1], 10, 32); err == nil && n > 0 {
					s.VPID = int32(n)
				}
			}
		}
	}
	return s
}

func idField(f []string, i int) uint32 {
	if i >= len(f) {
		return 0
	}
	n, _ := strconv.ParseUint(f[i], 10, 32)
	return uint32(n)
}

// bootTime reads btime from <proc>/stat.
func bootTime(proc string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(proc, "stat"))
	if err != nil {
		return time.Time{}, fmt.Errorf("reading boot time: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parsing btime: %w", err)
			}
			return time.Unix(n, 0), nil
		}
	}
	return time.Time{}, errors.New("no btime in stat")
}

// readProc reads one process from <proc>/<pid>. Only stat is required;
// the other files are best effort (kernel threads have no exe, other
// users' processes hide cwd from non-root).
func readProc(proc string, pid int32, boot time.Time) (event.Process, error) {
	dir := filepath.Join(proc, strconv.Itoa(int(pid)))
	b, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return event.Process{}, fmt.Errorf("reading process %d: %w", pid, err)
	}
	st, err := parseStat(b)
	if err != nil {
		return event.Process{}, fmt.Errorf("parsing %s/stat: %w", dir, err)
	}
	p := event.Process{PID: pid, PPID: st.PPID, Name: st.Comm, SID: st.Session, PGID: st.PGRP,
		TTYNr: st.TTY, TTY: ttyName(st.TTY)}
	if !boot.IsZero() {
		p.StartTime = boot.Add(time.Duration(st.StartTicks) * time.Second / userHZ)
	}
	if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil {
		p.Exe = exe
		p.ExeMemfd = exeMemfd(exe)
	}
	if cwd, err := os.Readlink(filepath.Join(dir, "cwd")); err == nil {
		p.Cwd = cwd
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Args = splitCmdline(b)
		p.CmdLine = strings.Join(p.Args, " ")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		s := parseStatus(b)
		p.UID, p.EUID, p.GID, p.EGID, p.CapEff = s.UID, s.EUID, s.GID, s.EGID, s.CapEff
		p.CapPrm, p.VPID = s.CapPrm, s.VPID
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup")); err == nil {
		p.CgroupName = cgroupLeaf(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "loginuid")); err == nil {
		if n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil {
			p.LoginUID = uint32(n)
		}
	}
	return p, nil
}

// ttyName names the terminal with device number nr (/proc/<pid>/stat's
// tty_nr) the way the sensor does, below /dev: "pts/3", "tty1", "ttyS0".
// Other devices, and no terminal (0), give "".
func ttyName(nr uint32) string {
	major := (nr >> 8) & 0xfff
	minor := nr&0xff | (nr>>12)&0xfff00
	switch {
	case major >= 136 && major <= 143: // Unix98 pseudo-terminal slaves
		return "pts/" + strconv.FormatUint(uint64((major-136)*256+minor), 10)
	case major == 4 && minor < 64:
		return "tty" + strconv.FormatUint(uint64(minor), 10)
	case major == 4:
		return "ttyS" + strconv.FormatUint(uint64(minor-64), 10)
	}
	return ""
}

// exeMemfd says whether /proc/<pid>/exe's target is a memfd or a deleted
// file, as the sensor's ExeMemfd does.
func exeMemfd(exe string) bool {
	return strings.HasPrefix(exe, "/memfd:") || strings.HasSuffix(exe, " (deleted)")
}

// cgroupLeaf returns the last path element of the process's cgroup in
// /proc/<pid>/cgroup: the cpuset hierarchy's on cgroup v1 (the one the
// sensor reads), else the unified hierarchy's ("0::/path"). The root
// cgroup gives "".
func cgroupLeaf(b []byte) string {
	var unified string
	for line := range strings.Lines(string(b)) {
		_, rest, ok := strings.Cut(strings.TrimRight(line, "\n"), ":")
		if !ok {
			continue
		}
		ctrls, path, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		leaf := path[strings.LastIndexByte(path, '/')+1:]
		if ctrls == "" {
			unified = leaf
			continue
		}
		for c := range strings.SplitSeq(ctrls, ",") {
			if c == "cpuset" {
				return leaf
			}
		}
	}
	return unified
}
