package compliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
)

// The Linux checks follow the numbering of the CIS Debian Linux 12
// Benchmark v1.0.1 (Level 1 - Server unless a check says otherwise).
const (
	l1 = "Level 1 - Server"
	l2 = "Level 2 - Server"
)

func init() {
	registerMounts()
	registerModules()
}

// mounts returns the mount table: /proc/self/mounts under Root, and
// whether it came from there (true) or from /etc/fstab (false).
func (e *Env) mounts() ([]mountEntry, string, error) {
	type res struct {
		m   []mountEntry
		src string
		err error
	}
	r := e.memo("mounts", func() any {
		if data, err := e.ReadFile("/proc/self/mounts"); err == nil && len(data) > 0 {
			return res{m: parseMounts(data), src: "/proc/self/mounts"}
		}
		data, err := e.ReadFile("/etc/fstab")
		if err != nil {
			return res{err: fmt.Errorf("neither /proc/self/mounts nor /etc/fstab readable: %w", err)}
		}
		return res{m: parseMounts(data), src: "/etc/fstab"}
	}).(res)
	return r.m, r.src, r.err
}

// mountOf returns the last mount of dir (the one on top).
func mountOf(ms []mountEntry, dir string) (mountEntry, bool) {
	var found mountEntry
	ok := false
	for _, m := range ms {
		if m.Dir == dir {
			found, ok = m, true
		}
	}
	return found, ok
}

func separateMount(dir string) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		ms, src, err := e.mounts()
		if err != nil {
			return "", "", err
		}
		m, ok := mountOf(ms, dir)
		if !ok {
			return Fail, fmt.Sprintf("%s is not a separate mount in %s", dir, src), nil
		}
		return Pass, fmt.Sprintf("%s: %s %s %s (%s)", src, m.Device, m.Dir, m.Type, strings.Join(m.Options, ",")), nil
	}
}

func mountOption(dir, opt string) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		ms, src, err := e.mounts()
		if err != nil {
			return "", "", err
		}
		m, ok := mountOf(ms, dir)
		if !ok {
			// The benchmark applies the option "if a separate partition
			// exists"; the partition check itself says whether one must.
			return Pass, fmt.Sprintf("%s is not a separate mount in %s: not applicable (see the separate-partition check)", dir, src), nil
		}
		ev := fmt.Sprintf("%s: %s mounted with %s", src, dir, strings.Join(m.Options, ","))
		if !m.has(opt) {
			return Fail, ev + " (no " + opt + ")", nil
		}
		return Pass, ev, nil
	}
}

func registerMounts() {
	type part struct {
		dir, sec                   string
		sepID, nodev, nosuid, noex string
		sepProfile                 string
	}
	parts := []part{
		{"/tmp", "1.1.2.1", "1.1.2.1.1", "1.1.2.1.2", "1.1.2.1.3", "1.1.2.1.4", l1},
		{"/dev/shm", "1.1.2.2", "1.1.2.2.1", "1.1.2.2.2", "1.1.2.2.3", "1.1.2.2.4", l1},
		{"/home", "1.1.2.3", "1.1.2.3.1", "1.1.2.3.2", "1.1.2.3.3", "", l2},
		{"/var", "1.1.2.4", "1.1.2.4.1", "1.1.2.4.2", "1.1.2.4.3", "", l2},
		{"/var/tmp", "1.1.2.5", "1.1.2.5.1", "1.1.2.5.2", "1.1.2.5.3", "1.1.2.5.4", l2},
		{"/var/log", "1.1.2.6", "1.1.2.6.1", "1.1.2.6.2", "1.1.2.6.3", "1.1.2.6.4", l2},
		{"/var/log/audit", "1.1.2.7", "1.1.2.7.1", "1.1.2.7.2", "1.1.2.7.3", "1.1.2.7.4", l2},
	}
	for _, p := range parts {
		sec := "1.1.2 Configure Filesystem Partitions"
		if p.sepID != "" {
			Register(BenchLinux, Check{ID: p.sepID, Title: "Ensure " + p.dir + " is a separate partition", Section: sec,
				Profile: p.sepProfile, Scored: true, Run: separateMount(p.dir),
				How:         "a mount of " + p.dir + " in /proc/self/mounts (or /etc/fstab when /proc is not under the root)",
				Remediation: "Mount " + p.dir + " as its own filesystem (a partition or tmpfs, e.g. systemctl unmask tmp.mount) with nodev,nosuid,noexec."})
		}
		for _, o := range []struct{ id, opt string }{{p.nodev, "nodev"}, {p.nosuid, "nosuid"}, {p.noex, "noexec"}} {
			if o.id == "" {
				continue
			}
			Register(BenchLinux, Check{ID: o.id, Title: "Ensure " + o.opt + " option set on " + p.dir + " partition", Section: sec,
				Profile: l1, Scored: true, Run: mountOption(p.dir, o.opt),
				How:         "the options of the " + p.dir + " mount in /proc/self/mounts (or /etc/fstab) include " + o.opt + "; passes when " + p.dir + " is not a separate mount",
				Remediation: "Add " + o.opt + " to the options of " + p.dir + " in /etc/fstab and run: mount -o remount " + p.dir})
		}
	}
}

