package profile

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxImport bounds the YAML Import reads.
const maxImport = 64 << 20

const header = `# Vigil behaviour profiles. Edit and import again ("vigil profile import"):
# entries can be added or removed; comments are allowed and dropped.
# mode: discover (learn), monitor (alert on deviation), protect (block).
# writes: exact paths, patterns with "*" inside one path component, or
# "dir/**" for anything below dir. outbound host: IP, CIDR, DNS name or
# "*.domain"; port 0 is any port. listen proto: tcp, udp or any.
`

// document is the YAML layout of an export and of a profile file.
type document struct {
	Profiles []Profile `yaml:"profiles"`
}

// Export writes the profiles of the given classes (all when none is given)
// as YAML, ordered by class, every list sorted.
func (s *Store) Export(w io.Writer, class ...string) error {
	var ps []Profile
	if len(class) == 0 {
		ps = s.List()
	} else {
		for _, c := range class {
			p, ok := s.Get(c)
			if !ok {
				return fmt.Errorf("exporting profile %q: %w", c, ErrUnknownClass)
			}
			ps = append(ps, p)
		}
	}
	b, err := encode(ps)
	if err != nil {
		return fmt.Errorf("exporting profiles: %w", err)
	}
	_, err = w.Write(b)
	return err
}

func encode(ps []Profile) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(document{Profiles: ps}); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Import reads profiles as Export writes them (a "profiles:" list, or one
// profile mapping per YAML document) and replaces the store's profiles
// of those classes. Nothing is replaced when any profile is invalid: the
// error names the profile's class (or position) and the field. A
// discover profile without promote_at is promoted Options.Learn after the
// import.
func (s *Store) Import(r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxImport+1))
	if err != nil {
		return fmt.Errorf("importing profiles: %w", err)
	}
	if len(data) > maxImport {
		return fmt.Errorf("importing profiles: more than %d bytes", maxImport)
	}
	ps, err := s.decode(data)
	if err != nil {
		return fmt.Errorf("importing profiles: %w", err)
	}
	now := s.opt.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ps {
		p := &ps[i]
		if p.Since.IsZero() {
			p.Since = now
		}
		if p.Mode == Discover && p.PromoteAt.IsZero() {
			p.PromoteAt = s.promoteAt(now)
		}
		p.Updated = now
		st := fromProfile(p)
		st.dirty = true
		s.classes[p.Class] = st
	}
	return nil
}

// decode parses and validates YAML profiles.
func (s *Store) decode(data []byte) ([]Profile, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []Profile
	seen := map[string]int{}
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		var items []*yaml.Node
		switch {
		case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
			continue
		case root.Kind != yaml.MappingNode:
			return nil, fmt.Errorf("line %d: want a mapping with a profiles list", root.Line)
		case mapValue(root, "profiles") != nil:
			if len(root.Content) != 2 {
				return nil, fmt.Errorf("line %d: only \"profiles\" is allowed at the top", root.Line)
			}
			list := mapValue(root, "profiles")
			if list.Kind == yaml.ScalarNode && list.Tag == "!!null" {
				continue
			}
			if list.Kind != yaml.SequenceNode {
				return nil, fmt.Errorf("line %d: profiles: want a list", list.Line)
			}
			items = list.Content
		default:
			items = []*yaml.Node{root}
		}
		for _, n := range items {
			p, err := s.decodeProfile(n, len(out)+1)
			if err != nil {
				return nil, err
			}
			if line, dup := seen[p.Class]; dup {
				return nil, fmt.Errorf("profile %q (line %d): class already defined at line %d", p.Class, n.Line, line)
			}
			seen[p.Class] = n.Line
			out = append(out, p)
		}
	}
	return out, nil
}

