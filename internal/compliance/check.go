package compliance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

// CheckFunc evaluates one host check. It returns a status (Pass, Fail,
// Warn, Manual), the evidence it saw, or an error when it could not decide;
// an error becomes a result with Status Error.
type CheckFunc func(ctx context.Context, env *Env) (status, evidence string, err error)

// ContainerFunc evaluates one check on one container.
type ContainerFunc func(env *Env, c *container.InspectResponse) (status, evidence string, err error)

// Check is one benchmark recommendation. Exactly one of Run and Container
// is set.
type Check struct {
	ID          string
	Title       string
	Section     string
	Profile     string
	Scored      bool
	Remediation string
	// How says, in a sentence, how the check is evaluated (for the docs
	// and --help).
	How       string
	Run       CheckFunc
	Container ContainerFunc
}

var (
	regMu    sync.Mutex
	registry = map[string][]Check{}
)

// Register adds checks to a benchmark. It panics on a duplicate ID or a
// check with neither or both of Run and Container: those are programming
// errors caught by the package's tests.
func Register(benchmark string, checks ...Check) {
	regMu.Lock()
	defer regMu.Unlock()
	for _, c := range checks {
		if (c.Run == nil) == (c.Container == nil) {
			panic(fmt.Sprintf("compliance: check %s:%s needs exactly one of Run and Container", benchmark, c.ID))
		}
		for _, o := range registry[benchmark] {
			if o.ID == c.ID {
				panic(fmt.Sprintf("compliance: duplicate check %s:%s", benchmark, c.ID))
			}
		}
		registry[benchmark] = append(registry[benchmark], c)
	}
}

// Checks returns a benchmark's checks in benchmark order.
func Checks(benchmark string) []Check {
	regMu.Lock()
	cs := append([]Check(nil), registry[benchmark]...)
	regMu.Unlock()
	sort.SliceStable(cs, func(i, j int) bool { return lessID(cs[i].ID, cs[j].ID) })
	return cs
}

// lessID orders dotted IDs numerically: 1.1.2 < 1.1.10.
func lessID(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if as[i] == bs[i] {
			continue
		}
		var x, y int
		_, e1 := fmt.Sscan(as[i], &x)
		_, e2 := fmt.Sscan(bs[i], &y)
		if e1 == nil && e2 == nil && x != y {
			return x < y
		}
		return as[i] < bs[i]
	}
	return len(as) < len(bs)
}

// Runner runs a command and returns its standard output. Checks run
// commands only through it, so tests can replace it.
type Runner func(ctx context.Context, name string, args ...string) ([]byte, error)

// ExecRunner runs commands with os/exec.
// A failure's error carries the first line of the command's stderr.
func ExecRunner(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && len(ee.Stderr) > 0 {
		line, _, _ := strings.Cut(strings.TrimSpace(string(ee.Stderr)), "\n")
		err = fmt.Errorf("%w: %s", err, line)
	}
	return out, err
}

// DockerAPI is the part of the Docker client the container checks use:
// *client.Client satisfies it.
type DockerAPI interface {
	ContainerIDs(ctx context.Context) ([]string, error)
	Inspect(ctx context.Context, id string) (container.InspectResponse, error)
}

// Options configure a run. The zero value checks the host at "/".
type Options struct {
	// Root is the filesystem root checks read under; default "/". Tests
	// point it at fixture trees; a host's root mounted elsewhere can be
	// checked the same way (commands are not run then).
	Root string
	// Exec runs commands; default ExecRunner. Commands are run only when
	// Root is "/".
	Exec Runner
	// Docker lists and inspects containers for the per-container checks;
	// nil means those checks report Error ("no Docker client").
	Docker DockerAPI
	// Host names the target in results; default os.Hostname().
	Host string
	// Now stamps the report; default time.Now.
	Now func() time.Time
	// CheckTimeout bounds one check; default 30s.
	CheckTimeout time.Duration
}

