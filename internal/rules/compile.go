package rules

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// evalFn is a compiled condition.
type evalFn func(c *ctx) bool

// skipError means a rule needs something Vigil cannot supply (a field, an
// event source): the rule is skipped and reported, the load goes on.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// macroError locates an error inside a macro's condition.
type macroError struct {
	macro, file string
	line        int
	err         error
}

func (e *macroError) Error() string { return fmt.Sprintf("macro %q: %v", e.macro, e.err) }
func (e *macroError) Unwrap() error { return e.err }

// posError is an error at a byte offset of a condition (-1: not in the
// condition text, as for exceptions).
type posError struct {
	pos int
	err error
}

func (e *posError) Error() string {
	if e.pos < 0 {
		return e.err.Error()
	}
	return fmt.Sprintf("column %d: %v", e.pos+1, e.err)
}

func (e *posError) Unwrap() error { return e.err }

// tset is a set of evt.type names: exactly m, or (neg) everything but m.
type tset struct {
	neg bool
	m   map[string]bool
}

var allTypes = tset{neg: true}

func (a tset) has(t string) bool { return a.m[t] != a.neg }

func (a tset) not() tset { return tset{!a.neg, a.m} }

func inter(a, b tset) tset {
	switch {
	case !a.neg && !b.neg:
		return tset{false, filter(a.m, func(k string) bool { return b.m[k] })}
	case a.neg && b.neg:
		return tset{true, union(a.m, b.m)}
	case a.neg:
		return tset{false, filter(b.m, func(k string) bool { return !a.m[k] })}
	}
	return tset{false, filter(a.m, func(k string) bool { return !b.m[k] })}
}

func unite(a, b tset) tset { return inter(a.not(), b.not()).not() }

func filter(m map[string]bool, keep func(string) bool) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		if keep(k) {
			out[k] = true
		}
	}
	return out
}

func union(a, b map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// compiled is a compiled (sub)condition with its evt.type sets when taken
// as is (pos) and under a negation (neg).
type compiled struct {
	fn       evalFn
	pos, neg tset
}

// macroState is a macro's compilation, computed once.
type macroState struct {
	def      *macroDef
	ast      node
	parseErr error
	visiting bool
	done     bool
	res      compiled
	err      error
}

// compiler turns parsed conditions into closures.
type compiler struct {
	macros   map[string]*macroState
	lists    map[string]*listDef
	nscratch int
	// expanded caches each list's expansion; expanding detects cycles.
	expanded  map[string][]string
	expanding map[string]bool
	// names collects the DNS names compared with fd.*.name fields, which
	// the agent resolves (Ruleset.WatchedNames).
	names map[string]bool
}

func (cp *compiler) compile(n node) (compiled, error) {
	switch n := n.(type) {
	case *andNode:
		kids := make([]evalFn, 0, len(n.kids))
		pos, neg := allTypes, tset{m: map[string]bool{}}
		for _, k := range n.kids {
			c, err := cp.compile(k)
			if err != nil {
				return compiled{}, err
			}
			kids = append(kids, c.fn)
			pos, neg = inter(pos, c.pos), unite(neg, c.neg)
		}
		return compiled{andFn(kids), pos, neg}, nil
	case *orNode:
		kids := make([]evalFn, 0, len(n.kids))
		pos, neg := tset{m: map[string]bool{}}, allTypes
		for _, k := range n.kids {
			c, err := cp.compile(k)
			if err != nil {
				return compiled{}, err
			}
			kids = append(kids, c.fn)
			pos, neg = unite(pos, c.pos), inter(neg, c.neg)
		}
		return compiled{orFn(kids), pos, neg}, nil
	case *notNode:
		c, err := cp.compile(n.kid)
		if err != nil {
			return compiled{}, err
		}
		f := c.fn
		return compiled{func(x *ctx) bool { return !f(x) }, c.neg, c.pos}, nil
	case *identNode:
		return cp.macro(n)
	case *checkNode:
		return cp.check(n)
	}
	return compiled{}, fmt.Errorf("internal error: unknown node %T", n)
}

func andFn(kids []evalFn) evalFn {
	switch len(kids) {
	case 2:
		a, b := kids[0], kids[1]
		return func(c *ctx) bool { return a(c) && b(c) }
	}
	return func(c *ctx) bool {
		for _, k := range kids {
			if !k(c) {
				return false
			}
		}
		return true
	}
}

func orFn(kids []evalFn) evalFn {
	switch len(kids) {
	case 2:
		a, b := kids[0], kids[1]
		return func(c *ctx) bool { return a(c) || b(c) }
	}
	return func(c *ctx) bool {
		for _, k := range kids {
			if k(c) {
				return true
			}
		}
		return false
	}
}

func (cp *compiler) macro(n *identNode) (compiled, error) {
	m, ok := cp.macros[n.name]
	if !ok {
		return compiled{}, &posError{n.pos, fmt.Errorf("undefined macro %q", n.name)}
	}
	m.def.used = true
	if m.done {
		return m.res, m.err
	}
	if m.visiting {
		return compiled{}, fmt.Errorf("macro %q is part of a cycle of macros", n.name)
	}
	if m.parseErr != nil {
		return compiled{}, &macroError{m.def.name, m.def.file, m.def.line, m.parseErr}
	}
	m.visiting = true
	res, err := cp.compile(m.ast)
	m.visiting = false
	if err != nil {
		var se *skipError
		var me *macroError
		if !errors.As(err, &se) && !errors.As(err, &me) {
			file, line, col := m.def.file, m.def.line, 0
			var pe *posError
			if errors.As(err, &pe) && pe.pos >= 0 {
				file, line, col = where(m.def.cond, pe.pos)
				err = pe.err
			}
			if col > 0 {
				err = fmt.Errorf("column %d: %w", col, err)
			}
			err = &macroError{m.def.name, file, line, err}
		}
	}
	m.done, m.res, m.err = true, res, err
	return res, err
}

// maxListItems bounds what one list value may expand to, so lists that
// reference each other many times over cannot blow up.
const maxListItems = 1 << 20

// expand resolves list names in a list of values, recursively.
func (cp *compiler) expand(vals []string, _ int) ([]string, error) {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if _, ok := cp.lists[v]; !ok {
			out = append(out, v)
			continue
		}
		items, err := cp.listItems(v)
		if err != nil {
			return nil, err
		}
		if len(out)+len(items) > maxListItems {
			return nil, fmt.Errorf("list %q expands to more than %d items", v, maxListItems)
		}
		out = append(out, items...)
	}
	return out, nil
}

