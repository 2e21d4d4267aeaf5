// Package response contains threats: it kills a process (with a guard
// against PID reuse), freezes and thaws a container's cgroup, isolates a
// container's network with nftables inside its network namespace, and stops
// a container through the Docker API. Every request, done or not, becomes a
// Record written to an audit log; in monitor mode the Record says what would
// have been done and nothing is touched. Policy decides, per workload class,
// which actions an alert calls for and whether they are enforced. The
// package never acts on the host itself: freeze, isolate and stop refuse a
// target that is not in a container.
package response

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/moby/moby/client"
)

// Action is what is done to a target.
type Action string

// The actions. Unfreeze and Unisolate are the undo of Freeze and Isolate.
const (
	Kill      Action = "kill"
	Freeze    Action = "freeze"
	Unfreeze  Action = "unfreeze"
	Isolate   Action = "isolate"
	Unisolate Action = "unisolate"
	Stop      Action = "stop"
)

// Modes and outcomes as Records carry them.
const (
	ModeMonitor = "monitor"
	ModeEnforce = "enforce"

	OutcomeDone    = "done"
	OutcomeWouldDo = "would-do"
	OutcomeFailed  = "failed"
)

// Target is what an action is aimed at.
type Target struct {
	// PID is the process, in the host's PID namespace (the one Options.Proc
	// shows).
	PID int32 `json:"pid,omitempty"`
	// StartTime is when PID started, as /proc/PID/stat's starttime plus the
	// boot time gives it (internal/proccache computes it that way; see
	// StartTimeOf). Kill refuses when it is zero or does not match: the PID
	// may have been reused.
	StartTime time.Time `json:"start_time,omitzero"`
	// ContainerID names the container. When PID is set too, PID must be in
	// that container.
	ContainerID string `json:"container_id,omitempty"`
	Runtime     string `json:"runtime,omitempty"`
	// Class is the workload class the policy was chosen by.
	Class string `json:"class,omitempty"`
}

// Record is one response request and what came of it: the audit trail.
type Record struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Action Action    `json:"action"`
	Target Target    `json:"target"`
	// Reason is the rule name or "profile: <deviation>".
	Reason string `json:"reason"`
	// Mode is "monitor" (recorded, not done) or "enforce".
	Mode      string `json:"mode"`
	Automatic bool   `json:"automatic"`
	// Actor is "agent" or the operator's name.
	Actor string `json:"actor"`
	// Outcome is "done", "would-do" (monitor mode) or "failed".
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
	// UndoOf is the ID of the record this one undoes.
	UndoOf string `json:"undo_of,omitempty"`
	// Undone is set on a freeze or isolate record once it has been undone.
	Undone bool `json:"undone,omitempty"`
}

// Options configure a Responder. The zero value of each field means its
// default.
type Options struct {
	// Log receives one JSON Record per line: the audit trail. Nil keeps
	// records in memory only.
	Log io.Writer
	// DockerHost is the Docker API address; empty uses DOCKER_HOST or the
	// default socket.
	DockerHost string
	// Cgroup is where cgroup hierarchies are mounted (default /sys/fs/cgroup).
	Cgroup string
	// Proc is the host's procfs (default /proc).
	Proc string
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets warnings (default slog.Default()).
	Logger *slog.Logger
	// MaxRecords bounds Records() (default 1000).
	MaxRecords int
	// Timeout bounds one action when the context has no earlier deadline,
	// including the wait for a freezer to report the new state (default 30s).
	Timeout time.Duration
	// StopGrace is what a stopped container gets between SIGTERM and SIGKILL,
	// rounded up to whole seconds (default 10s).
	StopGrace time.Duration
}

// DefaultOptions returns the defaults New fills in.
func DefaultOptions() Options {
	return Options{
		Cgroup:     "/sys/fs/cgroup",
		Proc:       "/proc",
		Now:        time.Now,
		Logger:     slog.Default(),
		MaxRecords: 1000,
		Timeout:    30 * time.Second,
		StopGrace:  10 * time.Second,
	}
}

// Responder carries out actions and keeps their records. It is safe for
// concurrent use.
type Responder struct {
	o Options

	dockerOnce sync.Once
	docker     *client.Client
	dockerErr  error

	mu      sync.Mutex
	records []Record // a ring of at most MaxRecords; oldest at next once full
	next    int
	undo    map[string]undoInfo // record ID → what Undo needs
}