// Env is what a check sees: the root to read under, the command runner,
// and parsed files shared between checks of one run.
type Env struct {
	Root string
	Exec Runner

	live  bool // tests: treat a fixture root as the running system
	mu    sync.Mutex
	cache map[string]any
}

// Path returns p (an absolute path on the checked system) under Root.
func (e *Env) Path(p string) string {
	if e.Root == "" || e.Root == "/" {
		return p
	}
	return filepath.Join(e.Root, p)
}

// ReadFile reads p under Root; symbolic links resolve inside Root.
func (e *Env) ReadFile(p string) ([]byte, error) {
	rp, err := e.resolve(p)
	if err != nil {
		return nil, err
	}
	return os.ReadFile(rp)
}

// Stat stats p under Root, following symbolic links inside Root.
func (e *Env) Stat(p string) (os.FileInfo, error) {
	rp, err := e.resolve(p)
	if err != nil {
		return nil, err
	}
	return os.Stat(rp)
}

// maxSymlinks bounds the links followed resolving one path (as Linux's 40).
const maxSymlinks = 40

// resolve returns p under Root with every symbolic link resolved as if
// Root were "/": an absolute target starts again at Root and ".." stops
// at Root, so a tree's /etc/mtab -> /proc/self/mounts does not read the
// running host's. On the live root it is p.
func (e *Env) resolve(p string) (string, error) {
	if e.Root == "" || e.Root == "/" {
		return p, nil
	}
	rest := strings.Split(filepath.Clean("/"+p), "/")[1:]
	cur := "/"
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = filepath.Dir(cur)
			continue
		}
		next := filepath.Join(cur, c)
		target, err := os.Readlink(filepath.Join(e.Root, next))
		if err != nil { // not a link, or missing: the caller's open says which
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", &os.PathError{Op: "resolve", Path: p, Err: syscall.ELOOP}
		}
		if filepath.IsAbs(target) {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return filepath.Join(e.Root, cur), nil
}

