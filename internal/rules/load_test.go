package rules

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/event"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

func fired(rs *Ruleset, e *event.Event) []string { return matchNames(rs, e) }

func TestListsMacrosAppendOverride(t *testing.T) {
	base := `
- list: shells
  items: [sh]
- list: more
  items: [shells, dash]
- macro: is_shell
  condition: proc.name in (more)
- rule: shell
  desc: a shell
  condition: evt.type = execve and is_shell
  output: shell %proc.name
  priority: NOTICE
  tags: [a]
`
	bash := exec("bash", "bash")
	dash := exec("dash", "dash")
	zsh := exec("zsh", "zsh")

	rs := mustLoad(t, base)
	if diff := cmp.Diff([]string{"shell"}, fired(rs, dash)); diff != "" {
		t.Errorf("nested list: %s", diff)
	}
	if got := fired(rs, bash); len(got) != 0 {
		t.Errorf("bash fired %v before the append", got)
	}

	// legacy append on a list, in a later file
	rs = mustLoad(t, base, "- list: shells\n  items: [bash]\n  append: true\n")
	if len(fired(rs, bash)) != 1 {
		t.Error("list append: bash does not fire")
	}
	// override replace of list items
	rs = mustLoad(t, base, "- list: shells\n  items: [zsh]\n  override:\n    items: replace\n")
	if len(fired(rs, zsh)) != 1 || len(fired(rs, exec("sh", "sh"))) != 0 {
		t.Error("list override replace not applied")
	}
	// macro append (legacy) and override replace
	rs = mustLoad(t, base, "- macro: is_shell\n  condition: or proc.name = zsh\n  append: true\n")
	if len(fired(rs, zsh)) != 1 {
		t.Error("macro append: zsh does not fire")
	}
	rs = mustLoad(t, base, "- macro: is_shell\n  condition: proc.name = bash\n  override:\n    condition: replace\n")
	if len(fired(rs, bash)) != 1 || len(fired(rs, dash)) != 0 {
		t.Error("macro override replace not applied")
	}
	// rule condition append narrows it
	rs = mustLoad(t, base, "- rule: shell\n  condition: and proc.pid = 1\n  override:\n    condition: append\n")
	if len(fired(rs, dash)) != 0 {
		t.Error("rule condition append not applied")
	}
	rs = mustLoad(t, base, "- rule: shell\n  condition: and proc.pid = 4242\n  append: true\n")
	if len(fired(rs, dash)) != 1 {
		t.Error("legacy rule append lost the match")
	}
	// output append, priority/desc replace, tags append, enabled replace
	rs = mustLoad(t, base, `
- rule: shell
  output: "(pid=%proc.pid)"
  priority: critical
  desc: replaced
  tags: [b, T1059]
  override:
    output: append
    priority: replace
    desc: replace
    tags: append
`)
	r := rs.Rules()[0]
	if r.Output != "shell %proc.name (pid=%proc.pid)" || r.Priority != Critical || r.Desc != "replaced" {
		t.Errorf("override: output %q priority %v desc %q", r.Output, r.Priority, r.Desc)
	}
	if diff := cmp.Diff([]string{"a", "b", "T1059"}, r.Tags); diff != "" {
		t.Errorf("tags: %s", diff)
	}
	if got := r.Render(dash); got != "shell dash (pid=4242)" {
		t.Errorf("Render = %q", got)
	}
	rs = mustLoad(t, base, "- rule: shell\n  enabled: false\n")
	if len(rs.Rules()) != 0 || rs.Statuses()[0].Reason != "disabled" || !rs.Statuses()[0].Loaded {
		t.Errorf("enabled-only item: %+v", rs.Statuses())
	}
	rs = mustLoad(t, base, "- rule: shell\n  enabled: false\n  override:\n    enabled: replace\n")
	if len(rs.Rules()) != 0 || len(fired(rs, dash)) != 0 {
		t.Error("override enabled: replace not applied")
	}
	// a redefinition replaces the rule in place
	rs = mustLoad(t, base+`
- rule: other
  desc: o
  condition: evt.type = execve and proc.name = zsh
  output: o
  priority: INFO
`, `
- rule: shell
  desc: again
  condition: evt.type = execve and proc.name = bash
  output: again
  priority: ERROR
`)
	st := rs.Statuses()
	if len(st) != 2 || st[0].Name != "shell" || st[0].File != "f2.yaml" || st[0].Line != 2 {
		t.Errorf("redefinition: %+v", st)
	}
	if len(fired(rs, bash)) != 1 || len(fired(rs, dash)) != 0 {
		t.Error("redefinition not applied")
	}
}

