package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// actionsScript runs in one container, each action after the other; sh is
// pid 1 there, the parent of every command. It ends by waiting on its
// stdin, so that the container lives until the test has its events.
const actionsScript = `set -e
echo 'vigiltester:x:4242:4242::/tmp:/bin/sh' >>/etc/passwd
echo 'vigilgroup:x:4242:' >>/etc/group
sh -c 'echo a b'
cat /etc/shadow >/dev/null
echo x >/usr/bin/vigil-written
/vigil/actor listen-connect 47123
/vigil/actor ptrace
/vigil/actor memfd
touch /tmp/x
chmod u+s /tmp/x
unshare -U true
/vigil/actor packet
setpriv --reuid 4242 --regid 4242 --clear-groups cat /etc/hostname >/dev/null
echo done
read -r _ || true
`

// actionsResult is what one run of actionsScript under the agent gave.
type actionsResult struct {
	err       error
	lines     [][]byte // every line the agent wrote meanwhile
	events    []event.Event
	bad       []string
	id, name  string // the container's
	mntNS     uint32 // its mount namespace
	out       string // the script's output
	ptracePID int32  // the attached child, as the actor saw it
	// got holds the event of each action, by name; missing names those
	// not seen within the deadline.
	got     map[string]*event.Event
	missing []string
	stats   string // the agent's counters when some were missing
}

var (
	actionsOnce sync.Once
	actions     actionsResult
)

// runActions runs actionsScript in a container built from img, with the
// actor mounted, while the agent runs; once per test binary, shared by the
// tests that read its events.
func runActions(t *testing.T, img string) *actionsResult {
	t.Helper()
	actionsOnce.Do(func() {
		actor := buildActor(t) // t's temp dir outlives the run: the container is gone by then
		actions = doActions(actor, img, uniqueName(t, "actions"))
	})
	if actions.err != nil {
		t.Fatal(actions.err)
	}
	return &actions
}

func doActions(actor, img, name string) (r actionsResult) {
	r.name = name
	a, err := launchAgent(withDebugLog)
	if err != nil {
		r.err = err
		return r
	}
	defer func() {
		if err := a.stop(); err != nil && r.err == nil {
			r.err = fmt.Errorf("agent: %w", err)
		}
		a.mu.Lock()
		r.lines, r.events, r.bad = a.lines, a.events, a.bad
		a.mu.Unlock()
	}()
	cidFile := filepath.Join(filepath.Dir(actor), "cid")
	cmd := exec.Command("docker", "run", "-i", "--rm", "--name", name, "--cidfile", cidFile, "--network", "none",
		"--cap-add", "SYS_PTRACE", "--cap-add", "NET_RAW", "--security-opt", "seccomp=unconfined",
		"-v", actor+":/vigil/actor:ro", img, "sh", "-c", actionsScript)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		r.err = err
		return r
	}
	var out lockedBuffer // stdout and stderr are copied by two goroutines
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = io.MultiWriter(&out, pw), &out
	// Namespace inodes are reused: an event of an earlier namespace with
	// the same inode is older than the container.
	started := time.Now()
	if err := cmd.Start(); err != nil {
		r.err = fmt.Errorf("docker run: %w", err)
		return r
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); pw.Close() }()
	defer func() {
		stdin.Close()
		if err := <-exited; err != nil && r.err == nil {
			r.err = fmt.Errorf("docker run: %v\n%s", err, out.String())
		}
	}()
	// Wait for the script's "done", reading the actor's report on the way.
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		io.Copy(io.Discard, pr)
	}()
	timeout := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				r.err = fmt.Errorf("the actions script stopped before its end: %s", out.String())
				return r
			}
			if pid, ok := strings.CutPrefix(l, "ptrace "); ok {
				fmt.Sscan(pid, &r.ptracePID)
			}
			if l == "done" {
				break wait
			}
		case <-timeout:
			r.err = fmt.Errorf("the actions script did not finish within 60 s: %s", out.String())
			return r
		}
	}
	go func() {
		for range lines {
		}
	}()
	b, err := os.ReadFile(cidFile)
	if err != nil {
		r.err = err
		return r
	}
	r.id = strings.TrimSpace(string(b))
	pid, err := exec.Command("docker", "inspect", "--format", "{{.State.Pid}}", r.id).Output()
	if err != nil {
		r.err = fmt.Errorf("docker inspect: %w", err)
		return r
	}
	ns, err := os.Readlink("/proc/" + strings.TrimSpace(string(pid)) + "/ns/mnt")
	if err != nil {
		r.err = err
		return r
	}
	if _, err := fmt.Sscanf(ns, "mnt:[%d]", &r.mntNS); err != nil {
		r.err = fmt.Errorf("mount namespace %q: %w", ns, err)
		return r
	}
	match := make(map[string]func(*event.Event) bool)
	for name, c := range actionChecks(&r) {
		match[name] = func(e *event.Event) bool { return e.Process.MntNS == r.mntNS && e.Time.After(started) && c.match(e) }
	}
	r.got, r.missing = a.waitAll(30*time.Second, match)
	if len(r.missing) > 0 {
		r.stats = a.stats()
	}
	r.out = out.String()
	return r
}