// modprobe reads every modprobe.d configuration file under Root.
func (e *Env) modprobe() *modprobeConf {
	return e.memo("modprobe", func() any {
		m := &modprobeConf{}
		m.parse(nil, "")
		for _, dir := range []string{"/lib/modprobe.d", "/usr/lib/modprobe.d", "/run/modprobe.d", "/etc/modprobe.d"} {
			for _, f := range e.Glob(dir + "/*.conf") {
				if data, err := e.ReadFile(f); err == nil {
					m.parse(data, f)
				}
			}
		}
		return m
	}).(*modprobeConf)
}

// loadedModules reads /proc/modules under Root; ok=false when absent.
func (e *Env) loadedModules() (map[string]bool, bool) {
	type res struct {
		m  map[string]bool
		ok bool
	}
	r := e.memo("procmodules", func() any {
		data, err := e.ReadFile("/proc/modules")
		if err != nil {
			return res{}
		}
		m := map[string]bool{}
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				m[modName(f[0])] = true
			}
		}
		return res{m, true}
	}).(res)
	return r.m, r.ok
}

// kernelModules is what the running kernel could load: the modules of
// /lib/modules/<release>/modules.dep and modules.builtin, and the
// filesystems in /proc/filesystems.
type kernelModules struct {
	Release     string
	Tree        bool // modules.dep was read
	Mods        map[string]string
	Filesystems map[string]bool
}

func (e *Env) kernelModules() *kernelModules {
	return e.memo("kmods", func() any {
		k := &kernelModules{Mods: map[string]string{}, Filesystems: map[string]bool{}}
		k.Release, _ = e.readTrim("/proc/sys/kernel/osrelease")
		if k.Release != "" && !strings.ContainsAny(k.Release, "/") {
			dir := "/lib/modules/" + k.Release + "/"
			for _, f := range []string{"modules.dep", "modules.builtin"} {
				data, err := e.ReadFile(dir + f)
				if err != nil {
					continue
				}
				if f == "modules.dep" {
					k.Tree = true
				}
				for _, line := range strings.Split(string(data), "\n") {
					ko, _, _ := strings.Cut(line, ":")
					if ko == "" {
						continue
					}
					base := ko[strings.LastIndexByte(ko, '/')+1:]
					base, _, _ = strings.Cut(base, ".ko")
					k.Mods[modName(base)] = dir + f
				}
			}
		}
		if data, err := e.ReadFile("/proc/filesystems"); err == nil {
			for _, line := range strings.Split(string(data), "\n") {
				if f := strings.Fields(line); len(f) > 0 {
					k.Filesystems[modName(f[len(f)-1])] = true
				}
			}
		}
		return k
	}).(*kernelModules)
}

