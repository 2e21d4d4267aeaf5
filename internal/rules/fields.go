package rules

import (
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// vtype is a field's value type; it decides how values compare.
type vtype uint8

const (
	tStr  vtype = iota
	tNum        // signed 64-bit, compared numerically
	tBool       // "true"/"false"
	tIP         // an address, compared to addresses
	tNet        // an address, compared to networks (CIDR)
)

// val is one field value; which member is meaningful depends on the type.
type val struct {
	s  string
	n  int64
	ip netip.Addr
}

// argKind says what a field takes in brackets.
type argKind uint8

const (
	argNone     argKind = iota
	argIndexOpt         // proc.aname[2]; without it: any ancestor
	argKeyReq           // container.label[app]
	argKeyOpt           // proc.env[HOME]; without it the whole value
)

// farg is a field's bracketed argument.
type farg struct {
	key string
	idx int
	has bool
}

// fieldSpec describes one Falco field Vigil can fill. get returns the
// field's i-th value: single-valued fields only have i == 0; "any" fields
// (an ancestor name without index, fd.ip) are true when any value matches.
type fieldSpec struct {
	typ vtype
	arg argKind
	get func(c *ctx, a *farg, i int) (val, bool)
}

func str(f func(c *ctx, a *farg) (string, bool)) func(c *ctx, a *farg, i int) (val, bool) {
	return func(c *ctx, a *farg, i int) (val, bool) {
		if i > 0 {
			return val{}, false
		}
		s, ok := f(c, a)
		return val{s: s}, ok
	}
}

func num(f func(c *ctx, a *farg) (int64, bool)) func(c *ctx, a *farg, i int) (val, bool) {
	return func(c *ctx, a *farg, i int) (val, bool) {
		if i > 0 {
			return val{}, false
		}
		n, ok := f(c, a)
		return val{n: n}, ok
	}
}

func boolean(f func(c *ctx, a *farg) (bool, bool)) func(c *ctx, a *farg, i int) (val, bool) {
	return func(c *ctx, a *farg, i int) (val, bool) {
		if i > 0 {
			return val{}, false
		}
		b, ok := f(c, a)
		if b {
			return val{n: 1}, ok
		}
		return val{}, ok
	}
}

func ipf(f func(c *ctx, a *farg, i int) (netip.Addr, bool)) func(c *ctx, a *farg, i int) (val, bool) {
	return func(c *ctx, a *farg, i int) (val, bool) {
		ip, ok := f(c, a, i)
		if !ok || !ip.IsValid() {
			return val{}, false
		}
		return val{ip: ip.Unmap()}, true
	}
}

// kindTypes is the evt.type of each kind when the event names no syscall.
var kindTypes = [...]string{
	event.ProcessExec: "execve", event.ProcessFork: "clone", event.ProcessExit: "procexit",
	event.FileOpen: "openat", event.FileUnlink: "unlinkat", event.FileRename: "renameat2",
	event.FileLink: "linkat", event.FileSymlink: "symlinkat", event.FileChmod: "fchmodat",
	event.FileChown: "fchownat", event.FileMkdir: "mkdirat", event.NetSocket: "socket",
	event.NetConnect: "connect", event.NetAccept: "accept4", event.NetBind: "bind",
	event.NetListen: "listen", event.NetDNS: "", event.PrivSetuid: "setuid", event.PrivSetgid: "setgid",
	event.PrivCapset: "capset", event.Ptrace: "ptrace", event.ModuleLoad: "init_module",
	event.Mount: "mount", event.Umount: "umount2", event.Unshare: "unshare", event.Setns: "setns",
	event.MemfdCreate: "memfd_create", event.BPF: "bpf", event.FDDup: "dup2",
}

// evtType is the Falco evt.type of an event.
func evtType(e *event.Event) string {
	if e.Syscall != "" {
		return e.Syscall
	}
	if int(e.Type) < len(kindTypes) {
		return kindTypes[e.Type]
	}
	return ""
}

// proc returns the process at ancestry level i: 0 self, 1 parent, 2.. the
// parent's ancestors.
type procView struct {
	pid       int32
	name, exe string // exe: argv[0], else the executable path
	exepath   string
}

func procAt(e *event.Event, i int) (procView, bool) {
	switch {
	case i == 0:
		p := &e.Process
		return procView{p.PID, p.Name, argv0(p.Args, p.Exe), p.Exe}, true
	case i == 1:
		if e.Parent == nil {
			return procView{}, false
		}
		p := e.Parent
		return procView{p.PID, p.Name, argv0(p.Args, p.Exe), p.Exe}, true
	case i-2 < len(e.Ancestors):
		a := &e.Ancestors[i-2]
		return procView{a.PID, a.Name, argv0(a.Args, a.Exe), a.Exe}, true
	}
	return procView{}, false
}

func argv0(args []string, exe string) string {
	if len(args) > 0 && args[0] != "" {
		return args[0]
	}
	return exe
}

// ancestor resolves the index argument of proc.aname & co: with an index
// that level, without one the i-th ancestor (parent first).
func ancestor(c *ctx, a *farg, i int) (procView, bool) {
	if a.has {
		if i > 0 {
			return procView{}, false
		}
		return procAt(c.e, a.idx)
	}
	return procAt(c.e, i+1)
}

// findPID looks for pid among self, parent and ancestors.
func findPID(e *event.Event, pid int32) (procView, bool) {
	if pid == 0 {
		return procView{}, false
	}
	for i := 0; ; i++ {
		p, ok := procAt(e, i)
		if !ok {
			return procView{}, false
		}
		if p.pid == pid {
			return p, true
		}
	}
}

func nonEmpty(s string) (string, bool) { return s, s != "" }

func appendArgs(b []byte, args []string, cmdline string) ([]byte, bool) {
	if len(args) > 0 {
		for i, a := range args[1:] {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, a...)
		}
		return b, true
	}
	if cmdline == "" {
		return b, false
	}
	if i := strings.IndexByte(cmdline, ' '); i >= 0 {
		return append(b, cmdline[i+1:]...), true
	}
	return b, true
}

func fillProcArgs(c *ctx, b []byte) ([]byte, bool) {
	return appendArgs(b, c.e.Process.Args, c.e.Process.CmdLine)
}

func fillParentArgs(c *ctx, b []byte) ([]byte, bool) {
	if c.e.Parent == nil {
		return b, false
	}
	return appendArgs(b, c.e.Parent.Args, c.e.Parent.CmdLine)
}

