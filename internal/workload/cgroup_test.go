package workload

import (
	"context"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
)

const (
	hexA = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	hexB = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pod  = "5f0c3d8e-2b1a-4c9d-8e7f-6a5b4c3d2e1f"
	podU = "5f0c3d8e_2b1a_4c9d_8e7f_6a5b4c3d2e1f"
)

func TestContainerIDFromCgroup(t *testing.T) {
	type want struct {
		ID, Runtime, PodUID string
		OK                  bool
	}
	tests := []struct {
		name string
		line string
		want want
	}{
		{"docker cgroupfs v1", "12:memory:/docker/" + hexA, want{hexA, "docker", "", true}},
		{"docker cgroupfs v1 name=systemd", "1:name=systemd:/docker/" + hexA, want{hexA, "docker", "", true}},
		{"docker cgroupfs v2", "0::/docker/" + hexA, want{hexA, "docker", "", true}},
		{"docker bare path", "/docker/" + hexA, want{hexA, "docker", "", true}},
		{"docker systemd v1", "4:memory:/system.slice/docker-" + hexA + ".scope", want{hexA, "docker", "", true}},
		{"docker systemd v2", "0::/system.slice/docker-" + hexA + ".scope", want{hexA, "docker", "", true}},
		{"docker systemd v2 dind init", "0::/system.slice/docker-" + hexA + ".scope/init", want{hexA, "docker", "", true}},
		{"docker in docker outermost", "0::/docker/" + hexA + "/docker/" + hexB, want{hexA, "docker", "", true}},
		{"moby buildkit", "0::/moby/" + hexA, want{hexA, "docker", "", true}},
		{"kubepods cgroupfs burstable", "5:cpu,cpuacct:/kubepods/burstable/pod" + pod + "/" + hexA, want{hexA, "", pod, true}},
		{"kubepods cgroupfs guaranteed", "0::/kubepods/pod" + pod + "/" + hexA, want{hexA, "", pod, true}},
		{"kubepods cgroupfs besteffort", "0::/kubepods/besteffort/pod" + pod + "/" + hexA, want{hexA, "", pod, true}},
		{"kubepods systemd containerd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/cri-containerd-" + hexA + ".scope", want{hexA, "containerd", pod, true}},
		{"kubepods systemd guaranteed containerd", "0::/kubepods.slice/kubepods-pod" + podU + ".slice/cri-containerd-" + hexA + ".scope", want{hexA, "containerd", pod, true}},
		{"kubepods systemd crio", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + podU + ".slice/crio-" + hexA + ".scope", want{hexA, "cri-o", pod, true}},
		{"kubepods systemd crio v1", "11:pids:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/crio-" + hexA + ".scope", want{hexA, "cri-o", pod, true}},
		{"kubepods systemd docker (cri-dockerd)", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/docker-" + hexA + ".scope", want{hexA, "docker", pod, true}},
		{"kubepods systemd crio conmon is not a container", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/crio-conmon-" + hexA + ".scope", want{"", "", pod, false}},
		{"kubepods pod slice only", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice", want{"", "", pod, false}},
		{"containerd k8s.io cgroupfs", "0::/k8s.io/" + hexA, want{hexA, "containerd", "", true}},
		{"containerd default namespace", "0::/default/redis-1", want{"redis-1", "containerd", "", true}},
		{"containerd default hex", "3:cpuset:/default/" + hexA, want{hexA, "containerd", "", true}},
		{"podman systemd", "0::/machine.slice/libpod-" + hexA + ".scope", want{hexA, "podman", "", true}},
		{"podman cgroupfs", "0::/libpod_parent/" + hexA, want{hexA, "podman", "", true}},
		{"host user session", "0::/user.slice/user-0.slice/session-1.scope", want{}},
		{"host root", "0::/", want{}},
		{"host empty v1", "9:name=systemd:/", want{}},
		{"host init scope", "0::/init.scope", want{}},
		{"host service", "0::/system.slice/docker.service", want{}},
		{"host containerd service", "1:name=systemd:/system.slice/containerd.service", want{}},
		{"short id", "0::/docker/abc123", want{}},
		{"uppercase hex", "0::/docker/" + "3F4B1A2C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4E3F2A", want{}},
		{"not a scope prefix", "0::/system.slice/dockerd-" + hexA + ".scope", want{}},
		{"32 hex under other parent", "4:memory:/process_api/41f09f93e22b2177e3ce5f87601a32e8", want{}},
		{"default not first", "0::/system.slice/default/x", want{}},
		{"empty", "", want{}},
		{"garbage", "::::", want{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got want
			got.ID, got.Runtime, got.OK = ContainerIDFromCgroup(tt.line)
			got.PodUID, _ = PodUIDFromCgroup(tt.line)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ContainerIDFromCgroup(%q) (-want +got):\n%s", tt.line, diff)
			}
		})
	}
}

func TestCgroupOfPIDSelf(t *testing.T) {
	lines, err := CgroupOfPID(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) == 0 {
		t.Fatal("no cgroup lines for the test process")
	}
	if _, err := CgroupOfPID(-1); err == nil {
		t.Error("CgroupOfPID(-1) succeeded")
	}
}

func TestIdentifyUnified(t *testing.T) {
	// A cgroup v1 host: the v2 hierarchy does not separate containers, so
	// the v2 line alone tells a different story than all lines.
	v1 := []string{"4:memory:/docker/" + hexA, "1:name=systemd:/docker/" + hexA, "0::/system.slice/containerd.service"}
	l, ok := unifiedLine(v1)
	if !ok {
		t.Fatal("no 0:: line found")
	}
	if identify([]string{l}) == identify(v1) {
		t.Error("v2 line and all lines agree on a v1 host")
	}
	v2 := []string{"0::/system.slice/docker-" + hexA + ".scope"}
	if got := identify(v2); got.id != hexA {
		t.Errorf("identify(v2) = %+v", got)
	}
}

func TestContainerIDFromCgroupName(t *testing.T) {
	for _, tc := range []struct{ leaf, id, runtime string }{
		{hexA, hexA, ""},
		{"docker-" + hexA + ".scope", hexA, RuntimeDocker},
		{"cri-containerd-" + hexB + ".scope", hexB, RuntimeContainerd},
		{"crio-" + hexB + ".scope", hexB, RuntimeCRIO},
		{"libpod-" + hexA + ".scope", hexA, RuntimePodman},
		{"", "", ""},
		{"/", "", ""},
		{"session-3.scope", "", ""},
		{"user-1000.slice", "", ""},
		{"docker", "", ""},
		{hexA[:63], "", ""},
		{"docker/" + hexA, "", ""}, // a path, not a leaf
		{"DOCKER-" + hexA + ".scope", "", ""},
	} {
		id, rt, ok := ContainerIDFromCgroupName(tc.leaf)
		if id != tc.id || rt != tc.runtime || ok != (tc.id != "") {
			t.Errorf("ContainerIDFromCgroupName(%q) = %q, %q, %v; want %q, %q", tc.leaf, id, rt, ok, tc.id, tc.runtime)
		}
	}
}

func FuzzContainerIDFromCgroup(f *testing.F) {
	f.Add("0::/docker/" + hexA)
	f.Add("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/crio-" + hexA + ".scope")
	f.Add("1:name=systemd:/")
	f.Add("docker-" + hexA + ".scope")
	f.Fuzz(func(t *testing.T, line string) {
		id, _, ok := ContainerIDFromCgroup(line)
		if ok && id == "" {
			t.Errorf("ok with empty id for %q", line)
		}
		if u, ok := PodUIDFromCgroup(line); ok && !isUID(u) {
			t.Errorf("bad pod uid %q for %q", u, line)
		}
		if id, _, ok := ContainerIDFromCgroupName(line); ok && !isHexID(id) && !isContainerdID(id) {
			t.Errorf("bad id %q from cgroup name %q", id, line)
		}
	})
}

func BenchmarkContainerIDFromCgroup(b *testing.B) {
	line := "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + podU + ".slice/cri-containerd-" + hexA + ".scope"
	b.ReportAllocs()
	for b.Loop() {
		ContainerIDFromCgroup(line)
	}
}

func TestForCgroupIDProcessGone(t *testing.T) {
	root := t.TempDir()
	dir := root + "/system.slice/docker-" + hexA + ".scope"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(root+"/cgroup.controllers", []byte("cpu memory pids\n"), 0o644)
	os.WriteFile(dir+"/cgroup.procs", nil, 0o644)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	ino := fi.Sys().(*syscall.Stat_t).Ino
	r, err := NewResolver(Options{Hostname: "n", DockerHost: "unix:///nonexistent/docker.sock", Proc: t.TempDir(), CgroupRoot: root})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.unified {
		t.Error("a proc without self/cgroup taken for a pure v2 host")
	}
	got := r.ForCgroupID(context.Background(), ino, 4242)
	want := &event.Workload{Host: "n", ContainerID: hexA, Runtime: "docker"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ForCgroupID of a gone process (-want +got):\n%s", diff)
	}
	// Not a pure v2 mount: no search.
	os.Remove(root + "/cgroup.controllers")
	r.cgroups = map[uint64]identity{}
	if got := r.ForCgroupID(context.Background(), ino, 4242); got.ContainerID != "" {
		t.Errorf("without cgroup.controllers: %+v", got)
	}
	if p, ok := cgroupPathByID(t.TempDir(), 1); ok {
		t.Errorf("cgroupPathByID in an empty dir = %q", p)
	}
}

func BenchmarkContainerIDFromCgroupName(b *testing.B) {
	for _, leaf := range []string{hexA, "docker-" + hexA + ".scope", "session-3.scope"} {
		b.Run(leaf[:min(len(leaf), 14)], func(b *testing.B) {
			for b.Loop() {
				ContainerIDFromCgroupName(leaf)
			}
		})
	}
}
