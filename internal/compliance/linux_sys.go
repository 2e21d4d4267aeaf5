package compliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func init() {
	registerFilePerms()
	registerAccounts()
	registerServices()
	registerIntegrity()
	registerAudit()
}

func registerFilePerms() {
	const sec = "7.1 System File Permissions"
	for _, f := range []struct {
		id, path string
		max      os.FileMode
		groups   []string
	}{
		{"7.1.1", "/etc/passwd", 0o644, []string{"root"}},
		{"7.1.2", "/etc/passwd-", 0o644, []string{"root"}},
		{"7.1.3", "/etc/group", 0o644, []string{"root"}},
		{"7.1.4", "/etc/group-", 0o644, []string{"root"}},
		{"7.1.5", "/etc/shadow", 0o640, []string{"root", "shadow"}},
		{"7.1.6", "/etc/shadow-", 0o640, []string{"root", "shadow"}},
		{"7.1.7", "/etc/gshadow", 0o640, []string{"root", "shadow"}},
		{"7.1.8", "/etc/gshadow-", 0o640, []string{"root", "shadow"}},
	} {
		spec := permSpec{Path: f.path, Max: f.max, Users: []string{"root"}, Groups: f.groups}
		if strings.HasSuffix(f.path, "-") {
			spec.Missing = Pass // backups exist only after the first change
		}
		Register(BenchLinux, Check{ID: f.id, Title: "Ensure permissions on " + f.path + " are configured", Section: sec,
			Profile: l1, Scored: true,
			How:         fmt.Sprintf("stat: mode %04o or stricter, owner root, group %s", f.max, strings.Join(f.groups, " or ")),
			Remediation: fmt.Sprintf("chown root:%s %s; chmod %04o %s", f.groups[len(f.groups)-1], f.path, f.max, f.path),
			Run:         func(_ context.Context, e *Env) (string, string, error) { return e.checkPerm(spec) }})
	}
	Register(BenchLinux, Check{ID: "2.4.1.2", Title: "Ensure permissions on /etc/crontab are configured",
		Section: "2.4 Job Schedulers", Profile: l1, Scored: true,
		How:         "stat /etc/crontab: mode 0600 or stricter, root:root (passes when cron is not installed)",
		Remediation: "chown root:root /etc/crontab; chmod og-rwx /etc/crontab",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			return e.checkPerm(permSpec{Path: "/etc/crontab", Max: 0o600, Users: []string{"root"}, Groups: []string{"root"}, Missing: Pass})
		}})
}

