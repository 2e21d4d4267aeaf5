package agent

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/response"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/version"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Uplink is where the agent reports to a server (internal/uplink's
// Client): Send spools v as a record of kind (wire.KindAlert, …) and must
// not block on the network; it must not retain v.
type Uplink interface {
	Send(kind string, v any) error
}

// asset is store.Asset's JSON (the agent does not import the store).
type asset struct {
	Kind      string            `json:"kind"`
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Labels    map[string]string `json:"labels,omitempty"`
	Data      any               `json:"data,omitempty"`
	FirstSeen time.Time         `json:"first_seen"`
	LastSeen  time.Time         `json:"last_seen"`
	Gone      bool              `json:"gone,omitempty"`
}

// Asset kinds, as store names them.
const (
	assetHost      = "host"
	assetContainer = "container"
	assetImage     = "image"
)

// reporter sends what the agent reports besides alerts' own lines: the
// host, containers and images when first seen, and profiles when they
// change. A nil reporter reports nothing.
type reporter struct {
	up  Uplink
	log *slog.Logger
	now func() time.Time
	// containers and images already reported, by ID (looked up on every
	// event: no key is built).
	containers, images map[string]bool

	mu    sync.Mutex
	sumOf map[string][sha256.Size]byte // class → the profile JSON last sent

	events atomic.Uint64 // events observed, for the heartbeats
}

// EventCounter is an Uplink that reports how many events the agent saw
// (uplink.Client's heartbeats): the agent hands it its count.
type EventCounter interface {
	SetEventCount(func() uint64)
}

// maxSeen bounds the containers and images remembered as reported; past
// it the set starts over (and a long-running container is reported again).
const maxSeen = 65536

func newReporter(up Uplink, log *slog.Logger) *reporter {
	r := &reporter{up: up, log: log, now: time.Now, containers: make(map[string]bool), images: make(map[string]bool), sumOf: make(map[string][sha256.Size]byte)}
	if ec, ok := up.(EventCounter); ok {
		ec.SetEventCount(r.events.Load)
	}
	return r
}

func (r *reporter) send(kind string, v any) {
	if err := r.up.Send(kind, v); err != nil {
		r.log.Warn("uplink: spooling failed", "kind", kind, "err", err)
	}
}

// alert reports an alert as written.
func (r *reporter) alert(a *alert.Alert) {
	if r == nil {
		return
	}
	r.send(wire.KindAlert, a)
}

// host reports the host the agent runs on.
func (r *reporter) host(hostname string) {
	if r == nil {
		return
	}
	r.send(wire.KindAsset, HostAsset(hostname, "/", r.now()))
}

// HostAsset describes the host as an inventory asset (store.Asset's JSON):
// ID the machine ID (the hostname without one), the OS from
// root/etc/os-release, the kernel release and the agent's version.
func HostAsset(hostname, root string, now time.Time) any {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	id := hostname
	if b, err := os.ReadFile(root + "etc/machine-id"); err == nil && len(bytes.TrimSpace(b)) > 0 {
		id = string(bytes.TrimSpace(b))
	}
	osr := osRelease(root + "etc/os-release")
	var u unix.Utsname
	kernel := ""
	if unix.Uname(&u) == nil {
		kernel = unix.ByteSliceToString(u.Release[:])
	}
	return asset{Kind: assetHost, ID: id, Name: hostname, FirstSeen: now, LastSeen: now, Data: map[string]any{
		"hostname": hostname, "os": osr, "kernel": kernel, "arch": runtime.GOARCH, "agent_version": version.Version,
	}}
}

// osRelease reads the identifying fields of an os-release file.
func osRelease(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "ID", "VERSION_ID", "PRETTY_NAME", "VERSION_CODENAME", "NAME":
			out[strings.ToLower(k)] = strings.Trim(v, `"'`)
		}
	}
	return out
}

