package fim

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Default locations.
const (
	DefaultDatabase   = "/var/lib/vigil/fim.db"
	DefaultKey        = "/etc/vigil/fim.key"
	DefaultConfigPath = "/etc/vigil/fim.yaml"
)

// Config is a parsed FIM configuration.
type Config struct {
	// Database is the baseline path ("" → DefaultDatabase).
	Database string
	// Key is the MAC key path ("" → DefaultKey).
	Key string
	// OneFilesystem keeps every walk on the filesystem of its watched root.
	OneFilesystem bool
	// Groups are the configuration's own named groups.
	Groups map[string]Attr
	// Rules are the watched paths, sorted by path.
	Rules []Rule
	// Excludes are the exclusions, in the order written.
	Excludes []Exclude
	// Source names where the configuration came from (file name).
	Source string

	// The excludes, compiled by finish: plain paths, globs, and regular
	// expressions rewritten by ancestorRE. (Kept apart, not joined into one
	// alternation: each then keeps its literal prefix, which regexp finds
	// with a fast substring search.)
	literal map[string]bool
	globs   []string
	res     []*regexp.Regexp
}

// Rule selects a watched path and what is recorded for it.
type Rule struct {
	// Name is the rule's name (its path unless the configuration names it).
	Name string
	// Path is the watched root: absolute and clean.
	Path string
	// Attrs are the attributes recorded and compared.
	Attrs Attr
	// Expr is the attribute expression as written.
	Expr string
	// Depth bounds recursion below Path: 0 is Path alone, 1 its direct
	// entries, ...; -1 is unlimited.
	Depth int
	// Line is the configuration line of the rule.
	Line int
}

// Exclude leaves paths out: a glob (path.Match syntax, matched against the
// whole path and each of its parents, so excluding a directory excludes
// what is under it) or, written "re:...", a regular expression matched
// against the whole path (unanchored unless the expression anchors it).
type Exclude struct {
	Pattern string
	Line    int
	re      *regexp.Regexp
}

func (x Exclude) match(p string) bool {
	if x.re != nil {
		return x.re.MatchString(p)
	}
	ok, _ := path.Match(x.Pattern, p)
	return ok
}

// ConfigError is a configuration error at a line.
type ConfigError struct {
	Source string
	Line   int
	Err    error
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.Source, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Source, e.Err)
}

func (e *ConfigError) Unwrap() error { return e.Err }

// LoadConfig reads and parses a configuration file (see ParseConfig).
func LoadConfig(file string) (*Config, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading fim config: %w", err)
	}
	return ParseConfig(b, file)
}

// ParseConfig parses a configuration. name is used in error messages and
// picks the syntax: a name ending in ".conf" is read as the AIDE subset
// (see parseAIDE); anything else as YAML:
//
//	database: /var/lib/vigil/fim.db
//	key: /etc/vigil/fim.key
//	one_filesystem: true
//	groups:
//	  MINE: p+u+g+sha256
//	watch:
//	  - path: /etc
//	    attrs: NORMAL-ctime      # or a list: [perm, uid, sha256]
//	  - path: /var/log
//	    attrs: ">"               # growing logs
//	    depth: 1                 # /var/log and its direct entries only
//	exclude:
//	  - /etc/mtab                # glob
//	  - "re:\\.swp$"             # regular expression
func ParseConfig(data []byte, name string) (*Config, error) {
	if strings.HasSuffix(name, ".conf") {
		return parseAIDE(data, name)
	}
	return parseYAML(data, name)
}

type yamlConfig struct {
	Database      string            `yaml:"database"`
	Key           string            `yaml:"key"`
	OneFilesystem bool              `yaml:"one_filesystem"`
	Groups        map[string]string `yaml:"groups"`
	Watch         []yamlRule        `yaml:"watch"`
	Exclude       []yaml.Node       `yaml:"exclude"`
}

type yamlRule struct {
	Name  string    `yaml:"name"`
	Path  string    `yaml:"path"`
	Attrs yaml.Node `yaml:"attrs"`
	Depth *int      `yaml:"depth"`
}

