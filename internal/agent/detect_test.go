package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/sensor"
)

var testWorkload = &event.Workload{Host: "node", ContainerID: strings.Repeat("ab", 32), Image: "shop/web:1.0", ImageDigest: "sha256:1111"}

func shadowRead(t time.Time) *event.Event {
	return &event.Event{
		Time: t, Type: event.FileOpen, Syscall: "openat", Ret: 3,
		Process:  event.Process{PID: 42, Name: "cat", Exe: "/usr/bin/cat", Args: []string{"cat", "/etc/shadow"}, MntNS: 4026532000},
		Parent:   &event.Process{PID: 41, Name: "sh", Exe: "/bin/sh"},
		File:     &event.File{Path: "/etc/shadow"},
		Workload: testWorkload,
	}
}

func TestDetectorRulesAndAggregation(t *testing.T) {
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Rules: rs, Window: time.Minute})
	var got []*alert.Alert
	emit := func(a *alert.Alert) { c := *a; got = append(got, &c) }
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 5 {
		d.Process(t.Context(), shadowRead(t0.Add(time.Duration(i)*time.Second)), emit)
	}
	if len(got) != 1 {
		t.Fatalf("5 identical reads gave %d alert lines, want 1 now and the rest aggregated: %+v", len(got), got)
	}
	a := got[0]
	if a.Rule != "Read sensitive file untrusted" || a.Priority != "WARNING" || a.Type != "alert" || a.Count != 1 {
		t.Errorf("alert = {%q %q %q count %d}", a.Rule, a.Priority, a.Type, a.Count)
	}
	if len(a.Techniques) == 0 || a.Techniques[0] != "T1555" || len(a.Tactics) == 0 || !strings.Contains(a.Tactics[0], "Credential Access") {
		t.Errorf("MITRE = %q %q, want T1555 / Credential Access", a.Tactics, a.Techniques)
	}
	if !strings.Contains(a.Output, "/etc/shadow") || a.Event == nil || a.Event.Workload.ContainerID != testWorkload.ContainerID {
		t.Errorf("output %q / event %+v", a.Output, a.Event)
	}
	d.Tick(t0.Add(2*time.Minute), emit)
	if len(got) != 2 || !got[1].Aggregate || got[1].Count != 4 {
		t.Fatalf("after the window: %d lines, last %+v; want an aggregate of 4", len(got), got[len(got)-1])
	}
}

// fakeEnforcer records the exec policies the detector sets.
type fakeEnforcer struct {
	mu    sync.Mutex
	set   map[uint32]sensor.ExecPolicy
	allow map[uint32][]uint64
}

func (f *fakeEnforcer) AllowExec(ns uint32, ino uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.allow == nil {
		f.allow = map[uint32][]uint64{}
	}
	f.allow[ns] = append(f.allow[ns], ino)
	return nil
}

func (f *fakeEnforcer) SetExecPolicy(ns uint32, p sensor.ExecPolicy) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set[ns] = p
	return nil
}

func (f *fakeEnforcer) ClearExecPolicy(ns uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, ns)
	delete(f.allow, ns)
	return nil
}

func TestDetectorProfilesAndExecPolicy(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ps, err := profile.New(profile.Options{Learn: time.Minute, Now: func() time.Time { return now }, ZeroDrift: true})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Profiles: ps})
	enf := &fakeEnforcer{set: map[uint32]sensor.ExecPolicy{}}
	d.enf = enf
	var got []*alert.Alert
	emit := func(a *alert.Alert) { got = append(got, a) }
	exec := func(exe string) *event.Event {
		return &event.Event{Time: now, Type: event.ProcessExec, Syscall: "execve",
			Process:  event.Process{PID: 7, Name: exe[strings.LastIndexByte(exe, '/')+1:], Exe: exe, MntNS: 4026532001},
			Parent:   &event.Process{PID: 1, Name: "sh", Exe: "/bin/sh"},
			Workload: testWorkload}
	}
	d.Process(t.Context(), exec("/bin/ls"), emit) // learned
	now = now.Add(2 * time.Minute)                // promoted to monitor
	d.Process(t.Context(), exec("/usr/bin/id"), emit)
	if len(got) != 1 || got[0].Source != alert.SourceProfile || got[0].Priority != "WARNING" ||
		!strings.Contains(got[0].Rule, "unexpected executable") {
		for _, a := range got {
			t.Logf("alert %s %s %s", a.Rule, a.Priority, a.Output)
		}
		t.Fatalf("monitor-mode deviation: %d alerts", len(got))
	}
	if len(enf.set) != 0 {
		t.Fatalf("exec policy set in monitor mode: %v", enf.set)
	}
	class := profile.ClassOf(testWorkload)
	var buf bytes.Buffer
	if err := ps.Export(&buf, class); err != nil {
		t.Fatal(err)
	}
	if err := ps.SetMode(class, profile.Protect); err != nil {
		t.Fatal(err)
	}
	d.modesChanged.Store(true)
	d.Process(t.Context(), exec("/usr/bin/whoami"), emit)
	if len(got) != 2 || got[1].Priority != "CRITICAL" {
		t.Fatalf("protect-mode deviation: %+v", got[len(got)-1])
	}
	if p, ok := enf.set[4026532001]; !ok || !p.KillUpperLayer || !p.KillMemfd {
		t.Errorf("protect + zero drift: kernel policy %v, want upper-layer and memfd kills for the container's mount namespace", enf.set)
	}
	if err := ps.SetMode(class, profile.Monitor); err != nil {
		t.Fatal(err)
	}
	d.modesChanged.Store(true)
	d.Process(context.Background(), exec("/bin/ls"), emit)
	if len(enf.set) != 0 {
		t.Errorf("back in monitor: kernel policy still %v", enf.set)
	}
}