// undoInfo is what an undoable record leaves behind for Undo.
type undoInfo struct {
	freezer freezer // the cgroup that was frozen
}

// New builds a Responder. It connects to nothing until an action needs it.
func New(o Options) (*Responder, error) {
	d := DefaultOptions()
	if o.Cgroup == "" {
		o.Cgroup = d.Cgroup
	}
	if o.Proc == "" {
		o.Proc = d.Proc
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = d.MaxRecords
	}
	if o.Timeout <= 0 {
		o.Timeout = d.Timeout
	}
	if o.StopGrace <= 0 {
		o.StopGrace = d.StopGrace
	}
	return &Responder{o: o, undo: make(map[string]undoInfo)}, nil
}

// Close releases the Docker client, if one was made.
func (r *Responder) Close() error {
	if r.docker != nil {
		return r.docker.Close()
	}
	return nil
}

func (r *Responder) dockerClient() (*client.Client, error) {
	r.dockerOnce.Do(func() {
		opts := []client.Opt{client.FromEnv}
		if r.o.DockerHost != "" {
			opts = append(opts, client.WithHost(r.o.DockerHost))
		}
		r.docker, r.dockerErr = client.New(opts...)
		if r.dockerErr != nil {
			r.dockerErr = fmt.Errorf("docker client: %w", r.dockerErr)
		}
	})
	return r.docker, r.dockerErr
}

// Do carries out action a on t, or in monitor mode (enforce false) only
// records that it would. reason is the rule name or "profile: <deviation>";
// automatic tells an agent decision from an operator's; actor is "agent" or
// the operator's name. The returned Record is also written to the log and
// kept in Records(); its Outcome says whether the action was done.
func (r *Responder) Do(ctx context.Context, a Action, t Target, reason string, enforce, automatic bool, actor string) Record {
	rec := Record{
		Action:    a,
		Target:    t,
		Reason:    reason,
		Mode:      ModeMonitor,
		Automatic: automatic,
		Actor:     actor,
	}
	if enforce {
		rec.Mode = ModeEnforce
	}
	var info undoInfo
	err := check(a, t)
	switch {
	case err != nil:
	case !enforce:
		rec.Outcome = OutcomeWouldDo
	default:
		ctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
		info, err = r.act(ctx, a, t)
		cancel()
	}
	if err != nil {
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
	} else if rec.Outcome == "" {
		rec.Outcome = OutcomeDone
	}
	rec = r.keep(rec, info)
	if enforce {
		lvl := slog.LevelInfo
		if rec.Outcome == OutcomeFailed {
			lvl = slog.LevelWarn
		}
		r.o.Logger.Log(ctx, lvl, "response", "id", rec.ID, "action", a, "pid", t.PID, "container", t.ContainerID,
			"reason", reason, "actor", actor, "outcome", rec.Outcome, "err", rec.Error)
	}
	return rec
}

// check refuses requests that cannot be right whatever the mode: an unknown
// action, or a target the action cannot apply to.
func check(a Action, t Target) error {
	switch a {
	case Kill:
		if t.PID <= 0 {
			return fmt.Errorf("kill: no PID in the target")
		}
		if t.PID == 1 {
			return fmt.Errorf("kill: refusing to kill PID 1 of the host")
		}
	case Freeze, Unfreeze, Isolate, Unisolate, Stop:
		if t.ContainerID == "" {
			return fmt.Errorf("%s: the target is not in a container (acting on the host is refused)", a)
		}
		if t.PID < 0 {
			return fmt.Errorf("%s: bad PID %d", a, t.PID)
		}
	default:
		return fmt.Errorf("unknown action %q", a)
	}
	return nil
}

