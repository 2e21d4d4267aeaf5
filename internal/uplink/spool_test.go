package uplink

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/wire"
)

type item struct {
	I   int    `json:"i"`
	Pad string `json:"pad,omitempty"`
}

func openTestSpool(t *testing.T, path string, o SpoolOptions) *Spool {
	t.Helper()
	s, err := OpenSpool(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func flush(t *testing.T, s *Spool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func items(t *testing.T, recs []wire.Record) []int {
	t.Helper()
	out := make([]int, 0, len(recs))
	for _, r := range recs {
		var it item
		if err := json.Unmarshal(r.Data, &it); err != nil {
			t.Fatalf("record %d: %v (%s)", r.Seq, err, r.Data)
		}
		out = append(out, it.I)
	}
	return out
}

func TestSpoolSendPendingAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTestSpool(t, path, SpoolOptions{})
	for i := 1; i <= 10; i++ {
		if err := s.Send(wire.KindAlert, item{I: i}); err != nil {
			t.Fatal(err)
		}
	}
	flush(t, s)
	recs, err := s.Pending(1, 4, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 4 || recs[0].Seq != 1 || recs[3].Seq != 4 || recs[0].Kind != wire.KindAlert || recs[0].Time.IsZero() {
		t.Fatalf("Pending(1, 4) = %+v", recs)
	}
	if got := items(t, recs); fmt.Sprint(got) != "[1 2 3 4]" {
		t.Errorf("data %v, want [1 2 3 4]", got)
	}
	if err := s.Ack(6); err != nil {
		t.Fatal(err)
	}
	recs, err = s.Pending(1, 100, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := items(t, recs); fmt.Sprint(got) != "[7 8 9 10]" || recs[0].Seq != 7 {
		t.Errorf("after Ack(6): %v", got)
	}
	st := s.Stats()
	if st.First != 7 || st.Next != 11 || st.Acked != 6 || st.Records != 4 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	// An older ack changes nothing.
	if err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	if st2 := s.Stats(); st2 != st {
		t.Errorf("after a stale ack %+v, want %+v", st2, st)
	}
	// maxBytes bounds a batch, but the first record always comes.
	recs, _ = s.Pending(7, 100, 1)
	if len(recs) != 1 || recs[0].Seq != 7 {
		t.Errorf("Pending with maxBytes 1: %d records", len(recs))
	}

	// Reopened: the sequence continues, acked records stay gone.
	s.Close()
	s = openTestSpool(t, path, SpoolOptions{})
	if err := s.Send(wire.KindProfile, json.RawMessage(`{"i":11}`)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	recs, _ = s.Pending(0, 100, 1<<20)
	if got := items(t, recs); fmt.Sprint(got) != "[7 8 9 10 11]" || recs[4].Seq != 11 || recs[4].Kind != wire.KindProfile {
		t.Errorf("after reopening: %v %+v", got, recs[len(recs)-1])
	}
	if st := s.Stats(); st.Acked != 6 || st.Next != 12 || st.Records != 5 {
		t.Errorf("stats after reopening %+v", st)
	}
}

func TestSpoolBadInput(t *testing.T) {
	s := openTestSpool(t, filepath.Join(t.TempDir(), "spool.db"), SpoolOptions{MaxRecord: 1024})
	if err := s.Send(wire.KindAlert, func() {}); err == nil {
		t.Error("Send(func) did not fail")
	}
	if err := s.Send(strings.Repeat("k", 256), item{}); err == nil {
		t.Error("a 256-byte kind was taken")
	}
	err := s.Send(wire.KindAlert, item{Pad: string(make([]byte, 2000))})
	if err == nil || !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized record: %v, want ErrTooLarge", err)
	}
	s.Close()
	if err := s.Send(wire.KindAlert, item{}); err != ErrClosed {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	// A file that is not a spool is refused with its name.
	bad := filepath.Join(t.TempDir(), "junk.db")
	os.WriteFile(bad, []byte("this is not a bbolt file, not at all, no page header here............"), 0o600)
	if _, err := OpenSpool(bad, SpoolOptions{}); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("opening junk: %v", err)
	}
}

// A full spool drops its oldest records, acked or not, counts them, and
// keeps the sequence going.
func TestSpoolFullDropsOldest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	pad := string(make([]byte, 1000))
	s := openTestSpool(t, path, SpoolOptions{MaxBytes: 50_000})
	for i := 1; i <= 200; i++ {
		if err := s.Send(wire.KindAlert, item{I: i, Pad: pad}); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			flush(t, s)
		}
	}
	flush(t, s)
	st := s.Stats()
	if st.Bytes > 50_000 {
		t.Errorf("spool holds %d bytes, over its 50000", st.Bytes)
	}
	if st.Dropped == 0 || st.Dropped+uint64(st.Records) != 200 {
		t.Errorf("dropped %d + kept %d != 200", st.Dropped, st.Records)
	}
	recs, _ := s.Pending(0, 1000, 1<<30)
	got := items(t, recs)
	if len(got) != st.Records || got[len(got)-1] != 200 || got[0] != int(st.Dropped)+1 {
		t.Fatalf("kept %d records %d..%d, dropped %d: not the newest", len(got), got[0], got[len(got)-1], st.Dropped)
	}
	for i, r := range recs {
		if r.Seq != uint64(got[i]) {
			t.Fatalf("record %d has seq %d", got[i], r.Seq)
		}
	}
	if st.First != recs[0].Seq {
		t.Errorf("First %d, oldest kept %d", st.First, recs[0].Seq)
	}
	s.Close()
	s = openTestSpool(t, path, SpoolOptions{MaxBytes: 50_000})
	if st2 := s.Stats(); st2.Dropped != st.Dropped || st2.Records != st.Records {
		t.Errorf("after reopening %+v, before %+v", st2, st)
	}
}

// A queue the disk cannot keep up with drops its oldest queued records
// rather than block Send.
func TestSpoolQueueOverflow(t *testing.T) {
	s := openTestSpool(t, filepath.Join(t.TempDir(), "spool.db"), SpoolOptions{MaxQueue: 10_000, Linger: time.Hour, CommitMax: 1 << 30})
	pad := string(make([]byte, 900))
	for i := 1; i <= 100; i++ {
		if err := s.Send(wire.KindAlert, item{I: i, Pad: pad}); err != nil {
			t.Fatal(err)
		}
	}
	// The committer lingers for an hour: everything is still queued.
	st := s.Stats()
	if st.Queued > 11 || st.Dropped < 89 {
		t.Fatalf("queued %d dropped %d: the queue is not bounded", st.Queued, st.Dropped)
	}
	path := s.db.Path()
	s.Close() // commits the queue
	s2 := openTestSpool(t, path, SpoolOptions{})
	recs, _ := s2.Pending(0, 1000, 1<<30)
	got := items(t, recs)
	if len(got) == 0 || got[len(got)-1] != 100 || uint64(len(got))+s2.Stats().Dropped != 100 {
		t.Errorf("kept %v, dropped %d", got, s2.Stats().Dropped)
	}
}

// TestSpoolCrash kills a writer process (SIGKILL) in the middle of a
// stream of sends, reopens its spool and checks that every record the
// child saw committed is there, in order, with no gaps or duplicates, and
// that the sequence continues after the last one.
func TestSpoolCrash(t *testing.T) {
	if path := os.Getenv("VIGIL_SPOOL_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	for round := range 3 {
		path := filepath.Join(t.TempDir(), "spool.db")
		cmd := exec.Command(os.Args[0], "-test.run=^TestSpoolCrash$")
		cmd.Env = append(os.Environ(), "VIGIL_SPOOL_CRASH_CHILD="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The child prints the highest record committed after each
		// commit; kill it once it is well into the stream.
		sc := bufio.NewScanner(out)
		var committed int
		kill := 2000 + round*3000
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue
			}
			committed = n
			if n >= kill {
				cmd.Process.Signal(syscall.SIGKILL)
				break
			}
		}
		cmd.Wait()
		if committed < kill {
			t.Fatalf("round %d: the child stopped at %d before the kill", round, committed)
		}
		s, err := OpenSpool(path, SpoolOptions{})
		if err != nil {
			t.Fatalf("round %d: reopening after SIGKILL: %v", round, err)
		}
		recs, err := s.Pending(0, 1<<30, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		got := items(t, recs)
		if len(got) < committed {
			t.Fatalf("round %d: %d records after the crash, %d were committed", round, len(got), committed)
		}
		for i, r := range recs {
			if r.Seq != uint64(i+1) || got[i] != i+1 {
				t.Fatalf("round %d: record %d has seq %d and data %d", round, i+1, r.Seq, got[i])
			}
		}
		st := s.Stats()
		if st.Next != uint64(len(recs))+1 || st.Records != len(recs) {
			t.Errorf("round %d: stats %+v with %d records", round, st, len(recs))
		}
		s.Send(wire.KindAlert, item{I: len(recs) + 1})
		flush(t, s)
		more, _ := s.Pending(uint64(len(recs)+1), 10, 1<<20)
		if len(more) != 1 || more[0].Seq != uint64(len(recs)+1) {
			t.Errorf("round %d: the sequence does not continue: %+v", round, more)
		}
		s.Close()
		t.Logf("round %d: killed after %d committed, %d found", round, committed, len(recs))
	}
}

func crashChild(path string) {
	// No linger, a queue that never overflows: commits follow each other
	// back to back while the writer sends, so the kill lands in one.
	s, err := OpenSpool(path, SpoolOptions{Linger: -1, MaxQueue: 1 << 30})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// A reporter prints what is committed after each commit while the
	// writer keeps sending, so the kill lands among sends and commits.
	go func() {
		for i := 1; ; i++ {
			s.Send(wire.KindAlert, item{I: i, Pad: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"})
		}
	}()
	for range s.Committed() {
		fmt.Println(s.Stats().Next - 1)
	}
}

// FuzzDecode: a spool record read back from disk (a damaged file) decodes
// or fails with an error naming it, never panics; what encode wrote
// decodes to itself.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{}, "alert", []byte(`{"a":1}`))
	f.Add([]byte{5, 'a'}, "", []byte(`null`))
	f.Add([]byte{255, 1, 2, 3, 4, 5, 6, 7, 8}, "profile", []byte(`[]`))
	f.Fuzz(func(t *testing.T, raw []byte, kind string, data []byte) {
		if _, err := decode(7, raw); err != nil && !strings.Contains(err.Error(), "record 7") {
			t.Fatalf("error %q does not name the record", err)
		}
		if len(kind) > 255 {
			return
		}
		q := queued{kind: kind, t: time.Unix(0, 12345), data: data}
		r, err := decode(3, encode(q))
		if err != nil || r.Kind != kind || string(r.Data) != string(data) || r.Time.UnixNano() != 12345 || r.Seq != 3 {
			t.Fatalf("round trip of %q/%q: %+v, %v", kind, data, r, err)
		}
	})
}
