package sensor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// waitFor is how long a test waits for an expected event.
const waitFor = 10 * time.Second

func TestMain(m *testing.M) {
	// Helper mode: the test binary re-executed as a child that makes one
	// privileged call.
	switch mode := os.Getenv("VIGIL_SENSOR_HELPER"); mode {
	case "":
	case "setuid":
		if _, _, errno := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0); errno != 0 {
			os.Exit(1)
		}
		os.Exit(0)
	default:
		os.Exit(helper(mode))
	}
	code := m.Run()
	shared.close()
	os.Exit(code)
}

// hub is one sensor shared by the tests (loading takes seconds), fanning
// its events out to every watcher.
type hub struct {
	once   sync.Once
	err    error
	s      *Sensor
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	subs map[chan event.Event]struct{}
}

var shared hub

func (h *hub) close() {
	if h.s == nil {
		return
	}
	h.cancel()
	<-h.done
	h.s.Close()
}

// watch starts the shared sensor if needed and returns a channel of every
// event from now on.
func watch(t *testing.T) <-chan event.Event {
	t.Helper()
	vigiltest.RequireRoot(t)
	shared.once.Do(func() {
		o := DefaultOptions()
		o.Fallbacks = FallbackAlways // this kernel has no module support, so auto would skip the module fallback
		shared.s, shared.err = Open(o)
		if shared.err != nil {
			return
		}
		shared.subs = map[chan event.Event]struct{}{}
		ctx, cancel := context.WithCancel(context.Background())
		shared.cancel = cancel
		shared.done = make(chan struct{})
		out := make(chan event.Event, 4096)
		go func() {
			defer close(shared.done)
			shared.s.Run(ctx, out)
		}()
		go func() {
			for ev := range out {
				shared.mu.Lock()
				for c := range shared.subs {
					select {
					case c <- ev:
					default: // a slow watcher loses events; its wait then times out
					}
				}
				shared.mu.Unlock()
			}
		}()
	})
	if shared.err != nil {
		t.Fatalf("Open: %v", shared.err)
	}
	c := make(chan event.Event, 1<<16)
	shared.mu.Lock()
	shared.subs[c] = struct{}{}
	shared.mu.Unlock()
	t.Cleanup(func() {
		shared.mu.Lock()
		delete(shared.subs, c)
		shared.mu.Unlock()
	})
	return c
}

// await returns the first event from c that match accepts, failing the
// test after waitFor. Events that do not match are given to seen, if set.
func await(t *testing.T, c <-chan event.Event, what string, match func(event.Event) bool) event.Event {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case ev := <-c:
			if match(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %s event within %v", what, waitFor)
		}
	}
}

func marker(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	return "vigil-marker-" + hex.EncodeToString(b)
}

func start(t *testing.T, cmd *exec.Cmd) int32 {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Wait() })
	return int32(cmd.Process.Pid)
}

