package compliance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// daemonConfig is the Docker daemon's effective configuration as far as
// the checks need it: daemon.json merged with dockerd's command line
// (flags win, as dockerd refuses a conflict anyway).
type daemonConfig struct {
	// Values are keyed by daemon.json names ("icc", "log-driver"); lists
	// ("hosts", "insecure-registries") are joined with ",".
	Values map[string]setting
	// JSONPath is the daemon.json used; Cmdline what /proc showed.
	JSONPath string
	Cmdline  []string
	PID      string
}

// dockerdFlags maps command-line flags to daemon.json keys; bool flags
// take no separate value.
var dockerdFlags = map[string]struct {
	key  string
	bool bool
}{
	"icc": {"icc", true}, "userland-proxy": {"userland-proxy", true}, "live-restore": {"live-restore", true},
	"no-new-privileges": {"no-new-privileges", true}, "experimental": {"experimental", true},
	"tls": {"tls", true}, "tlsverify": {"tlsverify", true}, "selinux-enabled": {"selinux-enabled", true},
	"log-driver": {"log-driver", false}, "log-level": {"log-level", false}, "l": {"log-level", false},
	"userns-remap": {"userns-remap", false}, "insecure-registry": {"insecure-registries", false},
	"H": {"hosts", false}, "host": {"hosts", false}, "tlscacert": {"tlscacert", false},
	"tlscert": {"tlscert", false}, "tlskey": {"tlskey", false}, "config-file": {"config-file", false},
	"seccomp-profile": {"seccomp-profile", false}, "authorization-plugin": {"authorization-plugins", false},
	"iptables": {"iptables", true}, "storage-driver": {"storage-driver", false}, "s": {"storage-driver", false},
}

// parseDockerdArgs reads dockerd's arguments (argv[1:]) into values keyed
// like daemon.json. Unknown flags are ignored; a value flag without its
// value is an error naming it.
func parseDockerdArgs(args []string) (map[string]string, error) {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			continue
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, val, hasVal = name[:j], name[j+1:], true
		}
		f, ok := dockerdFlags[name]
		if !ok {
			continue
		}
		if f.bool {
			if !hasVal {
				val = "true"
			}
		} else if !hasVal {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("dockerd flag %s has no value", a)
			}
			i++
			val = args[i]
		}
		if prev, ok := out[f.key]; ok && (f.key == "hosts" || f.key == "insecure-registries" || f.key == "authorization-plugins") {
			val = prev + "," + val
		}
		out[f.key] = val
	}
	return out, nil
}

// parseDaemonJSON reads daemon.json into values keyed by its names.
func parseDaemonJSON(data []byte) (map[string]string, error) {
	var raw map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range raw {
		switch t := v.(type) {
		case string:
			out[k] = t
		case bool:
			out[k] = strconv.FormatBool(t)
		case json.Number:
			out[k] = t.String()
		case []any:
			var parts []string
			for _, x := range t {
				parts = append(parts, fmt.Sprint(x))
			}
			out[k] = strings.Join(parts, ",")
		case nil:
		default:
			b, _ := json.Marshal(t)
			out[k] = string(b)
		}
	}
	return out, nil
}

// dockerd finds the running dockerd under Root/proc.
func (e *Env) dockerdCmdline() (pid string, args []string) {
	for _, comm := range e.Glob("/proc/[0-9]*/comm") {
		b, err := e.ReadFile(comm)
		if err != nil || strings.TrimSpace(string(b)) != "dockerd" {
			continue
		}
		dir := strings.TrimSuffix(comm, "/comm")
		cl, err := e.ReadFile(dir + "/cmdline")
		if err != nil || len(cl) == 0 {
			continue
		}
		parts := strings.Split(strings.TrimRight(string(cl), "\x00"), "\x00")
		return strings.TrimPrefix(dir, "/proc/"), parts
	}
	return "", nil
}

