package profile

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// siblingLimit is how many distinct entries a directory may have in a
// profile's write list before they are replaced by "dir/**".
const siblingLimit = 8

// writeSet is a set of write patterns in lookup form.
type writeSet struct {
	all      map[string]struct{} // every pattern as written
	exact    map[string]struct{} // literal paths
	prefixes map[string]struct{} // literal directories of "dir/**" ("" for "/**")
	globs    []string            // path.Match patterns
	globDirs []globDir           // pattern directories of "dir/**"
}

type globDir struct {
	dir   string
	depth int // number of '/' in dir
}

func newWriteSet() writeSet {
	return writeSet{all: map[string]struct{}{}, exact: map[string]struct{}{}, prefixes: map[string]struct{}{}}
}

func (w *writeSet) len() int { return len(w.all) }

func (w *writeSet) list() []string {
	out := make([]string, 0, len(w.all))
	for p := range w.all {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

func hasMeta(s string) bool { return strings.ContainsAny(s, `*?[\`) }

// add inserts a valid pattern.
func (w *writeSet) add(pat string) {
	if _, ok := w.all[pat]; ok {
		return
	}
	w.all[pat] = struct{}{}
	switch {
	case strings.HasSuffix(pat, "/**"):
		dir := pat[:len(pat)-3]
		if hasMeta(dir) {
			w.globDirs = append(w.globDirs, globDir{dir, strings.Count(dir, "/")})
		} else {
			w.prefixes[dir] = struct{}{}
		}
	case hasMeta(pat):
		w.globs = append(w.globs, pat)
	default:
		w.exact[pat] = struct{}{}
	}
}

func (w *writeSet) remove(pat string) {
	if _, ok := w.all[pat]; !ok {
		return
	}
	delete(w.all, pat)
	switch {
	case strings.HasSuffix(pat, "/**"):
		dir := pat[:len(pat)-3]
		delete(w.prefixes, dir)
		w.globDirs = slices.DeleteFunc(w.globDirs, func(g globDir) bool { return g.dir == dir })
	case hasMeta(pat):
		w.globs = slices.DeleteFunc(w.globs, func(g string) bool { return g == pat })
	default:
		delete(w.exact, pat)
	}
}

// match reports whether the clean absolute path p is covered. It does
// not allocate.
func (w *writeSet) match(p string) bool {
	if _, ok := w.exact[p]; ok {
		return true
	}
	if len(w.prefixes) > 0 {
		for i := 0; i < len(p); i++ {
			if p[i] == '/' {
				if _, ok := w.prefixes[p[:i]]; ok {
					return true
				}
			}
		}
	}
	for _, g := range w.globs {
		if ok, _ := path.Match(g, p); ok {
			return true
		}
	}
	for _, g := range w.globDirs {
		// The ancestor of p with as many components as g.dir.
		n := 0
		for i := 0; i < len(p); i++ {
			if p[i] != '/' {
				continue
			}
			if n == g.depth {
				if ok, _ := path.Match(g.dir, p[:i]); ok {
					return true
				}
				break
			}
			n++
		}
	}
	return false
}

// learn adds the clean absolute path p, generalised: numbered and hashed
// components become "*", and a directory with more than siblingLimit
// entries becomes "dir/**". It returns false when the set already holds
// max patterns and p was not added.
func (w *writeSet) learn(p string, max int) bool {
	q := generalise(p)
	if _, ok := w.all[q]; ok {
		return true
	}
	if w.len() >= max {
		return false
	}
	w.add(q)
	for d := path.Dir(q); d != "/" && d != "."; d = path.Dir(d) {
		if w.children(d) > siblingLimit {
			w.collapse(d)
		}
	}
	return true
}

// children counts the distinct entries directly below dir.
func (w *writeSet) children(dir string) int {
	seen := map[string]struct{}{}
	pre := dir + "/"
	for p := range w.all {
		rest, ok := strings.CutPrefix(p, pre)
		if !ok {
			continue
		}
		c, _, _ := strings.Cut(rest, "/")
		seen[c] = struct{}{}
	}
	return len(seen)
}

// collapse replaces every pattern below dir by "dir/**".
func (w *writeSet) collapse(dir string) {
	pre := dir + "/"
	var below []string
	for p := range w.all {
		if strings.HasPrefix(p, pre) {
			below = append(below, p)
		}
	}
	for _, p := range below {
		w.remove(p)
	}
	w.add(dir + "/**")
}

// generalise turns a path into the pattern that is learned for it.
func generalise(p string) string {
	var b strings.Builder
	b.Grow(len(p))
	for c := range strings.SplitSeq(p[1:], "/") {
		b.WriteByte('/')
		b.WriteString(generaliseComponent(c))
	}
	return b.String()
}

// generaliseComponent replaces what varies between runs by "*": a
// hash-like name or name stem (eight or more hex digits and dashes, at
// least one a digit: IDs, UUIDs), a run of three or more decimal digits
// (PIDs, counters), and digit groups joined by "-", "_", ".", ":" with four
// or more digits in all (dates, times, addresses). Glob metacharacters in
// names are escaped.
func generaliseComponent(c string) string {
	stem, ext, dot := strings.Cut(c, ".")
	if hashLike(stem) {
		if !dot {
			return "*"
		}
		return "*." + generaliseComponent(ext)
	}
	var b strings.Builder
	for i := 0; i < len(c); {
		if j, digits, runs := digitGroup(c, i); digits >= 3 && runs == 1 || digits >= 4 {
			b.WriteByte('*')
			i = j
			continue
		}
		switch c[i] {
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(c[i])
		i++
	}
	return b.String()
}

// digitGroup scans digit runs joined by single separators from i; it
// returns the end, the number of digits and the number of runs.
func digitGroup(s string, i int) (end, digits, runs int) {
	end = i
	for {
		j := i
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		if j == i {
			return end, digits, runs
		}
		digits += j - i
		runs++
		end = j
		if j+1 < len(s) && strings.IndexByte("-_.:", s[j]) >= 0 && s[j+1] >= '0' && s[j+1] <= '9' {
			i = j + 1
			continue
		}
		return end, digits, runs
	}
}

func hashLike(c string) bool {
	if len(c) < 8 {
		return false
	}
	digit := false
	for i := 0; i < len(c); i++ {
		switch ch := c[i]; {
		case ch >= '0' && ch <= '9':
			digit = true
		case ch >= 'a' && ch <= 'f', ch >= 'A' && ch <= 'F', ch == '-':
		default:
			return false
		}
	}
	return digit
}

// checkWrite validates a write pattern from a profile file.
func checkWrite(pat string) error {
	if !strings.HasPrefix(pat, "/") {
		return errors.New("not an absolute path")
	}
	dir, tree := strings.CutSuffix(pat, "/**")
	if tree && dir == "" {
		return nil // "/**": anywhere
	}
	if path.Clean(dir) != dir {
		return fmt.Errorf("not a clean path (want %q)", path.Clean(dir))
	}
	for c := range strings.SplitSeq(dir, "/") {
		if hasDoubleStar(c) {
			return errors.New(`"**" is only allowed as the last component, "dir/**"`)
		}
	}
	if _, err := path.Match(dir, ""); err != nil {
		return fmt.Errorf("bad pattern: %w", err)
	}
	return nil
}

// hasDoubleStar reports two unescaped "*" in a row.
func hasDoubleStar(c string) bool {
	for i := 0; i < len(c); i++ {
		switch c[i] {
		case '\\':
			i++
		case '*':
			if i+1 < len(c) && c[i+1] == '*' {
				return true
			}
		}
	}
	return false
}
