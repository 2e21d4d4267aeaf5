// Command actor performs, on request, the system calls the agent's
// end-to-end tests expect to see and that shell tools cannot make: a read,
// a packet socket, a ptrace attach, PTRACE_TRACEME, an exec from a memfd,
// finit_module, a TCP socket duplicated onto stdin/stdout/stderr, a listen
// and connect on 127.0.0.1, TCP and unix connects. The tests build it
// statically and bind-mount it into containers of a minimal image that has
// no tools for these, sometimes under another name (ssh) because some rules
// look at the process name. Each action prints one line saying what it did
// and exits non-zero with the reason when the action could not be
// attempted.
package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

const usage = `usage: actor ACTION [ARGS]
  read PATH               open PATH read-only and read it
  packet                  open an AF_PACKET raw socket
  ptrace                  PTRACE_ATTACH to a child, then detach
  traceme                 a child calls PTRACE_TRACEME and exits
  traceme-child           (the child of traceme)
  memfd                   exec this program from a memfd
  finit PATH              finit_module(PATH): an attempt, bound to fail
  revshell                dup2 a connected TCP socket onto fds 0, 1 and 2
  listen-connect PORT     listen on 127.0.0.1:PORT, connect, exchange a byte
  connect-nb IP:PORT      a non-blocking TCP connect (EINPROGRESS is fine)
  connect-unix PATH       connect to a unix stream socket
  noop                    print and exit`

func main() {
	if len(os.Args) < 2 {
		fail(errors.New(usage))
	}
	args := os.Args[2:]
	need := func(n int) {
		if len(args) != n {
			fail(fmt.Errorf("%s needs %d argument(s)\n%s", os.Args[1], n, usage))
		}
	}
	var err error
	switch os.Args[1] {
	case "read":
		need(1)
		err = read(args[0])
	case "packet":
		err = packetSocket()
	case "ptrace":
		err = ptraceAttach()
	case "traceme":
		err = traceme()
	case "traceme-child":
		err = tracemeChild()
	case "memfd":
		err = memfdExec()
	case "finit":
		need(1)
		err = finit(args[0])
	case "revshell":
		err = revshell()
	case "listen-connect":
		need(1)
		err = listenConnect(args[0])
	case "connect-nb":
		need(1)
		err = connectNB(args[0])
	case "connect-unix":
		need(1)
		err = connectUnix(args[0])
	case "noop":
		fmt.Println("noop", os.Getpid())
	default:
		err = fmt.Errorf("unknown action %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "actor:", err)
	os.Exit(1)
}

func read(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(io.Discard, f)
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	fmt.Println("read", path, n)
	return nil
}

// packetSocket opens an AF_PACKET raw socket (needs CAP_NET_RAW).
func packetSocket() error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return fmt.Errorf("socket(AF_PACKET): %w", err)
	}
	unix.Close(fd)
	fmt.Println("packet", fd)
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// ptraceAttach starts a child that blocks reading its stdin, attaches to
// it, waits for it to stop, detaches and ends it. It prints "ptrace PID"
// with the child's PID.
func ptraceAttach() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	child := exec.Command(self, "read", "/dev/stdin")
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	// ptrace requests must come from the thread that attached.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := child.Start(); err != nil {
		return err
	}
	defer func() { stdin.Close(); child.Process.Kill(); child.Wait() }()
	pid := child.Process.Pid
	if err := unix.PtraceAttach(pid); err != nil {
		return fmt.Errorf("PTRACE_ATTACH %d: %w", pid, err)
	}
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
		return fmt.Errorf("waiting for %d to stop: %w", pid, err)
	}
	if err := unix.PtraceDetach(pid); err != nil {
		return fmt.Errorf("PTRACE_DETACH %d: %w", pid, err)
	}
	fmt.Println("ptrace", pid)
	return nil
}