func TestExecAndExit(t *testing.T) {
	c := watch(t)
	m := marker(t)
	cmd := exec.Command("/bin/sh", "-c", "echo hi", m)
	pid := start(t, cmd)

	ev := await(t, c, "process_exec", func(ev event.Event) bool {
		return ev.Type == event.ProcessExec && ev.Process.PID == pid
	})
	if diff := cmp.Diff([]string{"/bin/sh", "-c", "echo hi", m}, ev.Process.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if ev.Process.Exe != "/bin/sh" && ev.Process.Exe != "/usr/bin/sh" {
		t.Errorf("exe = %q, want /bin/sh", ev.Process.Exe)
	}
	if ev.Process.PPID != int32(os.Getpid()) {
		t.Errorf("ppid = %d, want %d", ev.Process.PPID, os.Getpid())
	}
	if ev.Process.ExeInode == 0 || ev.Process.CgroupID == 0 || ev.Process.MntNS == 0 || ev.Process.PidNS == 0 || ev.Process.NetNS == 0 {
		t.Errorf("missing inode, cgroup or namespaces: %+v", ev.Process)
	}
	var st unix.Stat_t
	if err := unix.Stat("/bin/sh", &st); err == nil && st.Ino != ev.Process.ExeInode {
		t.Errorf("exe inode = %d, want %d", ev.Process.ExeInode, st.Ino)
	}
	if since := time.Since(ev.Time); since < 0 || since > time.Minute {
		t.Errorf("event time %v is %v from now", ev.Time, since)
	}

	ev = await(t, c, "process_exit", func(ev event.Event) bool {
		return ev.Type == event.ProcessExit && ev.Process.PID == pid
	})
	if diff := cmp.Diff(&event.Exit{Code: 0}, ev.Exit); diff != "" {
		t.Errorf("exit (-want +got):\n%s", diff)
	}
}

func TestForkAndExitCode(t *testing.T) {
	c := watch(t)
	// sh forks a subshell for the parenthesised list, which exits 3.
	pid := start(t, exec.Command("/bin/sh", "-c", "(exit 3); exit 5", marker(t)))
	ev := await(t, c, "process_fork", func(ev event.Event) bool {
		return ev.Type == event.ProcessFork && ev.Process.PPID == pid
	})
	child := ev.Process.PID
	ev = await(t, c, "process_exit of the subshell", func(ev event.Event) bool {
		return ev.Type == event.ProcessExit && ev.Process.PID == child
	})
	if ev.Exit.Code != 3 {
		t.Errorf("subshell exit code = %d, want 3", ev.Exit.Code)
	}
	ev = await(t, c, "process_exit", func(ev event.Event) bool {
		return ev.Type == event.ProcessExit && ev.Process.PID == pid
	})
	if ev.Exit.Code != 5 {
		t.Errorf("exit code = %d, want 5", ev.Exit.Code)
	}
}

func TestExitSignal(t *testing.T) {
	c := watch(t)
	pid := start(t, exec.Command("/bin/sh", "-c", "kill -9 $$", marker(t)))
	ev := await(t, c, "process_exit", func(ev event.Event) bool {
		return ev.Type == event.ProcessExit && ev.Process.PID == pid
	})
	if diff := cmp.Diff(&event.Exit{Signal: 9}, ev.Exit); diff != "" {
		t.Errorf("exit (-want +got):\n%s", diff)
	}
}

func TestFileOpen(t *testing.T) {
	c := watch(t)
	written := filepath.Join(t.TempDir(), "written")

	tests := []struct {
		name  string
		args  []string
		path  string
		flags uint32 // that must be set
		mask  uint32 // bits of flags compared
	}{
		{"sensitive read", []string{"cat", "/etc/shadow"}, "/etc/shadow", unix.O_RDONLY, unix.O_ACCMODE},
		{"write", []string{"/bin/sh", "-c", `echo x > "$1"`, "sh", written}, written,
			unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, unix.O_ACCMODE | unix.O_CREAT | unix.O_TRUNC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pid := start(t, exec.Command(tt.args[0], tt.args[1:]...))
			ev := await(t, c, "file_open "+tt.path, func(ev event.Event) bool {
				return ev.Type == event.FileOpen && ev.Process.PID == pid && ev.File.Path == tt.path
			})
			if ev.File.Flags&tt.mask != tt.flags {
				t.Errorf("flags = %#o, want %#o in mask %#o", ev.File.Flags, tt.flags, tt.mask)
			}
			if ev.Ret < 0 {
				t.Errorf("ret = %d, want a file descriptor", ev.Ret)
			}
		})
	}
}

// TestFileOpenFiltered checks that the in-kernel filter drops a read-only
// open of a path that is not sensitive: the same process then opens a
// sensitive file, and that open must arrive without the first.
func TestFileOpenFiltered(t *testing.T) {
	c := watch(t)
	pid := start(t, exec.Command("/bin/sh", "-c", "read x < /etc/passwd; read y < /etc/shadow; true", marker(t)))
	var opened []string
	await(t, c, "file_open /etc/shadow", func(ev event.Event) bool {
		if ev.Type != event.FileOpen || ev.Process.PID != pid {
			return false
		}
		opened = append(opened, ev.File.Path)
		return ev.File.Path == "/etc/shadow"
	})
	if slices.Contains(opened, "/etc/passwd") {
		t.Errorf("read-only open of /etc/passwd was reported: %q", opened)
	}
}

