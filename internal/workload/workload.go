// Package workload identifies the workload of an event: the host, a
// container (Docker, containerd, CRI-O, Podman) and its Kubernetes pod, from
// the process's cgroup and the container runtime's labels, and the names of
// its users from the workload's own passwd and group files. It never talks
// to the Kubernetes API server, and only reads from the runtime: it must
// not create, change or stop containers.
package workload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sync/singleflight"

	"github.com/vigil-cwpp/vigil/internal/event"
)

// Kubernetes labels the CRI puts on containers and sandboxes.
const (
	LabelPodName      = "io.kubernetes.pod.name"
	LabelPodNamespace = "io.kubernetes.pod.namespace"
	LabelPodUID       = "io.kubernetes.pod.uid"
)

// Options configure a Resolver. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// DockerHost is the Docker endpoint; empty means DOCKER_HOST or the
	// default socket.
	DockerHost string
	// Hostname names the host; empty means os.Hostname().
	Hostname string
	// CacheTTL is how long metadata of an exited container, and a failed
	// lookup, is kept. Default 5m.
	CacheTTL time.Duration
	// Proc is the proc mount; default "/proc".
	Proc string
	// CgroupRoot is the cgroup v2 mount, searched for a cgroup ID when its
	// process is gone; default "/sys/fs/cgroup". Used only when it is a
	// pure cgroup v2 mount.
	CgroupRoot string
}

// DefaultOptions returns the defaults NewResolver fills in.
func DefaultOptions() Options {
	return Options{Logger: slog.Default(), CacheTTL: 5 * time.Minute, Proc: "/proc", CgroupRoot: "/sys/fs/cgroup"}
}

const (
	// missRetry is how soon a failed runtime lookup is retried.
	missRetry = 2 * time.Second
	// inspectTimeout bounds one lookup, so that a hung daemon delays
	// events by that much at most.
	inspectTimeout = 5 * time.Second
	// maxCgroupIDs bounds the cgroup ID cache; it is cleared when full.
	maxCgroupIDs = 1 << 16
	// watchLookups bounds the lookups Watch runs at once.
	watchLookups = 8
)

// Resolver maps processes to workloads. It is safe for concurrent use.
type Resolver struct {
	log    *slog.Logger
	host   string
	ttl    time.Duration
	proc   string
	cgRoot string
	// unified is true on a pure cgroup v2 host.
	unified bool
	docker  *client.Client // nil when no client could be built
	now     func() time.Time

	flight singleflight.Group

	mu         sync.Mutex
	containers map[string]*entry // by container ID
	// died holds containers seen to die before any lookup stored them.
	died    map[string]time.Time
	cgroups map[uint64]identity // by cgroup v2 ID; a zero identity is the host
}

type entry struct {
	w *event.Workload
	// exited is when the container was seen to stop; zero while running.
	exited time.Time
	// retry, when set, is when an incomplete entry (IDs only, or as
	// inspected at create) may be looked up again.
	retry time.Time
}

// NewResolver builds a Resolver. It does not fail when Docker is absent:
// workloads then carry IDs only.
func NewResolver(o Options) (*Resolver, error) {
	d := DefaultOptions()
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.CacheTTL <= 0 {
		o.CacheTTL = d.CacheTTL
	}
	if o.Proc == "" {
		o.Proc = d.Proc
	}
	if o.CgroupRoot == "" {
		o.CgroupRoot = d.CgroupRoot
	}
	if o.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("reading hostname: %w", err)
		}
		o.Hostname = h
	}
	r := &Resolver{
		log:        o.Logger,
		host:       o.Hostname,
		ttl:        o.CacheTTL,
		proc:       o.Proc,
		cgRoot:     o.CgroupRoot,
		now:        time.Now,
		containers: make(map[string]*entry),
		died:       make(map[string]time.Time),
		cgroups:    make(map[uint64]identity),
	}
	if self, err := os.ReadFile(filepath.Join(o.Proc, "self", "cgroup")); err == nil {
		lines := strings.Fields(string(self))
		r.unified = len(lines) == 1 && strings.HasPrefix(lines[0], "0::")
	}
	opts := []client.Opt{client.FromEnv}
	if o.DockerHost != "" {
		opts = append(opts, client.WithHost(o.DockerHost))
	}
	c, err := client.New(opts...)
	if err != nil {
		r.log.Warn("docker client unavailable; workloads carry IDs only", "err", err)
	} else {
		r.docker = c
	}
	return r, nil
}

