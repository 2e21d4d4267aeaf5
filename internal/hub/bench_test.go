package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Load shape of BenchmarkIngest.
const (
	benchAgents = 20
	benchBatch  = 100 // records a batch
)

// benchRules are the rule names alerts cycle through.
var benchRules = []string{
	"Terminal shell in container", "Drop and execute new binary in container", "Read sensitive file untrusted",
	"Launch Package Management Process in Container", "Netcat Remote Code Execution in Container",
	"Search Private Keys or Passwords", "Clear Log Activities", "Directory traversal monitored file read",
	"Contact K8S API Server From Container", "Outbound Connection to C2 Servers", "Detect crypto miners using the Stratum protocol",
	"Create Hardlink Over Sensitive Files", "Execution from /dev/shm", "Fileless execution via memfd_create",
	"PTRACE attached to process", "Redirect STDOUT/STDIN to Network Connection in Container",
}

// benchTemplates are alert JSON documents built from the agent's recorded
// events (internal/agent/testdata/events.jsonl), each with a placeholder in
// the process's executable where a counter makes every alert distinct (so
// that dedup folds none of them and each is a row: the store's worst case).
type benchTemplate struct {
	doc []byte
	at  int // offset of the counter placeholder
}

const benchCounter = "#@@@@@@@@@@"

func benchTemplates(b *testing.B, agent int) []benchTemplate {
	b.Helper()
	f, err := os.Open("../agent/testdata/events.jsonl")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []benchTemplate
	cid := fmt.Sprintf("%064x", agent+1)
	now := time.Now()
	for i := 0; sc.Scan(); i++ {
		var ev event.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			b.Fatalf("events.jsonl line %d: %v", i+1, err)
		}
		ev.Workload = &event.Workload{
			Host: fmt.Sprintf("node-%02d", agent), ContainerID: cid, ContainerName: fmt.Sprintf("web-%d", agent%5),
			Runtime: "docker", Image: "docker.io/library/nginx:1.25", ImageDigest: "sha256:" + cid,
			Labels: map[string]string{"com.docker.compose.project": "shop", "com.docker.compose.service": "web"},
		}
		ev.Time = now.Add(time.Duration(i) * time.Millisecond) // within the console's 24 h
		ev.Process.Exe += benchCounter
		if ev.Parent == nil {
			ev.Parent = &event.Process{PID: ev.Process.PPID, Name: "bash", Exe: "/usr/bin/bash"}
		}
		ev.Ancestors = []event.Ancestor{{PID: 1, Name: "containerd-shim", Exe: "/usr/bin/containerd-shim-runc-v2"}}
		rule := benchRules[i%len(benchRules)]
		a := alert.Alert{
			Time: ev.Time, Type: "alert", Rule: rule, Priority: []string{"Critical", "Warning", "Notice", "Error"}[i%4],
			Source: alert.SourceRules, Tags: []string{"container", "mitre_execution", "T1059"},
			Tactics: []string{"TA0002 Execution"}, Techniques: []string{"T1059.004"},
			Output: fmt.Sprintf("%s (user=root command=%s container_id=%s image=nginx)", rule, ev.Process.CmdLine, cid[:12]),
			Count:  1, Event: &ev,
		}
		doc, err := json.Marshal(&a)
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, benchTemplate{doc: doc, at: bytes.Index(doc, []byte(benchCounter))})
	}
	return out
}

// BenchmarkIngest streams b.N alerts from 20 agents (real gRPC clients
// over mutual TLS in this process, one batch of 100 in flight each) into
// the hub, while a console reader runs the dashboard's queries
// (store.Alerts limit 50, then store.AlertStats over 24 h) every 50 ms.
// It reports alerts/s and the reads' p50/p99.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 200000x ./internal/hub/
func BenchmarkIngest(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchIngest(b, "sqlite:"+filepath.Join(b.TempDir(), "vigil.db"))
	})
	b.Run("postgres", func(b *testing.B) {
		benchIngest(b, vigiltest.Postgres(b))
	})
}

