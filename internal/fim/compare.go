package fim

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Exit codes of vigil fim, as AIDE's: a bitmask of what changed, and
// codes above it for errors.
const (
	ExitAdded    = 1  // entries were added
	ExitRemoved  = 2  // entries were removed
	ExitChanged  = 4  // entries were changed
	ExitError    = 14 // configuration, key, baseline or I/O error: nothing was compared
	ExitTampered = 16 // the baseline's MAC does not verify: it is not trusted
)

// AttrChange is one attribute's value before and after.
type AttrChange struct {
	Attr string `json:"attr"`
	Old  string `json:"old"`
	New  string `json:"new"`
}

// Change is a path whose attributes changed.
type Change struct {
	Path    string       `json:"path"`
	Type    string       `json:"type"`
	Rule    string       `json:"rule"`
	Changes []AttrChange `json:"changes"`
}

// Brief is an added or removed path.
type Brief struct {
	Path string `json:"path"`
	Type string `json:"type"`
	Rule string `json:"rule"`
}

// Summary counts a report.
type Summary struct {
	Entries int `json:"entries"`
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Changed int `json:"changed"`
	Errors  int `json:"errors"`
}

// Report is a scan compared with a baseline.
type Report struct {
	Baseline time.Time   `json:"baseline"`
	Summary  Summary     `json:"summary"`
	Added    []Brief     `json:"added"`
	Removed  []Brief     `json:"removed"`
	Changed  []Change    `json:"changed"`
	Errors   []ScanError `json:"errors"`
}

// ExitCode is the AIDE-style bitmask of the report.
func (r *Report) ExitCode() int {
	c := 0
	if len(r.Added) > 0 {
		c |= ExitAdded
	}
	if len(r.Removed) > 0 {
		c |= ExitRemoved
	}
	if len(r.Changed) > 0 {
		c |= ExitChanged
	}
	return c
}

// Compare compares a scan with a baseline; both hold entries sorted by
// path, as Scan and DecodeBaseline return them. Only attributes recorded in
// both are compared. For a growing file (the growing attribute) that grew,
// the size, later mtime and ctime, and the hashes are not changes when
// the hash of its first old-size bytes equals the old hash.
func Compare(old *Baseline, cur *Result) *Report {
	r := &Report{Baseline: old.Created, Errors: cur.Errors, Added: []Brief{}, Removed: []Brief{}, Changed: []Change{}}
	if r.Errors == nil {
		r.Errors = []ScanError{}
	}
	// Both lists are sorted by path (Scan sorts; DecodeBaseline checks):
	// walk them together.
	i, j := 0, 0
	for i < len(old.Entries) || j < len(cur.Entries) {
		switch {
		case j == len(cur.Entries) || (i < len(old.Entries) && old.Entries[i].Path < cur.Entries[j].Path):
			o := &old.Entries[i]
			r.Removed = append(r.Removed, Brief{Path: o.Path, Type: o.Type, Rule: o.Rule})
			i++
		case i == len(old.Entries) || cur.Entries[j].Path < old.Entries[i].Path:
			n := &cur.Entries[j]
			r.Added = append(r.Added, Brief{Path: n.Path, Type: n.Type, Rule: n.Rule})
			j++
		default:
			o, n := &old.Entries[i], &cur.Entries[j]
			if ch := diffEntry(o, n, cur.prefixes[n.Path]); len(ch) > 0 {
				r.Changed = append(r.Changed, Change{Path: n.Path, Type: n.Type, Rule: n.Rule, Changes: ch})
			}
			i++
			j++
		}
	}
	r.Summary = Summary{Entries: len(cur.Entries), Added: len(r.Added), Removed: len(r.Removed), Changed: len(r.Changed), Errors: len(r.Errors)}
	return r
}

