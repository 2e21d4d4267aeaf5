package vex

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-cwpp/vigil/internal/vulnmatch"
)

// Ignore is one entry of an ignore file.
type Ignore struct {
	// ID is an advisory ID, CVE or alias.
	ID string `json:"id"`
	// Package optionally narrows the entry to one package: its name (or
	// the name it was matched under, such as a Debian source package), or
	// a purl or purl prefix ("pkg:npm/lodash", "pkg:deb/debian/openssl@3.0.11-1~deb12u2").
	Package string `json:"package,omitempty"`
	Reason  string `json:"reason,omitempty"`
	// Expires is the start (00:00 UTC) of the day the entry stops applying;
	// zero means never.
	Expires time.Time `json:"expires,omitzero"`
	// Source is where the entry was read, as "file:line".
	Source string `json:"source,omitempty"`
}

// dateLayout is how ignore files write expiry dates.
const dateLayout = "2006-01-02"

// maxIgnoreFileSize bounds what LoadIgnoreFile reads.
const maxIgnoreFileSize = 16 << 20

func (ig *Ignore) expired(now time.Time) bool {
	return !ig.Expires.IsZero() && !now.Before(ig.Expires)
}

// matches reports whether the entry names fd's advisory and, when it is
// scoped to a package, fd's package.
func (ig *Ignore) matches(fd *vulnmatch.Finding, c purlCache) bool {
	if !idMatches(ig.ID, fd) {
		return false
	}
	p := strings.TrimSpace(ig.Package)
	if p == "" || p == fd.Package.Name || p == fd.MatchedName {
		return true
	}
	if !strings.HasPrefix(p, "pkg:") {
		return false
	}
	purl := fd.Package.PackageURL()
	return purlHasPrefix(purl, p) || c.matches(p, &fd.Package)
}

// purlHasPrefix reports whether prefix is purl or a prefix of it that ends
// at a component boundary, so that "pkg:npm/lodash" covers
// "pkg:npm/lodash@4.17.21" but not "pkg:npm/lodash-es@4.17.21".
func purlHasPrefix(purl, prefix string) bool {
	if !strings.HasPrefix(purl, prefix) {
		return false
	}
	if len(purl) == len(prefix) || strings.ContainsAny(prefix[len(prefix)-1:], "/@?&#") {
		return true
	}
	return strings.ContainsAny(purl[len(prefix):len(prefix)+1], "/@?&#")
}

func (ig *Ignore) reason() string {
	var b strings.Builder
	b.WriteString("ignored by ")
	if ig.Source != "" {
		b.WriteString(ig.Source)
	} else {
		b.WriteString("ignore entry " + ig.ID)
	}
	if r := strings.TrimSpace(ig.Reason); r != "" {
		b.WriteString(" (" + r + ")")
	}
	if !ig.Expires.IsZero() {
		b.WriteString(" until " + ig.Expires.UTC().Format(dateLayout))
	}
	return b.String()
}

// LoadIgnoreFile reads an ignore file in one of two forms.
//
// Vigil's YAML form has a top-level "ignores" list:
//
//	ignores:
//	  - id: CVE-2024-0727
//	    package: libssl3          # optional: name, purl or purl prefix
//	    reason: not reachable from our code
//	    expires: 2027-01-01       # optional
//
// Trivy's .trivyignore form has one ID a line, "#" comments, and an
// optional "exp:YYYY-MM-DD" after the ID:
//
//	# accepted until the base image is rebuilt
//	CVE-2024-0727 exp:2027-01-01
//
// Unknown fields and tokens are errors rather than being skipped, so that
// a typo cannot turn an expiring entry into a permanent one. Errors name
// the file and line.
func LoadIgnoreFile(path string) ([]Ignore, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read ignore file: %w", err)
	}
	defer f.Close()
	return parseIgnores(io.LimitReader(f, maxIgnoreFileSize+1), path)
}