func (r *Responder) act(ctx context.Context, a Action, t Target) (undoInfo, error) {
	switch a {
	case Kill:
		return undoInfo{}, r.kill(t)
	case Freeze:
		f, err := r.freezerOf(ctx, t)
		if err != nil {
			return undoInfo{}, err
		}
		return undoInfo{freezer: f}, f.set(ctx, true)
	case Unfreeze:
		f, err := r.freezerOf(ctx, t)
		if err != nil {
			return undoInfo{}, err
		}
		return undoInfo{}, f.set(ctx, false)
	case Isolate:
		return undoInfo{}, r.isolate(ctx, t, true)
	case Unisolate:
		return undoInfo{}, r.isolate(ctx, t, false)
	case Stop:
		return undoInfo{}, r.stop(ctx, t)
	}
	return undoInfo{}, fmt.Errorf("unknown action %q", a)
}

// keep stamps, stores and logs a record.
func (r *Responder) keep(rec Record, info undoInfo) Record {
	rec.ID = newID()
	rec.Time = r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.records) < r.o.MaxRecords {
		r.records = append(r.records, rec)
	} else {
		delete(r.undo, r.records[r.next].ID)
		r.records[r.next] = rec
		r.next = (r.next + 1) % len(r.records)
	}
	if rec.Outcome == OutcomeDone && (rec.Action == Freeze || rec.Action == Isolate) {
		r.undo[rec.ID] = info
	}
	if r.o.Log != nil {
		b, err := json.Marshal(rec)
		if err == nil {
			_, err = r.o.Log.Write(append(b, '\n'))
		}
		if err != nil {
			r.o.Logger.Warn("response: writing the audit record failed", "id", rec.ID, "action", rec.Action, "err", err)
		}
	}
	return rec
}

// Records returns the kept records, oldest first, newest last (at most
// Options.MaxRecords).
func (r *Responder) Records() []Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Record, 0, len(r.records))
	out = append(out, r.records[r.next:]...)
	return append(out, r.records[:r.next]...)
}

// ErrNotUndoable is returned by Undo for a record that cannot be undone: not
// a freeze or isolation, not done (monitor mode or failed), already undone,
// or no longer in the history.
var ErrNotUndoable = errors.New("record cannot be undone")

// Undo thaws the container of an earlier freeze record or lifts an earlier
// isolation, always for real (it is an operator's act). The new Record,
// with UndoOf set, is logged and kept like any other; an error is returned
// with it when the undo failed. Unknown or non-undoable IDs return
// ErrNotUndoable and no record.
func (r *Responder) Undo(ctx context.Context, id string, actor string) (Record, error) {
	r.mu.Lock()
	var orig *Record
	for i := range r.records {
		if r.records[i].ID == id {
			orig = &r.records[i]
			break
		}
	}
	if orig == nil {
		r.mu.Unlock()
		return Record{}, fmt.Errorf("undo %s: no such record in the history: %w", id, ErrNotUndoable)
	}
	o := *orig
	info, ok := r.undo[id]
	r.mu.Unlock()
	switch {
	case o.Action != Freeze && o.Action != Isolate:
		return Record{}, fmt.Errorf("undo %s: a %s cannot be undone: %w", id, o.Action, ErrNotUndoable)
	case o.Outcome != OutcomeDone:
		return Record{}, fmt.Errorf("undo %s: the %s was not done (%s): %w", id, o.Action, o.Outcome, ErrNotUndoable)
	case o.Undone || !ok:
		return Record{}, fmt.Errorf("undo %s: already undone: %w", id, ErrNotUndoable)
	}
	rec := Record{
		Target:    o.Target,
		Reason:    "undo " + id,
		Mode:      ModeEnforce,
		Automatic: false,
		Actor:     actor,
		UndoOf:    id,
	}
	cctx, cancel := context.WithTimeout(ctx, r.o.Timeout)
	var err error
	if o.Action == Freeze {
		rec.Action = Unfreeze
		err = info.freezer.set(cctx, false)
	} else {
		rec.Action = Unisolate
		err = r.isolate(cctx, o.Target, false)
	}
	cancel()
	if err != nil {
		rec.Outcome, rec.Error = OutcomeFailed, err.Error()
	} else {
		rec.Outcome = OutcomeDone
		r.mu.Lock()
		for i := range r.records {
			if r.records[i].ID == id {
				r.records[i].Undone = true
			}
		}
		delete(r.undo, id)
		r.mu.Unlock()
	}
	rec = r.keep(rec, undoInfo{})
	if err != nil {
		return rec, fmt.Errorf("undo %s: %w", id, err)
	}
	return rec, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}
