package profile

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Open flags that make a file_open a write (linux, all architectures Vigil
// runs on).
const (
	oWronly = 0x1
	oRdwr   = 0x2
	oCreat  = 0x40
	oTrunc  = 0x200
)

// maxPreviousDigests bounds Profile.PreviousDigests.
const maxPreviousDigests = 8

// Observe takes one event. In discover mode it learns from it and returns
// nil; in monitor mode it returns what falls outside the profile; in
// protect mode the same with Block set. Events of the host, and of
// containers whose class is not known yet, are ignored.
//
// A class is created in discover mode by its first event, with its
// promotion to monitor due Options.Learn later; the first event at or
// after that time is judged in monitor mode. An event carrying an image
// digest the class has not run before starts a fresh profile in discover
// mode.
func (s *Store) Observe(e *event.Event) []Deviation {
	switch e.Type {
	case event.ProcessExec, event.NetBind, event.NetListen, event.NetConnect,
		event.FileOpen, event.FileUnlink, event.FileRename, event.FileChmod, event.FileChown,
		event.FileMkdir, event.FileLink, event.FileSymlink:
	default:
		return nil
	}
	w := e.Workload
	if w == nil || w.ContainerID == "" {
		return nil
	}
	if e.Type == event.FileOpen && (e.File == nil || e.File.Flags&(oWronly|oRdwr|oCreat|oTrunc) == 0) {
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	class, ok := s.byContainer[w.ContainerID]
	if !ok {
		class = ClassOf(w)
		if class == "" {
			return nil // metadata not there yet: ask again next time
		}
		if len(s.byContainer) >= maxCachedContainers {
			clear(s.byContainer)
		}
		s.byContainer[w.ContainerID] = class
	}
	now := s.opt.Now()
	st := s.classes[class]
	if st == nil {
		st = s.fresh(class, w.ImageDigest, now)
		s.classes[class] = st
	} else if d := w.ImageDigest; d != "" && d != st.digest {
		switch {
		case st.digest == "":
			st.digest = d
			st.dirty = true
		case !slices.Contains(st.previousDigests, d):
			s.opt.Logger.Info("profile: new image digest, learning again", "class", class, "old", st.digest, "new", d)
			prev := append(st.previousDigests, st.digest)
			if len(prev) > maxPreviousDigests {
				prev = prev[len(prev)-maxPreviousDigests:]
			}
			zeroDrift := st.zeroDrift
			st = s.fresh(class, d, now)
			st.previousDigests = prev
			st.zeroDrift = st.zeroDrift || zeroDrift // an operator's choice survives
			s.classes[class] = st
		}
	}
	st.promoteDue(now)
	if st.mode == Discover {
		s.learn(st, e, now)
		return nil
	}
	return s.check(st, e)
}

// promoteDue switches st from discover to monitor once its window is over.
func (st *state) promoteDue(now time.Time) {
	if st.mode == Discover && !st.promoteAt.IsZero() && !now.Before(st.promoteAt) {
		st.mode = Monitor
		st.updated = now
		st.dirty = true
	}
}

func (s *Store) fresh(class, digest string, now time.Time) *state {
	st := newState(class)
	st.digest = digest
	st.mode = Discover
	st.since = now
	st.promoteAt = s.promoteAt(now)
	st.zeroDrift = s.opt.ZeroDrift
	st.updated = now
	st.dirty = true
	return st
}

// full records once that list reached MaxItems.
func (s *Store) full(st *state, list string) {
	if slices.Contains(st.truncated, list) {
		return
	}
	st.truncated = append(st.truncated, list)
	slices.Sort(st.truncated)
	st.dirty = true
	s.opt.Logger.Warn("profile full: no longer learning this list", "class", st.class, "list", list, "max_items", s.opt.MaxItems)
}

func (s *Store) changed(st *state, now time.Time) {
	st.updated = now
	st.dirty = true
}

// learn adds what e shows to st.
func (s *Store) learn(st *state, e *event.Event, now time.Time) {
	max := s.opt.MaxItems
	switch e.Type {
	case event.ProcessExec:
		exe := e.Process.Exe
		if exe == "" {
			return
		}
		if st.zeroDrift && (e.Process.ExeUpper || e.Process.ExeMemfd) {
			return // would be drift in monitor anyway: not part of the image
		}
		s.learnExec(st, e, now, max)
		if e.Parent != nil && e.Parent.Exe != "" {
			pr := Pair{Parent: e.Parent.Exe, Child: exe}
			if _, ok := st.pairs[pr]; !ok {
				if len(st.pairs) >= max {
					s.full(st, "pairs")
				} else {
					st.pairs[pr] = struct{}{}
					s.changed(st, now)
				}
			}
		}
	case event.NetBind, event.NetListen:
		pt, ok := listenPort(e)
		if !ok || st.listens(pt) {
			return
		}
		if len(st.listen) >= max {
			s.full(st, "listen")
			return
		}
		st.listen[pt] = struct{}{}
		s.changed(st, now)
	case event.NetConnect:
		ap, ok := outbound(e)
		if !ok || st.connects(ap, e.Net.Names) {
			return
		}
		if st.noutbound() >= max {
			s.full(st, "outbound")
			return
		}
		if len(e.Net.Names) > 0 && e.Net.Names[0] != "" {
			st.outName[Dest{Host: normName(e.Net.Names[0]), Port: int(ap.Port())}] = struct{}{}
		} else {
			st.outIP[ap] = struct{}{}
		}
		s.changed(st, now)
	default:
		for _, p := range writtenPaths(e) {
			if p == "" || st.writes.match(p) {
				continue
			}
			if !st.writes.learn(p, max) {
				s.full(st, "writes")
				continue
			}
			s.changed(st, now)
		}
	}
}

func (s *Store) learnExec(st *state, e *event.Event, now time.Time, max int) {
	exe := e.Process.Exe
	key := execKey{exe, e.Process.ExeInode}
	hashes, known := st.execs[exe]
	if known && (s.opt.Hash == nil || e.Process.ExeInode != 0 && hasKey(st.verified, key)) {
		return
	}
	sum := ""
	if s.opt.Hash != nil {
		h, err := s.opt.Hash(e)
		if err != nil {
			s.opt.Logger.Debug("profile: hashing executable", "exe", exe, "err", err)
		} else {
			sum = h
		}
	}
	if known && (sum == "" || slices.Contains(hashes, sum)) {
		if sum != "" {
			st.verify(key)
		}
		return
	}
	if st.nexec >= max {
		s.full(st, "executables")
		return
	}
	// A hash replaces the unknown-hash entry the path had.
	hashes = slices.DeleteFunc(hashes, func(h string) bool { return h == "" })
	if len(hashes) < len(st.execs[exe]) {
		st.nexec--
	}
	st.execs[exe] = append(hashes, sum)
	st.nexec++
	if sum != "" {
		st.verify(key)
	}
	s.changed(st, now)
}

func hasKey[K comparable](m map[K]struct{}, k K) bool {
	_, ok := m[k]
	return ok
}

func (st *state) verify(k execKey) {
	if k.inode == 0 {
		return
	}
	if len(st.verified) >= maxVerified {
		clear(st.verified)
	}
	st.verified[k] = struct{}{}
}

// check returns e's deviations from st.
func (s *Store) check(st *state, e *event.Event) []Deviation {
	var out []Deviation
	dev := func(kind, format string, args ...any) {
		out = append(out, Deviation{Class: st.class, Kind: kind, Detail: fmt.Sprintf(format, args...), Mode: st.mode, Block: st.mode == Protect})
	}
	switch e.Type {
	case event.ProcessExec:
		exe := e.Process.Exe
		if exe == "" {
			return nil
		}
		if st.zeroDrift && (e.Process.ExeUpper || e.Process.ExeMemfd) {
			where := "written to the container after it started (overlay upper layer)"
			if e.Process.ExeMemfd {
				where = "a memfd or deleted file"
			}
			dev("drift", "exec of %s: %s, not from the image", exe, where)
		}
		if why := s.checkExec(st, e); why != "" {
			dev("exec", "%s", why)
		}
		if e.Parent != nil && e.Parent.Exe != "" {
			if _, ok := st.pairs[Pair{e.Parent.Exe, exe}]; !ok {
				dev("pair", "%s started %s, not learned", e.Parent.Exe, exe)
			}
		}
	case event.NetBind, event.NetListen:
		if pt, ok := listenPort(e); ok && !st.listens(pt) {
			dev("listen", "listening on %s/%d, not learned", pt.Proto, pt.Port)
		}
	case event.NetConnect:
		if ap, ok := outbound(e); ok && !st.connects(ap, e.Net.Names) {
			if len(e.Net.Names) > 0 {
				dev("outbound", "connection to %s (%s), not learned", ap, strings.Join(e.Net.Names, ", "))
			} else {
				dev("outbound", "connection to %s, not learned", ap)
			}
		}
	default:
		for _, p := range writtenPaths(e) {
			if p != "" && !st.writes.match(p) {
				dev("write", "%s of %s, outside the learned paths", e.Type, p)
			}
		}
	}
	return out
}

// checkExec says why e's executable is not in the profile, or "".
func (s *Store) checkExec(st *state, e *event.Event) string {
	exe := e.Process.Exe
	hashes, ok := st.execs[exe]
	if !ok {
		return "exec of " + exe + ", not learned"
	}
	if s.opt.Hash == nil || slices.Contains(hashes, "") {
		return ""
	}
	key := execKey{exe, e.Process.ExeInode}
	if e.Process.ExeInode != 0 && hasKey(st.verified, key) {
		return ""
	}
	sum, err := s.opt.Hash(e)
	if err != nil {
		// The process may be gone already; the path is known.
		s.opt.Logger.Debug("profile: hashing executable", "exe", exe, "err", err)
		return ""
	}
	if !slices.Contains(hashes, sum) {
		return fmt.Sprintf("exec of %s with SHA-256 %s, not a learned content of that path", exe, sum)
	}
	st.verify(key)
	return ""
}

// listenPort is the port a bind or listen event opens, if any.
func listenPort(e *event.Event) (Port, bool) {
	n := e.Net
	if n == nil || !n.Src.IsValid() || n.Src.Port() == 0 {
		return Port{}, false
	}
	proto := "any"
	switch {
	case n.Type == "stream" || n.Protocol == 6:
		proto = "tcp"
	case n.Type == "dgram" || n.Protocol == 17:
		proto = "udp"
	}
	return Port{Proto: proto, Port: int(n.Src.Port())}, true
}

func (st *state) listens(pt Port) bool {
	if hasKey(st.listen, pt) || hasKey(st.listen, Port{"any", pt.Port}) {
		return true
	}
	if pt.Proto == "any" {
		return hasKey(st.listen, Port{"tcp", pt.Port}) || hasKey(st.listen, Port{"udp", pt.Port})
	}
	return false
}

// outbound is the destination of a connect event, if it has an IP one.
func outbound(e *event.Event) (netip.AddrPort, bool) {
	n := e.Net
	if n == nil || !n.Dst.IsValid() {
		return netip.AddrPort{}, false
	}
	a := n.Dst.Addr()
	if a.Is4In6() {
		return netip.AddrPortFrom(a.Unmap(), n.Dst.Port()), true
	}
	return n.Dst, true
}

func (st *state) connects(ap netip.AddrPort, names []string) bool {
	if hasKey(st.outIP, ap) || hasKey(st.outIP, netip.AddrPortFrom(ap.Addr(), 0)) {
		return true
	}
	for _, n := range names {
		if hasKey(st.outName, Dest{normName(n), int(ap.Port())}) {
			return true
		}
	}
	for i := range st.outWild {
		if st.outWild[i].match(ap, names) {
			return true
		}
	}
	return false
}

// normName lower-cases a DNS name and drops its final dot; it allocates
// only when it changes something.
func normName(n string) string {
	if strings.HasSuffix(n, ".") || strings.ContainsFunc(n, func(r rune) bool { return r >= 'A' && r <= 'Z' }) {
		return strings.ToLower(strings.TrimSuffix(n, "."))
	}
	return n
}

// wildDest is a Dest that is not one address or one name on one port.
type wildDest struct {
	Dest
	prefix netip.Prefix // valid for a CIDR host
	suffix string       // ".example.com" for "*.example.com"
}

func newWildDest(d Dest) (wildDest, bool) {
	w := wildDest{Dest: d}
	if p, err := netip.ParsePrefix(d.Host); err == nil {
		w.prefix = p.Masked()
		return w, true
	}
	if rest, ok := strings.CutPrefix(d.Host, "*"); ok {
		w.suffix = rest
		return w, true
	}
	return w, d.Port == 0
}

func (w *wildDest) match(ap netip.AddrPort, names []string) bool {
	if w.Port != 0 && w.Port != int(ap.Port()) {
		return false
	}
	if w.prefix.IsValid() {
		return w.prefix.Contains(ap.Addr())
	}
	for _, n := range names {
		n = normName(n)
		if w.suffix != "" && strings.HasSuffix(n, w.suffix) || n == w.Host {
			return true
		}
	}
	return false
}

// writtenPaths are the clean absolute paths a file event writes, up to
// two; "" for none. Relative paths are skipped unless the process's cwd
// is known.
func writtenPaths(e *event.Event) [2]string {
	f := e.File
	if f == nil {
		return [2]string{}
	}
	var a, b string
	switch e.Type {
	case event.FileRename:
		a, b = f.Path, f.NewPath
	case event.FileLink, event.FileSymlink:
		a = f.NewPath
	default:
		a = f.Path
	}
	return [2]string{absPath(a, e.Process.Cwd), absPath(b, e.Process.Cwd)}
}

func absPath(p, cwd string) string {
	if p == "" {
		return ""
	}
	if p[0] != '/' {
		if cwd == "" || cwd[0] != '/' {
			return ""
		}
		p = cwd + "/" + p
	}
	return path.Clean(p)
}
