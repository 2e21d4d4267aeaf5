// Package profile learns what each workload class normally does — the
// executables it runs (path and SHA-256), its parent → child process
// pairs, the ports it listens on, the destinations it connects to and the
// paths it writes — and reports deviations from that behaviour, in
// NeuVector's discover → monitor → protect model. Profiles are kept per
// class (a Kubernetes workload or an image repository), promoted from
// discover to monitor after a learning window, re-learned when the image
// digest changes, stored one YAML file per class and exported and imported
// as YAML for review. It reads events and its own files only: it hashes
// nothing itself (the agent supplies Options.Hash) and it acts on nothing
// (a deviation with Block set is for the response stage to carry out).
package profile

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Mode is what a class's profile does with an event.
type Mode string

// The modes.
const (
	// Discover learns: everything seen is added to the profile, nothing is
	// reported.
	Discover Mode = "discover"
	// Monitor reports deviations (Block false) and learns nothing.
	Monitor Mode = "monitor"
	// Protect reports deviations with Block true.
	Protect Mode = "protect"
)

// Valid reports whether m is one of the three modes.
func (m Mode) Valid() bool { return m == Discover || m == Monitor || m == Protect }

// Profile is one class's learned behaviour. The lists are sorted.
type Profile struct {
	Class       string `yaml:"class"`
	ImageDigest string `yaml:"image_digest,omitempty"`
	// PreviousDigests are digests this class ran before ImageDigest. An
	// event from one of them (an old pod during a rolling update) does not
	// start another re-learn.
	PreviousDigests []string `yaml:"previous_digests,omitempty"`
	Mode            Mode     `yaml:"mode"`
	// Since is when learning (re)started.
	Since time.Time `yaml:"since"`
	// PromoteAt is when discover becomes monitor; zero: never by itself.
	PromoteAt time.Time `yaml:"promote_at,omitempty"`
	// ZeroDrift: in monitor and protect, any exec of a file that is not
	// from the image (overlay upper layer, memfd, deleted file) deviates.
	ZeroDrift   bool   `yaml:"zero_drift,omitempty"`
	Executables []Exec `yaml:"executables,omitempty"`
	Pairs       []Pair `yaml:"pairs,omitempty"`
	Listen      []Port `yaml:"listen,omitempty"`
	Outbound    []Dest `yaml:"outbound,omitempty"`
	// Writes are path patterns: an exact path, a path.Match pattern whose
	// "*" stands for one path component or part of one ("/proc/*/fd"), or
	// a directory followed by "/**" for anything below it ("/tmp/**").
	Writes []string `yaml:"writes,omitempty"`
	// Truncated names the lists ("executables", "pairs", "listen",
	// "outbound", "writes") that reached Options.MaxItems and stopped
	// learning.
	Truncated []string  `yaml:"truncated,omitempty"`
	Updated   time.Time `yaml:"updated"`
}

// Exec is an executable the class runs. SHA256 is empty when it could not
// be hashed; then the path alone is checked.
type Exec struct {
	Path   string `yaml:"path"`
	SHA256 string `yaml:"sha256,omitempty"`
}

// Pair is a parent executable starting a child executable.
type Pair struct {
	Parent string `yaml:"parent"`
	Child  string `yaml:"child"`
}

// Port is a port the class listens on. Proto is "tcp", "udp" or "any"
// (the sensor does not always know the socket type).
type Port struct {
	Proto string `yaml:"proto"`
	Port  int    `yaml:"port"`
}

// Dest is an outbound destination. Host is an IP address, a CIDR prefix,
// a DNS name, or "*.example.com" for any name below example.com. Port 0
// is any port.
type Dest struct {
	Host string `yaml:"host"`
	Port int    `yaml:"port"`
}

// Deviation is an event that falls outside its class's profile.
type Deviation struct {
	Class string
	// Kind is "exec", "pair", "listen", "outbound", "write" or "drift".
	Kind   string
	Detail string
	Mode   Mode
	// Block is set in protect mode: the response stage should stop it.
	Block bool
}

