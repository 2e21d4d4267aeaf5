package profile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func export(t *testing.T, s *Store, class ...string) string {
	t.Helper()
	var b bytes.Buffer
	if err := s.Export(&b, class...); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestExportEditImport(t *testing.T) {
	c := newClock()
	s := learned(t, c, nil)
	curl := execEv(web, "/bin/sh", "/usr/bin/curl")
	if d := s.Observe(curl); len(d) != 2 {
		t.Fatalf("curl before the edit: %v, want exec and pair deviations", d)
	}
	y := export(t, s, webClass)
	if y2 := export(t, s); y != y2 {
		t.Errorf("Export(class) and Export() differ with one class:\n%s\n---\n%s", y, y2)
	}
	if !strings.Contains(y, "mode: monitor") || !strings.Contains(y, "- path: /usr/sbin/nginx") {
		t.Fatalf("export does not show the mode and executables:\n%s", y)
	}
	// The reviewer allows curl run by sh, with a comment, and protects.
	edited := strings.Replace(y, "    executables:\n", "    executables:\n      # curl is used by the health check\n      - path: /usr/bin/curl\n", 1)
	edited = strings.Replace(edited, "    pairs:\n", "    pairs:\n      - {parent: /bin/sh, child: /usr/bin/curl}\n", 1)
	edited = strings.Replace(edited, "mode: monitor", "mode: protect # reviewed", 1)
	if edited == y {
		t.Fatal("edit did not apply")
	}
	if err := s.Import(strings.NewReader(edited)); err != nil {
		t.Fatalf("importing the edited export: %v\n%s", err, edited)
	}
	if d := s.Observe(curl); d != nil {
		t.Errorf("curl after the edit: %v", d)
	}
	if d := s.Observe(execEv(web, "/bin/sh", "/usr/bin/wget")); len(d) == 0 || !d[0].Block {
		t.Errorf("wget after the edit: %v, want blocked deviations", d)
	}
	p, _ := s.Get(webClass)
	if len(p.Executables) != 4 || p.Mode != Protect {
		t.Errorf("after import: %d executables, mode %q; want 4, protect", len(p.Executables), p.Mode)
	}
	// Export is stable: import(export(x)) exports the same text.
	y = export(t, s)
	s2 := newStore(t, c, nil)
	if err := s2.Import(strings.NewReader(y)); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(y, export(t, s2)); diff != "" {
		t.Errorf("export → import → export changed (-first +second):\n%s", diff)
	}
	if err := s.Export(&bytes.Buffer{}, "docker.io/library/none"); !errors.Is(err, ErrUnknownClass) {
		t.Errorf("export of an unknown class = %v, want ErrUnknownClass", err)
	}
}

func TestImportErrors(t *testing.T) {
	const good = "profiles:\n  - class: k8s:shop/web\n    mode: monitor\n"
	for _, tc := range []struct {
		name, yaml string
		want       []string // substrings of the error
	}{
		{"unknown mode", "profiles:\n  - class: k8s:shop/web\n    mode: enforce\n", []string{`"k8s:shop/web"`, "mode", `"enforce"`}},
		{"port too big", "profiles:\n  - class: web\n    mode: monitor\n    listen:\n      - {proto: tcp, port: 70000}\n", []string{`"web"`, "listen[0].port", "70000"}},
		{"port zero", "profiles:\n  - class: web\n    mode: monitor\n    listen:\n      - {proto: tcp, port: 0}\n", []string{`"web"`, "listen[0].port"}},
		{"port not a number", "profiles:\n  - class: web\n    mode: monitor\n    listen:\n      - {proto: tcp, port: http}\n", []string{`"web"`, "line 5", "http"}},
		{"bad proto", "profiles:\n  - class: web\n    mode: monitor\n    listen:\n      - {proto: sctp, port: 80}\n", []string{`"web"`, "listen[0].proto", "sctp"}},
		{"empty class", "profiles:\n  - mode: monitor\n", []string{"profile #1", "line 2", "class"}},
		{"empty class second", good + "  - class: \"\"\n    mode: monitor\n", []string{"profile #2", "class"}},
		{"unknown field", "profiles:\n  - class: web\n    mode: monitor\n    exectuables: []\n", []string{`"web"`, "line 4", `"exectuables"`}},
		{"unknown nested field", "profiles:\n  - class: web\n    mode: monitor\n    executables:\n      - {path: /bin/sh, md5: x}\n", []string{`"web"`, `"executables[0].md5"`}},
		{"empty exec path", "profiles:\n  - class: web\n    mode: monitor\n    executables: [{path: \"\"}]\n", []string{`"web"`, "executables[0].path"}},
		{"bad sha256", "profiles:\n  - class: web\n    mode: monitor\n    executables: [{path: /bin/sh, sha256: abc}]\n", []string{`"web"`, "executables[0].sha256"}},
		{"half a pair", "profiles:\n  - class: web\n    mode: monitor\n    pairs: [{parent: /bin/sh}]\n", []string{`"web"`, "pairs[0]"}},
		{"bad host", "profiles:\n  - class: web\n    mode: monitor\n    outbound: [{host: \"exa mple.com\", port: 443}]\n", []string{`"web"`, "outbound[0].host"}},
		{"bad outbound port", "profiles:\n  - class: web\n    mode: monitor\n    outbound: [{host: 10.0.0.1, port: -1}]\n", []string{`"web"`, "outbound[0].port"}},
		{"relative write", "profiles:\n  - class: web\n    mode: monitor\n    writes: [tmp/x]\n", []string{`"web"`, "writes[0]"}},
		{"unclean write", "profiles:\n  - class: web\n    mode: monitor\n    writes: [/var/log/../../etc]\n", []string{`"web"`, "writes[0]", "clean"}},
		{"bad glob", "profiles:\n  - class: web\n    mode: monitor\n    writes: [\"/tmp/[a\"]\n", []string{`"web"`, "writes[0]", "pattern"}},
		{"inner **", "profiles:\n  - class: web\n    mode: monitor\n    writes: [/a/**/b]\n", []string{`"web"`, "writes[0]", "**"}},
		{"duplicate class", good + "  - class: k8s:shop/web\n    mode: protect\n", []string{`"k8s:shop/web"`, "already defined at line 2"}},
		{"unknown truncated", "profiles:\n  - class: web\n    mode: monitor\n    truncated: [stuff]\n", []string{`"web"`, "truncated[0]"}},
		{"not a mapping", "- a\n- b\n", []string{"line 1", "mapping"}},
		{"extra top key", "profiles: []\nversion: 2\n", []string{"only \"profiles\""}},
		{"syntax", "profiles: [\n", []string{"yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s := learned(t, c, nil)
			before := export(t, s)
			err := s.Import(strings.NewReader(tc.yaml))
			if err == nil {
				t.Fatalf("no error importing\n%s", tc.yaml)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if after := export(t, s); after != before {
				t.Errorf("a failed import changed the store:\n%s", after)
			}
		})
	}
	// Accepted forms: a single profile mapping; comments; several documents.
	s := newStore(t, newClock(), nil)
	if err := s.Import(strings.NewReader("# one\nclass: a\nmode: discover\n---\nclass: b # two\nmode: protect\n")); err != nil {
		t.Fatal(err)
	}
	if got := len(s.List()); got != 2 {
		t.Errorf("%d profiles from two documents, want 2", got)
	}
	if p, _ := s.Get("a"); p.PromoteAt.IsZero() {
		t.Error("a discover profile imported without promote_at is never promoted")
	}
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "profiles")
	c := newClock()
	s := learned(t, c, func(o *Options) { o.Dir = dir })
	pod := *web
	pod.ContainerID, pod.PodName, pod.PodNamespace = "p0d", "web-7d4b9c8f6d-x2x9z", "shop"
	s.Observe(execEv(&pod, "/bin/sh", "/bin/ls"))
	s.Observe(execEv(&pod, "/bin/sh", "./run.sh")) // execve got a relative name
	longPod := pod
	longPod.ContainerID, longPod.PodName = "l0ng", strings.Repeat("x", 253)
	s.Observe(execEv(&longPod, "", "/bin/sh"))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	files, _ := os.ReadDir(dir)
	var names []string
	for _, f := range files {
		names = append(names, f.Name())
	}
	if diff := cmp.Diff([]string{"docker.io%2Flibrary%2Fnginx.yaml", "k8s:shop%2Fweb.yaml", fileName("k8s:shop/" + strings.Repeat("x", 253))}, names); diff != "" {
		t.Errorf("files in Dir (-want +got):\n%s", diff)
	}
	s2, err := New(Options{Dir: dir, Learn: learnWindow, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s.List(), s2.List()); diff != "" {
		t.Errorf("profiles after Save and New (-saved +loaded):\n%s", diff)
	}
	if d := s2.Observe(execEv(web, "/bin/sh", "/tmp/xmrig")); len(d) == 0 {
		t.Error("loaded profile does not flag an unknown exec")
	}

	// Nothing changed: nothing is written.
	old := filepath.Join(dir, "k8s:shop%2Fweb.yaml")
	os.WriteFile(old, []byte("profiles:\n  - class: k8s:shop/web\n    mode: protect\n"), 0o600)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(old); !strings.Contains(string(b), "mode: protect") {
		t.Error("Save rewrote a profile that had not changed")
	}

	// A corrupt file is named.
	os.WriteFile(filepath.Join(dir, "broken.yaml"), []byte("profiles:\n  - class: x\n    mode: sometimes\n"), 0o600)
	if _, err := New(Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "broken.yaml") || !strings.Contains(err.Error(), "mode") {
		t.Errorf("New with a corrupt file = %v, want an error naming broken.yaml and mode", err)
	}

	// A failed save keeps the profile dirty for the next attempt.
	ro := filepath.Join(t.TempDir(), "file")
	os.WriteFile(ro, nil, 0o600)
	s3 := newStore(t, c, nil)
	s3.opt.Dir = filepath.Join(ro, "sub")
	s3.Observe(execEv(web, "", "/bin/sh"))
	if err := s3.Save(); err == nil {
		t.Fatal("Save under a regular file succeeded")
	}
	s3.opt.Dir = filepath.Join(t.TempDir(), "again")
	if err := s3.Save(); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(s3.opt.Dir); len(files) != 1 {
		t.Errorf("%d files after retrying a failed save, want 1", len(files))
	}
}

func TestFileName(t *testing.T) {
	for class, want := range map[string]string{
		"..":                    "...yaml",
		"../../etc/cron.d/evil": "..%2F..%2Fetc%2Fcron.d%2Fevil.yaml",
		"k8s:a/b":               "k8s:a%2Fb.yaml",
		"a b\x00":               "a%20b%00.yaml",
	} {
		if got := fileName(class); got != want {
			t.Errorf("fileName(%q) = %q, want %q", class, got, want)
		}
	}
	// Long classes (a 253-byte pod name) stay under NAME_MAX and distinct.
	long := "k8s:ns/" + strings.Repeat("x", 253)
	a, b := fileName(long), fileName(long+"y")
	if len(a) > 255 || len(b) > 255 || a == b {
		t.Errorf("long classes: %q and %q, want distinct names of at most 255 bytes", a, b)
	}
}