// actionCheck finds one action's event among those of the container's
// mount namespace and checks it.
type actionCheck struct {
	match func(*event.Event) bool
	// parent is the parent's name (a prefix: the shim's is truncated).
	parent string
	// user and group are the names the process's IDs must resolve to.
	user, group string
	// check returns what is wrong with the event's own fields.
	check func(*event.Event) []string
}

const (
	ptraceAttach = 16         // PTRACE_ATTACH
	cloneNewUser = 0x10000000 // CLONE_NEWUSER
	sIsUID       = 0o4000     // S_ISUID
)

func actionChecks(r *actionsResult) map[string]actionCheck {
	exec := func(args ...string) func(*event.Event) bool {
		return func(e *event.Event) bool {
			return e.Type == event.ProcessExec && slices.Equal(e.Process.Args, args)
		}
	}
	of := func(k event.Kind, comm string, f func(*event.Event) bool) func(*event.Event) bool {
		return func(e *event.Event) bool { return e.Type == k && e.Process.Name == comm && f(e) }
	}
	port := netip.MustParseAddrPort("127.0.0.1:47123")
	var errs []string
	want := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	done := func() []string { e := errs; errs = nil; return e }
	return map[string]actionCheck{
		"shell exec with arguments": {
			match: exec("sh", "-c", "echo a b"), parent: "sh",
			check: func(e *event.Event) []string {
				want(slices.Contains([]string{"/usr/bin/sh", "/bin/sh", "/usr/bin/dash", "/bin/dash"}, e.Process.Exe), "exe %q", e.Process.Exe)
				want(e.Process.CmdLine == "" || e.Process.CmdLine == "sh -c echo a b", "cmd_line %q", e.Process.CmdLine)
				want(e.Syscall == "" || e.Syscall == "execve", "syscall %q", e.Syscall)
				return done()
			},
		},
		"read of /etc/shadow": {
			match: of(event.FileOpen, "cat", func(e *event.Event) bool { return e.File != nil && e.File.Path == "/etc/shadow" }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.File.Flags&syscall.O_ACCMODE == syscall.O_RDONLY, "flags %#o, want read-only", e.File.Flags)
				want(e.Ret >= 0, "ret %d", e.Ret)
				return done()
			},
		},
		"write under /usr/bin": {
			// sh itself opens the redirection: its parent is the shim.
			match:  of(event.FileOpen, "sh", func(e *event.Event) bool { return e.File != nil && e.File.Path == "/usr/bin/vigil-written" }),
			parent: "containerd-shim",
			check: func(e *event.Event) []string {
				want(e.File.Flags&syscall.O_CREAT != 0 && e.File.Flags&syscall.O_ACCMODE == syscall.O_WRONLY, "flags %#o, want O_CREAT|O_WRONLY", e.File.Flags)
				want(e.Ret >= 0, "ret %d", e.Ret)
				return done()
			},
		},
		"bind of the new port": {
			match: of(event.NetBind, "actor", func(e *event.Event) bool { return e.Net != nil && e.Net.Src == port }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.Net.Family == "inet" && e.Ret == 0, "family %q ret %d", e.Net.Family, e.Ret)
				return done()
			},
		},
		"listen on the new port": {
			match: of(event.NetListen, "actor", func(e *event.Event) bool { return true }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.Net != nil && e.Net.Backlog > 0, "net %+v, want a backlog", e.Net)
				want(e.Ret == 0, "ret %d", e.Ret)
				return done()
			},
		},
		"connect to 127.0.0.1": {
			match: of(event.NetConnect, "actor", func(e *event.Event) bool { return e.Net != nil && e.Net.Dst == port }), parent: "sh",
			check: func(e *event.Event) []string {
				// Go connects without blocking: EINPROGRESS is success.
				want(e.Net.Family == "inet" && (e.Ret == 0 || e.Ret == -int64(syscall.EINPROGRESS)), "family %q ret %d", e.Net.Family, e.Ret)
				return done()
			},
		},
		"ptrace attach": {
			match: of(event.Ptrace, "actor", func(e *event.Event) bool { return e.Detail != nil && e.Detail.Request == ptraceAttach }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.Target != nil && e.Target.PID == r.ptracePID, "target %+v, want pid %d", e.Target, r.ptracePID)
				return done()
			},
		},
		"memfd_create": {
			match: of(event.MemfdCreate, "actor", func(e *event.Event) bool { return e.Detail != nil && e.Detail.Name == "vigil-actor" }), parent: "sh",
			check: func(e *event.Event) []string { return nil },
		},
		"memfd exec": {
			match: exec("actor-memfd", "noop"), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.Process.ExeMemfd, "exe_memfd false (exe %q)", e.Process.Exe)
				want(strings.HasPrefix(e.Process.Exe, "/proc/self/fd/") || strings.Contains(e.Process.Exe, "memfd:vigil-actor"), "exe %q", e.Process.Exe)
				return done()
			},
		},
		"chmod u+s": {
			match: of(event.FileChmod, "chmod", func(e *event.Event) bool { return e.File != nil && e.File.Path == "/tmp/x" }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.File.Mode&sIsUID != 0, "mode %#o lacks S_ISUID", e.File.Mode)
				return done()
			},
		},
		"unshare": {
			match: of(event.Unshare, "unshare", func(e *event.Event) bool { return e.Detail != nil && e.Detail.Request&cloneNewUser != 0 }), parent: "sh",
			check: func(e *event.Event) []string { return nil },
		},
		"packet socket": {
			match: of(event.NetSocket, "actor", func(e *event.Event) bool { return e.Net != nil && e.Net.Family == "packet" }), parent: "sh",
			check: func(e *event.Event) []string {
				want(e.Net.Type == "raw", "type %q, want raw", e.Net.Type)
				want(e.Ret >= 0, "ret %d", e.Ret)
				return done()
			},
		},
		"exec as a user only the container knows": {
			match: exec("cat", "/etc/hostname"), parent: "sh", user: "vigiltester", group: "vigilgroup",
			check: func(e *event.Event) []string {
				want(e.Process.UID == 4242 && e.Process.GID == 4242, "uid %d gid %d", e.Process.UID, e.Process.GID)
				return done()
			},
		},
	}
}

