package rules

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Rule is one loaded rule.
type Rule struct {
	Name     string
	Desc     string
	Output   string
	Source   string
	File     string
	Line     int
	Priority Priority
	Tags     []string
	MITRE    MITRE
	Enabled  bool

	rs     *Ruleset
	cond   evalFn
	types  tset
	out    []outSeg
	loaded bool
	reason string
}

// Status is what became of one rule: loaded or skipped (and why),
// enabled or not.
type Status struct {
	Name    string `json:"name"`
	File    string `json:"file"`
	Line    int    `json:"line"`
	Loaded  bool   `json:"loaded"`
	Enabled bool   `json:"enabled"`
	// Reason is why the rule is not active: "unknown field proc.foo",
	// "source k8s_audit not supported", "disabled".
	Reason string `json:"reason,omitempty"`
}

// Ruleset is a compiled set of rules. Match may be called concurrently.
type Ruleset struct {
	all      []*Rule
	active   []*Rule
	byType   map[string][]*Rule
	other    []*Rule // rules for event types no rule names
	warnings []string
	watched  []string
	nscratch int
	counter  atomic.Uint64
	pool     sync.Pool
}

// Statuses lists every rule, in load order.
func (rs *Ruleset) Statuses() []Status {
	out := make([]Status, 0, len(rs.all))
	for _, r := range rs.all {
		s := Status{Name: r.Name, File: r.File, Line: r.Line, Loaded: r.loaded, Enabled: r.Enabled, Reason: r.reason}
		if r.loaded && !r.Enabled {
			s.Reason = "disabled"
		}
		out = append(out, s)
	}
	return out
}

// Rules lists the loaded and enabled rules, in load order.
func (rs *Ruleset) Rules() []*Rule { return append([]*Rule(nil), rs.active...) }

// Warnings are non-fatal findings: unused lists and macros, output fields
// Vigil cannot fill, ignored keys.
func (rs *Ruleset) Warnings() []string { return append([]string(nil), rs.warnings...) }

// Match calls fn, in load order, for each loaded and enabled rule whose
// condition holds for e. It does not allocate when no rule matches. fn
// must not retain e beyond the call unless it owns it.
func (rs *Ruleset) Match(e *event.Event, fn func(*Rule)) {
	list, ok := rs.byType[evtType(e)]
	if !ok {
		list = rs.other
	}
	if len(list) == 0 {
		rs.counter.Add(1)
		return
	}
	c := rs.pool.Get().(*ctx)
	c.reset(e, rs.counter.Add(1), rs.nscratch)
	for _, r := range list {
		if r.cond(c) {
			fn(r)
		}
	}
	c.e = nil
	rs.pool.Put(c)
}

