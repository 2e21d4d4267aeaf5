package rules

import (
	"fmt"
	"strings"
)

// The condition grammar follows libsinsp's filter parser:
//
//	expr   = and { "or" and }
//	and    = not { "and" not }
//	not    = { "not" } check | "not(" expr ")"
//	check  = "(" expr ")" | field cond | transformer cond | identifier (a macro)
//	cond   = "exists" | numop number | strop value | listop list
//	field  = name [ "[" arg "]" ]
//	list   = "(" [ value { "," value } ] ")" | identifier (a list name)
//
// Values are quoted ('…' or "…", backslash escapes) or bare strings.

// node is one element of a parsed condition.
type node interface{ position() int }

type andNode struct {
	pos  int
	kids []node
}

type orNode struct {
	pos  int
	kids []node
}

type notNode struct {
	pos int
	kid node
}

// identNode is a bare identifier: a macro reference.
type identNode struct {
	pos  int
	name string
}

// fieldRef is a field, possibly wrapped in transformers (outermost first).
type fieldRef struct {
	pos          int
	name, arg    string
	hasArg       bool
	transformers []string // tolower, toupper, b64, basename, len, val
}

func (f *fieldRef) String() string {
	s := f.name
	if f.hasArg {
		s += "[" + f.arg + "]"
	}
	for i := len(f.transformers) - 1; i >= 0; i-- {
		s = f.transformers[i] + "(" + s + ")"
	}
	return s
}

// checkNode is a comparison: field op value(s).
type checkNode struct {
	pos   int
	field *fieldRef
	op    string
	// One of: value (single), list (list ops), listName (list op followed
	// by an identifier), rfield (val() or a transformer on the right).
	value    string
	list     []string
	isList   bool
	listName string
	rfield   *fieldRef
}

func (n *andNode) position() int   { return n.pos }
func (n *orNode) position() int    { return n.pos }
func (n *notNode) position() int   { return n.pos }
func (n *identNode) position() int { return n.pos }
func (n *checkNode) position() int { return n.pos }

// syntaxError is a condition syntax error at a byte offset.
type syntaxError struct {
	pos int
	msg string
}

func (e *syntaxError) Error() string { return fmt.Sprintf("column %d: %s", e.pos+1, e.msg) }

// maxDepth bounds the parser's recursion (libsinsp uses 100).
const maxDepth = 100

type parser struct {
	in    string
	pos   int
	depth int
}

// parseCondition parses a whole condition.
func parseCondition(s string) (n node, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, &syntaxError{0, "empty condition"}
	}
	p := &parser{in: s}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*syntaxError)
			if !ok {
				panic(r)
			}
			n, err = nil, se
		}
	}()
	n = p.parseOr()
	p.blank()
	if p.pos != len(p.in) {
		p.fail("unexpected %q, expecting 'and', 'or' or the end of the condition", p.snippet())
	}
	return n, nil
}

func (p *parser) fail(format string, args ...any) {
	panic(&syntaxError{p.pos, fmt.Sprintf(format, args...)})
}

