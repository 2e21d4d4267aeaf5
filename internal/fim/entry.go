package fim

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is what a scan records of one path: the attributes its rule
// selects (Attrs), the others left zero.
type Entry struct {
	Path   string
	Rule   string // name of the rule that selected it
	Attrs  Attr   // attributes recorded
	Type   string // file, dir, symlink, char, block, fifo, socket
	Perm   uint32 // permission, set-id and sticky bits
	UID    uint32
	GID    uint32
	Size   int64
	Mtime  int64 // nanoseconds since the epoch
	Ctime  int64
	Inode  uint64
	Nlink  uint64
	Link   string // symlink target
	SHA256 []byte
	SHA512 []byte
	Xattrs map[string][]byte // other than ACLs and capabilities
	ACL    string            // access ACL, then "default:" entries, as text
	Caps   string            // as getcap prints them, e.g. cap_net_raw=ep
	Err    string            // what could not be read (the hash, xattrs)
}

func fileType(m uint32) string {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return "file"
	case unix.S_IFDIR:
		return "dir"
	case unix.S_IFLNK:
		return "symlink"
	case unix.S_IFCHR:
		return "char"
	case unix.S_IFBLK:
		return "block"
	case unix.S_IFIFO:
		return "fifo"
	case unix.S_IFSOCK:
		return "socket"
	}
	return "unknown"
}

// fillStat sets the stat attributes of e selected by e.Attrs.
func (e *Entry) fillStat(st *unix.Stat_t) {
	a := e.Attrs
	e.Type = fileType(st.Mode)
	if a&AttrPerm != 0 {
		e.Perm = st.Mode & 07777
	}
	if a&AttrUID != 0 {
		e.UID = st.Uid
	}
	if a&AttrGID != 0 {
		e.GID = st.Gid
	}
	if a&(AttrSize|AttrGrowing) != 0 {
		e.Size = st.Size
	}
	if a&AttrMtime != 0 {
		e.Mtime = st.Mtim.Nano()
	}
	if a&AttrCtime != 0 {
		e.Ctime = st.Ctim.Nano()
	}
	if a&AttrInode != 0 {
		e.Inode = st.Ino
	}
	if a&AttrNlink != 0 {
		e.Nlink = uint64(st.Nlink)
	}
}

const (
	xattrACLAccess  = "system.posix_acl_access"
	xattrACLDefault = "system.posix_acl_default"
	xattrCaps       = "security.capability"
)

// readXattrs reads the extended attributes of p (not following symlinks)
// into e as its attributes select.
func (e *Entry) readXattrs(p string, buf []byte) error {
	if e.Attrs&(AttrXattrs|AttrACL|AttrCaps) == 0 {
		return nil
	}
	n, err := unix.Llistxattr(p, buf)
	if err == unix.ERANGE {
		sz, err2 := unix.Llistxattr(p, nil)
		if err2 != nil {
			return err2
		}
		buf = make([]byte, sz+64)
		n, err = unix.Llistxattr(p, buf)
	}
	if err != nil {
		if err == unix.ENOTSUP {
			return nil
		}
		return fmt.Errorf("listing xattrs: %w", err)
	}
	var acl, dacl string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		switch {
		case name == xattrACLAccess && e.Attrs&AttrACL == 0,
			name == xattrACLDefault && e.Attrs&AttrACL == 0,
			name == xattrCaps && e.Attrs&AttrCaps == 0:
			continue
		case name != xattrACLAccess && name != xattrACLDefault && name != xattrCaps && e.Attrs&AttrXattrs == 0:
			continue
		}
		v, err := lgetxattr(p, name)
		if err != nil {
			return fmt.Errorf("reading xattr %s: %w", name, err)
		}
		switch name {
		case xattrACLAccess:
			acl = DecodeACL(v)
		case xattrACLDefault:
			dacl = DecodeACL(v)
		case xattrCaps:
			e.Caps = DecodeCaps(v)
		default:
			if e.Xattrs == nil {
				e.Xattrs = map[string][]byte{}
			}
			e.Xattrs[name] = v
		}
	}
	if dacl != "" {
		var parts []string
		for _, d := range strings.Split(dacl, ",") {
			parts = append(parts, "default:"+d)
		}
		dacl = strings.Join(parts, ",")
		if acl != "" {
			acl += ","
		}
	}
	e.ACL = acl + dacl
	return nil
}

func lgetxattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if err == unix.ERANGE && len(buf) < 1<<20 {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// DecodeACL renders a POSIX ACL xattr value (struct posix_acl_xattr_header
// and entries) as text in getfacl's short form: "user::rw-,user:1000:r--,
// group::r--,mask::r--,other::---". A value it cannot decode is rendered
// as "invalid:" and its hex.
func DecodeACL(v []byte) string {
	if len(v) < 4 || binary.LittleEndian.Uint32(v) != 2 || (len(v)-4)%8 != 0 {
		return fmt.Sprintf("invalid:%x", v)
	}
	var parts []string
	for off := 4; off+8 <= len(v); off += 8 {
		tag := binary.LittleEndian.Uint16(v[off:])
		perm := binary.LittleEndian.Uint16(v[off+2:])
		id := binary.LittleEndian.Uint32(v[off+4:])
		rwx := []byte("---")
		if perm&4 != 0 {
			rwx[0] = 'r'
		}
		if perm&2 != 0 {
			rwx[1] = 'w'
		}
		if perm&1 != 0 {
			rwx[2] = 'x'
		}
		var s string
		switch tag {
		case 0x01:
			s = "user::"
		case 0x02:
			s = "user:" + strconv.FormatUint(uint64(id), 10) + ":"
		case 0x04:
			s = "group::"
		case 0x08:
			s = "group:" + strconv.FormatUint(uint64(id), 10) + ":"
		case 0x10:
			s = "mask::"
		case 0x20:
			s = "other::"
		default:
			s = fmt.Sprintf("tag%#x:%d:", tag, id)
		}
		parts = append(parts, s+string(rwx))
	}
	return strings.Join(parts, ",")
}

// capNames are the capability names by number (linux/capability.h).
var capNames = []string{
	"cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
	"cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
	"cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner",
	"cap_sys_module", "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct",
	"cap_sys_admin", "cap_sys_boot", "cap_sys_nice", "cap_sys_resource", "cap_sys_time",
	"cap_sys_tty_config", "cap_mknod", "cap_lease", "cap_audit_write", "cap_audit_control",
	"cap_setfcap", "cap_mac_override", "cap_mac_admin", "cap_syslog", "cap_wake_alarm",
	"cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return "cap_" + strconv.Itoa(i)
}

// DecodeCaps renders a security.capability xattr value (struct
// vfs_cap_data, revisions 1 to 3) like getcap: capabilities grouped by
// their flags, e.g. "cap_net_admin,cap_net_raw=ep", with ";rootid=N" for
// namespaced (revision 3) capabilities. A value it cannot decode is
// rendered as "invalid:" and its hex.
func DecodeCaps(v []byte) string {
	if len(v) < 4 {
		return fmt.Sprintf("invalid:%x", v)
	}
	magic := binary.LittleEndian.Uint32(v)
	rev, effective := magic&0xFF000000, magic&1 != 0
	var words int
	switch {
	case rev == 0x01000000 && len(v) == 12:
		words = 1
	case rev == 0x02000000 && len(v) == 20:
		words = 2
	case rev == 0x03000000 && len(v) == 24:
		words = 2
	default:
		return fmt.Sprintf("invalid:%x", v)
	}
	var perm, inh uint64
	for w := 0; w < words; w++ {
		perm |= uint64(binary.LittleEndian.Uint32(v[4+8*w:])) << (32 * w)
		inh |= uint64(binary.LittleEndian.Uint32(v[8+8*w:])) << (32 * w)
	}
	// Group capabilities by flag set, as getcap does.
	byFlags := map[string][]string{}
	for i := 0; i < 64; i++ {
		bit := uint64(1) << i
		if perm&bit == 0 && inh&bit == 0 {
			continue
		}
		f := ""
		if effective {
			f += "e"
		}
		if inh&bit != 0 {
			f += "i"
		}
		if perm&bit != 0 {
			f += "p"
		}
		byFlags[f] = append(byFlags[f], capName(i))
	}
	flags := make([]string, 0, len(byFlags))
	for f := range byFlags {
		flags = append(flags, f)
	}
	sort.Strings(flags)
	var parts []string
	for _, f := range flags {
		parts = append(parts, strings.Join(byFlags[f], ",")+"="+f)
	}
	s := strings.Join(parts, " ")
	if s == "" {
		s = "="
	}
	if rev == 0x03000000 {
		s += ";rootid=" + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(v[20:])), 10)
	}
	return s
}

// modeString is ls -l's permission string of perm bits and type.
func modeString(typ string, perm uint32) string {
	m := fs.FileMode(perm & 0777)
	if perm&unix.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if perm&unix.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if perm&unix.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return fmt.Sprintf("%04o (%s)", perm, m.String())
}