// observe reports e's container and image the first time they are seen.
func (r *reporter) observe(e *event.Event) {
	if r == nil {
		return
	}
	r.events.Add(1)
	if e.Workload == nil || e.Workload.ContainerID == "" {
		return
	}
	w := e.Workload
	if e.Type == event.ProcessExit && e.Process.VPID == 1 {
		// The container's init ended: so did the container.
		if _, seen := r.containers[w.ContainerID]; seen {
			delete(r.containers, w.ContainerID)
			a := containerAsset(w, r.now())
			a.Gone = true
			r.send(wire.KindAsset, a)
		}
		return
	}
	// The value says the container was reported with its metadata; one
	// first seen before the runtime answered is reported again once it
	// has them.
	complete, seen := r.containers[w.ContainerID]
	if seen && (complete || w.Image == "") {
		return
	}
	if len(r.containers) >= maxSeen {
		clear(r.containers)
	}
	r.containers[w.ContainerID] = w.Image != ""
	now := r.now()
	r.send(wire.KindAsset, containerAsset(w, now))
	img := w.ImageDigest
	if img == "" {
		img = w.Image
	}
	if img == "" || r.images[img] {
		return
	}
	if len(r.images) >= maxSeen {
		clear(r.images)
	}
	r.images[img] = true
	r.send(wire.KindAsset, asset{Kind: assetImage, ID: img, Name: w.Image, FirstSeen: now, LastSeen: now,
		Data: map[string]any{"reference": w.Image, "digest": w.ImageDigest}})
}

func containerAsset(w *event.Workload, now time.Time) asset {
	name := w.ContainerName
	if name == "" {
		name = w.ContainerID[:min(12, len(w.ContainerID))]
	}
	return asset{Kind: assetContainer, ID: w.ContainerID, Name: name, Labels: w.Labels,
		FirstSeen: now, LastSeen: now, Data: map[string]any{
			"host": w.Host, "runtime": w.Runtime, "image": w.Image, "image_digest": w.ImageDigest,
			"privileged": w.Privileged, "network_mode": w.NetworkMode, "pod_name": w.PodName,
			"pod_namespace": w.PodNamespace, "started_at": w.StartedAt,
		}}
}

// profiles reports the profiles that changed since they were last sent,
// or all of them with force. Only classes is reported when given.
func (r *reporter) profiles(ps *profile.Store, force bool, classes ...string) {
	if r == nil || ps == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps.List() {
		if len(classes) > 0 && !contains(classes, p.Class) {
			continue
		}
		b, err := json.Marshal(p)
		if err != nil {
			r.log.Warn("uplink: encoding a profile", "class", p.Class, "err", err)
			continue
		}
		sum := sha256.Sum256(b)
		if !force && r.sumOf[p.Class] == sum {
			continue
		}
		r.sumOf[p.Class] = sum
		r.send(wire.KindProfile, wire.Profile{Class: p.Class, Mode: string(p.Mode), Data: b})
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// ResponseLog is a response.Options.Log that sends each record the
// Responder writes (automatic or an operator's) to up as a
// wire.KindResponse record; io.MultiWriter it with the audit file. It
// never fails the write: a spool failure is logged.
func ResponseLog(up Uplink, log *slog.Logger) io.Writer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return responseLog{up: up, log: log}
}

type responseLog struct {
	up  Uplink
	log *slog.Logger
}

func (w responseLog) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := w.up.Send(wire.KindResponse, json.RawMessage(bytes.Clone(line))); err != nil {
			w.log.Warn("uplink: spooling a response record failed", "err", err)
		}
	}
	return len(p), nil
}

// Handler runs the server's commands on a Detector (it implements
// internal/uplink's Handler).
type Handler struct {
	d   *Detector
	rep *reporter
	o   HandlerOptions
}

// HandlerOptions configure a Handler.
type HandlerOptions struct {
	// Uplink receives the profiles a "profiles" or "set_mode" command
	// asks for.
	Uplink Uplink
	// Rules builds the ruleset with extra (Falco YAML from the server;
	// nil for none) on top of the agent's own rules, for a "rules"
	// command; nil refuses the command.
	Rules  func(extra []byte) (*rules.Ruleset, error)
	Logger *slog.Logger
}

// NewHandler returns a Handler over d.
func NewHandler(d *Detector, o HandlerOptions) *Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{d: d, o: o}
	if o.Uplink != nil {
		h.rep = newReporter(o.Uplink, o.Logger)
	}
	return h
}

