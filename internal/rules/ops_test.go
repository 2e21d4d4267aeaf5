package rules

import (
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// ruleFile is a one-rule file with condition cond.
func ruleFile(cond string) string {
	return fmt.Sprintf("- rule: r\n  desc: d\n  condition: %s\n  output: o\n  priority: WARNING\n", yamlQuote(cond))
}

func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func mustLoad(t *testing.T, files ...string) *Ruleset {
	t.Helper()
	var fs []File
	for i, f := range files {
		fs = append(fs, File{Name: fmt.Sprintf("f%d.yaml", i+1), Data: []byte(f)})
	}
	rs, err := Load(fs...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return rs
}

// holds compiles cond (with prelude definitions) and reports whether it
// holds for e.
func holds(t *testing.T, prelude, cond string, e *event.Event) bool {
	t.Helper()
	rs := mustLoad(t, prelude+ruleFile(cond))
	st := rs.Statuses()
	if len(st) != 1 || !st[0].Loaded {
		t.Fatalf("condition %q not loaded: %+v", cond, st)
	}
	fired := false
	rs.Match(e, func(*Rule) { fired = true })
	return fired
}

func opEvent() *event.Event {
	e := exec("bash", "/usr/bin/bash", "-c", "id")
	e.Process.Cwd = "/home/alice"
	e.Process.Env = []string{"HOME=/home/alice", "PAYLOAD=" + base64.StdEncoding.EncodeToString([]byte("hello"))}
	return e
}

func TestOperators(t *testing.T) {
	const prelude = "- list: shells\n  items: [sh, bash]\n- list: nested\n  items: [shells, zsh]\n- list: nums\n  items: [1, 4242]\n"
	tests := []struct {
		cond string
		want bool
	}{
		{`proc.name = bash`, true},
		{`proc.name == bash`, true},
		{`proc.name = sh`, false},
		{`proc.name != bash`, false},
		{`proc.name != sh`, true},
		{`proc.name = "bash"`, true},
		{`proc.name='bash'`, true},
		{`proc.cmdline = "bash -c id"`, true},
		{`proc.args = "-c id"`, true},
		{`proc.cmdline contains "-c i"`, true},
		{`proc.cmdline contains "-C"`, false},
		{`proc.cmdline icontains "-C ID"`, true},
		{`proc.cmdline icontains "zz"`, false},
		{`proc.name bcontains 6173`, true}, // "as"
		{`proc.name bcontains 7a7a`, false},
		{`proc.name bstartswith 6261`, true}, // "ba"
		{`proc.name bstartswith 6173`, false},
		{`proc.exepath startswith /usr/`, true},
		{`proc.exepath startswith /bin/`, false},
		{`proc.exepath endswith /bash`, true},
		{`proc.exepath endswith /sh`, false},
		{`proc.exepath glob "/usr/*/bash"`, true},
		{`proc.exepath glob "/usr/*"`, true}, // fnmatch without FNM_PATHNAME: * matches /
		{`proc.exepath glob "/usr/bin/ba?h"`, true},
		{`proc.exepath glob "/usr/bin/[ab]ash"`, true},
		{`proc.exepath glob "/usr/bin/[!b]ash"`, false},
		{`proc.exepath glob "/usr/bin/[a-c]ash"`, true},
		{`proc.exepath glob "/opt/*"`, false},
		{`proc.exepath iglob "/USR/BIN/BASH"`, true},
		{`proc.exepath regex "^/usr/(s?bin)/ba.h$"`, true},
		{`proc.exepath regex "^/bin"`, false},
		{`proc.pname exists`, true},
		{`container.image exists`, false},
		{`proc.name in (sh, bash)`, true},
		{`proc.name in (sh, zsh)`, false},
		{`proc.name in ()`, false},
		{`proc.name in (shells)`, true},
		{`proc.name in (nested)`, true},
		{`proc.name in shells`, true},
		{`proc.name intersects (bash, x)`, true},
		{`proc.name pmatch (/usr)`, false},
		{`proc.exepath pmatch (/usr/bin, /opt)`, true},
		{`proc.exepath pmatch (/usr/b)`, false},
		{`proc.exepath pmatch (/usr/bin/bash)`, true},
		{`proc.exepath pmatch (/usr/bin/)`, true},
		{`proc.pid = 4242`, true},
		{`proc.pid = 0x1092`, true},
		{`proc.pid != 4242`, false},
		{`proc.pid > 4000`, true},
		{`proc.pid > 4242`, false},
		{`proc.pid >= 4242`, true},
		{`proc.pid < 10`, false},
		{`proc.pid <= 4242`, true},
		{`proc.pid in (1, 4242)`, true},
		{`proc.pid in (nums)`, true},
		{`proc.pid in (1, 2)`, false},
		{`proc.tty = 0`, true},
		{`proc.is_exe_upper_layer = false`, true},
		{`proc.is_exe_upper_layer = true`, false},
		{`tolower(proc.exepath) = /usr/bin/bash`, true},
		{`toupper(proc.name) = BASH`, true},
		{`toupper(proc.name) = bash`, false},
		{`basename(proc.exepath) = bash`, true},
		{`len(proc.name) = 4`, true},
		{`len(proc.name) > 4`, false},
		{`b64(proc.env[PAYLOAD]) = hello`, true},
		{`toupper(basename(proc.exepath)) = BASH`, true},
		{`proc.env[HOME] = /home/alice`, true},
		{`proc.env[NOPE] exists`, false},
		{`proc.env contains "HOME=/home/alice"`, true},
		{`proc.cwd = /home/alice/`, true},
		{`proc.name = val(proc.pname)`, true},
		{`proc.name != val(proc.pname)`, false},
		{`proc.pname = toupper(proc.name)`, false},
		{`proc.aname = bash`, true}, // parent
		{`proc.aname = sshd`, true},
		{`proc.aname = systemd`, true},
		{`proc.aname = nope`, false},
		{`proc.aname in (nope, systemd)`, true},
		{`proc.aname[0] = bash`, true},
		{`proc.aname[1] = bash`, true},
		{`proc.aname[2] = sshd`, true},
		{`proc.aname[2] = bash`, false},
		{`proc.aname[3] = systemd`, true},
		{`proc.aname[9] exists`, false},
		{`proc.apid[3] = 1`, true},
		{`proc.aexepath[2] = /usr/sbin/sshd`, true},
		{`proc.sname = sshd`, true},
		{`proc.vpgid.name = bash`, true},
		{`proc.is_vpgid_leader = true`, true},
		{`not proc.name = sh`, true},
		{`not proc.name = bash`, false},
		{`not not proc.name = bash`, true},
		{`not(proc.name = bash)`, false},
		{`(proc.name = sh or proc.name = bash) and not proc.pid = 1`, true},
		{`proc.name = sh or (proc.name = bash and proc.pid = 1)`, false},
		{`proc.name=bash and(proc.pid=4242)`, true},
		{`evt.type = execve`, true},
		{`evt.type in (open, openat)`, false},
		{`evt.res = SUCCESS`, true},
		{`evt.failed = false`, true},
		{`evt.dir = <`, true},
		{`evt.num > 0`, true},
		{`user.uid = 1000 and user.name = alice and group.gid = 1000`, true},
		{`user.loginuid = 1000`, true},
		{`container.id = host`, true},
		{`container.id != host`, false},
		{`k8s.ns.name exists`, false},
	}
	for _, tc := range tests {
		t.Run(tc.cond, func(t *testing.T) {
			if got := holds(t, prelude, tc.cond, opEvent()); got != tc.want {
				t.Errorf("%s = %v, want %v", tc.cond, got, tc.want)
			}
		})
	}
}

// TestMissingValues: a check on a field the event does not have is
// false, whatever the operator, so its negation holds.
func TestMissingValues(t *testing.T) {
	e := opEvent()
	e.Parent = nil
	e.Ancestors = nil
	for cond, want := range map[string]bool{
		`proc.pname = x`:           false,
		`proc.pname != x`:          false,
		`not proc.pname in (x)`:    true,
		`proc.pname exists`:        false,
		`not proc.pname exists`:    true,
		`proc.aname = x`:           false,
		`proc.aname != x`:          false,
		`proc.pcmdline contains a`: false,
	} {
		if got := holds(t, "", cond, e); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
}

func TestNetworkOperators(t *testing.T) {
	e := connect("curl", "198.51.100.9:443", 6)
	e.Net.Names = []string{"example.org"}
	for cond, want := range map[string]bool{
		`fd.sip = 198.51.100.9`:                            true,
		`fd.sip = "198.51.100.10"`:                         false,
		`fd.sip in (10.0.0.1, 198.51.100.9)`:               true,
		`fd.cip = 192.168.1.10`:                            true,
		`fd.rip = 198.51.100.9 and fd.lip = 192.168.1.10`:  true,
		`fd.snet = "198.51.0.0/16"`:                        true,
		`fd.snet = "10.0.0.0/8"`:                           false,
		`fd.snet in ("10.0.0.0/8", "198.51.100.0/24")`:     true,
		`fd.net = "192.168.0.0/16"`:                        true, // the client side
		`fd.net != "127.0.0.0/8"`:                          true,
		`fd.ip = 192.168.1.10`:                             true,
		`fd.ip != "0.0.0.0"`:                               true,
		`fd.sport = 443 and fd.rport = 443`:                true,
		`fd.cport = 51234 and fd.lport = 51234`:            true,
		`fd.port = 443`:                                    true,
		`fd.sport in (80, 8080)`:                           false,
		`fd.l4proto = tcp`:                                 true,
		`fd.type = ipv4 and fd.typechar = 4`:               true,
		`fd.sockfamily = ip`:                               true,
		`fd.name = "192.168.1.10:51234->198.51.100.9:443"`: true,
		`fd.sip.name = example.org`:                        true,
		`fd.is_server = false and fd.connected = true`:     true,
		`fd.name_changed = false`:                          true,
	} {
		if got := holds(t, "", cond, e); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
	acc := proc(event.NetAccept, "nginx", "nginx")
	acc.Syscall = "accept4"
	acc.Ret = 5
	// the peer initiated the connection: it is the source
	acc.Net = &event.Net{Family: "inet6", Protocol: 6, Src: netip.MustParseAddrPort("[2001:db8::2]:40000"),
		Dst: netip.MustParseAddrPort("[2001:db8::1]:80"), Names: []string{"client.example.org"}}
	for cond, want := range map[string]bool{
		`fd.sip = "2001:db8::1" and fd.sport = 80`:          true,
		`fd.cip = "2001:db8::2" and fd.cport = 40000`:       true,
		`fd.lip = "2001:db8::1" and fd.rip = "2001:db8::2"`: true,
		`fd.lport = 80 and fd.rport = 40000`:                true,
		`fd.snet = "2001:db8::/32"`:                         true,
		`fd.type = ipv6 and fd.is_server = true`:            true,
		`fd.num = 5`:                                        true,
		`fd.rip.name = client.example.org`:                  true,
		`fd.cip.name = client.example.org`:                  true,
		`fd.sip.name exists`:                                false,
		`fd.name = "2001:db8::2:40000->2001:db8::1:80"`:     true,
	} {
		if got := holds(t, "", cond, acc); got != want {
			t.Errorf("accept: %s = %v, want %v", cond, got, want)
		}
	}
}

func TestFileOperators(t *testing.T) {
	e := open("cat", "../secrets//./db.conf", unix.O_RDONLY, 3)
	e.Process.Cwd = "/srv/app"
	for cond, want := range map[string]bool{
		`fd.name = /srv/secrets/db.conf`:                        true,
		`fd.nameraw = "../secrets//./db.conf"`:                  true,
		`fd.directory = /srv/secrets`:                           true,
		`fd.filename = db.conf`:                                 true,
		`fd.typechar = f and fd.type = file`:                    true,
		`evt.is_open_read = true and evt.is_open_write = false`: true,
		`evt.arg.flags = O_RDONLY`:                              true,
		`evt.arg.name = "../secrets//./db.conf"`:                true,
		`fs.path.name exists`:                                   true,
	} {
		if got := holds(t, "", cond, e); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
	bpf := proc(event.BPF, "bpftool", "bpftool", "prog", "load")
	bpf.Detail = &event.Detail{Request: unix.BPF_PROG_LOAD}
	uns := proc(event.Unshare, "unshare", "unshare", "-m")
	uns.Detail = &event.Detail{Request: unix.CLONE_NEWNS | unix.CLONE_NEWUSER}
	sns := proc(event.Setns, "nsenter", "nsenter", "-t", "1", "-a")
	sns.Detail = &event.Detail{Request: 0}
	mod := proc(event.ModuleLoad, "insmod", "insmod", "x.ko", "debug=1")
	mod.Detail = &event.Detail{Name: "debug=1"}
	for _, tc := range []struct {
		e    *event.Event
		cond string
	}{
		{bpf, `evt.type = bpf and evt.arg.cmd = BPF_PROG_LOAD`},
		{uns, `evt.type = unshare and evt.arg.flags = "CLONE_NEWNS|CLONE_NEWUSER"`},
		{sns, `evt.type = setns and evt.arg.nstype = 0`},
		{mod, `evt.type = init_module and evt.arg.uargs = "debug=1" and not evt.arg.name exists`},
	} {
		if !holds(t, "", tc.cond, tc.e) {
			t.Errorf("%s does not hold", tc.cond)
		}
	}
	ch := proc(event.FileChmod, "chmod", "chmod", "u+s", "/tmp/x")
	ch.Syscall = "fchmodat"
	ch.File = &event.File{Path: "/tmp/x", Mode: 0o4755}
	for cond, want := range map[string]bool{
		`evt.arg.mode = "S_IXOTH|S_IROTH|S_IXGRP|S_IRGRP|S_IXUSR|S_IWUSR|S_IRUSR|S_ISUID"`: true,
		`evt.arg.mode contains S_ISGID`: false,
		`evt.arg.path = /tmp/x`:         true,
	} {
		if got := holds(t, "", cond, ch); got != want {
			t.Errorf("chmod: %s = %v, want %v", cond, got, want)
		}
	}
	f := open("sh", "/var/log/x", unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, -int64(unix.ENOENT))
	for cond, want := range map[string]bool{
		`evt.arg.flags = "O_TRUNC|O_CREAT|O_WRONLY"`:                 true,
		`evt.res = ENOENT and evt.rawres = -2 and evt.failed = true`: true,
		`fd.num = -1`:               true,
		`evt.is_open_create = true`: true,
	} {
		if got := holds(t, "", cond, f); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
}
