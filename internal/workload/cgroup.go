package workload

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Runtime names as event.Workload.Runtime reports them.
const (
	RuntimeDocker     = "docker"
	RuntimeContainerd = "containerd"
	RuntimeCRIO       = "cri-o"
	RuntimePodman     = "podman"
)

// scopePrefixes are the systemd scope names runtimes create with the
// systemd cgroup driver: <prefix><64hex>.scope.
var scopePrefixes = []struct{ prefix, runtime string }{
	{"docker-", RuntimeDocker},
	{"cri-containerd-", RuntimeContainerd},
	{"crio-", RuntimeCRIO},
	{"libpod-", RuntimePodman},
}

// parentDirs are cgroupfs parents whose child directory is a container ID.
var parentDirs = map[string]string{
	"docker":        RuntimeDocker,
	"moby":          RuntimeDocker,
	"k8s.io":        RuntimeContainerd, // containerd's CRI namespace, cgroupfs driver
	"default":       RuntimeContainerd, // containerd's default namespace (ctr run)
	"libpod_parent": RuntimePodman,
}

// ContainerIDFromCgroup finds the container ID in one cgroup path, as
// /proc/<pid>/cgroup lists it (the "hierarchy-ID:controllers:" prefix is
// optional). It knows Docker, containerd, CRI-O and Podman under the
// cgroupfs and systemd drivers, cgroup v1 and v2, inside and outside
// Kubernetes. The runtime is empty when the path does not tell (a bare ID
// under a kubepods cgroupfs parent). For nested containers the outermost
// is returned: that is the one the host's runtime knows.
func ContainerIDFromCgroup(path string) (id, runtime string, ok bool) {
	path = trimHierarchy(path)
	parts := strings.Split(strings.Trim(path, "/"), "/")
	inKubepods := false
	for i, p := range parts {
		if strings.HasPrefix(p, "kubepods") {
			inKubepods = true
		}
		if name, found := strings.CutSuffix(p, ".scope"); found {
			for _, s := range scopePrefixes {
				if rest, ok := strings.CutPrefix(name, s.prefix); ok && isHexID(rest) {
					return rest, s.runtime, true
				}
			}
			continue
		}
		if i == 0 {
			continue
		}
		parent := parts[i-1]
		if rt, known := parentDirs[parent]; known && i == 1 {
			if isHexID(p) || (rt == RuntimeContainerd && isContainerdID(p)) {
				return p, rt, true
			}
			continue
		}
		if parent == "docker" && isHexID(p) { // docker-in-docker, /docker nested anywhere
			return p, RuntimeDocker, true
		}
		if inKubepods && strings.HasPrefix(parent, "pod") && isHexID(p) {
			return p, "", true
		}
	}
	return "", "", false
}

// ContainerIDFromCgroupName finds the container ID in the leaf name of a
// process's cgroup, as the sensor reads it in the kernel at exec: a bare
// 64-hex ID (Docker and containerd under the cgroupfs driver, runtime
// unknown) or a systemd scope such as "docker-<id>.scope". It lets a
// process that is gone before its /proc entry is read still name its
// container.
func ContainerIDFromCgroupName(leaf string) (id, runtime string, ok bool) {
	if isHexID(leaf) {
		return leaf, "", true
	}
	if leaf == "" || strings.ContainsRune(leaf, '/') {
		return "", "", false
	}
	return ContainerIDFromCgroup("/" + leaf)
}

// PodUIDFromCgroup finds the Kubernetes pod UID in a kubepods cgroup path:
// /kubepods/burstable/pod<uid>/… (cgroupfs) or
// …/kubepods-burstable-pod<uid_with_underscores>.slice/… (systemd).
func PodUIDFromCgroup(path string) (uid string, ok bool) {
	path = trimHierarchy(path)
	if !strings.Contains(path, "kubepods") {
		return "", false
	}
	for _, p := range strings.Split(strings.Trim(path, "/"), "/") {
		if name, found := strings.CutSuffix(p, ".slice"); found {
			if i := strings.LastIndex(name, "-pod"); i >= 0 && strings.HasPrefix(name, "kubepods") {
				u := strings.ReplaceAll(name[i+len("-pod"):], "_", "-")
				if isUID(u) {
					return u, true
				}
			}
			continue
		}
		if u, found := strings.CutPrefix(p, "pod"); found && isUID(u) {
			return u, true
		}
	}
	return "", false
}

// trimHierarchy drops a leading "N:controllers:" from a /proc/<pid>/cgroup
// line; a bare path is returned unchanged.
func trimHierarchy(line string) string {
	line = strings.TrimSpace(line)
	if strings.HasPrefix(line, "/") {
		return line
	}
	first, rest, ok := strings.Cut(line, ":")
	if !ok {
		return line
	}
	if _, err := strconv.Atoi(first); err != nil {
		return line
	}
	if _, path, ok := strings.Cut(rest, ":"); ok {
		return path
	}
	return line
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isContainerdID accepts containerd's identifier grammar: alphanumerics
// separated by '.', '_' or '-', at most 76 characters.
func isContainerdID(s string) bool {
	if s == "" || len(s) > 76 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0 && i < len(s)-1:
		default:
			return false
		}
	}
	return true
}

func isUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// CgroupOfPID reads /proc/<pid>/cgroup and returns its lines.
func CgroupOfPID(pid int) ([]string, error) {
	return cgroupOf("/proc", pid)
}

func cgroupOf(proc string, pid int) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return nil, fmt.Errorf("reading cgroup of pid %d: %w", pid, err)
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// identity is what the cgroup lines of a process tell.
type identity struct {
	id, runtime, podUID string
}

// identify reads every line; the first that names a container wins.
func identify(lines []string) identity {
	var out identity
	for _, l := range lines {
		if out.id == "" {
			if id, rt, ok := ContainerIDFromCgroup(l); ok {
				out.id, out.runtime = id, rt
			}
		}
		if out.podUID == "" {
			if u, ok := PodUIDFromCgroup(l); ok {
				out.podUID = u
			}
		}
	}
	return out
}

// unifiedLine returns the cgroup v2 ("0::") line, if any.
func unifiedLine(lines []string) (string, bool) {
	for _, l := range lines {
		if strings.HasPrefix(l, "0::") {
			return l, true
		}
	}
	return "", false
}