func diffEntry(o, n *Entry, pre prefixHashes) []AttrChange {
	a := o.Attrs & n.Attrs
	var ch []AttrChange
	add := func(attr Attr, ov, nv string) {
		ch = append(ch, AttrChange{Attr: AttrNames[attr], Old: ov, New: nv})
	}
	grew := a&AttrGrowing != 0 && n.Size > o.Size && o.Type == "file" && n.Type == "file"
	if a&AttrFtype != 0 && o.Type != n.Type {
		add(AttrFtype, o.Type, n.Type)
	}
	if a&AttrPerm != 0 && o.Perm != n.Perm {
		add(AttrPerm, modeString(o.Type, o.Perm), modeString(n.Type, n.Perm))
	}
	if a&AttrUID != 0 && o.UID != n.UID {
		add(AttrUID, strconv.FormatUint(uint64(o.UID), 10), strconv.FormatUint(uint64(n.UID), 10))
	}
	if a&AttrGID != 0 && o.GID != n.GID {
		add(AttrGID, strconv.FormatUint(uint64(o.GID), 10), strconv.FormatUint(uint64(n.GID), 10))
	}
	if a&(AttrSize|AttrGrowing) != 0 && o.Size != n.Size && !grew {
		add(AttrSize, strconv.FormatInt(o.Size, 10), strconv.FormatInt(n.Size, 10))
	}
	if a&AttrMtime != 0 && o.Mtime != n.Mtime && !(grew && n.Mtime > o.Mtime) {
		add(AttrMtime, fmtTime(o.Mtime), fmtTime(n.Mtime))
	}
	if a&AttrCtime != 0 && o.Ctime != n.Ctime && !(grew && n.Ctime > o.Ctime) {
		add(AttrCtime, fmtTime(o.Ctime), fmtTime(n.Ctime))
	}
	if a&AttrInode != 0 && o.Inode != n.Inode {
		add(AttrInode, strconv.FormatUint(o.Inode, 10), strconv.FormatUint(n.Inode, 10))
	}
	if a&AttrNlink != 0 && o.Nlink != n.Nlink {
		add(AttrNlink, strconv.FormatUint(o.Nlink, 10), strconv.FormatUint(n.Nlink, 10))
	}
	if a&AttrLink != 0 && o.Link != n.Link {
		add(AttrLink, o.Link, n.Link)
	}
	hashes := []struct {
		attr        Attr
		ov, nv, npf []byte
	}{{AttrSHA256, o.SHA256, n.SHA256, pre.sha256}, {AttrSHA512, o.SHA512, n.SHA512, pre.sha512}}
	for _, h := range hashes {
		if a&h.attr == 0 {
			continue
		}
		if h.nv == nil && n.Type == "file" && n.Err != "" {
			continue // could not be read now: reported as an error
		}
		if h.ov == nil && o.Type == "file" && o.Err != "" {
			continue // could not be read then
		}
		if grew && h.npf != nil && bytes.Equal(h.ov, h.npf) {
			continue
		}
		if !bytes.Equal(h.ov, h.nv) {
			add(h.attr, fmtHash(h.ov), fmtHash(h.nv))
		}
	}
	if a&AttrXattrs != 0 {
		if ov, nv := fmtXattrs(o.Xattrs), fmtXattrs(n.Xattrs); ov != nv {
			add(AttrXattrs, ov, nv)
		}
	}
	if a&AttrACL != 0 && o.ACL != n.ACL {
		add(AttrACL, o.ACL, n.ACL)
	}
	if a&AttrCaps != 0 && o.Caps != n.Caps {
		add(AttrCaps, o.Caps, n.Caps)
	}
	return ch
}

func fmtTime(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func fmtHash(h []byte) string {
	if h == nil {
		return ""
	}
	return hex.EncodeToString(h)
}

func fmtXattrs(m map[string][]byte) string {
	if len(m) == 0 {
		return ""
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		parts = append(parts, k+"="+fmtValue(m[k]))
	}
	return strings.Join(parts, ",")
}

// fmtValue renders printable values as quoted text and others as 0x hex.
func fmtValue(v []byte) string {
	v = bytes.TrimSuffix(v, []byte{0})
	for _, c := range v {
		if c < 0x20 || c > 0x7e {
			return "0x" + hex.EncodeToString(v)
		}
	}
	return strconv.Quote(string(v))
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people: a summary line, then the
// added, removed and changed paths, each change with its before and
// after, then the paths that could not be read.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	s := r.Summary
	fmt.Fprintf(tw, "%d added, %d removed, %d changed, %d unreadable (%d entries; baseline of %s)\n",
		s.Added, s.Removed, s.Changed, s.Errors, s.Entries, r.Baseline.UTC().Format(time.RFC3339))
	if len(r.Added) > 0 {
		fmt.Fprintln(tw, "\nADDED\tTYPE\tRULE")
		for _, b := range r.Added {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Path, b.Type, b.Rule)
		}
	}
	if len(r.Removed) > 0 {
		fmt.Fprintln(tw, "\nREMOVED\tTYPE\tRULE")
		for _, b := range r.Removed {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", b.Path, b.Type, b.Rule)
		}
	}
	if len(r.Changed) > 0 {
		fmt.Fprintln(tw, "\nCHANGED\tATTRIBUTE\tBEFORE\tAFTER")
		for _, c := range r.Changed {
			for i, a := range c.Changes {
				p := ""
				if i == 0 {
					p = c.Path
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p, a.Attr, orNone(a.Old), orNone(a.New))
			}
		}
	}
	if len(r.Errors) > 0 {
		fmt.Fprintln(tw, "\nUNREADABLE\tERROR")
		for _, e := range r.Errors {
			fmt.Fprintf(tw, "%s\t%s\n", e.Path, e.Err)
		}
	}
	return tw.Flush()
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
