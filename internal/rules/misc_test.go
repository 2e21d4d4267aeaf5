package rules

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

func TestMITRE(t *testing.T) {
	tests := []struct {
		tags []string
		want MITRE
	}{
		{[]string{"maturity_stable", "host", "mitre_execution", "T1059.004"},
			MITRE{Tactics: []string{"TA0002 Execution"}, Techniques: []string{"T1059.004"}}},
		{[]string{"container", "mitre_persistence", "TA0003", "PCI_DSS_11.5.1"},
			MITRE{Tactics: []string{"TA0003 Persistence"}}},
		{[]string{"mitre_credential_access", "mitre_discovery", "T1555", "T1552.001", "NIST_800-53_AU-10"},
			MITRE{Tactics: []string{"TA0006 Credential Access", "TA0007 Discovery"}, Techniques: []string{"T1555", "T1552.001"}}},
		{[]string{"TA0040", "T1485"}, MITRE{Tactics: []string{"TA0040 Impact"}, Techniques: []string{"T1485"}}},
		{[]string{"T12", "TX1059", "mitre_unknown"}, MITRE{}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, mitreOf(tc.tags)); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tc.tags, diff)
		}
	}
	// every stable rule carries a tactic and a technique
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs.Rules() {
		if len(r.MITRE.Tactics) == 0 {
			t.Errorf("%s: no MITRE tactic from %v", r.Name, r.Tags)
		}
	}
	r := findRule(t, rs, "Drop and execute new binary in container")
	if diff := cmp.Diff(MITRE{Tactics: []string{"TA0003 Persistence"}}, r.MITRE); diff != "" {
		t.Errorf("Drop and execute: %s", diff)
	}
}