func appendCmdline(b []byte, p *event.Process) ([]byte, bool) {
	if p.Name == "" {
		return b, false
	}
	b = append(b, p.Name...)
	n := len(b)
	b = append(b, ' ')
	b, _ = appendArgs(b, p.Args, p.CmdLine)
	if len(b) == n+1 {
		b = b[:n]
	}
	return b, true
}

func fillProcCmdline(c *ctx, b []byte) ([]byte, bool) { return appendCmdline(b, &c.e.Process) }

func fillParentCmdline(c *ctx, b []byte) ([]byte, bool) {
	if c.e.Parent == nil {
		return b, false
	}
	return appendCmdline(b, c.e.Parent)
}

func fillEnv(c *ctx, b []byte) ([]byte, bool) {
	env := c.e.Process.Env
	if env == nil {
		return b, false
	}
	for i, v := range env {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, v...)
	}
	return b, true
}

func fillCwd(c *ctx, b []byte) ([]byte, bool) {
	cwd := c.e.Process.Cwd
	if cwd == "" {
		return b, false
	}
	b = append(b, cwd...)
	if cwd[len(cwd)-1] != '/' {
		b = append(b, '/')
	}
	return b, true
}

func fillTime(c *ctx, b []byte) ([]byte, bool) {
	if c.e.Time.IsZero() {
		return b, false
	}
	return c.e.Time.UTC().AppendFormat(b, "15:04:05.000000000"), true
}

func fillMounts(c *ctx, b []byte) ([]byte, bool) {
	w := c.e.Workload
	if w == nil || w.ContainerID == "" {
		return b, false
	}
	for i, m := range w.Mounts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m...)
	}
	return b, true
}

var capNames = [...]string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

func fillCapEff(c *ctx, b []byte) ([]byte, bool) { return appendCaps(b, c.e.Process.CapEff), true }

// appendCaps appends the names of the capabilities set in caps, the way
// Falco prints a capability set: space-separated CAP_ names.
func appendCaps(b []byte, caps uint64) []byte {
	first := true
	for i := 0; i < 64; i++ {
		if caps&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ' ')
		}
		first = false
		if i < len(capNames) {
			b = append(b, capNames[i]...)
		} else {
			b = append(b, "CAP_"...)
			b = strconv.AppendInt(b, int64(i), 10)
		}
	}
	return b
}

// openFlagNames in the order Falco prints them.
var openFlagNames = []struct {
	name string
	bit  uint32
}{
	{"O_LARGEFILE", unix.O_LARGEFILE}, {"O_DIRECTORY", unix.O_DIRECTORY}, {"O_DIRECT", unix.O_DIRECT},
	{"O_TRUNC", unix.O_TRUNC}, {"O_SYNC", unix.O_SYNC}, {"O_NONBLOCK", unix.O_NONBLOCK},
	{"O_NOCTTY", unix.O_NOCTTY}, {"O_EXCL", unix.O_EXCL}, {"O_CREAT", unix.O_CREAT},
}

var openFlagNames2 = []struct {
	name string
	bit  uint32
}{
	{"O_CLOEXEC", unix.O_CLOEXEC}, {"O_TMPFILE", unix.O_TMPFILE}, {"O_NOFOLLOW", unix.O_NOFOLLOW},
	{"O_PATH", unix.O_PATH}, {"O_DSYNC", unix.O_DSYNC}, {"O_NOATIME", unix.O_NOATIME}, {"O_ASYNC", unix.O_ASYNC},
}

func appendFlag(b []byte, s string) []byte {
	if len(b) > 0 {
		b = append(b, '|')
	}
	return append(b, s...)
}

// mountFlagNames are mount(2)'s MS_ flags by bit, named as Falco prints
// them (in its order, which is the bits' order).
var mountFlagNames = [32]string{
	"RDONLY", "NOSUID", "NODEV", "NOEXEC", "SYNCHRONOUS", "REMOUNT", "MANDLOCK", "DIRSYNC",
	"", "", "NOATIME", "NODIRATIME", "BIND", "MOVE", "REC", "SILENT",
	"POSIXACL", "UNBINDABLE", "PRIVATE", "SLAVE", "SHARED", "RELATIME", "KERNMOUNT", "I_VERSION",
	"STRICTATIME", "LAZYTIME", "", "", "NOSEC", "BORN", "ACTIVE", "NOUSER",
}

func fillFlags(c *ctx, b []byte) ([]byte, bool) {
	e := c.e
	switch e.Type {
	case event.FileOpen:
		if e.File == nil {
			return b, false
		}
		f := e.File.Flags
		for _, n := range openFlagNames {
			if n.bit != 0 && f&n.bit == n.bit {
				b = appendFlag(b, n.name)
			}
		}
		switch f & unix.O_ACCMODE {
		case unix.O_RDWR:
			b = appendFlag(b, "O_RDWR")
		case unix.O_WRONLY:
			b = appendFlag(b, "O_WRONLY")
		default:
			b = appendFlag(b, "O_RDONLY")
		}
		for _, n := range openFlagNames2 {
			if n.bit != 0 && f&n.bit == n.bit {
				b = appendFlag(b, n.name)
			}
		}
		return b, true
	case event.Unshare, event.Setns:
		if e.Detail == nil {
			return b, false
		}
		for _, n := range cloneNames {
			if e.Detail.Request&n.bit != 0 {
				b = appendFlag(b, n.name)
			}
		}
		if len(b) == 0 {
			b = append(b, '0')
		}
		return b, true
	case event.Mount:
		if e.Detail == nil {
			return b, false
		}
		f := e.Detail.Request
		if f&0xffff0000 == 0xc0ed0000 { // MS_MGC_VAL: old callers' magic, not flags
			f &^= 0xffff0000
		}
		for i, n := range mountFlagNames {
			if f&(1<<i) != 0 && n != "" {
				b = appendFlag(b, n)
			}
		}
		if len(b) == 0 {
			b = append(b, '0')
		}
		return b, true
	case event.ProcessExec:
		if e.Process.ExeUpper {
			b = appendFlag(b, "EXE_UPPER_LAYER")
		}
		if e.Process.ExeMemfd {
			b = appendFlag(b, "EXE_FROM_MEMFD")
		}
		if len(b) == 0 {
			b = append(b, '0')
		}
		return b, true
	}
	return b, false
}

