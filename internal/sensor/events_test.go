package sensor

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// helper runs the test binary's helper modes (VIGIL_SENSOR_HELPER), each
// a child process that makes the calls a test watches for.
func helper(mode string) int {
	switch mode {
	case "dup2":
		// Connect to VIGIL_ADDR, print the socket's fd, dup2 it onto stdin.
		ap, err := netip.ParseAddrPort(os.Getenv("VIGIL_ADDR"))
		if err != nil {
			return 2
		}
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
		if err != nil {
			return 3
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
			return 4
		}
		fmt.Println(fd)
		if _, _, errno := unix.Syscall(unix.SYS_DUP2, uintptr(fd), 0, 0); errno != 0 {
			return 5
		}
		return 0
	case "execveat":
		return execveatMemfd()
	case "wait-exec-true":
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 2
		}
		unix.Exec("/bin/true", []string{"true"}, nil)
		return 3
	case "execveat-path":
		p, _ := unix.BytePtrFromString("/bin/true")
		argv := []*byte{p, nil}
		envv := []*byte{nil}
		fdcwd := unix.AT_FDCWD
		unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fdcwd), uintptr(unsafe.Pointer(p)),
			uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), 0, 0)
		return 3
	case "wait-execveat":
		// Wait for the test to set a policy, then exec a memfd.
		if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
			return 2
		}
		return execveatMemfd()
	}
	return 100
}

// execveatMemfd copies /bin/true into a memfd and executes it with
// execveat(fd, "", AT_EMPTY_PATH). It returns only on failure.
func execveatMemfd() int {
	fd, err := unix.MemfdCreate("vigil-true", 0)
	if err != nil {
		return 10
	}
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		return 11
	}
	if _, err := unix.Write(fd, b); err != nil {
		return 12
	}
	empty, _ := unix.BytePtrFromString("")
	argv0, _ := unix.BytePtrFromString("vigil-true")
	argv := []*byte{argv0, nil}
	envv := []*byte{nil}
	unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return 13
}

func helperCmd(t *testing.T, mode string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "VIGIL_SENSOR_HELPER="+mode)
	return cmd
}

// sys makes a raw syscall with path arguments, for the legacy calls the
// Go runtime never makes (link, symlink, mkdir, chown, creat, open).
func sys(t *testing.T, nr uintptr, args ...any) int {
	t.Helper()
	var a [3]uintptr
	for i, v := range args {
		switch v := v.(type) {
		case string:
			p, err := unix.BytePtrFromString(v)
			if err != nil {
				t.Fatal(err)
			}
			a[i] = uintptr(unsafe.Pointer(p))
			defer runtime.KeepAlive(p)
		case int:
			a[i] = uintptr(v)
		}
	}
	r, _, errno := unix.Syscall(nr, a[0], a[1], a[2])
	if errno != 0 {
		t.Fatalf("syscall %d%v: %v", nr, args, errno)
	}
	return int(r)
}

