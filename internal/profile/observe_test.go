package profile

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vigil-cwpp/vigil/internal/event"
)

func TestLearnThenPromote(t *testing.T) {
	c := newClock()
	s := newStore(t, c, nil)
	observeAll(t, s, normal(web))
	p, ok := s.Get(webClass)
	if !ok {
		t.Fatalf("no profile for %s; have %v", webClass, s.List())
	}
	if p.Mode != Discover || !p.PromoteAt.Equal(c.Now().Add(learnWindow)) || p.ImageDigest != "sha256:aaaa" {
		t.Errorf("new profile: mode %q, promote at %v, digest %q; want discover, %v, sha256:aaaa", p.Mode, p.PromoteAt, p.ImageDigest, c.Now().Add(learnWindow))
	}
	want := Profile{
		Executables: []Exec{{Path: "/bin/sh"}, {Path: "/docker-entrypoint.sh"}, {Path: "/usr/sbin/nginx"}},
		Pairs: []Pair{
			{"/docker-entrypoint.sh", "/usr/sbin/nginx"},
			{"/usr/bin/containerd-shim-runc-v2", "/docker-entrypoint.sh"},
			{"/usr/sbin/nginx", "/bin/sh"},
		},
		Listen:   []Port{{"tcp", 80}},
		Outbound: []Dest{{"10.0.0.5", 5432}, {"api.example.com", 443}},
		Writes:   []string{"/run/nginx.pid", "/var/cache/nginx/client_temp/*", "/var/log/nginx/access.log"},
	}
	got := Profile{Executables: p.Executables, Pairs: p.Pairs, Listen: p.Listen, Outbound: p.Outbound, Writes: p.Writes}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("learned profile (-want +got):\n%s", diff)
	}

	c.Add(learnWindow - time.Second)
	if d := s.Observe(execEv(web, "/bin/sh", "/usr/bin/curl")); d != nil {
		t.Errorf("a second before promotion: %v, want learning", d)
	}
	c.Add(time.Second)
	d := s.Observe(execEv(web, "/bin/sh", "/usr/bin/wget"))
	if len(d) == 0 || d[0].Mode != Monitor {
		t.Fatalf("at promotion time: %v, want monitor deviations", d)
	}
	if d := s.Observe(execEv(web, "/bin/sh", "/usr/bin/curl")); d != nil {
		t.Errorf("curl, learned a second before promotion: %v", d)
	}
}