// Glob expands pattern under Root and returns the paths as seen on the
// checked system (without Root), sorted.
func (e *Env) Glob(pattern string) []string {
	m, _ := filepath.Glob(e.Path(pattern))
	out := make([]string, 0, len(m))
	for _, p := range m {
		if e.Root != "" && e.Root != "/" {
			rel, err := filepath.Rel(e.Root, p)
			if err != nil {
				continue
			}
			p = "/" + rel
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Live reports whether Root is the running system's root, so that
// commands and /proc describe it.
func (e *Env) Live() bool { return e.live || e.Root == "" || e.Root == "/" }

// memo computes a value once per run.
func (e *Env) memo(key string, f func() any) any {
	e.mu.Lock()
	defer e.mu.Unlock()
	if v, ok := e.cache[key]; ok {
		return v
	}
	if e.cache == nil {
		e.cache = map[string]any{}
	}
	v := f()
	e.cache[key] = v
	return v
}

// errNoDocker is the Error result of container checks without a client.
var errNoDocker = errors.New("no Docker client: the Docker daemon could not be reached")

// Run evaluates every check of benchmark and returns the report. A check
// that fails to evaluate or panics gives a result with Status Error; it
// never stops the run. Run returns an error only for an unknown benchmark.
func Run(ctx context.Context, benchmark string, o Options) (*Report, error) {
	checks := Checks(benchmark)
	if len(checks) == 0 {
		return nil, fmt.Errorf("unknown benchmark %q (known: %s)", benchmark, strings.Join(Benchmarks(), ", "))
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Exec == nil {
		o.Exec = ExecRunner
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = 30 * time.Second
	}
	env := &Env{Root: o.Root, Exec: o.Exec}
	rep := &Report{Benchmark: benchmark, Host: o.Host, Time: o.Now().UTC()}

	var containers []container.InspectResponse
	var uninspected []inspectFailure
	var listErr error
	for _, c := range checks {
		if c.Container != nil { // list once, only for benchmarks with container checks
			lctx, cancel := context.WithTimeout(ctx, o.CheckTimeout)
			containers, uninspected, listErr = listContainers(lctx, o.Docker)
			cancel()
			break
		}
	}
	for _, c := range checks {
		base := Result{Benchmark: benchmark, ID: c.ID, Title: c.Title, Section: c.Section,
			Profile: c.Profile, Scored: c.Scored, Remediation: c.Remediation, Target: o.Host}
		if c.Run != nil {
			cctx, cancel := context.WithTimeout(ctx, o.CheckTimeout)
			st, ev, err := safeRun(func() (string, string, error) { return c.Run(cctx, env) })
			cancel()
			rep.Results = append(rep.Results, finish(base, st, ev, err))
			continue
		}
		switch {
		case listErr != nil:
			rep.Results = append(rep.Results, finish(base, "", "", listErr))
		case len(containers) == 0 && len(uninspected) == 0:
			rep.Results = append(rep.Results, finish(base, Pass, "no running containers", nil))
		default:
			for _, u := range uninspected {
				r := base
				r.Target = u.id
				rep.Results = append(rep.Results, finish(r, "", "", u.err))
			}
			for i := range containers {
				ci := &containers[i]
				r := base
				r.Target = containerTarget(ci)
				st, ev, err := safeRun(func() (string, string, error) { return c.Container(env, ci) })
				rep.Results = append(rep.Results, finish(r, st, ev, err))
			}
		}
	}
	rep.Summary = Summarize(rep.Results)
	return rep, nil
}

func containerTarget(c *container.InspectResponse) string {
	id := c.ID
	if len(id) > 12 {
		id = id[:12]
	}
	return strings.TrimPrefix(c.Name, "/") + " (" + id + ")"
}

// inspectFailure is a listed container that could not be inspected.
type inspectFailure struct {
	id  string
	err error
}

// listContainers inspects every running container. One that stopped
// between the list and its inspection is left out; one that could not be
// inspected for another reason is returned in failed, so each check
// reports it as an error.
func listContainers(ctx context.Context, d DockerAPI) (out []container.InspectResponse, failed []inspectFailure, err error) {
	if d == nil {
		return nil, nil, errNoDocker
	}
	ids, err := d.ContainerIDs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("listing containers: %w", err)
	}
	for _, id := range ids {
		c, err := d.Inspect(ctx, id)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			failed = append(failed, inspectFailure{id, fmt.Errorf("inspecting container %s: %w", id, err)})
		default:
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, failed, nil
}

// safeRun turns a panicking check into an error.
func safeRun(f func() (string, string, error)) (st, ev string, err error) {
	defer func() {
		if p := recover(); p != nil {
			st, ev, err = "", "", fmt.Errorf("check panicked: %v", p)
		}
	}()
	return f()
}

func finish(r Result, st, ev string, err error) Result {
	r.Evidence = ev
	switch {
	case err != nil:
		r.Status = Error
		r.Error = err.Error()
	case st == Pass || st == Fail || st == Warn || st == Manual:
		r.Status = st
	default:
		r.Status = Error
		r.Error = fmt.Sprintf("check returned an invalid status %q", st)
	}
	return r
}

// Summarize counts results by status.
func Summarize(rs []Result) Summary {
	var s Summary
	for _, r := range rs {
		switch r.Status {
		case Pass:
			s.Pass++
		case Fail:
			s.Fail++
		case Warn:
			s.Warn++
		case Manual:
			s.Manual++
		default:
			s.Error++
		}
	}
	return s
}

// Benchmarks lists the registered benchmarks.
func Benchmarks() []string {
	regMu.Lock()
	defer regMu.Unlock()
	out := make([]string, 0, len(registry))
	for b := range registry {
		out = append(out, b)
	}
	sort.Strings(out)
	return out
}