// available says whether the kernel could load or already has mod, and
// why.
func (k *kernelModules) available(mod string) (bool, string) {
	name := modName(mod)
	if f, ok := k.Mods[name]; ok {
		return true, "in " + f
	}
	if k.Filesystems[name] {
		return true, "listed in /proc/filesystems"
	}
	if k.Tree {
		return false, fmt.Sprintf("not in kernel %s's modules.dep or modules.builtin", k.Release)
	}
	return false, fmt.Sprintf("kernel %q has no module tree (/lib/modules/%s/modules.dep) and does not list it in /proc/filesystems", k.Release, k.Release)
}

func moduleDisabled(mod string) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		name := modName(mod)
		mp := e.modprobe()
		loaded, procOK := e.loadedModules()
		if avail, why := e.kernelModules().available(mod); !avail && !(procOK && loaded[name]) {
			return Pass, mod + " is not available: " + why, nil
		}
		var ev []string
		status := Pass
		inst, hasInst := mp.Install[name]
		switch {
		case !hasInst:
			status = Fail
			ev = append(ev, "no \"install "+mod+" /bin/false\" in modprobe.d")
		case strings.HasSuffix(inst.Value, "/bin/false") || strings.HasSuffix(inst.Value, "/bin/true"):
			ev = append(ev, fmt.Sprintf("install %s %s (%s)", mod, inst.Value, inst.where()))
		default:
			status = Fail
			ev = append(ev, fmt.Sprintf("install %s %s (%s) does not stop loading", mod, inst.Value, inst.where()))
		}
		if bl, ok := mp.Blacklist[name]; ok {
			ev = append(ev, fmt.Sprintf("blacklist %s (%s)", mod, bl.where()))
		} else {
			status = Fail
			ev = append(ev, "no \"blacklist "+mod+"\"")
		}
		if procOK {
			if loaded[name] {
				status = Fail
				ev = append(ev, mod+" is loaded (/proc/modules)")
			} else {
				ev = append(ev, "not loaded")
			}
		}
		return status, strings.Join(ev, "; "), nil
	}
}

func registerModules() {
	for _, m := range []struct{ id, mod, profile string }{
		{"1.1.1.1", "cramfs", l1}, {"1.1.1.2", "freevxfs", l1}, {"1.1.1.3", "hfs", l1},
		{"1.1.1.4", "hfsplus", l1}, {"1.1.1.5", "jffs2", l1}, {"1.1.1.8", "udf", l2},
		{"1.1.1.9", "usb-storage", l1},
	} {
		Register(BenchLinux, Check{ID: m.id, Title: "Ensure " + m.mod + " kernel module is not available",
			Section: "1.1.1 Configure Filesystem Kernel Modules", Profile: m.profile, Scored: true, Run: moduleDisabled(m.mod),
			How: "not available in the running kernel (modules.dep, modules.builtin, /proc/filesystems), or modprobe.d files (/etc, /run, /lib, /usr/lib) have \"install " + m.mod + " /bin/false\" and \"blacklist " + m.mod + "\" and /proc/modules does not list it",
			Remediation: fmt.Sprintf("printf 'install %s /bin/false\\nblacklist %s\\n' > /etc/modprobe.d/%s.conf; modprobe -r %s",
				m.mod, m.mod, m.mod, m.mod)})
	}
}

// readTrim reads a small file under Root and trims it.
func (e *Env) readTrim(p string) (string, error) {
	b, err := e.ReadFile(p)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

var errAbsent = errors.New("absent")

// sysctl reads a kernel parameter from /proc/sys under Root.
func (e *Env) sysctl(key string) (string, error) {
	v, err := e.readTrim("/proc/sys/" + strings.ReplaceAll(key, ".", "/"))
	if errors.Is(err, os.ErrNotExist) {
		return "", errAbsent
	}
	return v, err
}