// TestExeHashGoneProcess hashes the executable of a process that has
// exited through its parent's root, and refuses a file that is not the
// executable's inode.
func TestExeHashGoneProcess(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(exe, &st); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	hash := ExeHash("/proc")
	gone := &event.Event{Type: event.ProcessExec,
		Process: event.Process{PID: 1 << 30, Exe: exe, ExeInode: st.Ino}, // no such pid
		Parent:  &event.Process{PID: int32(os.Getpid())}}
	got, err := hash(gone)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("hash of a gone process's exe through its parent = %q, %v; want %x", got, err, sum)
	}
	other := *gone
	other.Process.ExeInode = st.Ino + 1
	other.Process.Exe = exe // same path, another inode: not the executable
	if got, err := ExeHash("/proc")(&other); err == nil {
		t.Errorf("a file that is not the executable's inode was hashed: %q", got)
	}
}

// TestDetectorAllowList: in protect mode the learned executables, found
// through a live process of the container, are allow-listed in the kernel;
// the policy goes when the container's init exits.
func TestDetectorAllowList(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(self, &st); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	ps, err := profile.New(profile.Options{Learn: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Profiles: ps})
	enf := &fakeEnforcer{set: map[uint32]sensor.ExecPolicy{}}
	d.enf = enf
	// The "container" is this test's own mount namespace (its process must
	// really be in it for the learned paths to be found), so the guard
	// that never polices the agent's own namespace is lifted here.
	var mnt unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &mnt); err != nil {
		t.Fatal(err)
	}
	ns := uint32(mnt.Ino)
	d.hostNS = map[uint32]bool{}
	ev := func(typ event.Kind, pid, vpid int32) *event.Event {
		return &event.Event{Time: now, Type: typ,
			Process:  event.Process{PID: pid, VPID: vpid, Name: "x", Exe: self, ExeInode: st.Ino, MntNS: ns},
			Parent:   &event.Process{PID: 1, Name: "sh", Exe: "/bin/sh"},
			Workload: testWorkload}
	}
	d.Process(t.Context(), ev(event.ProcessExec, int32(os.Getpid()), 1), func(*alert.Alert) {}) // learned
	if err := ps.SetMode(profile.ClassOf(testWorkload), profile.Protect); err != nil {
		t.Fatal(err)
	}
	d.modesChanged.Store(true)
	d.Process(t.Context(), ev(event.FileOpen, int32(os.Getpid()), 1), func(*alert.Alert) {})
	if p := enf.set[ns]; !p.AllowListed || p.KillUpperLayer {
		t.Fatalf("protect without zero drift: policy %+v, want allow-listed only", p)
	}
	if got := enf.allow[ns]; len(got) != 1 || got[0] != st.Ino {
		t.Fatalf("allowed inodes %v, want the learned executable's %d", got, st.Ino)
	}
	// Another process of the container exits: nothing changes.
	d.Process(t.Context(), ev(event.ProcessExit, 99999, 7), func(*alert.Alert) {})
	if _, ok := enf.set[ns]; !ok {
		t.Fatal("policy cleared when a non-init process exited")
	}
	// The container's init exits: the namespace dies, its policy goes.
	d.Process(t.Context(), ev(event.ProcessExit, 99998, 1), func(*alert.Alert) {})
	if _, ok := enf.set[ns]; ok || len(d.ns) != 0 {
		t.Fatalf("after the container's init exited: policy %v, tracked %d namespaces", enf.set, len(d.ns))
	}
}

