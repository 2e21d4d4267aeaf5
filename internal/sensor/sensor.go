// Package sensor loads Vigil's eBPF programs on tracepoints and turns their
// ring-buffer records into event.Event values. It needs root
// (CAP_BPF+CAP_PERFMON+CAP_SYS_ADMIN) and a kernel with BTF; it uses only
// tracepoints and raw tracepoints, BTF-typed or not (no kprobes, fentry or
// BPF-LSM). It does not enrich events: parents, ancestors and workloads are
// filled in later. The only action it takes on processes is the exec policy
// it is given (SetExecPolicy, DenyExec): SIGKILL at exec, in the kernel.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Options configure a Sensor.
type Options struct {
	// RingBufferSize is the size of the ring buffer in bytes: a power of two
	// and a multiple of the page size.
	RingBufferSize int
	// SensitivePrefixes are the path prefixes whose read-only opens are
	// reported; writing opens are always reported. At most 64, each at most
	// 64 bytes.
	SensitivePrefixes []string
	// Logger receives warnings about programs that could not be attached.
	Logger *slog.Logger
	// Disable names programs (see Programs) not to load.
	Disable []string
	// Fallbacks allows a program whose own tracepoints are missing to
	// attach to raw sys_enter/sys_exit instead (only "module" has such a
	// fallback). That costs about 0.25 µs on every system call of the
	// machine. FallbackAuto (the default) allows it only where it can
	// matter: for "module", a kernel that can load modules (/proc/modules
	// exists); a kernel built without module support returns ENOSYS to
	// init_module and has nothing to load.
	Fallbacks Fallbacks
}

// Fallbacks says when the raw-syscall fallbacks may be attached.
type Fallbacks uint8

const (
	FallbackAuto Fallbacks = iota
	FallbackAlways
	FallbackNever
)

// fallbackAllowed applies o.Fallbacks to program name.
func (o Options) fallbackAllowed(name string) bool {
	switch o.Fallbacks {
	case FallbackAlways:
		return true
	case FallbackNever:
		return false
	}
	if name == "module" {
		_, err := os.Stat("/proc/modules")
		return err == nil
	}
	return true
}

// DefaultOptions returns an 8 MiB ring buffer, the default sensitive
// prefixes, slog.Default and every program enabled.
func DefaultOptions() Options {
	return Options{
		RingBufferSize: 8 << 20,
		SensitivePrefixes: []string{
			"/etc/shadow", "/etc/sudoers", "/etc/ssh/", "/root/.ssh/",
			"/etc/kubernetes/", "/var/run/secrets/", "/proc/self/environ",
		},
		Logger: slog.Default(),
	}
}

// ProgramStatus says whether a program is running.
type ProgramStatus struct {
	Name     string
	Attached bool
	Error    string // why it is not attached
	// Fallback says what was attached instead of the program's own
	// tracepoints, and why ("raw_tracepoint sys_enter/sys_exit: …").
	Fallback string
}

// Stats are counters since Open.
type Stats struct {
	Events       map[event.Kind]uint64
	Drops        uint64 // records lost because the ring buffer was full
	DecodeErrors uint64
}

// Sensor is a set of loaded and attached eBPF programs.
type Sensor struct {
	maps    bpfMaps
	links   []link.Link
	progs   []*ebpf.Program
	status  []ProgramStatus
	dec     decoder
	counts  [64]atomic.Uint64
	decErrs atomic.Uint64

	mu     sync.Mutex
	reader *ringbuf.Reader
	closed bool
}

