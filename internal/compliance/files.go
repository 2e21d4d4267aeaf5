package compliance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ids maps numeric IDs to names from the checked system's passwd or group.
func (e *Env) ids(file string) map[uint32]string {
	return e.memo("ids:"+file, func() any {
		m := map[uint32]string{}
		data, err := e.ReadFile(file)
		if err != nil {
			return m
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) < 3 {
				continue
			}
			if n, err := strconv.ParseUint(f[2], 10, 32); err == nil {
				if _, dup := m[uint32(n)]; !dup {
					m[uint32(n)] = f[0]
				}
			}
		}
		return m
	}).(map[uint32]string)
}

// owner describes a file's mode and owners: "mode 0644 uid 0(root) gid 0(root)".
type owner struct {
	Mode      fs.FileMode
	UID, GID  uint32
	User, Grp string
	IsDir     bool
	IsSocket  bool
	IsSymlink bool
}

func (o owner) String() string {
	return fmt.Sprintf("mode %04o uid %d(%s) gid %d(%s)", o.Mode.Perm(), o.UID, o.User, o.GID, o.Grp)
}

// statOwner stats p under Root.
func (e *Env) statOwner(p string) (owner, error) {
	fi, err := e.Stat(p)
	if err != nil {
		return owner{}, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, fmt.Errorf("%s: no owner information", p)
	}
	o := owner{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, IsDir: fi.IsDir(), IsSocket: fi.Mode()&fs.ModeSocket != 0}
	o.User = e.ids("/etc/passwd")[st.Uid]
	o.Grp = e.ids("/etc/group")[st.Gid]
	if o.User == "" {
		o.User = "?"
	}
	if o.Grp == "" {
		o.Grp = "?"
	}
	return o, nil
}

// permSpec is what a file's permissions must be.
type permSpec struct {
	Path string
	// Max is the most permissive mode allowed (bits outside it fail).
	Max fs.FileMode
	// Users and Groups are the owner names allowed; empty means any.
	Users, Groups []string
	// Missing is the status when the file does not exist (Pass when the
	// benchmark says "if it exists").
	Missing string
}

// checkPerm evaluates one permSpec.
func (e *Env) checkPerm(s permSpec) (string, string, error) {
	o, err := e.statOwner(s.Path)
	if errors.Is(err, os.ErrNotExist) {
		if s.Missing == "" {
			return Fail, s.Path + " does not exist", nil
		}
		return s.Missing, s.Path + " does not exist", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("stat %s: %w", s.Path, err)
	}
	ev := s.Path + ": " + o.String()
	var bad []string
	if extra := o.Mode.Perm() &^ s.Max; extra != 0 {
		bad = append(bad, fmt.Sprintf("mode allows %04o beyond %04o", extra, s.Max))
	}
	if len(s.Users) > 0 && !contains(s.Users, o.User) {
		bad = append(bad, "owner not "+strings.Join(s.Users, " or "))
	}
	if len(s.Groups) > 0 && !contains(s.Groups, o.Grp) {
		bad = append(bad, "group not "+strings.Join(s.Groups, " or "))
	}
	if len(bad) > 0 {
		return Fail, ev + " — " + strings.Join(bad, "; "), nil
	}
	return Pass, ev, nil
}

// permChecks evaluates several specs; the first failure decides.
func (e *Env) permChecks(specs ...permSpec) (string, string, error) {
	var evs []string
	status := Pass
	for _, s := range specs {
		st, ev, err := e.checkPerm(s)
		if err != nil {
			return "", "", err
		}
		evs = append(evs, ev)
		if st != Pass && status == Pass {
			status = st
		}
	}
	return status, strings.Join(evs, "; "), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
