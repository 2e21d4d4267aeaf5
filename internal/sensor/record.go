package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// The record layout written by bpf/sensor.c (struct hdr, exec_rec,
// fork_rec, exit_rec, sys_rec). All integers are little-endian.
const (
	hdrSize = 88

	execSize    = execArgsOff + argsLen
	forkSize    = hdrSize + 24
	exitSize    = hdrSize + 8
	sysSize     = hdrSize + 8 + 32 + 8 + addrLen + 2*pathLen
	pathLen     = 256
	argsLen     = 1024
	addrLen     = 112
	maxArgs     = 16
	commLen     = 16
	sysArgsOff  = hdrSize + 8
	sysNargsOff = sysArgsOff + 32 + 4
	sysAddrOff  = sysArgsOff + 32 + 8
	sysStr1Off  = sysAddrOff + addrLen
	sysStr2Off  = sysStr1Off + pathLen

	// exec_rec
	execInoOff      = hdrSize
	execCapOff      = hdrSize + 8
	execStartOff    = hdrSize + 16
	execCapPrmOff   = hdrSize + 24
	execFnLenOff    = hdrSize + 32
	execArgsLenOff  = hdrSize + 36
	execTTYNrOff    = hdrSize + 40
	execSIDOff      = hdrSize + 44
	execPGIDOff     = hdrSize + 48
	execFlagsOff    = hdrSize + 52
	execVPIDOff     = hdrSize + 56
	execTTYOff      = hdrSize + 64
	execCgroupOff   = execTTYOff + ttyLen
	execFilenameOff = execCgroupOff + cgroupLen
	execArgsOff     = execFilenameOff + pathLen
	ttyLen          = 32
	cgroupLen       = 128

	// exec_rec flags
	exeMemfd   = 1
	exeUpper   = 2
	exeBlocked = 4

	// fork_rec
	forkVPIDOff = hdrSize + 16

	// dup_sock, in sys_rec.addr
	dupSize = 48
	// local_ep, in sys_rec.str1 of connect and accept
	localEPSize = 24
)

// errShort is returned for a record shorter than its kind's layout.
var errShort = errors.New("short record")

var le = binary.LittleEndian

// decoder turns ring-buffer records into events. bootTime is the wall-clock
// time of CLOCK_BOOTTIME zero, to convert bpf_ktime_get_boot_ns; btime is
// /proc/stat's boot time (whole seconds), which process start times are
// counted from, as /proc does, so that they match /proc/PID/stat's.
type decoder struct {
	bootTime time.Time
	btime    time.Time
}

// startTime converts a task's start_boottime the way /proc/PID/stat's
// starttime does: whole clock ticks (USER_HZ, 100) after btime. It is zero
// when btime is unknown.
func (d decoder) startTime(ns uint64) time.Time {
	if d.btime.IsZero() || ns == 0 {
		return time.Time{}
	}
	const tick = uint64(time.Second / 100)
	return d.btime.Add(time.Duration(ns / tick * tick))
}

// decode parses one record. It never panics on malformed input.
func (d decoder) decode(b []byte) (event.Event, error) {
	if len(b) < hdrSize {
		return event.Event{}, fmt.Errorf("%w: %d bytes, header needs %d", errShort, len(b), hdrSize)
	}
	kind := event.Kind(le.Uint16(b[0:]))
	ev := event.Event{
		Time: d.bootTime.Add(time.Duration(le.Uint64(b[8:]))),
		Type: kind,
		Process: event.Process{
			PID:      int32(le.Uint32(b[16:])),
			TID:      int32(le.Uint32(b[20:])),
			PPID:     int32(le.Uint32(b[24:])),
			UID:      le.Uint32(b[28:]),
			GID:      le.Uint32(b[32:]),
			EUID:     le.Uint32(b[36:]),
			EGID:     le.Uint32(b[40:]),
			LoginUID: le.Uint32(b[44:]),
			CgroupID: le.Uint64(b[48:]),
			MntNS:    le.Uint32(b[56:]),
			PidNS:    le.Uint32(b[60:]),
			NetNS:    le.Uint32(b[64:]),
			Name:     cstring(b[72 : 72+commLen]),
		},
	}
	ev.Syscall = syscallNames[le.Uint16(b[2:])]
	need := sysSize
	switch kind {
	case event.ProcessExec:
		need = execSize
	case event.ProcessFork:
		need = forkSize
	case event.ProcessExit:
		need = exitSize
	case event.KindUnknown:
		return ev, fmt.Errorf("record kind %d", kind)
	}
	if kind >= event.Kind(len(event.Kinds())+1) {
		return ev, fmt.Errorf("record kind %d", kind)
	}
	if len(b) < need {
		return ev, fmt.Errorf("%w: %s record of %d bytes, want %d", errShort, kind, len(b), need)
	}
	switch kind {
	case event.ProcessExec:
		decodeExec(&ev, b)
		ev.Process.StartTime = d.startTime(le.Uint64(b[execStartOff:]))
	case event.ProcessFork:
		// The header is the parent's; the record names the child.
		parent := ev.Process
		ev.Parent = &parent
		ev.Process.PPID = parent.PID
		ev.Process.PID = int32(le.Uint32(b[hdrSize:]))
		ev.Process.TID = int32(le.Uint32(b[hdrSize+4:]))
		ev.Process.StartTime = d.startTime(le.Uint64(b[hdrSize+8:]))
		ev.Process.VPID = int32(le.Uint32(b[forkVPIDOff:]))
	case event.ProcessExit:
		status := le.Uint32(b[hdrSize:])
		ev.Exit = &event.Exit{Code: int(status>>8) & 0xff, Signal: int(status & 0x7f)}
	default:
		decodeSys(&ev, b)
	}
	return ev, nil
}