// listItems is a list's items with the lists it names replaced by their
// items and quoted items unquoted; computed once per list.
func (cp *compiler) listItems(name string) ([]string, error) {
	if items, ok := cp.expanded[name]; ok {
		return items, nil
	}
	if cp.expanding[name] {
		return nil, fmt.Errorf("list %q is part of a cycle of lists", name)
	}
	if cp.expanded == nil {
		cp.expanded = map[string][]string{}
		cp.expanding = map[string]bool{}
	}
	l := cp.lists[name]
	l.used = true
	cp.expanding[name] = true
	defer delete(cp.expanding, name)
	var out []string
	for _, it := range l.items {
		if _, ok := cp.lists[it]; ok {
			sub, err := cp.listItems(it)
			if err != nil {
				return nil, err
			}
			if len(out)+len(sub) > maxListItems {
				return nil, fmt.Errorf("list %q expands to more than %d items", name, maxListItems)
			}
			out = append(out, sub...)
			continue
		}
		out = append(out, unquoteItem(it))
	}
	cp.expanded[name] = out
	return out, nil
}

// unquoteItem reads a list item written as a quoted string ('"a b"').
func unquoteItem(s string) string {
	if len(s) < 2 || (s[0] != '"' && s[0] != '\'') {
		return s
	}
	p := &parser{in: s}
	var out string
	ok := func() (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false
			}
		}()
		v, ok := p.quoted()
		out = v
		return ok && p.pos == len(s)
	}()
	if !ok {
		return s
	}
	return out
}

// cfield is a compiled field reference.
type cfield struct {
	name string // as written, for messages
	spec *fieldSpec
	arg  farg
	trs  []trans
	typ  vtype // after transformers
}

type trans struct {
	kind string
	slot int
}

func (f *cfield) at(c *ctx, i int) (val, bool) {
	v, ok := f.spec.get(c, &f.arg, i)
	if !ok {
		return v, false
	}
	for _, t := range f.trs {
		switch t.kind {
		case "tolower":
			v.s = lower(c, t.slot, v.s)
		case "toupper":
			v.s = upper(c, t.slot, v.s)
		case "basename":
			v.s = fileName(v.s)
		case "b64":
			b := c.scratch[t.slot][:0]
			n := base64.StdEncoding.DecodedLen(len(v.s))
			if cap(b) < n {
				b = make([]byte, n)
			}
			b = b[:n]
			m, err := base64.StdEncoding.Decode(b, []byte(v.s))
			if err != nil {
				return val{}, false
			}
			c.scratch[t.slot] = b
			v.s = bstr(b[:m])
		case "len":
			v = val{n: int64(len(v.s))}
		}
	}
	return v, true
}