func TestExceptions(t *testing.T) {
	base := `
- list: allowed_dirs
  items: [/tmp, /var/tmp]
- rule: write
  desc: d
  condition: evt.type = openat and evt.is_open_write = true
  output: o
  priority: WARNING
  exceptions:
    - name: proc_dir
      fields: [proc.name, fd.directory]
      comps: [=, in]
      values:
        - [vim, [/home/alice]]
        - [cp, allowed_dirs]
    - name: by_name
      fields: proc.name
      values: [make, gcc]
    - name: empty
      fields: [proc.name]
`
	rs := mustLoad(t, base)
	w := func(name, path string) *event.Event { return open(name, path, 1, 3) }
	for _, tc := range []struct {
		e    *event.Event
		want int
	}{
		{w("vim", "/home/alice/x"), 0},
		{w("vim", "/etc/x"), 1},
		{w("cp", "/var/tmp/x"), 0},
		{w("cp", "/home/alice/x"), 1},
		{w("make", "/etc/x"), 0},
		{w("gcc", "/etc/x"), 0},
		{w("cc", "/etc/x"), 1},
	} {
		if got := len(fired(rs, tc.e)); got != tc.want {
			t.Errorf("%s %s: %d rules fired, want %d", tc.e.Process.Name, tc.e.File.Path, got, tc.want)
		}
	}
	// appending values to an existing exception
	rs = mustLoad(t, base, `
- rule: write
  exceptions:
    - name: by_name
      values: [cc]
  override:
    exceptions: append
`)
	if got := len(fired(rs, w("cc", "/etc/x"))); got != 0 {
		t.Error("appended exception value not applied")
	}
}

