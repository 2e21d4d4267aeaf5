package workload

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
)

func TestParseIDNames(t *testing.T) {
	in := "root:x:0:0:root:/root:/bin/bash\r\n" +
		"\n# a comment\n" +
		"daemon:x:1:1::/:/usr/sbin/nologin\n" +
		"+nisuser::::::\n-excluded:x:5:5::/:\n" +
		"short:x\n" +
		":x:7:7::/:\n" + // no name
		"big:x:4294967296:1::/:\n" + // over 32 bits
		"neg:x:-1:1::/:\n" +
		"alice:x:1000:1000:Alice:/home/alice:/bin/sh\n" +
		"alias:x:1000:1000::/:\n" + // second name of 1000: the first wins
		"nobody:x:65534:65534::/nonexistent:/usr/sbin/nologin" // no final newline
	want := map[uint32]string{0: "root", 1: "daemon", 1000: "alice", 65534: "nobody"}
	if diff := cmp.Diff(want, ParseIDNames([]byte(in))); diff != "" {
		t.Errorf("passwd (-want +got):\n%s", diff)
	}
	group := "root:x:0:\nsudo:x:27:alice,bob\nusers:x:100:\n"
	if diff := cmp.Diff(map[uint32]string{0: "root", 27: "sudo", 100: "users"}, ParseIDNames([]byte(group))); diff != "" {
		t.Errorf("group (-want +got):\n%s", diff)
	}
	if got := ParseIDNames(nil); len(got) != 0 {
		t.Errorf("empty file: %v", got)
	}
}

func FuzzParseIDNames(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n"))
	f.Add([]byte("sudo:x:27:alice,bob\n+::::\n#c\n\r\n"))
	f.Add([]byte("a:b:99999999999999999999:c\n:x:1:1\nx::2"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for id, name := range ParseIDNames(b) {
			if name == "" || strings.ContainsAny(name, ":\n") {
				t.Errorf("id %d: bad name %q", id, name)
			}
		}
	})
}

