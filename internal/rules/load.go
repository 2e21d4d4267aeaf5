package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// File is one rules file's content; Name is used in errors ("file:line").
type File struct {
	Name string
	Data []byte
}

// LoadError is a rules file that cannot be loaded: its file, line and,
// where there is one, the rule it concerns.
type LoadError struct {
	File string
	Line int
	Rule string
	Err  error
}

func (e *LoadError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc += ":" + strconv.Itoa(e.Line)
	}
	if e.Rule != "" {
		return fmt.Sprintf("%s: rule %q: %v", loc, e.Rule, e.Err)
	}
	return fmt.Sprintf("%s: %v", loc, e.Err)
}

func (e *LoadError) Unwrap() error { return e.Err }

// EngineVersion is the Falco engine version whose rules files Vigil
// claims to load.
const EngineVersion = "0.57.0"

var engineVersion = [3]int{0, 57, 0}

// part is a piece of a condition with where it came from: appends add
// parts, the condition is their concatenation.
type part struct {
	text, file string
	line       int
	// lines maps offsets in text to source lines and columns, for
	// conditions spread over several lines; empty: all on line, from
	// column col.
	lines []lineStart
	col   int
}

// lineStart says that text from off on is on line, starting at col.
type lineStart struct{ off, line, col int }

// where gives the file, line and column of offset off in joinParts(ps).
func where(ps []part, off int) (file string, line, col int) {
	for i, p := range ps {
		if off > len(p.text) && i < len(ps)-1 {
			off -= len(p.text) + 1
			continue
		}
		line, col = p.line, p.col+off
		for _, ls := range p.lines {
			if ls.off <= off {
				line, col = ls.line, ls.col+off-ls.off
			}
		}
		return p.file, line, col
	}
	return "", 0, 0
}

// condPart makes the part for a condition scalar, mapping its text back
// to source lines where it spans several (plain, folded or literal
// style; a best effort that only affects error positions).
func condPart(file string, src []string, n *yaml.Node, text string) part {
	p := part{text: text, file: file, line: n.Line, col: n.Column}
	if n.Kind != yaml.ScalarNode || n.Line < 1 || n.Line > len(src) {
		return p
	}
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		off, indent := 0, -1
		for i := n.Line; i < len(src) && off < len(text); i++ {
			line := src[i]
			trimmed := strings.TrimLeft(line, " ")
			if trimmed == "" {
				continue
			}
			ind := len(line) - len(trimmed)
			if indent < 0 {
				indent = ind
			}
			if ind < indent {
				break
			}
			p.lines = append(p.lines, lineStart{off, i + 1, indent + 1})
			off += len(line) - indent + 1
		}
		if len(p.lines) > 0 {
			p.line, p.col = p.lines[0].line, p.lines[0].col
		}
	case 0:
		if !strings.Contains(text, " ") || n.Column < 1 {
			return p
		}
		first := src[n.Line-1]
		if n.Column-1 > len(first) {
			return p
		}
		off := len(strings.TrimRight(first[n.Column-1:], " ")) + 1
		for i := n.Line; i < len(src) && off < len(text); i++ {
			trimmed := strings.TrimLeft(src[i], " ")
			if trimmed == "" {
				break
			}
			col := len(src[i]) - len(trimmed) + 1
			p.lines = append(p.lines, lineStart{off, i + 1, col})
			off += len(strings.TrimRight(trimmed, " ")) + 1
		}
	}
	return p
}

func joinParts(ps []part) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(p.text)
	}
	return b.String()
}

type listDef struct {
	name, file string
	line       int
	items      []string
	used       bool
}

type macroDef struct {
	name, file string
	line       int
	cond       []part
	used       bool
}

type ruleDef struct {
	name, file   string
	line         int
	desc, output string
	source       string
	priority     Priority
	tags         []string
	enabled      bool
	cond         []part
	exceptions   []*exceptionDef
}

// exceptionDef is one entry of a rule's exceptions.
type exceptionDef struct {
	name, file string
	line       int
	fields     []string
	single     bool // fields was one field, not a list
	comps      []string
	values     []*yaml.Node
}