// Options configure a Store. The zero value of each field is replaced by
// its default (DefaultOptions).
type Options struct {
	// Learn is the discover window before promotion to monitor; default
	// 14 days; negative: never promote automatically.
	Learn time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Hash returns the hex SHA-256 of the event's executable (the agent
	// reads /proc/PID/exe). Nil: executables are learned by path only.
	// It is called once per new (path, inode) of a class, not per exec,
	// with the store locked.
	Hash func(e *event.Event) (string, error)
	// Dir holds the profiles, one YAML file per class. Empty: in memory
	// only, and Save does nothing.
	Dir string
	// ZeroDrift is the zero-drift setting of newly created profiles.
	ZeroDrift bool
	// MaxItems bounds each list of a profile; default 1024.
	MaxItems int
	// Logger gets "profile full" and re-learn notices; default discards.
	Logger *slog.Logger
}

// DefaultOptions returns the defaults: 14 days of learning, time.Now,
// 1024 items per list, no hashing, in memory.
func DefaultOptions() Options {
	return Options{
		Learn:    14 * 24 * time.Hour,
		Now:      time.Now,
		MaxItems: 1024,
		Logger:   slog.New(slog.DiscardHandler),
	}
}

// Store holds every class's profile. Observe is meant for one goroutine;
// every method is safe to call concurrently with the others.
type Store struct {
	opt Options

	mu      sync.Mutex
	classes map[string]*state
	// byContainer caches ClassOf per container ID so that Observe does
	// not build the class string on every event.
	byContainer map[string]string
}

// maxCachedContainers bounds byContainer; it is emptied when full.
const maxCachedContainers = 8192

