package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/fim"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/sensor"
)

// Detection configures what the agent decides and does about events.
type Detection struct {
	// Rules are evaluated on every event; nil evaluates none.
	Rules *rules.Ruleset
	// Profiles learn and check behaviour per workload class; nil disables.
	Profiles *profile.Store
	// Responder carries out Policy's actions; nil takes none.
	Responder *response.Responder
	Policy    response.Policy
	// Window aggregates repeats of an alert (same rule, workload and
	// lineage); 0 writes every occurrence.
	Window time.Duration
	// Resolve resolves the DNS names the rules compare connections with
	// (fd.sip.name, ...); nil uses the host's resolver. WatchNames adds
	// names to those the rules reference.
	Resolve    Resolver
	WatchNames []string
	// FIM, when set, reports changes to watched paths as they happen
	// (fim.go); its alerts bypass Window, it debounces its own.
	FIM    *fim.Realtime
	Logger *slog.Logger
}

// Detector turns events into alerts and responses. Process is called from
// one goroutine; SetRules may be called from any.
type Detector struct {
	rules   atomic.Pointer[rules.Ruleset]
	prof    *profile.Store
	resp    *response.Responder
	policy  response.Policy
	agg     *alert.Aggregator
	log     *slog.Logger
	pending []*alert.Alert
	// recent remembers container-wide actions already taken, so a burst
	// of alerts freezes a container once.
	recent map[string]time.Time
	dns    *dnsWatch
	watch  []string // Detection.WatchNames
	// enf puts exec policies in the kernel for protect-mode classes; ns
	// holds each container mount namespace seen.
	enf execEnforcer
	ns  map[uint32]*nsState
	// hostNS are mount namespaces never to police: the agent's own and
	// init's. runc's setup runs in the container's cgroup before it has
	// left the host's mount namespace, so container events can carry it.
	hostNS map[uint32]bool
	// modesChanged is set by the control API after a mode change or an
	// import; the event goroutine then re-applies the exec policies.
	modesChanged atomic.Bool
	fim          *fim.Realtime
}

// execEnforcer is the sensor's in-kernel exec policy.
type execEnforcer interface {
	SetExecPolicy(mntNS uint32, p sensor.ExecPolicy) error
	AllowExec(mntNS uint32, ino uint64) error
	ClearExecPolicy(mntNS uint32) error
}

// NewDetector returns a detector for d.
func NewDetector(d Detection) *Detector {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	x := &Detector{prof: d.Profiles, resp: d.Responder, policy: d.Policy,
		agg: alert.NewAggregator(d.Window, 0), log: d.Logger, recent: make(map[string]time.Time),
		ns: make(map[uint32]*nsState), hostNS: hostMountNamespaces("/proc")}
	x.watch, x.fim = d.WatchNames, d.FIM
	x.dns = newDNSWatch(nil, d.Resolve, time.Minute)
	if d.Rules != nil {
		x.rules.Store(d.Rules)
	}
	x.dns.setNames(watchedNames(d.WatchNames, d.Rules))
	return x
}