// responseActions are what a respond command may ask for.
var responseActions = map[response.Action]bool{
	response.Kill: true, response.Freeze: true, response.Unfreeze: true,
	response.Isolate: true, response.Unisolate: true, response.Stop: true,
}

// parseTarget reads a respond command's target: one JSON object with
// response.Target's fields only.
func parseTarget(b []byte) (response.Target, error) {
	var t response.Target
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return t, fmt.Errorf("respond: target %.64q: %w", b, err)
	}
	if dec.More() {
		return t, fmt.Errorf("respond: target %.64q: more than one JSON value", b)
	}
	if t.PID < 0 {
		return t, fmt.Errorf("respond: target PID %d", t.PID)
	}
	return t, nil
}

// Handle runs c. A respond or undo is enforced whatever the policy's mode
// (an operator asked for it) and recorded with the command's actor; its
// record comes back in the result (and goes up as a response record
// through ResponseLog).
func (h *Handler) Handle(ctx context.Context, c wire.Command) wire.CommandResult {
	res := wire.CommandResult{ID: c.ID}
	fail := func(err error) wire.CommandResult {
		res.Error = err.Error()
		h.o.Logger.Warn("server command refused or failed", "id", c.ID, "kind", c.Kind, "actor", c.Actor, "err", err)
		return res
	}
	actor := c.Actor
	if actor == "" {
		actor = "operator"
	}
	d := h.d
	switch c.Kind {
	case wire.CommandRespond, wire.CommandUndo:
		if d.resp == nil {
			return fail(errors.New("response is off on this agent (--no-response)"))
		}
		var rec response.Record
		if c.Kind == wire.CommandUndo {
			if c.RecordID == "" {
				return fail(errors.New("undo: no record ID"))
			}
			r, err := d.resp.Undo(ctx, c.RecordID, actor)
			if r.ID == "" && err != nil {
				return fail(err)
			}
			rec = r
		} else {
			act := response.Action(c.Action)
			if !responseActions[act] {
				return fail(fmt.Errorf("respond: unknown action %q", c.Action))
			}
			t, err := parseTarget(c.Target)
			if err != nil {
				return fail(err)
			}
			reason := c.Reason
			if reason == "" {
				reason = "operator request"
			}
			rec = d.resp.Do(ctx, act, t, reason, true, false, actor)
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return fail(err)
		}
		res.Record = b
		res.OK = rec.Outcome == response.OutcomeDone
		res.Error = rec.Error
		return res
	case wire.CommandSetMode:
		if d.prof == nil {
			return fail(errors.New("profiles are off on this agent (--no-profiles)"))
		}
		m := profile.Mode(c.Mode)
		if !m.Valid() {
			return fail(fmt.Errorf("set_mode: mode %q: want discover, monitor or protect", c.Mode))
		}
		if err := d.prof.SetMode(c.Class, m); err != nil {
			return fail(err)
		}
		d.modesChanged.Store(true)
		if err := d.prof.Save(); err != nil {
			h.o.Logger.Warn("saving profiles after a mode change", "err", err)
		}
		h.o.Logger.Info("profile mode set by the server", "class", c.Class, "mode", m, "actor", actor)
		h.rep.profiles(d.prof, true, c.Class)
	case wire.CommandProfiles:
		if d.prof == nil {
			return fail(errors.New("profiles are off on this agent (--no-profiles)"))
		}
		if h.rep == nil {
			return fail(errors.New("no uplink to send profiles on"))
		}
		h.rep.profiles(d.prof, true)
	case wire.CommandRules:
		if h.o.Rules == nil {
			return fail(errors.New("rules cannot be replaced on this agent (--no-rules)"))
		}
		rs, err := h.o.Rules(c.Rules)
		if err != nil {
			return fail(fmt.Errorf("rules from the server: %w; keeping the previous rules", err))
		}
		d.SetRules(rs)
		h.o.Logger.Info("rules replaced by the server", "rules", len(rs.Rules()), "extra_bytes", len(c.Rules), "actor", actor)
	default:
		return fail(fmt.Errorf("unknown command %q", c.Kind))
	}
	res.OK = true
	return res
}
