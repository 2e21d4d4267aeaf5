package rules

import (
	"os"
	"path"
	"strings"
	"testing"
)

var seedConditions = []string{
	`evt.type in (open,openat,openat2) and evt.is_open_write=true and fd.typechar='f' and fd.num>=0`,
	`(not proc.name in ("<NA>","N/A"))`,
	`proc.aname[2]=qualys-cloud-ag or proc.aname[3] startswith google_accounts`,
	`fd.nameraw contains '../' and fd.nameraw glob '*../*../*'`,
	`not(proc.name = x) and tolower(proc.name) = val(proc.pname)`,
	`fd.snet in ("10.0.0.0/8", "172.16.0.0/12") or fd.net != "127.0.0.0/8"`,
	`proc.cmdline= "sh -c exec /bin/sh -s unix:cmd 2>&1"`,
	`proc.name regex "^a(b|c)$" and proc.pid >= 0x10 and len(proc.name) < 3`,
	`proc.name in (runc:[0:PARENT], runc:[1:CHILD]) and container.label[app] exists`,
	`b64(proc.env[X]) bcontains 6869 and fd.name pmatch (/etc, /root)`,
	`evt.type = execve and (proc.name = "a\"b" or proc.name = 'it''s')`,
	`((((proc.name = a))))`,
}

// FuzzParseCondition: any input parses or fails with a syntax error,
// never panics; what parses compiles or fails cleanly.
func FuzzParseCondition(f *testing.F) {
	for _, s := range seedConditions {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseCondition(s)
		if err != nil {
			if _, ok := err.(*syntaxError); !ok {
				t.Fatalf("error %T is not a syntax error: %v", err, err)
			}
			return
		}
		cp := &compiler{macros: map[string]*macroState{}, lists: map[string]*listDef{}}
		c, err := cp.compile(n)
		if err != nil {
			return
		}
		x := &ctx{}
		for _, e := range benchEvents() {
			x.reset(e, 1, cp.nscratch)
			c.fn(x)
		}
	})
}

// FuzzLoad: any YAML loads or fails with a *LoadError, never panics; a
// loaded ruleset matches and renders.
func FuzzLoad(f *testing.F) {
	f.Add(ruleFile("evt.type = execve and proc.name = bash"))
	f.Add("- list: l\n  items: [a, '\"b c\"']\n- macro: m\n  condition: proc.name in (l)\n" + ruleFile("m"))
	f.Add("- required_engine_version: 0.57.0\n- rule: r\n  enabled: false\n")
	f.Add(ruleFile("proc.name = x") + "- rule: r\n  condition: and proc.pid = 1\n  override:\n    condition: append\n")
	f.Add("- rule: e\n  desc: d\n  condition: proc.name = x\n  output: '%proc.name %(fd.name) %'\n  priority: INFO\n  exceptions:\n    - name: x\n      fields: [proc.name, fd.name]\n      comps: [=, pmatch]\n      values:\n        - [a, [/tmp]]\n")
	if b, err := os.ReadFile("builtin/falco_rules.yaml"); err == nil {
		// a slice of the real file keeps the corpus small but realistic
		f.Add(string(b[:min(len(b), 6000)]))
	}
	f.Fuzz(func(t *testing.T, data string) {
		rs, err := Load(File{Name: "fuzz.yaml", Data: []byte(data)})
		if err != nil {
			if _, ok := err.(*LoadError); !ok {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, e := range benchEvents() {
			rs.Match(e, func(r *Rule) { r.Render(e) })
		}
		rs.Statuses()
		rs.Warnings()
	})
}

// FuzzCleanPath: fd.name's in-place cleaning agrees with path.Clean.
func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/a/../b", "../x/./y//z/", "a/b/../../..", "/", ".", "/../..", "./a"} {
		f.Add("/srv/app", s)
	}
	f.Fuzz(func(t *testing.T, cwd, p string) {
		if p == "" || cwd == "" || cwd[0] != '/' {
			return
		}
		got := string(appendClean([]byte("prefix"), cwd, p))
		full := p
		if p[0] != '/' {
			full = cwd + "/" + p
		}
		if want := "prefix" + path.Clean(full); got != want && !(got == "prefix"+full && path.Clean(full) == full) {
			t.Fatalf("appendClean(%q, %q) = %q, want %q", cwd, p, got, want)
		}
	})
}