// TestDetectorNeverPolicesHostNamespace: an event of a container that
// carries the agent's own mount namespace (runc's setup does) never maps
// that namespace to the container's class.
func TestDetectorNeverPolicesHostNamespace(t *testing.T) {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/mnt", &self); err != nil {
		t.Fatal(err)
	}
	ps, err := profile.New(profile.Options{Learn: -1})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Profiles: ps})
	d.enf = &fakeEnforcer{set: map[uint32]sensor.ExecPolicy{}}
	for _, name := range []string{"runc:[2:INIT]", "sh"} {
		d.Process(t.Context(), &event.Event{Type: event.ProcessExec,
			Process:  event.Process{PID: int32(os.Getpid()), Name: name, Exe: "/bin/sh", MntNS: uint32(self.Ino)},
			Workload: testWorkload}, func(*alert.Alert) {})
	}
	if len(d.ns) != 0 {
		t.Fatalf("the agent's own mount namespace was mapped to a container class: %v", d.ns)
	}
	d.Process(t.Context(), &event.Event{Type: event.ProcessExec,
		Process:  event.Process{PID: int32(os.Getpid()), Name: "runc:[2:INIT]", Exe: "/bin/sh", MntNS: 4026532003},
		Workload: testWorkload}, func(*alert.Alert) {})
	if len(d.ns) != 0 {
		t.Fatalf("runc's own event mapped a namespace: %v", d.ns)
	}
}

// TestDetectorAllowListStalePID: the process the allow list is resolved
// through must still be in the namespace; a PID that left it (or was
// reused) is not used, and no allow list is set rather than a wrong one.
func TestDetectorAllowListStalePID(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	ps, err := profile.New(profile.Options{Learn: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Profiles: ps})
	enf := &fakeEnforcer{set: map[uint32]sensor.ExecPolicy{}}
	d.enf = enf
	const ns = 4026532099 // not this process's namespace
	d.Process(t.Context(), &event.Event{Time: now, Type: event.ProcessExec,
		Process:  event.Process{PID: int32(os.Getpid()), Exe: self, MntNS: ns},
		Workload: testWorkload}, func(*alert.Alert) {})
	if err := ps.SetMode(profile.ClassOf(testWorkload), profile.Protect); err != nil {
		t.Fatal(err)
	}
	d.refreshExecPolicies()
	if p := enf.set[ns]; p.AllowListed || len(enf.allow[ns]) != 0 {
		t.Errorf("allow list resolved through a process outside the namespace: policy %+v, allowed %v", p, enf.allow[ns])
	}
}

// TestDetectorIgnoresRuntimeForProfiles: the container runtime's own
// processes, which run in the container's cgroup while they set it up or
// join it, are neither learned nor blocked.
func TestDetectorIgnoresRuntimeForProfiles(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	ps, err := profile.New(profile.Options{Learn: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	d := NewDetector(Detection{Profiles: ps})
	var got []*alert.Alert
	emit := func(a *alert.Alert) { got = append(got, a) }
	ev := func(name, exe string, args ...string) *event.Event {
		return &event.Event{Time: now, Type: event.ProcessExec,
			Process:  event.Process{PID: 9, Name: name, Exe: exe, Args: args},
			Parent:   &event.Process{PID: 1, Name: "containerd-shim", Exe: "/usr/bin/containerd-shim-runc-v2"},
			Workload: testWorkload}
	}
	runtime := []*event.Event{
		ev("runc:[2:INIT]", "/usr/sbin/runc", "runc", "init"),
		ev("exe", "/proc/self/exe", "runc", "init"),
		ev("exe", "/proc/4267/exe", "libnetwork-setkey", "-exec-root=/var/run/docker"),
		ev("runc", "/usr/sbin/runc", "runc", "start"),
	}
	d.Process(t.Context(), ev("sh", "/usr/bin/sh", "sh"), emit) // the workload, learned
	for _, e := range runtime {
		d.Process(t.Context(), e, emit)
	}
	p, _ := ps.Get(profile.ClassOf(testWorkload))
	if len(p.Executables) != 1 || p.Executables[0].Path != "/usr/bin/sh" {
		t.Fatalf("learned %+v, want only the workload's /usr/bin/sh", p.Executables)
	}
	now = now.Add(2 * time.Minute)
	if err := ps.SetMode(profile.ClassOf(testWorkload), profile.Protect); err != nil {
		t.Fatal(err)
	}
	for _, e := range runtime {
		d.Process(t.Context(), e, emit)
	}
	if len(got) != 0 {
		t.Errorf("runtime processes raised %d profile alerts in protect mode: %s", len(got), got[0].Output)
	}
	// A learned binary started by the runtime (docker exec: runc's init is
	// the parent) is no pair deviation either.
	execd := ev("sh", "/usr/bin/sh", "sh", "-c", "true")
	execd.Parent = &event.Process{PID: 8, Name: "runc:[2:INIT]", Exe: "/usr/sbin/runc", Args: []string{"runc", "init"}}
	d.Process(t.Context(), execd, emit)
	if len(got) != 0 {
		t.Errorf("docker exec of a learned binary in protect mode: %s", got[0].Output)
	}
}
