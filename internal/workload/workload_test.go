package workload

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

const testImage = "vigil-test/bookworm:minbase"

func newResolver(t *testing.T, o Options) *Resolver {
	t.Helper()
	r, err := NewResolver(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestForPIDHost(t *testing.T) {
	r := newResolver(t, Options{Hostname: "node-1", DockerHost: "unix:///nonexistent/docker.sock"})
	got := r.ForPID(context.Background(), os.Getpid())
	if diff := cmp.Diff(&event.Workload{Host: "node-1"}, got); diff != "" {
		t.Errorf("ForPID(self) (-want +got):\n%s", diff)
	}
	host, _ := os.Hostname()
	r2 := newResolver(t, Options{DockerHost: "unix:///nonexistent/docker.sock"})
	if got := r2.ForCgroupID(context.Background(), 1, os.Getpid()); got.Host != host || got.ContainerID != "" {
		t.Errorf("ForCgroupID(self) = %+v, want host %q only", got, host)
	}
	// A PID that does not exist is the host's: nothing else can be known.
	if got := r.ForPID(context.Background(), -5); got.ContainerID != "" {
		t.Errorf("ForPID(-5) = %+v", got)
	}
}

func TestNoDockerDegradesToIDs(t *testing.T) {
	proc := t.TempDir()
	if err := os.MkdirAll(proc+"/42", 0o755); err != nil {
		t.Fatal(err)
	}
	cg := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/cri-containerd-" + hexA + ".scope\n"
	if err := os.WriteFile(proc+"/42/cgroup", []byte(cg), 0o644); err != nil {
		t.Fatal(err)
	}
	// The v2 cgroup directory the ID names, in a hybrid host's unified mount.
	cgRoot := t.TempDir()
	id := cgroupDir(t, filepath.Join(cgRoot, "unified"), strings.TrimPrefix(strings.TrimSpace(cg), "0::"))
	r := newResolver(t, Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: proc, CgroupRoot: cgRoot})
	want := &event.Workload{Host: "n", ContainerID: hexA, Runtime: "containerd", PodUID: pod}
	if diff := cmp.Diff(want, r.ForPID(context.Background(), 42)); diff != "" {
		t.Errorf("ForPID (-want +got):\n%s", diff)
	}
	// An event whose cgroup ID is not that directory's (the process moved
	// into the container's cgroup after the event, as runc's init does) is
	// identified, but the ID is not remembered for the container.
	if diff := cmp.Diff(want, r.ForCgroupID(context.Background(), id+1, 42)); diff != "" {
		t.Errorf("ForCgroupID (-want +got):\n%s", diff)
	}
	r.mu.Lock()
	_, wrong := r.cgroups[id+1]
	r.mu.Unlock()
	if wrong {
		t.Error("a cgroup ID that is not the container's directory was remembered for it")
	}
	// The cgroup v2 line tells the container and the ID is its
	// directory's, so the ID is remembered and serves after the process is
	// gone.
	if diff := cmp.Diff(want, r.ForCgroupID(context.Background(), id, 42)); diff != "" {
		t.Errorf("ForCgroupID (-want +got):\n%s", diff)
	}
	os.RemoveAll(proc + "/42")
	if diff := cmp.Diff(want, r.ForCgroupID(context.Background(), id, 42)); diff != "" {
		t.Errorf("ForCgroupID after exit (-want +got):\n%s", diff)
	}
	if err := r.Refresh(context.Background()); err == nil {
		t.Error("Refresh without Docker succeeded")
	}
}

func TestCgroupIDIgnoredOnV1(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(proc+"/7", 0o755)
	os.MkdirAll(proc+"/8", 0o755)
	os.WriteFile(proc+"/7/cgroup", []byte("4:memory:/docker/"+hexA+"\n0::/\n"), 0o644)
	os.WriteFile(proc+"/8/cgroup", []byte("4:memory:/docker/"+hexB+"\n0::/\n"), 0o644)
	r := newResolver(t, Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: proc})
	ctx := context.Background()
	// All processes report cgroup ID 1 (the v2 root): it must not be cached.
	os.MkdirAll(proc+"/9", 0o755)
	os.WriteFile(proc+"/9/cgroup", []byte("4:memory:/user.slice\n0::/\n"), 0o644)
	if got := r.ForCgroupID(ctx, 1, 9); got.ContainerID != "" {
		t.Errorf("pid 9: got %q, want the host", got.ContainerID)
	}
	if got := r.ForCgroupID(ctx, 1, 7); got.ContainerID != hexA {
		t.Errorf("pid 7: got %q", got.ContainerID)
	}
	if got := r.ForCgroupID(ctx, 1, 8); got.ContainerID != hexB {
		t.Errorf("pid 8: got %q, want %q", got.ContainerID, hexB)
	}
}

