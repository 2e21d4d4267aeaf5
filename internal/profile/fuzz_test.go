package profile

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzImport feeds arbitrary bytes to Import. It must never panic, and
// whatever it accepts must export and import again to the same text.
func FuzzImport(f *testing.F) {
	for _, s := range []string{
		"",
		"profiles:\n  - class: k8s:shop/web\n    mode: monitor\n",
		"class: a\nmode: protect\nzero_drift: true\n---\nclass: b\nmode: discover\npromote_at: 2026-12-14T04:00:00Z\n",
		"profiles:\n  - class: web\n    mode: monitor\n    executables: [{path: /bin/sh, sha256: " + strings.Repeat("ab", 32) + "}]\n" +
			"    pairs: [{parent: /bin/sh, child: /bin/ls}]\n    listen: [{proto: any, port: 80}]\n" +
			"    outbound: [{host: 10.0.0.0/8, port: 0}, {host: \"*.example.com\", port: 443}, {host: \"::ffff:1.2.3.4\", port: 1}]\n" +
			"    writes: [/tmp/**, \"/proc/*/fd\", /var/log/x.log, \"/a\\\\*b\"]\n    truncated: [writes]\n",
		"profiles:\n  - class: web\n    mode: monitor\n    listen:\n      - {proto: tcp, port: 70000}\n",
		"profiles: &a [*a]\n",
		"- a\n",
		"profiles:\n  - class: x\n    mode: monitor\n    writes: [\"/[\"]\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newClock()
		s := newStore(t, c, nil)
		if err := s.Import(bytes.NewReader(data)); err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		var a bytes.Buffer
		if err := s.Export(&a); err != nil {
			t.Fatalf("export after a good import: %v", err)
		}
		s2 := newStore(t, c, nil)
		if err := s2.Import(bytes.NewReader(a.Bytes())); err != nil {
			t.Fatalf("importing an export: %v\n%s", err, a.String())
		}
		var b bytes.Buffer
		if err := s2.Export(&b); err != nil {
			t.Fatal(err)
		}
		if a.String() != b.String() {
			t.Fatalf("export → import → export differs:\n%s\n---\n%s", a.String(), b.String())
		}
	})
}

// FuzzLearnWrites learns arbitrary written paths. Every path must be
// covered right after it is learned, and every learned pattern must pass
// the import check (so a saved profile loads again).
func FuzzLearnWrites(f *testing.F) {
	f.Add("/proc/1234/fd/1\n/tmp/a*b\n/var/log/app-2026-11-30.log\n/data/3f2a9c1b7e4d.json")
	f.Add("/tmp/a\n/tmp/b\n/tmp/c\n/tmp/d\n/tmp/e\n/tmp/f\n/tmp/g\n/tmp/h\n/tmp/i\n/tmp/[x\n/tmp/\\y")
	f.Add("/\n//\n/..\n/a/../b")
	f.Fuzz(func(t *testing.T, s string) {
		w := newWriteSet()
		var seen []string
		for p := range strings.SplitSeq(s, "\n") {
			p = absPath(p, "/cwd")
			if p == "" {
				continue
			}
			if !w.match(p) && !w.learn(p, 64) {
				continue // full
			}
			seen = append(seen, p)
			for _, q := range seen {
				if !w.match(q) {
					t.Fatalf("%q not covered after learning %q; patterns %q", q, p, w.list())
				}
			}
		}
		for _, pat := range w.list() {
			if err := checkWrite(pat); err != nil {
				t.Fatalf("learned pattern %q fails the import check: %v", pat, err)
			}
		}
	})
}