// daemon returns the merged daemon configuration.
func (e *Env) daemon() (*daemonConfig, error) {
	type res struct {
		c   *daemonConfig
		err error
	}
	r := e.memo("dockerd", func() any {
		c := &daemonConfig{Values: map[string]setting{}, JSONPath: "/etc/docker/daemon.json"}
		pid, argv := e.dockerdCmdline()
		var flags map[string]string
		if len(argv) > 0 {
			c.PID, c.Cmdline = pid, argv
			var err error
			if flags, err = parseDockerdArgs(argv[1:]); err != nil {
				return res{err: fmt.Errorf("dockerd command line (pid %s): %w", pid, err)}
			}
			if f := flags["config-file"]; f != "" {
				c.JSONPath = f
			}
		}
		data, err := e.ReadFile(c.JSONPath)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return res{err: fmt.Errorf("reading %s: %w", c.JSONPath, err)}
		default:
			vals, err := parseDaemonJSON(data)
			if err != nil {
				return res{err: fmt.Errorf("%s is not valid JSON: %w", c.JSONPath, err)}
			}
			for k, v := range vals {
				c.Values[k] = setting{Value: v, File: c.JSONPath}
			}
		}
		for k, v := range flags {
			c.Values[k] = setting{Value: v, File: "dockerd command line (pid " + pid + ")"}
		}
		if len(argv) == 0 {
			if _, statErr := e.Stat(c.JSONPath); statErr != nil {
				if _, err := e.Stat("/usr/bin/dockerd"); errors.Is(err, os.ErrNotExist) {
					return res{err: errors.New("Docker is not installed here: no dockerd process, /usr/bin/dockerd or " + c.JSONPath)}
				}
			}
		}
		return res{c: c}
	}).(res)
	return r.c, r.err
}

// get returns a value and its evidence ("icc false (/etc/docker/daemon.json)").
func (d *daemonConfig) get(key, def string) (string, string) {
	if s, ok := d.Values[key]; ok {
		return s.Value, fmt.Sprintf("%s %s (%s)", key, s.Value, s.File)
	}
	return def, fmt.Sprintf("%s not set (default %s)", key, def)
}

func daemonCheck(f func(d *daemonConfig) (string, string)) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		d, err := e.daemon()
		if err != nil {
			return "", "", err
		}
		st, ev := f(d)
		return st, ev, nil
	}
}

func daemonIs(key, def string, want ...string) CheckFunc {
	return daemonCheck(func(d *daemonConfig) (string, string) {
		v, ev := d.get(key, def)
		if contains(want, strings.ToLower(v)) {
			return Pass, ev
		}
		return Fail, ev + " (want " + strings.Join(want, " or ") + ")"
	})
}