// Close releases the runtime client.
func (r *Resolver) Close() error {
	if r.docker != nil {
		return r.docker.Close()
	}
	return nil
}

// isCgroupID reports whether the cgroup v2 directory path (as
// /proc/PID/cgroup's "0::" line gives it) has the ID cgroupID: its inode
// in the v2 mount (cgRoot on a pure v2 host, cgRoot/unified on a hybrid
// one).
func (r *Resolver) isCgroupID(path string, cgroupID uint64) bool {
	root := r.cgRoot
	if !r.unified {
		root = filepath.Join(r.cgRoot, "unified")
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(root, path), &st); err != nil {
		return false
	}
	return st.Ino == cgroupID
}

// ForPID returns the workload of pid, from /proc/<pid>/cgroup. A process
// in no container, or one whose cgroup cannot be read, gets the host-only
// workload. The result is shared: callers must not modify it.
func (r *Resolver) ForPID(ctx context.Context, pid int) *event.Workload {
	lines, err := cgroupOf(r.proc, pid)
	if err != nil {
		return r.hostWorkload()
	}
	return r.forIdentity(ctx, identify(lines))
}

// ForCgroupID returns the workload of the cgroup v2 ID an eBPF program read
// with bpf_get_current_cgroup_id, falling back to pid's /proc entry. The
// ID is remembered only when the process's cgroup v2 path alone tells the
// same container as all its hierarchies: on cgroup v1 hosts the default
// hierarchy does not separate containers, and the ID is then ignored.
// When the process is gone, a cgroup v2 host's cgroup tree is searched for
// the ID instead.
func (r *Resolver) ForCgroupID(ctx context.Context, cgroupID uint64, pid int) *event.Workload {
	w, _ := r.LookupCgroupID(ctx, cgroupID, pid)
	return w
}

// LookupCgroupID is ForCgroupID that also says whether the answer is
// known (sure): read from the process's own cgroup, from a remembered ID
// or, on a pure v2 host, from the ID's cgroup path — rather than the host
// by default because a process already gone left nothing to read.
func (r *Resolver) LookupCgroupID(ctx context.Context, cgroupID uint64, pid int) (w *event.Workload, sure bool) {
	if cgroupID != 0 {
		r.mu.Lock()
		id, ok := r.cgroups[cgroupID]
		r.mu.Unlock()
		if ok {
			return r.forIdentity(ctx, id), true
		}
	}
	lines, err := cgroupOf(r.proc, pid)
	if err != nil {
		// Gone already (a container that lived for milliseconds): on a
		// cgroup v2 host the ID still names its cgroup while the runtime
		// has not removed it.
		if cgroupID == 0 {
			return r.hostWorkload(), false
		}
		path, ok := cgroupPathByID(r.cgRoot, cgroupID)
		if !ok {
			return r.hostWorkload(), false
		}
		lines = []string{"0::" + path}
	}
	id := identify(lines)
	if cgroupID != 0 && (id.id != "" || r.unified) {
		// A host result is safe to remember only on a pure v2 host: on v1
		// and hybrid hosts containers can share a v2 cgroup with the host.
		// And only when that v2 cgroup really is the event's: a process
		// moved into its container's cgroup between the event and this
		// read (runc's init) would otherwise map the host's root cgroup
		// to the container, and every host process with it.
		if l, ok := unifiedLine(lines); ok && identify([]string{l}) == id && r.isCgroupID(strings.TrimPrefix(l, "0::"), cgroupID) {
			r.mu.Lock()
			if len(r.cgroups) >= maxCgroupIDs {
				clear(r.cgroups)
			}
			r.cgroups[cgroupID] = id
			r.mu.Unlock()
		}
	}
	return r.forIdentity(ctx, id), true
}