// TestContainerActions is issue 4's list of actions inside a real
// container: each one's event is found, with its own fields, its parent
// and ancestry, its user's names from the container's own files, and the
// container's ID, name and image.
func TestContainerActions(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	r := runActions(t, img)
	if len(r.id) != 64 {
		t.Fatalf("container ID %q", r.id)
	}
	checks := actionChecks(r)
	for _, name := range slices.Sorted(maps.Keys(checks)) {
		t.Run(strings.ReplaceAll(name, " ", "_"), func(t *testing.T) {
			c := checks[name]
			e := r.got[name]
			if e == nil {
				t.Fatalf("no event within the deadline (container output: %q; agent stats %s)", r.out, r.stats)
			}
			for _, problem := range c.check(e) {
				t.Errorf("%s: %s", e.Type, problem)
			}
			w := e.Workload
			if w == nil || w.ContainerID != r.id || w.ContainerName != r.name || w.Image != img ||
				w.Runtime != "docker" || w.NetworkMode != "none" || w.Privileged || w.StartedAt.IsZero() {
				t.Errorf("workload %+v (process cgroup name %q), want container %s %s of %s, network none, unprivileged, with a start time", w, e.Process.CgroupName, r.name, r.id, img)
			}
			if e.Parent == nil || !strings.HasPrefix(e.Parent.Name, c.parent) {
				t.Errorf("parent %+v, want %s", e.Parent, c.parent)
			} else if e.Parent.User != "root" {
				t.Errorf("parent's user %q, want root", e.Parent.User)
			}
			// Above the container's sh is the runtime's shim; above the
			// shim, the host, up to pid 1.
			chain := []string{}
			if e.Parent != nil {
				chain = append(chain, e.Parent.Name)
			}
			for _, a := range e.Ancestors {
				chain = append(chain, a.Name)
			}
			shim := slices.IndexFunc(chain, func(n string) bool { return strings.HasPrefix(n, "containerd-shim") })
			if shim < 0 || (c.parent == "sh" && shim != 1) || len(e.Ancestors) == 0 || e.Ancestors[len(e.Ancestors)-1].PID != 1 {
				t.Errorf("ancestry %q (last pid %v), want %s, the shim, …, pid 1", chain, e.Ancestors, c.parent)
			}
			user, group := c.user, c.group
			if user == "" {
				user, group = "root", "root"
			}
			if e.Process.User != user || e.Process.Group != group {
				t.Errorf("user %q group %q, want %q %q", e.Process.User, e.Process.Group, user, group)
			}
		})
	}
}

