package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// benchRaw is an alert document of about 2 KB, like the agent's alert JSON
// with its event, process ancestry and workload.
var benchRaw = func() json.RawMessage {
	var b strings.Builder
	b.WriteString(`{"rule":"Terminal shell in container","priority":"Warning","output":"A shell was spawned in a container with an attached terminal","event":{"type":"process.exec","process":{"pid":4242,"exe":"/bin/bash","cmdline":"bash -i","ancestors":[`)
	for i := 0; b.Len() < 1900; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"pid":%d,"exe":"/usr/bin/containerd-shim-runc-v2","cmdline":"containerd-shim-runc-v2 -namespace moby -id 0123456789abcdef"}`, 4000+i)
	}
	b.WriteString(`]},"workload":{"container_id":"0123456789abcdef","image":"nginx:1.27"}}}`)
	return json.RawMessage(b.String())
}()

// benchApply applies batches of 100 alerts from agents concurrent agents
// (b.N batches in all) and reports alerts/s.
func benchApply(b *testing.B, dsn string, agents int) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for g := range agents {
		if err := s.PutAgent(ctx, store.Agent{ID: fmt.Sprint("bench", g), Hostname: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
	const per = 100
	at := time.Now().UTC()
	batch := func(agent string, n int) *store.Batch {
		bt := &store.Batch{AgentID: agent, FirstSeq: uint64(n*per + 1), LastSeq: uint64(n*per + per), Alerts: make([]store.Alert, per)}
		for i := range bt.Alerts {
			a := alert(agent, at.Add(time.Duration(n*per+i)*time.Microsecond), "Terminal shell in container", 4)
			a.ContainerID, a.ContainerName, a.Image = "0123456789abcdef", "web", "nginx:1.27"
			a.DedupKey = fmt.Sprint(agent, "/", n, "/", i)
			a.Raw = benchRaw
			bt.Alerts[i] = a
		}
		return bt
	}
	// The batches are made beforehand: only Apply is measured.
	work := make([][]*store.Batch, agents)
	for n := range b.N {
		g := n % agents
		work[g] = append(work[g], batch(fmt.Sprint("bench", g), len(work[g])))
	}
	b.SetBytes(int64(per * len(benchRaw)))
	cpu0 := cpuTime()
	b.ResetTimer()
	var wg sync.WaitGroup
	for g := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, bt := range work[g] {
				if _, err := s.Apply(ctx, bt); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "alerts/s")
	// CPU time of this process (the store's side; on PostgreSQL the
	// server's own CPU is not in it) per alert: steadier than wall time on
	// a shared machine.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N*per), "cpu-µs/alert")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkApplyAlerts(b *testing.B) {
	for _, agents := range []int{1, 8} {
		b.Run(fmt.Sprintf("sqlite/agents=%d", agents), func(b *testing.B) {
			benchApply(b, "sqlite:"+b.TempDir()+"/vigil.db", agents)
		})
		b.Run(fmt.Sprintf("postgres/agents=%d", agents), func(b *testing.B) {
			benchApply(b, vigiltest.Postgres(b), agents)
		})
	}
}

// BenchmarkDashboard is the console's reads while the store holds 50,000
// alerts over 24 hours: the dashboard's AlertStats and the first page of
// the alert list, filtered and not.
func BenchmarkDashboard(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchDashboard(b, "sqlite:"+b.TempDir()+"/vigil.db") })
	b.Run("postgres", func(b *testing.B) { benchDashboard(b, vigiltest.Postgres(b)) })
}

func benchDashboard(b *testing.B, dsn string) {
	ctx := context.Background()
	s, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	rules := []string{"Terminal shell in container", "Drop and execute new binary in container", "Read sensitive file untrusted", "Outbound connection to C2 server"}
	for n := range 500 {
		bt := &store.Batch{Alerts: make([]store.Alert, 100)}
		for i := range bt.Alerts {
			k := n*100 + i
			a := alert("bench", now.Add(-24*time.Hour+time.Duration(k)*1728*time.Millisecond), rules[k%len(rules)], k%8)
			a.ContainerID, a.ContainerName = fmt.Sprintf("%012x", k%50), fmt.Sprint("web-", k%50)
			a.Raw = benchRaw
			bt.Alerts[i] = a
		}
		if _, err := s.Apply(ctx, bt); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("AlertStats24h", func(b *testing.B) {
		for b.Loop() {
			st, err := s.AlertStats(ctx, now.Add(-24*time.Hour), time.Hour)
			if err != nil || st.Total != 50000 {
				b.Fatal(st.Total, err)
			}
		}
	})
	b.Run("AlertsFirstPage", func(b *testing.B) {
		for b.Loop() {
			if as, err := s.Alerts(ctx, store.AlertFilter{Limit: 100}); err != nil || len(as) != 100 {
				b.Fatal(len(as), err)
			}
		}
	})
	b.Run("AlertsSince24h", func(b *testing.B) {
		for b.Loop() {
			if as, err := s.Alerts(ctx, store.AlertFilter{Since: now.Add(-24 * time.Hour), Until: now, Limit: 100}); err != nil || len(as) != 100 {
				b.Fatal(len(as), err)
			}
		}
	})
	b.Run("AlertsRuleAndSeverity", func(b *testing.B) {
		for b.Loop() {
			if as, err := s.Alerts(ctx, store.AlertFilter{Rule: rules[1], MaxSeverity: 4, HasSeverity: true, Limit: 100}); err != nil || len(as) != 100 {
				b.Fatal(len(as), err)
			}
		}
	})
	b.Run("AlertsWorkload", func(b *testing.B) {
		for b.Loop() {
			if as, err := s.Alerts(ctx, store.AlertFilter{Workload: "web-7", Limit: 100}); err != nil || len(as) != 100 {
				b.Fatal(len(as), err)
			}
		}
	})
}
