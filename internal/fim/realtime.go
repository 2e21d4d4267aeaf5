package fim

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
)

// SourceFIM is the alert source of realtime file integrity alerts.
const SourceFIM = "fim"

// RealtimeChange kinds of realtime alerts, as the output's change= names them.
const (
	RealtimeWrite   = "write"   // opened for writing (O_WRONLY, O_RDWR, O_CREAT or O_TRUNC)
	RealtimeDelete  = "delete"  // unlink, unlinkat (files and, with AT_REMOVEDIR, directories)
	RealtimeRename  = "rename"  // renamed from or onto a watched path
	RealtimeChmod   = "chmod"   // permission change
	RealtimeChown   = "chown"   // ownership change
	RealtimeLink    = "link"    // hard link made to or at a watched path
	RealtimeSymlink = "symlink" // symbolic link made at a watched path
	RealtimeMkdir   = "mkdir"   // directory made
)

// Watch says whether a path (absolute, cleaned, as the process that changed
// it sees it) is watched, and the name of the rule that selects it. It must
// be safe to call from one goroutine at a time and must not retain path.
type Watch interface {
	Match(path string) (rule string, ok bool)
}

// WatchFunc is a Watch made of a function.
type WatchFunc func(path string) (string, bool)

// Match calls f.
func (f WatchFunc) Match(p string) (string, bool) { return f(p) }

// Prioritizer is an optional Watch method: the alert priority of a rule
// (EMERGENCY … DEBUG). Without it, or when it returns "", WARNING.
type Prioritizer interface {
	Priority(rule string) string
}

// AttrWatch is an optional Watch method: the attributes the rule records.
// With it, a change that touches none of them is not reported: a write
// (not a creation) where neither content, size nor times are recorded, a
// chmod where neither the mode nor ctime is, a chown where neither owner
// nor ctime is, and an append to a growing file (AttrGrowing: a log).
// Deletions, renames, links and new directories are always reported.
type AttrWatch interface {
	Attrs(rule string) Attr
}

// RealtimeOptions configure realtime FIM.
type RealtimeOptions struct {
	// Window folds repeats — the same change kind to the same path by the
	// same process — into one line with a count, written when the window
	// closes; the first occurrence is written at once. 0: DefaultWindow.
	Window time.Duration
	// Max bounds the repeats tracked at once (the oldest are closed early
	// beyond it); 0: 4096.
	Max int
}

// DefaultWindow is the debounce window of realtime FIM.
const DefaultWindow = 10 * time.Second

// Realtime turns the sensor's file events into FIM alerts: each change to
// a watched path names the process that made it, its ancestry, user and
// container. It never reads or updates a baseline, and does no I/O: paths
// must be absolute or relative to the event's Process.Cwd. Observe, Flush
// and Close are called from one goroutine; SetWatch from any.
type Realtime struct {
	w      atomic.Pointer[watching]
	window time.Duration
	max    int
	open   map[debounceKey]*held
	// queue holds the open windows in the order they opened (event
	// times, which the sensor delivers nearly in order), from head.
	queue []*held
	head  int
}

// watching is a Watch with its optional methods found once.
type watching struct {
	w    Watch
	prio Prioritizer
}

type debounceKey struct {
	mntNS uint32
	pid   int32
	start int64
	kind  string
	path  string
}

type held struct {
	key     debounceKey
	first   time.Time
	change  RealtimeChange
	last    event.Event // the last repeat; its alert is made when the window closes
	repeats int
}

// NewRealtime returns realtime FIM over w.
func NewRealtime(w Watch, o RealtimeOptions) *Realtime {
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Max <= 0 {
		o.Max = 4096
	}
	r := &Realtime{window: o.Window, max: o.Max, open: make(map[debounceKey]*held)}
	r.SetWatch(w)
	return r
}

// SetWatch replaces what is watched, for a configuration reload: events
// handled after it are matched against w. Windows already open keep
// counting repeats of their paths.
func (r *Realtime) SetWatch(w Watch) {
	p, _ := w.(Prioritizer)
	r.w.Store(&watching{w: w, prio: p})
}

