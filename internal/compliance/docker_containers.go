package compliance

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Profiles of the CIS Docker Benchmark.
const (
	dl1 = "Level 1 - Docker"
	dl2 = "Level 2 - Docker"
)

func init() {
	registerDockerAudit()
	registerDaemon()
	registerDockerFiles()
	registerContainers()
}

// DockerClient adapts the moby client to DockerAPI.
type DockerClient struct{ c *client.Client }

var _ DockerAPI = (*DockerClient)(nil)

// NewDockerClient connects to host (empty: DOCKER_HOST or the default
// socket), negotiating the API version.
func NewDockerClient(host string) (*DockerClient, error) {
	opts := []client.Opt{client.FromEnv}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	}
	c, err := client.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	return &DockerClient{c: c}, nil
}

// ContainerIDs lists the running containers.
func (d *DockerClient) ContainerIDs(ctx context.Context) ([]string, error) {
	res, err := d.c.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(res.Items))
	for _, s := range res.Items {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// Inspect inspects one container.
func (d *DockerClient) Inspect(ctx context.Context, id string) (container.InspectResponse, error) {
	res, err := d.c.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return res.Container, err
}

// Close releases the client.
func (d *DockerClient) Close() error { return d.c.Close() }

func hc(c *container.InspectResponse) *container.HostConfig {
	if c.HostConfig == nil {
		return &container.HostConfig{}
	}
	return c.HostConfig
}

func capName(s string) string { return strings.TrimPrefix(strings.ToUpper(s), "CAP_") }

// privilegedEquivalent is true for --privileged and for --cap-add ALL,
// which gives every capability (with seccomp and AppArmor relaxed it is
// the same escape surface; see docs/response.md and internal/workload).
func privilegedEquivalent(h *container.HostConfig) (bool, string) {
	if h.Privileged {
		return true, "Privileged true"
	}
	for _, c := range h.CapAdd {
		if capName(c) == "ALL" {
			return true, "CapAdd " + strings.Join(h.CapAdd, ",") + " (ALL is privileged-equivalent)"
		}
	}
	return false, "Privileged false; CapAdd [" + strings.Join(h.CapAdd, ",") + "]"
}

// dangerousCaps are capabilities the benchmark's 5.3 asks to justify.
var dangerousCaps = []string{"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RAWIO", "DAC_READ_SEARCH", "SYS_BOOT", "BPF", "PERFMON", "SYS_TIME", "MAC_ADMIN", "MAC_OVERRIDE"}

// sensitiveHostPaths may not be bind-mounted (5.5).
var sensitiveHostPaths = []string{"/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var/run/docker.sock", "/run/docker.sock"}

func boolCheck(bad bool, ev string) (string, string, error) {
	if bad {
		return Fail, ev, nil
	}
	return Pass, ev, nil
}

func hasSecOpt(h *container.HostConfig, names ...string) (string, bool) {
	for _, o := range h.SecurityOpt {
		n := strings.ReplaceAll(o, "=", ":")
		for _, want := range names {
			if n == want {
				return o, true
			}
		}
	}
	return "", false
}

func registerContainers() {
	const sec5 = "5 Container Runtime"
	reg := func(id, title, profile string, scored bool, how, rem string, f ContainerFunc) {
		s := sec5
		if strings.HasPrefix(id, "4.") {
			s = "4 Container Images and Build File"
		}
		Register(BenchDocker, Check{ID: id, Title: title, Section: s, Profile: profile, Scored: scored, How: how, Remediation: rem, Container: f})
	}
	reg("4.1", "Ensure that a user for the container has been created", dl1, true,
		"Config.User is set and is not root or 0", "Add USER to the Dockerfile or run with --user 1000:1000",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			u := ""
			if c.Config != nil {
				u = c.Config.User
			}
			name, _, _ := strings.Cut(u, ":")
			if name == "" || name == "root" || name == "0" {
				return Fail, fmt.Sprintf("User %q (runs as root)", u), nil
			}
			return Pass, fmt.Sprintf("User %q", u), nil
		})
	reg("5.1", "Ensure that, if applicable, an AppArmor Profile is enabled", dl1, true,
		"AppArmorProfile is set and not unconfined; warn when the host kernel has no AppArmor (/sys/module/apparmor/parameters/enabled not Y)",
		"Run with --security-opt apparmor=docker-default (needs AppArmor in the host kernel)",
		func(e *Env, c *container.InspectResponse) (string, string, error) {
			p := c.AppArmorProfile
			ev := fmt.Sprintf("AppArmorProfile %q", p)
			if p != "" && p != "unconfined" {
				return Pass, ev, nil
			}
			if on, err := e.readTrim("/sys/module/apparmor/parameters/enabled"); err != nil || on != "Y" {
				return Warn, ev + "; AppArmor is not enabled in the host kernel, so the recommendation cannot apply", nil
			}
			return Fail, ev, nil
		})
	reg("5.3", "Ensure that Linux kernel capabilities are restricted within containers", dl1, true,
		"CapAdd holds none of "+strings.Join(dangerousCaps, ", "), "Remove --cap-add of those capabilities; prefer --cap-drop ALL and add back only what is needed",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			h := hc(c)
			var bad []string
			for _, cp := range h.CapAdd {
				if contains(dangerousCaps, capName(cp)) {
					bad = append(bad, cp)
				}
			}
			ev := fmt.Sprintf("CapAdd [%s]; CapDrop [%s]", strings.Join(h.CapAdd, ","), strings.Join(h.CapDrop, ","))
			return boolCheck(len(bad) > 0, ev)
		})
	reg("5.4", "Ensure that privileged containers are not used", dl1, true,
		"HostConfig.Privileged false and CapAdd without ALL (privileged-equivalent)", "Do not run with --privileged or --cap-add ALL",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			bad, ev := privilegedEquivalent(hc(c))
			return boolCheck(bad, ev)
		})
	reg("5.5", "Ensure sensitive host system directories are not mounted on containers", dl1, true,
		"no bind mount whose source is one of "+strings.Join(sensitiveHostPaths, ", "), "Do not bind-mount host system directories",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			var bad []string
			for _, m := range c.Mounts {
				if m.Type == "bind" && contains(sensitiveHostPaths, path.Clean(m.Source)) {
					rw := "ro"
					if m.RW {
						rw = "rw"
					}
					bad = append(bad, m.Source+":"+m.Destination+":"+rw)
				}
			}
			if len(bad) > 0 {
				return Fail, "host paths mounted: " + strings.Join(bad, ", "), nil
			}
			return Pass, fmt.Sprintf("%d mounts, none of a sensitive host path", len(c.Mounts)), nil
		})
	reg("5.7", "Ensure privileged ports are not mapped within containers", dl1, true,
		"no published host port below 1024", "Publish on host ports 1024 and above",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			var bad, all []string
			for p, bs := range hc(c).PortBindings {
				for _, b := range bs {
					s := b.HostIP.String()
					if !b.HostIP.IsValid() {
						s = "0.0.0.0"
					}
					desc := fmt.Sprintf("%s:%s->%s", s, b.HostPort, p.String())
					all = append(all, desc)
					if n, err := strconv.Atoi(b.HostPort); err == nil && n > 0 && n < 1024 {
						bad = append(bad, desc)
					}
				}
			}
			if len(bad) > 0 {
				return Fail, "privileged host ports: " + strings.Join(bad, ", "), nil
			}
			return Pass, "published: [" + strings.Join(all, ", ") + "]", nil
		})
	ns := func(id, title, what string, get func(h *container.HostConfig) string) {
		reg(id, title, dl1, true, what+" mode is not host", "Do not run with --"+strings.ToLower(what)+"=host",
			func(_ *Env, c *container.InspectResponse) (string, string, error) {
				m := get(hc(c))
				return boolCheck(m == "host", fmt.Sprintf("%sMode %q", what, m))
			})
	}
	ns("5.9", "Ensure that the host's network namespace is not shared", "Network", func(h *container.HostConfig) string { return string(h.NetworkMode) })
	reg("5.10", "Ensure that the memory usage for containers is limited", dl1, true,
		"HostConfig.Memory > 0", "Run with --memory (e.g. --memory 512m)",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			m := hc(c).Memory
			return boolCheck(m <= 0, fmt.Sprintf("Memory %d", m))
		})
	reg("5.11", "Ensure that CPU priority is set appropriately on containers", dl1, true,
		"a CPU limit: NanoCpus, CpuQuota, or CpuShares other than 0/1024", "Run with --cpus or --cpu-shares",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			h := hc(c)
			ev := fmt.Sprintf("NanoCpus %d; CpuQuota %d; CpuShares %d", h.NanoCPUs, h.CPUQuota, h.CPUShares)
			limited := h.NanoCPUs > 0 || h.CPUQuota > 0 || (h.CPUShares != 0 && h.CPUShares != 1024)
			return boolCheck(!limited, ev)
		})
	reg("5.12", "Ensure that the container's root filesystem is mounted as read only", dl1, true,
		"HostConfig.ReadonlyRootfs true", "Run with --read-only (and tmpfs or volumes for what must be written)",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			ro := hc(c).ReadonlyRootfs
			return boolCheck(!ro, fmt.Sprintf("ReadonlyRootfs %t", ro))
		})
	reg("5.13", "Ensure that incoming container traffic is bound to a specific host interface", dl1, true,
		"every published port has a specific HostIp (not 0.0.0.0, :: or empty)", "Publish as -p 127.0.0.1:8080:80 (a specific address)",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			var bad []string
			n := 0
			for p, bs := range hc(c).PortBindings {
				for _, b := range bs {
					n++
					if !b.HostIP.IsValid() || b.HostIP.IsUnspecified() {
						bad = append(bad, fmt.Sprintf("%q:%s->%s", b.HostIP.String(), b.HostPort, p.String()))
					}
				}
			}
			if len(bad) > 0 {
				return Fail, "bound to all interfaces: " + strings.Join(bad, ", "), nil
			}
			return Pass, fmt.Sprintf("%d published ports, all on a specific address", n), nil
		})
	reg("5.14", "Ensure that the 'on-failure' container restart policy is set to '5'", dl1, true,
		"RestartPolicy no, or on-failure with MaximumRetryCount 1-5 (always and unless-stopped fail)", "Run with --restart on-failure:5",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			rp := hc(c).RestartPolicy
			ev := fmt.Sprintf("RestartPolicy %q MaximumRetryCount %d", rp.Name, rp.MaximumRetryCount)
			switch rp.Name {
			case "", container.RestartPolicyDisabled:
				return Pass, ev, nil
			case container.RestartPolicyOnFailure:
				return boolCheck(rp.MaximumRetryCount < 1 || rp.MaximumRetryCount > 5, ev)
			}
			return Fail, ev, nil
		})
	ns("5.15", "Ensure that the host's process namespace is not shared", "Pid", func(h *container.HostConfig) string { return string(h.PidMode) })
	ns("5.16", "Ensure that the host's IPC namespace is not shared", "Ipc", func(h *container.HostConfig) string { return string(h.IpcMode) })
	reg("5.17", "Ensure that host devices are not directly exposed to containers", dl1, false,
		"HostConfig.Devices is empty (not scored: warn)", "Do not pass --device unless required; restrict with :r",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			var ds []string
			for _, d := range hc(c).Devices {
				ds = append(ds, d.PathOnHost+":"+d.PathInContainer+":"+d.CgroupPermissions)
			}
			if len(ds) > 0 {
				return Warn, "devices: " + strings.Join(ds, ", "), nil
			}
			return Pass, "no host devices", nil
		})
	reg("5.19", "Ensure mount propagation mode is not set to shared", dl1, true,
		"no mount with propagation shared or rshared", "Do not mount volumes with shared propagation",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			var bad []string
			for _, m := range c.Mounts {
				if m.Propagation == "shared" || m.Propagation == "rshared" {
					bad = append(bad, m.Destination+" "+string(m.Propagation))
				}
			}
			if len(bad) > 0 {
				return Fail, "shared propagation: " + strings.Join(bad, ", "), nil
			}
			return Pass, fmt.Sprintf("%d mounts, none shared", len(c.Mounts)), nil
		})
	ns("5.20", "Ensure that the host's UTS namespace is not shared", "UTS", func(h *container.HostConfig) string { return string(h.UTSMode) })
	reg("5.21", "Ensure the default seccomp profile is not Disabled", dl1, true,
		"SecurityOpt has no seccomp=unconfined", "Remove --security-opt seccomp=unconfined",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			h := hc(c)
			o, bad := hasSecOpt(h, "seccomp:unconfined")
			if bad {
				return Fail, "SecurityOpt " + o, nil
			}
			return Pass, "SecurityOpt [" + strings.Join(h.SecurityOpt, ",") + "]", nil
		})
	reg("5.25", "Ensure that the container is restricted from acquiring additional privileges", dl1, true,
		"SecurityOpt has no-new-privileges, or the daemon sets no-new-privileges (2.17)", "Run with --security-opt no-new-privileges",
		func(e *Env, c *container.InspectResponse) (string, string, error) {
			h := hc(c)
			if o, ok := hasSecOpt(h, "no-new-privileges", "no-new-privileges:true"); ok {
				return Pass, "SecurityOpt " + o, nil
			}
			if d, err := e.daemon(); err == nil {
				if v, ev := d.get("no-new-privileges", "false"); v == "true" {
					return Pass, "SecurityOpt [" + strings.Join(h.SecurityOpt, ",") + "]; daemon " + ev, nil
				}
			}
			return Fail, "SecurityOpt [" + strings.Join(h.SecurityOpt, ",") + "] without no-new-privileges", nil
		})
	reg("5.26", "Ensure that container health is checked at runtime", dl1, true,
		"a HEALTHCHECK (Config.Healthcheck with a test other than NONE)", "Add HEALTHCHECK to the image or run with --health-cmd",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			if c.Config == nil || c.Config.Healthcheck == nil || len(c.Config.Healthcheck.Test) == 0 || c.Config.Healthcheck.Test[0] == "NONE" {
				return Fail, "no healthcheck", nil
			}
			ev := "Healthcheck " + strings.Join(c.Config.Healthcheck.Test, " ")
			if c.State != nil && c.State.Health != nil {
				ev += "; status " + string(c.State.Health.Status)
			}
			return Pass, ev, nil
		})
	reg("5.28", "Ensure that the PIDs cgroup limit is used", dl1, true,
		"HostConfig.PidsLimit > 0", "Run with --pids-limit (e.g. 100)",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			p := hc(c).PidsLimit
			if p == nil {
				return Fail, "PidsLimit not set", nil
			}
			return boolCheck(*p <= 0, fmt.Sprintf("PidsLimit %d", *p))
		})
	reg("5.24", "Ensure that cgroup usage is confirmed", dl1, true,
		"HostConfig.CgroupParent is empty (the default cgroup)", "Do not use --cgroup-parent unless needed",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			p := hc(c).CgroupParent
			return boolCheck(p != "", fmt.Sprintf("CgroupParent %q", p))
		})
	reg("5.29", "Ensure that Docker's default bridge docker0 is not used", dl2, false,
		"NetworkMode is not default or bridge (not scored: warn)", "Run on a user-defined network (docker network create)",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			m := string(hc(c).NetworkMode)
			if m == "default" || m == "bridge" {
				return Warn, fmt.Sprintf("NetworkMode %q (docker0)", m), nil
			}
			return Pass, fmt.Sprintf("NetworkMode %q", m), nil
		})
	ns("5.30", "Ensure that the host's user namespaces are not shared", "Userns", func(h *container.HostConfig) string { return string(h.UsernsMode) })
	reg("5.31", "Ensure that the Docker socket is not mounted inside any containers", dl1, true,
		"no mount of /var/run/docker.sock or /run/docker.sock", "Do not mount the Docker socket into containers",
		func(_ *Env, c *container.InspectResponse) (string, string, error) {
			for _, m := range c.Mounts {
				s := path.Clean(m.Source)
				if s == "/var/run/docker.sock" || s == "/run/docker.sock" || strings.HasSuffix(m.Destination, "/docker.sock") {
					return Fail, "mounted: " + m.Source + ":" + m.Destination, nil
				}
			}
			return Pass, fmt.Sprintf("%d mounts, no Docker socket", len(c.Mounts)), nil
		})
}
