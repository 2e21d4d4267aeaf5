package uplink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/uplink"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// benchAlert is an alert of the size the agent writes: a rule alert with
// its event, process, parent and a few ancestors (about 1.5 KB of JSON).
func benchAlert(i int) *alert.Alert {
	e := &event.Event{Type: event.ProcessExec, Time: time.Unix(1_700_000_000, int64(i)),
		Process: event.Process{PID: int32(1000 + i), Name: "bash", Exe: "/usr/bin/bash", Args: []string{"bash", "-c", "cat /etc/shadow"},
			UID: 0, Cwd: "/root"},
		Parent:   &event.Process{PID: 999, Name: "sshd", Exe: "/usr/sbin/sshd", Args: []string{"sshd: root@pts/0"}},
		Workload: &event.Workload{Host: "node-1", ContainerID: "4f1c0d7e2b9a8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", ContainerName: "web-1", Image: "nginx:1.25", Runtime: "docker"},
	}
	for j := range 4 {
		e.Ancestors = append(e.Ancestors, event.Ancestor{PID: int32(900 - j), Name: fmt.Sprintf("p%d", j), Exe: "/usr/bin/p"})
	}
	return &alert.Alert{Time: e.Time, Type: "alert", Rule: fmt.Sprintf("Read sensitive file untrusted %d", i), Priority: "WARNING",
		Source: alert.SourceRules, Tags: []string{"filesystem", "mitre_credential_access", "T1555"},
		Tactics: []string{"TA0006 Credential Access"}, Techniques: []string{"T1555"}, Count: 1,
		Output: "Sensitive file opened for reading by non-trusted program (file=/etc/shadow gparent=systemd ggparent=<NA> evt_type=openat user=root user_uid=0 process=cat proc_exepath=/usr/bin/cat parent=bash command=cat /etc/shadow terminal=34816 container_id=4f1c0d7e2b9a)",
		Event:  e}
}

// BenchmarkSpoolSend is Send of agent-sized alerts up to their commit
// (fsync on), with the default 10 ms linger, with none, and with a
// Flush after each record (a commit per record: the cost the linger
// avoids).
func BenchmarkSpoolSend(b *testing.B) {
	a := benchAlert(1)
	size, _ := json.Marshal(a)
	for _, bc := range []struct {
		name      string
		linger    time.Duration
		flushEach bool
	}{{"linger10ms", 10 * time.Millisecond, false}, {"linger0", -1, false}, {"commitEach", -1, true}} {
		b.Run(bc.name, func(b *testing.B) {
			s, err := uplink.OpenSpool(filepath.Join(b.TempDir(), "spool.db"), uplink.SpoolOptions{Linger: bc.linger, MaxBytes: 1 << 30, MaxQueue: 1 << 30})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.SetBytes(int64(len(size)))
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := s.Send(wire.KindAlert, a); err != nil {
					b.Fatal(err)
				}
				if bc.flushEach {
					s.Flush(ctx)
				}
			}
			if err := s.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
			if st := s.Stats(); st.Dropped > 0 {
				b.Fatalf("%d dropped", st.Dropped)
			}
		})
	}
}

// BenchmarkUplinkDelivery is the end-to-end rate: alerts sent by the
// agent side until the hub has stored and acked them all (SQLite store,
// mTLS on 127.0.0.1, the hub's dedup and correlation on distinct alerts).
func BenchmarkUplinkDelivery(b *testing.B) {
	srv := startServer(b, b.TempDir(), "127.0.0.1:0")
	c := runClient(b, uplink.Options{Server: srv.addr, StateDir: b.TempDir(), EnrollToken: srv.token(b),
		CAFingerprint: srv.ca.Fingerprint(), Spool: uplink.SpoolOptions{MaxQueue: 1 << 30}, SpoolMax: 1 << 30})
	waitFor(b, "the connection", 20*time.Second, func() bool { return c.Connected() })
	alerts := make([]*alert.Alert, 1000)
	for i := range alerts {
		alerts[i] = benchAlert(i)
	}
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		a := *alerts[n%len(alerts)]
		a.Rule = fmt.Sprintf("rule %d", n) // distinct: not deduplicated
		if err := c.Send(wire.KindAlert, &a); err != nil {
			b.Fatal(err)
		}
		n++
	}
	waitFor(b, "every alert acked", 10*time.Minute, func() bool { return delivered(c.Client) })
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "alerts/s")
}