// RealtimeChange is what a file event did to which path, as realtime FIM sees it.
type RealtimeChange struct {
	Kind string
	// Path is the watched path (absolute, cleaned); Other the second path
	// of a rename or link, when there is one.
	Path, Other string
	Rule        string
}

// Classify returns the change e made to a watched path, if it made one: a
// successful open for writing, unlink, rename, chmod, chown, link,
// symlink or mkdir of a path w watches. Relative paths are resolved
// against e.Process.Cwd; they are skipped when it is unknown.
func ClassifyEvent(w Watch, e *event.Event) (RealtimeChange, bool) {
	kind, abs, ok := candidates(e)
	if !ok {
		return RealtimeChange{}, false
	}
	for i, p := range abs {
		if p == "" {
			continue
		}
		if rule, ok := w.Match(p); ok {
			if aw, ok := w.(AttrWatch); ok && !relevant(kind, e.File.Flags, aw.Attrs(rule)) {
				return RealtimeChange{}, false
			}
			return RealtimeChange{Kind: kind, Path: p, Other: abs[1-i], Rule: rule}, true
		}
	}
	return RealtimeChange{}, false
}

// candidates is the change kind of e and the absolute paths it changed,
// the primary first ("" for none), when e can change a file.
func candidates(e *event.Event) (kind string, abs [2]string, ok bool) {
	if e.File == nil || e.Ret < 0 {
		return "", abs, false
	}
	var paths [2]string // the paths to try, the primary first
	switch e.Type {
	case event.FileOpen:
		if e.File.Flags&writeFlags == 0 {
			return "", abs, false
		}
		kind, paths[0] = RealtimeWrite, e.File.Path
	case event.FileUnlink:
		kind, paths[0] = RealtimeDelete, e.File.Path
	case event.FileRename:
		// The destination first: a file replaced by a rename (editors,
		// package managers) is the usual change.
		kind, paths[0], paths[1] = RealtimeRename, e.File.NewPath, e.File.Path
	case event.FileChmod:
		kind, paths[0] = RealtimeChmod, e.File.Path
	case event.FileChown:
		kind, paths[0] = RealtimeChown, e.File.Path
	case event.FileLink:
		kind, paths[0], paths[1] = RealtimeLink, e.File.NewPath, e.File.Path
	case event.FileSymlink:
		// A symlink's target need not exist: only the new name changes.
		kind, paths[0] = RealtimeSymlink, e.File.NewPath
	case event.FileMkdir:
		kind, paths[0] = RealtimeMkdir, e.File.Path
	default:
		return "", abs, false
	}
	for i, p := range paths {
		abs[i] = absolute(p, e.Process.Cwd)
	}
	return kind, abs, abs[0] != "" || abs[1] != ""
}

// writeFlags are the open flags that can change a file: O_WRONLY, O_RDWR,
// O_CREAT, O_TRUNC.
const writeFlags = 0o1 | 0o2 | 0o100 | 0o1000

