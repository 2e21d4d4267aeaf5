package sensor

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestNetSocketTypeProtocol checks that connect, accept, bind and listen
// carry the socket's type and protocol, looked up in the task's fd table
// (a TCP connect on loopback is stream/6, a UDP one dgram/17), and that
// connect and accept carry the process's own end, read from the socket at
// the syscall's exit.
func TestNetSocketTypeProtocol(t *testing.T) {
	c := watch(t)
	me := int32(os.Getpid())

	// Go listens with MPTCP (IPPROTO_MPTCP, 262) by default where the
	// kernel has it; plain TCP here, so that every TCP event says 6.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tcpAddr := unmap(ln.Addr().(*net.TCPAddr).AddrPort())
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, err := ln.Accept()
		if err == nil {
			accepted <- conn
		}
		close(accepted)
	}()
	conn, err := net.Dial("tcp4", tcpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if a, ok := <-accepted; ok {
		defer a.Close()
	}

	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	udpAddr := unmap(udp.LocalAddr().(*net.UDPAddr).AddrPort())
	uconn, err := net.Dial("udp4", udpAddr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer uconn.Close()

	tcpLocal := unmap(conn.LocalAddr().(*net.TCPAddr).AddrPort())
	udpLocal := unmap(uconn.LocalAddr().(*net.UDPAddr).AddrPort())
	tests := []struct {
		what  string
		match func(event.Event) bool
		typ   string
		proto int
		local func(*event.Net) netip.AddrPort // the process's own end, where the event has it
		want  netip.AddrPort
	}{
		{"tcp connect", func(ev event.Event) bool {
			return ev.Type == event.NetConnect && ev.Net.Dst == tcpAddr
		}, "stream", unix.IPPROTO_TCP, func(n *event.Net) netip.AddrPort { return n.Src }, tcpLocal},
		{"tcp listen", func(ev event.Event) bool {
			return ev.Type == event.NetListen && ev.Ret == 0
		}, "stream", unix.IPPROTO_TCP, nil, netip.AddrPort{}},
		{"tcp accept", func(ev event.Event) bool {
			return ev.Type == event.NetAccept && ev.Ret >= 0 && ev.Net.Src == tcpLocal
		}, "stream", unix.IPPROTO_TCP, func(n *event.Net) netip.AddrPort { return n.Dst }, tcpAddr},
		{"udp bind", func(ev event.Event) bool {
			return ev.Type == event.NetBind && ev.Net.Type == "dgram"
		}, "dgram", unix.IPPROTO_UDP, nil, netip.AddrPort{}},
		{"udp connect", func(ev event.Event) bool {
			return ev.Type == event.NetConnect && ev.Net.Dst == udpAddr
		}, "dgram", unix.IPPROTO_UDP, func(n *event.Net) netip.AddrPort { return n.Src }, udpLocal},
	}
	var seen []event.Event
	for _, tt := range tests {
		t.Run(tt.what, func(t *testing.T) {
			match := func(ev event.Event) bool { return ev.Process.PID == me && ev.Net != nil && tt.match(ev) }
			var ev event.Event
			found := false
			for _, s := range seen {
				if match(s) {
					ev, found = s, true
					break
				}
			}
			if !found {
				ev = await(t, c, tt.what, func(ev event.Event) bool {
					seen = append(seen, ev)
					return match(ev)
				})
			}
			if ev.Net.Family != "inet" || ev.Net.Type != tt.typ || ev.Net.Protocol != tt.proto {
				t.Errorf("family %q type %q protocol %d; want inet, %s, %d", ev.Net.Family, ev.Net.Type, ev.Net.Protocol, tt.typ, tt.proto)
			}
			if tt.local != nil && tt.local(ev.Net) != tt.want {
				t.Errorf("local end %v, want %v", tt.local(ev.Net), tt.want)
			}
		})
	}
}

// TestOpenDirectoryTraversal checks that read-only opens whose path climbs
// with "../" or is not written the short way ("/./", "//", "./") arrive,
// as written, even when the path does not start with a sensitive prefix
// (the in-kernel filter sees the raw path).
func TestOpenDirectoryTraversal(t *testing.T) {
	c := watch(t)
	for _, tc := range []struct{ dir, path string }{
		{"/tmp", "../../etc/shadow"}, {"/tmp", "/tmp/../etc/shadow"}, {"/tmp", "/tmp/../etc/passwd"},
		{"/", "/etc//shadow"}, {"/", "/etc/./shadow"}, {"/etc", "./shadow"},
	} {
		path := tc.path
		t.Run(tc.dir+":"+path, func(t *testing.T) {
			cmd := exec.Command("cat", path)
			cmd.Dir = tc.dir
			pid := start(t, cmd)
			ev := await(t, c, "file_open "+path, func(ev event.Event) bool {
				return ev.Type == event.FileOpen && ev.Process.PID == pid && ev.File.Path == path
			})
			if ev.File.Flags&unix.O_ACCMODE != unix.O_RDONLY || ev.Ret < 0 {
				t.Errorf("flags %#o ret %d; want a read-only open that succeeded", ev.File.Flags, ev.Ret)
			}
		})
	}
}

// TestOpenDotsFiltered: a canonical path with dots in its names
// ("/etc/ld.so.conf", "/etc/.pwd.lock") is still dropped by the filter.
func TestOpenDotsFiltered(t *testing.T) {
	c := watch(t)
	pid := start(t, exec.Command("/bin/sh", "-c", "read x < /etc/ld.so.conf; read x < /etc/.pwd.lock; read y < /etc/shadow; true", marker(t)))
	var opened []string
	await(t, c, "file_open /etc/shadow", func(ev event.Event) bool {
		if ev.Type != event.FileOpen || ev.Process.PID != pid {
			return false
		}
		opened = append(opened, ev.File.Path)
		return ev.File.Path == "/etc/shadow"
	})
	if len(opened) != 1 {
		t.Errorf("read-only opens reported: %q, want /etc/shadow alone", opened)
	}
}

// TestMountFSType checks that mount's file system type argument arrives.
func TestMountFSType(t *testing.T) {
	c := watch(t)
	target := t.TempDir()
	pid := start(t, exec.Command("unshare", "--mount", "/bin/sh", "-c",
		`mount -t tmpfs vigil-src "$1" && umount "$1"`, "sh", target))
	ev := await(t, c, "mount", func(ev event.Event) bool {
		return ev.Type == event.Mount && ev.Detail.Target == target && (ev.Process.PPID == pid || ev.Process.PID == pid)
	})
	if ev.Detail.FSType != "tmpfs" || ev.Detail.Name != "vigil-src" || ev.Ret != 0 {
		t.Errorf("fstype %q source %q ret %d; want tmpfs, vigil-src, 0", ev.Detail.FSType, ev.Detail.Name, ev.Ret)
	}
}

// TestExecVPIDAndCapPrm checks the pid an exec has in its own pid namespace
// (1 for the first process of a new one, its host pid on the host) and
// the permitted capabilities (the test's for a root exec, none after
// setpriv drops to nobody).
func TestExecVPIDAndCapPrm(t *testing.T) {
	c := watch(t)
	t.Run("host", func(t *testing.T) {
		pid := start(t, exec.Command("/bin/true", marker(t)))
		ev := await(t, c, "process_exec", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.PID == pid
		})
		if ev.Process.VPID != pid {
			t.Errorf("vpid = %d, want the host pid %d", ev.Process.VPID, pid)
		}
		if want := statusHex(t, "self", "CapPrm"); ev.Process.CapPrm != want || want&(1<<unix.CAP_SYS_ADMIN) == 0 {
			t.Errorf("cap_permitted = %#x, want %#x with CAP_SYS_ADMIN", ev.Process.CapPrm, want)
		}
	})
	t.Run("new pid namespace", func(t *testing.T) {
		m := marker(t)
		pid := start(t, exec.Command("unshare", "--pid", "--fork", "/bin/sh", "-c", "exec /bin/true \"$0\"", m))
		fork := await(t, c, "process_fork of unshare", func(ev event.Event) bool {
			return ev.Type == event.ProcessFork && ev.Process.PPID == pid
		})
		if fork.Process.VPID != 1 || fork.Process.PID == 1 {
			t.Errorf("fork: pid %d vpid %d; want vpid 1 in the new namespace", fork.Process.PID, fork.Process.VPID)
		}
		ev := await(t, c, "process_exec in the new namespace", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.PID == fork.Process.PID && strings.Contains(ev.Process.CmdLine, m)
		})
		if ev.Process.VPID != 1 {
			t.Errorf("exec: pid %d vpid %d; want vpid 1", ev.Process.PID, ev.Process.VPID)
		}
	})
	t.Run("setpriv nobody", func(t *testing.T) {
		m := marker(t)
		start(t, exec.Command("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "/bin/true", m))
		ev := await(t, c, "process_exec as nobody", func(ev event.Event) bool {
			return ev.Type == event.ProcessExec && ev.Process.Exe == "/bin/true" && strings.Contains(ev.Process.CmdLine, m)
		})
		if ev.Process.CapPrm != 0 || ev.Process.EUID != 65534 {
			t.Errorf("euid %d cap_permitted %#x; want 65534 and none", ev.Process.EUID, ev.Process.CapPrm)
		}
	})
}

// statusHex reads a hexadecimal field of /proc/PID/status.
func statusHex(t *testing.T, pid, field string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%s/status", field, pid)
	return 0
}

// TestDecodeMore checks the decoding of the socket info of connect,
// accept, bind and listen, mount's file system type, and the exec and
// fork records' vpid and permitted capabilities.
func TestDecodeMore(t *testing.T) {
	boot := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	d := decoder{bootTime: boot}
	proc := event.Process{PID: 100, TID: 101, PPID: 1, Name: "sh", UID: 1000, LoginUID: 1000, CgroupID: 42, MntNS: 4026531832}
	const tcp4 = 1 | 6<<16 | 2<<32   // stream, IPPROTO_TCP, AF_INET
	const udp6 = 2 | 17<<16 | 10<<32 // dgram, IPPROTO_UDP, AF_INET6
	tests := []struct {
		name string
		in   rec
		want event.Event
	}{
		{"connect tcp", connectRec().u64(sysArgsOff+24, tcp4), event.Event{Type: event.NetConnect, Process: proc, Ret: -111,
			Net: &event.Net{Family: "inet", Type: "stream", Protocol: 6, Dst: netip.MustParseAddrPort("10.0.0.1:8080")}}},
		{"connect with local end", connectRec().u64(sysArgsOff+24, tcp4).u64(hdrSize, 0).str(sysStr1Off, "\x02\x00\xc3\x50\x00\x00\x00\x00\x0a\x00\x00\x02"),
			event.Event{Type: event.NetConnect, Process: proc, Net: &event.Net{Family: "inet", Type: "stream", Protocol: 6,
				Src: netip.MustParseAddrPort("10.0.0.2:50000"), Dst: netip.MustParseAddrPort("10.0.0.1:8080")}}},
		{"accept with local end", newRec(event.NetAccept, sysSize).u64(hdrSize, 4).u64(sysArgsOff+24, udp6).str(sysStr1Off, "\x0a\x00\x00\x35\x00\x00\x00\x00"+strings.Repeat("\x00", 15)+"\x01"),
			event.Event{Type: event.NetAccept, Process: proc, Ret: 4, Net: &event.Net{Family: "inet6", Type: "dgram", Protocol: 17,
				Dst: netip.MustParseAddrPort("[::1]:53")}}},
		{"connect not a socket", connectRec().u64(sysArgsOff+24, 0), event.Event{Type: event.NetConnect, Process: proc, Ret: -111,
			Net: &event.Net{Family: "inet", Dst: netip.MustParseAddrPort("10.0.0.1:8080")}}},
		{"listen", newRec(event.NetListen, sysSize).u64(sysArgsOff+8, 128).u64(sysArgsOff+24, udp6),
			event.Event{Type: event.NetListen, Process: proc, Net: &event.Net{Family: "inet6", Type: "dgram", Protocol: 17, Backlog: 128}}},
		{"accept without peer", newRec(event.NetAccept, sysSize).u64(hdrSize, 4).u64(sysArgsOff+24, tcp4),
			event.Event{Type: event.NetAccept, Process: proc, Ret: 4, Net: &event.Net{Family: "inet", Type: "stream", Protocol: 6}}},
		{"mount", newRec(event.Mount, sysSize).str(sysStr1Off, "proc").str(sysStr2Off, "/mnt").u32(sysNargsOff-4, 5).str(sysAddrOff, "proc"),
			event.Event{Type: event.Mount, Process: proc, Detail: &event.Detail{Name: "proc", Target: "/mnt", FSType: "proc"}}},
		{"mount fstype unterminated", newRec(event.Mount, sysSize).u32(sysNargsOff-4, 3).str(sysAddrOff, "ext4"),
			event.Event{Type: event.Mount, Process: proc, Detail: &event.Detail{FSType: "ext"}}},
		{"exec", execRec().u32(execVPIDOff, 1).u64(execCapPrmOff, 0x3f), event.Event{Type: event.ProcessExec, Process: func() event.Process {
			p := proc
			p.Exe, p.ExeInode, p.Args, p.CmdLine = "/bin/sh", 77, []string{"/bin/sh", "-c", "echo hi"}, "/bin/sh -c echo hi"
			p.VPID, p.CapPrm = 1, 0x3f
			return p
		}()}},
		{"fork", newRec(event.ProcessFork, forkSize).u32(hdrSize, 200).u32(hdrSize+4, 200).u32(forkVPIDOff, 7), event.Event{Type: event.ProcessFork,
			Process: event.Process{PID: 200, TID: 200, PPID: 100, VPID: 7, Name: "sh", UID: 1000, LoginUID: 1000, CgroupID: 42, MntNS: 4026531832},
			Parent:  &proc}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.want.Time = boot.Add(time.Second)
			got, err := d.decode(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateComparable(netip.AddrPort{})); diff != "" {
				t.Errorf("decode (-want +got):\n%s", diff)
			}
		})
	}
}

