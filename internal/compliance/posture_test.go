package compliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ids(cs []Change) string {
	var out []string
	for _, c := range cs {
		s := c.ID + ":" + c.From + ">" + c.To
		if c.Target != "" {
			s += "@" + c.Target
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// TestPostureDrift runs the Linux benchmark on a good tree, breaks part of
// it, runs again and compares the kept runs.
func TestPostureDrift(t *testing.T) {
	root := goodLinux(t)
	state := t.TempDir()
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	run := func(at time.Time) *Report {
		rep := runLinux(t, root)
		rep.Time = at
		if _, err := Save(state, rep); err != nil {
			t.Fatal(err)
		}
		return rep
	}
	first := run(t0)

	// Regress: root login over SSH, a world-readable shadow; improve
	// nothing yet.
	tree(t, root, map[string]string{"/etc/ssh/sshd_config.d/00-bad.conf": "PermitRootLogin yes\n"})
	chmod(t, root, map[string]os.FileMode{"/etc/ssh/sshd_config.d/00-bad.conf": 0o600, "/etc/shadow": 0o644})
	second := run(t0.Add(time.Hour))

	runs, err := Runs(state, BenchLinux)
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %v %v, want 2", runs, err)
	}
	prev, err := LoadReport(runs[0])
	if err != nil {
		t.Fatal(err)
	}
	if !prev.Time.Equal(first.Time) || len(prev.Results) != len(first.Results) {
		t.Fatalf("the kept first run differs: %v %d", prev.Time, len(prev.Results))
	}
	d := Compare(prev, second)
	if got, want := ids(d.Regressed), "5.1.20:pass>fail@fixture 7.1.5:pass>fail@fixture"; got != want {
		t.Errorf("regressed %q, want %q", got, want)
	}
	if len(d.Improved)+len(d.Added)+len(d.Removed)+len(d.Changed) != 0 {
		t.Errorf("unexpected drift: %+v", d)
	}
	if !strings.Contains(d.Regressed[0].Evidence, "PermitRootLogin yes (/etc/ssh/sshd_config.d/00-bad.conf:1)") {
		t.Errorf("regression evidence %q", d.Regressed[0].Evidence)
	}

	// Fix shadow: an improvement against the latest kept run.
	chmod(t, root, map[string]os.FileMode{"/etc/shadow": 0o640})
	third := runLinux(t, root)
	third.Time = t0.Add(2 * time.Hour)
	latest, err := Latest(state, BenchLinux)
	if err != nil || latest == nil || !latest.Time.Equal(second.Time) {
		t.Fatalf("latest %v %v, want the second run", latest, err)
	}
	d = Compare(latest, third)
	if got := ids(d.Improved); got != "7.1.5:fail>pass@fixture" {
		t.Errorf("improved %q", got)
	}
	if len(d.Regressed) != 0 {
		t.Errorf("regressed %q", ids(d.Regressed))
	}
}

func TestCompareAddedRemovedChanged(t *testing.T) {
	prev := &Report{Results: []Result{
		{Benchmark: BenchDocker, ID: "5.4", Target: "web (1)", Status: Pass},
		{Benchmark: BenchDocker, ID: "5.4", Target: "db (2)", Status: Fail},
		{Benchmark: BenchDocker, ID: "2.1", Target: "h", Status: Warn},
		{Benchmark: BenchDocker, ID: "2.2", Target: "h", Status: Error},
	}}
	cur := &Report{Results: []Result{
		{Benchmark: BenchDocker, ID: "5.4", Target: "web (1)", Status: Fail},
		{Benchmark: BenchDocker, ID: "5.4", Target: "cache (3)", Status: Pass},
		{Benchmark: BenchDocker, ID: "2.1", Target: "h", Status: Pass},
		{Benchmark: BenchDocker, ID: "2.2", Target: "h", Status: Pass},
	}}
	d := Compare(prev, cur)
	for name, got := range map[string][2]string{
		"regressed": {ids(d.Regressed), "5.4:pass>fail@web (1)"},
		"improved":  {ids(d.Improved), "2.1:warn>pass@h"},
		"changed":   {ids(d.Changed), "2.2:error>pass@h"},
		"added":     {ids(d.Added), "5.4:>pass@cache (3)"},
		"removed":   {ids(d.Removed), "5.4:fail>@db (2)"},
	} {
		if got[0] != got[1] {
			t.Errorf("%s = %q, want %q", name, got[0], got[1])
		}
	}
	if d.Empty() {
		t.Error("Empty() on a drift with changes")
	}
	if !Compare(cur, cur).Empty() {
		t.Error("a run compared with itself drifted")
	}
}

func TestSaveRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	if _, err := Save(dir, &Report{Benchmark: "../x"}); err == nil {
		t.Error("a benchmark name with a slash was accepted")
	}
	// A corrupt run file is an error naming it; stray files are ignored.
	d := filepath.Join(dir, BenchLinux)
	os.MkdirAll(d, 0o700)
	os.WriteFile(filepath.Join(d, "notes.txt"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(d, "2026-11-30T07:00:00.000000000Z.json"), []byte("{not json"), 0o600)
	if _, err := Latest(dir, BenchLinux); err == nil || !strings.Contains(err.Error(), "2026-11-30T07:00:00.000000000Z.json") {
		t.Errorf("corrupt run: %v", err)
	}
	if r, err := Latest(t.TempDir(), BenchLinux); r != nil || err != nil {
		t.Errorf("no runs: %v %v", r, err)
	}
}

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	t0 := time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)
	for i := 0; i < 5; i++ {
		if _, err := Save(dir, &Report{Benchmark: BenchDocker, Time: t0.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := Prune(dir, BenchDocker, 0); n != 0 || err != nil {
		t.Fatalf("keep 0 pruned %d %v", n, err)
	}
	if n, err := Prune(dir, BenchDocker, 2); n != 3 || err != nil {
		t.Fatalf("pruned %d %v, want 3", n, err)
	}
	runs, _ := Runs(dir, BenchDocker)
	if len(runs) != 2 || !strings.HasSuffix(runs[1], "07:04:00.000000000Z.json") || !strings.HasSuffix(runs[0], "07:03:00.000000000Z.json") {
		t.Errorf("left %v, want the two newest", runs)
	}
}