func lower(c *ctx, slot int, s string) string {
	i := 0
	for i < len(s) && !(s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := append(c.scratch[slot][:0], s...)
	for j := i; j < len(b); j++ {
		if b[j] >= 'A' && b[j] <= 'Z' {
			b[j] += 'a' - 'A'
		}
	}
	c.scratch[slot] = b
	return bstr(b)
}

func upper(c *ctx, slot int, s string) string {
	i := 0
	for i < len(s) && !(s[i] >= 'a' && s[i] <= 'z') {
		i++
	}
	if i == len(s) {
		return s
	}
	b := append(c.scratch[slot][:0], s...)
	for j := i; j < len(b); j++ {
		if b[j] >= 'a' && b[j] <= 'z' {
			b[j] -= 'a' - 'A'
		}
	}
	c.scratch[slot] = b
	return bstr(b)
}

// field resolves a field reference; a field Vigil cannot fill is a
// skipError.
func (cp *compiler) field(r *fieldRef) (*cfield, error) {
	spec, ok := fields[r.name]
	if !ok {
		return nil, &skipError{"unknown field " + r.name}
	}
	f := &cfield{name: r.String(), spec: spec, typ: spec.typ}
	switch spec.arg {
	case argNone:
		if r.hasArg {
			return nil, &skipError{fmt.Sprintf("field %s takes no argument (%s)", r.name, r)}
		}
	case argIndexOpt:
		if r.hasArg {
			n, err := strconv.Atoi(r.arg)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("field %s: index %q is not a non-negative number", r.name, r.arg)
			}
			f.arg = farg{idx: n, has: true}
		}
	case argKeyReq:
		if !r.hasArg {
			return nil, fmt.Errorf("field %s needs an argument, such as %s[name]", r.name, r.name)
		}
		f.arg = farg{key: r.arg, has: true}
	case argKeyOpt:
		if r.hasArg {
			f.arg = farg{key: r.arg, has: true}
		}
	}
	// transformers apply innermost first
	for i := len(r.transformers) - 1; i >= 0; i-- {
		t := r.transformers[i]
		if f.typ != tStr {
			return nil, fmt.Errorf("transformer %s() needs a string field, %s is not one", t, r.name)
		}
		tr := trans{kind: t}
		switch t {
		case "tolower", "toupper", "b64":
			tr.slot = cp.nscratch
			cp.nscratch++
		case "len":
			f.typ = tNum
		case "basename":
		default:
			return nil, fmt.Errorf("unknown transformer %s()", t)
		}
		f.trs = append(f.trs, tr)
	}
	return f, nil
}

// multi reports whether a field can have several values (any-match).
func (f *cfield) multi() bool {
	if f.spec.arg == argIndexOpt && !f.arg.has {
		return true
	}
	switch f.spec {
	case fields["fd.ip"], fields["fd.net"], fields["fd.port"], fields["fd.sip.name"], fields["fd.cip.name"],
		fields["fd.lip.name"], fields["fd.rip.name"]:
		return true
	}
	return false
}

var typeNames = [...]string{tStr: "string", tNum: "numeric", tBool: "boolean", tIP: "IP address", tNet: "IP network"}

