package fim

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/event"
)

// prefixWatch watches paths below /etc/ and /srv/app/ except /srv/app/tmp/.
type prefixWatch struct{}

func (prefixWatch) Match(p string) (string, bool) {
	switch {
	case strings.HasPrefix(p, "/srv/app/tmp/"):
		return "", false
	case strings.HasPrefix(p, "/etc/"):
		return "etc", true
	case strings.HasPrefix(p, "/srv/app/"):
		return "app", true
	}
	return "", false
}

func (prefixWatch) Priority(rule string) string {
	if rule == "etc" {
		return "CRITICAL"
	}
	return ""
}

var t0 = time.Date(2026, 11, 30, 7, 0, 0, 0, time.UTC)

func fileEvent(kind event.Kind, p, newPath string, flags uint32) *event.Event {
	return &event.Event{Time: t0, Type: kind, Ret: 3,
		Process: event.Process{PID: 42, Name: "bash", Exe: "/usr/bin/bash", Cwd: "/srv", User: "alice", MntNS: 7},
		Parent:  &event.Process{PID: 41, Name: "sshd"},
		File:    &event.File{Path: p, NewPath: newPath, Flags: flags, Mode: 0o4755}}
}

func TestClassifyEvent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		e        *event.Event
		ok       bool
		kind     string
		path     string
		rule     string
		other    string
		failRet  bool
		emptyCwd bool
	}{
		{name: "write", e: fileEvent(event.FileOpen, "/etc/passwd", "", 0o1), ok: true, kind: RealtimeWrite, path: "/etc/passwd", rule: "etc"},
		{name: "create", e: fileEvent(event.FileOpen, "app/new", "", 0o100), ok: true, kind: RealtimeWrite, path: "/srv/app/new", rule: "app"},
		{name: "read-only open", e: fileEvent(event.FileOpen, "/etc/passwd", "", 0), ok: false},
		{name: "failed write", e: fileEvent(event.FileOpen, "/etc/passwd", "", 0o2), ok: false, failRet: true},
		{name: "relative without cwd", e: fileEvent(event.FileOpen, "passwd", "", 0o2), ok: false, emptyCwd: true},
		{name: "climbing path", e: fileEvent(event.FileOpen, "/tmp/../etc//shadow", "", 0o1000), ok: true, kind: RealtimeWrite, path: "/etc/shadow", rule: "etc"},
		{name: "excluded", e: fileEvent(event.FileOpen, "/srv/app/tmp/x", "", 0o1), ok: false},
		{name: "unwatched", e: fileEvent(event.FileOpen, "/var/log/x", "", 0o1), ok: false},
		{name: "delete", e: fileEvent(event.FileUnlink, "/etc/hosts", "", 0), ok: true, kind: RealtimeDelete, path: "/etc/hosts", rule: "etc"},
		{name: "rename onto", e: fileEvent(event.FileRename, "/tmp/x", "/etc/hosts", 0), ok: true, kind: RealtimeRename, path: "/etc/hosts", other: "/tmp/x", rule: "etc"},
		{name: "rename away", e: fileEvent(event.FileRename, "/etc/hosts", "/tmp/x", 0), ok: true, kind: RealtimeRename, path: "/etc/hosts", other: "/tmp/x", rule: "etc"},
		{name: "chmod", e: fileEvent(event.FileChmod, "/etc/sudoers", "", 0), ok: true, kind: RealtimeChmod, path: "/etc/sudoers", rule: "etc"},
		{name: "chown", e: fileEvent(event.FileChown, "/etc/sudoers", "", 0), ok: true, kind: RealtimeChown, path: "/etc/sudoers", rule: "etc"},
		{name: "fchown without path", e: fileEvent(event.FileChown, "", "", 0), ok: false},
		{name: "link of watched file", e: fileEvent(event.FileLink, "/etc/shadow", "/tmp/s", 0), ok: true, kind: RealtimeLink, path: "/etc/shadow", other: "/tmp/s", rule: "etc"},
		{name: "symlink at watched path", e: fileEvent(event.FileSymlink, "/tmp/evil", "/etc/cron.d/x", 0), ok: true, kind: RealtimeSymlink, path: "/etc/cron.d/x", rule: "etc"},
		{name: "symlink to watched path", e: fileEvent(event.FileSymlink, "/etc/shadow", "/tmp/s", 0), ok: false},
		{name: "mkdir", e: fileEvent(event.FileMkdir, "/etc/x.d", "", 0), ok: true, kind: RealtimeMkdir, path: "/etc/x.d", rule: "etc"},
		{name: "exec", e: &event.Event{Type: event.ProcessExec}, ok: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.failRet {
				tc.e.Ret = -13
			}
			if tc.emptyCwd {
				tc.e.Process.Cwd = ""
			}
			c, ok := ClassifyEvent(prefixWatch{}, tc.e)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v (%+v)", ok, tc.ok, c)
			}
			if !ok {
				return
			}
			want := RealtimeChange{Kind: tc.kind, Path: tc.path, Other: tc.other, Rule: tc.rule}
			if tc.kind == RealtimeSymlink || tc.other == "" {
				want.Other = c.Other // the second path is informative only
			}
			if c != want {
				t.Errorf("got %+v, want %+v", c, want)
			}
		})
	}
}