func findRule(t *testing.T, rs *Ruleset, name string) *Rule {
	t.Helper()
	for _, r := range rs.Rules() {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no rule %q", name)
	return nil
}

func TestPriority(t *testing.T) {
	for s, want := range map[string]Priority{
		"EMERGENCY": Emergency, "alert": Alert, "Critical": Critical, "ERROR": Error, "warning": Warning,
		"NOTICE": Notice, "INFO": Informational, "informational": Informational, "DEBUG": Debug,
	} {
		got, err := ParsePriority(s)
		if err != nil || got != want {
			t.Errorf("ParsePriority(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	if _, err := ParsePriority("LOUD"); err == nil {
		t.Error("ParsePriority(LOUD) succeeded")
	}
	if Critical.String() != "CRITICAL" || Informational.String() != "INFORMATIONAL" || Priority(42).String() != "PRIORITY(42)" {
		t.Errorf("String: %s %s %s", Critical, Informational, Priority(42))
	}
	if !(Emergency < Critical && Critical < Warning && Warning < Debug) {
		t.Error("priorities not ordered most severe first")
	}
}

func TestRender(t *testing.T) {
	rs, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := stableCases()
	r := findRule(t, rs, "Run shell untrusted")
	want := "Shell spawned by untrusted binary | parent_exe=nginx parent_exepath=/usr/sbin/nginx pcmdline=nginx -g daemon off; " +
		"gparent=sshd ggparent=systemd aname[4]=<NA> aname[5]=<NA> aname[6]=<NA> aname[7]=<NA> evt_type=execve user=alice " +
		"user_uid=1000 user_loginuid=1000 process=bash proc_exepath=/usr/bin/bash parent=nginx command=bash -c id terminal=0 exe_flags=0"
	if got := r.Render(cases[r.Name]); got != want {
		t.Errorf("Render:\n got %s\nwant %s", got, want)
	}
	r = findRule(t, rs, "Detect release_agent File Container Escapes")
	want = "Detect an attempt to exploit a container escape using release_agent file | file=/tmp/cgrp/release_agent " +
		"cap_effective=CAP_DAC_OVERRIDE CAP_SYS_ADMIN evt_type=openat user=root user_uid=0 user_loginuid=1000 process=sh " +
		"proc_exepath=/usr/bin/sh parent=containerd-shim command=sh terminal=0"
	if got := r.Render(cases[r.Name]); got != want {
		t.Errorf("Render:\n got %s\nwant %s", got, want)
	}
	r = findRule(t, rs, "Redirect STDOUT/STDIN to Network Connection in Container")
	want = "Redirect stdout/stdin to network connection | gparent=systemd ggparent=<NA> gggparent=<NA> fd.sip=203.0.113.7 " +
		"connection=172.17.0.2:40000->203.0.113.7:4444 lport=40000 rport=4444 fd_type=ipv4 fd_proto=tcp evt_type=dup2 user=alice " +
		"user_uid=1000 user_loginuid=1000 process=bash proc_exepath=/usr/bin/bash parent=containerd-shim command=bash -i terminal=0"
	if got := r.Render(cases[r.Name]); got != want {
		t.Errorf("Render:\n got %s\nwant %s", got, want)
	}
	// %(field) form, a literal %, unknown fields
	rs = mustLoad(t, "- rule: r\n  desc: d\n  condition: evt.type=execve\n  output: '100% %(proc.name)/%proc.pid %nope.field %proc.aname[2]. %toupper(basename(proc.exepath)) %tolower( end'\n  priority: INFO\n")
	if got, want := rs.Rules()[0].Render(exec("bash", "bash")), "100% bash/4242 <NA> sshd. BASH %tolower( end"; got != want {
		t.Errorf("Render = %q, want %q", got, want)
	}
}

func TestField(t *testing.T) {
	e := inContainerEv(root(exec("bash", "/bin/bash", "-i")))
	e.Workload.Labels = map[string]string{"app": "web"}
	e.Workload.PodName, e.Workload.PodNamespace, e.Workload.PodUID = "web-1", "prod", "uid-1"
	e.Workload.PodLabels = map[string]string{"tier": "front", "app": "web"}
	e.Workload.StartedAt = time.Unix(1700000000, 0)
	e.Workload.Mounts = []string{"/data:/data", "/var/run/docker.sock:/var/run/docker.sock"}
	e.Workload.ImageDigest = "sha256:abc"
	e.Process.LoginUID = 4294967295
	e.Process.TTYNr = 34816
	e.Process.ExeInode = 99
	e.Process.CapEff = 1<<unix.CAP_CHOWN | 1<<unix.CAP_NET_RAW
	e.Process.LoginUser = ""
	tests := map[string]string{
		"container.id":               "3f2a9c1e5b7d",
		"container.full_id":          "3f2a9c1e5b7d4a6f8e0c2b4d6f8a0c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4a",
		"container.name":             "web",
		"container.image":            "docker.io/library/nginx:1.25",
		"container.image.repository": "docker.io/library/nginx",
		"container.image.tag":        "1.25",
		"container.image.digest":     "sha256:abc",
		"container.type":             "docker",
		"container.privileged":       "false",
		"container.label[app]":       "web",
		"container.labels":           "app:web",
		"container.mounts":           "/data:/data,/var/run/docker.sock:/var/run/docker.sock",
		"container.start_ts":         "1700000000000000000",
		"k8s.pod.name":               "web-1",
		"k8s.ns.name":                "prod",
		"k8s.pod.uid":                "uid-1",
		"k8s.pod.label[tier]":        "front",
		"k8s.pod.labels":             "app:web, tier:front",
		"user.loginuid":              "-1",
		"user.uid":                   "0",
		"user.name":                  "root",
		"group.name":                 "root",
		"proc.tty":                   "34816",
		"proc.exe":                   "/bin/bash",
		"proc.exepath":               "/bin/bash",
		"proc.cmdline":               "bash -i",
		"proc.pname":                 "containerd-shim",
		"proc.ppid":                  "4000",
		"proc.exe_ino":               "99",
		"proc.duration":              "1000000000",
		"thread.tid":                 "4242",
		"thread.cap_effective":       "CAP_CHOWN CAP_NET_RAW",
		"evt.type":                   "execve",
		"evt.time":                   "03:00:00.000000000",
		"evt.hostname":               "node-1",
		"evt.arg.flags":              "0",
		"toupper(proc.name)":         "BASH",
		"proc.aname[1]":              "containerd-shim",
		"proc.aname[2]":              "systemd",
	}
	for name, want := range tests {
		got, ok := Field(e, name)
		if !ok || got != want {
			t.Errorf("Field(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	for _, name := range []string{"user.loginname", "fd.name", "proc.aname[3]", "no.such", "proc.name[", "k8s.pod.label[nope]"} {
		if got, ok := Field(e, name); ok {
			t.Errorf("Field(%s) = %q, want no value", name, got)
		}
	}
	e.Workload = nil
	for name, want := range map[string]string{"container.id": "host", "container.name": "host"} {
		if got, ok := Field(e, name); !ok || got != want {
			t.Errorf("host Field(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}

	// evt.type by kind when the syscall is not named, socket text fields
	s := &event.Event{Type: event.NetSocket, Ret: 4, Net: &event.Net{Family: "packet", Type: "raw", Protocol: 768}}
	for name, want := range map[string]string{"evt.type": "socket", "evt.arg.domain": "AF_PACKET", "fd.num": "4",
		"evt.args": "fd=4 domain=AF_PACKET type=raw proto=768"} {
		if got, ok := Field(s, name); !ok || got != want {
			t.Errorf("socket Field(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	b := &event.Event{Type: event.NetBind, Net: &event.Net{Family: "inet", Src: netip.MustParseAddrPort("0.0.0.0:8080")}}
	for name, want := range map[string]string{"evt.type": "bind", "fd.name": "0.0.0.0:8080", "fd.sport": "8080", "fd.is_server": "true"} {
		if got, ok := Field(b, name); !ok || got != want {
			t.Errorf("bind Field(%s) = %q, %v; want %q", name, got, ok, want)
		}
	}
	p := &event.Event{Type: event.Ptrace, Detail: &event.Detail{Request: unix.PTRACE_SEIZE}}
	if got, _ := Field(p, "evt.arg.request"); got != "PTRACE_SEIZE" {
		t.Errorf("evt.arg.request = %q", got)
	}
}

func TestDefaultFiles(t *testing.T) {
	fs := DefaultFiles()
	if len(fs) == 0 || fs[0].Name != "builtin/falco_rules.yaml" {
		t.Fatalf("DefaultFiles = %v", fs)
	}
	for i, f := range fs {
		if f.Name == "builtin/vigil_rules.yaml" && i != 1 {
			t.Errorf("vigil_rules.yaml at %d, want right after falco_rules.yaml", i)
		}
	}
}
