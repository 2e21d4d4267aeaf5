package compliance

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

func init() { registerSysctl() }

// sysctlWant is a kernel parameter and the values that pass.
type sysctlWant struct {
	Key  string
	Want []string
}

// sysctlCheck passes when every key has a wanted value. Keys under
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
			ev = append(ev, w.Key+" = "+v)
			if !contains(w.Want, v) {
				status = Fail
				ev[len(ev)-1] += " (want " + strings.Join(w.Want, " or ") + ")"
			}
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
			How:         "running values in /proc/sys: " + strings.Join(keys, ", "),
			Remediation: remedySysctl(c.wants)})
	}
}