func TestNet(t *testing.T) {
	c := watch(t)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := unmap(ln.Addr().(*net.TCPAddr).AddrPort())
	me := int32(os.Getpid())

	await(t, c, "net_bind", func(ev event.Event) bool {
		// bind records the requested address: port 0, the kernel picks one.
		return ev.Type == event.NetBind && ev.Process.PID == me && ev.Net.Src == netip.AddrPortFrom(addr.Addr(), 0) && ev.Ret == 0
	})
	ev := await(t, c, "net_listen", func(ev event.Event) bool {
		return ev.Type == event.NetListen && ev.Process.PID == me && ev.Ret == 0
	})
	if ev.Net.Backlog <= 0 {
		t.Errorf("backlog = %d, want > 0", ev.Net.Backlog)
	}

	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	conn, err := net.Dial("tcp4", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if a, ok := <-accepted; ok {
		defer a.Close()
	}
	local := unmap(conn.LocalAddr().(*net.TCPAddr).AddrPort())

	ev = await(t, c, "net_connect", func(ev event.Event) bool {
		return ev.Type == event.NetConnect && ev.Process.PID == me && ev.Net.Dst == addr
	})
	if ev.Net.Family != "inet" {
		t.Errorf("family = %q, want inet", ev.Net.Family)
	}
	await(t, c, "net_accept", func(ev event.Event) bool {
		return ev.Type == event.NetAccept && ev.Process.PID == me && ev.Ret >= 0 && ev.Net.Src == local
	})
}

func TestUnixConnect(t *testing.T) {
	c := watch(t)
	path := filepath.Join(t.TempDir(), "sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	await(t, c, "net_connect unix", func(ev event.Event) bool {
		return ev.Type == event.NetConnect && ev.Process.PID == int32(os.Getpid()) &&
			ev.Net.Family == "unix" && ev.Net.UnixPath == path && ev.Ret == 0
	})
}

func TestSyscalls(t *testing.T) {
	c := watch(t)
	me := int32(os.Getpid())
	dir := t.TempDir()

	t.Run("unshare", func(t *testing.T) {
		vigiltest.RequireCommand(t, "unshare")
		pid := start(t, exec.Command("unshare", "-U", "true"))
		ev := await(t, c, "unshare", func(ev event.Event) bool {
			return ev.Type == event.Unshare && ev.Process.PID == pid
		})
		if ev.Detail.Request&unix.CLONE_NEWUSER == 0 {
			t.Errorf("flags = %#x, want CLONE_NEWUSER", ev.Detail.Request)
		}
	})
	t.Run("memfd_create", func(t *testing.T) {
		name := marker(t)
		fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		ev := await(t, c, "memfd_create", func(ev event.Event) bool {
			return ev.Type == event.MemfdCreate && ev.Process.PID == me && ev.Detail.Name == name
		})
		if ev.Detail.Request != unix.MFD_CLOEXEC || ev.Ret < 0 {
			t.Errorf("flags = %#x, ret = %d; want MFD_CLOEXEC and a descriptor", ev.Detail.Request, ev.Ret)
		}
	})
	t.Run("setuid", func(t *testing.T) {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), "VIGIL_SENSOR_HELPER=setuid")
		pid := start(t, cmd)
		ev := await(t, c, "priv_setuid", func(ev event.Event) bool {
			return ev.Type == event.PrivSetuid && ev.Process.PID == pid
		})
		if diff := cmp.Diff(&event.Detail{IDs: []uint32{0}}, ev.Detail); diff != "" || ev.Ret != 0 {
			t.Errorf("ret = %d, detail (-want +got):\n%s", ev.Ret, diff)
		}
	})
	t.Run("ptrace", func(t *testing.T) {
		cmd := exec.Command("sleep", "60")
		target := start(t, cmd)
		defer cmd.Process.Kill()
		runtime.LockOSThread()
		err := unix.PtraceAttach(int(target))
		runtime.UnlockOSThread()
		if err != nil {
			t.Fatal(err)
		}
		ev := await(t, c, "ptrace", func(ev event.Event) bool {
			return ev.Type == event.Ptrace && ev.Process.PID == me && ev.Target.PID == target
		})
		if ev.Detail.Request != unix.PTRACE_ATTACH || ev.Ret != 0 {
			t.Errorf("request = %d, ret = %d; want PTRACE_ATTACH and 0", ev.Detail.Request, ev.Ret)
		}
	})
	t.Run("mount", func(t *testing.T) {
		vigiltest.RequireCommand(t, "unshare")
		vigiltest.RequireCommand(t, "mount")
		source, target := marker(t), t.TempDir()
		// A private mount namespace: the tmpfs goes when the command exits.
		pid := start(t, exec.Command("unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", source, target))
		ev := await(t, c, "mount", func(ev event.Event) bool {
			return ev.Type == event.Mount && ev.Process.PID == pid && ev.Detail.Name == source
		})
		if ev.Detail.Target != target || ev.Ret != 0 {
			t.Errorf("target = %q, ret = %d; want %q and 0", ev.Detail.Target, ev.Ret, target)
		}
	})
	t.Run("file", func(t *testing.T) {
		a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		if err := os.WriteFile(a, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(a, 0o640); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(a, b); err != nil {
			t.Fatal(err)
		}
		if err := os.Remove(b); err != nil {
			t.Fatal(err)
		}
		ev := await(t, c, "file_chmod", func(ev event.Event) bool {
			return ev.Type == event.FileChmod && ev.Process.PID == me && ev.File.Path == a
		})
		if ev.File.Mode != 0o640 {
			t.Errorf("mode = %#o, want 0640", ev.File.Mode)
		}
		await(t, c, "file_rename", func(ev event.Event) bool {
			return ev.Type == event.FileRename && ev.Process.PID == me && ev.File.Path == a && ev.File.NewPath == b
		})
		await(t, c, "file_unlink", func(ev event.Event) bool {
			return ev.Type == event.FileUnlink && ev.Process.PID == me && ev.File.Path == b && ev.Ret == 0
		})
	})
}

