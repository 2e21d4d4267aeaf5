package workload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// NamesOptions configure Names. The zero value is usable.
type NamesOptions struct {
	// Proc is the proc mount; default "/proc".
	Proc string
	// MaxNamespaces bounds how many mount namespaces' files are kept;
	// default 1024. When full, one is dropped at random.
	MaxNamespaces int
	// MaxFileSize bounds what is read of one passwd or group file;
	// default 4 MiB. The rest of a larger file is ignored.
	MaxFileSize int64
}

// unsetID is the kernel's "no login uid" ((uid_t)-1).
const unsetID = ^uint32(0)

// Names resolves user and group IDs to names with the process's own
// /etc/passwd and /etc/group, read through /proc/<pid>/root, so that a
// container's users resolve with the container's files. The files are
// cached per mount namespace. When the process is gone and its namespace
// is not cached, the host's files are used (those of pid 1's root). It is
// safe for concurrent use.
type Names struct {
	o NamesOptions

	mu   sync.Mutex
	byNS map[uint32]*nameFiles
	host *nameFiles
}

// nameFiles is one root's passwd and group, and what they were when read.
type nameFiles struct {
	users, groups        map[uint32]string
	passwdStamp, grStamp stamp
	// ns is the mount namespace (0 for the host's files); via is a
	// process whose root last served it and last the process of the
	// last lookup: their roots serve re-reads once the process of the
	// event is gone.
	ns        uint32
	via, last int32
}

// stamp tells whether a file changed since it was read.
type stamp struct {
	ino, size uint64
	mtime     int64
}

// NewNames returns an empty Names.
func NewNames(o NamesOptions) *Names {
	if o.Proc == "" {
		o.Proc = "/proc"
	}
	if o.MaxNamespaces <= 0 {
		o.MaxNamespaces = 1024
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 4 << 20
	}
	return &Names{o: o, byNS: make(map[uint32]*nameFiles)}
}

// Fill sets p.User, p.Group and p.LoginUser from p's UID, GID and LoginUID
// (an unset login uid gets no name). Root is "root" whatever the files
// say, and without reading them. kin are processes that may share p's
// mount namespace (its parent): when p is gone, their roots serve to
// read that namespace's files, or re-read them when they changed.
func (n *Names) Fill(p *event.Process, kin ...int32) {
	if p == nil || p.PID <= 0 {
		return
	}
	if p.UID == 0 && p.GID == 0 && (p.LoginUID == 0 || p.LoginUID == unsetID) {
		p.User, p.Group = "root", "root"
		if p.LoginUID == 0 {
			p.LoginUser = "root"
		}
		// Read a new namespace's files now, while this process is alive:
		// its first non-root process may be gone before its event is
		// handled (a container's `setpriv … id`).
		if p.MntNS != 0 {
			n.mu.Lock()
			if _, ok := n.byNS[p.MntNS]; !ok {
				n.files([]int32{p.PID}, p.MntNS)
			}
			n.mu.Unlock()
		}
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	pids := append([]int32{p.PID}, kin...)
	f := n.files(pids, p.MntNS)
	p.User = f.user(n, pids, p.UID)
	p.Group = f.group(n, pids, p.GID)
	if p.LoginUID != unsetID {
		p.LoginUser = f.user(n, pids, p.LoginUID)
	}
	f.last = p.PID
}

// files returns the cached files of mount namespace ns (pids[0]'s),
// reading them when they are not cached through the root of pids[0], else
// of the first other of pids in ns; else the host's. Called with n.mu
// held.
func (n *Names) files(pids []int32, ns uint32) *nameFiles {
	if ns == 0 {
		ns = mntNS(n.o.Proc, pids[0])
	}
	if f, ok := n.byNS[ns]; ok && ns != 0 {
		return f
	}
	for i, pid := range pids {
		if ns == 0 {
			break
		}
		if i > 0 && mntNS(n.o.Proc, pid) != ns {
			continue
		}
		if f, err := n.read(filepath.Join(n.o.Proc, strconv.Itoa(int(pid)), "root")); err == nil {
			if len(n.byNS) >= n.o.MaxNamespaces {
				for k := range n.byNS {
					delete(n.byNS, k)
					break
				}
			}
			f.ns, f.via = ns, pid
			n.byNS[ns] = f
			return f
		}
	}
	if n.host == nil {
		// init's root is the host's; where it cannot be read (some VMs
		// refuse /proc/1 even to root) the agent's own root is the next
		// best: the host's when the agent runs on it.
		f, err := n.read(filepath.Join(n.o.Proc, "1", "root"))
		if err != nil {
			f, err = n.read(filepath.Join(n.o.Proc, "self", "root"))
		}
		if err != nil {
			f = &nameFiles{users: map[uint32]string{}, groups: map[uint32]string{}}
		}
		n.host = f
	}
	return n.host
}

// mntNS reads the mount namespace inode of pid; 0 when it cannot.
func mntNS(proc string, pid int32) uint32 {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(proc, strconv.Itoa(int(pid)), "ns", "mnt"), &st); err != nil {
		return 0
	}
	return uint32(st.Ino)
}