func (cp *compiler) check(n *checkNode) (compiled, error) {
	f, err := cp.field(n.field)
	if err != nil {
		return compiled{}, err
	}
	res := compiled{pos: allTypes, neg: allTypes}
	if n.op == "exists" {
		res.fn = func(c *ctx) bool { _, ok := f.at(c, 0); return ok }
		return res, nil
	}
	var pred func(c *ctx, v val) bool
	if n.rfield != nil {
		rf, err := cp.field(n.rfield)
		if err != nil {
			return compiled{}, err
		}
		pred, err = fieldPred(n.op, f, rf)
		if err != nil {
			return compiled{}, &posError{n.pos, err}
		}
	} else {
		var vals []string
		if n.isList || n.listName != "" {
			vals = n.list
			if n.listName != "" {
				vals = []string{n.listName}
			}
			if vals, err = cp.expand(vals, 0); err != nil {
				return compiled{}, &posError{n.pos, err}
			}
		} else {
			vals = []string{n.value}
		}
		cp.noteNames(n.field.name, vals)
		p, err := cp.pred(n.op, f, vals)
		if err != nil {
			return compiled{}, &posError{n.pos, err}
		}
		pred = func(_ *ctx, v val) bool { return p(v) }
		if n.field.name == "evt.type" && len(n.field.transformers) == 0 {
			set := map[string]bool{}
			for _, v := range vals {
				set[v] = true
			}
			switch n.op {
			case "=", "==", "in", "intersects":
				res.pos, res.neg = tset{false, set}, tset{true, set}
			case "!=":
				res.pos, res.neg = tset{true, set}, tset{false, set}
			}
		}
	}
	if f.multi() {
		res.fn = func(c *ctx) bool {
			for i := 0; ; i++ {
				v, ok := f.at(c, i)
				if !ok {
					return false
				}
				if pred(c, v) {
					return true
				}
			}
		}
	} else {
		res.fn = func(c *ctx) bool {
			v, ok := f.at(c, 0)
			return ok && pred(c, v)
		}
	}
	return res, nil
}

// pred compiles "op values" for a field's type.
func (cp *compiler) pred(op string, f *cfield, vals []string) (func(v val) bool, error) {
	listOp := op == "in" || op == "intersects" || op == "pmatch"
	if !listOp && len(vals) != 1 {
		return nil, fmt.Errorf("operator %s takes one value", op)
	}
	switch f.typ {
	case tStr:
		return cp.strPred(op, f, vals)
	case tNum, tBool:
		nums := make([]int64, len(vals))
		for i, s := range vals {
			n, err := parseNum(f.typ, s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			nums[i] = n
		}
		return numPred(op, f, nums)
	case tIP, tNet:
		pfx := make([]netip.Prefix, len(vals))
		for i, s := range vals {
			p, err := parsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.name, err)
			}
			if f.typ == tIP && p.Bits() != p.Addr().BitLen() && op != "in" {
				return nil, fmt.Errorf("%s: %q is a network, not an address", f.name, s)
			}
			pfx[i] = p
		}
		in := func(v val) bool {
			for _, p := range pfx {
				if p.Contains(v.ip) {
					return true
				}
			}
			return false
		}
		switch op {
		case "=", "==", "in", "intersects":
			return in, nil
		case "!=":
			return func(v val) bool { return !in(v) }, nil
		}
		return nil, fmt.Errorf("operator %s is not supported for the %s field %s", op, typeNames[f.typ], f.name)
	}
	return nil, fmt.Errorf("internal error: type %d", f.typ)
}