// modeNames in the order Falco prints a mode (its chmod_mode table).
var modeNames = []struct {
	name string
	bit  uint32
}{
	{"S_IXOTH", 0o1}, {"S_IWOTH", 0o2}, {"S_IROTH", 0o4}, {"S_IXGRP", 0o10}, {"S_IWGRP", 0o20},
	{"S_IRGRP", 0o40}, {"S_IXUSR", 0o100}, {"S_IWUSR", 0o200}, {"S_IRUSR", 0o400},
	{"S_ISVTX", 0o1000}, {"S_ISGID", 0o2000}, {"S_ISUID", 0o4000},
}

// fillMode is evt.arg.mode of chmod, mkdir and creating opens:
// "S_IXOTH|S_IROTH|…|S_ISUID", "0" for no bits.
func fillMode(c *ctx, b []byte) ([]byte, bool) {
	e := c.e
	if e.File == nil {
		return b, false
	}
	switch e.Type {
	case event.FileChmod, event.FileMkdir:
	case event.FileOpen:
		if e.File.Flags&(unix.O_CREAT|unix.O_TMPFILE) == 0 {
			return b, false
		}
	default:
		return b, false
	}
	for _, m := range modeNames {
		if e.File.Mode&m.bit != 0 {
			b = appendFlag(b, m.name)
		}
	}
	if len(b) == 0 {
		b = append(b, '0')
	}
	return b, true
}