func benchIngest(b *testing.B, dsn string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	// A window of 1 ns: every alert a row, the store's worst case (the
	// counter in the templates makes each one distinct anyway).
	e := newEnvStore(b, Options{Store: st, Logger: slog.New(slog.DiscardHandler), DedupWindow: time.Nanosecond})
	type benchAgent struct {
		*agent
		tmpl []benchTemplate
	}
	agents := make([]benchAgent, benchAgents)
	var size int
	for i := range agents {
		agents[i] = benchAgent{e.enroll(fmt.Sprintf("node-%02d", i)), benchTemplates(b, i)}
		for _, t := range agents[i].tmpl {
			size += len(t.doc)
		}
	}
	avg := size / (benchAgents * len(agents[0].tmpl))

	// The console: the dashboard's two queries, every 50 ms.
	var lat []time.Duration
	readDone := make(chan struct{})
	readCtx, stopReads := context.WithCancel(ctx)
	go func() {
		defer close(readDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-readCtx.Done():
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if _, err := st.Alerts(readCtx, store.AlertFilter{Limit: 50}); err != nil && readCtx.Err() == nil {
				b.Error(err)
				return
			}
			if _, err := st.AlertStats(readCtx, time.Now().Add(-24*time.Hour), time.Hour); err != nil && readCtx.Err() == nil {
				b.Error(err)
				return
			}
			lat = append(lat, time.Since(t0))
		}
	}()

	per := (b.N + benchAgents - 1) / benchAgents
	b.SetBytes(int64(avg))
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, benchAgents)
	for i := range agents {
		wg.Add(1)
		go func(a benchAgent) {
			defer wg.Done()
			s, seq := a.connect(b, ctx)
			recs := make([]wire.Record, 0, benchBatch)
			var n int
			for n < per {
				recs = recs[:0]
				for ; len(recs) < benchBatch && n < per; n++ {
					t := a.tmpl[n%len(a.tmpl)]
					doc := slices.Clone(t.doc)
					copy(doc[t.at+1:], fmt.Appendf(nil, "%010d", n))
					seq++
					recs = append(recs, wire.Record{Seq: seq, Kind: wire.KindAlert, Time: start, Data: doc})
				}
				if err := s.Send(&wire.AgentMessage{Batch: &wire.Batch{Records: recs}}); err != nil {
					errs <- err
					return
				}
				for {
					m, err := s.Recv()
					if err != nil {
						errs <- err
						return
					}
					if m.Ack != nil && m.Ack.Seq == seq {
						break
					}
				}
			}
			s.CloseSend()
		}(agents[i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	stopReads()
	<-readDone
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	total := per * benchAgents
	b.ReportMetric(float64(total)/elapsed.Seconds(), "alerts/s")
	b.ReportMetric(float64(avg), "B/alert")
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(ms(lat[len(lat)*50/100]), "read-p50-ms")
		b.ReportMetric(ms(lat[min(len(lat)-1, len(lat)*99/100)]), "read-p99-ms")
		b.ReportMetric(float64(len(lat)), "reads")
	}
	// Every alert is a row.
	stats, err := st.AlertStats(ctx, start.Add(-time.Hour), time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	if stats.Total < total {
		b.Fatalf("%d alerts stored, want %d", stats.Total, total)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkConvert is the hub's own work on a batch of 100 alerts (~2.6 KB
// each), without the network or the store: decode, dedup, correlate.
func BenchmarkConvert(b *testing.B) {
	tmpl := benchTemplates(b, 0)
	g := newIngester(New(Options{Logger: slog.New(slog.DiscardHandler), DedupWindow: time.Nanosecond}), store.Agent{ID: "agent", Hostname: "h"})
	recs := make([]wire.Record, benchBatch)
	var seq uint64
	b.SetBytes(int64(len(tmpl[0].doc) * benchBatch))
	for b.Loop() {
		for i := range recs {
			seq++
			t := tmpl[int(seq)%len(tmpl)]
			doc := slices.Clone(t.doc)
			copy(doc[t.at+1:], fmt.Appendf(nil, "%010d", seq))
			recs[i] = wire.Record{Seq: seq, Kind: wire.KindAlert, Data: doc}
		}
		bt, err := g.build(&wire.Batch{Records: recs})
		if err != nil || len(bt.Alerts) != benchBatch {
			b.Fatalf("build: %v", err)
		}
		g.stored(seq)
	}
	b.ReportMetric(float64(b.N*benchBatch)/b.Elapsed().Seconds(), "alerts/s")
}
