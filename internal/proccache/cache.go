// Package proccache keeps a bounded cache of live and recently exited
// processes with their ancestry, seeded from /proc and kept current by
// sensor events, so every event can carry its parent chain even when the
// ancestors exited long ago. It reads /proc and nothing else: it must not
// signal, trace or otherwise touch the processes it describes.
package proccache

import (
	"container/list"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// MaxAncestors bounds event.Event.Ancestors.
const MaxAncestors = 32

// Options configure a Cache.
type Options struct {
	// MaxEntries bounds the cache; default 65536.
	MaxEntries int
	// ExitGrace is how long an exited process is kept so that late events
	// of its children still find it; default 30s.
	ExitGrace time.Duration
	// Proc is the proc mount; default "/proc".
	Proc string
}

// DefaultOptions returns the defaults New fills in.
func DefaultOptions() Options {
	return Options{MaxEntries: 65536, ExitGrace: 30 * time.Second, Proc: "/proc"}
}

// Cache is a bounded process table. It is safe for concurrent use.
type Cache struct {
	o    Options
	boot time.Time
	now  func() time.Time

	mu     sync.Mutex
	procs  map[int32]*node
	lru    *list.List // of *node, most recently used first
	exited *list.List // of *node, earliest exit first
}

type node struct {
	p        event.Process
	exitedAt time.Time
	lruEl    *list.Element
	exitEl   *list.Element // nil while alive
}

// New builds an empty Cache.
func New(o Options) *Cache {
	d := DefaultOptions()
	if o.MaxEntries <= 0 {
		o.MaxEntries = d.MaxEntries
	}
	if o.ExitGrace <= 0 {
		o.ExitGrace = d.ExitGrace
	}
	if o.Proc == "" {
		o.Proc = d.Proc
	}
	c := &Cache{
		o:      o,
		now:    time.Now,
		procs:  make(map[int32]*node),
		lru:    list.New(),
		exited: list.New(),
	}
	c.boot, _ = bootTime(o.Proc) // without it, StartTime stays zero
	return c
}

// Seed reads every process in /proc. Processes that vanish or cannot be
// parsed while it reads are skipped; it fails only when /proc cannot be
// listed.
func (c *Cache) Seed() error {
	ents, err := os.ReadDir(c.o.Proc)
	if err != nil {
		return fmt.Errorf("seeding process cache: %w", err)
	}
	for _, e := range ents {
		pid, err := strconv.ParseInt(e.Name(), 10, 32)
		if err != nil || pid <= 0 {
			continue
		}
		p, err := readProc(c.o.Proc, int32(pid), c.boot)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, ok := c.procs[p.PID]; !ok { // an event may have been faster
			c.put(p)
		}
		c.mu.Unlock()
	}
	return nil
}

// Update applies a process event. ProcessFork's Process is the child: it
// starts as a copy of its parent (e.Process.PPID, read from /proc if not
// cached) overlaid with what the event carries. ProcessExec replaces the image (name, exe, args) and
// keeps the rest. ProcessExit marks the process exited; it is evicted
// after ExitGrace. Any other event adds its process when unknown, from
// /proc when it can still be read. Update does not retain e.
func (c *Cache) Update(e *event.Event) {
	ep := e.Process
	if ep.PID <= 0 {
		return
	}
	switch e.Type {
	case event.ProcessFork:
		var p event.Process
		if ep.PPID > 0 {
			p, _ = c.lookup(ep.PPID, nil) // the parent, from /proc if new to us
		}
		p.PID, p.PPID, p.TID = ep.PID, ep.PPID, 0
		p.StartTime = time.Time{}
		p.VPID = 0 // the child's own, from the event (the parent's is not it)
		c.mu.Lock()
		c.put(overlay(p, ep))
		c.mu.Unlock()
	case event.ProcessExec:
		c.mu.Lock()
		n, ok := c.procs[ep.PID]
		c.mu.Unlock()
		var p event.Process
		if ok {
			p = n.p
		} else if rp, err := readProc(c.o.Proc, ep.PID, c.boot); err == nil {
			p = rp
		}
		// A new image: what the old one had must not survive. The working
		// directory may have changed since the fork (runc enters the
		// container's root between clone and exec): read it now, or drop it.
		p.Name, p.Exe, p.Args, p.CmdLine, p.Env = "", "", nil, "", nil
		p.ExeInode, p.ExeUpper, p.ExeMemfd = 0, false, false
		p.CapEff, p.CapPrm = 0, 0 // exec recomputes the capabilities; the event has them
		p.Cwd, _ = os.Readlink(filepath.Join(c.o.Proc, strconv.Itoa(int(ep.PID)), "cwd"))
		c.mu.Lock()
		c.put(overlay(p, ep))
		c.mu.Unlock()
	case event.ProcessExit:
		c.mu.Lock()
		defer c.mu.Unlock()
		n, ok := c.procs[ep.PID]
		if !ok {
			return
		}
		if n.exitEl == nil {
			n.exitedAt = c.now()
			n.exitEl = c.exited.PushBack(n)
		}
		c.expire()
	default:
		c.lookup(ep.PID, &ep)
	}
}

// overlay copies the fields ev sets onto p.
func overlay(p, ev event.Process) event.Process {
	p.PID = ev.PID
	if ev.TID != 0 {
		p.TID = ev.TID
	}
	if ev.PPID != 0 {
		p.PPID = ev.PPID
	}
	setStr(&p.Name, ev.Name)
	setStr(&p.Exe, ev.Exe)
	if ev.Args != nil {
		p.Args = append([]string(nil), ev.Args...)
	}
	setStr(&p.CmdLine, ev.CmdLine)
	setStr(&p.Cwd, ev.Cwd)
	if ev.Env != nil {
		p.Env = append([]string(nil), ev.Env...)
	}
	// Credentials are all-or-nothing: a sensor that reads them reads them
	// together, and uid 0 is a real value.
	if ev.UID != 0 || ev.EUID != 0 || ev.GID != 0 || ev.EGID != 0 {
		p.UID, p.EUID, p.GID, p.EGID = ev.UID, ev.EUID, ev.GID, ev.EGID
	}
	setNum(&p.LoginUID, ev.LoginUID)
	carryExecFields(&p, ev)
	if !ev.StartTime.IsZero() {
		p.StartTime = ev.StartTime
	}
	setNum(&p.CgroupID, ev.CgroupID)
	setNum(&p.MntNS, ev.MntNS)
	setNum(&p.PidNS, ev.PidNS)
	setNum(&p.NetNS, ev.NetNS)
	return p
}

// carryExecFields copies onto dst what only an exec event (or /proc)
// tells about a process — capabilities, namespaced PID, terminal,
// session, executable and cgroup name — where src has it: from an event
// into the cache (overlay), and from the cache onto later events (Enrich).
func carryExecFields(dst *event.Process, src event.Process) {
	setNum(&dst.CapEff, src.CapEff)
	setNum(&dst.CapPrm, src.CapPrm)
	setNum(&dst.VPID, src.VPID)
	setStr(&dst.TTY, src.TTY)
	setNum(&dst.TTYNr, src.TTYNr)
	setNum(&dst.SID, src.SID)
	setNum(&dst.PGID, src.PGID)
	setStr(&dst.CgroupName, src.CgroupName)
	setNum(&dst.ExeInode, src.ExeInode)
	dst.ExeUpper = dst.ExeUpper || src.ExeUpper
	dst.ExeMemfd = dst.ExeMemfd || src.ExeMemfd
}

func setStr(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func setNum[T int32 | uint32 | uint64](dst *T, v T) {
	if v != 0 {
		*dst = v
	}
}

// Enrich fills e.Parent and e.Ancestors (the parent's parents, nearest
// first, up to pid 1 or the end of what is known, at most MaxAncestors)
// and the actor's missing PPID, Name, Exe, Args, CmdLine, Cwd, CapEff,
// CapPrm, VPID, TTY, TTYNr, SID, PGID, ExeInode, ExeUpper, ExeMemfd and
// CgroupName from the
// cache, reading /proc for processes it does not know yet.
func (c *Cache) Enrich(e *event.Event) {
	if e.Process.PID <= 0 {
		return
	}
	self, ok := c.lookup(e.Process.PID, &e.Process)
	if ok {
		p := &e.Process
		if p.PPID == 0 {
			p.PPID = self.PPID
		}
		if p.Name == "" {
			p.Name = self.Name
		}
		if p.Exe == "" {
			p.Exe = self.Exe
		}
		if p.Args == nil {
			p.Args = self.Args
		}
		if p.CmdLine == "" {
			p.CmdLine = self.CmdLine
		}
		if p.Cwd == "" {
			p.Cwd = self.Cwd
		}
		// What the exec event (or /proc) told about the process.
		carryExecFields(p, self)
	}
	ppid := e.Process.PPID
	if ppid <= 0 || ppid == e.Process.PID {
		return
	}
	parent, ok := c.lookup(ppid, nil)
	if !ok {
		return
	}
	e.Parent = &parent
	e.Ancestors = e.Ancestors[:0]
	seen := func(pid int32) bool { // cycles can only come from corrupt events
		if pid == e.Process.PID || pid == parent.PID {
			return true
		}
		for _, a := range e.Ancestors {
			if a.PID == pid {
				return true
			}
		}
		return false
	}
	cur := parent
	for len(e.Ancestors) < MaxAncestors && cur.PID != 1 && cur.PPID > 0 && !seen(cur.PPID) {
		a, ok := c.lookup(cur.PPID, nil)
		if !ok {
			break
		}
		e.Ancestors = append(e.Ancestors, event.Ancestor{PID: a.PID, Name: a.Name, Exe: a.Exe, Args: a.Args})
		cur = a
	}
	if len(e.Ancestors) == 0 {
		e.Ancestors = nil
	}
}

// lookup returns pid from the cache, else from /proc, else from ev when
// given, adding what it found. The returned Process shares its Args with
// the cache: callers must not modify them.
func (c *Cache) lookup(pid int32, ev *event.Process) (event.Process, bool) {
	c.mu.Lock()
	if n, ok := c.procs[pid]; ok {
		c.lru.MoveToFront(n.lruEl)
		p := n.p
		c.mu.Unlock()
		return p, true
	}
	c.mu.Unlock()
	p, err := readProc(c.o.Proc, pid, c.boot)
	if err != nil {
		if ev == nil || ev.PID != pid {
			return event.Process{}, false
		}
		p = overlay(event.Process{}, *ev)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.procs[pid]; ok { // added meanwhile
		return n.p, true
	}
	c.put(p)
	return p, true
}

// Get returns the cached process pid, without reading /proc.
func (c *Cache) Get(pid int32) (event.Process, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.procs[pid]
	if !ok {
		return event.Process{}, false
	}
	c.lru.MoveToFront(n.lruEl)
	return n.p, true
}

// Len returns the number of cached processes, exited ones included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.procs)
}

// put adds or replaces p as a live process (a reused PID replaces the
// exited one), evicting expired exits, then exited processes, then the
// least recently used to stay within MaxEntries. c.mu must be held.
func (c *Cache) put(p event.Process) {
	if n, ok := c.procs[p.PID]; ok {
		n.p = p
		if n.exitEl != nil {
			c.exited.Remove(n.exitEl)
			n.exitEl, n.exitedAt = nil, time.Time{}
		}
		c.lru.MoveToFront(n.lruEl)
		return
	}
	c.expire()
	for len(c.procs) >= c.o.MaxEntries {
		if f := c.exited.Front(); f != nil {
			c.remove(f.Value.(*node))
		} else {
			c.remove(c.lru.Back().Value.(*node))
		}
	}
	n := &node{p: p}
	n.lruEl = c.lru.PushFront(n)
	c.procs[p.PID] = n
}

// expire evicts processes that exited more than ExitGrace ago. c.mu must
// be held.
func (c *Cache) expire() {
	now := c.now()
	for f := c.exited.Front(); f != nil; f = c.exited.Front() {
		if now.Sub(f.Value.(*node).exitedAt) <= c.o.ExitGrace {
			return
		}
		c.remove(f.Value.(*node))
	}
}

func (c *Cache) remove(n *node) {
	delete(c.procs, n.p.PID)
	c.lru.Remove(n.lruEl)
	if n.exitEl != nil {
		c.exited.Remove(n.exitEl)
	}
}