func (l *loader) build() (*Ruleset, error) {
	rs := &Ruleset{}
	rs.pool.New = func() any { return &ctx{} }
	cp := &compiler{macros: map[string]*macroState{}, lists: map[string]*listDef{}}
	for _, ld := range l.lists.items {
		cp.lists[ld.name] = ld
	}
	for _, md := range l.macros.items {
		ms := &macroState{def: md}
		ms.ast, ms.parseErr = parseCondition(joinParts(md.cond))
		if ms.parseErr != nil {
			return nil, condError(md.cond, "", fmt.Sprintf("macro %q: condition", md.name), ms.parseErr)
		}
		cp.macros[md.name] = ms
	}
	outWarn := map[string][]string{}
	for _, d := range l.rules.items {
		r := &Rule{
			Name: d.name, Desc: d.desc, Output: d.output, Source: d.source, File: d.file, Line: d.line,
			Priority: d.priority, Tags: d.tags, MITRE: mitreOf(d.tags), Enabled: d.enabled, rs: rs,
		}
		rs.all = append(rs.all, r)
		if d.source != "syscall" {
			r.reason = "source " + d.source + " not supported"
			continue
		}
		ast, err := parseCondition(joinParts(d.cond))
		if err != nil {
			return nil, condError(d.cond, d.name, "condition", err)
		}
		var excs []node
		for _, e := range d.exceptions {
			en, err := exceptionNode(e)
			if err != nil {
				return nil, &LoadError{File: e.file, Line: e.line, Rule: d.name, Err: err}
			}
			if en != nil {
				excs = append(excs, en)
			}
		}
		if len(excs) > 0 {
			ast = &andNode{kids: []node{ast, &notNode{kid: &orNode{kids: excs}}}}
		}
		cp.markUsed(ast, map[string]bool{})
		c, err := cp.compile(ast)
		if err != nil {
			if se := (*skipError)(nil); errors.As(err, &se) {
				r.reason = se.reason
				continue
			}
			if me := (*macroError)(nil); errors.As(err, &me) {
				return nil, &LoadError{File: me.file, Line: me.line, Rule: d.name, Err: err}
			}
			file, line := d.file, d.line
			if len(d.cond) > 0 {
				file, line = d.cond[0].file, d.cond[0].line
			}
			if pe := (*posError)(nil); errors.As(err, &pe) && pe.pos >= 0 {
				var col int
				file, line, col = where(d.cond, pe.pos)
				err = fmt.Errorf("column %d: %w", col, pe.err)
			}
			return nil, &LoadError{File: file, Line: line, Rule: d.name, Err: fmt.Errorf("condition: %w", err)}
		}
		r.cond, r.types, r.loaded = c.fn, c.pos, true
		r.out = cp.output(d.output, func(field string) { outWarn[field] = append(outWarn[field], d.name) })
		if r.Enabled {
			rs.active = append(rs.active, r)
		}
	}
	rs.nscratch = cp.nscratch
	rs.index()
	for _, r := range rs.active {
		if r.types.neg {
			l.warnings = append(l.warnings, fmt.Sprintf("%s:%d: rule %q does not restrict evt.type: it is evaluated for every event", r.File, r.Line, r.Name))
		}
	}

	// warnings
	rs.warnings = append(rs.warnings, l.warnings...)
	for _, ms := range l.macros.items {
		if !ms.used {
			rs.warnings = append(rs.warnings, fmt.Sprintf("%s:%d: macro %q is not used", ms.file, ms.line, ms.name))
		}
	}
	for _, ld := range l.lists.items {
		if !ld.used {
			rs.warnings = append(rs.warnings, fmt.Sprintf("%s:%d: list %q is not used", ld.file, ld.line, ld.name))
		}
	}
	names := make([]string, 0, len(outWarn))
	for f := range outWarn {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		rs.warnings = append(rs.warnings, fmt.Sprintf("output field %s cannot be filled and renders as <NA> (in %d rules: %s)",
			f, len(outWarn[f]), strings.Join(outWarn[f], "; ")))
	}
	rs.watched = cp.watched()
	return rs, nil
}

// condError locates a condition syntax error in the part it falls in.
func condError(ps []part, rule, what string, err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		file, line, col := where(ps, se.pos)
		return &LoadError{File: file, Line: line, Rule: rule, Err: fmt.Errorf("%s: column %d: %s", what, col, se.msg)}
	}
	p := part{}
	if len(ps) > 0 {
		p = ps[0]
	}
	return &LoadError{File: p.file, Line: p.line, Rule: rule, Err: fmt.Errorf("%s: %w", what, err)}
}

// index groups the active rules by the evt.type values they can match.
func (rs *Ruleset) index() {
	names := map[string]bool{}
	for _, r := range rs.active {
		for n := range r.types.m {
			names[n] = true
		}
	}
	rs.byType = make(map[string][]*Rule, len(names))
	for n := range names {
		var list []*Rule
		for _, r := range rs.active {
			if r.types.has(n) {
				list = append(list, r)
			}
		}
		rs.byType[n] = list
	}
	for _, r := range rs.active {
		if r.types.neg {
			rs.other = append(rs.other, r)
		}
	}
}

// outSeg is a literal or a field of an output format.
type outSeg struct {
	lit string
	f   *cfield
	na  bool // a field Vigil cannot fill: "<NA>"
}

