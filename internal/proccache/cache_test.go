package proccache

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
)

func TestSeedFindsSelfAndAncestry(t *testing.T) {
	c := New(Options{})
	if err := c.Seed(); err != nil {
		t.Fatal(err)
	}
	self := int32(os.Getpid())
	p, ok := c.Get(self)
	if !ok {
		t.Fatalf("Seed did not find the test process %d (%d cached)", self, c.Len())
	}
	exe, _ := os.Executable()
	if p.Exe != exe || p.PPID != int32(os.Getppid()) || p.StartTime.IsZero() {
		t.Errorf("self = %+v, want exe %s, ppid %d and a start time", p, exe, os.Getppid())
	}
	if d := time.Since(p.StartTime); d < 0 || d > time.Hour {
		t.Errorf("start time %v is %v ago", p.StartTime, d)
	}
	// Walk the chain to pid 1 from the cache alone.
	pid, steps := self, 0
	for pid != 1 {
		q, ok := c.Get(pid)
		if !ok {
			t.Fatalf("ancestor %d of the test process is not cached", pid)
		}
		if pid, steps = q.PPID, steps+1; steps > 64 || pid <= 0 {
			t.Fatalf("chain from %d does not reach pid 1 (stopped at %d)", self, pid)
		}
	}
	e := &event.Event{Type: event.FileOpen, Process: event.Process{PID: self}}
	c.Enrich(e)
	if e.Parent == nil || e.Parent.PID != int32(os.Getppid()) {
		t.Fatalf("Parent = %+v", e.Parent)
	}
	if len(e.Ancestors) > 0 && e.Ancestors[len(e.Ancestors)-1].PID != 1 && e.Parent.PID != 1 {
		t.Errorf("ancestors end at %d, want 1", e.Ancestors[len(e.Ancestors)-1].PID)
	}
	if e.Process.Exe != exe || len(e.Process.Args) == 0 {
		t.Errorf("Enrich did not fill the actor: %+v", e.Process)
	}
}