func mapValue(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

func (s *Store) decodeProfile(n *yaml.Node, pos int) (Profile, error) {
	name := fmt.Sprintf("profile #%d (line %d)", pos, n.Line)
	if c := mapValue(n, "class"); c != nil && c.Kind == yaml.ScalarNode && c.Value != "" {
		name = fmt.Sprintf("profile %q (line %d)", c.Value, n.Line)
	}
	if err := checkKeys(n, reflect.TypeFor[Profile](), ""); err != nil {
		return Profile{}, fmt.Errorf("%s: %w", name, err)
	}
	var p Profile
	if err := n.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("%s: %w", name, err)
	}
	if err := s.validate(&p); err != nil {
		return Profile{}, fmt.Errorf("%s: %w", name, err)
	}
	return p, nil
}

// checkKeys rejects mapping keys that are not fields of t (a typo such as
// "exectuables" would otherwise drop a list silently).
func checkKeys(n *yaml.Node, t reflect.Type, field string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode && t.PkgPath() != "time":
		fields := map[string]reflect.Type{}
		for f := range t.Fields() {
			tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			ft, ok := fields[k.Value]
			name := k.Value
			if field != "" {
				name = field + "." + k.Value
			}
			if !ok {
				return fmt.Errorf("line %d: unknown field %q", k.Line, name)
			}
			if err := checkKeys(n.Content[i+1], ft, name); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, c := range n.Content {
			if err := checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", field, i)); err != nil {
				return err
			}
		}
	}
	return nil
}

var knownLists = []string{"executables", "listen", "outbound", "pairs", "writes"}

// validate checks p field by field and normalises it (sorted, lower-case
// hashes and names).
func (s *Store) validate(p *Profile) error {
	max := s.opt.MaxItems
	if err := checkClass(p.Class); err != nil {
		return fmt.Errorf("class: %w", err)
	}
	if !p.Mode.Valid() {
		return fmt.Errorf("mode: %q is not discover, monitor or protect", p.Mode)
	}
	for name, n := range map[string]int{"executables": len(p.Executables), "pairs": len(p.Pairs),
		"listen": len(p.Listen), "outbound": len(p.Outbound), "writes": len(p.Writes)} {
		if n > max {
			return fmt.Errorf("%s: %d entries, more than the limit of %d", name, n, max)
		}
	}
	for i := range p.Executables {
		e := &p.Executables[i]
		// Not necessarily absolute: the kernel reports the name execve was
		// given ("./run.sh").
		if e.Path == "" {
			return fmt.Errorf("executables[%d].path: empty", i)
		}
		e.SHA256 = strings.ToLower(e.SHA256)
		if e.SHA256 != "" && !isSHA256(e.SHA256) {
			return fmt.Errorf("executables[%d].sha256: %q is not 64 hex digits", i, e.SHA256)
		}
	}
	for i, pr := range p.Pairs {
		if pr.Parent == "" || pr.Child == "" {
			return fmt.Errorf("pairs[%d]: parent and child are both required", i)
		}
	}
	for i, pt := range p.Listen {
		if pt.Proto != "tcp" && pt.Proto != "udp" && pt.Proto != "any" {
			return fmt.Errorf("listen[%d].proto: %q is not tcp, udp or any", i, pt.Proto)
		}
		if pt.Port < 1 || pt.Port > 65535 {
			return fmt.Errorf("listen[%d].port: %d is not a port (1-65535)", i, pt.Port)
		}
	}
	for i := range p.Outbound {
		d := &p.Outbound[i]
		if d.Port < 0 || d.Port > 65535 {
			return fmt.Errorf("outbound[%d].port: %d is not a port (0 for any, 1-65535)", i, d.Port)
		}
		h, err := checkHost(d.Host)
		if err != nil {
			return fmt.Errorf("outbound[%d].host: %q: %w", i, d.Host, err)
		}
		d.Host = h
	}
	for i, w := range p.Writes {
		if err := checkWrite(w); err != nil {
			return fmt.Errorf("writes[%d]: %q: %w", i, w, err)
		}
	}
	for i, t := range p.Truncated {
		if !slices.Contains(knownLists, t) {
			return fmt.Errorf("truncated[%d]: %q is not one of %s", i, t, strings.Join(knownLists, ", "))
		}
	}
	return nil
}