func registerAccounts() {
	defs := func(key string, ok func(n int) bool, want, rem string, id, title string) {
		Register(BenchLinux, Check{ID: id, Title: title, Section: "5.4.1 Configure shadow password suite parameters",
			Profile: l1, Scored: true, How: key + " in /etc/login.defs " + want, Remediation: rem,
			Run: func(_ context.Context, e *Env) (string, string, error) {
				data, err := e.ReadFile("/etc/login.defs")
				if err != nil {
					return "", "", fmt.Errorf("reading /etc/login.defs: %w", err)
				}
				s, found := parseKeyValues(data, "/etc/login.defs")[key]
				if !found {
					return Fail, key + " not set in /etc/login.defs", nil
				}
				ev := fmt.Sprintf("%s %s (%s)", key, s.Value, s.where())
				n, err := strconv.Atoi(s.Value)
				if err != nil || !ok(n) {
					return Fail, ev + " (want " + want + ")", nil
				}
				return Pass, ev, nil
			}})
	}
	defs("PASS_MAX_DAYS", func(n int) bool { return n > 0 && n <= 365 }, "1-365",
		"Set PASS_MAX_DAYS 365 in /etc/login.defs and chage --maxdays 365 for existing users", "5.4.1.1", "Ensure password expiration is configured")
	defs("PASS_MIN_DAYS", func(n int) bool { return n >= 1 }, "1 or more",
		"Set PASS_MIN_DAYS 1 in /etc/login.defs and chage --mindays 1 for existing users", "5.4.1.2", "Ensure minimum password age is configured")
	defs("PASS_WARN_AGE", func(n int) bool { return n >= 7 }, "7 or more",
		"Set PASS_WARN_AGE 7 in /etc/login.defs and chage --warndays 7 for existing users", "5.4.1.3", "Ensure password expiration warning days is configured")

	Register(BenchLinux, Check{ID: "5.4.2.1", Title: "Ensure root is the only UID 0 account",
		Section: "5.4.2 Configure root and system accounts and environment", Profile: l1, Scored: true,
		How: "accounts with UID 0 in /etc/passwd", Remediation: "Give every UID 0 account other than root a new UID, or remove it (usermod -u / userdel)",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			data, err := e.ReadFile("/etc/passwd")
			if err != nil {
				return "", "", fmt.Errorf("reading /etc/passwd: %w", err)
			}
			var zero []string
			for n, line := range strings.Split(string(data), "\n") {
				f := strings.Split(line, ":")
				if len(f) >= 3 && f[2] == "0" {
					zero = append(zero, fmt.Sprintf("%s (/etc/passwd:%d)", f[0], n+1))
				}
			}
			ev := "UID 0: " + strings.Join(zero, ", ")
			if len(zero) == 1 && strings.HasPrefix(zero[0], "root ") {
				return Pass, ev, nil
			}
			return Fail, ev, nil
		}})
	Register(BenchLinux, Check{ID: "7.2.2", Title: "Ensure /etc/shadow password fields are not empty",
		Section: "7.2 Local User and Group Settings", Profile: l1, Scored: true,
		How:         "accounts in /etc/shadow whose password field is empty (names only; hashes are never read into evidence)",
		Remediation: "Lock each listed account (passwd -l NAME) or set a password",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			data, err := e.ReadFile("/etc/shadow")
			if err != nil {
				return "", "", fmt.Errorf("reading /etc/shadow: %w", err)
			}
			var empty []string
			accounts := 0
			for n, line := range strings.Split(string(data), "\n") {
				f := strings.Split(line, ":")
				if len(f) < 2 || f[0] == "" {
					continue
				}
				accounts++
				if f[1] == "" {
					empty = append(empty, fmt.Sprintf("%s (/etc/shadow:%d)", f[0], n+1))
				}
			}
			if len(empty) > 0 {
				return Fail, "empty password: " + strings.Join(empty, ", "), nil
			}
			return Pass, fmt.Sprintf("%d accounts, none with an empty password field", accounts), nil
		}})
}

// dpkg returns the package status database under Root.
func (e *Env) dpkg() (map[string]string, error) {
	type res struct {
		m   map[string]string
		err error
	}
	r := e.memo("dpkg", func() any {
		data, err := e.ReadFile("/var/lib/dpkg/status")
		if err != nil {
			return res{err: fmt.Errorf("reading the package database: %w", err)}
		}
		return res{m: parseDpkgStatus(data)}
	}).(res)
	return r.m, r.err
}

func installed(st string) bool {
	return strings.HasSuffix(st, " installed") && strings.HasPrefix(st, "install ")
}

// unitEnabled reports whether a systemd unit is enabled (a symlink in a
// .wants or .requires directory under /etc/systemd/system) and whether it
// is masked.
func (e *Env) unitEnabled(unit string) (enabled bool, where string, masked bool) {
	if t, err := os.Readlink(e.Path("/etc/systemd/system/" + unit)); err == nil && t == "/dev/null" {
		return false, "", true
	}
	for _, pat := range []string{"/etc/systemd/system/*.wants/", "/etc/systemd/system/*.requires/"} {
		if m := e.Glob(pat + unit); len(m) > 0 {
			return true, m[0], false
		}
	}
	return false, "", false
}