// cloneNames are the namespace flags of unshare and setns.
var cloneNames = []struct {
	name string
	bit  uint64
}{
	{"CLONE_NEWNS", unix.CLONE_NEWNS}, {"CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP}, {"CLONE_NEWUTS", unix.CLONE_NEWUTS},
	{"CLONE_NEWIPC", unix.CLONE_NEWIPC}, {"CLONE_NEWUSER", unix.CLONE_NEWUSER}, {"CLONE_NEWPID", unix.CLONE_NEWPID},
	{"CLONE_NEWNET", unix.CLONE_NEWNET}, {"CLONE_NEWTIME", unix.CLONE_NEWTIME},
}

// bpfCmds are bpf(2)'s commands, by number.
var bpfCmds = [...]string{
	"BPF_MAP_CREATE", "BPF_MAP_LOOKUP_ELEM", "BPF_MAP_UPDATE_ELEM", "BPF_MAP_DELETE_ELEM", "BPF_MAP_GET_NEXT_KEY",
	"BPF_PROG_LOAD", "BPF_OBJ_PIN", "BPF_OBJ_GET", "BPF_PROG_ATTACH", "BPF_PROG_DETACH", "BPF_PROG_TEST_RUN",
	"BPF_PROG_GET_NEXT_ID", "BPF_MAP_GET_NEXT_ID", "BPF_PROG_GET_FD_BY_ID", "BPF_MAP_GET_FD_BY_ID",
	"BPF_OBJ_GET_INFO_BY_FD", "BPF_PROG_QUERY", "BPF_RAW_TRACEPOINT_OPEN", "BPF_BTF_LOAD", "BPF_BTF_GET_FD_BY_ID",
	"BPF_TASK_FD_QUERY", "BPF_MAP_LOOKUP_AND_DELETE_ELEM", "BPF_MAP_FREEZE", "BPF_BTF_GET_NEXT_ID",
	"BPF_MAP_LOOKUP_BATCH", "BPF_MAP_LOOKUP_AND_DELETE_BATCH", "BPF_MAP_UPDATE_BATCH", "BPF_MAP_DELETE_BATCH",
	"BPF_LINK_CREATE", "BPF_LINK_UPDATE", "BPF_LINK_GET_FD_BY_ID", "BPF_LINK_GET_NEXT_ID", "BPF_ENABLE_STATS",
	"BPF_ITER_CREATE", "BPF_LINK_DETACH", "BPF_PROG_BIND_MAP", "BPF_TOKEN_CREATE",
}

var ptraceRequests = map[uint64]string{
	0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSR",
	4: "PTRACE_POKETEXT", 5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSR", 7: "PTRACE_CONT",
	8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP", 12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS",
	14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH", 17: "PTRACE_DETACH",
	18: "PTRACE_GETFPXREGS", 19: "PTRACE_SETFPXREGS", 24: "PTRACE_SYSCALL", 31: "PTRACE_SYSEMU",
	32: "PTRACE_SYSEMU_SINGLESTEP", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
	0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET",
	0x4205: "PTRACE_SETREGSET", 0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT",
	0x4208: "PTRACE_LISTEN", 0x4209: "PTRACE_PEEKSIGINFO",
}

var familyNames = map[string]string{
	"inet": "AF_INET", "inet6": "AF_INET6", "unix": "AF_UNIX", "packet": "AF_PACKET", "netlink": "AF_NETLINK",
}

func isInet(n *event.Net) bool { return n.Family == "inet" || n.Family == "inet6" }

// endpoints gives the client and server ends of an event's connection.
// Net.Src is the side that initiated it and Net.Dst the side it went to
// (OCSF's src/dst endpoints): on connect the process's own end is Src, on
// accept the peer is Src. bind and listen have only the local end, Src.
func endpoints(e *event.Event) (client, server netip.AddrPort, ok bool) {
	n := e.Net
	if n == nil || !isInet(n) {
		return netip.AddrPort{}, netip.AddrPort{}, false
	}
	switch e.Type {
	case event.NetBind, event.NetListen:
		return netip.AddrPort{}, n.Src, true
	}
	return n.Src, n.Dst, true
}

// localRemote gives the process's own end and the other end.
func localRemote(e *event.Event) (local, remote netip.AddrPort) {
	n := e.Net
	switch e.Type {
	case event.NetAccept:
		return n.Dst, n.Src
	case event.NetBind, event.NetListen:
		return n.Src, netip.AddrPort{}
	}
	return n.Src, n.Dst
}

func appendAddrPort(b []byte, ap netip.AddrPort) []byte {
	if ap.Addr().IsValid() {
		b = ap.Addr().Unmap().AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(ap.Port()), 10)
}

// fillFDName is fd.name: a file's absolute, cleaned path; a socket's
// "cip:cport->sip:sport"; a unix socket's path.
func fillFDName(c *ctx, b []byte) ([]byte, bool) {
	e := c.e
	switch {
	case e.Type == event.FileOpen && e.File != nil:
		return appendClean(b, c.e.Process.Cwd, e.File.Path), true
	case e.Net != nil:
		n := e.Net
		if n.Family == "unix" {
			return append(b, n.UnixPath...), n.UnixPath != ""
		}
		cl, sv, ok := endpoints(e)
		if !ok {
			return b, false
		}
		switch {
		case cl.IsValid() && sv.IsValid():
			b = appendAddrPort(b, cl)
			b = append(b, "->"...)
			b = appendAddrPort(b, sv)
		case sv.IsValid():
			b = appendAddrPort(b, sv)
		case cl.IsValid():
			b = appendAddrPort(b, cl)
		default:
			return b, false
		}
		return b, true
	}
	return b, false
}

// appendClean appends path made absolute against cwd and cleaned like
// path.Clean, without allocating.
func appendClean(b []byte, cwd, p string) []byte {
	if p == "" {
		return b
	}
	start := len(b)
	if p[0] != '/' && cwd != "" {
		b = append(b, cwd...)
		b = append(b, '/')
	}
	b = append(b, p...)
	raw := b[start:]
	if !needsClean(raw) {
		return b
	}
	// clean in place: raw is ours
	rooted := raw[0] == '/'
	w := 0
	r := 0
	n := len(raw)
	if rooted {
		w, r = 1, 1
	}
	dotdot := w
	for r < n {
		switch {
		case raw[r] == '/':
			r++
		case raw[r] == '.' && (r+1 == n || raw[r+1] == '/'):
			r++
		case raw[r] == '.' && raw[r+1] == '.' && (r+2 == n || raw[r+2] == '/'):
			r += 2
			switch {
			case w > dotdot:
				w--
				for w > dotdot && raw[w] != '/' {
					w--
				}
			case !rooted:
				if w > 0 {
					raw[w] = '/'
					w++
				}
				raw[w], raw[w+1] = '.', '.'
				w += 2
				dotdot = w
			}
		default:
			if rooted && w != 1 || !rooted && w != 0 {
				raw[w] = '/'
				w++
			}
			for ; r < n && raw[r] != '/'; r++ {
				raw[w] = raw[r]
				w++
			}
		}
	}
	if w == 0 {
		raw[0] = '.'
		w = 1
	}
	return b[:start+w]
}

func needsClean(p []byte) bool {
	s := bstr(p)
	if len(s) > 1 && s[len(s)-1] == '/' {
		return true
	}
	return strings.Contains(s, "//") || strings.Contains(s, "/./") || strings.Contains(s, "/../") ||
		strings.HasSuffix(s, "/.") || strings.HasSuffix(s, "/..") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../")
}

// mountFSType is mount's file system type argument.
func mountFSType(c *ctx, _ *farg) (string, bool) {
	if c.e.Type != event.Mount || c.e.Detail == nil || c.e.Detail.FSType == "" {
		return "", false
	}
	return c.e.Detail.FSType, true
}

func fillArgs(c *ctx, b []byte) ([]byte, bool) {
	e := c.e
	switch {
	case e.File != nil:
		switch e.Type {
		case event.FileOpen:
			b = append(b, "fd="...)
			b = strconv.AppendInt(b, e.Ret, 10)
			b = append(b, " name="...)
			b = append(b, e.File.Path...)
			b = append(b, " flags="...)
			b = strconv.AppendUint(b, uint64(e.File.Flags), 10)
			if fl, ok := c.derive(dFlags, fillFlags); ok {
				b = append(b, '(')
				b = append(b, fl...)
				b = append(b, ')')
			}
		case event.FileRename, event.FileLink:
			b = append(b, "res="...)
			b = strconv.AppendInt(b, e.Ret, 10)
			b = append(b, " oldpath="...)
			b = append(b, e.File.Path...)
			b = append(b, " newpath="...)
			b = append(b, e.File.NewPath...)
		case event.FileSymlink:
			b = append(b, "res="...)
			b = strconv.AppendInt(b, e.Ret, 10)
			b = append(b, " target="...)
			b = append(b, e.File.Path...)
			b = append(b, " linkpath="...)
			b = append(b, e.File.NewPath...)
		default:
			b = append(b, "res="...)
			b = strconv.AppendInt(b, e.Ret, 10)
			b = append(b, " path="...)
			b = append(b, e.File.Path...)
		}
	case e.Net != nil:
		if e.Type == event.NetSocket {
			b = append(b, "fd="...)
			b = strconv.AppendInt(b, e.Ret, 10)
			b = append(b, " domain="...)
			b = append(b, familyNames[e.Net.Family]...)
			if e.Net.Type != "" {
				b = append(b, " type="...)
				b = append(b, e.Net.Type...)
			}
			b = append(b, " proto="...)
			b = strconv.AppendInt(b, int64(e.Net.Protocol), 10)
			break
		}
		b = append(b, "res="...)
		b = strconv.AppendInt(b, e.Ret, 10)
		if s, ok := c.derive(dFDName, fillFDName); ok {
			b = append(b, " tuple="...)
			b = append(b, s...)
		}
	case e.Detail != nil:
		b = append(b, "res="...)
		b = strconv.AppendInt(b, e.Ret, 10)
		if e.Type == event.Ptrace {
			b = append(b, " request="...)
			b = append(b, ptraceRequests[e.Detail.Request]...)
			if e.Target != nil {
				b = append(b, " pid="...)
				b = strconv.AppendInt(b, int64(e.Target.PID), 10)
			}
		} else {
			b = append(b, " request="...)
			b = strconv.AppendUint(b, e.Detail.Request, 10)
		}
		if e.Detail.Name != "" {
			b = append(b, " name="...)
			b = append(b, e.Detail.Name...)
		}
		if e.Detail.FSType != "" {
			b = append(b, " type="...)
			b = append(b, e.Detail.FSType...)
		}
	default:
		b = append(b, "res="...)
		b = strconv.AppendInt(b, e.Ret, 10)
	}
	return b, true
}

func workload(c *ctx) *event.Workload { return c.e.Workload }

func inContainer(c *ctx) (*event.Workload, bool) {
	w := c.e.Workload
	return w, w != nil && w.ContainerID != ""
}

// splitImage splits "repo[:tag][@digest]".
func splitImage(img string) (repo, tag, digest string) {
	if i := strings.IndexByte(img, '@'); i >= 0 {
		img, digest = img[:i], img[i+1:]
	}
	repo = img
	if i := strings.LastIndexByte(img, ':'); i >= 0 && !strings.Contains(img[i:], "/") {
		repo, tag = img[:i], img[i+1:]
	}
	return repo, tag, digest
}

func fileName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func dirName(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return p[:i]
}

func fileEvent(c *ctx) (*event.File, bool) { return c.e.File, c.e.File != nil }

func fdName(c *ctx, _ *farg) (string, bool) { return c.derive(dFDName, fillFDName) }

func isOpen(c *ctx) (uint32, bool) {
	if c.e.Type != event.FileOpen || c.e.File == nil {
		return 0, false
	}
	return c.e.File.Flags, true
}

// fdNum is the event's file descriptor.
func fdNum(c *ctx, _ *farg) (int64, bool) {
	e := c.e
	switch e.Type {
	case event.FileOpen, event.NetSocket, event.NetAccept, event.MemfdCreate:
		if e.Ret < 0 {
			return -1, true
		}
		return e.Ret, true
	case event.FDDup:
		if e.Detail == nil {
			return 0, false
		}
		return int64(e.Detail.Request), true
	}
	return 0, false
}

func fdType(c *ctx) (string, string, bool) {
	e := c.e
	if e.Type == event.FileOpen && e.File != nil {
		if e.File.Flags&unix.O_DIRECTORY != 0 {
			return "directory", "d", true
		}
		return "file", "f", true
	}
	if e.Net != nil {
		switch e.Net.Family {
		case "inet":
			return "ipv4", "4", true
		case "inet6":
			return "ipv6", "6", true
		case "unix":
			return "unix", "u", true
		case "netlink":
			return "netlink", "n", true
		}
	}
	if e.Type == event.MemfdCreate {
		return "memfd", "m", true
	}
	return "", "", false
}

func l4proto(c *ctx) (string, bool) {
	n := c.e.Net
	if n == nil || !isInet(n) {
		return "", false
	}
	switch n.Protocol {
	case 6, 262: // IPPROTO_TCP; IPPROTO_MPTCP (Go listens with it by default), TCP on the wire
		return "tcp", true
	case 17:
		return "udp", true
	case 1, 58:
		return "icmp", true
	}
	switch n.Type {
	case "stream", "tcp":
		return "tcp", true
	case "dgram", "udp":
		return "udp", true
	case "raw":
		return "raw", true
	}
	return "", false
}

// ep returns one end of the event's connection: which is 'c' client, 's'
// server, 'l' local, 'r' remote.
func ep(c *ctx, which byte) (netip.AddrPort, bool) {
	cl, sv, ok := endpoints(c.e)
	if !ok {
		return netip.AddrPort{}, false
	}
	var ap netip.AddrPort
	switch which {
	case 'c':
		ap = cl
	case 's':
		ap = sv
	case 'l':
		ap, _ = localRemote(c.e)
	case 'r':
		_, ap = localRemote(c.e)
	}
	return ap, ap.Addr().IsValid()
}

func epIP(which byte) func(c *ctx, a *farg, i int) (netip.Addr, bool) {
	return func(c *ctx, a *farg, i int) (netip.Addr, bool) {
		if i > 0 {
			return netip.Addr{}, false
		}
		ap, ok := ep(c, which)
		return ap.Addr(), ok
	}
}

// anyIP is fd.ip / fd.net: the client address, then the server address.
func anyIP(c *ctx, a *farg, i int) (netip.Addr, bool) {
	switch i {
	case 0:
		return epIP('c')(c, a, 0)
	case 1:
		return epIP('s')(c, a, 0)
	}
	return netip.Addr{}, false
}

func epPort(which byte) func(c *ctx, a *farg) (int64, bool) {
	return func(c *ctx, a *farg) (int64, bool) {
		ap, ok := ep(c, which)
		return int64(ap.Port()), ok
	}
}

// epName is fd.sip.name and friends: Net.Names are the DNS names of the
// remote end, so an end has them when it is the remote one.
func epName(which byte) func(c *ctx, a *farg, i int) (val, bool) {
	return func(c *ctx, a *farg, i int) (val, bool) {
		n := c.e.Net
		if n == nil || i >= len(n.Names) {
			return val{}, false
		}
		ap, ok := ep(c, which)
		if _, remote := localRemote(c.e); !ok || ap != remote {
			return val{}, false
		}
		return val{s: n.Names[i]}, true
	}
}

func durationSince(c *ctx, p *event.Process) (int64, bool) {
	if p == nil || p.StartTime.IsZero() || c.e.Time.IsZero() {
		return 0, false
	}
	return c.e.Time.Sub(p.StartTime).Nanoseconds(), true
}

func labelsText(m map[string]string) (string, bool) {
	if m == nil {
		return "", false
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(m[k])
	}
	return b.String(), true
}

// fields is every Falco field Vigil can fill, by name.
var fields map[string]*fieldSpec

func init() {
	S := func(f func(c *ctx, a *farg) (string, bool)) *fieldSpec { return &fieldSpec{typ: tStr, get: str(f)} }
	N := func(f func(c *ctx, a *farg) (int64, bool)) *fieldSpec { return &fieldSpec{typ: tNum, get: num(f)} }
	B := func(f func(c *ctx, a *farg) (bool, bool)) *fieldSpec { return &fieldSpec{typ: tBool, get: boolean(f)} }
	anc := func(typ vtype, f func(p procView) val) *fieldSpec {
		return &fieldSpec{typ: typ, arg: argIndexOpt, get: func(c *ctx, a *farg, i int) (val, bool) {
			p, ok := ancestor(c, a, i)
			if !ok {
				return val{}, false
			}
			v := f(p)
			return v, typ != tStr || v.s != ""
		}}
	}
	self := func(c *ctx) *event.Process { return &c.e.Process }
	parent := func(c *ctx) (*event.Process, bool) { return c.e.Parent, c.e.Parent != nil }

	fields = map[string]*fieldSpec{
		// evt.*
		"evt.type":     S(func(c *ctx, _ *farg) (string, bool) { return nonEmpty(evtType(c.e)) }),
		"evt.dir":      S(func(c *ctx, _ *farg) (string, bool) { return "<", true }),
		"evt.num":      N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.num), c.num != 0 }),
		"evt.time":     S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dTime, fillTime) }),
		"evt.rawtime":  N(func(c *ctx, _ *farg) (int64, bool) { return c.e.Time.UnixNano(), !c.e.Time.IsZero() }),
		"evt.hostname": S(func(c *ctx, _ *farg) (string, bool) { w := workload(c); return nonEmpty(hostOf(w)) }),
		"evt.res": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Ret >= 0 {
				return "SUCCESS", true
			}
			if n := unix.ErrnoName(syscall.Errno(-c.e.Ret)); n != "" {
				return n, true
			}
			return "E?", true
		}),
		"evt.rawres": N(func(c *ctx, _ *farg) (int64, bool) { return c.e.Ret, true }),
		"evt.failed": B(func(c *ctx, _ *farg) (bool, bool) { return c.e.Ret < 0, true }),
		"evt.is_open_read": B(func(c *ctx, _ *farg) (bool, bool) {
			f, ok := isOpen(c)
			m := f & unix.O_ACCMODE
			return m == unix.O_RDONLY || m == unix.O_RDWR, ok
		}),
		"evt.is_open_write": B(func(c *ctx, _ *farg) (bool, bool) {
			f, ok := isOpen(c)
			m := f & unix.O_ACCMODE
			return m == unix.O_WRONLY || m == unix.O_RDWR, ok
		}),
		"evt.is_open_exec": B(func(c *ctx, _ *farg) (bool, bool) {
			f, ok := isOpen(c)
			return f&0x20 != 0, ok // __FMODE_EXEC
		}),
		"evt.is_open_create": B(func(c *ctx, _ *farg) (bool, bool) {
			f, ok := isOpen(c)
			return f&unix.O_CREAT != 0, ok
		}),
		"evt.arg.flags": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dFlags, fillFlags) }),
		"evt.arg.request": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.Ptrace || c.e.Detail == nil {
				return "", false
			}
			if s, ok := ptraceRequests[c.e.Detail.Request]; ok {
				return s, true
			}
			return "PTRACE_UNKNOWN", true
		}),
		"evt.arg.domain": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.NetSocket || c.e.Net == nil {
				return "", false
			}
			return nonEmpty(familyNames[c.e.Net.Family])
		}),
		"evt.arg.target": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.FileSymlink || c.e.File == nil {
				return "", false
			}
			return c.e.File.Path, true
		}),
		"evt.arg.linkpath": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.FileSymlink || c.e.File == nil {
				return "", false
			}
			return c.e.File.NewPath, true
		}),
		"evt.arg.oldpath": S(func(c *ctx, _ *farg) (string, bool) {
			if (c.e.Type != event.FileLink && c.e.Type != event.FileRename) || c.e.File == nil {
				return "", false
			}
			return c.e.File.Path, true
		}),
		"evt.arg.newpath": S(func(c *ctx, _ *farg) (string, bool) {
			if (c.e.Type != event.FileLink && c.e.Type != event.FileRename) || c.e.File == nil {
				return "", false
			}
			return c.e.File.NewPath, true
		}),
		"evt.arg.name": S(func(c *ctx, _ *farg) (string, bool) {
			switch {
			case c.e.Type == event.FileOpen && c.e.File != nil:
				return c.e.File.Path, true
			case c.e.Type == event.MemfdCreate && c.e.Detail != nil:
				return c.e.Detail.Name, true
			}
			return "", false
		}),
		"evt.arg.path": S(func(c *ctx, _ *farg) (string, bool) {
			switch c.e.Type {
			case event.FileUnlink, event.FileChmod, event.FileChown, event.FileMkdir:
				if c.e.File != nil {
					return c.e.File.Path, true
				}
			}
			return "", false
		}),
		"evt.arg.uargs": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.ModuleLoad || c.e.Detail == nil {
				return "", false
			}
			return c.e.Detail.Name, true
		}),
		"evt.arg.cmd": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.BPF || c.e.Detail == nil {
				return "", false
			}
			if r := c.e.Detail.Request; r < uint64(len(bpfCmds)) {
				return bpfCmds[r], true
			}
			return "BPF_UNKNOWN", true
		}),
		"evt.arg.nstype": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.Setns || c.e.Detail == nil {
				return "", false
			}
			return c.derive(dFlags, fillFlags)
		}),
		"evt.arg.filename": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.FileChmod || c.e.File == nil {
				return "", false
			}
			return c.e.File.Path, true
		}),
		"evt.arg.mode": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dMode, fillMode) }),
		"evt.arg.dev": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.Mount || c.e.Detail == nil {
				return "", false
			}
			return c.e.Detail.Name, true
		}),
		"evt.arg.dir": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.Mount || c.e.Detail == nil {
				return "", false
			}
			return c.e.Detail.Target, true
		}),
		// mount's file system type: Falco names the argument "type".
		"evt.arg.type":   S(mountFSType),
		"evt.arg.fstype": S(mountFSType),
		"evt.args":       S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dArgs, fillArgs) }),

		// proc.* and thread.*
		"proc.pid":  N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.PID), true }),
		"proc.ppid": N(func(c *ctx, _ *farg) (int64, bool) { return ppid(c.e) }),
		"proc.name": S(func(c *ctx, _ *farg) (string, bool) { return nonEmpty(c.e.Process.Name) }),
		"proc.exe": S(func(c *ctx, _ *farg) (string, bool) {
			return nonEmpty(argv0(c.e.Process.Args, c.e.Process.Exe))
		}),
		"proc.exepath": S(func(c *ctx, _ *farg) (string, bool) { return nonEmpty(c.e.Process.Exe) }),
		"proc.args":    S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dProcArgs, fillProcArgs) }),
		"proc.cmdline": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dProcCmdline, fillProcCmdline) }),
		"proc.pname": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := parent(c)
			if !ok {
				return "", false
			}
			return nonEmpty(p.Name)
		}),
		"proc.pexe": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := parent(c)
			if !ok {
				return "", false
			}
			return nonEmpty(argv0(p.Args, p.Exe))
		}),
		"proc.pexepath": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := parent(c)
			if !ok {
				return "", false
			}
			return nonEmpty(p.Exe)
		}),
		"proc.pcmdline": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dParentCmdline, fillParentCmdline) }),
		"proc.pargs":    S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dParentArgs, fillParentArgs) }),
		"proc.aname":    anc(tStr, func(p procView) val { return val{s: p.name} }),
		"proc.aexe":     anc(tStr, func(p procView) val { return val{s: p.exe} }),
		"proc.aexepath": anc(tStr, func(p procView) val { return val{s: p.exepath} }),
		"proc.apid":     anc(tNum, func(p procView) val { return val{n: int64(p.pid)} }),
		"proc.sid":      N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.SID), c.e.Process.SID != 0 }),
		"proc.sname": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := findPID(c.e, c.e.Process.SID)
			return p.name, ok && p.name != ""
		}),
		"proc.vpgid": N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.PGID), c.e.Process.PGID != 0 }),
		"proc.vpgid.name": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := findPID(c.e, c.e.Process.PGID)
			return p.name, ok && p.name != ""
		}),
		"proc.vpgid.exe": S(func(c *ctx, _ *farg) (string, bool) {
			p, ok := findPID(c.e, c.e.Process.PGID)
			return p.exe, ok && p.exe != ""
		}),
		"proc.is_vpgid_leader": B(func(c *ctx, _ *farg) (bool, bool) {
			return c.e.Process.PID == c.e.Process.PGID, c.e.Process.PGID != 0
		}),
		"proc.is_sid_leader": B(func(c *ctx, _ *farg) (bool, bool) {
			return c.e.Process.PID == c.e.Process.SID, c.e.Process.SID != 0
		}),
		"proc.tty": N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.TTYNr), true }),
		"proc.cwd": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dCwd, fillCwd) }),
		"proc.env": {typ: tStr, arg: argKeyOpt, get: str(func(c *ctx, a *farg) (string, bool) {
			if !a.has {
				return c.derive(dEnv, fillEnv)
			}
			for _, kv := range c.e.Process.Env {
				if len(kv) > len(a.key) && kv[len(a.key)] == '=' && kv[:len(a.key)] == a.key {
					return kv[len(a.key)+1:], true
				}
			}
			return "", false
		})},
		"proc.duration": N(func(c *ctx, _ *farg) (int64, bool) { return durationSince(c, self(c)) }),
		"proc.ppid.duration": N(func(c *ctx, _ *farg) (int64, bool) {
			p, _ := parent(c)
			return durationSince(c, p)
		}),
		"proc.is_exe_upper_layer":           B(func(c *ctx, _ *farg) (bool, bool) { return c.e.Process.ExeUpper, true }),
		"proc.is_exe_from_memfd":            B(func(c *ctx, _ *farg) (bool, bool) { return c.e.Process.ExeMemfd, true }),
		"proc.exe_ino":                      N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.ExeInode), c.e.Process.ExeInode != 0 }),
		"proc.is_container_healthcheck":     B(func(c *ctx, _ *farg) (bool, bool) { return false, true }),
		"proc.is_container_liveness_probe":  B(func(c *ctx, _ *farg) (bool, bool) { return false, true }),
		"proc.is_container_readiness_probe": B(func(c *ctx, _ *farg) (bool, bool) { return false, true }),
		"thread.tid": N(func(c *ctx, _ *farg) (int64, bool) {
			if c.e.Process.TID != 0 {
				return int64(c.e.Process.TID), true
			}
			return int64(c.e.Process.PID), true
		}),
		"thread.cap_effective": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dCapEff, fillCapEff) }),
		// The permitted set, taken at exec (or from /proc for processes
		// that were running when the agent started) and carried by the
		// process cache; an empty string when the process has none.
		"thread.cap_permitted": S(func(c *ctx, _ *farg) (string, bool) {
			return string(appendCaps(nil, c.e.Process.CapPrm)), true
		}),
		// The pid and tid in the process's own pid namespace. The sensor
		// reads the vpid of processes only, so thread.vtid is known for the
		// main thread alone.
		"proc.vpid": N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.VPID), c.e.Process.VPID != 0 }),
		"proc.pvpid": N(func(c *ctx, _ *farg) (int64, bool) {
			if p := c.e.Parent; p != nil && p.VPID != 0 {
				return int64(p.VPID), true
			}
			return 0, false
		}),
		"thread.vtid": N(func(c *ctx, _ *farg) (int64, bool) {
			p := &c.e.Process
			return int64(p.VPID), p.VPID != 0 && (p.TID == 0 || p.TID == p.PID)
		}),

		// user.*, group.*
		"user.uid":      N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.EUID), true }),
		"user.name":     S(func(c *ctx, _ *farg) (string, bool) { return nonEmpty(c.e.Process.User) }),
		"user.loginuid": N(func(c *ctx, _ *farg) (int64, bool) { return int64(int32(c.e.Process.LoginUID)), true }),
		"user.loginname": S(func(c *ctx, _ *farg) (string, bool) {
			return nonEmpty(c.e.Process.LoginUser)
		}),
		"group.gid":  N(func(c *ctx, _ *farg) (int64, bool) { return int64(c.e.Process.EGID), true }),
		"group.name": S(func(c *ctx, _ *farg) (string, bool) { return nonEmpty(c.e.Process.Group) }),

		// fd.*
		"fd.num": N(fdNum),
		"fd.type": S(func(c *ctx, _ *farg) (string, bool) {
			t, _, ok := fdType(c)
			return t, ok
		}),
		"fd.typechar": S(func(c *ctx, _ *farg) (string, bool) {
			_, t, ok := fdType(c)
			return t, ok
		}),
		"fd.name": S(fdName),
		"fd.nameraw": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type == event.FileOpen && c.e.File != nil {
				return c.e.File.Path, true
			}
			return fdName(c, nil)
		}),
		"fd.directory": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.FileOpen || c.e.File == nil {
				return "", false
			}
			n, ok := fdName(c, nil)
			return dirName(n), ok
		}),
		"fd.filename": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Type != event.FileOpen || c.e.File == nil {
				return "", false
			}
			n, ok := fdName(c, nil)
			return fileName(n), ok
		}),
		"fd.sip":      {typ: tIP, get: ipf(epIP('s'))},
		"fd.cip":      {typ: tIP, get: ipf(epIP('c'))},
		"fd.lip":      {typ: tIP, get: ipf(epIP('l'))},
		"fd.rip":      {typ: tIP, get: ipf(epIP('r'))},
		"fd.ip":       {typ: tIP, get: ipf(anyIP)},
		"fd.net":      {typ: tNet, get: ipf(anyIP)},
		"fd.snet":     {typ: tNet, get: ipf(epIP('s'))},
		"fd.cnet":     {typ: tNet, get: ipf(epIP('c'))},
		"fd.lnet":     {typ: tNet, get: ipf(epIP('l'))},
		"fd.rnet":     {typ: tNet, get: ipf(epIP('r'))},
		"fd.sport":    N(epPort('s')),
		"fd.cport":    N(epPort('c')),
		"fd.lport":    N(epPort('l')),
		"fd.rport":    N(epPort('r')),
		"fd.sip.name": {typ: tStr, get: epName('s')},
		"fd.cip.name": {typ: tStr, get: epName('c')},
		"fd.lip.name": {typ: tStr, get: epName('l')},
		"fd.rip.name": {typ: tStr, get: epName('r')},
		"fd.l4proto":  S(func(c *ctx, _ *farg) (string, bool) { return l4proto(c) }),
		"fd.port": {typ: tNum, get: func(c *ctx, a *farg, i int) (val, bool) {
			w := byte('c')
			if i == 1 {
				w = 's'
			} else if i > 1 {
				return val{}, false
			}
			n, ok := epPort(w)(c, a)
			return val{n: n}, ok
		}},
		"fd.sockfamily": S(func(c *ctx, _ *farg) (string, bool) {
			if c.e.Net == nil {
				return "", false
			}
			switch c.e.Net.Family {
			case "inet", "inet6":
				return "ip", true
			case "unix":
				return "unix", true
			}
			return "", false
		}),
		"fd.is_server": B(func(c *ctx, _ *farg) (bool, bool) {
			if c.e.Net == nil {
				return false, false
			}
			t := c.e.Type
			return t == event.NetAccept || t == event.NetBind || t == event.NetListen, true
		}),
		"fd.connected": B(func(c *ctx, _ *farg) (bool, bool) {
			if c.e.Net == nil {
				return false, false
			}
			switch c.e.Type {
			case event.NetConnect:
				return c.e.Ret >= 0 || c.e.Ret == -int64(unix.EINPROGRESS), true
			case event.NetAccept:
				return c.e.Ret >= 0, true
			}
			return false, true
		}),
		// Vigil sees no sendto/sendmsg, so a socket's name never changes
		// within an event it reports.
		"fd.name_changed": B(func(c *ctx, _ *farg) (bool, bool) { return false, c.e.Net != nil }),

		// fs.path.*
		"fs.path.name": S(func(c *ctx, _ *farg) (string, bool) {
			f, ok := fileEvent(c)
			switch c.e.Type {
			case event.FileRename, event.FileLink, event.FileSymlink:
				return "", false
			}
			if !ok {
				return "", false
			}
			return f.Path, true
		}),
		"fs.path.source": S(func(c *ctx, _ *farg) (string, bool) {
			f, ok := fileEvent(c)
			switch c.e.Type {
			case event.FileRename, event.FileLink, event.FileSymlink:
				return f.Path, ok
			}
			return "", false
		}),
		"fs.path.target": S(func(c *ctx, _ *farg) (string, bool) {
			f, ok := fileEvent(c)
			switch c.e.Type {
			case event.FileRename, event.FileLink, event.FileSymlink:
				return f.NewPath, ok
			}
			return "", false
		}),

		// container.*
		"container.id": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "host", true
			}
			if len(w.ContainerID) > 12 {
				return w.ContainerID[:12], true
			}
			return w.ContainerID, true
		}),
		"container.full_id": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "host", true
			}
			return w.ContainerID, true
		}),
		"container.name": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "host", true
			}
			return nonEmpty(w.ContainerName)
		}),
		"container.type": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "host", true
			}
			return nonEmpty(w.Runtime)
		}),
		"container.image": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			return nonEmpty(w.Image)
		}),
		"container.image.repository": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			r, _, _ := splitImage(w.Image)
			return nonEmpty(r)
		}),
		"container.image.tag": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			_, t, _ := splitImage(w.Image)
			return nonEmpty(t)
		}),
		"container.image.digest": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			if w.ImageDigest != "" {
				return w.ImageDigest, true
			}
			_, _, d := splitImage(w.Image)
			return nonEmpty(d)
		}),
		"container.privileged": B(func(c *ctx, _ *farg) (bool, bool) {
			w, ok := inContainer(c)
			if !ok {
				return false, false
			}
			return w.Privileged, true
		}),
		"container.mounts": S(func(c *ctx, _ *farg) (string, bool) { return c.derive(dMounts, fillMounts) }),
		"container.start_ts": N(func(c *ctx, _ *farg) (int64, bool) {
			w, ok := inContainer(c)
			if !ok || w.StartedAt.IsZero() {
				return 0, false
			}
			return w.StartedAt.UnixNano(), true
		}),
		"container.label": {typ: tStr, arg: argKeyReq, get: str(func(c *ctx, a *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			v, ok := w.Labels[a.key]
			return v, ok
		})},
		"container.labels": S(func(c *ctx, _ *farg) (string, bool) {
			w, ok := inContainer(c)
			if !ok {
				return "", false
			}
			return labelsText(w.Labels)
		}),

		// k8s.*
		"k8s.ns.name": S(func(c *ctx, _ *farg) (string, bool) {
			w := workload(c)
			if w == nil {
				return "", false
			}
			return nonEmpty(w.PodNamespace)
		}),
		"k8s.pod.name": S(func(c *ctx, _ *farg) (string, bool) {
			w := workload(c)
			if w == nil {
				return "", false
			}
			return nonEmpty(w.PodName)
		}),
		"k8s.pod.uid": S(func(c *ctx, _ *farg) (string, bool) {
			w := workload(c)
			if w == nil {
				return "", false
			}
			return nonEmpty(w.PodUID)
		}),
		"k8s.pod.label": {typ: tStr, arg: argKeyReq, get: str(func(c *ctx, a *farg) (string, bool) {
			w := workload(c)
			if w == nil {
				return "", false
			}
			v, ok := w.PodLabels[a.key]
			return v, ok
		})},
		"k8s.pod.labels": S(func(c *ctx, _ *farg) (string, bool) {
			w := workload(c)
			if w == nil || w.PodName == "" {
				return "", false
			}
			return labelsText(w.PodLabels)
		}),
	}
}

func hostOf(w *event.Workload) string {
	if w == nil {
		return ""
	}
	return w.Host
}

func ppid(e *event.Event) (int64, bool) {
	if e.Process.PPID != 0 {
		return int64(e.Process.PPID), true
	}
	if e.Parent != nil {
		return int64(e.Parent.PID), true
	}
	return 0, false
}