func parseYAML(data []byte, name string) (*Config, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &ConfigError{Source: name, Err: err}
	}
	var yc yamlConfig
	if len(doc.Content) > 0 {
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true) // a misspelt key is an error, not ignored
		if err := dec.Decode(&yc); err != nil {
			return nil, &ConfigError{Source: name, Err: err}
		}
	}
	c := &Config{Database: yc.Database, Key: yc.Key, OneFilesystem: yc.OneFilesystem, Groups: map[string]Attr{}, Source: name}
	groupLine := map[string]int{}
	if len(doc.Content) > 0 {
		root := doc.Content[0]
		for i := 0; i+1 < len(root.Content); i += 2 {
			if root.Content[i].Value == "groups" {
				g := root.Content[i+1]
				for j := 0; j+1 < len(g.Content); j += 2 {
					groupLine[g.Content[j].Value] = g.Content[j].Line
				}
			}
		}
	}
	// Groups may refer to groups defined before them (in file order).
	gnames := make([]string, 0, len(yc.Groups))
	for g := range yc.Groups {
		gnames = append(gnames, g)
	}
	sort.Slice(gnames, func(i, j int) bool { return groupLine[gnames[i]] < groupLine[gnames[j]] })
	for _, g := range gnames {
		if err := checkGroupName(g); err != nil {
			return nil, &ConfigError{Source: name, Line: groupLine[g], Err: err}
		}
		a, err := ParseAttrs(yc.Groups[g], c.Groups)
		if err != nil {
			return nil, &ConfigError{Source: name, Line: groupLine[g], Err: fmt.Errorf("group %s: %w", g, err)}
		}
		c.Groups[g] = a
	}
	for _, r := range yc.Watch {
		line := r.Attrs.Line
		expr, err := nodeExpr(&r.Attrs)
		if err != nil {
			return nil, &ConfigError{Source: name, Line: line, Err: err}
		}
		if expr == "" {
			return nil, &ConfigError{Source: name, Line: line, Err: fmt.Errorf("watch %q: attrs is required", r.Path)}
		}
		a, err := ParseAttrs(expr, c.Groups)
		if err != nil {
			return nil, &ConfigError{Source: name, Line: line, Err: fmt.Errorf("watch %q: %w", r.Path, err)}
		}
		depth := -1
		if r.Depth != nil {
			depth = *r.Depth
			if depth < 0 {
				return nil, &ConfigError{Source: name, Line: line, Err: fmt.Errorf("watch %q: depth %d is negative", r.Path, depth)}
			}
		}
		if err := c.addRule(Rule{Name: r.Name, Path: r.Path, Attrs: a, Expr: expr, Depth: depth, Line: line}); err != nil {
			return nil, err
		}
	}
	for _, n := range yc.Exclude {
		if n.Kind != yaml.ScalarNode {
			return nil, &ConfigError{Source: name, Line: n.Line, Err: errors.New("exclude entries are strings")}
		}
		if err := c.addExclude(n.Value, n.Line); err != nil {
			return nil, err
		}
	}
	c.finish()
	return c, nil
}

func nodeExpr(n *yaml.Node) (string, error) {
	switch n.Kind {
	case 0:
		return "", nil
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode || c.Value == "" {
				return "", errors.New("attrs list entries are attribute names")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, "+"), nil
	}
	return "", errors.New("attrs is an expression (NORMAL-ctime) or a list of names")
}

var groupNameRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

func checkGroupName(g string) error {
	if !groupNameRE.MatchString(g) {
		return fmt.Errorf("group name %q: letters, digits and _ only", g)
	}
	if _, ok := lookupAttr(g, nil); ok {
		if _, isGroup := DefaultGroups[g]; !isGroup {
			return fmt.Errorf("group name %q is an attribute name", g)
		}
	}
	return nil
}

func (c *Config) addRule(r Rule) error {
	if r.Path == "" || !filepath.IsAbs(r.Path) {
		return &ConfigError{Source: c.Source, Line: r.Line, Err: fmt.Errorf("watch path %q is not absolute", r.Path)}
	}
	r.Path = filepath.Clean(r.Path)
	if r.Name == "" {
		r.Name = r.Path
	}
	for _, o := range c.Rules {
		if o.Path == r.Path {
			return &ConfigError{Source: c.Source, Line: r.Line, Err: fmt.Errorf("path %s is already watched (line %d)", r.Path, o.Line)}
		}
	}
	c.Rules = append(c.Rules, r)
	return nil
}

func (c *Config) addExclude(pat string, line int) error {
	x := Exclude{Pattern: pat, Line: line}
	if re, ok := strings.CutPrefix(pat, "re:"); ok {
		r, err := regexp.Compile(re)
		if err != nil {
			return &ConfigError{Source: c.Source, Line: line, Err: fmt.Errorf("exclude %q: %w", pat, err)}
		}
		x.re = r
	} else {
		if pat == "" {
			return &ConfigError{Source: c.Source, Line: line, Err: errors.New("empty exclude")}
		}
		if _, err := path.Match(pat, ""); err != nil {
			return &ConfigError{Source: c.Source, Line: line, Err: fmt.Errorf("exclude %q: %w", pat, err)}
		}
	}
	c.Excludes = append(c.Excludes, x)
	return nil
}