// serverServices are the 2.1 checks: packages and the units that run them.
var serverServices = []struct {
	id, what string
	pkgs     []string
	units    []string
}{
	{"2.1.1", "autofs services", []string{"autofs"}, []string{"autofs.service"}},
	{"2.1.2", "avahi daemon services", []string{"avahi-daemon"}, []string{"avahi-daemon.service", "avahi-daemon.socket"}},
	{"2.1.3", "dhcp server services", []string{"isc-dhcp-server", "kea-dhcp4-server", "kea-dhcp6-server"}, []string{"isc-dhcp-server.service", "isc-dhcp-server6.service", "kea-dhcp4-server.service", "kea-dhcp6-server.service"}},
	{"2.1.4", "dns server services", []string{"bind9"}, []string{"named.service", "bind9.service"}},
	{"2.1.5", "dnsmasq services", []string{"dnsmasq"}, []string{"dnsmasq.service"}},
	{"2.1.6", "ftp server services", []string{"vsftpd", "proftpd-basic", "pure-ftpd"}, []string{"vsftpd.service", "proftpd.service", "pure-ftpd.service"}},
	{"2.1.7", "ldap server services", []string{"slapd"}, []string{"slapd.service"}},
	{"2.1.8", "message access server services", []string{"dovecot-imapd", "dovecot-pop3d"}, []string{"dovecot.service", "dovecot.socket"}},
	{"2.1.9", "network file system services", []string{"nfs-kernel-server"}, []string{"nfs-server.service"}},
	{"2.1.10", "nis server services", []string{"ypserv"}, []string{"ypserv.service"}},
	{"2.1.11", "print server services", []string{"cups"}, []string{"cups.service", "cups.socket"}},
	{"2.1.12", "rpcbind services", []string{"rpcbind"}, []string{"rpcbind.service", "rpcbind.socket"}},
	{"2.1.13", "rsync services", []string{"rsync"}, []string{"rsync.service"}},
	{"2.1.14", "samba file server services", []string{"samba"}, []string{"smbd.service", "nmbd.service"}},
	{"2.1.15", "snmp services", []string{"snmpd"}, []string{"snmpd.service"}},
	{"2.1.16", "tftp server services", []string{"tftpd-hpa"}, []string{"tftpd-hpa.service"}},
	{"2.1.17", "web proxy server services", []string{"squid"}, []string{"squid.service"}},
	{"2.1.18", "web server services", []string{"apache2", "nginx"}, []string{"apache2.service", "nginx.service"}},
	{"2.1.19", "xinetd services", []string{"xinetd"}, []string{"xinetd.service"}},
}

// clientPackages are the 2.2 checks.
var clientPackages = []struct {
	id, what string
	pkgs     []string
}{
	{"2.2.1", "NIS Client", []string{"nis"}},
	{"2.2.2", "rsh client", []string{"rsh-client"}},
	{"2.2.3", "talk client", []string{"talk"}},
	{"2.2.4", "telnet client", []string{"telnet", "inetutils-telnet"}},
	{"2.2.5", "ldap client", []string{"ldap-utils"}},
	{"2.2.6", "ftp client", []string{"ftp", "tnftp"}},
}

func registerServices() {
	for _, s := range serverServices {
		s := s
		Register(BenchLinux, Check{ID: s.id, Title: "Ensure " + s.what + " are not in use", Section: "2.1 Configure Server Services",
			Profile: l1, Scored: true,
			How:         "package " + strings.Join(s.pkgs, "/") + " not installed (dpkg status), or installed with none of " + strings.Join(s.units, ", ") + " enabled",
			Remediation: "apt purge " + strings.Join(s.pkgs, " ") + " (or, when another package needs it: systemctl stop and mask " + strings.Join(s.units, " ") + ")",
			Run: func(_ context.Context, e *Env) (string, string, error) {
				db, err := e.dpkg()
				if err != nil {
					return "", "", err
				}
				var inst []string
				for _, p := range s.pkgs {
					if installed(db[p]) {
						inst = append(inst, p)
					}
				}
				if len(inst) == 0 {
					return Pass, strings.Join(s.pkgs, ", ") + " not installed", nil
				}
				var enabled []string
				for _, u := range s.units {
					if on, where, _ := e.unitEnabled(u); on {
						enabled = append(enabled, u+" ("+where+")")
					}
				}
				ev := "installed: " + strings.Join(inst, ", ")
				if len(enabled) > 0 {
					return Fail, ev + "; enabled: " + strings.Join(enabled, ", "), nil
				}
				return Pass, ev + "; no unit enabled", nil
			}})
	}
	for _, c := range clientPackages {
		c := c
		Register(BenchLinux, Check{ID: c.id, Title: "Ensure " + c.what + " is not installed", Section: "2.2 Configure Client Services",
			Profile: l1, Scored: true, How: "package " + strings.Join(c.pkgs, "/") + " not installed (dpkg status)",
			Remediation: "apt purge " + strings.Join(c.pkgs, " "),
			Run: func(_ context.Context, e *Env) (string, string, error) {
				db, err := e.dpkg()
				if err != nil {
					return "", "", err
				}
				for _, p := range c.pkgs {
					if installed(db[p]) {
						return Fail, p + " installed (" + db[p] + ")", nil
					}
				}
				return Pass, strings.Join(c.pkgs, ", ") + " not installed", nil
			}})
	}
}

// vigilFIMDir is where `vigil fim init` keeps its baseline by default.
const vigilFIMDir = "/var/lib/vigil/fim"

