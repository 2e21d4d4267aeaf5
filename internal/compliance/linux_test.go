package compliance

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tree writes files (path → content) under root; a content starting with
// "->" makes a symbolic link to the rest.
func tree(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(c, "->") {
			if err := os.Symlink(strings.TrimPrefix(c, "->"), full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func chmod(t testing.TB, root string, modes map[string]os.FileMode) {
	t.Helper()
	for p, m := range modes {
		if err := os.Chmod(filepath.Join(root, p), m); err != nil {
			t.Fatal(err)
		}
	}
}

var fsModules = []string{"cramfs", "freevxfs", "hfs", "hfsplus", "jffs2", "udf", "usb-storage"}

// sysctlFiles sets kernel parameters, running and persisted in
// /etc/sysctl.d/60-cis.conf.
func sysctlFiles(vals map[string]string) map[string]string {
	out := map[string]string{}
	var conf strings.Builder
	for k, v := range vals {
		out["/proc/sys/"+strings.ReplaceAll(k, ".", "/")] = v + "\n"
		conf.WriteString(k + " = " + v + "\n")
	}
	out["/etc/sysctl.d/60-cis.conf"] = conf.String()
	return out
}

const passwdFixture = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nalice:x:1000:1000::/home/alice:/bin/bash\n"
const groupFixture = "root:x:0:\ndaemon:x:1:\nshadow:x:42:\ndocker:x:999:\nalice:x:1000:\n"

// goodLinux builds a root that passes every Linux check.
func goodLinux(t testing.TB) string {
	root := t.TempDir()
	var mp strings.Builder
	for _, m := range fsModules {
		mp.WriteString("install " + m + " /bin/false\nblacklist " + m + "\n")
	}
	files := map[string]string{
		"/proc/self/mounts": "sysfs /sys sysfs rw,nosuid,nodev,noexec 0 0\n" +
			"tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,relatime 0 0\n" +
			"tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0\n" +
			"/dev/sda3 /var/tmp ext4 rw,nosuid,nodev,noexec,relatime 0 0\n" +
			"/dev/sda4 /home ext4 rw,nosuid,nodev 0 0\n/dev/sda5 /var ext4 rw,nosuid,nodev 0 0\n" +
			"/dev/sda6 /var/log ext4 rw,nosuid,nodev,noexec 0 0\n/dev/sda7 /var/log/audit ext4 rw,nosuid,nodev,noexec 0 0\n",
		"/etc/modprobe.d/cis.conf":   mp.String(),
		"/proc/modules":              "ext4 1003520 1 - Live 0x0000000000000000\noverlay 151552 0 - Live 0x0\n",
		"/proc/sys/kernel/osrelease": "6.1.0-27-amd64\n",
		"/lib/modules/6.1.0-27-amd64/modules.dep": "kernel/fs/cramfs/cramfs.ko.xz:\nkernel/fs/freevxfs/freevxfs.ko.xz:\nkernel/fs/hfs/hfs.ko.xz:\n" +
			"kernel/fs/hfsplus/hfsplus.ko.xz:\nkernel/fs/jffs2/jffs2.ko.xz:\nkernel/fs/udf/udf.ko.xz:\nkernel/drivers/usb/storage/usb-storage.ko.xz:\n",
		"/etc/ssh/sshd_config": "# CIS\nInclude /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\nPermitEmptyPasswords no\n" +
			"MaxAuthTries 4\nLoginGraceTime 60\nDisableForwarding yes\nIgnoreRhosts yes\nHostbasedAuthentication no\n" +
			"ClientAliveInterval 15\nClientAliveCountMax 3\nLogLevel VERBOSE\nUsePAM yes\nMaxSessions 10\n" +
			"AllowGroups sshusers\nCiphers aes256-gcm@openssh.com,aes128-ctr\nMACs -hmac-sha1\nMaxStartups 10:30:60\n" +
			"Match User backup\n  PermitRootLogin yes\n",
		"/etc/ssh/sshd_config.d/10-banner.conf": "Banner /etc/issue.net\n",
		"/etc/ssh/ssh_host_ed25519_key":         "key\n",
		"/etc/ssh/ssh_host_ed25519_key.pub":     "pub\n",
		"/etc/passwd":                           passwdFixture,
		"/etc/passwd-":                          passwdFixture,
		"/etc/group":                            groupFixture,
		"/etc/group-":                           groupFixture,
		"/etc/shadow":                           "root:$y$j9T$abc:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nalice:!:19000::::::\n",
		"/etc/shadow-":                          "root:$y$j9T$abc:19000:0:99999:7:::\n",
		"/etc/gshadow":                          "root:*::\n",
		"/etc/gshadow-":                         "root:*::\n",
		"/etc/crontab":                          "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n",
		"/etc/login.defs":                       "# defs\nPASS_MAX_DAYS 99999\nPASS_MAX_DAYS\t365\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\n",
		"/var/lib/dpkg/status": "Package: aide\nStatus: install ok installed\n\nPackage: auditd\nStatus: install ok installed\n\n" +
			"Package: audispd-plugins\nStatus: install ok installed\n\nPackage: rsync\nStatus: install ok installed\n\n" +
			"Package: telnet\nStatus: deinstall ok config-files\n",
		"/var/lib/aide/aide.db": "db",
		"/etc/systemd/system/multi-user.target.wants/auditd.service":   "->/lib/systemd/system/auditd.service",
		"/etc/systemd/system/timers.target.wants/dailyaidecheck.timer": "->/lib/systemd/system/dailyaidecheck.timer",
		"/proc/cmdline": "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro audit=1 audit_backlog_limit=8192\n",
		"/etc/audit/rules.d/50-cis.rules": "-w /etc/sudoers -p wa -k scope\n-w /etc/sudoers.d -p wa -k scope\n" +
			"-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change\n-w /etc/localtime -p wa -k time-change\n" +
			"-a always,exit -F arch=b64 -S sethostname,setdomainname -k system-locale\n" +
			"-w /etc/issue -p wa -k system-locale\n-w /etc/issue.net -p wa -k system-locale\n-w /etc/hosts -p wa -k system-locale\n-w /etc/hostname -p wa -k system-locale\n" +
			"-w /etc/group -p wa -k identity\n-w /etc/passwd -p wa -k identity\n-w /etc/gshadow -p wa -k identity\n-w /etc/shadow -p wa -k identity\n-w /etc/security/opasswd -p wa -k identity\n",
		"/etc/audit/rules.d/99-finalize.rules": "-e 2\n",
	}
	for k, v := range sysctlFiles(map[string]string{
		"kernel.randomize_va_space": "2", "fs.suid_dumpable": "0", "net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0",
		"net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.default.send_redirects": "0",
		"net.ipv4.icmp_ignore_bogus_error_responses": "1", "net.ipv4.icmp_echo_ignore_broadcasts": "1",
		"net.ipv4.conf.all.accept_redirects": "0", "net.ipv4.conf.default.accept_redirects": "0",
		"net.ipv6.conf.all.accept_redirects": "0", "net.ipv6.conf.default.accept_redirects": "0",
		"net.ipv4.conf.all.secure_redirects": "0", "net.ipv4.conf.default.secure_redirects": "0",
		"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "1",
		"net.ipv4.conf.all.accept_source_route": "0", "net.ipv4.conf.default.accept_source_route": "0",
		"net.ipv6.conf.all.accept_source_route": "0", "net.ipv6.conf.default.accept_source_route": "0",
		"net.ipv4.conf.all.log_martians": "1", "net.ipv4.conf.default.log_martians": "1",
		"net.ipv4.tcp_syncookies": "1", "net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0",
	}) {
		files[k] = v
	}
	tree(t, root, files)
	chmod(t, root, map[string]os.FileMode{
		"/etc/ssh/sshd_config": 0o600, "/etc/ssh/sshd_config.d/10-banner.conf": 0o600, "/etc/ssh/ssh_host_ed25519_key": 0o600,
		"/etc/shadow": 0o640, "/etc/shadow-": 0o600, "/etc/gshadow": 0o640, "/etc/gshadow-": 0o640, "/etc/crontab": 0o600,
	})
	return root
}

// badLinux builds a root that fails every Linux check.
func badLinux(t testing.TB) string {
	root := t.TempDir()
	dpkg := "Package: telnet\nStatus: install ok installed\n\n"
	files := map[string]string{
		"/proc/self/mounts": "/dev/sda2 /var/tmp ext4 rw,relatime 0 0\n/dev/sda1 / ext4 rw,relatime 0 0\n" +
			"/dev/sda4 /home ext4 rw 0 0\n/dev/sda5 /var ext4 rw 0 0\n/dev/sda6 /var/log ext4 rw 0 0\n/dev/sda7 /var/log/audit ext4 rw 0 0\n",
		"/etc/modprobe.d/blacklist.conf": "blacklist cramfs\ninstall hfs /sbin/modprobe --ignore-install hfs\n",
		"/proc/modules":                  "cramfs 16384 0 - Live 0x0\nusb_storage 81920 0 - Live 0x0\n",
		"/proc/sys/kernel/osrelease":     "6.1.0-27-amd64\n",
		"/lib/modules/6.1.0-27-amd64/modules.dep": "kernel/fs/freevxfs/freevxfs.ko: \nkernel/fs/hfs/hfs.ko: \nkernel/fs/jffs2/jffs2.ko: kernel/lib/zlib.ko\n" +
			"kernel/fs/udf/udf.ko: kernel/lib/crc-itu-t.ko\nkernel/drivers/usb/storage/usb-storage.ko: \n",
		"/proc/filesystems": "nodev\tsysfs\n\text4\n\thfsplus\n",
		"/etc/ssh/sshd_config": "PermitRootLogin yes\nPermitEmptyPasswords yes\nMaxAuthTries 10\n" +
			"X11Forwarding yes\nIgnoreRhosts no\nHostbasedAuthentication yes\nLogLevel QUIET\nUsePAM no\nMaxSessions 20\n" +
			"GSSAPIAuthentication yes\nPermitUserEnvironment yes\nCiphers aes128-ctr,3des-cbc\nKexAlgorithms +diffie-hellman-group1-sha1\n" +
			"MACs hmac-sha2-256,HMAC-MD5\nMaxStartups 100\n" +
			"# a relative Include; its PermitRootLogin comes too late to count\nInclude sshd_config.d/*.conf\n",
		"/etc/ssh/sshd_config.d/20.conf":     "LoginGraceTime 600\nPermitRootLogin no\n",
		"/etc/ssh/ssh_host_ed25519_key":      "key\n",
		"/etc/ssh/ssh_host_ed25519_key.pub":  "pub\n",
		"/etc/passwd":                        passwdFixture + "toor:x:0:0::/root:/bin/sh\nbob:$1$hash:1000:43::/home/bob:/bin/sh\nalice:x:1001:77::/home/a:/bin/sh\n",
		"/etc/passwd-":                       passwdFixture,
		"/etc/group":                         groupFixture + "shadow:x:43:alice\nwheel:x:999:\n",
		"/etc/group-":                        groupFixture,
		"/etc/shadow":                        "root::19000:0:99999:7:::\nalice:$y$abc:19000::::::\n",
		"/etc/shadow-":                       "root::19000:0:99999:7:::\n",
		"/etc/gshadow":                       "root:*::\n",
		"/etc/gshadow-":                      "root:*::\n",
		"/etc/crontab":                       "# nothing\n",
		"/etc/login.defs":                    "PASS_MAX_DAYS 99999\nPASS_MIN_DAYS 0\n",
		"/proc/cmdline":                      "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n",
		"/etc/audit/rules.d/10-some.rules":   "-w /etc/passwd -p wa -k identity\n",
		"/etc/systemd/system/auditd.service": "->/dev/null",
	}
	for _, s := range serverServices {
		dpkg += "Package: " + s.pkgs[0] + "\nStatus: install ok installed\n\n"
		files["/etc/systemd/system/multi-user.target.wants/"+s.units[0]] = "->/lib/systemd/system/" + s.units[0]
	}
	for _, c := range clientPackages {
		dpkg += "Package: " + c.pkgs[0] + "\nStatus: install ok installed\n\n"
	}
	files["/var/lib/dpkg/status"] = dpkg
	for k, v := range sysctlFiles(map[string]string{
		"kernel.randomize_va_space": "0", "fs.suid_dumpable": "2", "net.ipv4.ip_forward": "1",
		"net.ipv4.conf.all.send_redirects": "1", "net.ipv4.conf.default.send_redirects": "1",
		"net.ipv4.icmp_ignore_bogus_error_responses": "0", "net.ipv4.icmp_echo_ignore_broadcasts": "0",
		"net.ipv4.conf.all.accept_redirects": "1", "net.ipv4.conf.default.accept_redirects": "1",
		"net.ipv4.conf.all.secure_redirects": "1", "net.ipv4.conf.default.secure_redirects": "1",
		"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "2",
		"net.ipv4.conf.all.accept_source_route": "1", "net.ipv4.conf.default.accept_source_route": "0",
		"net.ipv4.conf.all.log_martians": "0", "net.ipv4.conf.default.log_martians": "0",
		"net.ipv4.tcp_syncookies": "0", "net.ipv6.conf.all.accept_ra": "1", "net.ipv6.conf.default.accept_ra": "1",
	}) {
		files[k] = v
	}
	tree(t, root, files)
	chmod(t, root, map[string]os.FileMode{
		"/etc/ssh/sshd_config": 0o644, "/etc/ssh/ssh_host_ed25519_key": 0o644, "/etc/ssh/ssh_host_ed25519_key.pub": 0o666,
		"/etc/passwd": 0o666, "/etc/passwd-": 0o664, "/etc/group": 0o664, "/etc/group-": 0o646, "/etc/shadow": 0o644,
		"/etc/shadow-": 0o644, "/etc/gshadow": 0o604, "/etc/gshadow-": 0o660, "/etc/crontab": 0o644,
	})
	// gshadow- owned by the wrong group (alice) rather than by mode alone.
	if err := os.Chown(filepath.Join(root, "/etc/gshadow-"), 0, 1000); err != nil {
		t.Fatal(err)
	}
	return root
}

var fixedNow = func() time.Time { return time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC) }

func noExec(_ context.Context, name string, _ ...string) ([]byte, error) {
	return nil, errors.New("no commands in fixture tests: " + name)
}

func runLinux(t testing.TB, root string) *Report {
	t.Helper()
	rep, err := Run(context.Background(), BenchLinux, Options{Root: root, Exec: noExec, Host: "fixture", Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestLinuxCheckCount(t *testing.T) {
	if n := len(Checks(BenchLinux)); n < 40 {
		t.Errorf("%d Linux checks, want at least 40", n)
	}
	for _, c := range Checks(BenchLinux) {
		if c.Title == "" || c.Remediation == "" || c.How == "" || c.Section == "" || c.Profile == "" {
			t.Errorf("check %s lacks a title, section, profile, how or remediation", c.ID)
		}
	}
}

func TestLinuxGoodTreePasses(t *testing.T) {
	rep := runLinux(t, goodLinux(t))
	for _, r := range rep.Results {
		if r.Status != Pass {
			t.Errorf("%s %s: %s, want pass; evidence %q error %q", r.ID, r.Title, r.Status, r.Evidence, r.Error)
		}
		if r.Evidence == "" {
			t.Errorf("%s: no evidence", r.ID)
		}
		if strings.HasPrefix(r.ID, "1.1.1.") && !strings.Contains(r.Evidence, "/bin/false") {
			t.Errorf("%s passed without its modprobe.d lines: %q", r.ID, r.Evidence)
		}
	}
	if rep.Summary.Pass != len(rep.Results) {
		t.Errorf("summary %+v for %d results", rep.Summary, len(rep.Results))
	}
}

func TestLinuxBadTreeFails(t *testing.T) {
	rep := runLinux(t, badLinux(t))
	// These pass in the bad tree: its /home, /var, /var/tmp, /var/log and
	// /var/log/audit are separate (without their options), and the options
	// of /tmp and /dev/shm, which are not (1.1.2.1.1 and 1.1.2.2.1 fail),
	// are not applicable.
	passes := map[string]string{"1.1.2.3.1": "/home", "1.1.2.4.1": "/var", "1.1.2.5.1": "/var/tmp", "1.1.2.6.1": "/var/log",
		"1.1.2.7.1": "/var/log/audit", "1.1.2.1.2": "not applicable", "1.1.2.1.3": "not applicable", "1.1.2.1.4": "not applicable",
		"1.1.2.2.2": "not applicable", "1.1.2.2.3": "not applicable", "1.1.2.2.4": "not applicable"}
	for _, r := range rep.Results {
		if want, ok := passes[r.ID]; ok {
			if r.Status != Pass || !strings.Contains(r.Evidence, want) {
				t.Errorf("%s: %s %q, want pass with %q", r.ID, r.Status, r.Evidence, want)
			}
			continue
		}
		if r.Status != Fail {
			t.Errorf("%s %s: %s, want fail; evidence %q error %q", r.ID, r.Title, r.Status, r.Evidence, r.Error)
		}
	}
	// The evidence says what was seen, per family.
	want := map[string]string{
		"1.1.2.1.1": "/tmp is not a separate mount in /proc/self/mounts",
		"1.1.2.3.2": "/home mounted with rw (no nodev)",
		"1.1.2.7.4": "/var/log/audit mounted with rw (no noexec)",
		"1.1.2.5.2": "/var/tmp mounted with rw,relatime (no nodev)",
		"1.1.1.1":   "cramfs is loaded (/proc/modules)",
		"1.1.1.3":   "install hfs /sbin/modprobe --ignore-install hfs (/etc/modprobe.d/blacklist.conf:2) does not stop loading",
		"1.1.1.9":   "usb-storage is loaded",
		"3.3.1":     "net.ipv4.ip_forward = 1 (want 0)",
		"3.3.7":     "net.ipv4.conf.default.rp_filter = 2 (want 1)",
		"3.3.11":    "net.ipv6.conf.all.accept_ra = 1",
		"1.5.1":     "kernel.randomize_va_space = 0",
		"5.1.20":    "PermitRootLogin yes (/etc/ssh/sshd_config:1)",
		"5.1.13":    "LoginGraceTime 600 (/etc/ssh/sshd_config.d/20.conf:1)",
		"5.1.16":    "MaxAuthTries 10",
		"5.1.8":     "X11Forwarding yes",
		"5.1.5":     "Banner not set (default none)",
		"5.1.4":     "none of AllowUsers",
		"5.1.6":     "(weak: 3des-cbc)",
		"5.1.12":    "KexAlgorithms +diffie-hellman-group1-sha1 (/etc/ssh/sshd_config:13) (weak: diffie-hellman-group1-sha1)",
		"5.1.15":    "(weak: HMAC-MD5)",
		"5.1.18":    "MaxStartups 100",
		"5.1.1":     "/etc/ssh/sshd_config: mode 0644 uid 0(root)",
		"5.1.2":     "mode allows 0044 beyond 0600",
		"7.1.5":     "/etc/shadow: mode 0644",
		"7.1.8":     "group not root or shadow",
		"5.4.2.1":   "toor (/etc/passwd:4)",
		"7.2.2":     "empty password: root (/etc/shadow:1)",
		"7.2.1":     "not shadowed: bob (/etc/passwd:5)",
		"7.2.3":     "alice GID 77 (/etc/passwd:6)",
		"7.2.4":     "shadow members alice (/etc/group:6); bob has primary group shadow (/etc/passwd:5)",
		"7.2.5":     "duplicate UID: 0 (/etc/passwd:1, /etc/passwd:4); 1000 (/etc/passwd:3, /etc/passwd:5)",
		"7.2.6":     "duplicate GID: 999 (/etc/group:4, /etc/group:7)",
		"7.2.7":     "duplicate user name: alice (/etc/passwd:3, /etc/passwd:6)",
		"7.2.8":     "duplicate group name: shadow (/etc/group:3, /etc/group:6)",
		"5.4.2.2":   "GID 0: toor (/etc/passwd:4)",
		"5.4.1.1":   "PASS_MAX_DAYS 99999",
		"5.4.1.3":   "PASS_WARN_AGE not set",
		"2.1.2":     "enabled: avahi-daemon.service",
		"2.2.4":     "telnet installed",
		"6.1.1":     "aide not installed",
		"6.3.1.2":   "auditd.service masked",
		"6.3.1.3":   "ro quiet",
		"6.3.3.8":   "missing: -w /etc/group",
		"6.3.3.20":  "no \"-e 2\"",
		"2.4.1.2":   "/etc/crontab: mode 0644",
	}
	got := map[string]Result{}
	for _, r := range rep.Results {
		got[r.ID] = r
	}
	for id, sub := range want {
		r, ok := got[id]
		if !ok {
			t.Errorf("no result for %s", id)
			continue
		}
		if !strings.Contains(r.Evidence, sub) {
			t.Errorf("%s evidence %q, want it to contain %q", id, r.Evidence, sub)
		}
	}
}

// TestModuleNotAvailable: a module the kernel does not have passes
// without modprobe.d lines; one built in (in /proc/filesystems) does not.
func TestModuleNotAvailable(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/proc/sys/kernel/osrelease":                  "6.1.0-27-amd64\n",
		"/lib/modules/6.1.0-27-amd64/modules.dep":     "kernel/fs/hfs/hfs.ko.xz:\n",
		"/lib/modules/6.1.0-27-amd64/modules.builtin": "kernel/fs/jffs2/jffs2.ko\n",
		"/proc/filesystems":                           "\text4\n\tudf\n",
		"/proc/modules":                               "ext4 1 0 - Live 0x0\n",
	})
	byID := map[string]Result{}
	for _, r := range runLinux(t, root).Results {
		byID[r.ID] = r
	}
	for id, want := range map[string]string{
		"1.1.1.1": "pass cramfs is not available: not in kernel 6.1.0-27-amd64's modules.dep or modules.builtin",
		"1.1.1.3": "fail no \"install hfs /bin/false\"",
		"1.1.1.5": "fail no \"install jffs2",
		"1.1.1.8": "fail no \"install udf",
	} {
		if r := byID[id]; !strings.HasPrefix(r.Status+" "+r.Evidence, want) {
			t.Errorf("%s: %s %q, want %q", id, r.Status, r.Evidence, want)
		}
	}
}

// TestSysctlPersisted: a running value that is right but set nowhere for
// the next boot fails, and a later file overrides an earlier one.
func TestSysctlPersisted(t *testing.T) {
	root := goodLinux(t)
	tree(t, root, map[string]string{
		"/etc/sysctl.d/99-late.conf": "# late\n-net/ipv4/tcp_syncookies=0\n",
		"/etc/sysctl.conf":           "kernel.randomize_va_space=1\n",
	})
	os.Remove(filepath.Join(root, "/etc/sysctl.d/60-cis.conf"))
	tree(t, root, map[string]string{"/etc/sysctl.d/60-cis.conf": "net.ipv4.tcp_syncookies = 1\nkernel.randomize_va_space = 2\n"})
	byID := map[string]Result{}
	for _, r := range runLinux(t, root).Results {
		byID[r.ID] = r
	}
	for id, want := range map[string]string{
		"3.3.10": "net.ipv4.tcp_syncookies = 1, persisted 0 (/etc/sysctl.d/99-late.conf:2)",
		"1.5.1":  "kernel.randomize_va_space = 2, persisted 1 (/etc/sysctl.conf:1)",
		"3.3.1":  "net.ipv4.ip_forward = 0, not persisted",
	} {
		if r := byID[id]; r.Status != Fail || !strings.Contains(r.Evidence, want) {
			t.Errorf("%s: %s %q, want fail with %q", id, r.Status, r.Evidence, want)
		}
	}
}

// TestLinuxFstabFallback: without /proc under the root, mount options
// come from /etc/fstab.
func TestLinuxFstabFallback(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{"/etc/fstab": "# fstab\nUUID=1 / ext4 defaults 0 1\ntmpfs /tmp tmpfs defaults,nodev,nosuid 0 0\n"})
	rep := runLinux(t, root)
	byID := map[string]Result{}
	for _, r := range rep.Results {
		byID[r.ID] = r
	}
	if r := byID["1.1.2.1.2"]; r.Status != Pass || !strings.Contains(r.Evidence, "/etc/fstab") {
		t.Errorf("1.1.2.1.2 = %s %q, want pass from /etc/fstab", r.Status, r.Evidence)
	}
	if r := byID["1.1.2.1.4"]; r.Status != Fail || !strings.Contains(r.Evidence, "no noexec") {
		t.Errorf("1.1.2.1.4 = %s %q, want fail (no noexec)", r.Status, r.Evidence)
	}
	if r := byID["1.1.2.2.1"]; r.Status != Fail || r.Evidence != "/dev/shm is not a separate mount in /etc/fstab" {
		t.Errorf("1.1.2.2.1 = %s %q, want fail (no /dev/shm)", r.Status, r.Evidence)
	}
	if r := byID["1.1.2.2.2"]; r.Status != Pass || !strings.Contains(r.Evidence, "not applicable") {
		t.Errorf("1.1.2.2.2 = %s %q, want pass (not applicable without the partition)", r.Status, r.Evidence)
	}
}

// TestLinuxEmptyRoot: nothing to read gives errors or fails naming what is
// missing, never a panic, and every result has a valid status.
func TestLinuxEmptyRoot(t *testing.T) {
	rep := runLinux(t, t.TempDir())
	for _, r := range rep.Results {
		if r.Status == Error && r.Error == "" {
			t.Errorf("%s: error without a reason", r.ID)
		}
	}
	if rep.Summary.Error == 0 {
		t.Error("an empty root gave no error results; unreadable inputs must be reported as such")
	}
}

// TestLinuxHost runs every Linux check on this machine: each yields a
// valid status with evidence or an error reason.
func TestLinuxHost(t *testing.T) {
	rep, err := Run(context.Background(), BenchLinux, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(Checks(BenchLinux)) {
		t.Fatalf("%d results for %d checks", len(rep.Results), len(Checks(BenchLinux)))
	}
	for _, r := range rep.Results {
		switch r.Status {
		case Pass, Fail, Warn, Manual:
			if r.Evidence == "" {
				t.Errorf("%s %s: no evidence", r.ID, r.Status)
			}
		case Error:
			if r.Error == "" {
				t.Errorf("%s: error without reason", r.ID)
			}
		default:
			t.Errorf("%s: invalid status %q", r.ID, r.Status)
		}
	}
	t.Logf("host: %+v", rep.Summary)
}

// TestRunSurvivesPanicsAndBadStatus: a check that panics or returns a
// status outside the contract becomes an Error result; the run goes on.
func TestRunSurvivesPanicsAndBadStatus(t *testing.T) {
	const b = "test-bench"
	Register(b,
		Check{ID: "1", Title: "panics", Run: func(context.Context, *Env) (string, string, error) { panic("boom") }},
		Check{ID: "2", Title: "bad status", Run: func(context.Context, *Env) (string, string, error) { return "maybe", "x", nil }},
		Check{ID: "3", Title: "errs", Run: func(context.Context, *Env) (string, string, error) { return "", "", errors.New("unreadable") }},
		Check{ID: "10", Title: "ok", Run: func(context.Context, *Env) (string, string, error) { return Pass, "fine", nil }},
	)
	rep, err := Run(context.Background(), b, Options{Root: t.TempDir(), Host: "h"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.ID+"="+r.Status+":"+r.Error)
	}
	want := []string{"1=error:check panicked: boom", "2=error:check returned an invalid status \"maybe\"", "3=error:unreadable", "10=pass:"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := Run(context.Background(), "no-such-bench", Options{}); err == nil {
		t.Error("an unknown benchmark gave no error")
	}
}

// TestRunnerInjected: on the live system 6.3.1.2 asks systemctl (and
// auditctl -s without systemd), and the audit rule checks compare the
// loaded rules (auditctl -l), all through the runner.
func TestRunnerInjected(t *testing.T) {
	root := goodLinux(t)
	check := func(id string) Check {
		for _, c := range Checks(BenchLinux) {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("no check %s", id)
		return Check{}
	}
	type reply struct {
		out string
		err error
	}
	cases := []struct {
		name, id string
		replies  map[string]reply
		status   string
		evidence string
	}{
		{"inactive", "6.3.1.2", map[string]reply{"systemctl is-active auditd": {"inactive\n", errors.New("exit status 3")}},
			Fail, "systemctl is-active: inactive"},
		{"active", "6.3.1.2", map[string]reply{"systemctl is-active auditd": {"active\n", nil}}, Pass, "systemctl is-active: active"},
		{"no systemd", "6.3.1.2", map[string]reply{
			"systemctl is-active auditd": {"", errors.New("exit status 1: System has not been booted with systemd")},
			"auditctl -s":                {"enabled 1\nfailure 1\npid 812\n", nil}}, Pass, "systemd unavailable; auditctl -s: pid 812"},
		{"not loaded", "6.3.3.8", map[string]reply{"auditctl -l": {"-w /etc/passwd -p wa -k identity\n-w /etc/group -p wa -k identity\n", nil}},
			Fail, "on disk but not loaded (auditctl -l): -w /etc/gshadow, -w /etc/shadow, -w /etc/security/opasswd"},
		{"loaded", "6.3.3.4", map[string]reply{"auditctl -l": {"-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change\n-w /etc/localtime -p wa -k time-change\n", nil}},
			Pass, "all loaded (auditctl -l)"},
		{"auditctl fails", "6.3.3.4", map[string]reply{}, Pass, "found: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var asked []string
			run := func(_ context.Context, name string, args ...string) ([]byte, error) {
				cmd := name + " " + strings.Join(args, " ")
				asked = append(asked, cmd)
				r, ok := tc.replies[cmd]
				if !ok {
					return nil, errors.New("unexpected command " + cmd)
				}
				return []byte(r.out), r.err
			}
			env := &Env{Root: root, Exec: run, live: true}
			st, ev, err := check(tc.id).Run(context.Background(), env)
			if err != nil || st != tc.status || !strings.Contains(ev, tc.evidence) {
				t.Errorf("%s = %s %q %v, want %s with %q (asked %q)", tc.id, st, ev, err, tc.status, tc.evidence, asked)
			}
		})
	}
}

func BenchmarkLinux(b *testing.B) {
	root := goodLinux(b)
	b.ReportAllocs()
	for b.Loop() {
		rep, err := Run(context.Background(), BenchLinux, Options{Root: root, Exec: noExec, Host: "fixture", Now: fixedNow})
		if err != nil || rep.Summary.Pass != len(rep.Results) {
			b.Fatalf("%v %+v", err, rep.Summary)
		}
	}
}

// TestResolveInRoot: symbolic links in a checked tree resolve inside it,
// absolute or relative, and ".." stops at the root.
func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	tree(t, root, map[string]string{
		"/proc/self/mounts":    "tmpfs /tmp tmpfs rw,nodev,nosuid,noexec 0 0\n",
		"/etc/mtab":            "->/proc/self/mounts",
		"/etc/ssh/real":        "PermitRootLogin no\n",
		"/etc/ssh/sshd_config": "->../../../../../../etc/ssh/real",
		"/loop/a":              "->/loop/b",
		"/loop/b":              "->/loop/a",
	})
	e := &Env{Root: root}
	for p, want := range map[string]string{"/etc/mtab": "tmpfs /tmp", "/etc/ssh/sshd_config": "PermitRootLogin no"} {
		b, err := e.ReadFile(p)
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("%s: %q %v, want the tree's file", p, b, err)
		}
	}
	if _, err := e.ReadFile("/loop/a"); err == nil {
		t.Error("a symlink loop was read")
	}
}