func (f *nameFiles) user(n *Names, pids []int32, id uint32) string {
	if id == 0 {
		return "root"
	}
	if s, ok := f.users[id]; ok {
		return s
	}
	n.reread(f, pids, true)
	return f.users[id]
}

func (f *nameFiles) group(n *Names, pids []int32, id uint32) string {
	if id == 0 {
		return "root"
	}
	if s, ok := f.groups[id]; ok {
		return s
	}
	n.reread(f, pids, false)
	return f.groups[id]
}

// reread reloads passwd (or group) when it changed since it was read: an
// ID without a name may have been added since (useradd in a container).
// It costs a few stats per miss. The files are read through the root of
// the first of pids still in their namespace, else of another process
// seen there.
func (n *Names) reread(f *nameFiles, pids []int32, passwd bool) {
	root, ok := n.rootOf(f, pids)
	if !ok {
		return
	}
	name, st := "group", &f.grStamp
	if passwd {
		name, st = "passwd", &f.passwdStamp
	}
	path := filepath.Join(root, "etc", name)
	now, err := stampOf(path)
	if err != nil || now == *st {
		return
	}
	m, s, err := n.readFile(path)
	if err != nil {
		return
	}
	*st = s
	if passwd {
		f.users = m
	} else {
		f.groups = m
	}
}

// rootOf returns a live root of f's namespace: that of the first of pids
// in it, else of another process seen there (each checked to be in it:
// PIDs are reused).
func (n *Names) rootOf(f *nameFiles, pids []int32) (string, bool) {
	if f == n.host {
		return filepath.Join(n.o.Proc, "1", "root"), true
	}
	for _, c := range append(pids, f.last, f.via) {
		if c > 0 && mntNS(n.o.Proc, c) == f.ns {
			f.via = c
			return filepath.Join(n.o.Proc, strconv.Itoa(int(c)), "root"), true
		}
	}
	return "", false
}

// read reads root's /etc/passwd and /etc/group. A missing group file is
// no error (distroless images often have passwd only); a missing passwd is.
func (n *Names) read(root string) (*nameFiles, error) {
	users, ps, err := n.readFile(filepath.Join(root, "etc", "passwd"))
	if err != nil {
		return nil, err
	}
	groups, gs, err := n.readFile(filepath.Join(root, "etc", "group"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if groups == nil {
		groups = map[uint32]string{}
	}
	return &nameFiles{users: users, groups: groups, passwdStamp: ps, grStamp: gs}, nil
}

func (n *Names) readFile(path string) (map[uint32]string, stamp, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, stamp{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, stamp{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, stamp{}, fmt.Errorf("reading %s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, n.o.MaxFileSize))
	if err != nil {
		return nil, stamp{}, fmt.Errorf("reading %s: %w", path, err)
	}
	return ParseIDNames(b), stampFromInfo(st), nil
}

func stampOf(path string) (stamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{}, err
	}
	return stampFromInfo(st), nil
}

func stampFromInfo(fi os.FileInfo) stamp {
	s := stamp{size: uint64(fi.Size()), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = st.Ino
	}
	return s
}

// ParseIDNames reads an /etc/passwd or /etc/group file: "name:x:id:…"
// lines, name in the first field and the ID in the third. It is
// tolerant: blank lines, comments, NIS "+"/"-" entries, lines with too
// few fields, empty names and IDs that are not 32-bit numbers are
// skipped; the first name of an ID wins, as getpwuid(3) answers.
func ParseIDNames(b []byte) map[uint32]string {
	out := make(map[uint32]string)
	for len(b) > 0 {
		var l []byte
		l, b, _ = bytes.Cut(b, []byte{'\n'})
		line := strings.TrimRight(string(l), "\r")
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			continue
		}
		_, rest, ok = strings.Cut(rest, ":")
		if !ok {
			continue
		}
		idStr, _, _ := strings.Cut(rest, ":")
		id, err := strconv.ParseUint(idStr, 10, 32)
		if err != nil {
			continue
		}
		if _, dup := out[uint32(id)]; !dup {
			out[uint32(id)] = name
		}
	}
	return out
}