func TestRealtimeDebounce(t *testing.T) {
	r := NewRealtime(prefixWatch{}, RealtimeOptions{Window: 5 * time.Second})
	var got []alert.Alert
	emit := func(a *alert.Alert) { got = append(got, *a) }
	for i := range 1000 {
		e := fileEvent(event.FileOpen, "/etc/passwd", "", 0o1)
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		r.Observe(e, emit)
	}
	// Another path by the same process, and the same path by another
	// process: not repeats.
	r.Observe(fileEvent(event.FileOpen, "/etc/group", "", 0o1), emit)
	other := fileEvent(event.FileOpen, "/etc/passwd", "", 0o1)
	other.Process.PID = 43
	r.Observe(other, emit)
	if len(got) != 3 {
		t.Fatalf("%d alerts before the window closed, want 3: %+v", len(got), got)
	}
	first := got[0]
	if first.Count != 1 || first.Aggregate || first.Source != SourceFIM || first.Rule != "File integrity: etc" || first.Priority != "CRITICAL" {
		t.Errorf("first alert: %+v", first)
	}
	for _, s := range []string{"change=write", "path=/etc/passwd", "process=bash", "pid=42", "user=alice", "parent=sshd", "container=host"} {
		if !strings.Contains(first.Output, s) {
			t.Errorf("output %q lacks %q", first.Output, s)
		}
	}
	if len(first.Techniques) != 1 || first.Techniques[0] != "T1565.001" {
		t.Errorf("techniques %v", first.Techniques)
	}
	got = nil
	r.Flush(t0.Add(4*time.Second), emit)
	if len(got) != 0 {
		t.Fatalf("window closed early: %+v", got)
	}
	r.Flush(t0.Add(6*time.Second), emit)
	if len(got) != 1 || !got[0].Aggregate || got[0].Count != 999 || !strings.Contains(got[0].Output, "path=/etc/passwd") {
		t.Fatalf("after the window: %+v", got)
	}
	got = nil
	e := fileEvent(event.FileOpen, "/etc/passwd", "", 0o1)
	e.Time = t0.Add(7 * time.Second)
	r.Observe(e, emit)
	if len(got) != 1 || got[0].Count != 1 || got[0].Aggregate {
		t.Fatalf("first change of a new window: %+v", got)
	}
	r.Close(emit)
	if len(got) != 1 {
		t.Fatalf("Close wrote a count line with no repeats: %+v", got)
	}
}