func TestFileEventsMore(t *testing.T) {
	c := watch(t)
	me := int32(os.Getpid())
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(p("f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	type want struct {
		kind    event.Kind
		syscall string
		file    event.File
	}
	tests := []struct {
		name string
		do   func()
		want want
	}{
		{"link", func() { sys(t, unix.SYS_LINK, p("f"), p("l1")) }, want{event.FileLink, "link", event.File{Path: p("f"), NewPath: p("l1")}}},
		{"linkat", func() { os.Link(p("f"), p("l2")) }, want{event.FileLink, "linkat", event.File{Path: p("f"), NewPath: p("l2")}}},
		{"symlink", func() { sys(t, unix.SYS_SYMLINK, "/etc/shadow", p("s1")) }, want{event.FileSymlink, "symlink", event.File{Path: "/etc/shadow", NewPath: p("s1")}}},
		{"symlinkat", func() { os.Symlink("/etc/shadow", p("s2")) }, want{event.FileSymlink, "symlinkat", event.File{Path: "/etc/shadow", NewPath: p("s2")}}},
		{"mkdir", func() { sys(t, unix.SYS_MKDIR, p("d1"), 0o750) }, want{event.FileMkdir, "mkdir", event.File{Path: p("d1"), Mode: 0o750}}},
		{"mkdirat", func() { os.Mkdir(p("d2"), 0o705) }, want{event.FileMkdir, "mkdirat", event.File{Path: p("d2"), Mode: 0o705}}},
		{"chown", func() { sys(t, unix.SYS_CHOWN, p("f"), 1234, 5678) }, want{event.FileChown, "chown", event.File{Path: p("f"), UID: 1234, GID: 5678}}},
		{"lchown", func() { sys(t, unix.SYS_LCHOWN, p("s1"), 1, 2) }, want{event.FileChown, "lchown", event.File{Path: p("s1"), UID: 1, GID: 2}}},
		{"fchownat", func() { os.Chown(p("f"), 42, 43) }, want{event.FileChown, "fchownat", event.File{Path: p("f"), UID: 42, GID: 43}}},
		{"creat", func() { unix.Close(sys(t, unix.SYS_CREAT, p("c"), 0o640)) }, want{event.FileOpen, "creat",
			event.File{Path: p("c"), Flags: unix.O_CREAT | unix.O_WRONLY | unix.O_TRUNC, Mode: 0o640}}},
		{"open", func() { unix.Close(sys(t, unix.SYS_OPEN, p("o"), unix.O_WRONLY|unix.O_CREAT, 0o600)) }, want{event.FileOpen, "open",
			event.File{Path: p("o"), Flags: unix.O_WRONLY | unix.O_CREAT, Mode: 0o600}}},
		{"openat2", func() {
			fd, err := unix.Openat2(unix.AT_FDCWD, p("o2"), &unix.OpenHow{Flags: unix.O_WRONLY | unix.O_CREAT, Mode: 0o644})
			if err != nil {
				t.Fatal(err)
			}
			unix.Close(fd)
		}, want{event.FileOpen, "openat2", event.File{Path: p("o2"), Flags: unix.O_WRONLY | unix.O_CREAT, Mode: 0o644}}},
		{"fchmodat2", func() { sys(t, unix.SYS_FCHMODAT2, unix.AT_FDCWD, p("f"), 0o604) }, want{event.FileChmod, "fchmodat2", event.File{Path: p("f"), Mode: 0o604}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.do()
			ev := await(t, c, tt.name, func(ev event.Event) bool {
				return ev.Type == tt.want.kind && ev.Process.PID == me && ev.Syscall == tt.want.syscall &&
					ev.File != nil && ev.File.Path == tt.want.file.Path
			})
			got := *ev.File
			if tt.want.kind == event.FileOpen {
				got.Flags &= unix.O_ACCMODE | unix.O_CREAT | unix.O_TRUNC
			}
			if got != tt.want.file || ev.Ret < 0 {
				t.Errorf("file = %+v, ret = %d; want %+v and success", got, ev.Ret, tt.want.file)
			}
		})
	}
}

func TestUmount(t *testing.T) {
	c := watch(t)
	vigiltest.RequireCommand(t, "unshare")
	target := t.TempDir()
	pid := start(t, exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs vigil "$1" && umount "$1"`, "sh", target))
	ev := await(t, c, "umount", func(ev event.Event) bool {
		return ev.Type == event.Umount && ev.Process.PPID == pid && ev.Detail.Target == target
	})
	if ev.Syscall != "umount2" || ev.Ret != 0 {
		t.Errorf("syscall = %q, ret = %d; want umount2 and 0", ev.Syscall, ev.Ret)
	}
}

func TestCapset(t *testing.T) {
	c := watch(t)
	// capset with the thread's own sets changes nothing.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	tid := int32(unix.Gettid())
	ev := await(t, c, "priv_capset", func(ev event.Event) bool {
		return ev.Type == event.PrivCapset && ev.Process.TID == tid
	})
	eff := uint64(data[0].Effective) | uint64(data[1].Effective)<<32
	perm := uint64(data[0].Permitted) | uint64(data[1].Permitted)<<32
	if ev.Syscall != "capset" || ev.Ret != 0 || ev.Detail.CapEffective != eff || ev.Detail.CapPermitted != perm || eff == 0 {
		t.Errorf("syscall %q ret %d detail %+v; want capset, 0, effective %#x permitted %#x", ev.Syscall, ev.Ret, ev.Detail, eff, perm)
	}
}

// TestSocket checks the in-kernel socket filter: a packet socket is
// reported, a TCP socket made just before it is not.
func TestSocket(t *testing.T) {
	c := watch(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(tcp)
	proto := int(htons(unix.ETH_P_ALL))
	pkt, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, proto)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(pkt)
	tid := int32(unix.Gettid())
	var seen []event.Net
	ev := await(t, c, "net_socket packet", func(ev event.Event) bool {
		if ev.Type != event.NetSocket || ev.Process.TID != tid {
			return false
		}
		seen = append(seen, *ev.Net)
		return ev.Net.Family == "packet"
	})
	if ev.Net.Type != "raw" || ev.Net.Protocol != proto || ev.Ret != int64(pkt) || ev.Syscall != "socket" {
		t.Errorf("net %+v ret %d syscall %q; want packet/raw protocol %#x, fd %d", ev.Net, ev.Ret, ev.Syscall, proto, pkt)
	}
	if len(seen) != 1 {
		t.Errorf("sockets reported before the packet socket: %+v; want none (the TCP socket is filtered)", seen[:len(seen)-1])
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestDupSocket is Falco's "redirect stdin to a network connection": a
// process dup2s a connected TCP socket onto fd 0.
func TestDupSocket(t *testing.T) {
	c := watch(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := unmap(ln.Addr().(*net.TCPAddr).AddrPort())
	peer := make(chan netip.AddrPort, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			close(peer)
			return
		}
		peer <- unmap(conn.RemoteAddr().(*net.TCPAddr).AddrPort())
		conn.Close()
	}()
	cmd := helperCmd(t, "dup2")
	cmd.Env = append(cmd.Env, "VIGIL_ADDR="+addr.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	fd, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("helper printed %q", out)
	}
	src := <-peer
	pid := int32(cmd.Process.Pid)
	ev := await(t, c, "fd_dup", func(ev event.Event) bool {
		return ev.Type == event.FDDup && ev.Process.PID == pid
	})
	want := event.Net{Family: "inet", Type: "stream", Protocol: unix.IPPROTO_TCP, Src: src, Dst: addr}
	if diff := cmp.Diff(&want, ev.Net, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
		t.Errorf("net (-want +got):\n%s", diff)
	}
	if ev.Syscall != "dup2" || ev.Detail.Request != uint64(fd) || ev.Ret != 0 {
		t.Errorf("syscall %q old fd %d ret %d; want dup2, %d, 0", ev.Syscall, ev.Detail.Request, ev.Ret, fd)
	}
}

// TestDupNotSocket checks that dup of a file is not reported: the same
// thread then dups a socket, which must come without the first.
func TestDupNotSocket(t *testing.T) {
	c := watch(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	for _, fd := range []int{int(f.Fd()), s} {
		n, err := unix.Dup(fd)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(n)
	}
	tid := int32(unix.Gettid())
	var old []uint64
	await(t, c, "fd_dup of a unix socket", func(ev event.Event) bool {
		if ev.Type != event.FDDup || ev.Process.TID != tid {
			return false
		}
		old = append(old, ev.Detail.Request)
		return ev.Net.Family == "unix" && ev.Net.Type == "dgram" && ev.Syscall == "dup"
	})
	if len(old) != 1 || old[0] != uint64(s) {
		t.Errorf("dups reported: old fds %v, want only %d", old, s)
	}
}

// openPTY opens a pseudo-terminal pair and returns the slave and its
// index (/dev/pts/N).
func openPTY(t *testing.T) (*os.File, int) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		vigiltest.Unavailable(t, "no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, n
}

func TestExecTTYSessionCaps(t *testing.T) {
	c := watch(t)
	pts, n := openPTY(t)
	cmd := exec.Command("/bin/true", marker(t))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	pid := start(t, cmd)
	ev := await(t, c, "process_exec on a tty", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == pid
	})
	var st unix.Stat_t
	if err := unix.Stat(pts.Name(), &st); err != nil {
		t.Fatal(err)
	}
	major, minor := unix.Major(st.Rdev), unix.Minor(st.Rdev)
	ttyNr := uint32(minor&0xff | major<<8 | (minor&^0xff)<<12)
	p := ev.Process
	if p.TTY != "pts/"+strconv.Itoa(n) || p.TTYNr != ttyNr {
		t.Errorf("tty = %q (%d), want pts/%d (%d)", p.TTY, p.TTYNr, n, ttyNr)
	}
	if p.SID != pid || p.PGID != pid {
		t.Errorf("sid = %d, pgid = %d; want both %d (a new session)", p.SID, p.PGID, pid)
	}
	if ev.Syscall != "execve" || p.ExeMemfd || p.ExeUpper || ev.Blocked {
		t.Errorf("syscall %q memfd %v upper %v blocked %v; want execve and no flags", ev.Syscall, p.ExeMemfd, p.ExeUpper, ev.Blocked)
	}
	// A root exec has the test's effective capabilities.
	if want := capEff(t, "self"); p.CapEff != want || p.CapEff&(1<<unix.CAP_SYS_ADMIN) == 0 {
		t.Errorf("cap_effective = %#x, want %#x with CAP_SYS_ADMIN", p.CapEff, want)
	}
	if want := cgroupLeaf(t); p.CgroupName != want {
		t.Errorf("cgroup name = %q, want %q", p.CgroupName, want)
	}
}

func TestExecSameSession(t *testing.T) {
	c := watch(t)
	pid := start(t, exec.Command("/bin/true", marker(t)))
	ev := await(t, c, "process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == pid
	})
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Process.SID != int32(sid) || ev.Process.PGID != int32(unix.Getpgrp()) {
		t.Errorf("sid %d pgid %d; want the test's %d and %d", ev.Process.SID, ev.Process.PGID, sid, unix.Getpgrp())
	}
}

func capEff(t *testing.T, pid string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no CapEff in /proc/self/status")
	return 0
}

// cgroupLeaf is the leaf name of the test's cgroup as the sensor reads it.
func cgroupLeaf(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var unified string
	for line := range strings.Lines(string(b)) {
		f := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(f) != 3 {
			continue
		}
		leaf := filepath.Base(f[2])
		if leaf == "/" {
			leaf = ""
		}
		if f[1] == "" {
			unified = leaf
		}
		if strings.Contains(","+f[1]+",", ",cpuset,") && cgroupV2() == 0 {
			return leaf
		}
	}
	return unified
}

func TestExecMemfd(t *testing.T) {
	c := watch(t)
	t.Run("execveat", func(t *testing.T) {
		cmd := helperCmd(t, "execveat")
		pid := start(t, cmd)
		ev := await(t, c, "process_exec of a memfd", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.PID == pid && ev.Syscall == "execveat"
		})
		if !ev.Process.ExeMemfd || ev.Process.ExeUpper {
			t.Errorf("exe_memfd = %v, exe_upper = %v; want true, false", ev.Process.ExeMemfd, ev.Process.ExeUpper)
		}
	})
	t.Run("execveat of a path", func(t *testing.T) {
		pid := start(t, helperCmd(t, "execveat-path"))
		ev := await(t, c, "process_exec of /bin/true", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.PID == pid && ev.Process.Exe == "/bin/true"
		})
		if ev.Syscall != "execveat" || ev.Process.ExeMemfd {
			t.Errorf("syscall %q, exe_memfd %v; want execveat, false", ev.Syscall, ev.Process.ExeMemfd)
		}
	})
	t.Run("deleted file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "deleted-true")
		b, err := os.ReadFile("/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/proc/self/fd/3")
		cmd.ExtraFiles = []*os.File{f}
		pid := start(t, cmd)
		ev := await(t, c, "process_exec of a deleted file", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.PID == pid
		})
		if !ev.Process.ExeMemfd || ev.Syscall != "execve" {
			t.Errorf("exe_memfd = %v, syscall %q; want true, execve", ev.Process.ExeMemfd, ev.Syscall)
		}
	})
}

func TestSetnsAndModule(t *testing.T) {
	c := watch(t)
	me := int32(os.Getpid())
	t.Run("setns", func(t *testing.T) {
		f, err := os.Open("/proc/self/ns/net")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		// Entering the namespace the thread is already in changes nothing.
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Fatal(err)
		}
		ev := await(t, c, "setns", func(ev event.Event) bool {
			return ev.Type == event.Setns && ev.Process.PID == me
		})
		if ev.Syscall != "setns" || ev.Detail.Request != unix.CLONE_NEWNET || ev.Ret != 0 {
			t.Errorf("syscall %q flags %#x ret %d; want setns, CLONE_NEWNET, 0", ev.Syscall, ev.Detail.Request, ev.Ret)
		}
	})
	t.Run("finit_module", func(t *testing.T) {
		params := marker(t)
		p, _ := unix.BytePtrFromString(params)
		// EBADF, or ENOSYS on a kernel built without modules: the event
		// is taken at syscall entry either way.
		_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, 9999, uintptr(unsafe.Pointer(p)), 0)
		if errno != unix.EBADF && errno != unix.ENOSYS {
			t.Fatalf("finit_module(9999) = %v, want EBADF or ENOSYS", errno)
		}
		ev := await(t, c, "module_load", func(ev event.Event) bool {
			return ev.Type == event.ModuleLoad && ev.Process.PID == me && ev.Detail.Name == params
		})
		if ev.Syscall != "finit_module" || ev.Ret != -int64(errno) {
			t.Errorf("syscall %q ret %d; want finit_module, %d", ev.Syscall, ev.Ret, -int64(errno))
		}
	})
}

// TestContainerExec runs a container that copies /bin/true into its
// writable layer and executes the copy (a drifted binary) and the
// original: only the copy lives in the overlayfs upper layer, and both
// name the container's cgroup.
func TestContainerExec(t *testing.T) {
	c := watch(t)
	img := vigiltest.RequireBookwormImage(t)
	m := marker(t)
	cidfile := filepath.Join(t.TempDir(), "cid")
	out, err := exec.Command("docker", "run", "--rm", "--network", "none", "--cidfile", cidfile, img,
		"sh", "-c", `cp /bin/true /tmp/drift && /tmp/drift "$1" && /bin/true "$1"`, "sh", m).CombinedOutput()
	if err != nil {
		t.Fatalf("docker run: %v\n%s", err, out)
	}
	cid, err := os.ReadFile(cidfile)
	if err != nil {
		t.Fatal(err)
	}
	execOf := func(exe string) event.Event {
		return await(t, c, "process_exec "+exe, func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.Exe == exe && len(ev.Process.Args) == 2 && ev.Process.Args[1] == m
		})
	}
	drift, orig := execOf("/tmp/drift"), execOf("/bin/true")
	if !drift.Process.ExeUpper || orig.Process.ExeUpper || drift.Process.ExeMemfd {
		t.Errorf("exe_upper_layer: /tmp/drift %v, /bin/true %v (want true, false); /tmp/drift memfd %v",
			drift.Process.ExeUpper, orig.Process.ExeUpper, drift.Process.ExeMemfd)
	}
	for _, ev := range []event.Event{drift, orig} {
		if !strings.Contains(ev.Process.CgroupName, strings.TrimSpace(string(cid))) {
			t.Errorf("%s: cgroup name %q, want the container ID %s in it", ev.Process.Exe, ev.Process.CgroupName, cid)
		}
	}
}

// policyChild starts a helper in a new mount namespace that waits for a
// line on stdin before its exec, and returns it with its namespace.
func policyChild(t *testing.T, mode string) (*exec.Cmd, uint32, *os.File) {
	t.Helper()
	cmd := helperCmd(t, mode)
	cmd.SysProcAttr = &unix.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = r
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	t.Cleanup(func() { w.Close(); cmd.Process.Kill(); cmd.Wait() })
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/mnt", cmd.Process.Pid), &st); err != nil {
		t.Fatal(err)
	}
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &self); err != nil {
		t.Fatal(err)
	}
	if st.Ino == self.Ino {
		t.Fatal("the helper is in the test's mount namespace")
	}
	return cmd, uint32(st.Ino), w
}

// killedBy9 waits for cmd and checks that SIGKILL ended it.
func killedBy9(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("helper ended with %v, want killed by SIGKILL", err)
	}
}

func TestExecPolicyKillsMemfd(t *testing.T) {
	c := watch(t)
	cmd, ns, w := policyChild(t, "wait-execveat")
	if err := shared.s.SetExecPolicy(ns, ExecPolicy{KillMemfd: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.s.ClearExecPolicy(ns) })
	fmt.Fprintln(w)
	killedBy9(t, cmd)
	ev := await(t, c, "blocked process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == int32(cmd.Process.Pid) && ev.Process.ExeMemfd
	})
	if !ev.Blocked || ev.Process.MntNS != ns {
		t.Errorf("blocked = %v, mnt_ns = %d; want true, %d", ev.Blocked, ev.Process.MntNS, ns)
	}

	// The same policy lets an ordinary executable run.
	cmd, ns, w = policyChild(t, "wait-exec-true")
	if err := shared.s.SetExecPolicy(ns, ExecPolicy{KillMemfd: true, KillUpperLayer: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.s.ClearExecPolicy(ns) })
	fmt.Fprintln(w)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exec of /bin/true under a memfd and upper-layer policy: %v, want success", err)
	}
	ev = await(t, c, "process_exec /bin/true", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == int32(cmd.Process.Pid) && ev.Process.Exe == "/bin/true"
	})
	if ev.Blocked {
		t.Error("exec of /bin/true marked blocked")
	}
}

func TestExecPolicyDeny(t *testing.T) {
	c := watch(t)
	var st unix.Stat_t
	if err := unix.Stat("/bin/true", &st); err != nil {
		t.Fatal(err)
	}
	cmd, ns, w := policyChild(t, "wait-exec-true")
	if err := shared.s.DenyExec(ns, st.Ino); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.s.ClearExecPolicy(ns) })
	fmt.Fprintln(w)
	killedBy9(t, cmd)
	ev := await(t, c, "blocked process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == int32(cmd.Process.Pid) && ev.Process.ExeInode == st.Ino
	})
	if !ev.Blocked {
		t.Error("exec of a denied inode not marked blocked")
	}
	// Cleared, the namespace has no denied executables left, and a
	// memfd exec elsewhere (the test's own namespace) is not blocked.
	if err := shared.s.ClearExecPolicy(ns); err != nil {
		t.Fatal(err)
	}
	var (
		k    denyKey
		v    uint8
		left int
	)
	for it := shared.s.maps.ExecDeny.Iterate(); it.Next(&k, &v); {
		if k.MntNS == ns {
			left++
		}
	}
	if left != 0 {
		t.Errorf("%d denied executables left after ClearExecPolicy", left)
	}
	if err := shared.s.ClearExecPolicy(ns); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
}

// BenchmarkRawSyscallHook measures what the raw sys_enter/sys_exit
// fallback for init_module/finit_module adds to every other syscall: a
// getppid loop (a syscall no program traces) with no sensor, with every
// program but "module", and with all of them.
func BenchmarkRawSyscallHook(b *testing.B) {
	vigiltest.RequireRoot(b)
	loop := func(b *testing.B) {
		for b.Loop() {
			unix.Syscall(unix.SYS_GETPPID, 0, 0, 0)
		}
	}
	b.Run("off", loop)
	for _, c := range []struct {
		name    string
		disable []string
	}{{"sensor-without-module", []string{"module"}}, {"sensor", nil}} {
		o := DefaultOptions()
		o.Disable, o.Fallbacks = c.disable, FallbackAlways
		s, err := Open(o)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(c.name, loop)
		s.Close()
	}
}

// TestStartTime checks that exec and fork events carry the process start
// time exactly as /proc/PID/stat gives it (btime plus whole ticks), which
// the response engine compares against before it kills.
func TestStartTime(t *testing.T) {
	c := watch(t)
	cmd := exec.Command("/bin/sh", "-c", "sleep 30", marker(t))
	pid := start(t, cmd)
	defer cmd.Process.Kill()
	ev := await(t, c, "process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == pid
	})
	fork := await(t, c, "process_fork of sleep", func(ev event.Event) bool {
		return ev.Type == event.ProcessFork && ev.Process.PPID == pid
	})
	for _, e := range []event.Event{ev, fork} {
		if want := procStart(t, e.Process.PID); !e.Process.StartTime.Equal(want) {
			t.Errorf("%s of %d: start time %v, want %v from /proc", e.Type, e.Process.PID, e.Process.StartTime, want)
		}
	}
}

// procStart is btime plus /proc/PID/stat's starttime ticks.
func procStart(t *testing.T, pid int32) time.Time {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	btime := parseBtime(b)
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+1:]))
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return btime.Add(time.Duration(ticks) * 10 * time.Millisecond)
}

// TestExecPolicyAllowList checks the protect-mode policy: in a namespace
// whose policy is AllowListed, an executable given with AllowExec runs and
// any other is killed at exec.
func TestExecPolicyAllowList(t *testing.T) {
	c := watch(t)
	var st unix.Stat_t
	if err := unix.Stat("/bin/true", &st); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var selfSt unix.Stat_t
	if err := unix.Stat(self, &selfSt); err != nil {
		t.Fatal(err)
	}

	// /bin/true allowed: it runs and exits 0.
	cmd, ns, w := policyChild(t, "wait-exec-true")
	if err := shared.s.SetExecPolicy(ns, ExecPolicy{AllowListed: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.s.ClearExecPolicy(ns) })
	if err := shared.s.AllowExec(ns, st.Ino); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("allowed /bin/true: %v", err)
	}
	ev := await(t, c, "allowed process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == int32(cmd.Process.Pid) && ev.Process.ExeInode == st.Ino
	})
	if ev.Blocked {
		t.Error("exec of an allowed inode marked blocked")
	}
	// The namespace is gone with its process, and its inode number may be
	// reused by the next one: the policy must go with it (the agent clears
	// a container's policy when the container's init exits).
	if err := shared.s.ClearExecPolicy(ns); err != nil {
		t.Fatal(err)
	}

	// Not allowed: killed at exec, blocked.
	cmd, ns2, w := policyChild(t, "wait-exec-true")
	if err := shared.s.SetExecPolicy(ns2, ExecPolicy{AllowListed: true}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shared.s.ClearExecPolicy(ns2) })
	// The helper itself (already running) and an unrelated inode are
	// allowed; /bin/true is not.
	if err := shared.s.AllowExec(ns2, selfSt.Ino); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w)
	killedBy9(t, cmd)
	ev = await(t, c, "blocked process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == int32(cmd.Process.Pid) && ev.Process.ExeInode == st.Ino
	})
	if !ev.Blocked {
		t.Error("exec of an inode not on the allow list not marked blocked")
	}

	// Denying wins over allowing.
	if err := shared.s.DenyExec(ns2, st.Ino); err != nil {
		t.Fatal(err)
	}
	if err := shared.s.AllowExec(ns2, st.Ino); err != nil {
		t.Fatal(err)
	}
	var v uint8
	if err := shared.s.maps.ExecDeny.Lookup(denyKey{MntNS: ns2, Ino: st.Ino}, &v); err != nil || v != execDenied {
		t.Errorf("after deny then allow: value %d, %v; want denied", v, err)
	}
}
