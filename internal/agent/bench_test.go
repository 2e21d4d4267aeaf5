package agent

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

var record = flag.Bool("record", false, "TestRecordEvents: record real events into testdata/events.jsonl")

// recordedEvents is the sample of real events the rule benchmarks run on.
const recordedEvents = "testdata/events.jsonl"

// sampleSize is how many events the committed sample keeps.
const sampleSize = 2000

// TestRecordEvents regenerates testdata/events.jsonl: the agent runs while
// the scenarios' kind of activity happens (a Stratum miner and its pool, a
// shell loop, a web server answering requests, an SQLite database, execs,
// writes and connects on the host), and a sample of sampleSize events is
// kept, spread over the event types, with every event a default rule fires
// on. Run as root:
//
//	go test ./internal/agent -run TestRecordEvents -record
func TestRecordEvents(t *testing.T) {
	if !*record {
		t.Skip("regenerates testdata/events.jsonl; run with -record")
	}
	vigiltest.RequireRoot(t)
	img, _ := scImage(t, "record")
	bin := scBuild(t, "testdata/miner")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, err := os.Create(filepath.Join(t.TempDir(), "raw.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	marker := fmt.Sprintf("vigil-record-marker-%d", time.Now().UnixNano())
	pr, pw := io.Pipe()
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 4<<20), 4<<20)
		once := false
		for sc.Scan() {
			raw.Write(append(sc.Bytes(), '\n'))
			if !once && bytes.Contains(sc.Bytes(), []byte(marker)) {
				once = true
				close(seen)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	ready := make(chan struct{})
	done := make(chan error, 1)
	o := DefaultOptions()
	o.Output, o.EmitAlerts = pw, false
	o.Ready = func(net.Addr) { close(ready) }
	go func() { done <- Run(ctx, o); pw.Close() }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("agent not ready after 60 s")
	}

	out := t.TempDir()
	mine := map[string]bool{}
	id, _ := scContainer(t, "--network", "none", "-v", bin+":/sim:ro", "-v", out+":/out", img,
		"sh", "-c", "/sim/miner pool 127.0.0.1:3333 & exec /sim/miner mine 127.0.0.1:3333 /out/counter")
	mine[id] = true
	id, _ = scContainer(t, "--network", "none", img, "sh", "-c", "while :; do "+fileOps+" sleep 0.2; done")
	mine[id] = true
	port := scFreePort(t)
	id, _ = scContainer(t, "--network", "host", "-v", bin+":/sim:ro", img, "/sim/miner", "web", fmt.Sprintf("127.0.0.1:%d", port))
	mine[id] = true
	dbName := uniqueName(t, "db")
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", dbName).Run() })
	scDocker(t, "run", "--name", dbName, "--network", "none", "-v", bin+":/sim:ro", img, "/sim/miner", "db", "/tmp/orders.db", "2000")
	mine[scDocker(t, "inspect", "-f", "{{.Id}}", dbName)] = true
	hc := &http.Client{Timeout: 5 * time.Second}
	served := 0
	for deadline := time.Now().Add(30 * time.Second); served < 100 && time.Now().Before(deadline); {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			time.Sleep(50 * time.Millisecond) // the server is starting: poll
			continue
		}
		resp.Body.Close()
		served++
	}
	if served < 100 {
		t.Fatalf("web server answered %d requests", served)
	}
	vigiltest.Run(t, t.TempDir(), "sh", "-c", "for i in $(seq 50); do /bin/true; "+fileOps+" done")
	if err := exec.Command("/bin/sh", "-c", ": "+marker).Run(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-time.After(60 * time.Second):
		t.Fatal("marker exec not written within 60 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	if _, err := raw.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	lines, evs := readEvents(t, raw)
	lines, evs = ownEvents(t, evs, mine, int32(os.Getpid()))
	keep := sampleEvents(t, lines, evs, sampleSize)
	var b bytes.Buffer
	for _, i := range keep {
		b.Write(lines[i])
		b.WriteByte('\n')
	}
	if err := os.WriteFile(recordedEvents, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("recorded %d events, kept %d in %s (%d bytes)", len(lines), len(keep), recordedEvents, b.Len())
}

// fileOps is a shell loop body doing the file operations the sensor
// reports: a write, a directory, a rename, a chmod, a symlink, a removal.
const fileOps = "ls / >/dev/null; cat /etc/hostname >/dev/null; mkdir -p d; echo x >d/f; mv d/f d/g; chmod 600 d/g; ln -sf g d/l; rm -rf d;"

// ownEvents keeps only the recording's own activity — events of its
// containers and of the test process's descendants — so that nothing of
// other processes on the machine ends up in the committed sample. The
// ancestry of a descendant is cut below the test process.
func ownEvents(t *testing.T, evs []event.Event, containers map[string]bool, self int32) ([][]byte, []event.Event) {
	var lines [][]byte
	var out []event.Event
	for _, e := range evs {
		if e.Workload != nil && containers[e.Workload.ContainerID] {
			// the container's processes and the runtime's setting it up
		} else if i := slices.IndexFunc(e.Ancestors, func(a event.Ancestor) bool { return a.PID == self }); i >= 0 {
			e.Ancestors = e.Ancestors[:i]
		} else if e.Parent != nil && e.Parent.PID == self {
			e.Ancestors = nil
		} else {
			continue
		}
		if e.Parent != nil && e.Parent.PID == self {
			e.Parent.Args, e.Parent.CmdLine = nil, "" // the test binary's flags
		}
		// PID 1 of the recording machine is its own business: the
		// container shims it adopted show a plain init.
		if e.Parent != nil && e.Parent.PID == 1 {
			e.Parent = &event.Process{PID: 1, Name: "init", Exe: "/sbin/init"}
		}
		for i := range e.Ancestors {
			if e.Ancestors[i].PID == 1 {
				e.Ancestors[i] = event.Ancestor{PID: 1, Name: "init", Exe: "/sbin/init"}
			}
		}
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		lines, out = append(lines, b), append(out, e)
	}
	return lines, out
}

// sampleEvents picks about n events: every one a default rule fires on,
// then the rest spread evenly over the event types, each type's share
// taken at even intervals. The indexes come back in recording order.
func sampleEvents(t *testing.T, lines [][]byte, evs []event.Event, n int) []int {
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	picked := map[int]bool{}
	byType := map[event.Kind][]int{}
	for i := range evs {
		fired := false
		rs.Match(&evs[i], func(*rules.Rule) { fired = true })
		if fired && len(picked) < n/10 {
			picked[i] = true
			continue
		}
		byType[evs[i].Type] = append(byType[evs[i].Type], i)
	}
	types := make([]event.Kind, 0, len(byType))
	for k := range byType {
		types = append(types, k)
	}
	slices.SortFunc(types, func(a, b event.Kind) int { return cmp.Compare(len(byType[a]), len(byType[b])) })
	left := n - len(picked)
	for j, k := range types {
		idx := byType[k]
		share := left / (len(types) - j)
		take := min(share, len(idx))
		for s := range take {
			picked[idx[s*len(idx)/take]] = true
		}
		left -= take
	}
	out := make([]int, 0, len(picked))
	for i := range picked {
		out = append(out, i)
	}
	slices.Sort(out)
	return out
}

// readEvents decodes a JSON-lines file of events, skipping alert lines.
func readEvents(tb testing.TB, r io.Reader) ([][]byte, []event.Event) {
	tb.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	var lines [][]byte
	var evs []event.Event
	for n := 1; sc.Scan(); n++ {
		if bytes.Contains(sc.Bytes()[:min(len(sc.Bytes()), 80)], []byte(`"type":"alert"`)) {
			continue
		}
		var e event.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("line %d: %v", n, err)
		}
		lines = append(lines, bytes.Clone(sc.Bytes()))
		evs = append(evs, e)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return lines, evs
}

func loadRecorded(tb testing.TB) []event.Event {
	tb.Helper()
	f, err := os.Open(recordedEvents)
	if err != nil {
		tb.Fatalf("%v (regenerate: go test ./internal/agent -run TestRecordEvents -record)", err)
	}
	defer f.Close()
	_, evs := readEvents(tb, f)
	return evs
}

// TestRecordedEvents checks that the committed sample is what the
// benchmarks claim to run on: about sampleSize real events of many types,
// from containers and the host, on which the default rules fire the
// mining rule for the recorded miner.
func TestRecordedEvents(t *testing.T) {
	evs := loadRecorded(t)
	if len(evs) < sampleSize*3/4 {
		t.Fatalf("%d events in %s, want about %d", len(evs), recordedEvents, sampleSize)
	}
	types := map[event.Kind]int{}
	containers := 0
	for i := range evs {
		types[evs[i].Type]++
		if evs[i].Workload != nil && evs[i].Workload.ContainerID != "" {
			containers++
		}
	}
	for _, k := range []event.Kind{event.ProcessExec, event.ProcessExit, event.FileOpen, event.NetConnect} {
		if types[k] == 0 {
			t.Errorf("no %s event in the sample (types: %v)", k, types)
		}
	}
	if containers == 0 || containers == len(evs) {
		t.Errorf("%d of %d events from containers: want both containers and the host", containers, len(evs))
	}
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	fired := map[string]int{}
	for i := range evs {
		rs.Match(&evs[i], func(r *rules.Rule) { fired[r.Name]++ })
	}
	if fired[minerRule] == 0 {
		t.Errorf("the recorded miner's connect does not fire %q; fired: %v", minerRule, fired)
	}
	t.Logf("%d events, %d types, rules fired: %v", len(evs), len(types), fired)
}

// BenchmarkRulesReal runs the recorded events through the full default
// ruleset. events/s is wall time; events/cpu-s is per CPU-second of the
// benchmark's own thread (a per-core rate that holds on a busy machine).
func BenchmarkRulesReal(b *testing.B) {
	evs := loadRecorded(b)
	rs, err := rules.Default()
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	fn := func(*rules.Rule) { n++ }
	b.ReportAllocs()
	done := scMeasureCPU(b)
	for i := 0; i < b.N; i++ {
		rs.Match(&evs[i%len(evs)], fn)
	}
	done()
}

// BenchmarkDetectorReal runs the recorded events through the agent's whole
// decision step (Detector.Process): the default rules, behaviour profiles
// (learning, or checking once every class is monitored) and alert
// aggregation, without response actions.
func BenchmarkDetectorReal(b *testing.B) {
	evs := loadRecorded(b)
	for _, mode := range []profile.Mode{profile.Discover, profile.Monitor} {
		b.Run(string(mode), func(b *testing.B) {
			rs, err := rules.Default()
			if err != nil {
				b.Fatal(err)
			}
			store, err := profile.New(profile.Options{Learn: -1})
			if err != nil {
				b.Fatal(err)
			}
			d := NewDetector(Detection{Rules: rs, Profiles: store, Window: time.Minute, Logger: slog.New(slog.DiscardHandler)})
			ctx := context.Background()
			alerts := 0
			emit := func(*alert.Alert) { alerts++ }
			for i := range evs { // learn once
				d.Process(ctx, &evs[i], emit)
			}
			if mode == profile.Monitor {
				for _, p := range store.List() {
					if err := store.SetMode(p.Class, profile.Monitor); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportAllocs()
			done := scMeasureCPU(b)
			for i := 0; i < b.N; i++ {
				d.Process(ctx, &evs[i%len(evs)], emit)
			}
			done()
		})
	}
}

// scThreadCPU is the CPU time the calling OS thread has used.
func scThreadCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scMeasureCPU starts the timer with the goroutine locked to its thread;
// the returned func stops it and reports events/s and events/cpu-s.
func scMeasureCPU(b *testing.B) func() {
	runtime.LockOSThread()
	start := scThreadCPU()
	b.ResetTimer()
	return func() {
		b.StopTimer()
		cpu := scThreadCPU() - start
		runtime.UnlockOSThread()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		if cpu > 0 {
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
		}
	}
}
