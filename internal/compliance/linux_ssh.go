package compliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

func init() { registerSSH() }

const sshdConfigPath = "/etc/ssh/sshd_config"

// errNoSSHD marks a host without an sshd configuration: the SSH checks
// pass (the benchmark applies them only where sshd is installed).
var errNoSSHD = errors.New("no " + sshdConfigPath)

// sshd parses the sshd configuration under Root, with its Include files.
func (e *Env) sshd() (*sshdConfig, error) {
	type res struct {
		c   *sshdConfig
		err error
	}
	r := e.memo("sshd", func() any {
		if _, err := e.Stat(sshdConfigPath); errors.Is(err, os.ErrNotExist) {
			return res{err: errNoSSHD}
		}
		c := parseSSHD(sshdConfigPath, e.ReadFile, e.Glob)
		if len(c.Files) == 0 {
			return res{err: fmt.Errorf("reading sshd configuration: %s", strings.Join(c.Problems, "; "))}
		}
		return res{c: c}
	}).(res)
	return r.c, r.err
}

// sshOpt is the effective global value of a keyword with its origin, or
// its compiled-in default.
func sshOpt(c *sshdConfig, key, def string) (val, ev string) {
	if s, ok := c.Values[strings.ToLower(key)]; ok {
		return s.Value, fmt.Sprintf("%s %s (%s)", key, s.Value, s.where())
	}
	if def == "" {
		return "", key + " not set"
	}
	return def, fmt.Sprintf("%s not set (default %s)", key, def)
}

// sshCheck runs f on the parsed configuration; hosts without sshd pass.
func sshCheck(f func(c *sshdConfig) (string, string)) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		c, err := e.sshd()
		if errors.Is(err, errNoSSHD) {
			return Pass, "sshd not installed (" + sshdConfigPath + " does not exist)", nil
		}
		if err != nil {
			return "", "", err
		}
		st, ev := f(c)
		if len(c.Problems) > 0 {
			ev += " [unreadable: " + strings.Join(c.Problems, "; ") + "]"
		}
		return st, ev, nil
	}
}

// sshIs passes when key (default def) has one of the wanted values.
func sshIs(key, def string, want ...string) CheckFunc {
	return sshCheck(func(c *sshdConfig) (string, string) {
		v, ev := sshOpt(c, key, def)
		for _, w := range want {
			if strings.EqualFold(v, w) {
				return Pass, ev
			}
		}
		return Fail, ev + " (want " + strings.Join(want, " or ") + ")"
	})
}

// sshRange passes when key's number is in [lo, hi].
func sshRange(key, def string, lo, hi int) CheckFunc {
	return sshCheck(func(c *sshdConfig) (string, string) {
		v, ev := sshOpt(c, key, def)
		n, err := strconv.Atoi(strings.TrimSuffix(v, "s"))
		if err != nil {
			return Fail, ev + " (not a number of seconds/tries)"
		}
		if n < lo || n > hi {
			return Fail, fmt.Sprintf("%s (want %d-%d)", ev, lo, hi)
		}
		return Pass, ev
	})
}