func registerDaemon() {
	const sec = "2 Docker daemon configuration"
	reg := func(id, title, profile string, scored bool, how, rem string, f CheckFunc) {
		Register(BenchDocker, Check{ID: id, Title: title, Section: sec, Profile: profile, Scored: scored, How: how, Remediation: rem, Run: f})
	}
	cfg := func(kv string) string {
		return "Set " + kv + " in /etc/docker/daemon.json (or the matching dockerd flag) and restart docker"
	}
	reg("2.1", "Ensure network traffic is restricted between containers on the default bridge", dl1, true,
		"icc false in daemon.json or --icc=false", cfg(`"icc": false`), daemonIs("icc", "true", "false"))
	reg("2.2", "Ensure the logging level is set to 'info'", dl1, true,
		"log-level unset or info", cfg(`"log-level": "info"`), daemonIs("log-level", "info", "info"))
	reg("2.3", "Ensure Docker is allowed to make changes to iptables", dl1, true,
		"iptables unset or true", cfg(`"iptables": true`), daemonIs("iptables", "true", "true"))
	reg("2.5", "Ensure aufs storage driver is not used", dl1, true,
		"storage-driver is not aufs", cfg(`"storage-driver": "overlay2"`),
		daemonCheck(func(d *daemonConfig) (string, string) {
			v, ev := d.get("storage-driver", "overlay2")
			if v == "aufs" {
				return Fail, ev
			}
			return Pass, ev
		}))
	reg("2.11", "Ensure that authorization for Docker client commands is enabled", dl2, true,
		"authorization-plugins set", cfg(`"authorization-plugins": ["<plugin>"]`),
		daemonCheck(func(d *daemonConfig) (string, string) {
			v, ev := d.get("authorization-plugins", "")
			if v == "" {
				return Fail, ev
			}
			return Pass, ev
		}))
	reg("2.4", "Ensure insecure registries are not used", dl1, true,
		"no insecure-registries / --insecure-registry", "Remove insecure-registries from daemon.json and --insecure-registry flags",
		daemonCheck(func(d *daemonConfig) (string, string) {
			v, ev := d.get("insecure-registries", "none")
			if v == "none" || v == "" {
				return Pass, ev
			}
			return Fail, ev
		}))
	reg("2.6", "Ensure TLS authentication for Docker daemon is configured", dl1, true,
		"when a hosts entry is tcp://, tlsverify with tlscacert, tlscert and tlskey",
		cfg(`"tlsverify": true with tlscacert, tlscert, tlskey`),
		daemonCheck(func(d *daemonConfig) (string, string) {
			hosts, hev := d.get("hosts", "unix:///var/run/docker.sock")
			var tcp []string
			for _, h := range strings.Split(hosts, ",") {
				if strings.HasPrefix(h, "tcp://") {
					tcp = append(tcp, h)
				}
			}
			if len(tcp) == 0 {
				return Pass, hev + "; no TCP socket"
			}
			var ev []string
			ev = append(ev, hev)
			ok := true
			for _, k := range []string{"tlsverify", "tlscacert", "tlscert", "tlskey"} {
				v, e := d.get(k, "")
				ev = append(ev, e)
				if v == "" || v == "false" {
					ok = false
				}
			}
			if ok {
				return Pass, strings.Join(ev, "; ")
			}
			return Fail, strings.Join(ev, "; ")
		}))
	reg("2.8", "Enable user namespace support", dl2, true,
		"userns-remap set", cfg(`"userns-remap": "default"`),
		daemonCheck(func(d *daemonConfig) (string, string) {
			v, ev := d.get("userns-remap", "")
			if v == "" {
				return Fail, ev
			}
			return Pass, ev
		}))
	reg("2.12", "Ensure centralized and remote logging is configured", dl2, true,
		"log-driver is a remote or host-collected driver (syslog, journald, gelf, fluentd, awslogs, splunk, gcplogs, logentries)",
		cfg(`"log-driver": "journald"`+" (or syslog with log-opts syslog-address)"),
		daemonCheck(func(d *daemonConfig) (string, string) {
			v, ev := d.get("log-driver", "json-file")
			if contains([]string{"syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "gcplogs", "logentries", "etwlogs"}, v) {
				return Pass, ev
			}
			return Fail, ev
		}))
	reg("2.13", "Ensure live restore is enabled", dl1, true, "live-restore true",
		cfg(`"live-restore": true`), daemonIs("live-restore", "false", "true"))
	reg("2.14", "Ensure Userland Proxy is Disabled", dl1, true, "userland-proxy false",
		cfg(`"userland-proxy": false`), daemonIs("userland-proxy", "true", "false"))
	reg("2.16", "Ensure that experimental features are not implemented in production", dl1, true, "experimental unset or false",
		cfg(`"experimental": false`), daemonIs("experimental", "false", "false"))
	reg("2.17", "Ensure containers are restricted from acquiring new privileges", dl1, true, "no-new-privileges true",
		cfg(`"no-new-privileges": true`), daemonIs("no-new-privileges", "false", "true"))
}

// dockerFile finds the first existing path.
func (e *Env) firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := e.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// registerDockerAudit adds 1.2.x: the Docker files and binaries that
// exist on the host are watched by audit rules.
func registerDockerAudit() {
	units := func(u string) []string {
		return []string{"/etc/systemd/system/" + u, "/lib/systemd/system/" + u, "/usr/lib/systemd/system/" + u}
	}
	for _, a := range []struct {
		id, what, profile string
		paths             []string
	}{
		{"1.2.3", "the Docker daemon", dl1, []string{"/usr/bin/dockerd", "/usr/sbin/dockerd"}},
		{"1.2.4", "Docker files and directories - /var/lib/docker", dl2, []string{"/var/lib/docker"}},
		{"1.2.5", "Docker files and directories - /etc/docker", dl1, []string{"/etc/docker"}},
		{"1.2.6", "Docker files and directories - docker.service", dl1, units("docker.service")},
		{"1.2.7", "Docker files and directories - docker.socket", dl1, units("docker.socket")},
		{"1.2.8", "Docker files and directories - /etc/default/docker", dl1, []string{"/etc/default/docker"}},
		{"1.2.10", "Docker files and directories - /etc/docker/daemon.json", dl1, []string{"/etc/docker/daemon.json"}},
		{"1.2.11", "Docker files and directories - /usr/bin/containerd", dl1, []string{"/usr/bin/containerd", "/usr/sbin/containerd"}},
		{"1.2.12", "Docker files and directories - /usr/sbin/runc", dl1, []string{"/usr/sbin/runc", "/usr/bin/runc"}},
	} {
		a := a
		Register(BenchDocker, Check{ID: a.id, Title: "Ensure auditing is configured for " + a.what,
			Section: "1.2 Linux Hosts Specific Configuration", Profile: a.profile, Scored: true,
			How:         "when " + strings.Join(a.paths, " or ") + " exists, an on-disk audit rule watches it (-w PATH or -F path=PATH)",
			Remediation: "Add \"-w <path> -k docker\" to /etc/audit/rules.d/docker.rules; augenrules --load",
			Run: func(ctx context.Context, e *Env) (string, string, error) {
				p := e.firstExisting(a.paths...)
				if p == "" {
					return Pass, strings.Join(a.paths, ", ") + " not present", nil
				}
				return auditRulesCheck(auditWatch{path: p})(ctx, e)
			}})
	}
}

func registerDockerFiles() {
	const sec = "3 Docker daemon configuration files"
	type fileSpec struct {
		name       string
		find       func(e *Env) ([]string, error)
		max        os.FileMode
		group      string
		ownID      string
		permID     string
		missingWhy string
	}
	one := func(p string) []string {
		if p == "" {
			return nil
		}
		return []string{p}
	}
	fixed := func(paths ...string) func(*Env) ([]string, error) {
		return func(e *Env) ([]string, error) { return one(e.firstExisting(paths...)), nil }
	}
	fromDaemon := func(key string) func(*Env) ([]string, error) {
		return func(e *Env) ([]string, error) {
			d, err := e.daemon()
			if err != nil {
				return nil, err
			}
			v, _ := d.get(key, "")
			if v == "" {
				return nil, nil
			}
			return one(e.firstExisting(v)), nil
		}
	}
	units := []string{"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/"}
	unitPaths := func(u string) []string {
		var out []string
		for _, d := range units {
			out = append(out, d+u)
		}
		return out
	}
	specs := []fileSpec{
		{"docker.service", fixed(unitPaths("docker.service")...), 0o644, "root", "3.1", "3.2", "no docker.service unit"},
		{"docker.socket", fixed(unitPaths("docker.socket")...), 0o644, "root", "3.3", "3.4", "no docker.socket unit"},
		{"/etc/docker", fixed("/etc/docker"), 0o755, "root", "3.5", "3.6", "no /etc/docker"},
		{"TLS CA certificate", fromDaemon("tlscacert"), 0o444, "root", "3.9", "3.10", "no tlscacert configured"},
		{"Docker server certificate", fromDaemon("tlscert"), 0o444, "root", "3.11", "3.12", "no tlscert configured"},
		{"Docker server certificate key", fromDaemon("tlskey"), 0o400, "root", "3.13", "3.14", "no tlskey configured"},
		{"Docker socket", fixed("/var/run/docker.sock", "/run/docker.sock"), 0o660, "docker", "3.15", "3.16", "no Docker socket"},
		{"registry certificate", func(e *Env) ([]string, error) {
			return e.Glob("/etc/docker/certs.d/*/*"), nil
		}, 0o444, "root", "3.7", "3.8", "no file in /etc/docker/certs.d/*/"},
		{"daemon.json", func(e *Env) ([]string, error) {
			d, err := e.daemon()
			if err != nil {
				return nil, err
			}
			return one(e.firstExisting(d.JSONPath)), nil
		}, 0o644, "root", "3.17", "3.18", "no daemon.json"},
		{"/etc/default/docker", fixed("/etc/default/docker"), 0o644, "root", "3.19", "3.22", "no /etc/default/docker"},
		{"/etc/sysconfig/docker", fixed("/etc/sysconfig/docker"), 0o644, "root", "3.20", "3.21", "no /etc/sysconfig/docker"},
	}
	for _, s := range specs {
		s := s
		run := func(checkMode bool) CheckFunc {
			return func(_ context.Context, e *Env) (string, string, error) {
				paths, err := s.find(e)
				if err != nil {
					return "", "", err
				}
				if len(paths) == 0 {
					return Pass, s.missingWhy, nil
				}
				var specs []permSpec
				for _, p := range paths {
					spec := permSpec{Path: p, Max: 0o7777}
					if checkMode {
						spec.Max = s.max
					} else {
						spec.Users, spec.Groups = []string{"root"}, []string{s.group}
					}
					specs = append(specs, spec)
				}
				return e.permChecks(specs...)
			}
		}
		Register(BenchDocker, Check{ID: s.ownID, Title: "Ensure that " + s.name + " ownership is set to root:" + s.group,
			Section: sec, Profile: dl1, Scored: true, Run: run(false),
			How:         "stat: owner root, group " + s.group + " (passes when " + s.missingWhy + ")",
			Remediation: "chown root:" + s.group + " <the file>"})
		Register(BenchDocker, Check{ID: s.permID, Title: fmt.Sprintf("Ensure that %s permissions are set to %04o or more restrictively", s.name, s.max),
			Section: sec, Profile: dl1, Scored: true, Run: run(true),
			How:         fmt.Sprintf("stat: mode %04o or stricter (passes when %s)", s.max, s.missingWhy),
			Remediation: fmt.Sprintf("chmod %04o <the file>", s.max)})
	}
}