func isSHA256(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// checkHost validates an outbound host and returns its canonical form.
func checkHost(h string) (string, error) {
	if h == "" {
		return "", errors.New("empty")
	}
	if a, err := netip.ParseAddr(h); err == nil {
		if a.Zone() != "" {
			return "", errors.New("an address with a zone")
		}
		return a.Unmap().String(), nil
	}
	if p, err := netip.ParsePrefix(h); err == nil {
		return p.Masked().String(), nil
	}
	if strings.Contains(h, "/") {
		return "", errors.New("not an IP address, CIDR prefix or DNS name")
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	name, _ := strings.CutPrefix(h, "*.")
	if len(name) == 0 || len(name) > 253 {
		return "", errors.New("not a DNS name")
	}
	for l := range strings.SplitSeq(name, ".") {
		if l == "" || len(l) > 63 {
			return "", errors.New("not a DNS name (empty or long label)")
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return "", fmt.Errorf("not a DNS name (character %q)", c)
			}
		}
	}
	return h, nil
}

// fileName is the file a class is saved in: every byte outside
// [A-Za-z0-9._:-] escaped as %XX, so no class can name a path outside Dir.
// A name that would be long is cut and ends with a hash of the class.
func fileName(class string) string {
	var b strings.Builder
	for i := 0; i < len(class); i++ {
		c := class[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	name := b.String()
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(class))
		name = name[:160] + "~" + hex.EncodeToString(sum[:8])
	}
	return name + ".yaml"
}

// Save writes every profile changed since the last Save to Dir, each to a
// temporary file renamed over the old one. Without Dir it does nothing.
func (s *Store) Save() error {
	if s.opt.Dir == "" {
		return nil
	}
	type job struct {
		st *state
		p  Profile
	}
	var jobs []job
	now := s.opt.Now()
	s.mu.Lock()
	for _, st := range s.classes {
		st.promoteDue(now)
		if st.dirty {
			jobs = append(jobs, job{st, st.profile()})
			st.dirty = false
		}
	}
	s.mu.Unlock()
	if len(jobs) == 0 {
		return nil
	}
	redo := func(j job) {
		s.mu.Lock()
		j.st.dirty = true
		s.mu.Unlock()
	}
	if err := os.MkdirAll(s.opt.Dir, 0o700); err != nil {
		for _, j := range jobs {
			redo(j)
		}
		return fmt.Errorf("saving profiles: %w", err)
	}
	var errs []error
	for _, j := range jobs {
		if err := s.write(j.p); err != nil {
			errs = append(errs, err)
			redo(j)
		}
	}
	return errors.Join(errs...)
}

func (s *Store) write(p Profile) error {
	b, err := encode([]Profile{p})
	if err != nil {
		return fmt.Errorf("saving profile %q: %w", p.Class, err)
	}
	dst := filepath.Join(s.opt.Dir, fileName(p.Class))
	f, err := os.CreateTemp(s.opt.Dir, ".profile-*.tmp")
	if err != nil {
		return fmt.Errorf("saving profile %q: %w", p.Class, err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(fileMode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("saving profile %q to %s: %w", p.Class, dst, err)
	}
	return nil
}

// load reads every *.yaml file in Dir. A missing Dir is empty.
func (s *Store) load() error {
	ents, err := os.ReadDir(s.opt.Dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("loading profiles: %w", err)
	}
	for _, ent := range ents {
		name := ent.Name()
		if strings.HasPrefix(name, ".") || !strings.HasSuffix(name, ".yaml") || !ent.Type().IsRegular() {
			continue
		}
		file := filepath.Join(s.opt.Dir, name)
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("loading profiles: %w", err)
		}
		ps, err := s.decode(b)
		if err != nil {
			return fmt.Errorf("loading profile file %s: %w", file, err)
		}
		for i := range ps {
			s.classes[ps[i].Class] = fromProfile(&ps[i])
		}
	}
	return nil
}

// maxClassLen bounds a class name.
const maxClassLen = 512

func checkClass(c string) error {
	switch {
	case c == "":
		return errors.New("empty")
	case len(c) > maxClassLen:
		return fmt.Errorf("longer than %d bytes", maxClassLen)
	case strings.ContainsFunc(c, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return errors.New("contains control characters")
	}
	return nil
}
