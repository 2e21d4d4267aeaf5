package sensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// The record layout written by bpf/sensor.c (struct hdr, exec_rec,
// fork_rec, exit_rec, sys_rec). All integers are little-endian.
const (
	hdrSize = 88

	execSize    = hdrSize + 16 + pathLen + argsLen
	forkSize    = hdrSize + 8
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
)

// errShort is returned for a record shorter than its kind's layout.
var errShort = errors.New("short record")

var le = binary.LittleEndian

// decoder turns ring-buffer records into events. bootTime is the wall-clock
// time of CLOCK_BOOTTIME zero, to convert bpf_ktime_get_boot_ns.
type decoder struct {
	bootTime time.Time
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
	need := sysSize
	switch kind {
	case event.ProcessExec:
		need = execSize
	case event.ProcessFork, event.ProcessExit:
		need = forkSize
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
	case event.ProcessFork:
		// The header is the parent's; the record names the child.
		parent := ev.Process
		ev.Parent = &parent
		ev.Process.PPID = parent.PID
		ev.Process.PID = int32(le.Uint32(b[hdrSize:]))
		ev.Process.TID = int32(le.Uint32(b[hdrSize+4:]))
	case event.ProcessExit:
		status := le.Uint32(b[hdrSize:])
		ev.Exit = &event.Exit{Code: int(status>>8) & 0xff, Signal: int(status & 0x7f)}
	default:
		decodeSys(&ev, b)
	}
	return ev, nil
}

func decodeExec(ev *event.Event, b []byte) {
	ev.Process.ExeInode = le.Uint64(b[hdrSize:])
	ev.Process.Exe = cstring(b[hdrSize+16 : hdrSize+16+pathLen])
	n := int(le.Uint32(b[hdrSize+12:]))
	n = min(n, argsLen)
	args := b[hdrSize+16+pathLen : hdrSize+16+pathLen+n]
	args = bytes.TrimRight(args, "\x00")
	if len(args) == 0 {
		return
	}
	for a := range bytes.SplitSeq(args, []byte{0}) {
		if len(ev.Process.Args) == maxArgs {
			break
		}
		ev.Process.Args = append(ev.Process.Args, string(a))
	}
	ev.Process.CmdLine = string(bytes.ReplaceAll(args, []byte{0}, []byte{' '}))
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
	case event.FileChmod:
		ev.File = &event.File{Path: str1, Mode: uint32(arg[0])}
	case event.NetConnect:
		ev.Net = sockaddr(addr, false)
	case event.NetBind:
		ev.Net = sockaddr(addr, true)
	case event.NetAccept:
		// The peer is the source of an accepted connection.
		ev.Net = sockaddr(addr, true)
		if ev.Net.Family == "" {
			ev.Net = &event.Net{}
		}
	case event.NetListen:
		ev.Net = &event.Net{Backlog: int(int32(arg[1]))}
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
		ev.Detail = &event.Detail{Name: str1}
	case event.Unshare, event.Setns, event.BPF:
		ev.Detail = &event.Detail{Request: arg[0]}
	case event.Mount:
		ev.Detail = &event.Detail{Name: str1, Target: str2, Request: arg[0]}
	}
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