func registerSSH() {
	const sec = "5.1 Configure SSH Server"
	reg := func(id, title, how, rem string, f CheckFunc) {
		Register(BenchLinux, Check{ID: id, Title: title, Section: sec, Profile: l1, Scored: true, How: how, Remediation: rem, Run: f})
	}
	set := func(kv string) string {
		return "Set \"" + kv + "\" in " + sshdConfigPath + " above any Include and Match block, then: systemctl reload ssh"
	}
	reg("5.1.1", "Ensure permissions on /etc/ssh/sshd_config are configured",
		"stat of sshd_config and every file it includes: mode 0600 or stricter, root:root",
		"chown root:root /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf; chmod u-x,og-rwx on them",
		func(_ context.Context, e *Env) (string, string, error) {
			c, err := e.sshd()
			if errors.Is(err, errNoSSHD) {
				return Pass, "sshd not installed", nil
			}
			if err != nil {
				return "", "", err
			}
			var specs []permSpec
			for _, f := range c.Files {
				specs = append(specs, permSpec{Path: f, Max: 0o600, Users: []string{"root"}, Groups: []string{"root"}})
			}
			return e.permChecks(specs...)
		})
	reg("5.1.2", "Ensure permissions on SSH private host key files are configured",
		"stat of /etc/ssh/ssh_host_*_key: mode 0600 or stricter (0640 with group ssh_keys), owner root",
		"chown root:root /etc/ssh/ssh_host_*_key; chmod 0600 /etc/ssh/ssh_host_*_key",
		hostKeys("/etc/ssh/ssh_host_*_key", 0o600))
	reg("5.1.3", "Ensure permissions on SSH public host key files are configured",
		"stat of /etc/ssh/ssh_host_*_key.pub: mode 0644 or stricter, root:root",
		"chown root:root /etc/ssh/ssh_host_*_key.pub; chmod 0644 /etc/ssh/ssh_host_*_key.pub",
		hostKeys("/etc/ssh/ssh_host_*_key.pub", 0o644))
	reg("5.1.4", "Ensure sshd access is configured", "one of AllowUsers, AllowGroups, DenyUsers, DenyGroups is set",
		set("AllowGroups sshusers")+" (or AllowUsers/DenyUsers/DenyGroups)", sshCheck(func(c *sshdConfig) (string, string) {
			var ev []string
			for _, k := range []string{"AllowUsers", "AllowGroups", "DenyUsers", "DenyGroups"} {
				if _, ok := c.Values[strings.ToLower(k)]; ok {
					_, e := sshOpt(c, k, "")
					ev = append(ev, e)
				}
			}
			if len(ev) == 0 {
				return Fail, "none of AllowUsers, AllowGroups, DenyUsers, DenyGroups is set"
			}
			return Pass, strings.Join(ev, "; ")
		}))
	reg("5.1.6", "Ensure sshd Ciphers are configured", "Ciphers (if set) adds none of "+strings.Join(weakCiphers, ", ")+"; OpenSSH 9.2's default has none",
		set("Ciphers aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"), sshAlgos("Ciphers", weakCiphers))
	reg("5.1.12", "Ensure sshd KexAlgorithms is configured", "KexAlgorithms (if set) adds none of "+strings.Join(weakKex, ", "),
		set("KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256"),
		sshAlgos("KexAlgorithms", weakKex))
	reg("5.1.15", "Ensure sshd MACs are configured", "MACs (if set) adds none of "+strings.Join(weakMACs, ", "),
		set("MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"), sshAlgos("MACs", weakMACs))
	reg("5.1.18", "Ensure sshd MaxStartups is configured", "MaxStartups start:rate:full with start 10 or less and full 60 or less (default 10:30:100 fails)",
		set("MaxStartups 10:30:60"), sshCheck(func(c *sshdConfig) (string, string) {
			v, ev := sshOpt(c, "MaxStartups", "10:30:100")
			f := strings.Split(v, ":")
			start, err1 := strconv.Atoi(f[0])
			full := start
			var err2 error
			if len(f) == 3 {
				full, err2 = strconv.Atoi(f[2])
			}
			if err1 != nil || err2 != nil || (len(f) != 1 && len(f) != 3) {
				return Fail, ev + " (not start or start:rate:full)"
			}
			if start > 10 || full > 60 {
				return Fail, ev + " (want 10:30:60 or stricter)"
			}
			return Pass, ev
		}))
	reg("5.1.5", "Ensure sshd Banner is configured", "Banner set to a file (not none)",
		set("Banner /etc/issue.net"), sshCheck(func(c *sshdConfig) (string, string) {
			v, ev := sshOpt(c, "Banner", "none")
			if v == "" || strings.EqualFold(v, "none") {
				return Fail, ev
			}
			return Pass, ev
		}))
	reg("5.1.7", "Ensure sshd ClientAliveInterval and ClientAliveCountMax are configured",
		"ClientAliveInterval > 0 and ClientAliveCountMax > 0", set("ClientAliveInterval 15")+" and ClientAliveCountMax 3",
		sshCheck(func(c *sshdConfig) (string, string) {
			iv, ev1 := sshOpt(c, "ClientAliveInterval", "0")
			cm, ev2 := sshOpt(c, "ClientAliveCountMax", "3")
			ev := ev1 + "; " + ev2
			i, err1 := strconv.Atoi(strings.TrimSuffix(iv, "s"))
			n, err2 := strconv.Atoi(cm)
			if err1 != nil || err2 != nil || i <= 0 || n <= 0 {
				return Fail, ev
			}
			return Pass, ev
		}))
	reg("5.1.8", "Ensure sshd DisableForwarding is enabled", "DisableForwarding yes (X11Forwarding and AllowTcpForwarding shown)",
		set("DisableForwarding yes"), sshCheck(func(c *sshdConfig) (string, string) {
			v, ev := sshOpt(c, "DisableForwarding", "no")
			_, x := sshOpt(c, "X11Forwarding", "no")
			_, t := sshOpt(c, "AllowTcpForwarding", "yes")
			ev += "; " + x + "; " + t
			if strings.EqualFold(v, "yes") {
				return Pass, ev
			}
			return Fail, ev
		}))
	reg("5.1.9", "Ensure sshd GSSAPIAuthentication is disabled", "GSSAPIAuthentication no (default no)",
		set("GSSAPIAuthentication no"), sshIs("GSSAPIAuthentication", "no", "no"))
	reg("5.1.10", "Ensure sshd HostbasedAuthentication is disabled", "HostbasedAuthentication no (default no)",
		set("HostbasedAuthentication no"), sshIs("HostbasedAuthentication", "no", "no"))
	reg("5.1.11", "Ensure sshd IgnoreRhosts is enabled", "IgnoreRhosts yes (default yes)",
		set("IgnoreRhosts yes"), sshIs("IgnoreRhosts", "yes", "yes"))
	reg("5.1.13", "Ensure sshd LoginGraceTime is configured", "LoginGraceTime between 1 and 60 seconds (default 120)",
		set("LoginGraceTime 60"), sshRange("LoginGraceTime", "120", 1, 60))
	reg("5.1.14", "Ensure sshd LogLevel is configured", "LogLevel INFO or VERBOSE (default INFO)",
		set("LogLevel VERBOSE"), sshIs("LogLevel", "INFO", "INFO", "VERBOSE"))
	reg("5.1.16", "Ensure sshd MaxAuthTries is configured", "MaxAuthTries 4 or less (default 6)",
		set("MaxAuthTries 4"), sshRange("MaxAuthTries", "6", 1, 4))
	reg("5.1.17", "Ensure sshd MaxSessions is configured", "MaxSessions 10 or less (default 10)",
		set("MaxSessions 10"), sshRange("MaxSessions", "10", 1, 10))
	reg("5.1.19", "Ensure sshd PermitEmptyPasswords is disabled", "PermitEmptyPasswords no (default no)",
		set("PermitEmptyPasswords no"), sshIs("PermitEmptyPasswords", "no", "no"))
	reg("5.1.20", "Ensure sshd PermitRootLogin is disabled", "PermitRootLogin no (default prohibit-password fails)",
		set("PermitRootLogin no"), sshIs("PermitRootLogin", "prohibit-password", "no"))
	reg("5.1.21", "Ensure sshd PermitUserEnvironment is disabled", "PermitUserEnvironment no (default no)",
		set("PermitUserEnvironment no"), sshIs("PermitUserEnvironment", "no", "no"))
	reg("5.1.22", "Ensure sshd UsePAM is enabled", "UsePAM yes (compiled-in default no)",
		set("UsePAM yes"), sshIs("UsePAM", "no", "yes"))
}