func (p *parser) snippet() string {
	s := p.in[p.pos:]
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return s
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail("condition nested deeper than %d levels", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\b' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func (p *parser) blank() bool {
	start := p.pos
	for p.pos < len(p.in) && isBlank(p.in[p.pos]) {
		p.pos++
	}
	return p.pos > start
}

func (p *parser) lit(s string) bool {
	if strings.HasPrefix(p.in[p.pos:], s) {
		p.pos += len(s)
		return true
	}
	return false
}

// word matches s followed by a blank or "(" (left unconsumed).
func (p *parser) word(s string) bool {
	if !strings.HasPrefix(p.in[p.pos:], s) {
		return false
	}
	e := p.pos + len(s)
	if e < len(p.in) && !isBlank(p.in[e]) && p.in[e] != '(' {
		return false
	}
	p.pos = e
	return true
}

func (p *parser) parseOr() node {
	p.enter()
	defer p.leave()
	p.blank()
	pos := p.pos
	kids := []node{p.parseAnd()}
	p.blank()
	for p.word("or") {
		if !p.blank() {
			if !p.lit("(") {
				p.fail("expected a blank or '(' after 'or'")
			}
			kids = append(kids, p.embedded())
		} else {
			kids = append(kids, p.parseAnd())
		}
		p.blank()
	}
	if len(kids) == 1 {
		return kids[0]
	}
	return &orNode{pos, kids}
}

func (p *parser) parseAnd() node {
	p.enter()
	defer p.leave()
	p.blank()
	pos := p.pos
	kids := []node{p.parseNot()}
	p.blank()
	for p.word("and") {
		if !p.blank() {
			if !p.lit("(") {
				p.fail("expected a blank or '(' after 'and'")
			}
			kids = append(kids, p.embedded())
		} else {
			kids = append(kids, p.parseNot())
		}
		p.blank()
	}
	if len(kids) == 1 {
		return kids[0]
	}
	return &andNode{pos, kids}
}

func (p *parser) parseNot() node {
	p.enter()
	defer p.leave()
	p.blank()
	pos := p.pos
	neg := false
	for {
		if strings.HasPrefix(p.in[p.pos:], "not") && p.pos+3 < len(p.in) && isBlank(p.in[p.pos+3]) {
			p.pos += 3
			p.blank()
			neg = !neg
			continue
		}
		break
	}
	var kid node
	if p.lit("not(") {
		neg = !neg
		kid = p.embedded()
	} else {
		kid = p.parseCheck()
	}
	if neg {
		return &notNode{pos, kid}
	}
	return kid
}

// embedded parses the rest of "( expr )" after the "(".
func (p *parser) embedded() node {
	p.enter()
	defer p.leave()
	p.blank()
	n := p.parseOr()
	p.blank()
	if !p.lit(")") {
		if p.pos >= len(p.in) {
			p.fail("missing ')' at the end of the condition")
		}
		p.fail("expected ')' but found %q", p.snippet())
	}
	return n
}

var transformers = []string{"tolower(", "toupper(", "b64(", "basename(", "len("}

func (p *parser) parseCheck() node {
	p.enter()
	defer p.leave()
	p.blank()
	pos := p.pos
	if p.lit("(") {
		return p.embedded()
	}
	if name, ok := p.fieldName(); ok {
		f := p.fieldRemainder(name, pos)
		return p.condition(f, pos)
	}
	if t, ok := p.transformer(); ok {
		f := p.transformerRemainder(t, pos)
		return p.condition(f, pos)
	}
	if id, ok := p.identifier(); ok {
		return &identNode{pos, id}
	}
	if p.pos >= len(p.in) {
		p.fail("unexpected end of condition, expecting '(', a field check or a macro name")
	}
	p.fail("expected '(', a field check or a macro name but found %q", p.snippet())
	return nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool { return isAlpha(c) || c >= '0' && c <= '9' || c == '_' }

// identifier matches [a-zA-Z]+[a-zA-Z0-9_]*.
func (p *parser) identifier() (string, bool) {
	i := p.pos
	if i >= len(p.in) || !isAlpha(p.in[i]) {
		return "", false
	}
	for i < len(p.in) && isIdent(p.in[i]) {
		i++
	}
	s := p.in[p.pos:i]
	p.pos = i
	return s, true
}

// fieldName matches identifier("." identifier)+ without consuming on failure.
func (p *parser) fieldName() (string, bool) {
	i := p.pos
	parts := 0
	for {
		if i >= len(p.in) || !isAlpha(p.in[i]) {
			break
		}
		for i < len(p.in) && isIdent(p.in[i]) {
			i++
		}
		parts++
		if i+1 < len(p.in) && p.in[i] == '.' && isAlpha(p.in[i+1]) {
			i++
			continue
		}
		break
	}
	if parts < 2 {
		return "", false
	}
	s := p.in[p.pos:i]
	p.pos = i
	return s, true
}

func (p *parser) fieldRemainder(name string, pos int) *fieldRef {
	f := &fieldRef{pos: pos, name: name}
	if p.lit("[") {
		if s, ok := p.quoted(); ok {
			f.arg = s
		} else {
			i := p.pos
			for i < len(p.in) && p.in[i] != '[' && p.in[i] != ']' && p.in[i] != '"' && p.in[i] != '\'' && !isBlank(p.in[i]) {
				i++
			}
			if i == p.pos {
				p.fail("expected a field argument after '['")
			}
			f.arg = p.in[p.pos:i]
			p.pos = i
		}
		f.hasArg = true
		if !p.lit("]") {
			p.fail("expected ']' after the argument of %s", name)
		}
	}
	return f
}

func (p *parser) transformer() (string, bool) {
	for _, t := range transformers {
		if p.lit(t) {
			return t[:len(t)-1], true
		}
	}
	return "", false
}

// transformerRemainder parses "field)" or "transformer(...))" after "t(".
func (p *parser) transformerRemainder(t string, pos int) *fieldRef {
	p.enter()
	defer p.leave()
	p.blank()
	var f *fieldRef
	argPos := p.pos
	if t2, ok := p.transformer(); ok {
		f = p.transformerRemainder(t2, argPos)
	} else if name, ok := p.fieldName(); ok {
		f = p.fieldRemainder(name, argPos)
	} else {
		p.fail("expected a field inside %s()", t)
	}
	p.blank()
	if !p.lit(")") {
		p.fail("expected ')' closing %s()", t)
	}
	f.transformers = append([]string{t}, f.transformers...)
	return f
}

// rightField parses val(field) or a transformer on the right-hand side.
func (p *parser) rightField() *fieldRef {
	pos := p.pos
	if p.lit("val(") {
		p.blank()
		name, ok := p.fieldName()
		if !ok {
			p.fail("expected a field inside val()")
		}
		f := p.fieldRemainder(name, pos)
		p.blank()
		if !p.lit(")") {
			p.fail("expected ')' closing val()")
		}
		return f
	}
	if t, ok := p.transformer(); ok {
		return p.transformerRemainder(t, pos)
	}
	return nil
}

var (
	numOps  = []string{"<=", "<", ">=", ">"}
	strOps  = []string{"==", "=", "!=", "glob", "iglob", "contains", "icontains", "bcontains", "startswith", "bstartswith", "endswith", "regex"}
	listOps = []string{"intersects", "in", "pmatch"}
)

func (p *parser) condition(f *fieldRef, pos int) node {
	p.blank()
	n := &checkNode{pos: pos, field: f}
	if strings.HasPrefix(p.in[p.pos:], "exists") && (p.pos+6 == len(p.in) || !isIdent(p.in[p.pos+6])) {
		p.pos += 6
		n.op = "exists"
		return n
	}
	for _, op := range numOps {
		if p.lit(op) {
			n.op = op
			p.blank()
			if rf := p.rightField(); rf != nil {
				n.rfield = rf
				return n
			}
			v, ok := p.number()
			if !ok {
				p.fail("expected a number after %q", op)
			}
			n.value = v
			return n
		}
	}
	for _, op := range strOps {
		ok := false
		if isAlpha(op[0]) {
			// word operators must be followed by a blank
			if strings.HasPrefix(p.in[p.pos:], op) && p.pos+len(op) < len(p.in) && isBlank(p.in[p.pos+len(op)]) {
				p.pos += len(op)
				ok = true
			}
		} else {
			ok = p.lit(op)
		}
		if !ok {
			continue
		}
		n.op = op
		p.blank()
		if rf := p.rightField(); rf != nil {
			n.rfield = rf
			return n
		}
		v, ok := p.value()
		if !ok {
			if p.pos >= len(p.in) {
				p.fail("expected a value after %q at the end of the condition", op)
			}
			p.fail("expected a value after %q but found %q", op, p.snippet())
		}
		n.value = v
		return n
	}
	for _, op := range listOps {
		if !p.word(op) {
			continue
		}
		n.op = op
		n.isList = true
		p.blank()
		if p.lit("(") {
			p.blank()
			n.list = []string{}
			if v, ok := p.value(); ok {
				n.list = append(n.list, v)
				p.blank()
				for p.lit(",") {
					p.blank()
					v, ok := p.value()
					if !ok {
						p.fail("expected a value after ',' in the list")
					}
					n.list = append(n.list, v)
					p.blank()
				}
			}
			if !p.lit(")") {
				p.fail("expected ',' or ')' in the list but found %q", p.snippet())
			}
			return n
		}
		if rf := p.rightField(); rf != nil {
			n.isList = false
			n.rfield = rf
			return n
		}
		if id, ok := p.identifier(); ok {
			n.listName = id
			return n
		}
		p.fail("expected a list '(…)' or a list name after %q", op)
	}
	if p.pos >= len(p.in) {
		p.fail("missing operator after %s", f)
	}
	p.fail("unknown operator %q after %s", p.word1(), f)
	return nil
}

// word1 is the next run of non-blank characters, for messages.
func (p *parser) word1() string {
	i := p.pos
	for i < len(p.in) && !isBlank(p.in[i]) {
		i++
	}
	return p.in[p.pos:i]
}

// number matches a hex number or [+-]?[0-9]+[.]?[0-9]*([eE][+-][0-9]+)?.
func (p *parser) number() (string, bool) {
	s := p.in[p.pos:]
	i := 0
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		i = 2
		for i < len(s) && isIdent(s[i]) {
			i++
		}
		if i > 2 {
			p.pos += i
			return s[:i], true
		}
		i = 0
	}
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	d := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == d {
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i+2 < len(s) && (s[i] == 'e' || s[i] == 'E') && (s[i+1] == '+' || s[i+1] == '-') && s[i+2] >= '0' && s[i+2] <= '9' {
		i += 2
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	p.pos += i
	return s[:i], true
}

// value is a quoted or a bare string.
func (p *parser) value() (string, bool) {
	if s, ok := p.quoted(); ok {
		return s, true
	}
	i := p.pos
	for i < len(p.in) {
		c := p.in[i]
		if isBlank(c) || c == '(' || c == ')' || c == '"' || c == '\'' || c == '=' || c == ',' {
			break
		}
		i++
	}
	if i == p.pos {
		return "", false
	}
	s := p.in[p.pos:i]
	p.pos = i
	return s, true
}

// quoted reads a '…' or "…" string with libsinsp's escapes.
func (p *parser) quoted() (string, bool) {
	if p.pos >= len(p.in) {
		return "", false
	}
	q := p.in[p.pos]
	if q != '"' && q != '\'' {
		return "", false
	}
	start := p.pos
	var b strings.Builder
	for i := p.pos + 1; i < len(p.in); i++ {
		c := p.in[i]
		if c == q {
			p.pos = i + 1
			return b.String(), true
		}
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(p.in) {
			break
		}
		switch e := p.in[i]; e {
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case '\\', '/', ' ':
			b.WriteByte(e)
		case '"', '\'':
			if e != q {
				p.pos = i - 1
				p.fail("invalid escape \\%c in a %c-quoted string", e, q)
			}
			b.WriteByte(e)
		default:
			p.pos = i - 1
			p.fail("unsupported escape sequence \\%c", e)
		}
	}
	p.pos = start
	p.fail("unterminated quoted string")
	return "", false
}

// parseFieldName parses a lone field reference such as proc.aname[2] or
// tolower(proc.name), as used in exceptions and by Field.
func parseFieldName(s string) (f *fieldRef, err error) {
	p := &parser{in: strings.TrimSpace(s)}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*syntaxError)
			if !ok {
				panic(r)
			}
			f, err = nil, se
		}
	}()
	if t, ok := p.transformer(); ok {
		f = p.transformerRemainder(t, 0)
	} else if name, ok := p.fieldName(); ok {
		f = p.fieldRemainder(name, 0)
	} else {
		p.fail("%q is not a field name", s)
	}
	if p.pos != len(p.in) {
		p.fail("unexpected %q after the field name", p.snippet())
	}
	return f, nil
}
