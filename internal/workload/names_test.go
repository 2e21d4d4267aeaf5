package workload

import (
	"os"
	"path/filepath"
	"strings"
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
// standing for proc/<pid>/ns/mnt.
func fakeRoot(t testing.TB, proc, pid, passwd, group string) {
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
}

func TestNamesFill(t *testing.T) {
	proc := t.TempDir()
	fakeRoot(t, proc, "1", "toor:x:0:0::/:\nhostuser:x:1000:1000::/:\n", "hostgrp:x:1000:\n")
	fakeRoot(t, proc, "42", "root:x:0:0::/:\nalice:x:1000:1000::/:\nbob:x:1001:1001::/:\n", "staff:x:1000:\n")
	n := NewNames(NamesOptions{Proc: proc})
	fill := func(p event.Process) event.Process { n.Fill(&p); return p }
	unset := ^uint32(0)

	got := fill(event.Process{PID: 42, MntNS: 7, UID: 1000, GID: 1000, LoginUID: 1001})
	if got.User != "alice" || got.Group != "staff" || got.LoginUser != "bob" {
		t.Errorf("container process: user %q group %q login %q, want alice staff bob", got.User, got.Group, got.LoginUser)
	}
	got = fill(event.Process{PID: 42, MntNS: 7, UID: 0, GID: 1000, LoginUID: unset})
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
	if got := fill(event.Process{PID: 42, MntNS: 7, UID: 2000, GID: 2000}); got.User != "carol" || got.Group != "" {
		t.Errorf("added user: %q %q, want carol and no group", got.User, got.Group)
	}

	// Gone: the namespace's cached files still answer; an unknown
	// namespace gets the host's.
	if err := os.RemoveAll(filepath.Join(proc, "42")); err != nil {
		t.Fatal(err)
	}
	if got := fill(event.Process{PID: 42, MntNS: 7, UID: 1000, GID: 1000}); got.User != "alice" {
		t.Errorf("gone process, cached namespace: user %q, want alice", got.User)
	}
	if got := fill(event.Process{PID: 43, MntNS: 8, UID: 1000, GID: 1000}); got.User != "hostuser" || got.Group != "hostgrp" {
		t.Errorf("gone process, unknown namespace: %q %q, want the host's hostuser hostgrp", got.User, got.Group)
	}
	if got := fill(event.Process{PID: 42, MntNS: 7, UID: 31337}); got.User != "" {
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
	fakeRoot(b, proc, "42", "alice:x:1000:1000::/:\n", "staff:x:1000:\n")
	n := NewNames(NamesOptions{Proc: proc})
	p := event.Process{PID: 42, MntNS: 7, UID: 1000, GID: 1000, LoginUID: ^uint32(0)}
	n.Fill(&p)
	b.ReportAllocs()
	for b.Loop() {
		n.Fill(&p)
	}
}