// ordered is a name-indexed list that keeps definition order; a
// redefinition replaces the old one in place.
type ordered[T any] struct {
	items []*T
	index map[string]int
}

func (o *ordered[T]) get(name string) (*T, bool) {
	i, ok := o.index[name]
	if !ok {
		return nil, false
	}
	return o.items[i], true
}

func (o *ordered[T]) put(name string, v *T) {
	if o.index == nil {
		o.index = map[string]int{}
	}
	if i, ok := o.index[name]; ok {
		o.items[i] = v
		return
	}
	o.index[name] = len(o.items)
	o.items = append(o.items, v)
}

type loader struct {
	src      []string // the lines of the file being read
	lists    ordered[listDef]
	macros   ordered[macroDef]
	rules    ordered[ruleDef]
	warnings []string
}

// Load reads rules files in order; later files add to and override
// earlier ones as in Falco. A rule needing a field or source Vigil cannot
// supply is skipped and reported in Statuses; anything Falco would refuse
// is a *LoadError.
func Load(files ...File) (*Ruleset, error) {
	l := &loader{}
	for _, f := range files {
		if err := l.file(f); err != nil {
			return nil, err
		}
	}
	return l.build()
}

var yamlLineRE = regexp.MustCompile(`line (\d+)`)

func (l *loader) file(f File) error {
	var root yaml.Node
	if err := yaml.Unmarshal(f.Data, &root); err != nil {
		line := 0
		if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		return &LoadError{File: f.Name, Line: line, Err: fmt.Errorf("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind == yaml.ScalarNode && doc.Tag == "!!null" {
		return nil
	}
	if doc.Kind != yaml.SequenceNode {
		return &LoadError{File: f.Name, Line: doc.Line, Err: errors.New("a rules file must be a YAML list of items (rule, macro, list, …)")}
	}
	l.src = strings.Split(string(f.Data), "\n")
	for _, item := range doc.Content {
		if err := l.item(f.Name, item); err != nil {
			return err
		}
	}
	return nil
}

// mapping is a YAML mapping's keys.
type mapping struct {
	keys  map[string]*yaml.Node
	order []string
}

func toMapping(n *yaml.Node) (*mapping, error) {
	if n.Kind != yaml.MappingNode {
		return nil, errors.New("each item must be a mapping such as '- rule: …'")
	}
	m := &mapping{keys: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if _, dup := m.keys[k]; dup {
			return nil, fmt.Errorf("key %q given twice", k)
		}
		m.keys[k] = n.Content[i+1]
		m.order = append(m.order, k)
	}
	return m, nil
}

func (m *mapping) has(k string) bool { _, ok := m.keys[k]; return ok }

func scalar(n *yaml.Node, what string) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s must be a string", what)
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func strList(n *yaml.Node, what string) ([]string, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("%s must be a list", what)
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return nil, fmt.Errorf("%s: line %d: items must be strings", what, c.Line)
		}
		out = append(out, c.Value)
	}
	return out, nil
}

func yamlBool(n *yaml.Node, what string) (bool, error) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Decode(&b) != nil {
		return false, fmt.Errorf("%s must be true or false", what)
	}
	return b, nil
}

func (l *loader) item(file string, n *yaml.Node) error {
	m, err := toMapping(n)
	if err != nil {
		return &LoadError{File: file, Line: n.Line, Err: err}
	}
	switch {
	case m.has("rule"):
		return l.rule(file, n, m)
	case m.has("macro"):
		return l.macro(file, n, m)
	case m.has("list"):
		return l.list(file, n, m)
	case m.has("required_engine_version"):
		return l.engine(file, m.keys["required_engine_version"])
	case m.has("required_plugin_versions"):
		// Vigil fills container.* and k8s.* itself; no plugin is loaded.
		return nil
	}
	key := ""
	if len(m.order) > 0 {
		key = m.order[0]
	}
	l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: unknown item %q ignored", file, n.Line, key))
	return nil
}

