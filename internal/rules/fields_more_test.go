package rules

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestFieldsMore checks the fields filled from the sensor's socket type and
// protocol, local endpoint, mount file system type, vpid and permitted
// capabilities.
func TestFieldsMore(t *testing.T) {
	e := inContainerEv(exec("sh", "/bin/sh"))
	e.Process.VPID = 1
	e.Process.TID = e.Process.PID
	e.Process.CapPrm = 1<<unix.CAP_CHOWN | 1<<unix.CAP_SYS_ADMIN
	e.Parent.VPID = 7
	m := proc(event.Mount, "mount", "mount")
	m.Detail = &event.Detail{Name: "proc", Target: "/host/proc", FSType: "proc"}
	bind := proc(event.Mount, "mount", "mount")
	bind.Detail = &event.Detail{Name: "/dev/sda1", Target: "/mnt", Request: unix.MS_BIND | unix.MS_REC | unix.MS_NOSUID}
	magic := proc(event.Mount, "mount", "mount")
	magic.Detail = &event.Detail{Name: "/dev/sda1", Target: "/mnt", Request: 0xc0ed0000 | unix.MS_RDONLY}
	mptcp := connect("curl", "198.51.100.9:443", 262)
	udp := connect("dig", "198.51.100.9:53", 17)
	udp.Net.Type = "dgram"
	thread := exec("sh", "/bin/sh")
	thread.Process.TID, thread.Process.VPID = thread.Process.PID+1, 3
	tests := []struct {
		e     *event.Event
		field string
		want  string // "" for no value
	}{
		{e, "proc.vpid", "1"},
		{e, "proc.pvpid", "7"},
		{e, "thread.vtid", "1"},
		{thread, "thread.vtid", ""}, // another thread: its vtid is not known
		{thread, "proc.vpid", "3"},
		{e, "thread.cap_permitted", "CAP_CHOWN CAP_SYS_ADMIN"},
		{exec("sh"), "proc.vpid", ""},
		{exec("sh"), "proc.pvpid", ""},
		{m, "evt.arg.type", "proc"},
		{m, "evt.arg.fstype", "proc"},
		{m, "evt.arg.dev", "proc"},
		{m, "evt.args", "res=0 request=0 name=proc type=proc"},
		{m, "evt.arg.flags", "0"},
		{bind, "evt.arg.flags", "NOSUID|BIND|REC"},
		{magic, "evt.arg.flags", "RDONLY"},
		{e, "evt.arg.type", ""},
		{mptcp, "fd.l4proto", "tcp"},
		{udp, "fd.l4proto", "udp"},
		{udp, "fd.lip", "192.168.1.10"},
	}
	for _, tt := range tests {
		got, ok := Field(tt.e, tt.field)
		if tt.want == "" {
			if ok {
				t.Errorf("%s on %s: %q, want no value", tt.field, tt.e.Type, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("%s on %s: %q, %v; want %q", tt.field, tt.e.Type, got, ok, tt.want)
		}
	}
	// thread.cap_permitted of a process with none is an empty set, which
	// "contains" nothing: the unshare rule below relies on it.
	if got, ok := Field(exec("sh"), "thread.cap_permitted"); !ok || got != "" {
		t.Errorf("thread.cap_permitted without capabilities: %q, %v; want an empty value", got, ok)
	}
	for _, c := range []struct {
		cond string
		e    *event.Event
		want bool
	}{
		{"thread.cap_permitted contains CAP_SYS_ADMIN", e, true},
		{"thread.cap_permitted contains CAP_SYS_MODULE", e, false},
		{"proc.vpid=1", e, true},
		{"proc.vpid=1", thread, false},
		{"evt.arg.type=proc", m, true},
	} {
		if got := holds(t, "", c.cond, c.e); got != c.want {
			t.Errorf("%q = %v, want %v", c.cond, got, c.want)
		}
	}
}

// TestIncubatingRulesNowLoad loads Falco's incubating rules and checks that
// the rules that needed proc.vpid and thread.cap_permitted load, and fire
// on the behaviour they describe and not on a near miss.
func TestIncubatingRulesNowLoad(t *testing.T) {
	dir := filepath.Join(vigiltest.SharedData(t), "falco-rules")
	var fs []File
	for _, n := range []string{"falco_rules.yaml", "falco-incubating_rules.yaml"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, File{Name: n, Data: b})
	}
	rs, err := Load(fs...)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rs.Statuses() {
		switch s.Name {
		case "Launch Privileged Container", "Launch Excessively Capable Container", "Change namespace privileges via unshare":
			if !s.Loaded {
				t.Errorf("%s not loaded: %s", s.Name, s.Reason)
			}
		}
	}

	// The first process of a privileged container with every capability.
	start := inContainerEv(root(exec("sh", "/bin/sh")))
	start.Process.VPID = 1
	start.Process.CapPrm = 1<<(unix.CAP_LAST_CAP+1) - 1
	start.Workload.Privileged = true
	start.Workload.Image = "docker.io/library/debian:bookworm"
	fired := matchNames(rs, start)
	for _, want := range []string{"Launch Excessively Capable Container", "Launch Privileged Container"} {
		if !slices.Contains(fired, want) {
			t.Errorf("container start fired %q, want %q among them", fired, want)
		}
	}
	// The same image's second process (vpid 2) starts no container.
	later := inContainerEv(root(exec("sh", "/bin/sh")))
	later.Process.VPID, later.Process.CapPrm = 2, start.Process.CapPrm
	later.Workload.Privileged = true
	if fired := matchNames(rs, later); slices.Contains(fired, "Launch Privileged Container") || slices.Contains(fired, "Launch Excessively Capable Container") {
		t.Errorf("vpid 2 fired %q", fired)
	}

	// unshare in a container by a process without CAP_SYS_ADMIN, and with it.
	un := inContainerEv(proc(event.Unshare, "unshare", "unshare", "-U"))
	un.Detail = &event.Detail{Request: unix.CLONE_NEWUSER}
	un.Process.CapPrm = 1 << unix.CAP_CHOWN
	if fired := matchNames(rs, un); !slices.Contains(fired, "Change namespace privileges via unshare") {
		t.Errorf("unprivileged unshare fired %q", fired)
	}
	un.Process.CapPrm |= 1 << unix.CAP_SYS_ADMIN
	if fired := matchNames(rs, un); slices.Contains(fired, "Change namespace privileges via unshare") {
		t.Errorf("unshare with CAP_SYS_ADMIN fired %q", fired)
	}
}

// TestSSHNonStandardPortWithLocalEnd: a connect event as the sensor now
// fills it (stream/TCP, both ends) fires "Disallowed SSH Connection Non
// Standard Port"; the same connect to an RFC 1918 address does not.
func TestSSHNonStandardPortWithLocalEnd(t *testing.T) {
	rs := stableRuleset(t)
	e := connect("ssh", "198.51.100.9:443", unix.IPPROTO_TCP)
	e.Process.Exe = "/usr/bin/ssh"
	e.Net.Src = netip.MustParseAddrPort("10.0.2.15:40022")
	if fired := matchNames(rs, e); !slices.Contains(fired, "Disallowed SSH Connection Non Standard Port") {
		t.Errorf("fired %q", fired)
	}
	e.Net.Dst = netip.MustParseAddrPort("192.168.1.1:443")
	if fired := matchNames(rs, e); slices.Contains(fired, "Disallowed SSH Connection Non Standard Port") {
		t.Errorf("to an RFC 1918 address: fired %q", fired)
	}
}