func registerIntegrity() {
	const sec = "6.1 Configure Filesystem Integrity Checking"
	Register(BenchLinux, Check{ID: "6.1.1", Title: "Ensure AIDE is installed", Section: sec, Profile: l1, Scored: true,
		How:         "aide installed (dpkg) with a database in /var/lib/aide/aide.db*, or a Vigil FIM baseline in " + vigilFIMDir,
		Remediation: "apt install aide aide-common && aideinit && mv /var/lib/aide/aide.db.new /var/lib/aide/aide.db — or: vigil fim init",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			var ev []string
			if db, err := e.dpkg(); err == nil && installed(db["aide"]) {
				if dbs := e.Glob("/var/lib/aide/aide.db*"); len(dbs) > 0 {
					return Pass, "aide installed; database " + strings.Join(dbs, ", "), nil
				}
				ev = append(ev, "aide installed but no database in /var/lib/aide (run aideinit)")
			} else {
				ev = append(ev, "aide not installed")
			}
			if fs := e.Glob(vigilFIMDir + "/*"); len(fs) > 0 {
				return Pass, "Vigil FIM baseline: " + strings.Join(fs, ", "), nil
			}
			ev = append(ev, "no Vigil FIM baseline in "+vigilFIMDir)
			return Fail, strings.Join(ev, "; "), nil
		}})
	Register(BenchLinux, Check{ID: "6.1.2", Title: "Ensure filesystem integrity is regularly checked", Section: sec, Profile: l1, Scored: true,
		How:         "dailyaidecheck.timer or a vigil-fim timer enabled, /etc/cron.daily/aide executable, or a cron entry running aide or vigil fim check",
		Remediation: "systemctl enable --now dailyaidecheck.timer (aide-common), or schedule `vigil fim check` in cron or a systemd timer (the agent's realtime FIM also covers it)",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			for _, u := range []string{"dailyaidecheck.timer", "vigil-fim.timer", "vigil-fim-check.timer"} {
				if on, where, _ := e.unitEnabled(u); on {
					return Pass, u + " enabled (" + where + ")", nil
				}
			}
			if fi, err := e.Stat("/etc/cron.daily/aide"); err == nil && fi.Mode()&0o111 != 0 {
				return Pass, fmt.Sprintf("/etc/cron.daily/aide mode %04o", fi.Mode().Perm()), nil
			}
			files := append([]string{"/etc/crontab"}, e.Glob("/etc/cron.d/*")...)
			files = append(files, e.Glob("/var/spool/cron/crontabs/*")...)
			for _, f := range files {
				data, err := e.ReadFile(f)
				if err != nil {
					continue
				}
				for n, line := range strings.Split(string(data), "\n") {
					t := strings.TrimSpace(line)
					if t == "" || t[0] == '#' {
						continue
					}
					if strings.Contains(t, "aide") || strings.Contains(t, "vigil fim check") {
						return Pass, fmt.Sprintf("%s:%d: %s", f, n+1, t), nil
					}
				}
			}
			return Fail, "no dailyaidecheck.timer or vigil-fim timer enabled, no /etc/cron.daily/aide, no cron entry for aide or vigil fim check", nil
		}})
}

// auditRules reads the on-disk audit rules (/etc/audit/rules.d/*.rules
// and /etc/audit/audit.rules), comments removed, whitespace normalised.
func (e *Env) auditRules() []setting {
	return e.memo("auditrules", func() any {
		var out []setting
		files := append(e.Glob("/etc/audit/rules.d/*.rules"), "/etc/audit/audit.rules")
		for _, f := range files {
			data, err := e.ReadFile(f)
			if err != nil {
				continue
			}
			for n, line := range strings.Split(string(data), "\n") {
				t := strings.Join(strings.Fields(line), " ")
				if t == "" || t[0] == '#' {
					continue
				}
				out = append(out, setting{Value: t, File: f, Line: n + 1})
			}
		}
		return out
	}).([]setting)
}

// auditWatch is one thing a rule set must cover: a watched path (-w PATH)
// or a syscall (-S name).
type auditWatch struct{ path, syscall string }

func (w auditWatch) String() string {
	if w.path != "" {
		return "-w " + w.path
	}
	return "-S " + w.syscall
}