func TestRealtimeSetWatch(t *testing.T) {
	r := NewRealtime(prefixWatch{}, RealtimeOptions{})
	var got []alert.Alert
	emit := func(a *alert.Alert) { got = append(got, *a) }
	r.Observe(fileEvent(event.FileOpen, "/var/x", "", 0o1), emit)
	r.SetWatch(WatchFunc(func(p string) (string, bool) { return "var", strings.HasPrefix(p, "/var/") }))
	r.Observe(fileEvent(event.FileOpen, "/var/x", "", 0o1), emit)
	r.Observe(fileEvent(event.FileOpen, "/etc/passwd", "", 0o1), emit)
	if len(got) != 1 || got[0].Rule != "File integrity: var" || got[0].Priority != "WARNING" {
		t.Fatalf("after SetWatch: %+v", got)
	}
}

func TestRealtimePermTechnique(t *testing.T) {
	r := NewRealtime(prefixWatch{}, RealtimeOptions{})
	var got []alert.Alert
	e := fileEvent(event.FileChmod, "/srv/app/run.sh", "", 0)
	e.Workload = &event.Workload{ContainerID: "0123456789abcdef", ContainerName: "web", Image: "nginx:1"}
	r.Observe(e, func(a *alert.Alert) { got = append(got, *a) })
	if len(got) != 1 {
		t.Fatalf("%d alerts", len(got))
	}
	a := got[0]
	if a.Techniques[0] != "T1222" || a.Priority != "WARNING" || a.Rule != "File integrity: app" {
		t.Errorf("got %+v", a)
	}
	for _, s := range []string{"change=chmod", "mode=04755", "container=web", "container_id=0123456789ab", "image=nginx:1"} {
		if !strings.Contains(a.Output, s) {
			t.Errorf("output %q lacks %q", a.Output, s)
		}
	}
}

func TestRealtimeMax(t *testing.T) {
	r := NewRealtime(prefixWatch{}, RealtimeOptions{Max: 2})
	var got []alert.Alert
	emit := func(a *alert.Alert) { got = append(got, *a) }
	for i, p := range []string{"/etc/a", "/etc/a", "/etc/b", "/etc/c"} {
		e := fileEvent(event.FileOpen, p, "", 0o1)
		e.Time = t0.Add(time.Duration(i) * time.Millisecond)
		r.Observe(e, emit)
	}
	// a, (a repeat), b, then c closes a early with its count.
	if len(got) != 4 || !got[2].Aggregate || got[2].Count != 1 || !strings.Contains(got[2].Output, "path=/etc/a") {
		t.Fatalf("got %+v", got)
	}
}

func FuzzClassifyEvent(f *testing.F) {
	f.Add(uint16(event.FileOpen), "/etc/passwd", "", uint32(1), "/")
	f.Add(uint16(event.FileRename), "../../etc/x", "/srv/app/y", uint32(0), "/srv/app/tmp")
	f.Add(uint16(event.FileSymlink), "", "a//b/../../../etc/z", uint32(0), "relative")
	f.Fuzz(func(t *testing.T, kind uint16, p, np string, flags uint32, cwd string) {
		e := &event.Event{Type: event.Kind(kind), File: &event.File{Path: p, NewPath: np, Flags: flags}, Process: event.Process{Cwd: cwd}}
		c, ok := ClassifyEvent(prefixWatch{}, e)
		if ok && (c.Path == "" || c.Path[0] != '/' || c.Rule == "") {
			t.Fatalf("bad change %+v", c)
		}
		r := NewRealtime(prefixWatch{}, RealtimeOptions{})
		r.Observe(e, func(*alert.Alert) {})
	})
}