func parseNum(t vtype, s string) (int64, error) {
	if t == tBool {
		switch strings.ToLower(s) {
		case "true", "1":
			return 1, nil
		case "false", "0":
			return 0, nil
		}
		return 0, fmt.Errorf("%q is not true or false", s)
	}
	n, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		u, uerr := strconv.ParseUint(s, 0, 64)
		if uerr != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil {
				return 0, fmt.Errorf("%q is not a number", s)
			}
			return int64(f), nil
		}
		return int64(u), nil
	}
	return n, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP network", s)
		}
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()).Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func numPred(op string, f *cfield, nums []int64) (func(v val) bool, error) {
	if f.typ == tBool {
		switch op {
		case "=", "==", "!=", "in", "intersects":
		default:
			return nil, fmt.Errorf("operator %s is not supported for the boolean field %s", op, f.name)
		}
	}
	if len(nums) == 0 {
		return func(val) bool { return false }, nil
	}
	switch op {
	case "=", "==":
		n := nums[0]
		return func(v val) bool { return v.n == n }, nil
	case "!=":
		n := nums[0]
		return func(v val) bool { return v.n != n }, nil
	case "<":
		n := nums[0]
		return func(v val) bool { return v.n < n }, nil
	case "<=":
		n := nums[0]
		return func(v val) bool { return v.n <= n }, nil
	case ">":
		n := nums[0]
		return func(v val) bool { return v.n > n }, nil
	case ">=":
		n := nums[0]
		return func(v val) bool { return v.n >= n }, nil
	case "in", "intersects":
		return func(v val) bool {
			for _, n := range nums {
				if v.n == n {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fmt.Errorf("operator %s is not supported for the %s field %s", op, typeNames[f.typ], f.name)
}

func (cp *compiler) strPred(op string, f *cfield, vals []string) (func(v val) bool, error) {
	var s string
	if len(vals) > 0 {
		s = vals[0]
	}
	switch op {
	case "=", "==":
		return func(v val) bool { return v.s == s }, nil
	case "!=":
		return func(v val) bool { return v.s != s }, nil
	case "<":
		return func(v val) bool { return v.s < s }, nil
	case "<=":
		return func(v val) bool { return v.s <= s }, nil
	case ">":
		return func(v val) bool { return v.s > s }, nil
	case ">=":
		return func(v val) bool { return v.s >= s }, nil
	case "contains":
		return func(v val) bool { return strings.Contains(v.s, s) }, nil
	case "icontains":
		ls := strings.ToLower(s)
		return func(v val) bool { return containsFold(v.s, ls) }, nil
	case "startswith":
		return func(v val) bool { return strings.HasPrefix(v.s, s) }, nil
	case "endswith":
		return func(v val) bool { return strings.HasSuffix(v.s, s) }, nil
	case "bcontains", "bstartswith":
		b, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("%s needs hex bytes, %q is not", op, s)
		}
		bs := string(b)
		if op == "bcontains" {
			return func(v val) bool { return strings.Contains(v.s, bs) }, nil
		}
		return func(v val) bool { return strings.HasPrefix(v.s, bs) }, nil
	case "glob":
		return func(v val) bool { return glob(s, v.s, false) }, nil
	case "iglob":
		return func(v val) bool { return glob(s, v.s, true) }, nil
	case "regex":
		re, err := regexp.Compile(s)
		if err != nil {
			return nil, fmt.Errorf("regex %q does not compile: %w", s, err)
		}
		return func(v val) bool { return re.MatchString(v.s) }, nil
	case "in", "intersects":
		if len(vals) <= 8 {
			return func(v val) bool {
				for _, x := range vals {
					if v.s == x {
						return true
					}
				}
				return false
			}, nil
		}
		set := make(map[string]struct{}, len(vals))
		for _, x := range vals {
			set[x] = struct{}{}
		}
		return func(v val) bool { _, ok := set[v.s]; return ok }, nil
	case "pmatch":
		prefixes := make([]string, 0, len(vals))
		for _, p := range vals {
			if p != "/" {
				p = strings.TrimRight(p, "/")
			}
			prefixes = append(prefixes, p)
		}
		return func(v val) bool {
			for _, p := range prefixes {
				if pathUnder(v.s, p) {
					return true
				}
			}
			return false
		}, nil
	}
	return nil, fmt.Errorf("operator %s is not supported for the string field %s", op, f.name)
}

// pathUnder reports whether path is prefix or below it.
func pathUnder(path, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(path, "/")
	}
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

// containsFold reports whether s contains the lower-case needle, ignoring
// ASCII case, without allocating.
func containsFold(s, needle string) bool {
	n := len(needle)
	if n == 0 {
		return true
	}
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for j < n {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != needle[j] {
				break
			}
			j++
		}
		if j == n {
			return true
		}
	}
	return false
}

// glob is fnmatch(3) without flags: '*' and '?' also match '/', '[…]'
// classes with ranges and '!'/'^' negation; no escapes.
func glob(pattern, s string, fold bool) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pattern) || sx < len(s) {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				nextPx, nextSx = px, sx+1
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				if sx < len(s) {
					if ok, w := matchClass(pattern[px:], s[sx], fold); w > 0 {
						if ok {
							px += w
							sx++
							continue
						}
					} else if eqByte(c, s[sx], fold) { // unterminated: literal '['
						px++
						sx++
						continue
					}
				}
			default:
				if sx < len(s) && eqByte(c, s[sx], fold) {
					px++
					sx++
					continue
				}
			}
		}
		if nextSx > 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}

func eqByte(a, b byte, fold bool) bool {
	if fold {
		if a >= 'A' && a <= 'Z' {
			a += 'a' - 'A'
		}
		if b >= 'A' && b <= 'Z' {
			b += 'a' - 'A'
		}
	}
	return a == b
}