func (w auditWatch) matches(rule string) bool {
	f := strings.Fields(rule)
	for i := 0; i+1 < len(f); i++ {
		switch {
		case w.path != "" && f[i] == "-w" && f[i+1] == w.path:
			return true
		case w.path != "" && f[i] == "-F" && f[i+1] == "path="+w.path:
			return true
		case w.syscall != "" && f[i] == "-S":
			for _, s := range strings.Split(f[i+1], ",") {
				if s == w.syscall {
					return true
				}
			}
		}
	}
	return false
}

// loadedAuditRules are the rules the kernel has (`auditctl -l`), on the
// live system only; ok=false when they cannot be read.
func (e *Env) loadedAuditRules(ctx context.Context) (rules []string, ok bool) {
	type res struct {
		rules []string
		ok    bool
	}
	r := e.memo("auditctl", func() any {
		if !e.Live() {
			return res{}
		}
		out, err := e.Exec(ctx, "auditctl", "-l")
		if err != nil {
			return res{}
		}
		var rules []string
		for _, line := range strings.Split(string(out), "\n") {
			if t := strings.Join(strings.Fields(line), " "); t != "" && t != "No rules" {
				rules = append(rules, t)
			}
		}
		return res{rules, true}
	}).(res)
	return r.rules, r.ok
}

// auditRulesCheck passes when the on-disk rules cover every watch and,
// on the live system, the loaded rules (auditctl -l) do too.
func auditRulesCheck(wants ...auditWatch) CheckFunc {
	return func(ctx context.Context, e *Env) (string, string, error) {
		rules := e.auditRules()
		loaded, haveLoaded := e.loadedAuditRules(ctx)
		var found, missing, notLoaded []string
		for _, w := range wants {
			hit := false
			for _, r := range rules {
				if w.matches(r.Value) {
					found = append(found, fmt.Sprintf("%s (%s)", r.Value, r.where()))
					hit = true
					break
				}
			}
			if !hit {
				missing = append(missing, w.String())
				continue
			}
			if haveLoaded {
				in := false
				for _, r := range loaded {
					if w.matches(r) {
						in = true
						break
					}
				}
				if !in {
					notLoaded = append(notLoaded, w.String())
				}
			}
		}
		var ev []string
		if len(missing) > 0 {
			ev = append(ev, "missing: "+strings.Join(missing, ", "))
		}
		if len(notLoaded) > 0 {
			ev = append(ev, "on disk but not loaded (auditctl -l): "+strings.Join(notLoaded, ", "))
		}
		if len(found) > 0 {
			ev = append(ev, "found: "+strings.Join(found, "; "))
		}
		if len(missing)+len(notLoaded) > 0 {
			return Fail, strings.Join(ev, "; "), nil
		}
		if haveLoaded {
			ev = append(ev, "all loaded (auditctl -l)")
		}
		return Pass, strings.Join(ev, "; "), nil
	}
}