// traceme starts a child that asks to be traced by this process
// (PTRACE_TRACEME, the anti-debugging trick: a debugger can then no longer
// attach) and exits. Any stop of the traced child is continued with its
// signal until it has exited.
func traceme() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The tracer is the thread that forked the child.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	child := exec.Command(self, "traceme-child")
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		return err
	}
	pid := child.Process.Pid
	for {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != nil {
			return fmt.Errorf("waiting for %d: %w", pid, err)
		}
		switch {
		case ws.Exited():
			if ws.ExitStatus() != 0 {
				return fmt.Errorf("traceme child exited with %d", ws.ExitStatus())
			}
			fmt.Println("traceme child", pid, "exited")
			return nil
		case ws.Signaled():
			return fmt.Errorf("traceme child killed by %v", ws.Signal())
		case ws.Stopped():
			sig := ws.StopSignal()
			if sig == unix.SIGTRAP {
				sig = 0
			}
			if err := unix.PtraceCont(pid, int(sig)); err != nil {
				return fmt.Errorf("PTRACE_CONT %d: %w", pid, err)
			}
		}
	}
}

func tracemeChild() error {
	if _, _, e := unix.RawSyscall(unix.SYS_PTRACE, unix.PTRACE_TRACEME, 0, 0); e != 0 {
		return fmt.Errorf("PTRACE_TRACEME: %w", e)
	}
	fmt.Println("traceme", os.Getpid())
	return nil
}

// memfdExec copies this program into a memfd and executes it from there.
func memfdExec() error {
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		return err
	}
	fd, err := unix.MemfdCreate("vigil-actor", 0)
	if err != nil {
		return fmt.Errorf("memfd_create: %w", err)
	}
	if _, err := unix.Write(fd, self); err != nil {
		return fmt.Errorf("writing the memfd: %w", err)
	}
	path := fmt.Sprintf("/proc/self/fd/%d", fd)
	return unix.Exec(path, []string{"actor-memfd", "noop"}, os.Environ())
}

// finit asks the kernel to load path as a module. path is not a module,
// so the kernel refuses it after the capability check (a kernel built
// without module support answers ENOSYS: the call was still made, and that
// is what the rules see); EPERM (no CAP_SYS_MODULE) or a success are
// errors of the test setup.
func finit(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	switch {
	case err == nil:
		return fmt.Errorf("finit_module(%s) loaded something", path)
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("finit_module(%s): %w", path, err)
	}
	fmt.Println("finit_module refused:", err)
	return nil
}

// revshell connects to a listener of its own on 127.0.0.1 and duplicates
// the connection onto stdin, stdout and stderr, as a reverse shell does
// before it execs the shell; then it puts the original streams back.
func revshell() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return err
	}
	var saved [3]int
	for i := range saved {
		if saved[i], err = unix.Dup(i); err != nil {
			return fmt.Errorf("saving fd %d: %w", i, err)
		}
	}
	var derr error
	err = raw.Control(func(fd uintptr) {
		for i := range 3 {
			if err := unix.Dup2(int(fd), i); err != nil {
				derr = fmt.Errorf("dup2(socket, %d): %w", i, err)
				return
			}
		}
	})
	for i, s := range saved {
		if err := unix.Dup2(s, i); err != nil && derr == nil {
			derr = fmt.Errorf("restoring fd %d: %w", i, err)
		}
		unix.Close(s)
	}
	if err != nil {
		return err
	}
	if derr != nil {
		return derr
	}
	fmt.Println("revshell: socket to", ln.Addr(), "was on fds 0, 1, 2")
	return nil
}

// listenConnect listens on 127.0.0.1:PORT, connects to it and exchanges
// one byte.
func listenConnect(p string) error {
	port, err := strconv.Atoi(p)
	if err != nil {
		return fmt.Errorf("port %q: %w", p, err)
	}
	ln, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return err
	}
	defer ln.Close()
	accepted := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			_, err = c.Write([]byte{'x'})
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		return fmt.Errorf("reading from the listener: %w", err)
	}
	if err := <-accepted; err != nil {
		return fmt.Errorf("accepting: %w", err)
	}
	fmt.Println("listen-connect", ln.Addr())
	return nil
}

// connectNB starts a TCP connect without waiting for it: on a network
// with no way out the SYN goes nowhere, but the attempt is made.
func connectNB(s string) error {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return fmt.Errorf("address %q: %w", s, err)
	}
	fam, sa := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	if ap.Addr().Is6() {
		fam, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(fam, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.Connect(fd, sa)
	switch {
	case err == nil, errors.Is(err, unix.EINPROGRESS), errors.Is(err, unix.ECONNREFUSED):
		fmt.Println("connect", s, "started:", err)
		return nil
	}
	return fmt.Errorf("connect %s: %w", s, err)
}

func connectUnix(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	c.Close()
	fmt.Println("connected to", path)
	return nil
}
