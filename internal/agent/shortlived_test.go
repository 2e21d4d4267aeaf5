package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/workload"
)

// shortRuns is how many one-command containers TestShortLivedContainers
// starts, shortParallel how many at a time.
const shortRuns, shortParallel = 20, 4

// TestShortLivedContainers is issue 4's "a container that starts and runs
// one command within milliseconds still gets its identity": with the agent
// running, each of 20 `docker run --rm --network none IMG /bin/echo MARK`
// must give an exec event of echo carrying that container's 64-hex ID,
// name and image.
func TestShortLivedContainers(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	a := startAgent(t)

	type run struct{ name, mark, id string }
	runs := make([]run, shortRuns)
	dir := t.TempDir()
	base := uniqueName(t, "c")
	for i := range runs {
		runs[i] = run{name: fmt.Sprintf("%s-%d", base, i), mark: fmt.Sprintf("vigil-short-%d-%d", time.Now().UnixNano(), i)}
	}
	var wg sync.WaitGroup
	errs := make([]error, len(runs))
	next := make(chan int)
	for range shortParallel {
		wg.Go(func() {
			for i := range next {
				r := &runs[i]
				cid := filepath.Join(dir, r.name+".cid")
				out, err := exec.Command("docker", "run", "--rm", "--network", "none", "--name", r.name,
					"--cidfile", cid, img, "/bin/echo", r.mark).CombinedOutput()
				if err != nil || strings.TrimSpace(string(out)) != r.mark {
					errs[i] = fmt.Errorf("docker run %s: %v: %s", r.name, err, out)
					continue
				}
				b, err := os.ReadFile(cid)
				if err != nil {
					errs[i] = err
					continue
				}
				r.id = strings.TrimSpace(string(b))
			}
		})
	}
	for i := range runs {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	match := make(map[string]func(*event.Event) bool, len(runs))
	for _, r := range runs {
		match[r.name] = func(e *event.Event) bool {
			return e.Type == event.ProcessExec && slices.Equal(e.Process.Args, []string{"/bin/echo", r.mark})
		}
	}
	got, miss := a.waitAll(30*time.Second, match)
	if len(miss) > 0 {
		t.Fatalf("no exec event for %d of %d runs: %v; agent stats %s", len(miss), len(runs), miss, a.stats())
	}
	identified := 0
	for _, r := range runs {
		e := got[r.name]
		w := e.Workload
		if w == nil || w.ContainerID != r.id || w.ContainerName != r.name || w.Image != img {
			t.Errorf("%s (%s): exec of echo has workload %+v; agent log:\n%s", r.name, r.id, w, a.log.grep(r.id))
			continue
		}
		if len(w.ContainerID) != 64 {
			t.Errorf("%s: container ID %q is not the full 64-hex ID", r.name, w.ContainerID)
		}
		if e.Process.Exe != "/usr/bin/echo" && e.Process.Exe != "/bin/echo" {
			t.Errorf("%s: exe %q", r.name, e.Process.Exe)
		}
		identified++
	}
	t.Logf("%d of %d one-command containers identified on their exec event", identified, len(runs))
}

// TestIdentifyByCgroupName checks identify's use of the cgroup name the
// sensor read at exec, without Docker: a process already gone (no /proc
// entry) keeps its container ID instead of being called the host's, and a
// host cgroup name changes nothing.
func TestIdentifyByCgroupName(t *testing.T) {
	const id = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	const id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	o := workload.Options{Hostname: "node", DockerHost: "unix:///nonexistent/docker.sock", Proc: t.TempDir(), CgroupRoot: t.TempDir()}
	res, err := workload.NewResolver(o)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for _, tc := range []struct{ name, wantID, wantRuntime string }{
		{"docker-" + id + ".scope", id, "docker"},
		{id2, id2, ""},
		{"session-2.scope", "", ""},
		{"", "", ""},
	} {
		e := &event.Event{Type: event.ProcessExec, Process: event.Process{PID: 4242, CgroupName: tc.name}}
		w := identify(t.Context(), res, e)
		if w.Host != "node" || w.ContainerID != tc.wantID || w.Runtime != tc.wantRuntime {
			t.Errorf("cgroup name %q: workload %+v, want container %q runtime %q", tc.name, w, tc.wantID, tc.wantRuntime)
		}
	}
}