func TestStatsAndStatus(t *testing.T) {
	watch(t)
	for _, st := range shared.s.Status() {
		t.Logf("%-14s attached=%v %s%s", st.Name, st.Attached, st.Error, st.Fallback)
		if slices.Contains([]string{"exec", "fork", "exit", "openat", "connect"}, st.Name) && !st.Attached {
			t.Errorf("%s is not attached: %s", st.Name, st.Error)
		}
	}
	st := shared.s.Stats()
	if st.DecodeErrors != 0 {
		t.Errorf("decode errors = %d, want 0", st.DecodeErrors)
	}
	t.Logf("stats: %+v", st)
}

func TestOpenOptions(t *testing.T) {
	vigiltest.RequireRoot(t)
	o := DefaultOptions()
	o.RingBufferSize = 3 << 20
	if s, err := Open(o); err == nil {
		s.Close()
		t.Error("Open with a ring buffer of 3 MiB succeeded, want an error")
	}
	o = DefaultOptions()
	o.SensitivePrefixes = []string{string(make([]byte, 65))}
	if s, err := Open(o); err == nil {
		s.Close()
		t.Error("Open with a 65-byte prefix succeeded, want an error")
	}
}

func unmap(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// TestDrops fills a one-page ring buffer nobody reads and checks that the
// lost records are counted.
func TestDrops(t *testing.T) {
	vigiltest.RequireRoot(t)
	o := DefaultOptions()
	o.RingBufferSize = os.Getpagesize()
	o.Disable = []string{"openat", "openat2", "connect", "bind", "listen", "accept4", "bpf", "mount"}
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(waitFor)
	for s.Stats().Drops == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no drops counted within %v", waitFor)
		}
		if err := exec.Command("true").Run(); err != nil {
			t.Fatal(err)
		}
	}
	for _, st := range s.Status() {
		if slices.Contains(o.Disable, st.Name) && (st.Attached || st.Error != "disabled") {
			t.Errorf("%s: attached=%v error=%q, want disabled", st.Name, st.Attached, st.Error)
		}
	}
}

// TestFallbackPolicy checks that the raw-syscall fallback of "module" is
// attached only as Options.Fallbacks allows: always, never, or (auto)
// only on a kernel that can load modules.
func TestFallbackPolicy(t *testing.T) {
	vigiltest.RequireRoot(t)
	_, err := os.Stat("/proc/modules")
	modules := err == nil
	for _, c := range []struct {
		name string
		f    Fallbacks
		want bool
	}{{"always", FallbackAlways, true}, {"never", FallbackNever, false}, {"auto", FallbackAuto, modules}} {
		o := DefaultOptions()
		o.Fallbacks = c.f
		s, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range s.Status() {
			if st.Name != "module" {
				continue
			}
			native := st.Attached && st.Fallback == ""
			if native {
				t.Logf("%s: module tracepoints exist on this kernel; the fallback is not needed", c.name)
				continue
			}
			if got := st.Attached; got != c.want {
				t.Errorf("%s: module attached=%v (fallback %q, error %q), want %v", c.name, got, st.Fallback, st.Error, c.want)
			}
		}
		s.Close()
	}
}