// watchedNames are the extra names and those rs references, sorted.
func watchedNames(extra []string, rs *rules.Ruleset) []string {
	names := slices.Clone(extra)
	if rs != nil {
		names = append(names, rs.WatchedNames()...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Start resolves the watched DNS names once (for at most a few seconds)
// and keeps them fresh until ctx is done.
func (d *Detector) Start(ctx context.Context) {
	d.dns.refresh(ctx, 3*time.Second)
	go d.dns.run(ctx)
}

// SetRules replaces the rules, for a reload; the caller keeps the old ones
// when loading the new ones failed. Names the new rules watch are resolved
// from the next refresh (within a minute).
func (d *Detector) SetRules(rs *rules.Ruleset) {
	d.rules.Store(rs)
	d.dns.setNames(watchedNames(d.watch, rs))
}

// Process evaluates e and calls emit for each alert to write now,
// including aggregate lines of windows that closed.
func (d *Detector) Process(ctx context.Context, e *event.Event, emit func(*alert.Alert)) {
	d.pending = d.pending[:0]
	d.dns.fill(e)
	if d.modesChanged.Load() && d.modesChanged.Swap(false) {
		d.refreshExecPolicies()
	}
	d.track(e)
	if rs := d.rules.Load(); rs != nil {
		rs.Match(e, func(r *rules.Rule) {
			d.pending = append(d.pending, fromRule(r, e))
		})
	}
	if d.prof != nil && !runtimeProcess(&e.Process) {
		pe := e
		if e.Parent != nil && runtimeProcess(e.Parent) {
			// Started by the runtime (a container's entrypoint, a docker
			// exec): no parent → child pair to learn or check.
			c := *e
			c.Parent = nil
			pe = &c
		}
		if devs := d.prof.Observe(pe); len(devs) > 0 {
			d.pending = append(d.pending, fromDeviations(devs, e))
		}
	}
	d.observeFIM(ctx, e, emit)
	for _, a := range d.pending {
		d.respond(ctx, a)
		ok, due := d.agg.Add(a)
		for i := range due {
			emit(&due[i])
		}
		if ok {
			emit(a)
		}
	}
	if len(d.pending) == 0 && e.Type == event.ProcessExit {
		// Exits are frequent and cheap to piggyback on: close windows
		// even when nothing else fires.
		now := e.Time
		for _, a := range d.agg.Flush(now) {
			emit(&a)
		}
	}
}

// Tick closes aggregation windows that ended by now, for quiet periods.
func (d *Detector) Tick(now time.Time, emit func(*alert.Alert)) {
	d.refreshExecPolicies()
	for _, a := range d.agg.Flush(now) {
		emit(&a)
	}
	if d.fim != nil {
		d.fim.Flush(now, emit)
	}
}

// nsState is what the detector knows of one container mount namespace.
type nsState struct {
	class string
	// pid is a live process of the namespace, through whose root the
	// learned executables are found; 0 when it exited.
	pid int32
	// set says an exec policy is in the kernel for it.
	set bool
}

// track notes the mount namespace of each container seen, so that the
// in-kernel exec policy can be set for it when its class is protected,
// and forgets it when the container's init exits: namespaces die with
// their last process and their inode numbers are reused, so a stale
// policy must not outlive its container.
func (d *Detector) track(e *event.Event) {
	if d.enf == nil || d.prof == nil || e.Process.MntNS == 0 {
		return
	}
	ns := e.Process.MntNS
	st := d.ns[ns]
	if e.Type == event.ProcessExit {
		switch {
		case st == nil:
		case e.Process.VPID == 1:
			d.forget(ns, st)
		case e.Process.PID == st.pid:
			st.pid = 0
		}
		return
	}
	if e.Workload == nil || e.Workload.ContainerID == "" || d.hostNS[ns] || strings.HasPrefix(e.Process.Name, "runc") {
		return
	}
	if st == nil {
		if len(d.ns) >= 8192 {
			for k, v := range d.ns {
				if !v.set {
					delete(d.ns, k)
				}
			}
		}
		st = &nsState{class: profile.ClassOf(e.Workload), pid: e.Process.PID}
		d.ns[ns] = st
		d.applyExecPolicy(ns, st)
		return
	}
	if st.pid == 0 {
		st.pid = e.Process.PID
		if st.set {
			d.applyExecPolicy(ns, st) // the allow list can be resolved again
		}
	}
}

// runtimeProcess reports whether p is the container runtime's
// own (runc's init stages, the shim, runc's self-re-exec through
// /proc/self/exe, dockerd's libnetwork-setkey hook): they run in the
// container's cgroup while they set it up or join it, but are not the
// workload's behaviour. Profiles neither learn them nor, in protect mode,
// block them — blocking runc's init would break every docker exec.
func runtimeProcess(p *event.Process) bool {
	if strings.HasPrefix(p.Name, "runc") || strings.HasPrefix(p.Name, "containerd-shim") ||
		strings.HasPrefix(p.Exe, "/proc/") || filepath.Base(p.Exe) == "runc" {
		return true
	}
	if len(p.Args) > 0 {
		switch filepath.Base(p.Args[0]) {
		case "runc", "libnetwork-setkey":
			return true
		}
	}
	return false
}

// inMountNamespace reports whether pid is (still) in mount namespace ns.
func inMountNamespace(pid int32, ns uint32) bool {
	var st unix.Stat_t
	return unix.Stat(filepath.Join("/proc", strconv.Itoa(int(pid)), "ns", "mnt"), &st) == nil && uint32(st.Ino) == ns
}

// hostMountNamespaces returns the mount namespaces of the agent and of
// init, those it can read.
func hostMountNamespaces(proc string) map[uint32]bool {
	m := map[uint32]bool{}
	for _, p := range []string{"self", "1"} {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(proc, p, "ns", "mnt"), &st) == nil {
			m[uint32(st.Ino)] = true
		}
	}
	return m
}

func (d *Detector) forget(ns uint32, st *nsState) {
	if st.set {
		if err := d.enf.ClearExecPolicy(ns); err != nil {
			d.log.Warn("clearing the in-kernel exec policy of an exited container", "mnt_ns", ns, "err", err)
		}
	}
	delete(d.ns, ns)
}

// applyExecPolicy puts ns's exec policy in the kernel, or clears it. In
// protect mode only the class's learned executables may run: each is
// found in the container (through a live process's root) and its inode
// allowed, and the kernel kills any other exec before it runs; with zero
// drift, binaries from the overlayfs upper layer and memfds are killed
// even when learned. When no learned executable can be found the allow
// list is not set (it would kill everything) and deviations are left to
// the response policy.
func (d *Detector) applyExecPolicy(ns uint32, st *nsState) {
	p, ok := d.prof.Get(st.class)
	if !ok || p.Mode != profile.Protect {
		if st.set {
			if err := d.enf.ClearExecPolicy(ns); err != nil {
				d.log.Warn("clearing the in-kernel exec policy", "class", st.class, "mnt_ns", ns, "err", err)
				return
			}
			st.set = false
			d.log.Info("in-kernel exec policy cleared", "class", st.class, "mnt_ns", ns)
		}
		return
	}
	pol := sensor.ExecPolicy{KillUpperLayer: p.ZeroDrift, KillMemfd: p.ZeroDrift, AllowListed: true}
	allowed := 0
	if st.pid != 0 && !inMountNamespace(st.pid, ns) {
		st.pid = 0 // gone, and its PID perhaps reused by another process
	}
	if st.pid != 0 {
		root := filepath.Join("/proc", strconv.Itoa(int(st.pid)), "root")
		for _, x := range p.Executables {
			// Paths through /proc and /dev (runc's /proc/self/exe, a
			// /dev/fd/N) name nothing in the container's image.
			if !filepath.IsAbs(x.Path) || strings.HasPrefix(x.Path, "/proc/") || strings.HasPrefix(x.Path, "/dev/") {
				continue
			}
			var fs unix.Stat_t
			if unix.Stat(filepath.Join(root, x.Path), &fs) != nil || fs.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			if err := d.enf.AllowExec(ns, fs.Ino); err == nil {
				allowed++
			}
		}
	}
	if allowed == 0 {
		pol.AllowListed = false
	}
	if err := d.enf.SetExecPolicy(ns, pol); err != nil {
		d.log.Warn("in-kernel exec policy", "class", st.class, "mnt_ns", ns, "err", err)
		return
	}
	st.set = pol != (sensor.ExecPolicy{})
	d.log.Info("in-kernel exec policy", "class", st.class, "mnt_ns", ns, "allow_listed", allowed, "kill_drift", p.ZeroDrift)
}

// refreshExecPolicies re-applies the policies after a mode change or an
// import, and every minute.
func (d *Detector) refreshExecPolicies() {
	if d.enf == nil || d.prof == nil {
		return
	}
	for ns, st := range d.ns {
		d.applyExecPolicy(ns, st)
	}
}

// Save writes the profiles, if any, logging a failure.
func (d *Detector) Save(log *slog.Logger) {
	if d.prof == nil {
		return
	}
	if err := d.prof.Save(); err != nil {
		log.Warn("saving behaviour profiles", "err", err)
	}
}

// Close writes the aggregates of every open window.
func (d *Detector) Close(emit func(*alert.Alert)) {
	for _, a := range d.agg.Close() {
		emit(&a)
	}
	if d.fim != nil {
		d.fim.Close(emit)
	}
}

func fromRule(r *rules.Rule, e *event.Event) *alert.Alert {
	ev := *e
	return &alert.Alert{
		Time: e.Time, Type: "alert", Rule: r.Name, Priority: r.Priority.String(), Source: alert.SourceRules,
		Tags: r.Tags, Tactics: r.MITRE.Tactics, Techniques: r.MITRE.Techniques,
		Output: r.Render(e), Event: &ev,
	}
}

// Profile deviations as alerts: the rule name says what deviated, the
// priority says whether it was blocked.
var deviationRules = map[string]struct{ name, tactic, technique string }{
	"exec":     {"Profile deviation: unexpected executable", "TA0002 Execution", "T1059"},
	"pair":     {"Profile deviation: unexpected child process", "TA0002 Execution", "T1059"},
	"listen":   {"Profile deviation: unexpected listening port", "TA0011 Command and Control", "T1571"},
	"outbound": {"Profile deviation: unexpected outbound connection", "TA0011 Command and Control", "T1071"},
	"write":    {"Profile deviation: unexpected file write", "TA0003 Persistence", "T1546"},
	"drift":    {"Profile deviation: binary not in the image", "TA0003 Persistence", "T1525"},
}

// deviationOrder ranks deviation kinds: an event's alert is named after
// its most telling one (an unknown executable implies an unknown pair).
var deviationOrder = []string{"drift", "exec", "pair", "listen", "outbound", "write"}

// fromDeviations makes one alert of an event's deviations.
func fromDeviations(devs []profile.Deviation, e *event.Event) *alert.Alert {
	ev := *e
	slices.SortStableFunc(devs, func(a, b profile.Deviation) int {
		return rank(a.Kind) - rank(b.Kind)
	})
	first := devs[0]
	r, ok := deviationRules[first.Kind]
	if !ok {
		r.name = "Profile deviation: " + first.Kind
	}
	prio := "WARNING"
	if first.Block {
		prio = "CRITICAL"
	}
	tags := []string{"profile", "mode_" + string(first.Mode)}
	details := make([]string, 0, len(devs))
	for _, dv := range devs {
		tags = append(tags, "profile_"+dv.Kind)
		details = append(details, dv.Detail)
	}
	a := &alert.Alert{
		Time: e.Time, Type: "alert", Rule: r.name, Priority: prio, Source: alert.SourceProfile,
		Tags:   tags,
		Output: fmt.Sprintf("%s | class=%s mode=%s %s", r.name, first.Class, first.Mode, strings.Join(details, "; ")),
		Event:  &ev,
	}
	if r.tactic != "" {
		a.Tactics, a.Techniques = []string{r.tactic}, []string{r.technique}
	}
	return a
}

func rank(kind string) int {
	if i := slices.Index(deviationOrder, kind); i >= 0 {
		return i
	}
	return len(deviationOrder)
}

// respond applies the policy to a and records the outcomes on it.
func (d *Detector) respond(ctx context.Context, a *alert.Alert) {
	if d.resp == nil {
		return
	}
	class := ""
	w := a.Event.Workload
	if w != nil {
		class = profile.ClassOf(w)
	}
	block := a.Source == alert.SourceProfile && a.Priority == "CRITICAL"
	actions, enforce := d.policy.Decide(class, a.Rule, a.Priority, a.Tags, block)
	if len(actions) == 0 {
		return
	}
	t := response.Target{PID: a.Event.Process.PID, StartTime: a.Event.Process.StartTime, Class: class}
	if w != nil {
		t.ContainerID, t.Runtime = w.ContainerID, w.Runtime
	}
	now := a.Time
	for _, act := range actions {
		if act == response.Kill && a.Event.Blocked {
			// The kernel's exec policy killed it before it ran.
			a.Responses = append(a.Responses, "kill: done in the kernel at exec")
			continue
		}
		if act != response.Kill && t.ContainerID == "" {
			a.Responses = append(a.Responses, string(act)+": skipped (not a container)")
			continue
		}
		if act != response.Kill {
			k := string(act) + "/" + t.ContainerID
			if last, ok := d.recent[k]; ok && now.Sub(last) < time.Minute {
				a.Responses = append(a.Responses, string(act)+": already done")
				continue
			}
			d.recent[k] = now
			if len(d.recent) > 4096 {
				clear(d.recent)
			}
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		rec := d.resp.Do(rctx, act, t, a.Rule, enforce, true, "agent")
		cancel()
		s := string(act) + ": " + rec.Outcome
		if rec.Error != "" {
			s += " (" + rec.Error + ")"
		}
		a.Responses = append(a.Responses, s)
	}
}

// exeHasher hashes executables for profiles, once per inode.
type exeHasher struct {
	mu   sync.Mutex
	proc string
	max  int
	m    map[uint64]string
}

// ExeHash returns a profile.Options.Hash that hashes the executable of an
// event's process through proc (normally "/proc"), once per inode.
func ExeHash(proc string) func(*event.Event) (string, error) {
	h := &exeHasher{proc: proc, max: 8192, m: make(map[uint64]string)}
	return h.Hash
}

// Hash is the sha256 of the process's executable, read through
// /proc/PID/exe so that a container's binary is hashed, not the host's. A
// process that already exited (ls, cat: most execs are short) is hashed
// through its parent's root instead — the same container — when the file
// there is still the executable's inode.
func (h *exeHasher) Hash(e *event.Event) (string, error) {
	ino := e.Process.ExeInode
	h.mu.Lock()
	if s, ok := h.m[ino]; ok && ino != 0 {
		h.mu.Unlock()
		return s, nil
	}
	h.mu.Unlock()
	f, err := os.Open(h.proc + "/" + strconv.Itoa(int(e.Process.PID)) + "/exe")
	if err != nil && e.Parent != nil && ino != 0 && filepath.IsAbs(e.Process.Exe) {
		f, err = h.openVia(e.Parent.PID, e.Process.Exe, ino)
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	d := sha256.New()
	if _, err := io.Copy(d, f); err != nil {
		return "", fmt.Errorf("hashing the executable of pid %d: %w", e.Process.PID, err)
	}
	s := hex.EncodeToString(d.Sum(nil))
	if ino != 0 {
		h.mu.Lock()
		if len(h.m) >= h.max {
			clear(h.m)
		}
		h.m[ino] = s
		h.mu.Unlock()
	}
	return s, nil
}

// openVia opens path inside pid's root, if it is the inode ino.
func (h *exeHasher) openVia(pid int32, path string, ino uint64) (*os.File, error) {
	f, err := os.Open(filepath.Join(h.proc, strconv.Itoa(int(pid)), "root", path))
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Ino != ino {
		f.Close()
		return nil, fmt.Errorf("%s in the root of pid %d is not the executable (inode %d)", path, pid, ino)
	}
	return f, nil
}