func (l *loader) engine(file string, n *yaml.Node) error {
	s, err := scalar(n, "required_engine_version")
	if err != nil {
		return &LoadError{File: file, Line: n.Line, Err: err}
	}
	var v [3]int
	parts := strings.Split(strings.TrimSpace(s), ".")
	bad := &LoadError{File: file, Line: n.Line, Err: fmt.Errorf("required_engine_version %q is neither a version such as %s nor a number", s, EngineVersion)}
	switch len(parts) {
	case 1: // old integer engine versions N mean 0.N.0
		x, err := strconv.Atoi(parts[0])
		if err != nil || x < 0 {
			return bad
		}
		v = [3]int{0, x, 0}
	case 3:
		for i, p := range parts {
			x, err := strconv.Atoi(p)
			if err != nil || x < 0 {
				return bad
			}
			v[i] = x
		}
	default:
		return bad
	}
	for i := range v {
		if v[i] != engineVersion[i] {
			if v[i] > engineVersion[i] {
				return &LoadError{File: file, Line: n.Line, Err: fmt.Errorf("the file requires Falco engine version %d.%d.%d; Vigil is compatible with %s", v[0], v[1], v[2], EngineVersion)}
			}
			break
		}
	}
	return nil
}

// overrides reads an item's override: key → "append" or "replace".
func overrides(m *mapping, appendable, replaceable []string) (map[string]string, error) {
	n, ok := m.keys["override"]
	if !ok {
		return nil, nil
	}
	om, err := toMapping(n)
	if err != nil {
		return nil, errors.New("override must be a mapping of key: append|replace")
	}
	out := map[string]string{}
	for _, k := range om.order {
		how, err := scalar(om.keys[k], "override."+k)
		if err != nil {
			return nil, err
		}
		switch how {
		case "append":
			if !contains(appendable, k) {
				return nil, fmt.Errorf("key %q cannot be appended to (appendable: %s)", k, strings.Join(appendable, ", "))
			}
		case "replace":
			if !contains(replaceable, k) {
				return nil, fmt.Errorf("key %q cannot be replaced (replaceable: %s)", k, strings.Join(replaceable, ", "))
			}
		default:
			return nil, fmt.Errorf("override of %q must be append or replace, not %q", k, how)
		}
		if !m.has(k) {
			return nil, fmt.Errorf("override names %q but the item has no %q key", k, k)
		}
		out[k] = how
	}
	for _, k := range m.order {
		if k == "rule" || k == "macro" || k == "list" || k == "override" {
			continue
		}
		if _, ok := out[k]; !ok {
			return nil, fmt.Errorf("key %q needs an override directive (append or replace) in an override item", k)
		}
	}
	return out, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func isAppend(m *mapping) (bool, error) {
	n, ok := m.keys["append"]
	if !ok {
		return false, nil
	}
	return yamlBool(n, "append")
}

func (l *loader) list(file string, n *yaml.Node, m *mapping) error {
	fail := func(err error) error { return &LoadError{File: file, Line: n.Line, Err: err} }
	name, err := scalar(m.keys["list"], "list")
	if err != nil || name == "" {
		return fail(errors.New("list needs a name"))
	}
	fail = func(err error) error {
		return &LoadError{File: file, Line: n.Line, Err: fmt.Errorf("list %q: %w", name, err)}
	}
	app, err := isAppend(m)
	if err != nil {
		return fail(err)
	}
	ov, err := overrides(m, []string{"items"}, []string{"items"})
	if err != nil {
		return fail(err)
	}
	itemsNode, ok := m.keys["items"]
	if !ok {
		return fail(errors.New("no items"))
	}
	items, err := strList(itemsNode, "items")
	if err != nil {
		return fail(err)
	}
	prev, exists := l.lists.get(name)
	switch {
	case ov != nil || app:
		if !exists {
			return fail(errors.New("append or override of a list that is not defined"))
		}
		if app || ov["items"] == "append" {
			prev.items = append(prev.items, items...)
		} else {
			prev.items = items
		}
	default:
		l.lists.put(name, &listDef{name: name, file: file, line: n.Line, items: items})
	}
	return nil
}

func (l *loader) macro(file string, n *yaml.Node, m *mapping) error {
	fail := func(err error) error { return &LoadError{File: file, Line: n.Line, Err: err} }
	name, err := scalar(m.keys["macro"], "macro")
	if err != nil || name == "" {
		return fail(errors.New("macro needs a name"))
	}
	fail = func(err error) error {
		return &LoadError{File: file, Line: n.Line, Err: fmt.Errorf("macro %q: %w", name, err)}
	}
	app, err := isAppend(m)
	if err != nil {
		return fail(err)
	}
	ov, err := overrides(m, []string{"condition"}, []string{"condition"})
	if err != nil {
		return fail(err)
	}
	cn, ok := m.keys["condition"]
	if !ok {
		return fail(errors.New("no condition"))
	}
	cond, err := scalar(cn, "condition")
	if err != nil {
		return fail(err)
	}
	p := condPart(file, l.src, cn, cond)
	prev, exists := l.macros.get(name)
	switch {
	case ov != nil || app:
		if !exists {
			return fail(errors.New("append or override of a macro that is not defined"))
		}
		if app || ov["condition"] == "append" {
			prev.cond = append(prev.cond, p)
		} else {
			prev.cond = []part{p}
		}
	default:
		l.macros.put(name, &macroDef{name: name, file: file, line: n.Line, cond: []part{p}})
	}
	return nil
}

var ruleKeys = []string{"rule", "desc", "condition", "output", "priority", "tags", "enabled", "exceptions", "source",
	"append", "override", "warn_evttypes", "skip-if-unknown-filter", "required_engine_version", "capture", "capture_duration"}

func (l *loader) rule(file string, n *yaml.Node, m *mapping) error {
	name, err := scalar(m.keys["rule"], "rule")
	if err != nil || name == "" {
		return &LoadError{File: file, Line: n.Line, Err: errors.New("rule needs a name")}
	}
	fail := func(line int, err error) error { return &LoadError{File: file, Line: line, Rule: name, Err: err} }
	app, err := isAppend(m)
	if err != nil {
		return fail(n.Line, err)
	}
	ov, err := overrides(m, []string{"condition", "output", "desc", "tags", "exceptions"},
		[]string{"condition", "output", "desc", "priority", "tags", "exceptions", "enabled", "warn_evttypes", "skip-if-unknown-filter"})
	if err != nil {
		return fail(n.Line, err)
	}
	if app && ov != nil {
		return fail(n.Line, errors.New("append and override cannot be used together"))
	}
	for _, k := range m.order {
		if !contains(ruleKeys, k) {
			l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: rule %q: unknown key %q ignored", file, m.keys[k].Line, name, k))
		}
	}
	prev, exists := l.rules.get(name)
	enabledOnly := len(m.order) == 2 && m.has("enabled")
	if app || ov != nil || enabledOnly {
		if !exists {
			how := "append to"
			if ov != nil {
				how = "override of"
			} else if enabledOnly {
				how = "enabled-only item for"
			}
			return fail(n.Line, fmt.Errorf("%s a rule that is not defined", how))
		}
		return l.modifyRule(file, prev, m, ov, app)
	}
	r := &ruleDef{name: name, file: file, line: n.Line, enabled: true, source: "syscall"}
	for _, k := range []string{"condition", "output", "desc", "priority"} {
		if !m.has(k) {
			return fail(n.Line, fmt.Errorf("no %q key", k))
		}
	}
	if err := l.ruleFields(file, r, m, nil); err != nil {
		return err
	}
	l.rules.put(name, r)
	return nil
}

// ruleFields sets r's fields from m; with how (override) or for appends,
// appendable fields are appended.
func (l *loader) ruleFields(file string, r *ruleDef, m *mapping, how func(k string) string) error {
	fail := func(n *yaml.Node, err error) error {
		return &LoadError{File: file, Line: n.Line, Rule: r.name, Err: err}
	}
	mode := func(k string) string {
		if how == nil {
			return "replace"
		}
		return how(k)
	}
	for _, k := range m.order {
		v := m.keys[k]
		switch k {
		case "condition":
			s, err := scalar(v, k)
			if err != nil {
				return fail(v, err)
			}
			p := condPart(file, l.src, v, s)
			if mode(k) == "append" {
				r.cond = append(r.cond, p)
			} else {
				r.cond = []part{p}
			}
		case "output", "desc":
			s, err := scalar(v, k)
			if err != nil {
				return fail(v, err)
			}
			s = strings.TrimSpace(s)
			dst := &r.output
			if k == "desc" {
				dst = &r.desc
			}
			if mode(k) == "append" && *dst != "" {
				*dst += " " + s
			} else {
				*dst = s
			}
		case "priority":
			s, err := scalar(v, k)
			if err != nil {
				return fail(v, err)
			}
			p, err := ParsePriority(s)
			if err != nil {
				return fail(v, err)
			}
			r.priority = p
		case "tags":
			t, err := strList(v, k)
			if err != nil {
				return fail(v, err)
			}
			if mode(k) == "append" {
				for _, x := range t {
					if !contains(r.tags, x) {
						r.tags = append(r.tags, x)
					}
				}
			} else {
				r.tags = t
			}
		case "enabled":
			b, err := yamlBool(v, k)
			if err != nil {
				return fail(v, err)
			}
			r.enabled = b
		case "source":
			s, err := scalar(v, k)
			if err != nil {
				return fail(v, err)
			}
			if s != "" {
				r.source = s
			}
		case "exceptions":
			ex, err := exceptions(file, v)
			if err != nil {
				return fail(v, err)
			}
			if mode(k) == "append" {
				for _, e := range ex {
					if old := findException(r.exceptions, e.name); old != nil && (len(e.fields) == 0 || sameFields(old, e)) {
						old.values = append(old.values, e.values...)
					} else if old != nil {
						return fail(v, fmt.Errorf("exception %q: appended exceptions may only add values", e.name))
					} else {
						r.exceptions = append(r.exceptions, e)
					}
				}
			} else {
				r.exceptions = ex
			}
		}
	}
	return nil
}

func findException(l []*exceptionDef, name string) *exceptionDef {
	for _, e := range l {
		if e.name == name {
			return e
		}
	}
	return nil
}

func sameFields(a, b *exceptionDef) bool {
	return strings.Join(a.fields, "\x00") == strings.Join(b.fields, "\x00") &&
		(len(b.comps) == 0 || strings.Join(a.comps, "\x00") == strings.Join(b.comps, "\x00"))
}

func (l *loader) modifyRule(file string, r *ruleDef, m *mapping, ov map[string]string, app bool) error {
	if ov != nil {
		return l.ruleFields(file, r, m, func(k string) string { return ov[k] })
	}
	if app {
		for _, k := range m.order {
			switch k {
			case "rule", "append", "condition", "exceptions":
			default:
				l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: rule %q: key %q ignored in an 'append: true' item (only condition and exceptions are appended)", file, m.keys[k].Line, r.name, k))
				delete(m.keys, k)
			}
		}
		return l.ruleFields(file, r, m, func(string) string { return "append" })
	}
	return l.ruleFields(file, r, m, nil) // enabled only
}

func exceptions(file string, n *yaml.Node) ([]*exceptionDef, error) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, errors.New("exceptions must be a list")
	}
	var out []*exceptionDef
	for _, en := range n.Content {
		m, err := toMapping(en)
		if err != nil {
			return nil, fmt.Errorf("line %d: exception: %w", en.Line, err)
		}
		e := &exceptionDef{file: file, line: en.Line}
		if nn, ok := m.keys["name"]; ok {
			e.name, _ = scalar(nn, "name")
		}
		if e.name == "" {
			return nil, fmt.Errorf("line %d: exception without a name", en.Line)
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("line %d: exception %q: %s", en.Line, e.name, fmt.Sprintf(format, args...))
		}
		if fn, ok := m.keys["fields"]; ok {
			if fn.Kind == yaml.ScalarNode {
				e.single = true
				e.fields = []string{fn.Value}
			} else if e.fields, err = strList(fn, "fields"); err != nil {
				return nil, bad("%v", err)
			}
		}
		if cn, ok := m.keys["comps"]; ok {
			if cn.Kind == yaml.ScalarNode {
				e.comps = []string{cn.Value}
			} else if e.comps, err = strList(cn, "comps"); err != nil {
				return nil, bad("%v", err)
			}
		}
		if len(e.comps) > 0 && len(e.comps) != len(e.fields) {
			return nil, bad("%d fields but %d comps", len(e.fields), len(e.comps))
		}
		for _, c := range e.comps {
			if !contains(exceptionComps, c) {
				return nil, bad("unknown operator %q in comps", c)
			}
		}
		if vn, ok := m.keys["values"]; ok && !(vn.Kind == yaml.ScalarNode && vn.Tag == "!!null") {
			if vn.Kind != yaml.SequenceNode {
				return nil, bad("values must be a list")
			}
			e.values = vn.Content
		}
		out = append(out, e)
	}
	return out, nil
}