// New opens a store and loads the profiles in o.Dir, if any.
func New(o Options) (*Store, error) {
	d := DefaultOptions()
	if o.Learn == 0 {
		o.Learn = d.Learn
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.MaxItems <= 0 {
		o.MaxItems = d.MaxItems
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	s := &Store{opt: o, classes: map[string]*state{}, byContainer: map[string]string{}}
	if o.Dir != "" {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// ErrUnknownClass is returned for a class the store has no profile for.
var ErrUnknownClass = errors.New("no profile for this class")

// Get returns a copy of class's profile.
func (s *Store) Get(class string) (Profile, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.classes[class]
	if !ok {
		return Profile{}, false
	}
	st.promoteDue(s.opt.Now())
	return st.profile(), true
}

// List returns a copy of every profile, ordered by class.
func (s *Store) List() []Profile {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opt.Now()
	out := make([]Profile, 0, len(s.classes))
	for _, st := range s.classes {
		st.promoteDue(now)
		out = append(out, st.profile())
	}
	slices.SortFunc(out, func(a, b Profile) int { return cmpString(a.Class, b.Class) })
	return out
}

// SetMode switches class to m. Switching to discover restarts the
// learning window (the profile keeps what it learned).
func (s *Store) SetMode(class string, m Mode) error {
	if !m.Valid() {
		return fmt.Errorf("profile %q: mode %q is not discover, monitor or protect", class, m)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.classes[class]
	if !ok {
		return fmt.Errorf("profile %q: %w", class, ErrUnknownClass)
	}
	now := s.opt.Now()
	st.promoteDue(now)
	if m == Discover && st.mode != Discover {
		st.promoteAt = s.promoteAt(now)
	}
	st.mode = m
	st.updated = now
	st.dirty = true
	return nil
}

func (s *Store) promoteAt(now time.Time) time.Time {
	if s.opt.Learn < 0 {
		return time.Time{}
	}
	return now.Add(s.opt.Learn)
}

// state is one class's profile in lookup form.
type state struct {
	class           string
	digest          string
	previousDigests []string
	mode            Mode
	since           time.Time
	promoteAt       time.Time
	zeroDrift       bool
	updated         time.Time
	truncated       []string
	dirty           bool

	execs map[string][]string // path → learned hashes ("" when unknown)
	nexec int
	// verified are (path, inode) pairs whose hash was checked; they are
	// not hashed again. In memory only.
	verified map[execKey]struct{}
	pairs    map[Pair]struct{}
	listen   map[Port]struct{}
	outIP    map[netip.AddrPort]struct{}
	outName  map[Dest]struct{}
	// outWild are CIDR prefixes, "*.domain" names and any-port names,
	// checked in turn.
	outWild []wildDest
	writes  writeSet
}

type execKey struct {
	path  string
	inode uint64
}

// maxVerified bounds state.verified; it is emptied when full.
const maxVerified = 4096

func newState(class string) *state {
	return &state{
		class:    class,
		execs:    map[string][]string{},
		verified: map[execKey]struct{}{},
		pairs:    map[Pair]struct{}{},
		listen:   map[Port]struct{}{},
		outIP:    map[netip.AddrPort]struct{}{},
		outName:  map[Dest]struct{}{},
		writes:   newWriteSet(),
	}
}

// profile copies st out, lists sorted.
func (st *state) profile() Profile {
	p := Profile{
		Class:           st.class,
		ImageDigest:     st.digest,
		PreviousDigests: slices.Clone(st.previousDigests),
		Mode:            st.mode,
		Since:           st.since,
		PromoteAt:       st.promoteAt,
		ZeroDrift:       st.zeroDrift,
		Truncated:       slices.Clone(st.truncated),
		Updated:         st.updated,
	}
	for path, hs := range st.execs {
		for _, h := range hs {
			p.Executables = append(p.Executables, Exec{Path: path, SHA256: h})
		}
	}
	slices.SortFunc(p.Executables, func(a, b Exec) int {
		if c := cmpString(a.Path, b.Path); c != 0 {
			return c
		}
		return cmpString(a.SHA256, b.SHA256)
	})
	for pr := range st.pairs {
		p.Pairs = append(p.Pairs, pr)
	}
	slices.SortFunc(p.Pairs, func(a, b Pair) int {
		if c := cmpString(a.Parent, b.Parent); c != 0 {
			return c
		}
		return cmpString(a.Child, b.Child)
	})
	for pt := range st.listen {
		p.Listen = append(p.Listen, pt)
	}
	slices.SortFunc(p.Listen, func(a, b Port) int {
		if a.Port != b.Port {
			return a.Port - b.Port
		}
		return cmpString(a.Proto, b.Proto)
	})
	for ap := range st.outIP {
		p.Outbound = append(p.Outbound, Dest{Host: ap.Addr().String(), Port: int(ap.Port())})
	}
	for d := range st.outName {
		p.Outbound = append(p.Outbound, d)
	}
	for _, w := range st.outWild {
		p.Outbound = append(p.Outbound, w.Dest)
	}
	slices.SortFunc(p.Outbound, func(a, b Dest) int {
		if c := cmpString(a.Host, b.Host); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	p.Writes = st.writes.list()
	return p
}

// fromProfile builds the lookup form of a validated profile.
func fromProfile(p *Profile) *state {
	st := newState(p.Class)
	st.digest = p.ImageDigest
	st.previousDigests = slices.Clone(p.PreviousDigests)
	st.mode = p.Mode
	st.since = p.Since
	st.promoteAt = p.PromoteAt
	st.zeroDrift = p.ZeroDrift
	st.truncated = slices.Clone(p.Truncated)
	st.updated = p.Updated
	for _, e := range p.Executables {
		if !slices.Contains(st.execs[e.Path], e.SHA256) {
			st.execs[e.Path] = append(st.execs[e.Path], e.SHA256)
			st.nexec++
		}
	}
	for _, pr := range p.Pairs {
		st.pairs[pr] = struct{}{}
	}
	for _, pt := range p.Listen {
		st.listen[pt] = struct{}{}
	}
	for _, d := range p.Outbound {
		st.addDest(d)
	}
	for _, w := range p.Writes {
		st.writes.add(w)
	}
	return st
}

func (st *state) addDest(d Dest) {
	if a, err := netip.ParseAddr(d.Host); err == nil {
		st.outIP[netip.AddrPortFrom(a.Unmap(), uint16(d.Port))] = struct{}{}
		return
	}
	if w, ok := newWildDest(d); ok {
		if !slices.ContainsFunc(st.outWild, func(x wildDest) bool { return x.Dest == d }) {
			st.outWild = append(st.outWild, w)
		}
		return
	}
	st.outName[d] = struct{}{}
}

func (st *state) noutbound() int { return len(st.outIP) + len(st.outName) + len(st.outWild) }

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fileMode is the permission of saved profiles.
const fileMode os.FileMode = 0o600