// BenchmarkFIMMatch is the cost realtime FIM adds to a file event: classify
// (write open of a watched path), debounce and, for the first, the alert.
func BenchmarkFIMMatch(b *testing.B) {
	for _, bc := range []struct {
		name string
		path string
	}{{"watched-repeat", "/etc/passwd"}, {"unwatched", "/var/tmp/x"}, {"excluded", "/srv/app/tmp/x"}} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewRealtime(prefixWatch{}, RealtimeOptions{Window: time.Hour})
			e := fileEvent(event.FileOpen, bc.path, "", 0o1)
			n := 0
			emit := func(*alert.Alert) { n++ }
			b.ReportAllocs()
			for b.Loop() {
				r.Observe(e, emit)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
	// Every event a first change (a new process each time): the alert is
	// made, and past Max the oldest window is closed to make room.
	b.Run("watched-first", func(b *testing.B) {
		r := NewRealtime(prefixWatch{}, RealtimeOptions{Window: time.Hour})
		e := fileEvent(event.FileOpen, "/etc/passwd", "", 0o1)
		b.ReportAllocs()
		for b.Loop() {
			e.Process.PID++
			r.Observe(e, func(*alert.Alert) {})
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	// The default configuration (10 watched roots, 9 excludes, regular
	// expressions among them) through ConfigWatch.
	for _, bc := range []struct{ name, path string }{
		{"default-config-watched", "/etc/ssh/sshd_config"}, {"default-config-unwatched", "/home/u/.cache/x"},
		{"default-config-excluded", "/etc/mtab"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := NewRealtime(ConfigWatch(DefaultConfig()), RealtimeOptions{Window: time.Hour})
			e := fileEvent(event.FileOpen, bc.path, "", 0o1)
			b.ReportAllocs()
			for b.Loop() {
				r.Observe(e, func(*alert.Alert) {})
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// TestConfigWatchAttrs: the rule's attributes decide which changes count.
func TestConfigWatchAttrs(t *testing.T) {
	c, err := ParseConfig([]byte(`watch:
  - {path: /var/log, attrs: ">"}
  - {path: /etc/perms-only, attrs: PERMS}
  - {path: /etc, attrs: NORMAL}
  - {path: /srv/content, attrs: CONTENT}
`), "attrs.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := ConfigWatch(c)
	const wr, creat, trunc, app = 0o1, 0o100, 0o1000, 0o2000
	for _, tc := range []struct {
		kind  event.Kind
		path  string
		flags uint32
		want  bool
	}{
		{event.FileOpen, "/var/log/syslog", wr | app, false},         // a log growing
		{event.FileOpen, "/var/log/syslog", wr | app | creat, false}, // likewise, made if missing
		{event.FileOpen, "/var/log/syslog", wr | trunc, true},        // a log emptied
		{event.FileOpen, "/var/log/syslog", wr, true},                // written in place
		{event.FileUnlink, "/var/log/syslog", 0, true},
		{event.FileOpen, "/etc/perms-only/x", wr, false}, // content not recorded
		{event.FileOpen, "/etc/perms-only/x", wr | creat | trunc, true},
		{event.FileChmod, "/etc/perms-only/x", 0, true},
		{event.FileChown, "/etc/perms-only/x", 0, true},
		{event.FileOpen, "/etc/hosts", wr | app, true}, // not growing: an append is a change
		{event.FileChmod, "/etc/hosts", 0, true},
		{event.FileChmod, "/srv/content/x", 0, false}, // mode not recorded
		{event.FileChown, "/srv/content/x", 0, false},
		{event.FileOpen, "/srv/content/x", wr, true},
	} {
		e := fileEvent(tc.kind, tc.path, "", tc.flags)
		if _, ok := ClassifyEvent(w, e); ok != tc.want {
			t.Errorf("%s %s flags %#o: reported %v, want %v", tc.kind, tc.path, tc.flags, ok, tc.want)
		}
	}
}

func TestConfigWatch(t *testing.T) {
	c, err := ParseConfig([]byte("watch:\n  - {path: /srv/app, attrs: NORMAL}\nexclude:\n  - /srv/app/cache\n"), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	w := ConfigWatch(c)
	for p, want := range map[string]bool{"/srv/app/bin/x": true, "/srv/app/cache/x": false, "/srv/other": false} {
		if _, ok := w.Match(p); ok != want {
			t.Errorf("Match(%s) = %v, want %v", p, ok, want)
		}
	}
	if name, _ := w.Match("/srv/app/x"); name != "/srv/app" {
		t.Errorf("rule name %q, want the path", name)
	}
}