// output compiles an output format: %field or %(field), as Falco's
// formatter reads them.
func (cp *compiler) output(format string, unknown func(field string)) []outSeg {
	var segs []outSeg
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, outSeg{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); i++ {
		c := format[i]
		if c != '%' || i+1 >= len(format) {
			lit.WriteByte(c)
			continue
		}
		var name string
		end := i + 1
		if t := transformerAt(format[end:]); t != "" {
			// %tolower(proc.name): up to the matching parenthesis
			depth, j := 0, end
			for ; j < len(format); j++ {
				if format[j] == '(' {
					depth++
				} else if format[j] == ')' {
					depth--
					if depth == 0 {
						break
					}
				}
			}
			if j == len(format) {
				lit.WriteByte(c)
				continue
			}
			name = format[end : j+1]
			end = j + 1
		} else if format[end] == '(' {
			j := strings.IndexByte(format[end:], ')')
			if j < 0 {
				lit.WriteByte(c)
				continue
			}
			name = format[end+1 : end+j]
			end += j + 1
		} else {
			j := end
			for j < len(format) && (isIdent(format[j]) || format[j] == '.') {
				j++
			}
			for j > end && format[j-1] == '.' {
				j--
			}
			if j < len(format) && format[j] == '[' {
				if k := strings.IndexByte(format[j:], ']'); k > 0 {
					j += k + 1
				}
			}
			name = format[end:j]
			end = j
		}
		if name == "" || !strings.Contains(name, ".") {
			lit.WriteByte(c)
			continue
		}
		flush()
		ref, err := parseFieldName(name)
		var f *cfield
		if err == nil {
			f, err = cp.field(ref)
		}
		if err != nil {
			segs = append(segs, outSeg{na: true})
			unknown(name)
		} else {
			segs = append(segs, outSeg{f: f})
		}
		i = end - 1
	}
	flush()
	return segs
}

// transformerAt returns the transformer s starts with ("tolower(" …).
func transformerAt(s string) string {
	for _, t := range transformers {
		if strings.HasPrefix(s, t) {
			return t
		}
	}
	return ""
}

// Render is the rule's output with its fields filled from e; "<NA>" for
// values e does not have. evt.num renders as <NA> outside Match.
func (r *Rule) Render(e *event.Event) string {
	c := &ctx{}
	n := 0
	if r.rs != nil {
		n = r.rs.nscratch
	}
	c.reset(e, 0, n)
	var b []byte
	for _, s := range r.out {
		switch {
		case s.f != nil:
			b = appendValue(b, c, s.f)
		case s.na:
			b = append(b, "<NA>"...)
		default:
			b = append(b, s.lit...)
		}
	}
	return string(b)
}

func appendValue(b []byte, c *ctx, f *cfield) []byte {
	v, ok := f.at(c, 0)
	if !ok {
		return append(b, "<NA>"...)
	}
	switch f.typ {
	case tNum:
		return strconv.AppendInt(b, v.n, 10)
	case tBool:
		return strconv.AppendBool(b, v.n != 0)
	case tIP, tNet:
		return v.ip.AppendTo(b)
	}
	return append(b, v.s...)
}

// Field is the value of one Falco field for e, as text: "proc.name",
// "proc.aname[2]", "container.label[app]", "tolower(proc.name)". ok is
// false when the field is unknown or e has no value for it.
func Field(e *event.Event, name string) (string, bool) {
	ref, err := parseFieldName(name)
	if err != nil {
		return "", false
	}
	cp := &compiler{}
	f, err := cp.field(ref)
	if err != nil {
		return "", false
	}
	c := &ctx{}
	c.reset(e, 0, cp.nscratch)
	if _, ok := f.at(c, 0); !ok {
		return "", false
	}
	return string(appendValue(nil, c, f)), true
}

//go:embed builtin/*.yaml
var builtin embed.FS

// builtinOrder puts Falco's rules first, then Vigil's, then any other.
var builtinOrder = []string{"falco_rules.yaml", "vigil_rules.yaml"}

// DefaultFiles are the built-in rules files, in load order:
// falco_rules.yaml, then vigil_rules.yaml when present.
func DefaultFiles() []File {
	names, _ := fs.Glob(builtin, "builtin/*.yaml")
	rank := func(n string) int {
		for i, o := range builtinOrder {
			if path.Base(n) == o {
				return i
			}
		}
		return len(builtinOrder)
	}
	sort.SliceStable(names, func(i, j int) bool {
		if ri, rj := rank(names[i]), rank(names[j]); ri != rj {
			return ri < rj
		}
		return names[i] < names[j]
	})
	out := make([]File, 0, len(names))
	for _, n := range names {
		data, err := builtin.ReadFile(n)
		if err != nil {
			continue
		}
		out = append(out, File{Name: n, Data: data})
	}
	return out
}

// Default loads the built-in rules.
func Default() (*Ruleset, error) { return Load(DefaultFiles()...) }