// matchClass matches c against the class at the start of p ("[…]");
// width 0 means p holds no complete class.
func matchClass(p string, c byte, fold bool) (bool, int) {
	i := 1
	neg := false
	if i < len(p) && (p[i] == '!' || p[i] == '^') {
		neg = true
		i++
	}
	matched := false
	first := true
	for i < len(p) {
		if p[i] == ']' && !first {
			return matched != neg, i + 1
		}
		first = false
		lo := p[i]
		hi := lo
		if i+2 < len(p) && p[i+1] == '-' && p[i+2] != ']' {
			hi = p[i+2]
			i += 3
		} else {
			i++
		}
		if fold {
			lc := c
			if lc >= 'A' && lc <= 'Z' {
				lc += 'a' - 'A'
			}
			uc := c
			if uc >= 'a' && uc <= 'z' {
				uc -= 'a' - 'A'
			}
			if lo <= lc && lc <= hi || lo <= uc && uc <= hi {
				matched = true
			}
		} else if lo <= c && c <= hi {
			matched = true
		}
	}
	return false, 0
}

// fieldPred compares a field with another field's value (val(), or a
// transformer on the right-hand side).
func fieldPred(op string, f, rf *cfield) (func(c *ctx, v val) bool, error) {
	if f.typ != rf.typ {
		return nil, fmt.Errorf("cannot compare the %s field %s with the %s field %s", typeNames[f.typ], f.name, typeNames[rf.typ], rf.name)
	}
	var cmp func(a, b val) bool
	switch f.typ {
	case tStr:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b val) bool { return a.s == b.s }
		case "!=":
			cmp = func(a, b val) bool { return a.s != b.s }
		case "contains":
			cmp = func(a, b val) bool { return strings.Contains(a.s, b.s) }
		case "icontains":
			cmp = func(a, b val) bool { return strings.Contains(strings.ToLower(a.s), strings.ToLower(b.s)) }
		case "startswith", "bstartswith":
			cmp = func(a, b val) bool { return strings.HasPrefix(a.s, b.s) }
		case "endswith":
			cmp = func(a, b val) bool { return strings.HasSuffix(a.s, b.s) }
		case "glob":
			cmp = func(a, b val) bool { return glob(b.s, a.s, false) }
		case "iglob":
			cmp = func(a, b val) bool { return glob(b.s, a.s, true) }
		case "pmatch":
			cmp = func(a, b val) bool { return pathUnder(a.s, b.s) }
		case "<":
			cmp = func(a, b val) bool { return a.s < b.s }
		case "<=":
			cmp = func(a, b val) bool { return a.s <= b.s }
		case ">":
			cmp = func(a, b val) bool { return a.s > b.s }
		case ">=":
			cmp = func(a, b val) bool { return a.s >= b.s }
		}
	case tNum, tBool:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b val) bool { return a.n == b.n }
		case "!=":
			cmp = func(a, b val) bool { return a.n != b.n }
		case "<":
			cmp = func(a, b val) bool { return a.n < b.n }
		case "<=":
			cmp = func(a, b val) bool { return a.n <= b.n }
		case ">":
			cmp = func(a, b val) bool { return a.n > b.n }
		case ">=":
			cmp = func(a, b val) bool { return a.n >= b.n }
		}
	case tIP, tNet:
		switch op {
		case "=", "==", "in", "intersects":
			cmp = func(a, b val) bool { return a.ip == b.ip }
		case "!=":
			cmp = func(a, b val) bool { return a.ip != b.ip }
		}
	}
	if cmp == nil {
		return nil, fmt.Errorf("operator %s is not supported between fields %s and %s", op, f.name, rf.name)
	}
	return func(c *ctx, v val) bool {
		w, ok := rf.at(c, 0)
		return ok && cmp(v, w)
	}, nil
}

// markUsed marks the macros and lists a condition refers to, for the
// unused-definition warnings.
func (cp *compiler) markUsed(n node, seen map[string]bool) {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			cp.markUsed(k, seen)
		}
	case *orNode:
		for _, k := range n.kids {
			cp.markUsed(k, seen)
		}
	case *notNode:
		cp.markUsed(n.kid, seen)
	case *identNode:
		m, ok := cp.macros[n.name]
		if !ok {
			return
		}
		m.def.used = true
		if !seen[n.name] && m.ast != nil {
			seen[n.name] = true
			cp.markUsed(m.ast, seen)
		}
	case *checkNode:
		vals := n.list
		if n.listName != "" {
			vals = []string{n.listName}
		}
		cp.markLists(vals, 0)
	}
}

func (cp *compiler) markLists(vals []string, depth int) {
	for _, v := range vals {
		if l, ok := cp.lists[v]; ok && !l.used {
			l.used = true
			if depth < 32 {
				cp.markLists(l.items, depth+1)
			}
		}
	}
}
