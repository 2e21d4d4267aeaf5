package agent

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// dockerRunAgent is how docs/agent.md runs the agent in a container: the
// host's pid namespace and network, every capability this VM grants,
// tracefs, cgroups, BTF and the Docker socket mounted.
var dockerRunAgent = []string{
	"--pid", "host", "--network", "host",
	"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
	"-v", "/sys/kernel/tracing:/sys/kernel/tracing",
	"-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
	"-v", "/sys/kernel/btf:/sys/kernel/btf:ro",
	"-v", "/var/run/docker.sock:/var/run/docker.sock",
}

// TestAgentInContainer builds a FROM-scratch image holding a static vigil,
// runs the agent in a container with the documented privileges, and checks
// that it reports another container's read of /etc/shadow with that
// container's identity — the deployment a DaemonSet will use.
func TestAgentInContainer(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	_, file, _, _ := runtime.Caller(0)
	repo := filepath.Join(filepath.Dir(file), "..", "..")

	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "vigil"), "./cmd/vigil")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY vigil /vigil\nENTRYPOINT [\"/vigil\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	agentImg := "vigil-test/agent:test"
	db := exec.Command("docker", "build", "-q", "-t", agentImg, dir)
	db.Env = append(os.Environ(), "DOCKER_BUILDKIT=0")
	if out, err := db.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	suffix := fmt.Sprint(time.Now().UnixNano())
	agentName, readerName := "vigil-agent-"+suffix, "vigil-reader-"+suffix
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", agentName, readerName).Run() })
	args := append([]string{"run", "-d", "--name", agentName}, dockerRunAgent...)
	args = append(args, agentImg, "agent", "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", port))
	if out, err := exec.Command("docker", args...).CombinedOutput(); err != nil {
		t.Fatalf("docker run agent: %v\n%s", err, out)
	}
	healthy := false
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", port))
		if err == nil {
			resp.Body.Close()
			healthy = resp.StatusCode == 200
			break
		}
	}
	if !healthy {
		logs, _ := exec.Command("docker", "logs", agentName).CombinedOutput()
		t.Fatalf("agent in a container not healthy within 60 s; logs:\n%s", logs)
	}

	if out, err := exec.Command("docker", "run", "--rm", "--name", readerName, "--network", "none", img,
		"sh", "-c", "cat /etc/shadow >/dev/null").CombinedOutput(); err != nil {
		t.Fatalf("docker run reader: %v\n%s", err, out)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out, err := exec.Command("docker", "logs", agentName).Output()
		if err != nil {
			t.Fatal(err)
		}
		var sawExec, sawOpen bool
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var e event.Event
			if json.Unmarshal(sc.Bytes(), &e) != nil || e.Process.Name != "cat" || e.Workload == nil || e.Workload.ContainerName != readerName {
				continue
			}
			if e.Workload.Image != img || len(e.Workload.ContainerID) != 64 {
				t.Fatalf("%s: workload %+v", e.Type, e.Workload)
			}
			sawExec = sawExec || e.Type == event.ProcessExec
			sawOpen = sawOpen || (e.Type == event.FileOpen && e.File != nil && e.File.Path == "/etc/shadow")
		}
		if sawExec && sawOpen {
			return
		}
	}
	logs, _ := exec.Command("docker", "logs", "--tail", "20", agentName).CombinedOutput()
	t.Fatalf("no exec and open of /etc/shadow from %s within 30 s; agent's last lines:\n%s", readerName, strings.TrimSpace(string(logs)))
}