// Weak algorithms (CIS Debian 12 5.1.6, 5.1.12, 5.1.15).
var (
	weakCiphers = []string{"3des-cbc", "aes128-cbc", "aes192-cbc", "aes256-cbc", "arcfour", "arcfour128", "arcfour256",
		"blowfish-cbc", "cast128-cbc", "rijndael-cbc@lysator.liu.se"}
	weakKex  = []string{"diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1"}
	weakMACs = []string{"hmac-md5", "hmac-md5-96", "hmac-ripemd160", "hmac-sha1-96", "umac-64@openssh.com",
		"hmac-md5-etm@openssh.com", "hmac-md5-96-etm@openssh.com", "hmac-ripemd160-etm@openssh.com",
		"hmac-sha1-96-etm@openssh.com", "umac-64-etm@openssh.com"}
)

// sshAlgos fails when key's list adds a weak algorithm. A list starting
// with "-" only removes from the default; "+" and "^" add to it.
func sshAlgos(key string, weak []string) CheckFunc {
	return sshCheck(func(c *sshdConfig) (string, string) {
		v, ev := sshOpt(c, key, "")
		if v == "" {
			return Pass, ev + " (the default list has no weak algorithm)"
		}
		if strings.HasPrefix(v, "-") {
			return Pass, ev
		}
		var bad []string
		for _, a := range strings.Split(strings.TrimLeft(v, "+^"), ",") {
			if contains(weak, strings.ToLower(strings.TrimSpace(a))) {
				bad = append(bad, a)
			}
		}
		if len(bad) > 0 {
			return Fail, ev + " (weak: " + strings.Join(bad, ", ") + ")"
		}
		return Pass, ev
	})
}

func hostKeys(pattern string, max os.FileMode) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		keys := e.Glob(pattern)
		if len(keys) == 0 {
			return Pass, "no files match " + pattern, nil
		}
		var specs []permSpec
		for _, k := range keys {
			specs = append(specs, permSpec{Path: k, Max: max, Users: []string{"root"}, Groups: []string{"root", "ssh_keys", "_ssh"}})
		}
		return e.permChecks(specs...)
	}
}