// yamlKeyLine is the first significant line of a YAML mapping: "key:".
var yamlKeyLine = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*:(\s|$)`)

// parseIgnores parses an ignore file read from r; name is used in Source
// and in errors.
func parseIgnores(r io.Reader, name string) ([]Ignore, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read ignore file %s: %w", name, err)
	}
	if len(data) > maxIgnoreFileSize {
		return nil, fmt.Errorf("ignore file %s: larger than %d bytes", name, maxIgnoreFileSize)
	}
	if isYAMLIgnoreFile(data) {
		return parseYAMLIgnores(data, name)
	}
	return parseTrivyIgnores(data, name)
}

// isYAMLIgnoreFile reports whether the first line that is not blank or a
// comment starts a YAML document or mapping.
func isYAMLIgnoreFile(data []byte) bool {
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		return s == "---" || strings.HasPrefix(s, "%YAML") || strings.HasPrefix(s, "{") || yamlKeyLine.MatchString(s)
	}
	return false
}

func parseTrivyIgnores(data []byte, name string) ([]Ignore, error) {
	var out []Ignore
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), maxIgnoreFileSize)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		ig := Ignore{ID: fields[0], Source: fmt.Sprintf("%s:%d", name, n)}
		for _, tok := range fields[1:] {
			if strings.HasPrefix(tok, "#") {
				break // the rest of the line is a comment
			}
			date, ok := strings.CutPrefix(tok, "exp:")
			if !ok {
				return nil, fmt.Errorf("ignore file %s:%d: unknown token %q after %s (want exp:YYYY-MM-DD or a # comment)", name, n, tok, ig.ID)
			}
			if !ig.Expires.IsZero() {
				return nil, fmt.Errorf("ignore file %s:%d: more than one exp: for %s", name, n, ig.ID)
			}
			t, err := parseDate(date)
			if err != nil {
				return nil, fmt.Errorf("ignore file %s:%d: %w", name, n, err)
			}
			ig.Expires = t
		}
		if err := checkID(ig.ID); err != nil {
			return nil, fmt.Errorf("ignore file %s:%d: %w", name, n, err)
		}
		out = append(out, ig)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("ignore file %s: %w", name, err)
	}
	return out, nil
}

func parseYAMLIgnores(data []byte, name string) ([]Ignore, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, fmt.Errorf("ignore file %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("ignore file %s: more than one YAML document", name)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if isNull(root) {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("ignore file %s:%d: want a mapping with an \"ignores\" list", name, root.Line)
	}
	var list *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "ignores" {
			return nil, fmt.Errorf("ignore file %s:%d: unknown field %q (want \"ignores\")", name, k.Line, k.Value)
		}
		list = v
	}
	if list == nil || isNull(list) {
		return nil, nil
	}
	if list.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("ignore file %s:%d: \"ignores\" must be a list", name, list.Line)
	}
	var out []Ignore
	for _, item := range list.Content {
		ig, err := yamlIgnore(item, name)
		if err != nil {
			return nil, err
		}
		out = append(out, ig)
	}
	return out, nil
}

// yamlIgnore converts one item of the "ignores" list.
func yamlIgnore(item *yaml.Node, name string) (Ignore, error) {
	ig := Ignore{Source: fmt.Sprintf("%s:%d", name, item.Line)}
	if item.Kind != yaml.MappingNode {
		return ig, fmt.Errorf("ignore file %s:%d: an ignore entry must be a mapping with id, package, reason, expires", name, item.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(item.Content); i += 2 {
		k, v := item.Content[i], item.Content[i+1]
		if seen[k.Value] {
			return ig, fmt.Errorf("ignore file %s:%d: duplicate field %q", name, k.Line, k.Value)
		}
		seen[k.Value] = true
		if v.Kind != yaml.ScalarNode {
			return ig, fmt.Errorf("ignore file %s:%d: %q must be a single value", name, v.Line, k.Value)
		}
		switch k.Value {
		case "id":
			ig.ID = strings.TrimSpace(v.Value)
		case "package":
			ig.Package = strings.TrimSpace(v.Value)
		case "reason":
			ig.Reason = strings.TrimSpace(v.Value)
		case "expires":
			t, err := parseDate(strings.TrimSpace(v.Value))
			if err != nil {
				return ig, fmt.Errorf("ignore file %s:%d: %w", name, v.Line, err)
			}
			ig.Expires = t
		default:
			return ig, fmt.Errorf("ignore file %s:%d: unknown field %q (want id, package, reason, expires)", name, k.Line, k.Value)
		}
	}
	if err := checkID(ig.ID); err != nil {
		return ig, fmt.Errorf("ignore file %s:%d: %w", name, item.Line, err)
	}
	return ig, nil
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func parseDate(s string) (time.Time, error) {
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("expiry date %q is not YYYY-MM-DD", s)
	}
	return t, nil
}

// checkID rejects IDs that cannot name an advisory.
func checkID(id string) error {
	switch {
	case id == "":
		return errors.New("missing id")
	case strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("id %q contains spaces or control characters", id)
	}
	return nil
}