func decodeExec(ev *event.Event, b []byte) {
	p := &ev.Process
	p.ExeInode = le.Uint64(b[execInoOff:])
	p.CapEff = le.Uint64(b[execCapOff:])
	p.CapPrm = le.Uint64(b[execCapPrmOff:])
	p.VPID = int32(le.Uint32(b[execVPIDOff:]))
	p.TTYNr = le.Uint32(b[execTTYNrOff:])
	p.SID = int32(le.Uint32(b[execSIDOff:]))
	p.PGID = int32(le.Uint32(b[execPGIDOff:]))
	flags := le.Uint32(b[execFlagsOff:])
	p.ExeMemfd = flags&exeMemfd != 0
	p.ExeUpper = flags&exeUpper != 0
	ev.Blocked = flags&exeBlocked != 0
	p.TTY = ttyName(cstring(b[execTTYOff : execTTYOff+ttyLen]))
	p.CgroupName = cstring(b[execCgroupOff : execCgroupOff+cgroupLen])
	p.Exe = cstring(b[execFilenameOff : execFilenameOff+pathLen])
	n := int(le.Uint32(b[execArgsLenOff:]))
	n = min(n, argsLen)
	args := b[execArgsOff : execArgsOff+n]
	args = bytes.TrimRight(args, "\x00")
	if len(args) == 0 {
		return
	}
	for a := range bytes.SplitSeq(args, []byte{0}) {
		if len(p.Args) == maxArgs {
			break
		}
		p.Args = append(p.Args, string(a))
	}
	p.CmdLine = string(bytes.ReplaceAll(args, []byte{0}, []byte{' '}))
}

// ttyName turns the kernel's tty name into the /dev path below /dev that
// ps shows: the kernel names pseudo-terminal slaves "pts3", their device
// is /dev/pts/3.
func ttyName(k string) string {
	if n, ok := strings.CutPrefix(k, "pts"); ok && n != "" && strings.Trim(n, "0123456789") == "" {
		return "pts/" + n
	}
	return k
}