func TestDeviations(t *testing.T) {
	c := newClock()
	s := learned(t, c, nil)
	for _, tc := range []struct {
		name string
		e    *event.Event
		want []Deviation
	}{
		{"unknown exec", execEv(web, "/bin/sh", "/tmp/xmrig"), []Deviation{
			{Kind: "exec", Detail: "exec of /tmp/xmrig, not learned"},
			{Kind: "pair", Detail: "/bin/sh started /tmp/xmrig, not learned"},
		}},
		{"known executables, new pair", execEv(web, "/bin/sh", "/usr/sbin/nginx"), []Deviation{
			{Kind: "pair", Detail: "/bin/sh started /usr/sbin/nginx, not learned"},
		}},
		{"new listen port", bindEv(web, "stream", 4444), []Deviation{
			{Kind: "listen", Detail: "listening on tcp/4444, not learned"},
		}},
		{"known port, other protocol", bindEv(web, "dgram", 80), []Deviation{
			{Kind: "listen", Detail: "listening on udp/80, not learned"},
		}},
		{"known port, protocol unknown", bindEv(web, "", 80), nil},
		{"new outbound address", connectEv(web, "45.9.148.3:3333"), []Deviation{
			{Kind: "outbound", Detail: "connection to 45.9.148.3:3333, not learned"},
		}},
		{"known address, other port", connectEv(web, "10.0.0.5:22"), []Deviation{
			{Kind: "outbound", Detail: "connection to 10.0.0.5:22, not learned"},
		}},
		{"known name, new address", connectEv(web, "93.184.215.99:443", "api.example.com"), nil},
		{"new name", connectEv(web, "93.184.215.14:443", "pool.minexmr.com"), []Deviation{
			{Kind: "outbound", Detail: "connection to 93.184.215.14:443 (pool.minexmr.com), not learned"},
		}},
		{"write outside", writeEv(web, "/etc/passwd"), []Deviation{
			{Kind: "write", Detail: "file_open of /etc/passwd, outside the learned paths"},
		}},
		{"write to a numbered sibling", writeEv(web, "/var/cache/nginx/client_temp/0000000042"), nil},
		{"write escaping with ..", writeEv(web, "/var/cache/nginx/client_temp/../../../../etc/shadow"), []Deviation{
			{Kind: "write", Detail: "file_open of /etc/shadow, outside the learned paths"},
		}},
		{"read-only open", &event.Event{Type: event.FileOpen, Workload: web, File: &event.File{Path: "/etc/shadow"}}, nil},
		{"rename into /etc", &event.Event{Type: event.FileRename, Workload: web, File: &event.File{Path: "/run/nginx.pid", NewPath: "/etc/ld.so.preload"}}, []Deviation{
			{Kind: "write", Detail: "file_rename of /etc/ld.so.preload, outside the learned paths"},
		}},
		{"host event", execEv(&event.Workload{Host: "node1"}, "/bin/sh", "/tmp/xmrig"), nil},
		{"other class, learning", execEv(&event.Workload{ContainerID: "d00d", Image: "redis:7"}, "/bin/sh", "/tmp/xmrig"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for i := range tc.want {
				tc.want[i].Class, tc.want[i].Mode = webClass, Monitor
			}
			if diff := cmp.Diff(tc.want, s.Observe(tc.e)); diff != "" {
				t.Errorf("deviations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestProtectBlocks(t *testing.T) {
	c := newClock()
	s := learned(t, c, nil)
	if err := s.SetMode(webClass, Protect); err != nil {
		t.Fatal(err)
	}
	want := []Deviation{{Class: webClass, Kind: "listen", Detail: "listening on tcp/4444, not learned", Mode: Protect, Block: true}}
	if diff := cmp.Diff(want, s.Observe(bindEv(web, "stream", 4444))); diff != "" {
		t.Errorf("protect mode (-want +got):\n%s", diff)
	}
	if d := observeAll(t, s, normal(web)); d != nil {
		t.Errorf("normal behaviour in protect mode: %v", d)
	}
	if err := s.SetMode(webClass, "enforce"); err == nil || !strings.Contains(err.Error(), `"enforce"`) {
		t.Errorf("SetMode(enforce) = %v, want an error naming the mode", err)
	}
	if err := s.SetMode("docker.io/library/none", Monitor); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("SetMode(unknown class) = %v, want ErrUnknownClass", err)
	}
	// Back to discover: learning again, for a new window.
	if err := s.SetMode(webClass, Discover); err != nil {
		t.Fatal(err)
	}
	if d := s.Observe(bindEv(web, "stream", 4444)); d != nil {
		t.Errorf("discover after protect: %v", d)
	}
	if p, _ := s.Get(webClass); !p.PromoteAt.Equal(c.Now().Add(learnWindow)) {
		t.Errorf("promote at %v after SetMode(discover), want %v", p.PromoteAt, c.Now().Add(learnWindow))
	}
}

func TestZeroDrift(t *testing.T) {
	upper := func(exe string, memfd bool) *event.Event {
		e := execEv(web, "/bin/sh", exe)
		e.Process.ExeUpper, e.Process.ExeMemfd = !memfd, memfd
		return e
	}
	c := newClock()
	s := newStore(t, c, func(o *Options) { o.ZeroDrift = true })
	observeAll(t, s, normal(web))
	s.Observe(execEv(web, "/bin/sh", "/app/run"))
	// Learned while zero-drift is on, the dropped binary stays unknown.
	s.Observe(upper("/tmp/dropped", false))
	c.Add(learnWindow)
	if p, _ := s.Get(webClass); !p.ZeroDrift {
		t.Fatal("profile created with Options.ZeroDrift has ZeroDrift false")
	}
	got := s.Observe(upper("/app/run", false))
	want := []Deviation{{Class: webClass, Kind: "drift", Detail: "exec of /app/run: written to the container after it started (overlay upper layer), not from the image", Mode: Monitor}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("learned binary from the upper layer (-want +got):\n%s", diff)
	}
	got = s.Observe(upper("/tmp/dropped", false))
	if kinds := kindsOf(got); kinds != "drift,exec,pair" {
		t.Errorf("dropped binary: deviations %s, want drift,exec,pair", kinds)
	}
	got = s.Observe(upper("/app/run", true))
	if len(got) != 1 || got[0].Kind != "drift" || !strings.Contains(got[0].Detail, "memfd") {
		t.Errorf("memfd exec: %v, want one drift deviation naming the memfd", got)
	}

	// Without zero-drift the same exec is fine.
	c2 := newClock()
	s2 := newStore(t, c2, nil)
	s2.Observe(execEv(web, "/bin/sh", "/app/run"))
	c2.Add(learnWindow)
	if d := s2.Observe(upper("/app/run", false)); d != nil {
		t.Errorf("upper-layer exec without zero-drift: %v", d)
	}
}

func kindsOf(ds []Deviation) string {
	var k []string
	for _, d := range ds {
		k = append(k, d.Kind)
	}
	return strings.Join(k, ",")
}

func TestRelearnOnDigestChange(t *testing.T) {
	c := newClock()
	s := learned(t, c, nil)
	// The operator turned zero drift on for this class.
	if err := s.Import(strings.NewReader(strings.Replace(export(t, s), "mode: monitor", "mode: protect\n    zero_drift: true", 1))); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Get(webClass)
	c.Add(time.Hour)
	v2 := *web
	v2.ContainerID, v2.ImageDigest = "beef", "sha256:bbbb"
	if d := s.Observe(execEv(&v2, "/bin/sh", "/usr/bin/new-tool")); d != nil {
		t.Errorf("first event of the new digest: %v, want learning", d)
	}
	p, _ := s.Get(webClass)
	if p.Mode != Discover || p.ImageDigest != "sha256:bbbb" || !p.Since.Equal(c.Now()) {
		t.Errorf("after the digest changed: mode %q digest %q since %v; want discover sha256:bbbb %v", p.Mode, p.ImageDigest, p.Since, c.Now())
	}
	if !p.ZeroDrift {
		t.Error("re-learning dropped the class's zero-drift setting")
	}
	if diff := cmp.Diff([]string{"sha256:aaaa"}, p.PreviousDigests); diff != "" {
		t.Errorf("previous digests (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Exec{{Path: "/usr/bin/new-tool"}}, p.Executables); diff != "" {
		t.Errorf("fresh profile's executables (-want +got):\n%s\n(before: %v)", diff, before.Executables)
	}
	// The old version still running (a rolling update) does not restart
	// learning again.
	c.Add(time.Minute)
	s.Observe(execEv(web, "/bin/sh", "/usr/bin/old-tool"))
	p, _ = s.Get(webClass)
	if p.ImageDigest != "sha256:bbbb" || !p.Since.Equal(c.Now().Add(-time.Minute)) {
		t.Errorf("event of the previous digest reset the profile: digest %q since %v", p.ImageDigest, p.Since)
	}
}

func TestExecHash(t *testing.T) {
	sums := map[string]string{"/usr/sbin/nginx": strings.Repeat("a", 64), "/bin/sh": strings.Repeat("b", 64)}
	calls := 0
	hash := func(e *event.Event) (string, error) {
		calls++
		if h, ok := sums[e.Process.Exe]; ok {
			return h, nil
		}
		return "", fmt.Errorf("no such process %d", e.Process.PID)
	}
	c := newClock()
	s := newStore(t, c, func(o *Options) { o.Hash = hash })
	for range 3 {
		s.Observe(execEv(web, "/bin/sh", "/usr/sbin/nginx"))
	}
	if calls != 1 {
		t.Errorf("hashed %d times for one (path, inode), want 1", calls)
	}
	s.Observe(execEv(web, "/usr/sbin/nginx", "/bin/sh"))
	c.Add(learnWindow)
	p, _ := s.Get(webClass)
	if diff := cmp.Diff([]Exec{{"/bin/sh", sums["/bin/sh"]}, {"/usr/sbin/nginx", sums["/usr/sbin/nginx"]}}, p.Executables); diff != "" {
		t.Errorf("executables (-want +got):\n%s", diff)
	}
	calls = 0
	if d := s.Observe(execEv(web, "/bin/sh", "/usr/sbin/nginx")); d != nil || calls != 0 {
		t.Errorf("known exec, same inode: %v, %d hash calls; want nothing, 0", d, calls)
	}
	// Same path, replaced file: another inode, another hash.
	e := execEv(web, "/bin/sh", "/usr/sbin/nginx")
	e.Process.ExeInode = 7
	sums["/usr/sbin/nginx"] = strings.Repeat("c", 64)
	d := s.Observe(e)
	if len(d) != 1 || d[0].Kind != "exec" || !strings.Contains(d[0].Detail, strings.Repeat("c", 64)) {
		t.Errorf("replaced binary: %v, want one exec deviation naming its hash", d)
	}
	// A process gone before it could be hashed: judged by path.
	delete(sums, "/usr/sbin/nginx")
	e.Process.ExeInode = 8
	if d := s.Observe(e); d != nil {
		t.Errorf("unhashable known path: %v", d)
	}
}

func TestMaxItems(t *testing.T) {
	c := newClock()
	s := newStore(t, c, func(o *Options) { o.MaxItems = 3 })
	for i := range 5 {
		s.Observe(execEv(web, "", fmt.Sprintf("/bin/tool%c", 'a'+i)))
		s.Observe(bindEv(web, "stream", uint16(8000+i)))
	}
	p, _ := s.Get(webClass)
	if len(p.Executables) != 3 || len(p.Listen) != 3 {
		t.Errorf("%d executables, %d ports; want 3 each", len(p.Executables), len(p.Listen))
	}
	if diff := cmp.Diff([]string{"executables", "listen"}, p.Truncated); diff != "" {
		t.Errorf("truncated (-want +got):\n%s", diff)
	}
}

func TestWriteGeneralisation(t *testing.T) {
	for _, tc := range []struct {
		paths []string
		want  []string
	}{
		{[]string{"/proc/1234/oom_score_adj"}, []string{"/proc/*/oom_score_adj"}},
		{[]string{"/var/log/app-2026-11-30.log", "/var/log/python3.11"}, []string{"/var/log/app-*.log", "/var/log/python3.11"}},
		{[]string{"/data/3f2a9c1b7e4d/state"}, []string{"/data/*/state"}},
		{[]string{"/data/0d9f1c2e-8a7b-4c3d-9e8f-112233445566.json"}, []string{"/data/*.json"}},
		{[]string{"/tmp/a*b"}, []string{`/tmp/a\*b`}},
		{[]string{"/tmp/a", "/tmp/b", "/tmp/c"}, []string{"/tmp/a", "/tmp/b", "/tmp/c"}},
		{[]string{"/tmp/sess_a", "/tmp/sess_b", "/tmp/sess_c", "/tmp/sess_d", "/tmp/sess_e", "/tmp/sess_f", "/tmp/sess_g", "/tmp/sess_h", "/tmp/x/y"},
			[]string{"/tmp/**"}},
		{[]string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i", "/j"},
			[]string{"/a", "/b", "/c", "/d", "/e", "/f", "/g", "/h", "/i", "/j"}},
	} {
		w := newWriteSet()
		for _, p := range tc.paths {
			if !w.match(p) {
				w.learn(p, 1024)
			}
			if !w.match(p) {
				t.Errorf("%s not matched right after learning it (set %v)", p, w.list())
			}
		}
		if diff := cmp.Diff(tc.want, w.list()); diff != "" {
			t.Errorf("learned from %v (-want +got):\n%s", tc.paths, diff)
		}
	}
	w := newWriteSet()
	for _, p := range []string{"/proc/*/fd/**", "/srv/**", "/**"} {
		if err := checkWrite(p); err != nil {
			t.Errorf("checkWrite(%q) = %v", p, err)
		}
	}
	w.add("/proc/*/fd/**")
	w.add("/srv/**")
	for p, want := range map[string]bool{"/proc/12/fd/3": true, "/proc/12/fd": false, "/srv/a/b": true, "/srv": false, "/srvx/a": false} {
		if got := w.match(p); got != want {
			t.Errorf("match(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestConcurrentReaders(t *testing.T) {
	c := newClock()
	s := newStore(t, c, nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.List()
				s.Get(webClass)
				s.Export(discard{})
				s.SetMode(webClass, Monitor)
			}
		})
	}
	for i := range 2000 {
		s.Observe(execEv(web, "/bin/sh", fmt.Sprintf("/bin/t%d", i%50)))
		s.Observe(writeEv(web, fmt.Sprintf("/tmp/f%c", 'a'+i%20)))
	}
	close(stop)
	wg.Wait()
	if _, ok := s.Get(webClass); !ok {
		t.Error("no profile after concurrent use")
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestEditedEntries(t *testing.T) {
	c := newClock()
	s := newStore(t, c, nil)
	err := s.Import(strings.NewReader(`
profiles:
  - class: docker.io/library/nginx
    mode: monitor
    listen:
      - {proto: any, port: 53}
    outbound:
      - {host: 10.0.0.0/8, port: 0}      # anything internal
      - {host: "*.example.com", port: 443}
      - {host: DB.internal., port: 0}
      - {host: "::ffff:192.0.2.1", port: 25}
    writes:
      - /proc/*/fd/**
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		e    *event.Event
		kind string // "" for no deviation
	}{
		{connectEv(web, "10.1.2.3:9999"), ""},
		{connectEv(web, "11.0.0.1:80"), "outbound"},
		{connectEv(web, "198.51.100.7:443", "API.Example.com."), ""},
		{connectEv(web, "198.51.100.7:80", "api.example.com"), "outbound"},
		{connectEv(web, "198.51.100.7:443", "example.com"), "outbound"},
		{connectEv(web, "198.51.100.8:5432", "db.internal"), ""},
		{connectEv(web, "[::ffff:192.0.2.1]:25"), ""},
		{connectEv(web, "192.0.2.1:25"), ""},
		{bindEv(web, "dgram", 53), ""},
		{bindEv(web, "stream", 53), ""},
		{bindEv(web, "stream", 0), ""}, // an ephemeral port is no listening port
		{writeEv(web, "/proc/7/fd/1"), ""},
		{writeEv(web, "/proc/7/environ"), "write"},
	} {
		got := s.Observe(tc.e)
		if tc.kind == "" && got != nil || tc.kind != "" && (len(got) != 1 || got[0].Kind != tc.kind) {
			t.Errorf("%s %v: deviations %v, want %q", tc.e.Type, tc.e.Net, got, tc.kind)
		}
	}
	p, _ := s.Get(webClass)
	want := []Dest{{"*.example.com", 443}, {"10.0.0.0/8", 0}, {"192.0.2.1", 25}, {"db.internal", 0}}
	if diff := cmp.Diff(want, p.Outbound); diff != "" {
		t.Errorf("outbound, canonical (-want +got):\n%s", diff)
	}
}

func TestPromotionWithoutEvents(t *testing.T) {
	c := newClock()
	s := newStore(t, c, nil)
	s.Observe(execEv(web, "", "/bin/sh"))
	c.Add(learnWindow)
	if p, _ := s.Get(webClass); p.Mode != Monitor {
		t.Errorf("mode once the window is over, no event since: %q, want monitor", p.Mode)
	}

	never := newStore(t, c, func(o *Options) { o.Learn = -1 })
	never.Observe(execEv(web, "", "/bin/sh"))
	c.Add(365 * 24 * time.Hour)
	if p, _ := never.Get(webClass); p.Mode != Discover || !p.PromoteAt.IsZero() {
		t.Errorf("Learn < 0: mode %q, promote at %v; want discover forever", p.Mode, p.PromoteAt)
	}
}

func TestDefaults(t *testing.T) {
	c := newClock()
	s, err := New(Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	s.Observe(execEv(web, "", "/bin/sh"))
	if p, _ := s.Get(webClass); !p.PromoteAt.Equal(c.Now().Add(14 * 24 * time.Hour)) {
		t.Errorf("default promotion at %v, want 14 days after the first event", p.PromoteAt)
	}
	if s.opt.MaxItems != 1024 {
		t.Errorf("default MaxItems %d, want 1024", s.opt.MaxItems)
	}
}
