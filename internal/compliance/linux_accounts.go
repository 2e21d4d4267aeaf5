package compliance

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

func init() { registerAccountFiles() }

// colonLine is one entry of passwd, group or shadow with its line number.
type colonLine struct {
	F    []string
	Line int
}

// colonFile reads a colon-separated account file under Root; lines with
// fewer than min fields are skipped.
func (e *Env) colonFile(p string, min int) ([]colonLine, error) {
	data, err := e.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	var out []colonLine
	for n, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < min {
			continue
		}
		out = append(out, colonLine{f, n + 1})
	}
	return out, nil
}

// duplicates returns "value (file:l1, file:l2)" for each value of field i
// seen more than once.
func duplicates(file string, lines []colonLine, i int) []string {
	seen := map[string][]int{}
	for _, l := range lines {
		seen[l.F[i]] = append(seen[l.F[i]], l.Line)
	}
	var out []string
	for v, ls := range seen {
		if len(ls) > 1 {
			var where []string
			for _, n := range ls {
				where = append(where, fmt.Sprintf("%s:%d", file, n))
			}
			out = append(out, v+" ("+strings.Join(where, ", ")+")")
		}
	}
	sort.Strings(out)
	return out
}

func registerAccountFiles() {
	const sec = "7.2 Local User and Group Settings"
	reg := func(id, title, how, rem string, f CheckFunc) {
		Register(BenchLinux, Check{ID: id, Title: title, Section: sec, Profile: l1, Scored: true, How: how, Remediation: rem, Run: f})
	}
	reg("7.2.1", "Ensure accounts in /etc/passwd use shadowed passwords", "every /etc/passwd password field is \"x\"",
		"pwconv (moves the passwords to /etc/shadow)",
		func(_ context.Context, e *Env) (string, string, error) {
			pw, err := e.colonFile("/etc/passwd", 7)
			if err != nil {
				return "", "", err
			}
			var bad []string
			for _, l := range pw {
				if l.F[1] != "x" {
					bad = append(bad, fmt.Sprintf("%s (/etc/passwd:%d)", l.F[0], l.Line))
				}
			}
			if len(bad) > 0 {
				return Fail, "not shadowed: " + strings.Join(bad, ", "), nil
			}
			return Pass, fmt.Sprintf("%d accounts, all shadowed (x)", len(pw)), nil
		})
	reg("7.2.3", "Ensure all groups in /etc/passwd exist in /etc/group", "each primary GID of /etc/passwd is a group in /etc/group",
		"Create the missing groups (groupadd -g GID) or change the accounts' primary group",
		func(_ context.Context, e *Env) (string, string, error) {
			pw, err := e.colonFile("/etc/passwd", 7)
			if err != nil {
				return "", "", err
			}
			gr, err := e.colonFile("/etc/group", 3)
			if err != nil {
				return "", "", err
			}
			gids := map[string]bool{}
			for _, g := range gr {
				gids[g.F[2]] = true
			}
			var bad []string
			for _, l := range pw {
				if !gids[l.F[3]] {
					bad = append(bad, fmt.Sprintf("%s GID %s (/etc/passwd:%d)", l.F[0], l.F[3], l.Line))
				}
			}
			if len(bad) > 0 {
				return Fail, "no such group: " + strings.Join(bad, ", "), nil
			}
			return Pass, fmt.Sprintf("%d accounts, every primary group in /etc/group", len(pw)), nil
		})
	reg("7.2.4", "Ensure shadow group is empty", "the shadow group has no members and is no account's primary group",
		"Remove all users from the shadow group (gpasswd -d USER shadow) and change any primary group shadow",
		func(_ context.Context, e *Env) (string, string, error) {
			gr, err := e.colonFile("/etc/group", 4)
			if err != nil {
				return "", "", err
			}
			gid := ""
			var ev []string
			for _, g := range gr {
				if g.F[0] == "shadow" {
					gid = g.F[2]
					if strings.TrimSpace(g.F[3]) != "" {
						ev = append(ev, fmt.Sprintf("shadow members %s (/etc/group:%d)", g.F[3], g.Line))
					}
				}
			}
			if gid == "" {
				return Pass, "no shadow group in /etc/group", nil
			}
			pw, err := e.colonFile("/etc/passwd", 7)
			if err != nil {
				return "", "", err
			}
			for _, l := range pw {
				if l.F[3] == gid {
					ev = append(ev, fmt.Sprintf("%s has primary group shadow (/etc/passwd:%d)", l.F[0], l.Line))
				}
			}
			if len(ev) > 0 {
				return Fail, strings.Join(ev, "; "), nil
			}
			return Pass, "shadow group (GID " + gid + ") has no members", nil
		})
	dup := func(id, title, file string, min, field int, what, rem string) {
		reg(id, title, "no two entries of "+file+" share a "+what, rem,
			func(_ context.Context, e *Env) (string, string, error) {
				ls, err := e.colonFile(file, min)
				if err != nil {
					return "", "", err
				}
				if d := duplicates(file, ls, field); len(d) > 0 {
					return Fail, "duplicate " + what + ": " + strings.Join(d, "; "), nil
				}
				return Pass, fmt.Sprintf("%d entries in %s, no duplicate %s", len(ls), file, what), nil
			})
	}
	dup("7.2.5", "Ensure no duplicate UIDs exist", "/etc/passwd", 7, 2, "UID", "Give each account its own UID (usermod -u) and fix file ownership")
	dup("7.2.6", "Ensure no duplicate GIDs exist", "/etc/group", 3, 2, "GID", "Give each group its own GID (groupmod -g) and fix file ownership")
	dup("7.2.7", "Ensure no duplicate user names exist", "/etc/passwd", 7, 0, "user name", "Rename or remove the duplicate accounts")
	dup("7.2.8", "Ensure no duplicate group names exist", "/etc/group", 3, 0, "group name", "Rename or remove the duplicate groups")
	Register(BenchLinux, Check{ID: "5.4.2.2", Title: "Ensure root is the only GID 0 account",
		Section: "5.4.2 Configure root and system accounts and environment", Profile: l1, Scored: true,
		How:         "accounts with primary GID 0 in /etc/passwd (sync, shutdown, halt and operator are allowed, as the benchmark says)",
		Remediation: "usermod -g 0 root; give the other accounts a different primary group (usermod -g GROUP USER)",
		Run: func(_ context.Context, e *Env) (string, string, error) {
			pw, err := e.colonFile("/etc/passwd", 7)
			if err != nil {
				return "", "", err
			}
			var zero []string
			rootOK := false
			for _, l := range pw {
				if l.F[3] != "0" {
					continue
				}
				switch l.F[0] {
				case "root":
					rootOK = true
				case "sync", "shutdown", "halt", "operator":
				default:
					zero = append(zero, fmt.Sprintf("%s (/etc/passwd:%d)", l.F[0], l.Line))
				}
			}
			if len(zero) > 0 {
				return Fail, "GID 0: " + strings.Join(zero, ", "), nil
			}
			if !rootOK {
				return Fail, "root's primary GID is not 0", nil
			}
			return Pass, "only root has primary GID 0", nil
		}})
}