func decodeSys(ev *event.Event, b []byte) {
	ev.Ret = int64(le.Uint64(b[hdrSize:]))
	var arg [4]uint64
	for i := range arg {
		arg[i] = le.Uint64(b[sysArgsOff+8*i:])
	}
	nargs := min(int(le.Uint32(b[sysNargsOff:])), 3)
	alen := min(int(le.Uint32(b[sysNargsOff-4:])), addrLen)
	addr := b[sysAddrOff : sysAddrOff+alen]
	str1 := cstring(b[sysStr1Off : sysStr1Off+pathLen])
	str2 := cstring(b[sysStr2Off : sysStr2Off+pathLen])

	switch ev.Type {
	case event.FileOpen:
		ev.File = &event.File{Path: str1, Flags: uint32(arg[0]), Mode: uint32(arg[1])}
	case event.FileUnlink:
		ev.File = &event.File{Path: str1}
	case event.FileRename:
		ev.File = &event.File{Path: str1, NewPath: str2}
	case event.FileLink, event.FileSymlink:
		ev.File = &event.File{Path: str1, NewPath: str2}
	case event.FileChmod:
		ev.File = &event.File{Path: str1, Mode: uint32(arg[0])}
	case event.FileMkdir:
		ev.File = &event.File{Path: str1, Mode: uint32(arg[0])}
	case event.FileChown:
		ev.File = &event.File{Path: str1, UID: uint32(arg[0]), GID: uint32(arg[1])}
	case event.NetSocket:
		ev.Net = &event.Net{Family: familyName(arg[0]), Type: sockType(arg[1]), Protocol: int(int32(arg[2]))}
	case event.FDDup:
		ev.Detail = &event.Detail{Request: arg[0]}
		ev.Net = dupSock(addr)
	case event.PrivCapset:
		ev.Detail = &event.Detail{CapEffective: arg[0], CapPermitted: arg[1], CapInheritable: arg[2]}
		if pid := int32(arg[3]); pid != 0 {
			ev.Target = &event.Process{PID: pid}
		}
	case event.Umount:
		ev.Detail = &event.Detail{Target: str1, Request: arg[0]}
	case event.NetConnect:
		ev.Net = sockaddr(addr, false)
		sockInfo(ev.Net, arg[3])
		if ev.Net.Family == "inet" || ev.Net.Family == "inet6" {
			ev.Net.Src = localEndpoint(b[sysStr1Off:])
		}
	case event.NetBind:
		ev.Net = sockaddr(addr, true)
		sockInfo(ev.Net, arg[3])
	case event.NetAccept:
		// The peer is the source of an accepted connection.
		ev.Net = sockaddr(addr, true)
		if ev.Net.Family == "" {
			ev.Net = &event.Net{}
		}
		sockInfo(ev.Net, arg[3])
		if ev.Net.Family == "inet" || ev.Net.Family == "inet6" {
			ev.Net.Dst = localEndpoint(b[sysStr1Off:])
		}
	case event.NetListen:
		ev.Net = &event.Net{Backlog: int(int32(arg[1]))}
		sockInfo(ev.Net, arg[3])
	case event.PrivSetuid, event.PrivSetgid:
		ids := make([]uint32, nargs)
		for i := range ids {
			ids[i] = uint32(arg[i])
		}
		ev.Detail = &event.Detail{IDs: ids}
	case event.Ptrace:
		ev.Detail = &event.Detail{Request: arg[0]}
		ev.Target = &event.Process{PID: int32(arg[1])}
	case event.MemfdCreate:
		ev.Detail = &event.Detail{Name: str1, Request: arg[0]}
	case event.ModuleLoad:
		ev.Detail = &event.Detail{Name: str1, Request: arg[0]}
	case event.Unshare, event.Setns, event.BPF:
		ev.Detail = &event.Detail{Request: arg[0]}
	case event.Mount:
		ev.Detail = &event.Detail{Name: str1, Target: str2, Request: arg[0], FSType: cstring(addr)}
	}
}

// localEndpoint decodes struct local_ep (in sys_rec.str1 of connect and
// accept records): the process's own end of the connection. It is the
// zero AddrPort when the sensor could not read it.
func localEndpoint(b []byte) netip.AddrPort {
	if len(b) < localEPSize {
		return netip.AddrPort{}
	}
	port := binary.BigEndian.Uint16(b[2:])
	switch le.Uint16(b) {
	case 2:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[8:12])), port)
	case 10:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), port)
	}
	return netip.AddrPort{}
}

// sockInfo fills n's type and protocol, and its family when the address
// did not give one, from the packed socket info sensor.c's sock_info
// writes into connect, accept, bind and listen records (0: the fd was not
// a socket).
func sockInfo(n *event.Net, info uint64) {
	fam := info >> 32 & 0xffff
	if fam == 0 {
		return
	}
	if n.Family == "" {
		n.Family = familyName(fam)
	}
	n.Type = sockType(info & 0xffff)
	n.Protocol = int(info >> 16 & 0xffff)
}

// sockaddr parses a raw struct sockaddr. local puts an inet address in
// Src rather than Dst.
func sockaddr(b []byte, local bool) *event.Net {
	n := &event.Net{}
	if len(b) < 2 {
		return n
	}
	var ap netip.AddrPort
	switch le.Uint16(b) {
	case 1: // AF_UNIX
		n.Family = "unix"
		p := b[2:]
		if len(p) > 0 && p[0] == 0 { // abstract socket
			n.UnixPath = "@" + string(bytes.TrimRight(p[1:], "\x00"))
		} else {
			n.UnixPath = cstring(p)
		}
		return n
	case 2: // AF_INET
		n.Family = "inet"
		if len(b) < 8 {
			return n
		}
		ap = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:]))
	case 10: // AF_INET6
		n.Family = "inet6"
		if len(b) < 24 {
			return n
		}
		ap = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:]))
	default:
		return n
	}
	if local {
		n.Src = ap
	} else {
		n.Dst = ap
	}
	return n
}

