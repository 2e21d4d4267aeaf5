package agent

import (
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/profile"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// fakeUplink keeps what is sent, marshalled as the spool would.
type fakeUplink struct {
	mu   sync.Mutex
	recs []wire.Record
}

func (f *fakeUplink) Send(kind string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, wire.Record{Kind: kind, Data: b})
	return nil
}

func (f *fakeUplink) take() []wire.Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs
	f.recs = nil
	return r
}

func TestHostAsset(t *testing.T) {
	root := t.TempDir() + "/"
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\nHOME_URL=x\n"), 0o644)
	os.WriteFile(filepath.Join(root, "etc/machine-id"), []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
	b, _ := json.Marshal(HostAsset("node-1", root, time.Unix(1, 0)))
	var got struct {
		Kind, ID, Name string
		Data           struct {
			Hostname string            `json:"hostname"`
			OS       map[string]string `json:"os"`
			Kernel   string            `json:"kernel"`
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Kind != "host" || got.ID != "0123456789abcdef0123456789abcdef" || got.Name != "node-1" || got.Data.Hostname != "node-1" {
		t.Errorf("host asset %s", b)
	}
	if got.Data.OS["id"] != "debian" || got.Data.OS["version_id"] != "12" || got.Data.OS["pretty_name"] != "Debian GNU/Linux 12 (bookworm)" || got.Data.OS["home_url"] != "" {
		t.Errorf("os %v", got.Data.OS)
	}
	if got.Data.Kernel == "" {
		t.Error("no kernel release")
	}
	// No machine-id: the hostname is the ID.
	os.Remove(filepath.Join(root, "etc/machine-id"))
	b, _ = json.Marshal(HostAsset("node-1", root, time.Unix(1, 0)))
	if !strings.Contains(string(b), `"id":"node-1"`) {
		t.Errorf("without machine-id: %s", b)
	}
}

// A container is reported once; one first seen without its metadata is
// reported again when they come; its image once.
func TestReporterObserve(t *testing.T) {
	up := &fakeUplink{}
	r := newReporter(up, slog.New(slog.DiscardHandler))
	id := strings.Repeat("c", 64)
	bare := &event.Event{Workload: &event.Workload{ContainerID: id, Runtime: "docker"}}
	full := &event.Event{Workload: &event.Workload{ContainerID: id, Runtime: "docker", ContainerName: "web", Image: "nginx:1.25", ImageDigest: "sha256:abc"}}
	r.observe(&event.Event{}) // the host: nothing
	r.observe(bare)
	r.observe(bare)
	if n := len(up.take()); n != 1 {
		t.Fatalf("%d records for a container seen twice without metadata, want 1", n)
	}
	r.observe(full)
	r.observe(full)
	recs := up.take()
	if len(recs) != 2 {
		t.Fatalf("%d records once the metadata came, want the container and its image", len(recs))
	}
	var c, img asset
	json.Unmarshal(recs[0].Data, &c)
	json.Unmarshal(recs[1].Data, &img)
	if recs[0].Kind != wire.KindAsset || c.Kind != "container" || c.ID != id || c.Name != "web" {
		t.Errorf("container asset %s", recs[0].Data)
	}
	if img.Kind != "image" || img.ID != "sha256:abc" || img.Name != "nginx:1.25" {
		t.Errorf("image asset %s", recs[1].Data)
	}
	// The container's init exits: it is reported gone, with its metadata.
	exit := *full
	exit.Type, exit.Process.VPID = event.ProcessExit, 1
	notInit := exit
	notInit.Process.VPID = 7
	r.observe(&notInit)
	if n := len(up.take()); n != 0 {
		t.Fatalf("%d records for a non-init exit", n)
	}
	r.observe(&exit)
	recs = up.take()
	var gone asset
	if len(recs) == 1 {
		json.Unmarshal(recs[0].Data, &gone)
	}
	if !gone.Gone || gone.ID != id || gone.Name != "web" {
		t.Errorf("after init's exit: %+v", recs)
	}
	var nilRep *reporter
	nilRep.observe(full) // no uplink: no panic
}

// Profiles go up when they change, not on every save.
func TestReporterProfiles(t *testing.T) {
	up := &fakeUplink{}
	r := newReporter(up, slog.New(slog.DiscardHandler))
	ps, err := profile.New(profile.Options{Learn: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	w := &event.Workload{ContainerID: strings.Repeat("d", 64), Runtime: "docker", Image: "nginx:1.25"}
	ps.Observe(&event.Event{Type: event.ProcessExec, Time: time.Now(), Process: event.Process{PID: 2, Exe: "/usr/sbin/nginx"}, Workload: w})
	r.profiles(ps, false)
	recs := up.take()
	if len(recs) != 1 || recs[0].Kind != wire.KindProfile {
		t.Fatalf("first report: %+v", recs)
	}
	var p wire.Profile
	json.Unmarshal(recs[0].Data, &p)
	if p.Class == "" || p.Mode != "discover" || !strings.Contains(string(p.Data), "/usr/sbin/nginx") {
		t.Errorf("profile record %s", recs[0].Data)
	}
	r.profiles(ps, false)
	if n := len(up.take()); n != 0 {
		t.Errorf("unchanged profile sent again (%d records)", n)
	}
	ps.Observe(&event.Event{Type: event.ProcessExec, Time: time.Now(), Process: event.Process{PID: 3, Exe: "/bin/sh"}, Workload: w})
	r.profiles(ps, false)
	if n := len(up.take()); n != 1 {
		t.Errorf("changed profile: %d records, want 1", n)
	}
	r.profiles(ps, true)
	if n := len(up.take()); n != 1 {
		t.Errorf("forced: %d records, want 1", n)
	}
}

func TestResponseLog(t *testing.T) {
	up := &fakeUplink{}
	w := ResponseLog(up, nil)
	in := []byte("{\"id\":\"a\",\"action\":\"kill\"}\n\n{\"id\":\"b\"}\n")
	n, err := w.Write(in)
	if err != nil || n != len(in) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	recs := up.take()
	if len(recs) != 2 || recs[0].Kind != wire.KindResponse || string(recs[0].Data) != `{"id":"a","action":"kill"}` || string(recs[1].Data) != `{"id":"b"}` {
		t.Errorf("records %+v", recs)
	}
}

// TestAgentReportsToUplink runs the agent with an Uplink and a container
// reading /etc/shadow: the uplink gets the host, the container and its
// image, the rule's alert, and the container's end.
func TestAgentReportsToUplink(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	up := &fakeUplink{}
	a := startAgentWith(t, func(a *agentRun, o *Options) {
		o.Detector = NewDetector(Detection{Rules: rs})
		o.Uplink = up
		o.Hostname = "uplink-test-host"
	})
	id := strings.TrimSpace(vigiltest.Run(t, "", "docker", "run", "-d", img, "sh", "-c", "sleep 1; cat /etc/shadow; sleep 2"))
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", id).Run() })
	var got []wire.Record
	var host, container, image, alerted, gone bool
	a.waitOrFail(t, 60*time.Second, "the host, container, image, alert and container-gone records", func() bool {
		got = append(got, up.take()...)
		for _, r := range got {
			s := string(r.Data)
			switch {
			case r.Kind == wire.KindAsset && strings.Contains(s, `"kind":"host"`) && strings.Contains(s, `"name":"uplink-test-host"`):
				host = true
			case r.Kind == wire.KindAsset && strings.Contains(s, `"kind":"container"`) && strings.Contains(s, `"id":"`+id+`"`) && strings.Contains(s, `"gone":true`):
				gone = true
			case r.Kind == wire.KindAsset && strings.Contains(s, `"kind":"container"`) && strings.Contains(s, `"id":"`+id+`"`) && strings.Contains(s, img):
				container = true
			case r.Kind == wire.KindAsset && strings.Contains(s, `"kind":"image"`) && strings.Contains(s, img):
				image = true
			case r.Kind == wire.KindAlert && strings.Contains(s, `"rule":"Read sensitive file untrusted"`) && strings.Contains(s, id):
				alerted = true
			}
		}
		got = got[:0]
		return host && container && image && alerted && gone
	})
}

// A rules command replaces the rules with what the builder makes of the
// server's YAML; YAML that does not load keeps the previous rules.
func TestHandlerRules(t *testing.T) {
	d := NewDetector(Detection{})
	h := NewHandler(d, HandlerOptions{Rules: func(extra []byte) (*rules.Ruleset, error) {
		return rules.Load(rules.File{Name: "server", Data: extra})
	}})
	good := []byte("- rule: From the server\n  desc: d\n  condition: evt.type = execve and proc.name = vigil-none\n  output: x\n  priority: WARNING\n")
	res := h.Handle(t.Context(), wire.Command{ID: "1", Kind: wire.CommandRules, Rules: good})
	if !res.OK || res.ID != "1" {
		t.Fatalf("good rules: %+v", res)
	}
	rs := d.rules.Load()
	if rs == nil || len(rs.Rules()) != 1 || rs.Rules()[0].Name != "From the server" {
		t.Fatalf("rules after the command: %v", rs)
	}
	res = h.Handle(t.Context(), wire.Command{Kind: wire.CommandRules, Rules: []byte("- rule: [broken")})
	if res.OK || !strings.Contains(res.Error, "keeping the previous rules") {
		t.Errorf("broken rules: %+v", res)
	}
	if d.rules.Load() != rs {
		t.Error("broken rules replaced the previous ones")
	}
	// Without a Detector's responder or profiles the commands say why.
	for _, c := range []wire.Command{{Kind: wire.CommandRespond, Action: "kill"}, {Kind: wire.CommandSetMode}, {Kind: wire.CommandProfiles}} {
		if res := h.Handle(t.Context(), c); res.OK || !strings.Contains(res.Error, "off") {
			t.Errorf("%s without the feature: %+v", c.Kind, res)
		}
	}
}

// FuzzParseTarget: a respond command's target from the server is refused
// with an error or read, never a panic; what is read has no negative PID.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{`{"container_id":"abc"}`, `{"pid":12,"start_time":"2024-01-01T00:00:00Z"}`, `{"pid":-1}`,
		`{"x":1}`, `{} {}`, `null`, `[`, `{"pid":1e99}`, `{"container_id":"a","runtime":"docker","class":"c"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tg, err := parseTarget(b)
		if err == nil && tg.PID < 0 {
			t.Fatalf("negative PID accepted from %q", b)
		}
	})
}

type countingUplink struct {
	fakeUplink
	count func() uint64
}

func (c *countingUplink) SetEventCount(f func() uint64) { c.count = f }

// An Uplink that takes the event count gets one that counts every event.
func TestReporterEventCount(t *testing.T) {
	up := &countingUplink{}
	r := newReporter(up, slog.New(slog.DiscardHandler))
	if up.count == nil {
		t.Fatal("SetEventCount not called")
	}
	for range 5 {
		r.observe(&event.Event{})
	}
	if n := up.count(); n != 5 {
		t.Errorf("count %d after 5 events", n)
	}
}

// BenchmarkReporterObserve is the uplink's cost on every event: a
// container already reported (the common case).
func BenchmarkReporterObserve(b *testing.B) {
	r := newReporter(&fakeUplink{}, slog.New(slog.DiscardHandler))
	e := &event.Event{Workload: &event.Workload{ContainerID: strings.Repeat("e", 64), Image: "nginx:1.25"}}
	r.observe(e)
	b.ReportAllocs()
	for b.Loop() {
		r.observe(e)
	}
}
