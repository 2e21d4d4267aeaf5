package fim

import (
	"fmt"
	"math/bits"
	"sort"
	"strings"
)

// Attr is a set of file attributes a rule records and compares.
type Attr uint32

// The attributes. Their names (AttrNames) are the ones the configuration
// uses; AIDE's one-letter names are accepted too (see attrAliases).
const (
	AttrPerm    Attr = 1 << iota // "perm" (AIDE p): permission bits, set-id and sticky bits
	AttrFtype                    // "ftype": file type (file, dir, symlink, ...)
	AttrInode                    // "inode" (i)
	AttrNlink                    // "nlink" (n): hard link count
	AttrUID                      // "uid" (u)
	AttrGID                      // "gid" (g)
	AttrSize                     // "size" (s)
	AttrMtime                    // "mtime" (m)
	AttrCtime                    // "ctime" (c)
	AttrLink                     // "link" (l): symlink target
	AttrSHA256                   // "sha256": content hash of regular files
	AttrSHA512                   // "sha512"
	AttrXattrs                   // "xattrs": extended attributes other than ACLs and capabilities
	AttrACL                      // "acl": POSIX ACLs (system.posix_acl_access/default), as text
	AttrCaps                     // "caps": file capabilities (security.capability), as text
	AttrGrowing                  // "growing" (AIDE S, >): a file that may only grow
	attrEnd
)

// AttrNames are the attribute names in the order reports list them.
var AttrNames = map[Attr]string{
	AttrPerm: "perm", AttrFtype: "ftype", AttrInode: "inode", AttrNlink: "nlink",
	AttrUID: "uid", AttrGID: "gid", AttrSize: "size", AttrMtime: "mtime", AttrCtime: "ctime",
	AttrLink: "link", AttrSHA256: "sha256", AttrSHA512: "sha512", AttrXattrs: "xattrs",
	AttrACL: "acl", AttrCaps: "caps", AttrGrowing: "growing",
}

// attrAliases are other names of single attributes: AIDE's letters and
// spellings found in the wild.
var attrAliases = map[string]Attr{
	"p": AttrPerm, "mode": AttrPerm, "i": AttrInode, "n": AttrNlink, "linkcount": AttrNlink,
	"u": AttrUID, "g": AttrGID, "s": AttrSize, "m": AttrMtime, "c": AttrCtime,
	"l": AttrLink, "symlink": AttrLink, "type": AttrFtype, "S": AttrGrowing,
	"selinux": AttrXattrs, // security.selinux is an xattr here
}

// AttrHashes are the content hash attributes.
const AttrHashes = AttrSHA256 | AttrSHA512

// DefaultGroups are the named groups every configuration starts with,
// modelled on AIDE's (which use md5 where these use sha256, and include
// selinux and e2fsattrs, recorded here as xattrs or not at all).
var DefaultGroups = map[string]Attr{
	"X":       AttrACL | AttrXattrs | AttrCaps,
	"R":       AttrPerm | AttrFtype | AttrInode | AttrLink | AttrNlink | AttrUID | AttrGID | AttrSize | AttrMtime | AttrCtime | AttrSHA256 | AttrACL | AttrXattrs | AttrCaps,
	"L":       AttrPerm | AttrFtype | AttrInode | AttrLink | AttrNlink | AttrUID | AttrGID | AttrACL | AttrXattrs | AttrCaps,
	">":       AttrPerm | AttrFtype | AttrLink | AttrUID | AttrGID | AttrInode | AttrNlink | AttrSize | AttrGrowing | AttrACL | AttrXattrs | AttrCaps,
	"H":       AttrSHA256 | AttrSHA512,
	"E":       0,
	"NORMAL":  AttrPerm | AttrFtype | AttrInode | AttrLink | AttrNlink | AttrUID | AttrGID | AttrSize | AttrMtime | AttrCtime | AttrSHA256 | AttrACL | AttrXattrs | AttrCaps,
	"PERMS":   AttrPerm | AttrFtype | AttrUID | AttrGID | AttrACL | AttrXattrs | AttrCaps,
	"CONTENT": AttrFtype | AttrSHA256,
	"LOG":     AttrPerm | AttrFtype | AttrUID | AttrGID | AttrInode | AttrLink | AttrSize | AttrGrowing,
}

// String is the attribute set as names joined by '+'.
func (a Attr) String() string {
	if a == 0 {
		return "E"
	}
	var names []string
	for b := Attr(1); b < attrEnd; b <<= 1 {
		if a&b != 0 {
			names = append(names, AttrNames[b])
		}
	}
	return strings.Join(names, "+")
}

// Names are the attribute names of the set.
func (a Attr) Names() []string {
	names := make([]string, 0, bits.OnesCount32(uint32(a)))
	for b := Attr(1); b < attrEnd; b <<= 1 {
		if a&b != 0 {
			names = append(names, AttrNames[b])
		}
	}
	return names
}

// UnknownAttrError is an attribute or group name no one defined.
type UnknownAttrError struct {
	Name string // the unknown name
	Expr string // the expression it appeared in
}

func (e *UnknownAttrError) Error() string {
	return fmt.Sprintf("unknown attribute %q in %q (known: %s, groups %s)", e.Name, e.Expr, strings.Join(knownAttrNames(), " "), strings.Join(groupNames(DefaultGroups), " "))
}

func knownAttrNames() []string {
	var names []string
	for b := Attr(1); b < attrEnd; b <<= 1 {
		names = append(names, AttrNames[b])
	}
	return names
}

func groupNames(g map[string]Attr) []string {
	names := make([]string, 0, len(g))
	for n := range g {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// lookupAttr resolves one name: a group, an attribute or an alias.
func lookupAttr(name string, groups map[string]Attr) (Attr, bool) {
	if a, ok := groups[name]; ok {
		return a, true
	}
	if a, ok := DefaultGroups[name]; ok {
		return a, true
	}
	for b, n := range AttrNames {
		if n == name {
			return b, true
		}
	}
	a, ok := attrAliases[name]
	return a, ok
}

// ParseAttrs parses an attribute expression such as "NORMAL-mtime+sha512"
// or "p+u+g+sha256": names of attributes or groups joined by '+' (add) and
// '-' (remove), evaluated left to right. groups (may be nil) are the
// configuration's own groups; DefaultGroups are always known. The group
// name ">" must stand alone or first.
func ParseAttrs(expr string, groups map[string]Attr) (Attr, error) {
	s := strings.TrimSpace(expr)
	if s == "" {
		return 0, fmt.Errorf("empty attribute expression")
	}
	var set Attr
	op := byte('+')
	if strings.HasPrefix(s, ">") {
		set = DefaultGroups[">"]
		s = s[1:]
		if s == "" {
			return set, nil
		}
		if s[0] != '+' && s[0] != '-' {
			return 0, &UnknownAttrError{Name: ">" + s, Expr: expr}
		}
	}
	for s != "" {
		if s[0] == '+' || s[0] == '-' {
			op = s[0]
			s = s[1:]
			continue
		}
		end := strings.IndexAny(s, "+-")
		if end < 0 {
			end = len(s)
		}
		name := strings.TrimSpace(s[:end])
		s = s[end:]
		a, ok := lookupAttr(name, groups)
		if !ok {
			return 0, &UnknownAttrError{Name: name, Expr: expr}
		}
		if op == '+' {
			set |= a
		} else {
			set &^= a
		}
	}
	return set, nil
}