func TestSkippedRules(t *testing.T) {
	rs := mustLoad(t, `
- macro: m
  condition: proc.nosuchfield = 1
- rule: unknown field
  desc: d
  condition: evt.type = execve and m
  output: o
  priority: INFO
- rule: audit
  desc: d
  condition: ka.verb = create
  output: o
  priority: INFO
  source: k8s_audit
- rule: ok
  desc: d
  condition: proc.name exists
  output: "%proc.name %proc.exe_ino.ctime"
  priority: INFO
- list: lonely
  items: [x]
`)
	want := []Status{
		{Name: "unknown field", File: "f1.yaml", Line: 4, Loaded: false, Enabled: true, Reason: "unknown field proc.nosuchfield"},
		{Name: "audit", File: "f1.yaml", Line: 9, Loaded: false, Enabled: true, Reason: "source k8s_audit not supported"},
		{Name: "ok", File: "f1.yaml", Line: 15, Loaded: true, Enabled: true},
	}
	if diff := cmp.Diff(want, rs.Statuses()); diff != "" {
		t.Errorf("Statuses (-want +got):\n%s", diff)
	}
	if len(rs.Rules()) != 1 || rs.Rules()[0].Name != "ok" {
		t.Errorf("Rules() = %v", rs.Rules())
	}
	ws := strings.Join(rs.Warnings(), "\n")
	for _, w := range []string{`list "lonely" is not used`, "output field proc.exe_ino.ctime cannot be filled",
		`rule "ok" does not restrict evt.type`} {
		if !strings.Contains(ws, w) {
			t.Errorf("warnings lack %q:\n%s", w, ws)
		}
	}
	if strings.Contains(ws, `macro "m" is not used`) {
		t.Errorf("macro used by a skipped rule reported unused:\n%s", ws)
	}
	if got := rs.Rules()[0].Render(exec("bash", "bash")); got != "bash <NA>" {
		t.Errorf("Render = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	rule := func(name, cond string) string {
		return "- rule: " + name + "\n  desc: d\n  condition: " + cond + "\n  output: o\n  priority: INFO\n"
	}
	tests := []struct {
		name  string
		files []string
		want  []string // substrings of the error
	}{
		{"yaml syntax", []string{"- rule: x\n  desc: [unclosed\n"}, []string{"f1.yaml:", "invalid YAML"}},
		{"not a list", []string{"rule: x\n"}, []string{"f1.yaml:1:", "YAML list"}},
		{"condition syntax", []string{"- list: l\n  items: []\n" + rule("bad", "proc.name = bash and (proc.pid = 1")},
			[]string{"f1.yaml:5:", `rule "bad"`, "missing ')'"}},
		{"folded condition", []string{"- rule: f\n  desc: d\n  condition: >\n    evt.type = execve\n    and proc.name = bash\n    and proc.pid = = 1\n  output: o\n  priority: INFO\n"},
			[]string{"f1.yaml:6:", `rule "f"`, "column 20"}},
		{"plain multi-line condition", []string{"- rule: f\n  desc: d\n  condition: evt.type = execve\n    and no_macro_here\n  output: o\n  priority: INFO\n"},
			[]string{"f1.yaml:4:", `rule "f"`, "column 9", "undefined macro"}},
		{"appended condition", []string{rule("a", "proc.name = x"), "\n- rule: a\n  condition: and (proc.pid = 1\n  override:\n    condition: append\n"},
			[]string{"f2.yaml:3:", `rule "a"`}},
		{"dangling and", []string{rule("bad", "proc.name = bash and")}, []string{"f1.yaml:3:", `rule "bad"`, "column"}},
		{"unknown operator", []string{rule("op", "proc.name like bash")}, []string{"f1.yaml:3:", `rule "op"`, `unknown operator "like"`}},
		{"undefined macro", []string{rule("um", "evt.type = execve and no_such_macro")}, []string{"f1.yaml:3:", "column 36", `rule "um"`, `undefined macro "no_such_macro"`}},
		{"undefined macro in macro", []string{"- macro: a\n  condition: b_missing\n" + rule("r", "a")}, []string{"f1.yaml:2:", `rule "r"`, `macro "a"`, "column 14", `undefined macro "b_missing"`}},
		{"macro cycle", []string{"- macro: a\n  condition: b\n- macro: b\n  condition: a\n" + rule("cyc", "a")}, []string{`rule "cyc"`, "cycle"}},
		{"bad regex", []string{rule("re", `proc.name regex "a(b"`)}, []string{"f1.yaml:3:", `rule "re"`, "does not compile"}},
		{"bad number", []string{rule("num", "proc.pid = abc")}, []string{"f1.yaml:3:", `rule "num"`, `"abc" is not a number`}},
		{"override of missing rule", []string{rule("a", "proc.name = x"), "- rule: b\n  condition: and x\n  override:\n    condition: append\n"},
			[]string{"f2.yaml:1:", `rule "b"`, "not defined"}},
		{"append to missing rule", []string{"- rule: nope\n  condition: and x\n  append: true\n"}, []string{"f1.yaml:1:", `rule "nope"`, "not defined"}},
		{"append to missing list", []string{"- list: nope\n  items: [a]\n  append: true\n"}, []string{"f1.yaml:1:", `list "nope"`}},
		{"override without directive", []string{rule("a", "proc.name = x"), "- rule: a\n  condition: and x\n  output: y\n  override:\n    condition: append\n"},
			[]string{"f2.yaml:1:", `"output" needs an override directive`}},
		{"bad priority", []string{"- rule: p\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: LOUD\n"}, []string{"f1.yaml:5:", `rule "p"`, "unknown priority"}},
		{"missing condition", []string{"- rule: p\n  desc: d\n  output: o\n  priority: INFO\n"}, []string{"f1.yaml:1:", `rule "p"`, `no "condition"`}},
		{"engine too new", []string{"- required_engine_version: 0.99.0\n"}, []string{"f1.yaml:1:", "0.99.0", EngineVersion}},
		{"engine integer too new", []string{"- required_engine_version: 99\n"}, []string{"0.99.0"}},
		{"engine garbage", []string{"- required_engine_version: abc\n"}, []string{"required_engine_version"}},
		{"macro syntax", []string{"- macro: m\n  condition: (a or\n"}, []string{"f1.yaml:2:", `macro "m"`}},
		{"exception comps", []string{"- rule: e\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: INFO\n  exceptions:\n    - name: x\n      fields: [proc.name]\n      comps: [like]\n"},
			[]string{`rule "e"`, `unknown operator "like"`}},
		{"exception row size", []string{"- rule: e\n  desc: d\n  condition: proc.name = x\n  output: o\n  priority: INFO\n  exceptions:\n    - name: x\n      fields: [proc.name, proc.pid]\n      values:\n        - [a]\n"},
			[]string{`rule "e"`, "2 items"}},
		{"bad escape", []string{rule("esc", `proc.name = "a\q"`)}, []string{`rule "esc"`, "escape"}},
		{"transformer on number", []string{rule("tr", "tolower(proc.pid) = 1")}, []string{`rule "tr"`, "tolower"}},
		{"numeric contains", []string{rule("nc", "proc.pid contains 1")}, []string{`rule "nc"`, "not supported for the numeric field"}},
		{"bad network", []string{rule("net", `fd.snet = "10.0.0.0/99"`)}, []string{`rule "net"`, "not an IP network"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fs []File
			for i, f := range tc.files {
				fs = append(fs, File{Name: "f" + string(rune('1'+i)) + ".yaml", Data: []byte(f)})
			}
			rs, err := Load(fs...)
			if err == nil {
				t.Fatalf("no error; statuses %+v", rs.Statuses())
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError: %v", err, err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestEngineVersion(t *testing.T) {
	for _, v := range []string{"0.57.0", "0.26.0", "8", "0.57", ""} {
		_, err := Load(File{"v.yaml", []byte("- required_engine_version: " + v + "\n")})
		ok := v != "0.57" && v != ""
		if (err == nil) != ok {
			t.Errorf("required_engine_version %q: err = %v", v, err)
		}
	}
}

// TestFalcoFiles loads the real upstream files: the 25 stable rules all
// load; incubating and sandbox load on top with every skipped rule
// reported with its reason.
func TestFalcoFiles(t *testing.T) {
	dir := filepath.Join(vigiltest.SharedData(t), "falco-rules")
	read := func(n string) File {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		return File{Name: n, Data: b}
	}
	stable := read("falco_rules.yaml")
	rs, err := Load(stable)
	if err != nil {
		t.Fatal(err)
	}
	st := rs.Statuses()
	if len(st) != 25 {
		t.Errorf("%d rules, want 25", len(st))
	}
	for _, s := range st {
		if !s.Loaded || !s.Enabled || s.Reason != "" {
			t.Errorf("stable rule not active: %+v", s)
		}
	}
	if b, _ := os.ReadFile("builtin/falco_rules.yaml"); string(b) != string(stable.Data) {
		t.Error("builtin/falco_rules.yaml differs from the upstream copy in shared data")
	}
	for n, want := range map[string]int{"falco-incubating_rules.yaml": 31, "falco-sandbox_rules.yaml": 37} {
		rs, err := Load(stable, read(n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		st := rs.Statuses()
		if len(st) != 25+want {
			t.Errorf("%s: %d rules, want %d", n, len(st), 25+want)
		}
		skipped := 0
		for _, s := range st {
			if !s.Loaded {
				skipped++
				if s.Reason == "" || s.File != n {
					t.Errorf("%s: skipped without reason or in the wrong file: %+v", n, s)
				}
				t.Logf("%s: skipped %q: %s", n, s.Name, s.Reason)
			}
		}
		if skipped == 0 {
			t.Errorf("%s: no rule skipped; expected some (proc.vpid, evt.arg.mode, …)", n)
		}
	}
}
