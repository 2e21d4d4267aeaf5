package compliance

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
)

func init() { registerSysctl() }

// sysctlWant is a kernel parameter and the values that pass.
type sysctlWant struct {
	Key  string
	Want []string
}

// sysctlConf is what the sysctl configuration files set at boot, in the
// order `sysctl --system` reads them (the last value wins).
func (e *Env) sysctlConf() map[string]setting {
	return e.memo("sysctlconf", func() any {
		out := map[string]setting{}
		// A file name in a later directory replaces the same name in an
		// earlier one; files apply in name order; /etc/sysctl.conf last.
		byName := map[string]string{}
		for _, dir := range []string{"/usr/lib/sysctl.d", "/lib/sysctl.d", "/run/sysctl.d", "/etc/sysctl.d"} {
			for _, f := range e.Glob(dir + "/*.conf") {
				byName[filepath.Base(f)] = f
			}
		}
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		files := make([]string, 0, len(names)+1)
		for _, n := range names {
			files = append(files, byName[n])
		}
		files = append(files, "/etc/sysctl.conf")
		for _, f := range files {
			data, err := e.ReadFile(f)
			if err != nil {
				continue
			}
			for n, line := range strings.Split(string(data), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || line[0] == '#' || line[0] == ';' {
					continue
				}
				k, v, ok := strings.Cut(line, "=")
				if !ok {
					continue
				}
				k = strings.ReplaceAll(strings.TrimPrefix(strings.TrimSpace(k), "-"), "/", ".")
				out[k] = setting{Value: strings.TrimSpace(v), File: f, Line: n + 1}
			}
		}
		return out
	}).(map[string]setting)
}

// sysctlCheck passes when every key has a wanted value, running (in
// /proc/sys) and persisted (in the sysctl configuration files). Keys under
// net.ipv6 are skipped when IPv6 is absent (/proc/sys/net/ipv6 missing).
func sysctlCheck(wants ...sysctlWant) CheckFunc {
	return func(_ context.Context, e *Env) (string, string, error) {
		status := Pass
		var ev []string
		for _, w := range wants {
			v, err := e.sysctl(w.Key)
			if errors.Is(err, errAbsent) {
				if strings.HasPrefix(w.Key, "net.ipv6.") {
					ev = append(ev, w.Key+" absent (IPv6 disabled)")
					continue
				}
				return "", "", fmt.Errorf("%s: /proc/sys/%s does not exist", w.Key, strings.ReplaceAll(w.Key, ".", "/"))
			}
			if err != nil {
				return "", "", fmt.Errorf("reading %s: %w", w.Key, err)
			}
			item := w.Key + " = " + v
			if !contains(w.Want, v) {
				status = Fail
				item += " (want " + strings.Join(w.Want, " or ") + ")"
			}
			switch p, ok := e.sysctlConf()[w.Key]; {
			case !ok:
				status = Fail
				item += ", not persisted in sysctl.conf or sysctl.d"
			case !contains(w.Want, p.Value):
				status = Fail
				item += fmt.Sprintf(", persisted %s (%s)", p.Value, p.where())
			}
			ev = append(ev, item)
		}
		return status, strings.Join(ev, "; "), nil
	}
}

func both(key string, want ...string) []sysctlWant {
	return []sysctlWant{
		{strings.Replace(key, "*", "all", 1), want},
		{strings.Replace(key, "*", "default", 1), want},
	}
}

func remedySysctl(ws []sysctlWant) string {
	var b strings.Builder
	b.WriteString("Set in /etc/sysctl.d/60-cis.conf and load with sysctl --system: ")
	for i, w := range ws {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(w.Key + " = " + w.Want[0])
	}
	return b.String()
}

func registerSysctl() {
	const netSec = "3.3 Configure Network Kernel Parameters"
	const procSec = "1.5 Configure Additional Process Hardening"
	checks := []struct {
		id, title, sec string
		wants          []sysctlWant
	}{
		{"1.5.1", "Ensure address space layout randomization is enabled", procSec,
			[]sysctlWant{{"kernel.randomize_va_space", []string{"2"}}}},
		{"1.5.3", "Ensure core dumps are restricted", procSec,
			[]sysctlWant{{"fs.suid_dumpable", []string{"0"}}}},
		{"3.3.1", "Ensure ip forwarding is disabled", netSec,
			[]sysctlWant{{"net.ipv4.ip_forward", []string{"0"}}, {"net.ipv6.conf.all.forwarding", []string{"0"}}}},
		{"3.3.2", "Ensure packet redirect sending is disabled", netSec, both("net.ipv4.conf.*.send_redirects", "0")},
		{"3.3.3", "Ensure bogus icmp responses are ignored", netSec,
			[]sysctlWant{{"net.ipv4.icmp_ignore_bogus_error_responses", []string{"1"}}}},
		{"3.3.4", "Ensure broadcast icmp requests are ignored", netSec,
			[]sysctlWant{{"net.ipv4.icmp_echo_ignore_broadcasts", []string{"1"}}}},
		{"3.3.5", "Ensure icmp redirects are not accepted", netSec,
			append(both("net.ipv4.conf.*.accept_redirects", "0"), both("net.ipv6.conf.*.accept_redirects", "0")...)},
		{"3.3.6", "Ensure secure icmp redirects are not accepted", netSec, both("net.ipv4.conf.*.secure_redirects", "0")},
		{"3.3.7", "Ensure reverse path filtering is enabled", netSec, both("net.ipv4.conf.*.rp_filter", "1")},
		{"3.3.8", "Ensure source routed packets are not accepted", netSec,
			append(both("net.ipv4.conf.*.accept_source_route", "0"), both("net.ipv6.conf.*.accept_source_route", "0")...)},
		{"3.3.9", "Ensure suspicious packets are logged", netSec, both("net.ipv4.conf.*.log_martians", "1")},
		{"3.3.10", "Ensure tcp syn cookies is enabled", netSec,
			[]sysctlWant{{"net.ipv4.tcp_syncookies", []string{"1"}}}},
		{"3.3.11", "Ensure ipv6 router advertisements are not accepted", netSec, both("net.ipv6.conf.*.accept_ra", "0")},
	}
	for _, c := range checks {
		keys := make([]string, len(c.wants))
		for i, w := range c.wants {
			keys[i] = w.Key
		}
		Register(BenchLinux, Check{ID: c.id, Title: c.title, Section: c.sec, Profile: l1, Scored: true,
			Run:         sysctlCheck(c.wants...),
			How:         "running values in /proc/sys and the values set at boot (sysctl.d, sysctl.conf): " + strings.Join(keys, ", "),
			Remediation: remedySysctl(c.wants)})
	}
}