// TestEnrichRealTree runs sh → sh → sleep and enriches an event of the
// sleep with a cache that has never seen any of them.
func TestEnrichRealTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c "sleep 30; true"; true`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	outer := int32(cmd.Process.Pid)
	var inner, sleep int32
	deadline := time.Now().Add(10 * time.Second)
	for sleep == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the process tree did not appear")
		}
		time.Sleep(10 * time.Millisecond)
		inner = childOf(t, outer)
		if inner != 0 {
			sleep = childOf(t, inner)
		}
	}
	t.Cleanup(func() {
		syscallKill(sleep)
		syscallKill(inner)
	})
	c := New(Options{})
	e := &event.Event{Type: event.FileOpen, Process: event.Process{PID: sleep}}
	c.Enrich(e)
	if e.Process.Name != "sleep" || e.Process.PPID != inner {
		t.Errorf("Process = %+v, want sleep with ppid %d", e.Process, inner)
	}
	if e.Parent == nil || e.Parent.PID != inner || e.Parent.Name != "sh" {
		t.Fatalf("Parent = %+v, want sh %d", e.Parent, inner)
	}
	if len(e.Ancestors) < 3 {
		t.Fatalf("Ancestors = %+v, want outer sh, the test process and more", e.Ancestors)
	}
	got := e.Ancestors[:2]
	exe, _ := os.Executable()
	want := []event.Ancestor{
		{PID: outer, Name: "sh", Exe: got[0].Exe, Args: []string{"sh", "-c", `sh -c "sleep 30; true"; true`}},
		{PID: int32(os.Getpid()), Name: got[1].Name, Exe: exe, Args: os.Args},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Ancestors (-want +got):\n%s", diff)
	}
	if last := e.Ancestors[len(e.Ancestors)-1]; last.PID != 1 {
		t.Errorf("ancestors end at %d, want 1", last.PID)
	}
}

func childOf(t *testing.T, ppid int32) int32 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", ppid, ppid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return int32(n)
}

func syscallKill(pid int32) {
	if p, err := os.FindProcess(int(pid)); err == nil {
		p.Kill()
	}
}

// emptyProc is a proc directory with no processes, so lazy reads miss.
func emptyProc(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	os.WriteFile(filepath.Join(d, "stat"), []byte("cpu 0 0 0\nbtime 1700000000\n"), 0o644)
	return d
}

func TestUpdateForkExecExit(t *testing.T) {
	c := New(Options{Proc: emptyProc(t), ExitGrace: time.Minute})
	clock := time.Unix(1700000100, 0)
	c.now = func() time.Time { return clock }
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 100, PPID: 1, Name: "bash", Exe: "/bin/bash", Args: []string{"bash"}, Cwd: "/root", UID: 1000, EUID: 1000, GID: 1000, EGID: 1000}})
	c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: 101, PPID: 100}})
	child, ok := c.Get(101)
	if !ok {
		t.Fatal("forked child not cached")
	}
	want := event.Process{PID: 101, PPID: 100, Name: "bash", Exe: "/bin/bash", Args: []string{"bash"}, Cwd: "/root", UID: 1000, EUID: 1000, GID: 1000, EGID: 1000}
	if diff := cmp.Diff(want, child); diff != "" {
		t.Errorf("fork child (-want +got):\n%s", diff)
	}
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 101, Name: "curl", Exe: "/usr/bin/curl", Args: []string{"curl", "-s", "x"}}})
	// The working directory is re-read at exec (a chdir may have come
	// between fork and exec); this process is not in the fake /proc, so it
	// is unknown rather than the fork's stale value.
	want.Name, want.Exe, want.Args, want.Cwd = "curl", "/usr/bin/curl", []string{"curl", "-s", "x"}, ""
	if got, _ := c.Get(101); !cmp.Equal(want, got) {
		t.Errorf("after exec (-want +got):\n%s", cmp.Diff(want, got))
	}

	e := &event.Event{Type: event.NetConnect, Process: event.Process{PID: 101}}
	c.Enrich(e)
	if e.Process.Exe != "/usr/bin/curl" || e.Process.Cwd != "" || e.Parent == nil || e.Parent.Exe != "/bin/bash" {
		t.Errorf("Enrich: process %+v parent %+v", e.Process, e.Parent)
	}
	if e.Ancestors != nil { // pid 1 is not in the fake /proc
		t.Errorf("Ancestors = %+v, want none", e.Ancestors)
	}

	// The parent exits; its child's events still find it during the grace.
	c.Update(&event.Event{Type: event.ProcessExit, Process: event.Process{PID: 100}})
	clock = clock.Add(30 * time.Second)
	e = &event.Event{Type: event.FileOpen, Process: event.Process{PID: 101}}
	c.Enrich(e)
	if e.Parent == nil || e.Parent.PID != 100 {
		t.Errorf("within grace: Parent = %+v", e.Parent)
	}
	clock = clock.Add(time.Minute)
	c.Update(&event.Event{Type: event.ProcessExit, Process: event.Process{PID: 101}}) // expires 100
	if _, ok := c.Get(100); ok {
		t.Error("exited parent still cached after the grace period")
	}
	// PID reuse: a fork onto an exited PID makes it live again.
	c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: 101, PPID: 1, Name: "new"}})
	clock = clock.Add(2 * time.Minute)
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 102, Name: "x"}})
	if p, ok := c.Get(101); !ok || p.Name != "new" {
		t.Errorf("reused pid 101 = %+v, %v", p, ok)
	}
	// Unknown PID, not in /proc: taken from the event.
	c.Update(&event.Event{Type: event.FileOpen, Process: event.Process{PID: 555, Name: "ghost"}})
	if p, ok := c.Get(555); !ok || p.Name != "ghost" {
		t.Errorf("unknown pid = %+v, %v", p, ok)
	}
}

func TestBound(t *testing.T) {
	c := New(Options{Proc: emptyProc(t), MaxEntries: 4})
	for pid := int32(1); pid <= 4; pid++ {
		c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: pid, Name: "p"}})
	}
	c.Get(1) // 1 is now the most recently used; 2 the least
	c.Update(&event.Event{Type: event.ProcessExit, Process: event.Process{PID: 3}})
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 5, Name: "p"}})
	if _, ok := c.Get(3); ok {
		t.Error("exited pid 3 kept while full; it should go first")
	}
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 6, Name: "p"}})
	if _, ok := c.Get(2); ok {
		t.Error("least recently used pid 2 kept while full")
	}
	for _, pid := range []int32{1, 4, 5, 6} {
		if _, ok := c.Get(pid); !ok {
			t.Errorf("pid %d evicted", pid)
		}
	}
	for pid := int32(10); pid < 100; pid++ {
		c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: pid, PPID: pid - 1}})
		if n := c.Len(); n > 4 {
			t.Fatalf("Len = %d, want at most 4", n)
		}
	}
}

func TestAncestorLimitAndCycle(t *testing.T) {
	c := New(Options{Proc: emptyProc(t)})
	for pid := int32(2); pid < 100; pid++ {
		c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: pid, PPID: pid - 1, Name: "p"}})
	}
	e := &event.Event{Process: event.Process{PID: 99}}
	c.Enrich(e)
	if len(e.Ancestors) != MaxAncestors || e.Ancestors[0].PID != 97 {
		t.Errorf("got %d ancestors starting at %v", len(e.Ancestors), e.Ancestors[:1])
	}
	// A cycle (which a corrupt event could create) ends the walk.
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 200, PPID: 201, Name: "a"}})
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 201, PPID: 202, Name: "b"}})
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 202, PPID: 200, Name: "c"}})
	e = &event.Event{Process: event.Process{PID: 200}}
	c.Enrich(e)
	if e.Parent == nil || e.Parent.PID != 201 || len(e.Ancestors) != 1 || e.Ancestors[0].PID != 202 {
		t.Errorf("cycle: parent %+v ancestors %+v", e.Parent, e.Ancestors)
	}
}

func TestConcurrent(t *testing.T) {
	c := New(Options{Proc: emptyProc(t), MaxEntries: 64, ExitGrace: time.Millisecond})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				pid := int32(w*1000 + i%500 + 2)
				switch i % 4 {
				case 0:
					c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: pid, PPID: pid - 1}})
				case 1:
					c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: pid, Name: "x", Args: []string{"x"}}})
				case 2:
					e := &event.Event{Process: event.Process{PID: pid}}
					c.Enrich(e)
				case 3:
					c.Update(&event.Event{Type: event.ProcessExit, Process: event.Process{PID: pid}})
				}
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > 64 {
		t.Errorf("Len = %d, want at most 64", n)
	}
}

// TestMalformedProc reads a fake /proc whose files are odd or broken.
func TestMalformedProc(t *testing.T) {
	proc := t.TempDir()
	write := func(pid int, name, content string) {
		t.Helper()
		d := filepath.Join(proc, strconv.Itoa(pid))
		os.MkdirAll(d, 0o755)
		if err := os.WriteFile(filepath.Join(d, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tail := " S 1 10 10 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 500 1000 100 0"
	os.WriteFile(filepath.Join(proc, "stat"), []byte("btime 1700000000\n"), 0o644)
	write(10, "stat", "10 ((a) b))"+tail)               // comm with spaces and parentheses
	write(10, "cmdline", "a\x00b c\x00")                // normal
	write(11, "stat", "11 (trunc) S 1 10")              // truncated
	write(12, "stat", "")                               // empty
	write(13, "stat", "13 (x"+tail)                     // no closing paren
	write(14, "stat", "14 (ok)"+tail)                   // fine, odd other files
	write(14, "cmdline", "no-nul-at-end")               // truncated cmdline
	write(14, "status", "Uid:\t5\nGid:\nCapEff:\tzz\n") // short and bad lines
	write(14, "loginuid", "not a number")               //
	write(15, "stat", "15 (p) S notanumber 1"+tail)     // bad ppid
	os.MkdirAll(filepath.Join(proc, "self"), 0o755)     // not a pid
	os.MkdirAll(filepath.Join(proc, "16"), 0o755)       // no files
	c := New(Options{Proc: proc})
	if err := c.Seed(); err != nil {
		t.Fatal(err)
	}
	if n := c.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (pids 10 and 14)", n)
	}
	p10, _ := c.Get(10)
	want10 := event.Process{PID: 10, PPID: 1, Name: "(a) b)", Args: []string{"a", "b c"}, CmdLine: "a b c", SID: 10, PGID: 10,
		StartTime: time.Unix(1700000005, 0)}
	if diff := cmp.Diff(want10, p10); diff != "" {
		t.Errorf("pid 10 (-want +got):\n%s", diff)
	}
	p14, _ := c.Get(14)
	if !cmp.Equal(p14.Args, []string{"no-nul-at-end"}) || p14.UID != 5 || p14.EUID != 0 || p14.CapEff != 0 || p14.LoginUID != 0 {
		t.Errorf("pid 14 = %+v", p14)
	}
	if err := New(Options{Proc: filepath.Join(proc, "missing")}).Seed(); err == nil {
		t.Error("Seed of a missing /proc succeeded")
	}
}

func TestParseStat(t *testing.T) {
	tail := " R 7 1 1 34816 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0"
	tests := []struct {
		in      string
		want    stat
		wantErr bool
	}{
		{"42 (bash)" + tail, stat{PID: 42, Comm: "bash", State: 'R', PPID: 7, PGRP: 1, Session: 1, TTY: 34816, StartTicks: 123456}, false},
		{"42 (a) b)" + tail, stat{PID: 42, Comm: "a) b", State: 'R', PPID: 7, PGRP: 1, Session: 1, TTY: 34816, StartTicks: 123456}, false},
		{"42 ()" + tail, stat{PID: 42, Comm: "", State: 'R', PPID: 7, PGRP: 1, Session: 1, TTY: 34816, StartTicks: 123456}, false},
		{"42 (x) R 7 1 2 34816 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0", stat{PID: 42, Comm: "x", State: 'R', PPID: 7, PGRP: 1, Session: 2, TTY: 34816, StartTicks: 123456}, false},
		{"42 (x) R 7 z 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0", stat{}, true},
		{"42 (x) R 7 1 z 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0", stat{}, true},
		{"42 (x)\n", stat{}, true},
		{"(x)" + tail, stat{}, true},
		{"42 x" + tail, stat{}, true},
		{")42 (" + tail, stat{}, true},
		{"", stat{}, true},
	}
	for _, tt := range tests {
		got, err := parseStat([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseStat(%q) err = %v, wantErr %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !cmp.Equal(tt.want, got) {
			t.Errorf("parseStat(%q) (-want +got):\n%s", tt.in, cmp.Diff(tt.want, got))
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("42 (bash) R 7 1 1 34816 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 123456 0 0"))
	f.Add([]byte("1 ((a) b)) S 0 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5 1000 100 0"))
	f.Add([]byte("7 (x"))
	f.Add([]byte("12:cpuset:/docker/abc\n0::/x\n"))
	f.Add([]byte("3 (y) S 1 2 3 4294967295 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 1000 100 0"))
	f.Add([]byte(")("))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseStat(b)
		if err != nil {
			return
		}
		if len(s.Comm) > len(b) {
			t.Errorf("comm %q longer than input", s.Comm)
		}
		splitCmdline(b)
		parseStatus(b)
		cgroupLeaf(b)
		ttyName(s.TTY)
	})
}

func BenchmarkEnrich(b *testing.B) {
	c := New(Options{Proc: b.TempDir()})
	for pid := int32(1); pid < 12; pid++ { // a chain of 10 ancestors, ending at pid 1
		c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: pid, PPID: pid - 1, Name: "p", Exe: "/bin/p", Args: []string{"p"}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		e := &event.Event{Type: event.FileOpen, Process: event.Process{PID: 11}}
		c.Enrich(e)
	}
}

func BenchmarkUpdateForkExit(b *testing.B) {
	c := New(Options{Proc: b.TempDir(), MaxEntries: 4096})
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 1, Name: "init"}})
	b.ReportAllocs()
	pid := int32(2)
	for b.Loop() {
		c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: pid, PPID: 1}})
		c.Update(&event.Event{Type: event.ProcessExit, Process: event.Process{PID: pid}})
		if pid++; pid > 1<<20 {
			pid = 2
		}
	}
}

func TestTTYName(t *testing.T) {
	tests := map[uint32]string{
		0:                                     "",
		136<<8 | 3:                            "pts/3",
		136<<8 | (300&0xff | (300&^0xff)<<12): "pts/300",
		4<<8 | 1:                              "tty1",
		4<<8 | 64:                             "ttyS0",
		5<<8 | 1:                              "", // /dev/console
	}
	for nr, want := range tests {
		if got := ttyName(nr); got != want {
			t.Errorf("ttyName(%#x) = %q, want %q", nr, got, want)
		}
	}
}

func TestCgroupLeaf(t *testing.T) {
	id := strings.Repeat("ab", 32)
	tests := []struct{ in, want string }{
		{"12:pids:/docker/x\n11:cpuset,cpu:/docker/" + id + "\n0::/system.slice/docker.service\n", id},
		{"5:cpuset:/system.slice/docker-" + id + ".scope\n", "docker-" + id + ".scope"},
		{"0::/system.slice/sshd.service\n", "sshd.service"},
		{"3:cpuset:/\n0::/init.scope\n", ""},
		{"", ""},
		{"garbage\n1:cpuset\n", ""},
	}
	for _, tt := range tests {
		if got := cgroupLeaf([]byte(tt.in)); got != tt.want {
			t.Errorf("cgroupLeaf(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSeedExecFields checks the exec fields read from /proc: tty, session,
// process group, capabilities, cgroup and a deleted executable.
func TestSeedExecFields(t *testing.T) {
	proc := t.TempDir()
	d := filepath.Join(proc, "20")
	os.MkdirAll(d, 0o755)
	os.WriteFile(filepath.Join(proc, "stat"), []byte("btime 1700000000\n"), 0o644)
	os.WriteFile(filepath.Join(d, "stat"), []byte("20 (sh) S 1 18 17 34819 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 1000 100 0"), 0o644)
	os.WriteFile(filepath.Join(d, "status"), []byte("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t20\t7\nCapPrm:\t00000000a80425fb\nCapEff:\t000001ffffffffff\n"), 0o644)
	os.WriteFile(filepath.Join(d, "cgroup"), []byte("4:cpuset:/docker/"+strings.Repeat("c", 64)+"\n"), 0o644)
	os.Symlink("/tmp/evil (deleted)", filepath.Join(d, "exe"))
	c := New(Options{Proc: proc})
	if err := c.Seed(); err != nil {
		t.Fatal(err)
	}
	got, _ := c.Get(20)
	want := event.Process{PID: 20, PPID: 1, Name: "sh", Exe: "/tmp/evil (deleted)", ExeMemfd: true, SID: 17, PGID: 18,
		TTY: "pts/3", TTYNr: 34819, CapEff: 0x1ffffffffff, CapPrm: 0xa80425fb, VPID: 7, CgroupName: strings.Repeat("c", 64), StartTime: time.Unix(1700000005, 0)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("seeded process (-want +got):\n%s", diff)
	}
}

// TestExecFieldsCarried checks that what an exec event says about the
// process reaches its later events, and that a new exec replaces it.
func TestExecFieldsCarried(t *testing.T) {
	c := New(Options{Proc: emptyProc(t)})
	exe := event.Process{PID: 30, PPID: 1, Name: "x", Exe: "/memfd:x", CapEff: 0x3, CapPrm: 0x7, VPID: 1, TTY: "pts/1", TTYNr: 34817,
		SID: 30, PGID: 30, ExeInode: 9, ExeUpper: true, ExeMemfd: true, CgroupName: "docker-1.scope"}
	c.Update(&event.Event{Type: event.ProcessExec, Process: exe})
	e := &event.Event{Type: event.FileOpen, Process: event.Process{PID: 30}}
	c.Update(e)
	c.Enrich(e)
	want := exe
	if diff := cmp.Diff(want, e.Process); diff != "" {
		t.Errorf("later event's process (-want +got):\n%s", diff)
	}
	// The child inherits the session, tty and cgroup, not the parent's
	// vpid (the fork event gives its own); its exec of a plain file clears
	// the executable's flags and sets its own capabilities.
	c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: 31, PPID: 30, VPID: 2}})
	if got, _ := c.Get(31); got.VPID != 2 || got.CapPrm != 0x7 {
		t.Errorf("forked child: vpid %d cap_permitted %#x; want 2 (its own) and 0x7 (inherited)", got.VPID, got.CapPrm)
	}
	c.Update(&event.Event{Type: event.ProcessFork, Process: event.Process{PID: 32, PPID: 30}})
	if got, _ := c.Get(32); got.VPID != 0 {
		t.Errorf("forked child without a vpid in its event: vpid %d, want 0 (not the parent's)", got.VPID)
	}
	c.Update(&event.Event{Type: event.ProcessExec, Process: event.Process{PID: 31, Name: "y", Exe: "/bin/y", ExeInode: 10}})
	e = &event.Event{Type: event.NetConnect, Process: event.Process{PID: 31}}
	c.Enrich(e)
	want = event.Process{PID: 31, PPID: 30, VPID: 2, Name: "y", Exe: "/bin/y", TTY: "pts/1", TTYNr: 34817, SID: 30, PGID: 30,
		ExeInode: 10, CgroupName: "docker-1.scope"}
	if diff := cmp.Diff(want, e.Process); diff != "" {
		t.Errorf("child after exec (-want +got):\n%s", diff)
	}
}