// Open loads the programs and attaches them. A program whose tracepoint is
// missing or that fails to load or attach is switched off with a warning,
// recorded in Status, unless one of its fallbacks attaches (Status then
// says which); the others keep running. Open fails only when the
// maps cannot be created or no program could be attached.
func Open(o Options) (*Sensor, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RingBufferSize == 0 {
		o.RingBufferSize = DefaultOptions().RingBufferSize
	}
	if n := o.RingBufferSize; n <= 0 || n&(n-1) != 0 || n%os.Getpagesize() != 0 {
		return nil, fmt.Errorf("ring buffer size %d is not a power of two multiple of the page size", n)
	}
	if err := mountTracefs(); err != nil {
		return nil, err
	}
	spec, err := loadBpf()
	if err != nil {
		return nil, fmt.Errorf("loading eBPF spec: %w", err)
	}
	spec.Maps["events"].MaxEntries = uint32(o.RingBufferSize)
	if err := spec.Variables["cgroup_v2"].Set(cgroupV2()); err != nil {
		return nil, fmt.Errorf("setting the cgroup mode: %w", err)
	}

	s := &Sensor{}
	if err := spec.LoadAndAssign(&s.maps, nil); err != nil {
		return nil, fmt.Errorf("creating eBPF maps: %w", err)
	}
	if err := fillPrefixes(s.maps.Sensitive, o.SensitivePrefixes); err != nil {
		s.maps.Close()
		return nil, err
	}
	s.dec, err = newDecoder()
	if err != nil {
		s.maps.Close()
		return nil, err
	}
	replace := map[string]*ebpf.Map{
		"events": s.maps.Events, "drops": s.maps.Drops, "pending": s.maps.Pending,
		"scratch": s.maps.Scratch, "sensitive": s.maps.Sensitive,
		"exec_policy": s.maps.ExecPolicy, "exec_deny": s.maps.ExecDeny, "execveat_tids": s.maps.ExecveatTids,
	}
	attached := 0
	for _, p := range programs {
		st := ProgramStatus{Name: p.name}
		if slices.Contains(o.Disable, p.name) {
			st.Error = "disabled"
		} else if err := s.attach(spec, replace, p.parts); err != nil && o.fallbackAllowed(p.name) && s.attachFallback(spec, replace, p, err, &st) {
			attached++
		} else if err != nil {
			st.Error = err.Error()
			o.Logger.Warn("sensor program switched off", "program", p.name, "err", err)
		} else {
			st.Attached = true
			attached++
		}
		s.status = append(s.status, st)
	}
	if attached == 0 {
		s.Close()
		return nil, errors.New("no eBPF program could be attached")
	}
	return s, nil
}

// attachFallback attaches the first of p's fallbacks that works, after
// its own parts failed with err, and records which in st.
func (s *Sensor) attachFallback(spec *ebpf.CollectionSpec, replace map[string]*ebpf.Map, p program, err error, st *ProgramStatus) bool {
	for _, parts := range p.fallbacks {
		if s.attach(spec, replace, parts) == nil {
			kind := "raw_tracepoint"
			if parts[0].group != "" {
				kind = parts[0].group
			}
			var names []string
			for _, pt := range parts {
				names = append(names, pt.event)
			}
			st.Attached = true
			st.Fallback = fmt.Sprintf("%s %s (%v)", kind, strings.Join(names, ", "), err)
			return true
		}
	}
	return false
}

// attach loads parts and attaches them all, or none.
func (s *Sensor) attach(spec *ebpf.CollectionSpec, replace map[string]*ebpf.Map, parts []part) error {
	var progs []*ebpf.Program
	var links []link.Link
	undo := func() {
		for _, l := range links {
			l.Close()
		}
		for _, pr := range progs {
			pr.Close()
		}
	}
	for _, part := range parts {
		if part.group != "" && part.group != "tp_btf" {
			if _, err := os.Stat(fmt.Sprintf("%s/events/%s/%s", tracefsDir, part.group, part.event)); err != nil {
				undo()
				return fmt.Errorf("tracepoint %s/%s not present", part.group, part.event)
			}
		}
		ps := spec.Programs[part.prog]
		if ps == nil {
			undo()
			return fmt.Errorf("program %s not in the object", part.prog)
		}
		cs := &ebpf.CollectionSpec{
			Maps:      spec.Maps,
			Programs:  map[string]*ebpf.ProgramSpec{part.prog: ps},
			Types:     spec.Types,
			ByteOrder: spec.ByteOrder,
		}
		coll, err := ebpf.NewCollectionWithOptions(cs, ebpf.CollectionOptions{MapReplacements: replace})
		if err != nil {
			undo()
			return fmt.Errorf("loading %s: %w", part.prog, err)
		}
		prog := coll.DetachProgram(part.prog)
		coll.Close()
		progs = append(progs, prog)
		var l link.Link
		switch part.group {
		case "tp_btf":
			l, err = link.AttachTracing(link.TracingOptions{Program: prog})
		case "":
			l, err = link.AttachRawTracepoint(link.RawTracepointOptions{Name: part.event, Program: prog})
		default:
			l, err = link.Tracepoint(part.group, part.event, prog, nil)
		}
		if err != nil {
			undo()
			return fmt.Errorf("attaching %s: %w", part.prog, err)
		}
		links = append(links, l)
	}
	s.progs = append(s.progs, progs...)
	s.links = append(s.links, links...)
	return nil
}