// ForContainer returns the workload of a container by ID, from the cache
// or the runtime.
func (r *Resolver) ForContainer(ctx context.Context, id, runtime string) *event.Workload {
	return r.forIdentity(ctx, identity{id: id, runtime: runtime})
}

func (r *Resolver) hostWorkload() *event.Workload {
	return &event.Workload{Host: r.host}
}

func (r *Resolver) forIdentity(ctx context.Context, id identity) *event.Workload {
	if id.id == "" {
		return r.hostWorkload()
	}
	now := r.now()
	r.mu.Lock()
	e, ok := r.containers[id.id]
	r.mu.Unlock()
	if ok && (e.retry.IsZero() || now.Before(e.retry)) {
		return e.w
	}
	v, _, _ := r.flight.Do(id.id, func() (any, error) {
		return r.lookup(ctx, id), nil
	})
	return v.(*event.Workload)
}

// lookup asks the runtime about a container and caches the answer, a
// stopped container for CacheTTL only; on
// failure it caches an IDs-only workload to be retried after missRetry.
func (r *Resolver) lookup(ctx context.Context, id identity) *event.Workload {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	w, running, err := r.inspectDocker(ctx, id.id)
	e := &entry{w: w}
	if err == nil && !running {
		e.exited = r.now() // inspected after exit: keep it for the grace period only
	}
	if err != nil {
		r.log.Debug("container lookup failed", "id", id.id, "err", err)
		// What an earlier lookup found (at the container's create event)
		// stays: a container that ran for milliseconds is usually removed
		// before its start event is handled. It most likely is gone, so
		// its grace period starts.
		r.mu.Lock()
		if old, ok := r.containers[id.id]; ok && old.w.ContainerName != "" {
			old.retry = time.Time{}
			if old.exited.IsZero() {
				old.exited = r.now()
			}
			r.mu.Unlock()
			return old.w
		}
		r.mu.Unlock()
		rt := id.runtime
		e.w = &event.Workload{Host: r.host, ContainerID: id.id, Runtime: rt, PodUID: id.podUID}
		e.retry = r.now().Add(missRetry)
	} else if w.PodUID == "" {
		w.PodUID = id.podUID
	}
	r.mu.Lock()
	r.store(id.id, e)
	r.mu.Unlock()
	return e.w
}

// lookupCreated inspects a container at its create event and caches it
// unless a lookup at its start, or by a process, got there first. The
// entry is marked for one more lookup when next asked for: a created
// container has no start time yet, and that lookup may still find it.
func (r *Resolver) lookupCreated(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, inspectTimeout)
	defer cancel()
	w, _, err := r.inspectDocker(ctx, id)
	if err != nil {
		r.log.Debug("container lookup at create failed", "id", id, "err", err)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.containers[id]; ok && old.retry.IsZero() {
		return
	}
	r.store(id, &entry{w: w, retry: r.now()})
}

var errNoDocker = errors.New("no docker client")