type container struct {
	ID  string
	PID int
}

func dockerRun(t *testing.T, args ...string) container {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name := "vigil-wl-" + hex.EncodeToString(b)
	all := append([]string{"run", "-d", "--name", name, "--network", "none"}, args...)
	out, err := exec.Command("docker", all...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(all, " "), err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	insp := dockerOut(t, "inspect", "--format", "{{.Id}} {{.State.Pid}}", name)
	id, pidS, _ := strings.Cut(insp, " ")
	pid, err := strconv.Atoi(pidS)
	if err != nil || pid == 0 {
		t.Fatalf("container %s has no pid: %q", name, insp)
	}
	return container{ID: id, PID: pid}
}

func dockerOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDockerForPID(t *testing.T) {
	vigiltest.RequireDocker(t)
	ctx := context.Background()
	c := dockerRun(t, "--label", "app=demo", "--label", "io.kubernetes.pod.name=web-0",
		"--label", "io.kubernetes.pod.namespace=shop", testImage, "sleep", "60")
	r := newResolver(t, Options{Hostname: "node-1"})
	got := r.ForPID(ctx, c.PID)
	if got.ContainerID != c.ID {
		t.Fatalf("ContainerID = %q, want %q (workload %+v)", got.ContainerID, c.ID, got)
	}
	name := dockerOut(t, "inspect", "--format", "{{.Name}}", c.ID)
	imageID := dockerOut(t, "inspect", "--format", "{{.Image}}", c.ID)
	started, err := time.Parse(time.RFC3339Nano, dockerOut(t, "inspect", "--format", "{{.State.StartedAt}}", c.ID))
	if err != nil {
		t.Fatal(err)
	}
	want := &event.Workload{
		Host:          "node-1",
		ContainerID:   c.ID,
		ContainerName: strings.TrimPrefix(name, "/"),
		Runtime:       "docker",
		Image:         testImage,
		ImageDigest:   imageID, // a locally built image has no repo digest
		Labels:        map[string]string{"app": "demo", LabelPodName: "web-0", LabelPodNamespace: "shop"},
		NetworkMode:   "none",
		PodName:       "web-0",
		PodNamespace:  "shop",
		PodLabels:     map[string]string{"app": "demo"},
		StartedAt:     started,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ForPID (-want +got):\n%s", diff)
	}
	if got2 := r.ForCgroupID(ctx, 0, c.PID); got2 != got {
		t.Error("second lookup did not come from the cache")
	}
}

func TestDockerMountsAndCaps(t *testing.T) {
	vigiltest.RequireDocker(t)
	src := t.TempDir()
	c := dockerRun(t, "--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--security-opt", "seccomp=unconfined",
		"-v", src+":/x:ro", testImage, "sleep", "60")
	r := newResolver(t, Options{})
	got := r.ForPID(context.Background(), c.PID)
	if got.ContainerID != c.ID {
		t.Fatalf("ContainerID = %q, want %q", got.ContainerID, c.ID)
	}
	if !got.Privileged {
		t.Error("Privileged = false, want true: the container has every capability (--cap-add ALL)")
	}
	if got.StartedAt.IsZero() || time.Since(got.StartedAt) > time.Minute {
		t.Errorf("StartedAt = %v, want the last minute", got.StartedAt)
	}
	if !slices.Contains(got.Mounts, src+":/x:ro") {
		t.Errorf("Mounts = %q, want it to hold %q", got.Mounts, src+":/x:ro")
	}
}

func TestDockerExitedGrace(t *testing.T) {
	vigiltest.RequireDocker(t)
	ctx := context.Background()
	c := dockerRun(t, testImage, "sleep", "60")
	r := newResolver(t, Options{CacheTTL: time.Minute})
	clock := time.Now()
	r.now = func() time.Time { return clock }
	if got := r.ForPID(ctx, c.PID); got.ContainerName == "" {
		t.Fatalf("ForPID = %+v, want metadata", got)
	}
	dockerOut(t, "rm", "-f", c.ID)
	if err := r.Refresh(ctx); err != nil { // notices it is gone: grace starts
		t.Fatal(err)
	}
	clock = clock.Add(30 * time.Second)
	r.expire()
	if got := r.ForContainer(ctx, c.ID, RuntimeDocker); got.ContainerName == "" {
		t.Errorf("within grace: ForContainer = %+v, want metadata", got)
	}
	clock = clock.Add(time.Minute)
	r.expire()
	if got := r.ForContainer(ctx, c.ID, RuntimeDocker); got.ContainerName != "" || got.ContainerID != c.ID {
		t.Errorf("after grace: ForContainer = %+v, want IDs only", got)
	}
}

func TestDockerWatch(t *testing.T) {
	vigiltest.RequireDocker(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := newResolver(t, Options{CacheTTL: time.Minute})
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	time.Sleep(200 * time.Millisecond) // let the event stream open
	c := dockerRun(t, testImage, "sleep", "60")
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		e, ok := r.containers[c.ID]
		r.mu.Unlock()
		if ok && e.w.ContainerName != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not cache the started container")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dockerOut(t, "kill", c.ID)
	for {
		r.mu.Lock()
		exited := !r.containers[c.ID].exited.IsZero()
		r.mu.Unlock()
		if exited {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Watch did not see the container die")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func BenchmarkForCgroupIDCached(b *testing.B) {
	proc := b.TempDir()
	os.MkdirAll(proc+"/42", 0o755)
	os.WriteFile(proc+"/42/cgroup", []byte("0::/system.slice/docker-"+hexA+".scope\n"), 0o644)
	r, _ := NewResolver(Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: proc})
	defer r.Close()
	ctx := context.Background()
	r.ForCgroupID(ctx, 9, 42)
	b.ReportAllocs()
	for b.Loop() {
		r.ForCgroupID(ctx, 9, 42)
	}
}

func TestDockerSandboxPodLabels(t *testing.T) {
	vigiltest.RequireDocker(t)
	pod := []string{"--label", "io.kubernetes.pod.name=web-1", "--label", "io.kubernetes.pod.namespace=shop",
		"--label", "io.kubernetes.pod.uid=" + "5f0c3d8e-2b1a-4c9d-8e7f-6a5b4c3d2e1f"}
	sb := dockerRun(t, append(pod, "--label", "app=web", "--label", "tier=front",
		"--label", "io.kubernetes.docker.type=podsandbox", testImage, "sleep", "60")...)
	c := dockerRun(t, append(pod, "--label", LabelSandboxID+"="+sb.ID,
		"--label", "io.kubernetes.container.name=app", testImage, "sleep", "60")...)
	r := newResolver(t, Options{})
	got := r.ForPID(context.Background(), c.PID)
	want := map[string]string{"app": "web", "tier": "front"}
	if diff := cmp.Diff(want, got.PodLabels); diff != "" {
		t.Errorf("PodLabels (-want +got):\n%s", diff)
	}
	if got.PodName != "web-1" || got.PodNamespace != "shop" || got.PodUID != pod[5][len("io.kubernetes.pod.uid="):] {
		t.Errorf("pod = %q/%q %q", got.PodNamespace, got.PodName, got.PodUID)
	}
}

func TestCgroupIDHostCachedOnV2(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(proc+"/self", 0o755)
	os.MkdirAll(proc+"/5", 0o755)
	os.WriteFile(proc+"/self/cgroup", []byte("0::/system.slice/vigil.service\n"), 0o644)
	os.WriteFile(proc+"/5/cgroup", []byte("0::/user.slice/user-0.slice/session-1.scope\n"), 0o644)
	cgRoot := t.TempDir()
	id := cgroupDir(t, cgRoot, "/user.slice/user-0.slice/session-1.scope")
	r := newResolver(t, Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: proc, CgroupRoot: cgRoot})
	if !r.unified {
		t.Fatal("pure v2 host not detected")
	}
	if got := r.ForCgroupID(context.Background(), id, 5); got.ContainerID != "" {
		t.Fatalf("got %+v, want the host", got)
	}
	r.mu.Lock()
	_, ok := r.cgroups[id]
	r.mu.Unlock()
	if !ok {
		t.Error("host cgroup ID not remembered on a pure v2 host")
	}
}

func TestPrivilegedAndStartedAt(t *testing.T) {
	for _, tc := range []struct {
		flag   bool
		capAdd []string
		want   bool
	}{
		{false, nil, false},
		{true, nil, true},
		{false, []string{"NET_ADMIN", "SYS_PTRACE"}, false},
		{false, []string{"NET_ADMIN", "ALL"}, true},
		{false, []string{"all"}, true},
		{false, []string{"CAP_ALL"}, true},
	} {
		if got := privileged(tc.flag, tc.capAdd); got != tc.want {
			t.Errorf("privileged(%v, %q) = %v, want %v", tc.flag, tc.capAdd, got, tc.want)
		}
	}
	want := time.Date(2026, 11, 30, 3, 4, 5, 123456789, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-30T03:04:05.123456789Z": want,
		"0001-01-01T00:00:00Z":           {}, // never started
		"":                               {},
		"yesterday":                      {},
	} {
		if got := startedAt(in); !got.Equal(want) {
			t.Errorf("startedAt(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestDockerWatchCreate checks that Watch inspects a container when it is
// created, before it starts: a container that runs one command and is
// removed before its start event is handled still has its metadata.
func TestDockerWatchCreate(t *testing.T) {
	vigiltest.RequireDocker(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := newResolver(t, Options{CacheTTL: time.Minute})
	done := make(chan error, 1)
	go func() { done <- r.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	// The event stream opens at some point after Watch starts: create
	// containers until one is cached, each given a second.
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		b := make([]byte, 4)
		rand.Read(b)
		name := "vigil-wl-create-" + hex.EncodeToString(b)
		id := dockerOut(t, "create", "--name", name, "--network", "none", testImage, "true")
		t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
		for until := time.Now().Add(time.Second); time.Now().Before(until); time.Sleep(20 * time.Millisecond) {
			r.mu.Lock()
			e, ok := r.containers[id]
			r.mu.Unlock()
			if ok && e.w.ContainerName == name && e.w.Image == testImage && e.w.StartedAt.IsZero() {
				// Asked for once started, it is looked up again.
				dockerOut(t, "start", id)
				if got := r.ForContainer(ctx, id, RuntimeDocker); got.StartedAt.IsZero() || got.ContainerName != name {
					t.Errorf("after start: %+v, want a start time", got)
				}
				return
			}
		}
	}
	t.Fatal("no created container was cached by Watch within 20 s")
}

// TestDockerLookupKeepsMetadata checks that a failed lookup (the container
// is gone) keeps what an earlier one found, and starts its grace period.
func TestDockerLookupKeepsMetadata(t *testing.T) {
	vigiltest.RequireDocker(t)
	ctx := context.Background()
	c := dockerRun(t, testImage, "sleep", "60")
	r := newResolver(t, Options{})
	first := r.ForPID(ctx, c.PID)
	if first.ContainerName == "" {
		t.Fatalf("ForPID = %+v, want metadata", first)
	}
	dockerOut(t, "rm", "-f", c.ID)
	if got := r.lookup(ctx, identity{id: c.ID, runtime: RuntimeDocker}); got != first {
		t.Errorf("lookup after removal = %+v, want the earlier %+v", got, first)
	}
	r.mu.Lock()
	exited := r.containers[c.ID].exited
	r.mu.Unlock()
	if exited.IsZero() {
		t.Error("grace period not started for a container that cannot be inspected")
	}
	// A container never seen before gets the IDs-only workload.
	if got := r.ForContainer(ctx, hexB, RuntimeDocker); got.ContainerID != hexB || got.ContainerName != "" {
		t.Errorf("unknown container: %+v", got)
	}
}

// TestDiedBeforeStored checks that a container whose die event is handled
// before a concurrent lookup stores it still gets its grace period, and
// so is evicted.
func TestDiedBeforeStored(t *testing.T) {
	r := newResolver(t, Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", CacheTTL: time.Minute})
	clock := time.Now()
	r.now = func() time.Time { return clock }
	r.markExited(hexA)
	r.mu.Lock()
	r.store(hexA, &entry{w: &event.Workload{Host: "n", ContainerID: hexA, ContainerName: "gone"}})
	r.store(hexB, &entry{w: &event.Workload{Host: "n", ContainerID: hexB, ContainerName: "alive"}})
	r.mu.Unlock()
	clock = clock.Add(2 * time.Minute)
	r.expire()
	r.mu.Lock()
	_, gone := r.containers[hexA]
	_, alive := r.containers[hexB]
	died := len(r.died)
	r.mu.Unlock()
	if gone || !alive || died != 0 {
		t.Errorf("after the grace period: dead one cached %v, live one cached %v, %d tombstones; want false, true, 0", gone, alive, died)
	}
}

// cgroupDir makes the directory path below root, as a cgroup v2 mount
// would have it, and returns its inode: the cgroup's ID.
func cgroupDir(t *testing.T, root, path string) uint64 {
	t.Helper()
	dir := filepath.Join(root, path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestLookupCgroupIDSure: the answer is sure when the process's own cgroup
// was read, and not when a gone process left nothing but the host default.
func TestLookupCgroupIDSure(t *testing.T) {
	proc := t.TempDir()
	os.MkdirAll(proc+"/7", 0o755)
	os.WriteFile(proc+"/7/cgroup", []byte("0::/user.slice\n"), 0o644)
	r := newResolver(t, Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: proc, CgroupRoot: t.TempDir()})
	if w, sure := r.LookupCgroupID(context.Background(), 0, 7); !sure || w.ContainerID != "" {
		t.Errorf("live host process: %+v sure=%v, want the host, sure", w, sure)
	}
	if w, sure := r.LookupCgroupID(context.Background(), 0, 8); sure || w.ContainerID != "" {
		t.Errorf("gone process: %+v sure=%v, want the host by default, not sure", w, sure)
	}
}