// fakeRoot writes passwd and group under proc/<pid>/root/etc and a file
// standing for proc/<pid>/ns/mnt, whose inode it returns.
func fakeRoot(t testing.TB, proc, pid, passwd, group string) (mntNS uint32) {
	t.Helper()
	etc := filepath.Join(proc, pid, "root", "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(proc, pid, "ns"), 0o755)
	for name, s := range map[string]string{"passwd": passwd, "group": group} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(proc, pid, "ns", "mnt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(proc, pid, "ns", "mnt"), &st); err != nil {
		t.Fatal(err)
	}
	return uint32(st.Ino)
}

func TestNamesFill(t *testing.T) {
	proc := t.TempDir()
	fakeRoot(t, proc, "1", "toor:x:0:0::/:\nhostuser:x:1000:1000::/:\n", "hostgrp:x:1000:\n")
	ns := fakeRoot(t, proc, "42", "root:x:0:0::/:\nalice:x:1000:1000::/:\nbob:x:1001:1001::/:\n", "staff:x:1000:\n")
	n := NewNames(NamesOptions{Proc: proc})
	fill := func(p event.Process) event.Process { n.Fill(&p); return p }
	unset := ^uint32(0)

	got := fill(event.Process{PID: 42, MntNS: ns, UID: 1000, GID: 1000, LoginUID: 1001})
	if got.User != "alice" || got.Group != "staff" || got.LoginUser != "bob" {
		t.Errorf("container process: user %q group %q login %q, want alice staff bob", got.User, got.Group, got.LoginUser)
	}
	got = fill(event.Process{PID: 42, MntNS: ns, UID: 0, GID: 1000, LoginUID: unset})
	if got.User != "root" || got.Group != "staff" || got.LoginUser != "" {
		t.Errorf("root in a group, no login uid: %q %q %q", got.User, got.Group, got.LoginUser)
	}
	// Root is root even where the files call uid 0 something else.
	got = fill(event.Process{PID: 5, MntNS: 99, LoginUID: 0})
	if got.User != "root" || got.Group != "root" || got.LoginUser != "root" {
		t.Errorf("root: %q %q %q", got.User, got.Group, got.LoginUser)
	}

	// An ID added to the files later is found on the miss.
	p := filepath.Join(proc, "42", "root", "etc", "passwd")
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, append(b, "carol:x:2000:2000::/:\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := fill(event.Process{PID: 42, MntNS: ns, UID: 2000, GID: 2000}); got.User != "carol" || got.Group != "" {
		t.Errorf("added user: %q %q, want carol and no group", got.User, got.Group)
	}
	// Added again, and looked up for a process already gone: the files
	// are re-read through another process of the namespace (pid 43,
	// sharing 42's root and namespace).
	os.MkdirAll(filepath.Join(proc, "43", "ns"), 0o755)
	if err := os.Link(filepath.Join(proc, "42", "ns", "mnt"), filepath.Join(proc, "43", "ns", "mnt")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(proc, "43", "root", "etc"), 0o755)
	b, _ = os.ReadFile(p)
	os.WriteFile(filepath.Join(proc, "43", "root", "etc", "passwd"), b, 0o644)
	if got := fill(event.Process{PID: 43, MntNS: ns, UID: 1000}); got.User != "alice" {
		t.Fatalf("pid 43: %q", got.User)
	}
	os.WriteFile(filepath.Join(proc, "43", "root", "etc", "passwd"), append(b, "dave:x:2001:2001::/:\n"...), 0o644)
	os.Rename(filepath.Join(proc, "42"), filepath.Join(proc, "42.away")) // the first reader is gone too
	if got := fill(event.Process{PID: 44, MntNS: ns, UID: 2001}); got.User != "dave" {
		t.Errorf("added user, process gone: %q, want dave (read through pid 43)", got.User)
	}
	os.Rename(filepath.Join(proc, "42.away"), filepath.Join(proc, "42"))

	// Gone: the namespace's cached files still answer; an unknown
	// namespace gets the host's.
	if err := os.RemoveAll(filepath.Join(proc, "42")); err != nil {
		t.Fatal(err)
	}
	if got := fill(event.Process{PID: 42, MntNS: ns, UID: 1000, GID: 1000}); got.User != "alice" {
		t.Errorf("gone process, cached namespace: user %q, want alice", got.User)
	}
	if got := fill(event.Process{PID: 45, MntNS: 8, UID: 1000, GID: 1000}); got.User != "hostuser" || got.Group != "hostgrp" {
		t.Errorf("gone process, unknown namespace: %q %q, want the host's hostuser hostgrp", got.User, got.Group)
	}
	if got := fill(event.Process{PID: 42, MntNS: ns, UID: 31337}); got.User != "" {
		t.Errorf("unknown uid: %q", got.User)
	}
	n.Fill(nil) // no panic
}

func TestNamesBound(t *testing.T) {
	proc := t.TempDir()
	for _, pid := range []string{"1", "10", "11", "12"} {
		fakeRoot(t, proc, pid, "u:x:1000:1000::/:\n", "")
	}
	n := NewNames(NamesOptions{Proc: proc, MaxNamespaces: 2})
	for i, pid := range []int32{10, 11, 12} {
		p := event.Process{PID: pid, MntNS: uint32(100 + i), UID: 1000}
		n.Fill(&p)
		if p.User != "u" {
			t.Errorf("pid %d: user %q", pid, p.User)
		}
	}
	if len(n.byNS) > 2 {
		t.Errorf("%d namespaces cached, bound is 2", len(n.byNS))
	}
}

func TestNamesBadFiles(t *testing.T) {
	proc := t.TempDir()
	// passwd a directory, group missing, pid 1 without files: no names,
	// no error, no panic.
	os.MkdirAll(filepath.Join(proc, "3", "root", "etc", "passwd"), 0o755)
	n := NewNames(NamesOptions{Proc: proc, MaxFileSize: 10})
	p := event.Process{PID: 3, MntNS: 1, UID: 1000, GID: 1000}
	n.Fill(&p)
	if p.User != "" || p.Group != "" {
		t.Errorf("got %q %q from a bad root", p.User, p.Group)
	}
	// MaxFileSize cuts a long file: only what fits is read.
	fakeRoot(t, proc, "4", "a:x:1:1\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb:x:2:2\n", "")
	for uid, want := range map[uint32]string{1: "a", 2: ""} {
		p := event.Process{PID: 4, MntNS: 2, UID: uid}
		n.Fill(&p)
		if p.User != want {
			t.Errorf("uid %d: %q, want %q", uid, p.User, want)
		}
	}
}

func TestNamesSelf(t *testing.T) {
	n := NewNames(NamesOptions{})
	p := event.Process{PID: int32(os.Getpid()), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	n.Fill(&p)
	if p.User == "" {
		t.Errorf("no name for this process's uid %d", p.UID)
	}
}

func BenchmarkNamesFill(b *testing.B) {
	proc := b.TempDir()
	fakeRoot(b, proc, "1", "", "")
	ns := fakeRoot(b, proc, "42", "alice:x:1000:1000::/:\n", "staff:x:1000:\n")
	n := NewNames(NamesOptions{Proc: proc})
	p := event.Process{PID: 42, MntNS: ns, UID: 1000, GID: 1000, LoginUID: ^uint32(0)}
	n.Fill(&p)
	b.ReportAllocs()
	for b.Loop() {
		n.Fill(&p)
	}
}

// TestNamesKin checks that a gone process's namespace files are re-read
// through a kin process (its parent) when every process seen before in
// that namespace is gone too.
func TestNamesKin(t *testing.T) {
	proc := t.TempDir()
	fakeRoot(t, proc, "1", "", "")
	ns := fakeRoot(t, proc, "50", "alice:x:1000:1000::/:\n", "")
	n := NewNames(NamesOptions{Proc: proc})
	p := event.Process{PID: 50, MntNS: ns, UID: 1000}
	n.Fill(&p)
	if p.User != "alice" {
		t.Fatalf("pid 50: %q", p.User)
	}
	// 51 shares the namespace; 50 goes away.
	os.MkdirAll(filepath.Join(proc, "51", "ns"), 0o755)
	os.MkdirAll(filepath.Join(proc, "51", "root", "etc"), 0o755)
	if err := os.Link(filepath.Join(proc, "50", "ns", "mnt"), filepath.Join(proc, "51", "ns", "mnt")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(proc, "51", "root", "etc", "passwd"), []byte("alice:x:1000:1000::/:\nerin:x:3000:3000::/:\n"), 0o644)
	os.RemoveAll(filepath.Join(proc, "50"))
	p = event.Process{PID: 52, MntNS: ns, UID: 3000}
	n.Fill(&p)
	if p.User != "" {
		t.Fatalf("without kin: %q, want no name (no live process of the namespace known)", p.User)
	}
	n.Fill(&p, 51)
	if p.User != "erin" {
		t.Errorf("with kin 51: %q, want erin", p.User)
	}
}

// TestNamesKinFirstRead checks that a namespace first seen through a
// process already gone is read through its kin, not the host's files.
func TestNamesKinFirstRead(t *testing.T) {
	proc := t.TempDir()
	fakeRoot(t, proc, "1", "hostuser:x:1000:1000::/:\n", "")
	ns := fakeRoot(t, proc, "60", "frank:x:1000:1000::/:\n", "")
	n := NewNames(NamesOptions{Proc: proc})
	p := event.Process{PID: 61, MntNS: ns, UID: 1000}
	n.Fill(&p, 1, 60) // pid 1 is in another namespace: skipped
	if p.User != "frank" {
		t.Errorf("gone process with kin 60: %q, want frank", p.User)
	}
}

// TestNamesReadOnRootEvent: a container's files are read on the first
// event of a root process in its namespace, so a non-root process that is
// gone by its own event (and whose kin are gone too) still gets its name.
func TestNamesReadOnRootEvent(t *testing.T) {
	proc := t.TempDir()
	ns := fakeRoot(t, proc, "70", "root:x:0:0::/:\nwww-data:x:33:33::/:\n", "www-data:x:33:\n")
	n := NewNames(NamesOptions{Proc: proc})
	root := event.Process{PID: 70, MntNS: ns}
	n.Fill(&root)
	if root.User != "root" {
		t.Fatalf("root: %q", root.User)
	}
	if err := os.RemoveAll(filepath.Join(proc, "70")); err != nil { // the container's processes are gone
		t.Fatal(err)
	}
	p := event.Process{PID: 71, MntNS: ns, UID: 33, GID: 33}
	n.Fill(&p, 70)
	if p.User != "www-data" || p.Group != "www-data" {
		t.Errorf("gone www-data process: user %q group %q, want www-data", p.User, p.Group)
	}
}
