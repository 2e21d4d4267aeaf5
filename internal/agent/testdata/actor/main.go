// Command actor performs, on request, the actions the agent's tests expect
// to see: a listen and a connect on 127.0.0.1, a ptrace attach to a child,
// an exec of a memfd, a packet socket. The tests build it statically and
// bind-mount it into containers built from a minimal image that has no
// tools for these. Each subcommand prints what it did on one line, and
// exits non-zero with the reason when the action fails.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fail(fmt.Errorf("usage: actor listen-connect PORT | ptrace | memfd | packet | noop"))
	}
	var err error
	switch os.Args[1] {
	case "listen-connect":
		err = listenConnect(os.Args[2:])
	case "ptrace":
		err = ptraceChild()
	case "memfd":
		err = memfdExec()
	case "packet":
		err = packetSocket()
	case "noop":
		fmt.Println("noop", os.Getpid())
	default:
		err = fmt.Errorf("unknown action %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "actor:", err)
	os.Exit(1)
}

// listenConnect listens on 127.0.0.1:PORT, connects to it and exchanges
// one byte.
func listenConnect(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("listen-connect needs a port")
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("port %q: %w", args[0], err)
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

// ptraceChild starts a child that waits on its stdin, attaches to it with
// PTRACE_ATTACH, waits for it to stop, detaches and ends it.
func ptraceChild() error {
	child := exec.Command("/bin/cat") // blocks reading the pipe until it is closed
	stdin, err := child.StdinPipe()
	if err != nil {
		return err
	}
	if err := child.Start(); err != nil {
		return err
	}
	// Detached, it stays stopped: end it.
	defer func() { stdin.Close(); child.Process.Kill(); child.Wait() }()
	pid := child.Process.Pid
	// ptrace requests must come from the thread that attached.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
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
