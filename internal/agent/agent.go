// Package agent wires Vigil's node agent: the eBPF sensor, the process
// cache, workload identity and the event output, with Prometheus metrics
// and a health endpoint. Rules, profiles, FIM, response and the uplink to
// the server join later. It never imports server, store or console code.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/proccache"
	"github.com/vigil-cwpp/vigil/internal/sensor"
	"github.com/vigil-cwpp/vigil/internal/workload"
)

// Options configure the agent.
type Options struct {
	Sensor sensor.Options
	// Output receives one JSON event per line.
	Output io.Writer
	// MetricsAddr serves /metrics and /healthz; "" disables it.
	MetricsAddr string
	Hostname    string
	Logger      *slog.Logger
	// Ready, when set, is called once the sensor is attached and reading.
	Ready func(addr net.Addr)
}

// DefaultOptions returns the sensor defaults, JSON to nowhere, metrics off.
func DefaultOptions() Options {
	return Options{Sensor: sensor.DefaultOptions(), Output: io.Discard}
}

// Run runs the agent until ctx is done.
func Run(ctx context.Context, o Options) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	o.Sensor.Logger = o.Logger
	s, err := sensor.Open(o.Sensor)
	if err != nil {
		return fmt.Errorf("starting the sensor: %w", err)
	}
	defer s.Close()

	procs := proccache.New(proccache.DefaultOptions())
	if err := procs.Seed(); err != nil {
		o.Logger.Warn("seeding the process cache from /proc", "err", err)
	}
	wo := workload.DefaultOptions()
	wo.Logger, wo.Hostname = o.Logger, o.Hostname
	res, err := workload.NewResolver(wo)
	if err != nil {
		return fmt.Errorf("starting workload identity: %w", err)
	}
	defer res.Close()
	go func() {
		if err := res.Watch(ctx); err != nil && ctx.Err() == nil {
			o.Logger.Warn("watching container events", "err", err)
		}
	}()

	m := newMetrics(s)
	var addr net.Addr
	if o.MetricsAddr != "" {
		ln, err := net.Listen("tcp", o.MetricsAddr)
		if err != nil {
			return fmt.Errorf("metrics listener %s: %w", o.MetricsAddr, err)
		}
		addr = ln.Addr()
		srv := &http.Server{Handler: m.handler(s), ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}

	events := make(chan event.Event, 4096)
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx, events) }()

	// Enrichment runs as events arrive, while the process and its /proc
	// entry most likely still exist; writing is decoupled so a slow
	// consumer of the output does not delay identification.
	enriched := make(chan event.Event, 16384)
	byPID := newWorkloadCache(65536)
	go func() {
		defer close(enriched)
		for {
			select {
			case e := <-events:
				procs.Update(&e)
				procs.Enrich(&e)
				e.Workload = byPID.get(ctx, res, &e)
				m.events.WithLabelValues(e.Type.String()).Inc()
				select {
				case enriched <- e:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	if o.Ready != nil {
		o.Ready(addr)
	}
	enc := json.NewEncoder(o.Output)
	for {
		select {
		case e, ok := <-enriched:
			if !ok {
				enriched = nil // closed: wait for the sensor to stop
				continue
			}
			trimAncestry(&e)
			if err := enc.Encode(&e); err != nil {
				return fmt.Errorf("writing events: %w", err)
			}
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return err
			}
			return nil
		}
	}
}

// workloadCache remembers each live process's workload, so identity costs
// one map lookup per event instead of a /proc read (on cgroup v1 hosts the
// eBPF cgroup id cannot key the cache). An entry is dropped when its process
// execs (it may have changed cgroup on the way, as runc's init does) or
// exits, so a reused PID is looked up afresh. Used by one goroutine.
type workloadCache struct {
	max int
	m   map[int32]*event.Workload
}

func newWorkloadCache(max int) *workloadCache {
	return &workloadCache{max: max, m: make(map[int32]*event.Workload)}
}

func (c *workloadCache) get(ctx context.Context, res *workload.Resolver, e *event.Event) *event.Workload {
	pid := e.Process.PID
	switch e.Type {
	case event.ProcessExit:
		w, ok := c.m[pid]
		delete(c.m, pid)
		if ok {
			return w
		}
		return identify(ctx, res, e)
	case event.ProcessExec, event.ProcessFork:
		delete(c.m, pid)
	}
	if w, ok := c.m[pid]; ok {
		return w
	}
	w := identify(ctx, res, e)
	if len(c.m) >= c.max {
		clear(c.m) // crude but bounded; refilled on the next events
	}
	c.m[pid] = w
	return w
}

// trimAncestry drops the ancestors' argv from every event but process_exec:
// the chain (pid, name, exe) stays on each event and the parent keeps its
// argv, but repeating every ancestor's command line on each file and
// network event was most of the agent's encoding cost.
func trimAncestry(e *event.Event) {
	if e.Type == event.ProcessExec {
		return
	}
	for i := range e.Ancestors {
		e.Ancestors[i].Args = nil
	}
}

// identify finds the workload of e. When the process is already gone (a
// container that ran one command within milliseconds) its cgroup can no
// longer be read, so the ancestry is tried: the nearest live ancestor in a
// container, else the container runtime's shim, whose "-id" argument names
// the container.
func identify(ctx context.Context, res *workload.Resolver, e *event.Event) *event.Workload {
	w := res.ForCgroupID(ctx, e.Process.CgroupID, int(e.Process.PID))
	if w != nil && w.ContainerID != "" {
		return w
	}
	chain := make([]event.Ancestor, 0, len(e.Ancestors)+1)
	if e.Parent != nil {
		chain = append(chain, event.Ancestor{PID: e.Parent.PID, Name: e.Parent.Name, Args: e.Parent.Args})
	}
	chain = append(chain, e.Ancestors...)
	for _, a := range chain {
		if strings.HasPrefix(a.Name, "containerd-shim") || strings.HasPrefix(a.Name, "conmon") {
			if id := shimContainerID(a.Args); id != "" {
				if cw := res.ForContainer(ctx, id, ""); cw != nil && cw.ContainerID != "" {
					return cw
				}
			}
			break // above the shim is the host
		}
		if aw := res.ForPID(ctx, int(a.PID)); aw != nil && aw.ContainerID != "" {
			return aw
		}
	}
	return w
}

// shimContainerID is the value of the "-id" (containerd shims) or "-c"
// (conmon) argument.
func shimContainerID(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "-id" || args[i] == "--id" || args[i] == "-c" || args[i] == "--cid" {
			return args[i+1]
		}
	}
	return ""
}

type metrics struct {
	reg    *prometheus.Registry
	events *prometheus.CounterVec
	up     atomic.Bool
}

func newMetrics(s *sensor.Sensor) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_agent_events_total", Help: "Events written, by type.",
	}, []string{"type"})
	drops := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vigil_agent_ringbuf_drops_total", Help: "Events the kernel could not put in the ring buffer.",
	}, func() float64 { return float64(s.Stats().Drops) })
	m.reg.MustRegister(m.events, drops,
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
	return m
}

func (m *metrics) handler(s *sensor.Sensor) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "ok", "programs": s.Status(), "stats": s.Stats()})
	})
	return mux
}