// inspectDocker builds a workload from ContainerInspect (and the image's
// repo digest from ImageInspect).
func (r *Resolver) inspectDocker(ctx context.Context, id string) (w *event.Workload, running bool, err error) {
	if r.docker == nil {
		return nil, false, errNoDocker
	}
	res, err := r.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return nil, false, fmt.Errorf("inspecting container %s: %w", id, err)
	}
	c := res.Container
	w = &event.Workload{
		Host:          r.host,
		ContainerID:   c.ID,
		ContainerName: strings.TrimPrefix(c.Name, "/"),
		Runtime:       RuntimeDocker,
		ImageDigest:   c.Image, // the image ID; replaced by a repo digest below when there is one
	}
	if c.Config != nil {
		w.Image = c.Config.Image
		if len(c.Config.Labels) > 0 {
			w.Labels = make(map[string]string, len(c.Config.Labels))
			for k, v := range c.Config.Labels {
				w.Labels[k] = v
			}
		}
	}
	if c.HostConfig != nil {
		w.Privileged = privileged(c.HostConfig.Privileged, c.HostConfig.CapAdd)
		w.NetworkMode = string(c.HostConfig.NetworkMode)
	}
	for _, m := range c.Mounts {
		s := m.Source + ":" + m.Destination
		if !m.RW {
			s += ":ro"
		}
		w.Mounts = append(w.Mounts, s)
	}
	sort.Strings(w.Mounts)
	if c.State != nil {
		w.StartedAt = startedAt(c.State.StartedAt)
	}
	podFromLabels(w)
	if sb := w.Labels[LabelSandboxID]; sb != "" && sb != c.ID {
		if l, ok := r.sandboxLabels(ctx, sb); ok {
			w.PodLabels = l
		}
	}
	if c.Image != "" {
		if img, err := r.docker.ImageInspect(ctx, c.Image); err == nil && len(img.RepoDigests) > 0 {
			w.ImageDigest = repoDigest(img.RepoDigests[0])
		}
	}
	return w, c.State != nil && c.State.Running, nil
}

// privileged is Docker's --privileged, or a container given every
// capability (--cap-add ALL): with all capabilities and the host's devices
// a step away, that is privileged in all but name, and on hosts that refuse
// --privileged it is how such containers are run.
func privileged(flag bool, capAdd []string) bool {
	if flag {
		return true
	}
	for _, c := range capAdd {
		if strings.EqualFold(c, "ALL") || strings.EqualFold(c, "CAP_ALL") {
			return true
		}
	}
	return false
}

// startedAt parses Docker's State.StartedAt (RFC 3339); Docker's zero
// time ("0001-01-01T00:00:00Z", never started) and bad values give the
// zero time.
func startedAt(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() <= 1 {
		return time.Time{}
	}
	return t
}

// repoDigest returns the digest of "name@sha256:…".
func repoDigest(s string) string {
	if _, d, ok := strings.Cut(s, "@"); ok {
		return d
	}
	return s
}

// podFromLabels fills the pod fields from the CRI labels. PodLabels are
// the labels that are not the CRI's own: the sandbox's where there is one
// (see sandboxLabels), else the container's.
func podFromLabels(w *event.Workload) {
	w.PodName = w.Labels[LabelPodName]
	w.PodNamespace = w.Labels[LabelPodNamespace]
	w.PodUID = w.Labels[LabelPodUID]
	if w.PodName != "" {
		w.PodLabels = podLabels(w.Labels)
	}
}

