// Package agent wires Vigil's node agent: the eBPF sensor, the process
// cache, workload identity and the event output, with Prometheus metrics
// and a health endpoint, the detector (rules, profiles, realtime file
// integrity, response) and the reports to a server through an Uplink. It
// never imports server, store or console code.
package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/proccache"
	"github.com/vigil-cwpp/vigil/internal/sensor"
	"github.com/vigil-cwpp/vigil/internal/workload"
)

// Options configure the agent.
type Options struct {
	Sensor sensor.Options
	// Output receives one JSON line per event and per alert (alerts have
	// "type": "alert").
	Output io.Writer
	// EmitEvents and EmitAlerts choose what is written to Output.
	EmitEvents, EmitAlerts bool
	// Detector evaluates rules and profiles and responds; nil: events only.
	Detector *Detector
	// ControlSocket serves the control API (profiles, response records)
	// on a unix socket; "" disables it.
	ControlSocket string
	// MetricsAddr serves /metrics and /healthz; "" disables it.
	MetricsAddr string
	Hostname    string
	// Uplink, when set, also receives every alert, the host and each
	// container and image when first seen, and the profiles when they
	// change (see uplink.go); response records reach it through the
	// Responder's log (ResponseLog).
	Uplink Uplink
	Logger *slog.Logger
	// Ready, when set, is called once the sensor is attached and reading.
	Ready func(addr net.Addr)
}

// DefaultOptions returns the sensor defaults, JSON to nowhere, metrics off.
func DefaultOptions() Options {
	return Options{Sensor: sensor.DefaultOptions(), Output: io.Discard, EmitEvents: true, EmitAlerts: true}
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
				if o.Detector != nil && o.Detector.fim != nil {
					freshCwd(&e) // fim.go
				}
				e.Workload = byPID.get(ctx, res, &e)
				byPID.nameUsers(&e)
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
	if o.Detector != nil {
		o.Detector.enf = s
		o.Detector.Start(ctx)
	}
	if o.Ready != nil {
		o.Ready(addr)
	}
	if o.ControlSocket != "" && o.Detector != nil {
		srv, err := listenControl(o.ControlSocket, o.Detector)
		if err != nil {
			return err
		}
		defer srv.Close()
	}
	// Output is buffered and flushed whenever the pipeline has nothing
	// more queued: one write per burst instead of one per event.
	bw := bufio.NewWriterSize(o.Output, 256<<10)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	var werr error
	var line []byte
	var rep *reporter
	if o.Uplink != nil {
		rep = newReporter(o.Uplink, o.Logger)
		rep.host(o.Hostname)
		if o.Detector != nil {
			rep.profiles(o.Detector.prof, true)
		}
	}
	emit := func(a *alert.Alert) {
		m.alerts.WithLabelValues(a.Priority, a.Source).Add(float64(max(a.Count, 1)))
		rep.alert(a)
		if o.EmitAlerts && werr == nil {
			werr = enc.Encode(a)
		}
	}
	det := o.Detector
	if det != nil {
		defer func() {
			det.Close(emit)
			det.Save(o.Logger)
			rep.profiles(det.prof, false)
		}()
	}
	save := time.NewTicker(time.Minute)
	defer save.Stop()
	for {
		select {
		case e, ok := <-enriched:
			if !ok {
				enriched = nil // closed: wait for the sensor to stop
				continue
			}
			rep.observe(&e)
			if det != nil {
				det.Process(ctx, &e, emit)
			}
			if o.EmitEvents && werr == nil {
				trimAncestry(&e)
				line = append(e.AppendJSON(line[:0]), '\n')
				_, werr = bw.Write(line)
			}
			if werr == nil && len(enriched) == 0 {
				werr = bw.Flush()
			}
			if werr != nil {
				return fmt.Errorf("writing events: %w", werr)
			}
		case now := <-save.C:
			if det != nil {
				det.Tick(now, emit)
				det.Save(o.Logger)
				rep.profiles(det.prof, false)
			}
			if werr == nil {
				werr = bw.Flush()
			}
		case err := <-errc:
			if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
				return err
			}
			return nil
		}
	}
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

type metrics struct {
	reg    *prometheus.Registry
	events *prometheus.CounterVec
	alerts *prometheus.CounterVec
	up     atomic.Bool
}

func newMetrics(s *sensor.Sensor) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_agent_events_total", Help: "Events written, by type.",
	}, []string{"type"})
	m.alerts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_agent_alerts_total", Help: "Alerts raised (repeats included), by priority and source (rules, profile, fim).",
	}, []string{"priority", "source"})
	drops := prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "vigil_agent_ringbuf_drops_total", Help: "Events the kernel could not put in the ring buffer.",
	}, func() float64 { return float64(s.Stats().Drops) })
	m.reg.MustRegister(m.events, m.alerts, drops,
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
