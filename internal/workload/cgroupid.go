package workload

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

var errFound = errors.New("found")

// cgroupPathByID finds the cgroup v2 directory under root whose inode is
// id (what bpf_get_current_cgroup_id returns) and returns its path
// relative to root, as /proc/<pid>/cgroup would show it. It is a walk of
// the whole tree, for when the process is already gone. root must be a
// pure cgroup v2 mount (it has cgroup.controllers); on v1 and hybrid hosts
// the v2 tree does not separate containers and the answer would be wrong.
func cgroupPathByID(root string, id uint64) (string, bool) {
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return "", false
	}
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil // a cgroup removed meanwhile, or a control file
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Ino == id {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return nil
			}
			found = "/" + rel
			if rel == "." {
				found = "/"
			}
			return errFound
		}
		return nil
	})
	return found, errors.Is(err, errFound)
}
