package response

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeProc writes a procfs with a btime and, per PID, a stat and a cgroup
// file.
func fakeProc(t *testing.T, btime string, pids map[string][2]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "stat"), []byte("cpu  1 2 3\nbtime "+btime+"\nprocesses 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for pid, files := range pids {
		if err := os.MkdirAll(filepath.Join(dir, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, name := range []string{"stat", "cgroup"} {
			if err := os.WriteFile(filepath.Join(dir, pid, name), []byte(files[i]), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// statLine is a /proc/PID/stat line with the given comm and starttime.
func statLine(comm, start string) string {
	// fields 3..21 then starttime (22) and a few more
	return "42 (" + comm + ") S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 " + start + " 1000 200 18446744073709551615\n"
}

func TestStartTimeOf(t *testing.T) {
	proc := fakeProc(t, "1700000000", map[string][2]string{
		"42": {statLine("evil) S 1 2 3 (x", "12345"), "0::/\n"},
		"43": {"43 (short) S 1\n", ""},
		"44": {statLine("x", "notanumber"), ""},
	})
	got, err := StartTimeOf(proc, 42)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Unix(1700000000, 0).Add(123450 * time.Millisecond)
	if !got.Equal(want) {
		t.Errorf("StartTimeOf = %v, want %v", got, want)
	}
	for _, pid := range []int32{43, 44, 45} {
		if _, err := StartTimeOf(proc, pid); err == nil || !strings.Contains(err.Error(), filepath.Join(proc, strconv.Itoa(int(pid)))) {
			t.Errorf("pid %d: error %v, want one naming its stat file", pid, err)
		}
	}
	bad := fakeProc(t, "soon", nil)
	if _, err := StartTimeOf(bad, 1); err == nil || !strings.Contains(err.Error(), "btime") {
		t.Errorf("bad btime: error %v, want one about btime", err)
	}
}

// TestMonitorRecords: monitor mode answers "would-do" without touching the
// target (the fake procfs has no such processes and no cgroups), and every
// record reaches the log as one JSON line, identical to Records().
func TestMonitorRecords(t *testing.T) {
	var log bytes.Buffer
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r, err := New(Options{Log: &log, Proc: t.TempDir(), Cgroup: t.TempDir(), Now: func() time.Time { return now }, MaxRecords: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ct := Target{PID: 4242, StartTime: now.Add(-time.Hour), ContainerID: strings.Repeat("ab", 32), Runtime: "docker", Class: "shop/web"}
	for _, a := range []Action{Kill, Freeze, Isolate, Stop} {
		rec := r.Do(ctx, a, ct, "Detect crypto miners", false, true, "agent")
		if rec.Outcome != OutcomeWouldDo || rec.Error != "" || rec.Mode != ModeMonitor {
			t.Errorf("%s in monitor mode: %+v, want outcome would-do", a, rec)
		}
	}
	// Refused whatever the mode: freeze of a host process, an unknown action.
	host := Target{PID: 4242, StartTime: now}
	if rec := r.Do(ctx, Freeze, host, "x", false, true, "agent"); rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, "not in a container") {
		t.Errorf("freeze of a host process: %+v, want failed: not in a container", rec)
	}
	if rec := r.Do(ctx, "explode", ct, "x", true, false, "alice"); rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, `unknown action "explode"`) {
		t.Errorf("unknown action: %+v", rec)
	}
	if rec := r.Do(ctx, Kill, Target{StartTime: now}, "x", true, false, "alice"); rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, "no PID") {
		t.Errorf("kill without PID: %+v", rec)
	}

	recs := r.Records()
	if len(recs) != 4 {
		t.Fatalf("%d records kept, want the newest 4 (MaxRecords)", len(recs))
	}
	if recs[3].Action != Kill || recs[3].Target.PID != 0 {
		t.Errorf("newest record last: got %+v", recs[3])
	}
	var logged []Record
	sc := bufio.NewScanner(&log)
	for sc.Scan() {
		var rec Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		logged = append(logged, rec)
	}
	if len(logged) != 7 {
		t.Fatalf("%d log lines, want 7 (every call)", len(logged))
	}
	if diff := cmp.Diff(recs, logged[3:]); diff != "" {
		t.Errorf("log and Records differ (-records +log):\n%s", diff)
	}
	ids := map[string]bool{}
	for _, rec := range logged {
		if rec.ID == "" || ids[rec.ID] || !rec.Time.Equal(now) {
			t.Errorf("record %+v: want a unique ID and time %v", rec, now)
		}
		ids[rec.ID] = true
	}

	// Nothing here can be undone: would-do, failed, kill, unknown.
	for _, id := range []string{recs[0].ID, recs[1].ID, recs[2].ID, "nope"} {
		if _, err := r.Undo(ctx, id, "alice"); !errors.Is(err, ErrNotUndoable) {
			t.Errorf("Undo(%s): %v, want ErrNotUndoable", id, err)
		}
	}
	if n := len(r.Records()); n != 4 {
		t.Errorf("a refused undo added records: %d", n)
	}
}

// TestKillRefusals: kill checks the target before signalling; these
// refusals need no root because the fake procfs describes PIDs that do not
// match (the pidfd is of this test's own process, which must survive).
func TestKillRefusals(t *testing.T) {
	self := int32(os.Getpid())
	st, err := StartTimeOf("/proc", self)
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name   string
		target Target
		want   string
	}{
		{"no start time", Target{PID: self}, "no start time"},
		{"start time an hour off", Target{PID: self, StartTime: st.Add(time.Hour)}, "PID was reused"},
		{"start time a second early", Target{PID: self, StartTime: st.Add(-time.Second)}, "PID was reused"},
		{"not in that container", Target{PID: self, StartTime: st, ContainerID: strings.Repeat("cd", 32)}, "not in container"},
		{"host init", Target{PID: 1, StartTime: st}, "PID 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := r.Do(ctx, Kill, tc.target, "test", true, false, "alice")
			if rec.Outcome != OutcomeFailed || !strings.Contains(rec.Error, tc.want) {
				t.Fatalf("got %+v, want failed with %q", rec, tc.want)
			}
		})
	}
}

func FuzzParseStartTicks(f *testing.F) {
	f.Add([]byte(statLine("bash", "4711")))
	f.Add([]byte(statLine("a) (b", "1")))
	f.Add([]byte("1 (x) S"))
	f.Add([]byte(")"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseStartTicks("stat", b)
		if err == nil && !bytes.Contains(b, []byte(")")) {
			t.Fatalf("parsed %d from a stat without comm", n)
		}
	})
}

// BenchmarkDoMonitor measures recording a monitor-mode action: the record,
// its JSON line and the bounded history.
func BenchmarkDoMonitor(b *testing.B) {
	r, err := New(Options{Log: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	tg := Target{PID: 4242, StartTime: time.Now(), ContainerID: strings.Repeat("ab", 32), Runtime: "docker", Class: "shop/web"}
	b.ReportAllocs()
	for b.Loop() {
		r.Do(ctx, Freeze, tg, "Detect crypto miners using the Stratum protocol", false, true, "agent")
	}
}

func TestParseNetDev(t *testing.T) {
	in := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth0:    5404      46    0    0    0     0          0         0     1226      15    0    0    0     0       0          0
veth-x.12:    1 2 3
`
	if diff := cmp.Diff([]string{"eth0", "veth-x.12"}, parseNetDev([]byte(in))); diff != "" {
		t.Errorf("interfaces (-want +got):\n%s", diff)
	}
}
