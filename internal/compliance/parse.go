package compliance

import (
	"bufio"
	"bytes"
	"fmt"
	"path"
	"strings"
)

// setting is one configuration value and where it was seen.
type setting struct {
	Value string
	File  string
	Line  int
}

func (s setting) where() string { return fmt.Sprintf("%s:%d", s.File, s.Line) }

// sshdConfig is the global part of an sshd configuration: the first value
// of each keyword (sshd uses the first one it reads), keys lower-cased.
type sshdConfig struct {
	Values map[string]setting
	// Files are the files read, in order.
	Files []string
	// Problems are Include patterns or files that could not be read.
	Problems []string
}

// maxIncludeDepth bounds nested Include directives (sshd allows 16).
const maxIncludeDepth = 16

// maxIncludeFiles bounds the files one configuration may read.
const maxIncludeFiles = 256

// parseSSHD reads name (and what it includes) through read; glob expands
// Include patterns. Lines after the first Match block are conditional and
// not part of the global configuration: they are skipped, as `sshd -T`
// without -C does.
func parseSSHD(name string, read func(string) ([]byte, error), glob func(string) []string) *sshdConfig {
	c := &sshdConfig{Values: map[string]setting{}}
	var inMatch bool
	open := map[string]bool{} // files being read: an Include of one is a loop
	reads := 0
	var do func(file string, depth int)
	do = func(file string, depth int) {
		switch {
		case depth > maxIncludeDepth:
			c.Problems = append(c.Problems, file+": Include nested too deeply")
			return
		case open[file]:
			c.Problems = append(c.Problems, file+": Include loop")
			return
		case reads >= maxIncludeFiles:
			c.Problems = append(c.Problems, file+": more than "+fmt.Sprint(maxIncludeFiles)+" files included")
			return
		}
		reads++
		open[file] = true
		defer delete(open, file)
		data, err := read(file)
		if err != nil {
			c.Problems = append(c.Problems, err.Error())
			return
		}
		c.Files = append(c.Files, file)
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		n := 0
		for sc.Scan() {
			n++
			key, val, ok := sshdLine(sc.Text())
			if !ok {
				continue
			}
			switch key {
			case "match":
				inMatch = true
				continue
			case "include":
				for _, pat := range strings.Fields(val) {
					if !strings.HasPrefix(pat, "/") {
						pat = "/etc/ssh/" + pat
					}
					for _, f := range glob(pat) {
						do(f, depth+1)
					}
				}
				continue
			}
			if inMatch {
				continue
			}
			if _, seen := c.Values[key]; !seen {
				c.Values[key] = setting{Value: val, File: file, Line: n}
			}
		}
		if err := sc.Err(); err != nil {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: %v", file, err))
		}
	}
	do(name, 0)
	return c
}

// sshdLine splits "Keyword value" or "Keyword=value"; comments and blank
// lines give ok=false.
func sshdLine(line string) (key, val string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", "", false
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), "", true
	}
	key = strings.ToLower(line[:i])
	if key == "" {
		return "", "", false
	}
	val = strings.TrimSpace(line[i:])
	val = strings.TrimSpace(strings.TrimPrefix(val, "="))
	val = strings.Trim(val, `"`)
	return key, val, true
}

// modprobeConf is what modprobe.d files say about modules (names with '-'
// replaced by '_', as modprobe treats them).
type modprobeConf struct {
	Install   map[string]setting
	Blacklist map[string]setting
}

func modName(s string) string { return strings.ReplaceAll(s, "-", "_") }

// parseModprobe adds the install and blacklist lines of one file.
func (m *modprobeConf) parse(data []byte, file string) {
	if m.Install == nil {
		m.Install, m.Blacklist = map[string]setting{}, map[string]setting{}
	}
	for n, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		mod := modName(f[1])
		switch f[0] {
		case "install":
			if _, ok := m.Install[mod]; !ok {
				m.Install[mod] = setting{Value: strings.Join(f[2:], " "), File: file, Line: n + 1}
			}
		case "blacklist":
			if _, ok := m.Blacklist[mod]; !ok {
				m.Blacklist[mod] = setting{Value: "blacklist", File: file, Line: n + 1}
			}
		}
	}
}

// mountEntry is a line of /proc/self/mounts or /etc/fstab.
type mountEntry struct {
	Device, Dir, Type string
	Options           []string
}

func (m mountEntry) has(opt string) bool {
	for _, o := range m.Options {
		if o == opt {
			return true
		}
	}
	return false
}

// parseMounts parses the mounts/fstab format; octal escapes (\040) in
// paths are decoded. Malformed lines are skipped.
func parseMounts(data []byte) []mountEntry {
	var out []mountEntry
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		out = append(out, mountEntry{Device: unoctal(f[0]), Dir: path.Clean(unoctal(f[1])), Type: f[2],
			Options: strings.Split(f[3], ",")})
	}
	return out
}

func unoctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOct(c byte) bool { return c >= '0' && c <= '7' }

// parseDpkgStatus returns each package's Status field ("install ok
// installed") from /var/lib/dpkg/status.
func parseDpkgStatus(data []byte) map[string]string {
	out := map[string]string{}
	var pkg, status string
	flush := func() {
		if pkg != "" {
			out[pkg] = status
		}
		pkg, status = "", ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case strings.HasPrefix(line, "Package:"):
			pkg = strings.TrimSpace(line[len("Package:"):])
		case strings.HasPrefix(line, "Status:"):
			status = strings.TrimSpace(line[len("Status:"):])
		}
	}
	flush()
	return out
}

// parseKeyValues reads "KEY value" lines (login.defs); the last value
// wins, as in shadow's getdef.
func parseKeyValues(data []byte, file string) map[string]setting {
	out := map[string]setting{}
	for n, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || strings.HasPrefix(f[0], "#") {
			continue
		}
		out[f[0]] = setting{Value: f[1], File: file, Line: n + 1}
	}
	return out
}