const tracefsDir = "/sys/kernel/tracing"

// mountTracefs mounts tracefs at /sys/kernel/tracing unless it is there.
func mountTracefs() error {
	if _, err := os.Stat(tracefsDir + "/events"); err == nil {
		return nil
	}
	if err := unix.Mount("tracefs", tracefsDir, "tracefs", 0, ""); err != nil {
		return fmt.Errorf("mounting tracefs at %s (tracepoints need it): %w", tracefsDir, err)
	}
	if _, err := os.Stat(tracefsDir + "/events"); err != nil {
		return fmt.Errorf("tracefs mounted at %s has no events: %w", tracefsDir, err)
	}
	return nil
}

// fillPrefixes writes the sensitive prefixes into the LPM trie.
func fillPrefixes(m *ebpf.Map, prefixes []string) error {
	type key struct {
		PrefixLen uint32
		Data      [prefixLen]byte
	}
	for _, p := range prefixes {
		if p == "" || len(p) > prefixLen {
			return fmt.Errorf("sensitive prefix %q: want 1 to %d bytes", p, prefixLen)
		}
		k := key{PrefixLen: uint32(8 * len(p))}
		copy(k.Data[:], p)
		if err := m.Put(&k, uint8(1)); err != nil {
			return fmt.Errorf("adding sensitive prefix %q: %w", p, err)
		}
	}
	return nil
}

const prefixLen = 64

// newDecoder measures the wall-clock time of CLOCK_BOOTTIME zero and reads
// /proc/stat's btime; without btime, events have no process start time.
func newDecoder() (decoder, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return decoder{}, fmt.Errorf("reading CLOCK_BOOTTIME: %w", err)
	}
	d := decoder{bootTime: time.Now().Add(-time.Duration(ts.Nano()))}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		d.btime = parseBtime(b)
	}
	return d, nil
}

// parseBtime returns the "btime" line of /proc/stat as a time, or zero.
func parseBtime(b []byte) time.Time {
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && n > 0 {
				return time.Unix(n, 0)
			}
		}
	}
	return time.Time{}
}

// Run reads records until ctx is done, decodes them and sends them on out,
// blocking when out is full. It returns nil when ctx is done. Run must not
// be called concurrently.
func (s *Sensor) Run(ctx context.Context, out chan<- event.Event) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("sensor is closed")
	}
	r, err := ringbuf.NewReader(s.maps.Events)
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("opening ring buffer: %w", err)
	}
	s.reader = r
	s.mu.Unlock()

	stop := context.AfterFunc(ctx, func() { r.Close() })
	defer stop()
	defer r.Close()

	var rec ringbuf.Record
	for {
		if err := r.ReadInto(&rec); err != nil {
			if errors.Is(err, ringbuf.ErrClosed) || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading ring buffer: %w", err)
		}
		ev, err := s.dec.decode(rec.RawSample)
		if err != nil {
			s.decErrs.Add(1)
			continue
		}
		s.counts[int(ev.Type)%len(s.counts)].Add(1)
		select {
		case out <- ev:
		case <-ctx.Done():
			return nil
		}
	}
}

// Status reports each program.
func (s *Sensor) Status() []ProgramStatus { return slices.Clone(s.status) }

// Stats returns the counters.
func (s *Sensor) Stats() Stats {
	st := Stats{Events: map[event.Kind]uint64{}, DecodeErrors: s.decErrs.Load()}
	for _, k := range event.Kinds() {
		if n := s.counts[int(k)%len(s.counts)].Load(); n > 0 {
			st.Events[k] = n
		}
	}
	var perCPU []uint64
	if err := s.maps.Drops.Lookup(uint32(0), &perCPU); err == nil {
		for _, n := range perCPU {
			st.Drops += n
		}
	}
	return st
}