// podLabels drops the CRI's io.kubernetes.* labels and annotation.* copies.
func podLabels(l map[string]string) map[string]string {
	var out map[string]string
	for k, v := range l {
		if strings.HasPrefix(k, "io.kubernetes.") || strings.HasPrefix(k, "annotation.") {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[k] = v
	}
	return out
}

// LabelSandboxID is the label cri-dockerd (and dockershim before it) puts
// on a pod's containers, naming the sandbox (pause) container, which
// carries the pod's own labels.
const LabelSandboxID = "io.kubernetes.sandbox.id"

// sandboxLabels returns the pod labels from the sandbox container.
func (r *Resolver) sandboxLabels(ctx context.Context, id string) (map[string]string, bool) {
	res, err := r.docker.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil || res.Container.Config == nil {
		return nil, false
	}
	return podLabels(res.Container.Config.Labels), true
}

// markExited starts the grace period of a container's metadata.
func (r *Resolver) markExited(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.containers[id]; ok && e.exited.IsZero() {
		e.exited = r.now()
	} else if !ok {
		// A lookup may be on its way (Watch runs them concurrently):
		// it will start the grace period when it stores its answer.
		if len(r.died) >= maxCgroupIDs {
			clear(r.died)
		}
		r.died[id] = r.now()
	}
}

// store caches e as container id's entry; called with r.mu held.
func (r *Resolver) store(id string, e *entry) {
	if t, ok := r.died[id]; ok && e.exited.IsZero() {
		e.exited = t
	}
	r.containers[id] = e
}

// Refresh pre-fills the cache with every running Docker container, starts
// the grace period of cached Docker containers no longer running, and
// evicts containers that exited more than CacheTTL ago. Call it
// periodically when Watch is not running, or after Watch fails.
func (r *Resolver) Refresh(ctx context.Context) error {
	r.expire()
	if r.docker == nil {
		return errNoDocker
	}
	list, err := r.docker.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return fmt.Errorf("listing containers: %w", err)
	}
	running := make(map[string]bool, len(list.Items))
	for _, c := range list.Items {
		running[c.ID] = true
	}
	now := r.now()
	r.mu.Lock()
	for id, e := range r.containers {
		if !running[id] && e.exited.IsZero() && e.w.Runtime == RuntimeDocker {
			e.exited = now
		}
	}
	r.mu.Unlock()
	for _, c := range list.Items {
		r.mu.Lock()
		e, ok := r.containers[c.ID]
		r.mu.Unlock()
		if ok && e.retry.IsZero() {
			continue
		}
		r.lookup(ctx, identity{id: c.ID, runtime: RuntimeDocker})
	}
	return nil
}

// expire drops exited containers after the grace period, and cgroup IDs
// that no longer map to a cached container.
func (r *Resolver) expire() {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, e := range r.containers {
		if (!e.exited.IsZero() && now.Sub(e.exited) > r.ttl) ||
			(!e.retry.IsZero() && now.Sub(e.retry) > r.ttl) {
			delete(r.containers, id)
		}
	}
	for id, t := range r.died {
		if now.Sub(t) > r.ttl {
			delete(r.died, id)
		}
	}
	for cg, id := range r.cgroups {
		if id.id != "" {
			if _, ok := r.containers[id.id]; !ok {
				delete(r.cgroups, cg)
			}
		}
	}
}

// Watch follows Docker's container create, start and die events until ctx
// ends: containers are inspected when created and again when started, so
// their first event finds them cached even when they run for milliseconds
// and are removed before the start event is handled; dead ones are kept
// for CacheTTL. It returns ctx's error, or
// the stream's when the daemon goes away (callers re-Watch).
func (r *Resolver) Watch(ctx context.Context) error {
	if r.docker == nil {
		return errNoDocker
	}
	f := make(client.Filters).Add("type", "container").Add("event", "create", "start", "die", "destroy")
	ev := r.docker.Events(ctx, client.EventsListOptions{Filters: f})
	sem := make(chan struct{}, watchLookups)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-ev.Err:
			if err == nil {
				err = errors.New("docker event stream closed")
			}
			return fmt.Errorf("watching docker events: %w", err)
		case m := <-ev.Messages:
			switch m.Action {
			case "create", "start":
				// Looked up concurrently: one at a time, a burst of
				// short-lived containers puts the lookups behind the
				// removals.
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return ctx.Err()
				}
				id, created := m.Actor.ID, m.Action == "create"
				wg.Go(func() {
					defer func() { <-sem }()
					if created {
						r.lookupCreated(ctx, id)
						return
					}
					r.flight.Do(id, func() (any, error) {
						return r.lookup(ctx, identity{id: id, runtime: RuntimeDocker}), nil
					})
				})
			case "die", "destroy":
				r.markExited(m.Actor.ID)
			}
			r.expire()
		}
	}
}