func (c *Config) finish() {
	c.literal = map[string]bool{}
	c.globs, c.res = nil, nil
	for _, x := range c.Excludes {
		switch {
		case x.re != nil:
			a, err := ancestorRE(x.re.String())
			if err != nil { // x.re compiled, so this does not happen
				panic(fmt.Sprintf("fim: exclude %q: %v", x.Pattern, err))
			}
			c.res = append(c.res, regexp.MustCompile(a))
		case strings.ContainsAny(x.Pattern, `*?[\`):
			c.globs = append(c.globs, x.Pattern)
		default:
			c.literal[x.Pattern] = true
		}
	}
	sort.Slice(c.Rules, func(i, j int) bool { return c.Rules[i].Path < c.Rules[j].Path })
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.Key == "" {
		c.Key = DefaultKey
	}
}

// ruleFor is the most specific rule whose path is p or a parent of p,
// ignoring depth and excludes.
func (c *Config) ruleFor(p string) (int, bool) {
	best, found := -1, false
	for i := range c.Rules {
		rp := c.Rules[i].Path
		if p == rp || rp == "/" || (strings.HasPrefix(p, rp) && p[len(rp)] == '/') {
			if !found || len(rp) > len(c.Rules[best].Path) {
				best, found = i, true
			}
		}
	}
	return best, found
}

// excluded says whether p matches an exclude: p itself for plain paths
// and globs, p or any parent for regular expressions (see finish).
func (c *Config) excluded(p string) bool {
	return c.excludedPlain(p) || c.excludedRE(p)
}

func (c *Config) excludedRE(p string) bool {
	for _, re := range c.res {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}

func (c *Config) excludedPlain(p string) bool {
	if c.literal[p] {
		return true
	}
	for _, g := range c.globs {
		if ok, _ := path.Match(g, p); ok {
			return true
		}
	}
	return false
}

// ancestorRE rewrites a regular expression so that matching a path means
// the original matches the path or one of its parents: a parent is a
// prefix of the path that ends before a '/', so each end-of-text ($, \z)
// becomes "end of text or '/'". One match then replaces one per parent.
func ancestorRE(re string) (string, error) {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", err
	}
	var walk func(*syntax.Regexp) *syntax.Regexp
	walk = func(r *syntax.Regexp) *syntax.Regexp {
		if r.Op == syntax.OpEndText {
			return &syntax.Regexp{Op: syntax.OpAlternate, Sub: []*syntax.Regexp{
				{Op: syntax.OpLiteral, Rune: []rune{'/'}}, {Op: syntax.OpEndText},
			}}
		}
		for i, sub := range r.Sub {
			r.Sub[i] = walk(sub)
		}
		return r
	}
	return walk(t).String(), nil
}

// depthBelow is the number of path elements of p below root.
func depthBelow(root, p string) int {
	if p == root {
		return 0
	}
	rest := strings.TrimPrefix(p[len(root):], "/")
	return strings.Count(rest, "/") + 1
}

// Match returns the rule that selects p (an absolute path): the watched
// root that is p or its nearest parent, when p is within its depth and
// neither p nor any of its parents below the root is excluded. Excluded
// and unwatched paths return ok=false. Match is safe for concurrent use.
func (c *Config) Match(p string) (Rule, bool) {
	if p == "" || p[0] != '/' {
		return Rule{}, false
	}
	p = filepath.Clean(p)
	i, ok := c.ruleFor(p)
	if !ok {
		return Rule{}, false
	}
	r := c.Rules[i]
	if r.Depth >= 0 && depthBelow(r.Path, p) > r.Depth {
		return Rule{}, false
	}
	if c.excludedRE(p) {
		return Rule{}, false
	}
	for q := p; ; {
		if c.excludedPlain(q) {
			return Rule{}, false
		}
		if q == r.Path || q == "/" {
			break
		}
		q = filepath.Dir(q)
	}
	return r, true
}

// DefaultConfig watches system binaries, libraries and configuration with
// NORMAL, and /var/log as growing logs (depth 1), leaving out files that
// change in normal operation.
func DefaultConfig() *Config {
	c, err := ParseConfig([]byte(defaultYAML), "default")
	if err != nil {
		panic("fim: default config: " + err.Error())
	}
	return c
}

const defaultYAML = `
database: ` + DefaultDatabase + `
key: ` + DefaultKey + `
one_filesystem: true
watch:
  - {path: /etc, attrs: NORMAL}
  - {path: /boot, attrs: NORMAL}
  - {path: /usr/bin, attrs: NORMAL}
  - {path: /usr/sbin, attrs: NORMAL}
  - {path: /usr/lib, attrs: NORMAL}
  - {path: /usr/libexec, attrs: NORMAL}
  - {path: /usr/local/bin, attrs: NORMAL}
  - {path: /usr/local/sbin, attrs: NORMAL}
  - {path: /root, attrs: PERMS, depth: 1}
  - {path: /var/log, attrs: ">", depth: 1}
exclude:
  - /etc/mtab
  - /etc/adjtime
  - /etc/ld.so.cache
  - /etc/vigil/fim.key
  - "re:\\.(swp|swx)$"
  - "re:~$"
  - /var/log/journal
  - /usr/lib/python3*/__pycache__
  - "re:/__pycache__(/|$)"
`

// parseAIDE reads the subset of aide.conf(5) that maps onto this model:
//
//   - comments (#) and blank lines;
//   - database_in / database_out / database (file: URLs): Database;
//   - group definitions NAME = expression;
//   - selection lines "/path expression": Path is a plain path (the AIDE
//     regular expression ^/path, which also selects everything below);
//     "/path$" or "=/path" selects the path alone (depth 0);
//   - negative lines "!regex": an exclude with the AIDE regular expression
//     anchored at the start (^regex).
//
// Anything else — @@ macros, @@include, restricted rules (f, d, ...),
// regular expressions in selection lines, other options — is an error
// naming the line, so a configuration is never half understood.
func parseAIDE(data []byte, name string) (*Config, error) {
	c := &Config{Groups: map[string]Attr{}, Source: name}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		s := strings.TrimSpace(sc.Text())
		if s == "" || s[0] == '#' {
			continue
		}
		fail := func(format string, args ...any) error {
			return &ConfigError{Source: name, Line: line, Err: fmt.Errorf(format, args...)}
		}
		switch {
		case s[0] == '@':
			return nil, fail("AIDE macro %q is not supported", s)
		case s[0] == '!':
			re := s[1:]
			if re == "" {
				return nil, fail("empty negative rule")
			}
			if err := c.addExclude("re:^"+re, line); err != nil {
				return nil, err
			}
		case s[0] == '/' || s[0] == '=':
			fields := strings.Fields(s)
			if len(fields) != 2 {
				return nil, fail("selection line %q: want \"/path attributes\" (restricted rules are not supported)", s)
			}
			p, depth := fields[0], -1
			if strings.HasPrefix(p, "=") {
				p, depth = p[1:], 0
			}
			if strings.HasSuffix(p, "$") {
				p, depth = strings.TrimSuffix(p, "$"), 0
			}
			if strings.ContainsAny(p, `^$()[]{}*+?|\`) {
				return nil, fail("selection path %q: regular expressions are not supported, only plain paths", fields[0])
			}
			a, err := ParseAttrs(fields[1], c.Groups)
			if err != nil {
				return nil, fail("%w", err)
			}
			if err := c.addRule(Rule{Path: p, Attrs: a, Expr: fields[1], Depth: depth, Line: line}); err != nil {
				return nil, err
			}
		default:
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				return nil, fail("cannot parse %q", s)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			switch k {
			case "database_in", "database", "database_out":
				f, ok := strings.CutPrefix(v, "file:")
				if !ok {
					return nil, fail("%s: only file: URLs are supported", k)
				}
				if k != "database_out" || c.Database == "" {
					c.Database = f
				}
			case "database_new", "gzip_dbout", "report_url", "report_format", "report_level", "verbose", "log_level",
				"report_base16", "report_quiet", "warn_dead_symlinks", "summarize_changes", "grouped", "config_version":
				// Output options of AIDE: no meaning here.
			default:
				if err := checkGroupName(k); err != nil {
					return nil, fail("unknown option or bad group name %q", k)
				}
				a, err := ParseAttrs(v, c.Groups)
				if err != nil {
					return nil, fail("group %s: %w", k, err)
				}
				c.Groups[k] = a
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, &ConfigError{Source: name, Line: line, Err: err}
	}
	c.finish()
	return c, nil
}