// Close detaches the programs and frees the maps.
func (s *Sensor) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.reader != nil {
		s.reader.Close()
	}
	s.mu.Unlock()
	var errs []error
	for _, l := range s.links {
		errs = append(errs, l.Close())
	}
	for _, p := range s.progs {
		errs = append(errs, p.Close())
	}
	errs = append(errs, s.maps.Close())
	s.links, s.progs = nil, nil
	return errors.Join(errs...)
}

// cgroupV2 is 1 when /sys/fs/cgroup is the cgroup v2 hierarchy: exec
// records then name the process's v2 cgroup, else its cpuset v1 cgroup.
func cgroupV2() uint32 {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return 1
	}
	return 0
}

// ExecPolicy is what the kernel does at exec in one mount namespace: it
// kills (SIGKILL, before the new image runs a single user instruction)
// the execs the policy forbids, and marks their process_exec events
// Blocked.
type ExecPolicy struct {
	// KillUpperLayer kills the exec of a file in an overlayfs upper
	// layer: a binary written or changed in the container since it
	// started (zero drift).
	KillUpperLayer bool
	// KillMemfd kills the exec of a memfd or of a deleted file.
	KillMemfd bool
	// AllowListed kills the exec of any executable not given with
	// AllowExec for the namespace: a protect-mode behaviour profile.
	AllowListed bool
}

// Policy flags, as sensor.c reads them.
const (
	polKillUpper = 1
	polKillMemfd = 2
	polAllowOnly = 4

	// exec_deny values
	execDenied  = 1
	execAllowed = 2
)

// SetExecPolicy sets the exec policy of the mount namespace with inode
// mntNS (event.Process.MntNS). A policy with nothing set clears it.
func (s *Sensor) SetExecPolicy(mntNS uint32, p ExecPolicy) error {
	var flags uint32
	if p.KillUpperLayer {
		flags |= polKillUpper
	}
	if p.KillMemfd {
		flags |= polKillMemfd
	}
	if p.AllowListed {
		flags |= polAllowOnly
	}
	if flags == 0 {
		return s.ClearExecPolicy(mntNS)
	}
	if err := s.maps.ExecPolicy.Put(mntNS, flags); err != nil {
		return fmt.Errorf("setting the exec policy of mount namespace %d: %w", mntNS, err)
	}
	return nil
}

// ClearExecPolicy removes the exec policy and every denied executable of
// the mount namespace mntNS. Clearing a namespace without one is not an
// error.
func (s *Sensor) ClearExecPolicy(mntNS uint32) error {
	if err := s.maps.ExecPolicy.Delete(mntNS); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("clearing the exec policy of mount namespace %d: %w", mntNS, err)
	}
	var (
		k    denyKey
		v    uint8
		keys []denyKey
	)
	it := s.maps.ExecDeny.Iterate()
	for it.Next(&k, &v) {
		if k.MntNS == mntNS {
			keys = append(keys, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("listing denied executables of mount namespace %d: %w", mntNS, err)
	}
	for _, k := range keys {
		if err := s.maps.ExecDeny.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("clearing denied executable %d of mount namespace %d: %w", k.Ino, mntNS, err)
		}
	}
	return nil
}

// denyKey is struct deny_key.
type denyKey struct {
	MntNS uint32
	_     uint32
	Ino   uint64
}

// DenyExec makes the kernel kill every exec of the executable with inode
// ino (event.Process.ExeInode) in the mount namespace mntNS. Inode
// numbers are per file system: a file with the same number on another
// file system of that namespace is killed too.
func (s *Sensor) DenyExec(mntNS uint32, ino uint64) error {
	if err := s.maps.ExecDeny.Put(denyKey{MntNS: mntNS, Ino: ino}, uint8(execDenied)); err != nil {
		return fmt.Errorf("denying executable inode %d in mount namespace %d: %w", ino, mntNS, err)
	}
	return nil
}

// AllowExec lets the executable with inode ino run in the mount namespace
// mntNS when its policy is AllowListed. Denying wins over allowing.
func (s *Sensor) AllowExec(mntNS uint32, ino uint64) error {
	k := denyKey{MntNS: mntNS, Ino: ino}
	var v uint8
	if err := s.maps.ExecDeny.Lookup(k, &v); err == nil && v == execDenied {
		return nil
	}
	if err := s.maps.ExecDeny.Put(k, uint8(execAllowed)); err != nil {
		return fmt.Errorf("allowing executable inode %d in mount namespace %d: %w", ino, mntNS, err)
	}
	return nil
}