func registerAudit() {
	const sec = "6.3 System Auditing"
	Register(BenchLinux, Check{ID: "6.3.1.1", Title: "Ensure auditd packages are installed", Section: sec, Profile: l2, Scored: true,
		How: "auditd and audispd-plugins installed (dpkg status)", Remediation: "apt install auditd audispd-plugins",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			db, err := e.dpkg()
			if err != nil {
				return "", "", err
			}
			var ev []string
			st := Pass
			for _, p := range []string{"auditd", "audispd-plugins"} {
				if installed(db[p]) {
					ev = append(ev, p+" installed")
				} else {
					ev = append(ev, p+" not installed")
					st = Fail
				}
			}
			return st, strings.Join(ev, "; "), nil
		}})
	Register(BenchLinux, Check{ID: "6.3.1.2", Title: "Ensure auditd service is enabled and active", Section: sec, Profile: l2, Scored: true,
		How:         "auditd.service enabled (a .wants symlink); on the live root also `systemctl is-active auditd`, or `auditctl -s` pid when systemd cannot be asked",
		Remediation: "systemctl unmask auditd; systemctl enable --now auditd",
		Run: func(ctx context.Context, e *Env) (string, string, error) {
			on, where, masked := e.unitEnabled("auditd.service")
			if masked {
				return Fail, "auditd.service masked", nil
			}
			if !on {
				return Fail, "auditd.service not enabled", nil
			}
			ev := "auditd.service enabled (" + where + ")"
			if !e.Live() {
				return Pass, ev, nil
			}
			out, err := e.Exec(ctx, "systemctl", "is-active", "auditd")
			state := strings.TrimSpace(string(out))
			if state == "" && err != nil {
				// No systemd to ask (a container, another init): the kernel
				// knows auditd's PID (auditctl -s: "pid 0" when none).
				st, serr := e.Exec(ctx, "auditctl", "-s")
				if serr != nil {
					return "", "", fmt.Errorf("systemctl is-active auditd: %w; auditctl -s: %v", err, serr)
				}
				for _, line := range strings.Split(string(st), "\n") {
					if f := strings.Fields(line); len(f) == 2 && f[0] == "pid" {
						ev += "; systemd unavailable; auditctl -s: pid " + f[1]
						if f[1] == "0" {
							return Fail, ev + " (auditd not running)", nil
						}
						return Pass, ev, nil
					}
				}
				return "", "", fmt.Errorf("systemctl is-active auditd: %w; auditctl -s shows no pid", err)
			}
			ev += "; systemctl is-active: " + state
			if state != "active" {
				return Fail, ev, nil
			}
			return Pass, ev, nil
		}})
	Register(BenchLinux, Check{ID: "6.3.1.3", Title: "Ensure auditing for processes that start prior to auditd is enabled", Section: sec,
		Profile: l2, Scored: true, How: "audit=1 on the kernel command line (/proc/cmdline)",
		Remediation: "Add audit=1 to GRUB_CMDLINE_LINUX in /etc/default/grub; update-grub; reboot",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			cl, err := e.readTrim("/proc/cmdline")
			if errors.Is(err, os.ErrNotExist) {
				return "", "", fmt.Errorf("/proc/cmdline does not exist under %s", e.Root)
			}
			if err != nil {
				return "", "", err
			}
			for _, f := range strings.Fields(cl) {
				if f == "audit=1" {
					return Pass, "/proc/cmdline has audit=1", nil
				}
			}
			return Fail, "/proc/cmdline: " + cl, nil
		}})
	rules := []struct {
		id, title string
		w         []auditWatch
	}{
		{"6.3.3.1", "Ensure changes to system administration scope (sudoers) is collected",
			[]auditWatch{{path: "/etc/sudoers"}, {path: "/etc/sudoers.d"}}},
		{"6.3.3.4", "Ensure events that modify date and time information are collected",
			[]auditWatch{{syscall: "adjtimex"}, {syscall: "settimeofday"}, {syscall: "clock_settime"}, {path: "/etc/localtime"}}},
		{"6.3.3.5", "Ensure events that modify the system's network environment are collected",
			[]auditWatch{{syscall: "sethostname"}, {syscall: "setdomainname"}, {path: "/etc/issue"}, {path: "/etc/issue.net"}, {path: "/etc/hosts"}, {path: "/etc/hostname"}}},
		{"6.3.3.8", "Ensure events that modify user/group information are collected",
			[]auditWatch{{path: "/etc/group"}, {path: "/etc/passwd"}, {path: "/etc/gshadow"}, {path: "/etc/shadow"}, {path: "/etc/security/opasswd"}}},
	}
	for _, r := range rules {
		var ws []string
		for _, w := range r.w {
			ws = append(ws, w.String())
		}
		Register(BenchLinux, Check{ID: r.id, Title: r.title, Section: sec, Profile: l2, Scored: true,
			How:         "on-disk rules in /etc/audit/rules.d/*.rules and audit.rules, and on the live root the loaded rules (auditctl -l), cover " + strings.Join(ws, ", "),
			Remediation: "Add rules covering " + strings.Join(ws, ", ") + " to /etc/audit/rules.d/50-cis.rules (-p wa -k <key>); augenrules --load",
			Run:         auditRulesCheck(r.w...)})
	}
	Register(BenchLinux, Check{ID: "6.3.3.20", Title: "Ensure the audit configuration is immutable", Section: sec, Profile: l2, Scored: true,
		How: "a \"-e 2\" rule in the on-disk rules (the benchmark wants it last)", Remediation: "Put \"-e 2\" in /etc/audit/rules.d/99-finalize.rules; augenrules --load; reboot",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			rules := e.auditRules()
			if len(rules) == 0 {
				return Fail, "no audit rules in /etc/audit", nil
			}
			last := rules[len(rules)-1]
			for _, r := range rules {
				if r.Value == "-e 2" {
					return Pass, fmt.Sprintf("-e 2 (%s)", r.where()), nil
				}
			}
			return Fail, fmt.Sprintf("no \"-e 2\"; last rule: %s (%s)", last.Value, last.where()), nil
		}})
}