// cstring returns b up to its first NUL.
func cstring(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// dupSock decodes struct dup_sock: the duplicated fd's socket. It returns
// nil when b is too short to hold one.
func dupSock(b []byte) *event.Net {
	if len(b) < dupSize {
		return nil
	}
	fam := uint64(le.Uint16(b[0:]))
	n := &event.Net{Family: familyName(fam), Type: sockType(uint64(le.Uint16(b[2:]))), Protocol: int(le.Uint16(b[4:]))}
	sport, dport := binary.BigEndian.Uint16(b[8:]), binary.BigEndian.Uint16(b[10:])
	switch fam {
	case 2:
		n.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[16:20])), sport)
		n.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[32:36])), dport)
	case 10:
		n.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[16:32])).Unmap(), sport)
		n.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[32:48])).Unmap(), dport)
	}
	return n
}

// familyName names an address family (AF_*) the way Net.Family does.
func familyName(f uint64) string {
	switch f {
	case 1:
		return "unix"
	case 2:
		return "inet"
	case 10:
		return "inet6"
	case 16:
		return "netlink"
	case 17:
		return "packet"
	case 3:
		return "ax25"
	case 4:
		return "ipx"
	case 5:
		return "appletalk"
	case 9:
		return "x25"
	case 15:
		return "key"
	case 29:
		return "can"
	case 31:
		return "bluetooth"
	case 38:
		return "alg"
	case 40:
		return "vsock"
	case 44:
		return "xdp"
	}
	return "af_" + strconv.FormatUint(f, 10)
}

// sockType names a socket type; the SOCK_NONBLOCK and SOCK_CLOEXEC bits
// are ignored.
func sockType(t uint64) string {
	switch t & 0xf {
	case 1:
		return "stream"
	case 2:
		return "dgram"
	case 3:
		return "raw"
	case 4:
		return "rdm"
	case 5:
		return "seqpacket"
	case 6:
		return "dccp"
	case 10:
		return "packet"
	}
	return "type_" + strconv.FormatUint(t&0xf, 10)
}

// syscallNames are the x86_64 names of the syscalls the programs trace,
// by number (struct hdr's nr). Numbers not here (0 for fork and exit) give
// an empty event.Syscall.
var syscallNames = map[uint16]string{
	unix.SYS_EXECVE: "execve", unix.SYS_EXECVEAT: "execveat",
	unix.SYS_OPEN: "open", unix.SYS_OPENAT: "openat", unix.SYS_OPENAT2: "openat2", unix.SYS_CREAT: "creat",
	unix.SYS_CONNECT: "connect", unix.SYS_BIND: "bind", unix.SYS_LISTEN: "listen", unix.SYS_ACCEPT4: "accept4",
	unix.SYS_SOCKET: "socket", unix.SYS_DUP: "dup", unix.SYS_DUP2: "dup2", unix.SYS_DUP3: "dup3",
	unix.SYS_UNLINK: "unlink", unix.SYS_UNLINKAT: "unlinkat",
	unix.SYS_RENAME: "rename", unix.SYS_RENAMEAT: "renameat", unix.SYS_RENAMEAT2: "renameat2",
	unix.SYS_LINK: "link", unix.SYS_LINKAT: "linkat", unix.SYS_SYMLINK: "symlink", unix.SYS_SYMLINKAT: "symlinkat",
	unix.SYS_MKDIR: "mkdir", unix.SYS_MKDIRAT: "mkdirat",
	unix.SYS_CHMOD: "chmod", unix.SYS_FCHMODAT: "fchmodat", unix.SYS_FCHMODAT2: "fchmodat2",
	unix.SYS_CHOWN: "chown", unix.SYS_LCHOWN: "lchown", unix.SYS_FCHOWN: "fchown", unix.SYS_FCHOWNAT: "fchownat",
	unix.SYS_SETUID: "setuid", unix.SYS_SETREUID: "setreuid", unix.SYS_SETRESUID: "setresuid",
	unix.SYS_SETGID: "setgid", unix.SYS_SETREGID: "setregid", unix.SYS_SETRESGID: "setresgid",
	unix.SYS_CAPSET: "capset", unix.SYS_PTRACE: "ptrace", unix.SYS_MEMFD_CREATE: "memfd_create",
	unix.SYS_INIT_MODULE: "init_module", unix.SYS_FINIT_MODULE: "finit_module",
	unix.SYS_UNSHARE: "unshare", unix.SYS_SETNS: "setns", unix.SYS_MOUNT: "mount", unix.SYS_UMOUNT2: "umount2",
	unix.SYS_BPF: "bpf",
}