// absolute makes p absolute against cwd and cleans it; "" when it cannot.
func absolute(p, cwd string) string {
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

// Observe checks e and calls emit with an alert when it changed a watched
// path and is not a repeat within the window; it also emits the count
// lines of windows that closed by e.Time. emit must not retain the alert
// beyond the call unless it copies it.
func (r *Realtime) Observe(e *event.Event, emit func(*alert.Alert)) {
	r.Flush(e.Time, emit)
	kind, abs, ok := candidates(e)
	if !ok {
		return
	}
	k := debounceKey{mntNS: e.Process.MntNS, pid: e.Process.PID, start: e.Process.StartTime.UnixNano(), kind: kind}
	if len(r.open) > 0 {
		// A repeat is known without matching: only watched paths have
		// windows open.
		for _, p := range abs {
			k.path = p
			if h, ok := r.open[k]; ok && p != "" {
				h.repeats++
				h.last = *e
				return
			}
		}
	}
	c, ok := ClassifyEvent(r.w.Load().w, e)
	if !ok {
		return
	}
	k.path = c.Path
	if len(r.open) >= r.max {
		r.closeOldest(emit)
	}
	h := &held{key: k, first: e.Time, change: c}
	r.open[k] = h
	r.queue = append(r.queue, h)
	a := r.alert(c, e)
	a.Count, a.FirstSeen, a.LastSeen = 1, e.Time, e.Time
	emit(a)
}

// Flush emits the count line of each window that closed by now and held
// repeats, oldest first.
func (r *Realtime) Flush(now time.Time, emit func(*alert.Alert)) {
	var due []*held
	for r.head < len(r.queue) && now.Sub(r.queue[r.head].first) >= r.window {
		h := r.queue[r.head]
		r.queue[r.head] = nil
		r.head++
		delete(r.open, h.key)
		if h.repeats > 0 {
			due = append(due, h)
		}
	}
	r.compact()
	if len(due) > 0 {
		r.emitHeld(due, emit)
	}
}

// Close emits the count lines of every open window.
func (r *Realtime) Close(emit func(*alert.Alert)) {
	var due []*held
	for _, h := range r.queue[r.head:] {
		if h.repeats > 0 {
			due = append(due, h)
		}
	}
	clear(r.open)
	r.queue, r.head = r.queue[:0], 0
	r.emitHeld(due, emit)
}

// closeOldest closes the window opened first, to make room.
func (r *Realtime) closeOldest(emit func(*alert.Alert)) {
	if r.head == len(r.queue) {
		return
	}
	h := r.queue[r.head]
	r.queue[r.head] = nil
	r.head++
	delete(r.open, h.key)
	r.compact()
	if h.repeats > 0 {
		r.emitHeld([]*held{h}, emit)
	}
}

// compact drops the closed windows from the front of the queue once they
// are half of it.
func (r *Realtime) compact() {
	if r.head == len(r.queue) {
		r.queue, r.head = r.queue[:0], 0
	} else if r.head > 64 && r.head > len(r.queue)/2 {
		n := copy(r.queue, r.queue[r.head:])
		clear(r.queue[n:])
		r.queue, r.head = r.queue[:n], 0
	}
}

// emitHeld emits a count line per window in due, by the time of its last
// repeat; the line's event is the last repeat.
func (r *Realtime) emitHeld(due []*held, emit func(*alert.Alert)) {
	slices.SortFunc(due, func(a, b *held) int { return a.last.Time.Compare(b.last.Time) })
	for _, h := range due {
		a := r.alert(h.change, &h.last)
		a.Aggregate, a.Count, a.FirstSeen, a.LastSeen = true, h.repeats, h.first, h.last.Time
		emit(a)
	}
}

// alert makes the alert of change c by e.
func (r *Realtime) alert(c RealtimeChange, e *event.Event) *alert.Alert {
	prio := ""
	if p := r.w.Load().prio; p != nil {
		prio = p.Priority(c.Rule)
	}
	if prio == "" {
		prio = "WARNING"
	}
	tactic, technique := "TA0040 Impact", "T1565.001"
	if c.Kind == RealtimeChmod || c.Kind == RealtimeChown {
		tactic, technique = "TA0005 Defense Evasion", "T1222"
	}
	ev := *e
	return &alert.Alert{
		Time: e.Time, Type: "alert", Rule: "File integrity: " + c.Rule, Priority: prio, Source: SourceFIM,
		Tags:    []string{"fim", "filesystem", "fim_" + c.Kind, technique},
		Tactics: []string{tactic}, Techniques: []string{technique},
		Output: realtimeOutput(c, e), Event: &ev,
	}
}

// realtimeOutput renders an alert's message: what changed, how, and who did it.
func realtimeOutput(c RealtimeChange, e *event.Event) string {
	var b strings.Builder
	b.WriteString("File integrity: ")
	b.WriteString(c.Rule)
	b.WriteString(" | change=")
	b.WriteString(c.Kind)
	b.WriteString(" path=")
	b.WriteString(c.Path)
	if c.Other != "" {
		if c.Kind == RealtimeRename || c.Kind == RealtimeLink {
			b.WriteString(" other_path=")
			b.WriteString(c.Other)
		}
	}
	f := e.File
	switch c.Kind {
	case RealtimeWrite:
		fmt.Fprintf(&b, " flags=%#o", f.Flags)
	case RealtimeChmod:
		fmt.Fprintf(&b, " mode=%#o", f.Mode&0o7777)
	case RealtimeChown:
		fmt.Fprintf(&b, " owner=%d:%d", int32(f.UID), int32(f.GID))
	}
	p := &e.Process
	b.WriteString(" process=")
	b.WriteString(p.Name)
	b.WriteString(" pid=")
	b.WriteString(strconv.Itoa(int(p.PID)))
	if p.Exe != "" {
		b.WriteString(" exe=")
		b.WriteString(p.Exe)
	}
	if p.CmdLine != "" {
		b.WriteString(" cmdline=")
		b.WriteString(strconv.Quote(p.CmdLine))
	}
	b.WriteString(" user=")
	if p.User != "" {
		b.WriteString(p.User)
	} else {
		b.WriteString(strconv.FormatUint(uint64(p.UID), 10))
	}
	if p.LoginUser != "" {
		b.WriteString(" login_user=")
		b.WriteString(p.LoginUser)
	}
	if e.Parent != nil {
		b.WriteString(" parent=")
		b.WriteString(e.Parent.Name)
		b.WriteString(" ppid=")
		b.WriteString(strconv.Itoa(int(e.Parent.PID)))
	}
	if len(e.Ancestors) > 0 {
		b.WriteString(" ancestors=")
		for i, a := range e.Ancestors {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(a.Name)
		}
	}
	if w := e.Workload; w != nil && w.ContainerID != "" {
		b.WriteString(" container=")
		if w.ContainerName != "" {
			b.WriteString(w.ContainerName)
		} else {
			b.WriteString(w.ContainerID[:min(12, len(w.ContainerID))])
		}
		b.WriteString(" container_id=")
		b.WriteString(w.ContainerID[:min(12, len(w.ContainerID))])
		if w.Image != "" {
			b.WriteString(" image=")
			b.WriteString(w.Image)
		}
	} else {
		b.WriteString(" container=host")
	}
	return b.String()
}

// ConfigWatch watches what c selects (Config.Match: watched roots within
// their depth, excludes left out), naming each change after the rule.
// Each rule's attributes decide which changes count (AttrWatch).
func ConfigWatch(c *Config) Watch {
	w := configWatch{c: c, attrs: make(map[string]Attr, len(c.Rules))}
	for _, r := range c.Rules {
		w.attrs[r.Name] |= r.Attrs
	}
	return w
}

type configWatch struct {
	c     *Config
	attrs map[string]Attr // by rule name (rules sharing a name: the union)
}

func (w configWatch) Match(p string) (string, bool) {
	r, ok := w.c.Match(p)
	return r.Name, ok
}

func (w configWatch) Attrs(rule string) Attr { return w.attrs[rule] }

var _ AttrWatch = configWatch{}

// relevant reports whether a change of kind (open flags for a write)
// touches the attributes a.
func relevant(kind string, flags uint32, a Attr) bool {
	const oCreat, oTrunc, oAppend = 0o100, 0o1000, 0o2000
	switch kind {
	case RealtimeWrite:
		if a&AttrGrowing != 0 && flags&oAppend != 0 && flags&oTrunc == 0 {
			return false // a log growing
		}
		return flags&oCreat != 0 || a&(AttrSize|AttrMtime|AttrCtime|AttrHashes) != 0
	case RealtimeChmod:
		return a&(AttrPerm|AttrCtime) != 0
	case RealtimeChown:
		return a&(AttrUID|AttrGID|AttrCtime) != 0
	}
	return true
}
