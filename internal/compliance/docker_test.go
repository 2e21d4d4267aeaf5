package compliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// onlyThese limits a Docker client to the test's own containers (other
// tests run containers on the same daemon).
type onlyThese struct {
	*DockerClient
	ids map[string]bool
}

func (o onlyThese) ContainerIDs(ctx context.Context) ([]string, error) {
	all, err := o.DockerClient.ContainerIDs(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range all {
		if o.ids[id] {
			out = append(out, id)
		}
	}
	return out, nil
}

func dockerRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	full := append([]string{"run", "-d", "--name", name}, args...)
	full = append(full, vigiltest.BookwormImage, "sleep", "infinity")
	out, err := exec.Command("docker", full...).CombinedOutput()
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	if err != nil {
		t.Fatalf("docker %s: %v: %s", strings.Join(full, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestDockerContainers starts containers in deliberately bad
// configurations and one configured as the benchmark asks, on the real
// daemon, and checks each flag.
func TestDockerContainers(t *testing.T) {
	vigiltest.RequireBookwormImage(t)
	b := make([]byte, 4)
	rand.Read(b)
	p := "vigil-bench-" + hex.EncodeToString(b) + "-"

	ids := map[string]bool{}
	names := map[string]string{}
	start := func(role string, args ...string) {
		id := dockerRun(t, p+role, args...)
		ids[id] = true
		names[role] = p + role + " (" + id[:12] + ")"
	}
	if out, err := exec.Command("docker", "network", "create", p+"net").CombinedOutput(); err != nil {
		t.Fatalf("docker network create: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "network", "rm", p+"net").Run() })
	start("priv", "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined")
	start("sock", "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", "/etc:/host-etc:ro")
	start("hostns", "--network", "host", "--pid", "host", "--ipc", "host", "--uts", "host")
	start("ports", "-p", "0.0.0.0:777:80", "--restart", "always", "--cap-add", "NET_ADMIN")
	start("good", "--read-only", "--user", "1000:1000", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "64",
		"--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--restart", "on-failure:5",
		"--health-cmd", "true", "-p", "127.0.0.1::8080", "--network", p+"net")

	dc, err := NewDockerClient("")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	rep, err := Run(context.Background(), BenchDocker, Options{Root: t.TempDir(), Docker: onlyThese{dc, ids}, Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Result{} // "id@role"
	for _, r := range rep.Results {
		for role, target := range names {
			if r.Target == target {
				got[r.ID+"@"+role] = r
			}
		}
	}
	if len(got) == 0 {
		t.Fatalf("no per-container results; results: %+v", rep.Results)
	}
	type want struct{ id, role, status, evidence string }
	wants := []want{
		{"5.4", "priv", Fail, "ALL is privileged-equivalent"},
		{"5.3", "priv", Fail, "CapAdd [ALL]"},
		{"5.21", "priv", Fail, "seccomp=unconfined"},
		{"5.31", "sock", Fail, "/var/run/docker.sock:/var/run/docker.sock"},
		{"5.5", "sock", Fail, "/etc:/host-etc:ro"},
		{"5.9", "hostns", Fail, `NetworkMode "host"`},
		{"5.15", "hostns", Fail, `PidMode "host"`},
		{"5.16", "hostns", Fail, `IpcMode "host"`},
		{"5.20", "hostns", Fail, `UTSMode "host"`},
		{"5.7", "ports", Fail, "0.0.0.0:777->80/tcp"},
		{"5.13", "ports", Fail, "bound to all interfaces"},
		{"5.14", "ports", Fail, `RestartPolicy "always"`},
		{"5.3", "ports", Fail, "NET_ADMIN"},
		{"5.4", "ports", Pass, "Privileged false"},
		{"5.10", "priv", Fail, "Memory 0"},
		{"5.28", "priv", Fail, "PidsLimit"},
		{"5.12", "sock", Fail, "ReadonlyRootfs false"},
		{"4.1", "hostns", Fail, "runs as root"},
		{"5.25", "priv", Fail, "without no-new-privileges"},
		{"5.26", "priv", Fail, "no healthcheck"},
		{"5.29", "priv", Warn, `NetworkMode "default" (docker0)`},
	}
	for _, id := range []string{"4.1", "5.3", "5.4", "5.5", "5.7", "5.9", "5.10", "5.11", "5.12", "5.13", "5.14", "5.15", "5.16",
		"5.17", "5.19", "5.20", "5.21", "5.24", "5.25", "5.26", "5.28", "5.29", "5.30", "5.31"} {
		wants = append(wants, want{id, "good", Pass, ""})
	}
	for _, w := range wants {
		r, ok := got[w.id+"@"+w.role]
		if !ok {
			t.Errorf("no result %s for %s", w.id, w.role)
			continue
		}
		if r.Status != w.status || !strings.Contains(r.Evidence, w.evidence) {
			t.Errorf("%s on %s: %s %q (error %q), want %s with %q", w.id, w.role, r.Status, r.Evidence, r.Error, w.status, w.evidence)
		}
	}
}

// TestDockerHost runs the whole Docker benchmark on this host's daemon:
// every result has a valid status, and every running container is covered.
func TestDockerHost(t *testing.T) {
	vigiltest.RequireDocker(t)
	dc, err := NewDockerClient("")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	rep, err := Run(context.Background(), BenchDocker, Options{Docker: dc})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(Checks(BenchDocker)); n < 30 {
		t.Errorf("%d Docker checks, want at least 30", n)
	}
	for _, r := range rep.Results {
		switch r.Status {
		case Pass, Fail, Warn, Manual:
		case Error:
			if r.Error == "" {
				t.Errorf("%s: error without a reason", r.ID)
			}
		default:
			t.Errorf("%s: invalid status %q", r.ID, r.Status)
		}
	}
	t.Logf("docker: %+v", rep.Summary)
}

// TestDockerDaemonConfig: daemon.json and dockerd's command line (flags
// win) in good and bad states, with file permissions.
func TestDockerDaemonConfig(t *testing.T) {
	good := t.TempDir()
	tree(t, good, map[string]string{
		"/etc/docker/daemon.json": `{"icc": false, "log-level": "info", "userns-remap": "default", "log-driver": "journald",
			"live-restore": true, "userland-proxy": false, "no-new-privileges": true, "experimental": false,
			"tlsverify": true, "tlscacert": "/etc/docker/ca.pem", "tlscert": "/etc/docker/cert.pem", "tlskey": "/etc/docker/key.pem", "authorization-plugins": ["authz-broker"]}`,
		"/etc/docker/ca.pem": "ca", "/etc/docker/cert.pem": "cert", "/etc/docker/key.pem": "key",
		"/proc/812/comm":                     "dockerd\n",
		"/proc/812/cmdline":                  "/usr/bin/dockerd\x00-H\x00fd://\x00-H\x00tcp://0.0.0.0:2376\x00--containerd=/run/containerd/containerd.sock\x00",
		"/lib/systemd/system/docker.service": "[Service]\n", "/lib/systemd/system/docker.socket": "[Socket]\n",
		"/usr/bin/dockerd": "elf", "/usr/sbin/runc": "elf",
		"/etc/audit/rules.d/docker.rules": "-w /usr/bin/dockerd -k docker\n-w /etc/docker -k docker\n-w /lib/systemd/system/docker.service -k docker\n" +
			"-a always,exit -F path=/lib/systemd/system/docker.socket -F perm=wa -k docker\n-w /etc/docker/daemon.json -k docker\n-w /usr/sbin/runc -k docker\n",
		"/etc/group": groupFixture, "/etc/passwd": passwdFixture,
	})
	chmod(t, good, map[string]os.FileMode{"/etc/docker/ca.pem": 0o444, "/etc/docker/cert.pem": 0o444, "/etc/docker/key.pem": 0o400})
	rep, err := Run(context.Background(), BenchDocker, Options{Root: good, Host: "h", Exec: noExec})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "4.") || strings.HasPrefix(r.ID, "5.") {
			continue // per-container: no Docker client here
		}
		if r.Status != Pass {
			t.Errorf("good %s %s: %s %q %q", r.ID, r.Title, r.Status, r.Evidence, r.Error)
		}
	}

	bad := t.TempDir()
	tree(t, bad, map[string]string{
		"/etc/docker/daemon.json":            `{"icc": true, "log-level": "debug", "insecure-registries": ["10.0.0.5:5000"], "experimental": true}`,
		"/proc/77/comm":                      "dockerd\n",
		"/proc/77/cmdline":                   "dockerd\x00--host=tcp://0.0.0.0:2375\x00--live-restore=false\x00--userland-proxy\x00--iptables=false\x00-s\x00aufs\x00",
		"/etc/systemd/system/docker.service": "[Service]\n",
		"/etc/group":                         groupFixture, "/etc/passwd": passwdFixture,
		"/etc/docker/certs.d/reg:5000/ca.crt": "ca", "/etc/default/docker": "DOCKER_OPTS=\n",
	})
	if err := os.Chown(filepath.Join(bad, "/etc/default/docker"), 1000, 0); err != nil {
		t.Fatal(err)
	}
	chmod(t, bad, map[string]os.FileMode{"/etc/docker/daemon.json": 0o666, "/etc/systemd/system/docker.service": 0o664, "/etc/docker": 0o777})
	rep, err = Run(context.Background(), BenchDocker, Options{Root: bad, Host: "h", Exec: noExec})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"2.1":   "icc true (/etc/docker/daemon.json) (want false)",
		"2.2":   "log-level debug",
		"2.4":   "insecure-registries 10.0.0.5:5000",
		"2.6":   "hosts tcp://0.0.0.0:2375 (dockerd command line (pid 77))",
		"2.8":   "userns-remap not set",
		"2.12":  "log-driver not set (default json-file)",
		"2.13":  "live-restore false (dockerd command line (pid 77))",
		"2.14":  "userland-proxy true (dockerd command line",
		"2.16":  "experimental true",
		"2.17":  "no-new-privileges not set",
		"3.2":   "/etc/systemd/system/docker.service: mode 0664",
		"3.6":   "/etc/docker: mode 0777",
		"3.18":  "/etc/docker/daemon.json: mode 0666",
		"1.2.5": "missing: -w /etc/docker",
		"1.2.6": "missing: -w /etc/systemd/system/docker.service",
		"3.8":   "/etc/docker/certs.d/reg:5000/ca.crt: mode 0644",
		"3.19":  "/etc/default/docker: mode 0644 uid 1000(alice) gid 0(root) — owner not root",
		"2.3":   "iptables false (dockerd command line",
		"2.5":   "storage-driver aufs",
		"2.11":  "authorization-plugins not set",
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.ID] = r
	}
	for id, sub := range want {
		if r := got[id]; r.Status != Fail || !strings.Contains(r.Evidence, sub) {
			t.Errorf("bad %s: %s %q (error %q), want fail with %q", id, r.Status, r.Evidence, r.Error, sub)
		}
	}
	// No Docker client: per-container checks are errors naming why.
	if r := got["5.4"]; r.Status != Error || !strings.Contains(r.Error, "no Docker client") {
		t.Errorf("5.4 without a client: %s %q", r.Status, r.Error)
	}
}

func TestParseDockerdArgs(t *testing.T) {
	got, err := parseDockerdArgs([]string{"-H", "fd://", "--host=tcp://1.2.3.4:2376", "--icc=false", "--live-restore",
		"-l", "warn", "--insecure-registry", "a:5000", "--insecure-registry=b:5000", "--unknown", "x"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"hosts": "fd://,tcp://1.2.3.4:2376", "icc": "false", "live-restore": "true",
		"log-level": "warn", "insecure-registries": "a:5000,b:5000"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if _, err := parseDockerdArgs([]string{"--log-driver"}); err == nil || !strings.Contains(err.Error(), "--log-driver") {
		t.Errorf("a flag without its value: %v", err)
	}
}

// BenchmarkDocker is the whole Docker benchmark against the real daemon
// and this host's files, with whatever containers are running.
func BenchmarkDocker(b *testing.B) {
	vigiltest.RequireDocker(b)
	dc, err := NewDockerClient("")
	if err != nil {
		b.Fatal(err)
	}
	defer dc.Close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), BenchDocker, Options{Docker: dc, Host: "h"}); err != nil {
			b.Fatal(err)
		}
	}
}

// fakeDocker serves fixed containers.
type fakeDocker []container.InspectResponse

func (f fakeDocker) ContainerIDs(context.Context) ([]string, error) {
	var ids []string
	for _, c := range f {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

func (f fakeDocker) Inspect(_ context.Context, id string) (container.InspectResponse, error) {
	for _, c := range f {
		if c.ID == id {
			return c, nil
		}
	}
	return container.InspectResponse{}, errors.New("gone")
}

// TestContainerChecksSeeTheHost: 5.25 passes through the daemon's
// no-new-privileges; 5.1 warns without AppArmor in the kernel and fails
// with it.
func TestContainerChecksSeeTheHost(t *testing.T) {
	c := fakeDocker{{ID: "0123456789abcdef", Name: "/web", HostConfig: &container.HostConfig{}}}
	run := func(files map[string]string) map[string]Result {
		root := t.TempDir()
		tree(t, root, files)
		rep, err := Run(context.Background(), BenchDocker, Options{Root: root, Docker: c, Host: "h", Exec: noExec})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Result{}
		for _, r := range rep.Results {
			if r.Target == "web (0123456789ab)" {
				out[r.ID] = r
			}
		}
		return out
	}
	got := run(map[string]string{"/etc/docker/daemon.json": `{"no-new-privileges": true}`})
	if r := got["5.25"]; r.Status != Pass || !strings.Contains(r.Evidence, "daemon no-new-privileges true (/etc/docker/daemon.json)") {
		t.Errorf("5.25 with the daemon's no-new-privileges: %s %q", r.Status, r.Evidence)
	}
	if r := got["5.1"]; r.Status != Warn || !strings.Contains(r.Evidence, "AppArmor is not enabled in the host kernel") {
		t.Errorf("5.1 without AppArmor: %s %q", r.Status, r.Evidence)
	}
	got = run(map[string]string{"/etc/docker/daemon.json": `{}`, "/sys/module/apparmor/parameters/enabled": "Y\n"})
	if r := got["5.25"]; r.Status != Fail {
		t.Errorf("5.25 without no-new-privileges: %s %q", r.Status, r.Evidence)
	}
	if r := got["5.1"]; r.Status != Fail || r.Evidence != `AppArmorProfile ""` {
		t.Errorf("5.1 with AppArmor, unconfined container: %s %q", r.Status, r.Evidence)
	}
}

// flakyDocker lists containers it then cannot inspect.
type flakyDocker struct{ fakeDocker }

func (f flakyDocker) ContainerIDs(ctx context.Context) ([]string, error) {
	ids, _ := f.fakeDocker.ContainerIDs(ctx)
	return append(ids, "stopped", "broken"), nil
}

func (f flakyDocker) Inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	switch id {
	case "stopped":
		return container.InspectResponse{}, fmt.Errorf("no such container: %w", errdefs.ErrNotFound)
	case "broken":
		return container.InspectResponse{}, errors.New("daemon said 500")
	}
	return f.fakeDocker.Inspect(ctx, id)
}

// TestContainerInspectFailures: a container gone between list and inspect
// is left out; one that cannot be inspected is an error for every check.
func TestContainerInspectFailures(t *testing.T) {
	d := flakyDocker{fakeDocker{{ID: "0123456789abcdef", Name: "/web", HostConfig: &container.HostConfig{Privileged: true}}}}
	rep, err := Run(context.Background(), BenchDocker, Options{Root: t.TempDir(), Docker: d, Host: "h", Exec: noExec})
	if err != nil {
		t.Fatal(err)
	}
	perTarget := map[string]int{}
	for _, r := range rep.Results {
		if strings.HasPrefix(r.ID, "5.") || r.ID == "4.1" {
			perTarget[r.Target]++
			if r.Target == "broken" && (r.Status != Error || !strings.Contains(r.Error, "daemon said 500")) {
				t.Errorf("%s on broken: %s %q", r.ID, r.Status, r.Error)
			}
			if r.ID == "5.4" && r.Target == "web (0123456789ab)" && r.Status != Fail {
				t.Errorf("5.4 on web: %s", r.Status)
			}
		}
	}
	if perTarget["stopped"] != 0 || perTarget["broken"] == 0 || perTarget["broken"] != perTarget["web (0123456789ab)"] {
		t.Errorf("results per target: %v", perTarget)
	}
}