// TestAgentOutputSchema checks every line the agent wrote during the
// actions run: each decodes into event.Event with no unknown field, and
// has a time, a known type, a process pid and a workload host.
func TestAgentOutputSchema(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	r := runActions(t, img)
	if len(r.lines) < len(actionChecks(r)) {
		t.Fatalf("only %d lines", len(r.lines))
	}
	bad := 0
	for i, line := range r.lines {
		var e event.Event
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		err := dec.Decode(&e)
		var raw struct {
			Time     *json.RawMessage        `json:"time"`
			Type     *string                 `json:"type"`
			Process  *struct{ PID *int32 }   `json:"process"`
			Workload *struct{ Host *string } `json:"workload"`
		}
		if err == nil {
			err = json.Unmarshal(line, &raw)
		}
		switch {
		case err != nil:
		case raw.Time == nil || e.Time.IsZero():
			err = fmt.Errorf("no time")
		case raw.Type == nil || e.Type == event.KindUnknown:
			err = fmt.Errorf("type missing or unknown")
		case raw.Process == nil || raw.Process.PID == nil || e.Process.PID <= 0:
			err = fmt.Errorf("no process.pid")
		case raw.Workload == nil || raw.Workload.Host == nil || e.Workload.Host == "":
			err = fmt.Errorf("no workload.host")
		}
		if err != nil {
			if bad++; bad <= 10 {
				t.Errorf("line %d: %v: %.400s", i+1, err, line)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d lines do not match the schema", bad, len(r.lines))
	}
	t.Logf("%d lines checked", len(r.lines))
}