// BenchmarkSensorPaths measures what the sensor adds to the calls its
// newer code paths run on: a read-only open the kernel filter drops (the
// prefix lookup and the "../" scan), one it keeps because the path climbs,
// and a UDP connect (fd table lookups for the socket's type and its local
// end), each without and with the sensor attached. Nothing reads the ring
// buffer: kept records are dropped when it is full, as they would be
// under an overloaded agent, so "kept" is the in-kernel cost only.
func BenchmarkSensorPaths(b *testing.B) {
	vigiltest.RequireRoot(b)
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer udp.Close()
	dst := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	sa := &unix.SockaddrInet4{Port: int(dst.Port()), Addr: dst.Addr().As4()}
	open := func(path string) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				fd, err := unix.Open(path, unix.O_RDONLY, 0)
				if err != nil {
					b.Fatal(err)
				}
				unix.Close(fd)
			}
		}
	}
	connect := func(b *testing.B) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			b.Fatal(err)
		}
		defer unix.Close(fd)
		for b.Loop() {
			if err := unix.Connect(fd, sa); err != nil {
				b.Fatal(err)
			}
		}
	}
	run := func(b *testing.B, prefix string) {
		b.Run(prefix+"open-filtered", open("/etc/passwd"))
		b.Run(prefix+"open-dotdot-kept", open("/etc/../etc/passwd"))
		b.Run(prefix+"connect-udp", connect)
	}
	run(b, "off/")
	s, err := Open(DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	run(b, "sensor/")
}