var exceptionComps = []string{"=", "==", "!=", "<", "<=", ">", ">=", "contains", "icontains", "bcontains",
	"startswith", "bstartswith", "endswith", "glob", "iglob", "in", "intersects", "pmatch", "regex"}

// exceptionNode builds "(row1 or row2 …)" for one exception; nil when it
// has no values.
func exceptionNode(e *exceptionDef) (node, error) {
	if len(e.values) == 0 {
		return nil, nil
	}
	if len(e.fields) == 0 {
		return nil, fmt.Errorf("exception %q has values but no fields", e.name)
	}
	fieldRefs := make([]*fieldRef, len(e.fields))
	for i, f := range e.fields {
		r, err := parseFieldName(f)
		if err != nil {
			return nil, fmt.Errorf("exception %q: field %q: %w", e.name, f, err)
		}
		fieldRefs[i] = r
	}
	comp := func(i int) string {
		if i < len(e.comps) {
			return e.comps[i]
		}
		if e.single {
			return "in"
		}
		return "="
	}
	isListOp := func(op string) bool { return op == "in" || op == "intersects" || op == "pmatch" }
	var rows []node
	if e.single {
		op := comp(0)
		var vals []string
		for _, v := range e.values {
			switch v.Kind {
			case yaml.ScalarNode:
				vals = append(vals, v.Value)
			case yaml.SequenceNode:
				l, err := strList(v, "value")
				if err != nil {
					return nil, fmt.Errorf("exception %q: line %d: %w", e.name, v.Line, err)
				}
				vals = append(vals, l...)
			default:
				return nil, fmt.Errorf("exception %q: line %d: a value must be a string or a list", e.name, v.Line)
			}
		}
		if isListOp(op) {
			return &checkNode{pos: -1, field: fieldRefs[0], op: op, list: vals, isList: true}, nil
		}
		for _, v := range vals {
			rows = append(rows, &checkNode{pos: -1, field: fieldRefs[0], op: op, value: v})
		}
		return &orNode{kids: rows}, nil
	}
	for _, row := range e.values {
		if row.Kind != yaml.SequenceNode || len(row.Content) != len(e.fields) {
			return nil, fmt.Errorf("exception %q: line %d: each value must be a list of %d items, one per field", e.name, row.Line, len(e.fields))
		}
		var and []node
		for i, v := range row.Content {
			op := comp(i)
			c := &checkNode{pos: -1, field: fieldRefs[i], op: op}
			switch {
			case isListOp(op) && v.Kind == yaml.SequenceNode:
				l, err := strList(v, "value")
				if err != nil {
					return nil, fmt.Errorf("exception %q: line %d: %w", e.name, v.Line, err)
				}
				c.list, c.isList = l, true
			case isListOp(op) && v.Kind == yaml.ScalarNode:
				c.list, c.isList = []string{v.Value}, true
			case v.Kind == yaml.ScalarNode:
				c.value = v.Value
			default:
				return nil, fmt.Errorf("exception %q: line %d: operator %s takes one value, not a list", e.name, v.Line, op)
			}
			and = append(and, c)
		}
		rows = append(rows, &andNode{kids: and})
	}
	return &orNode{kids: rows}, nil
}
