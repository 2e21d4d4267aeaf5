package response

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testPolicy = `
default:
  mode: monitor
  actions:
    - min_priority: critical
      do: [freeze]
    - profile: true
      do: [kill]
classes:
  shop/web:
    mode: enforce
    actions:
      - tags: [mitre_impact, mitre_execution]
        do: [isolate, freeze]
      - rules: [Detect crypto miners using the Stratum protocol]
        do: [freeze, stop]
      - min_priority: WARNING
        tags: [container]
        do: [kill]
      - profile: true
        do: [kill, freeze]
  batch/jobs:
    mode: enforce
`

func TestLoadPolicyDecide(t *testing.T) {
	p, err := LoadPolicy([]byte(testPolicy))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		class, rule string
		priority    string
		tags        []string
		profile     bool
		want        []Action
		wantEnforce bool
	}{
		{"default critical", "other", "r", "CRITICAL", nil, false, []Action{Freeze}, false},
		{"default emergency above critical", "", "r", "Emergency", nil, false, []Action{Freeze}, false},
		{"default error below critical", "other", "r", "ERROR", nil, false, nil, false},
		{"default unknown priority", "other", "r", "LOUD", nil, false, nil, false},
		{"default profile", "other", "", "", nil, true, []Action{Kill}, false},
		{"class tag", "shop/web", "r", "NOTICE", []string{"mitre_impact"}, false, []Action{Isolate, Freeze}, true},
		{"class rule", "shop/web", "Detect crypto miners using the Stratum protocol", "CRITICAL", nil, false, []Action{Freeze, Stop}, true},
		{"class rule and tag, no repeats", "shop/web", "Detect crypto miners using the Stratum protocol", "DEBUG", []string{"mitre_execution"}, false, []Action{Isolate, Freeze, Stop}, true},
		{"class priority and tag both needed", "shop/web", "r", "WARNING", []string{"container"}, false, []Action{Kill}, true},
		{"class priority met, tag missing", "shop/web", "r", "EMERGENCY", []string{"host"}, false, nil, true},
		{"class tag met, priority too low", "shop/web", "r", "INFO", []string{"container"}, false, nil, true},
		{"class profile", "shop/web", "", "", nil, true, []Action{Kill, Freeze}, true},
		{"profile ignores rule triggers", "shop/web", "r", "EMERGENCY", []string{"mitre_impact"}, true, []Action{Kill, Freeze}, true},
		{"class without actions does not fall back", "batch/jobs", "r", "EMERGENCY", nil, false, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, enforce := p.Decide(tc.class, tc.rule, tc.priority, tc.tags, tc.profile)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if enforce != tc.wantEnforce {
				t.Errorf("enforce = %v, want %v", enforce, tc.wantEnforce)
			}
		})
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"", "any/image", "host"} {
		if got, enforce := p.Decide(class, "Terminal shell in container", "CRITICAL", nil, false); enforce || !cmp.Equal(got, []Action{Freeze}) {
			t.Errorf("class %q CRITICAL: %v enforce=%v, want [freeze] in monitor mode", class, got, enforce)
		}
		if got, enforce := p.Decide(class, "", "", nil, true); enforce || !cmp.Equal(got, []Action{Kill}) {
			t.Errorf("class %q profile block: %v enforce=%v, want [kill] in monitor mode", class, got, enforce)
		}
		if got, _ := p.Decide(class, "Read sensitive file untrusted", "WARNING", nil, false); got != nil {
			t.Errorf("class %q WARNING: %v, want nothing", class, got)
		}
	}
}

func TestLoadPolicyErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"empty", "", "empty document"},
		{"not yaml", "default: [", "response policy"},
		{"unknown key", "default:\n  mood: enforce\n", "mood"},
		{"bad mode", "default:\n  mode: block\n", `mode "block"`},
		{"bad priority", "default:\n  actions:\n    - min_priority: HIGH\n      do: [kill]\n", `unknown priority "HIGH"`},
		{"bad action", "classes:\n  web:\n    actions:\n      - tags: [x]\n        do: [explode]\n", `class "web": action 1: unknown action "explode"`},
		{"undo action in trigger", "default:\n  actions:\n    - tags: [x]\n      do: [unfreeze]\n", `unknown action "unfreeze"`},
		{"no criteria", "default:\n  actions:\n    - do: [kill]\n", "would match every alert"},
		{"nothing to do", "default:\n  actions:\n    - tags: [x]\n", "nothing to do"},
		{"profile with criteria", "default:\n  actions:\n    - profile: true\n      tags: [x]\n      do: [kill]\n", "profile trigger takes no"},
		{"empty class name", "classes:\n  '': {mode: enforce}\n", "empty name"},
		{"two documents", "default: {mode: monitor}\n---\ndefault: {mode: enforce}\n", "more than one"},
		{"too big", "#" + strings.Repeat("x", maxPolicySize), "bytes, more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadPolicy([]byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadPolicy: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func FuzzLoadPolicy(f *testing.F) {
	f.Add([]byte(testPolicy))
	f.Add([]byte("default: {mode: enforce, actions: [{profile: true, do: [kill]}]}"))
	f.Add([]byte("classes: {a: {actions: [{rules: [x], tags: [y], min_priority: INFO, do: [stop, isolate]}]}}"))
	f.Add([]byte("default: &a {mode: monitor}\nclasses: {b: *a}"))
	f.Add([]byte("- [1, 2]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := LoadPolicy(b)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("loaded policy does not validate: %v", err)
		}
		for class := range p.Classes {
			acts, _ := p.Decide(class, "x", "CRITICAL", []string{"mitre_impact"}, false)
			for _, a := range acts {
				if check(a, Target{PID: 2, ContainerID: "c"}) != nil {
					t.Fatalf("policy yields an action Do refuses: %q", a)
				}
			}
			p.Decide(class, "", "", nil, true)
		}
		p.Decide("not-a-class", "x", "DEBUG", nil, false)
	})
}

func BenchmarkDecide(b *testing.B) {
	p, err := LoadPolicy([]byte(testPolicy))
	if err != nil {
		b.Fatal(err)
	}
	tags := []string{"container", "shell", "mitre_execution", "T1059"}
	b.ReportAllocs()
	for b.Loop() {
		p.Decide("shop/web", "Terminal shell in container", "NOTICE", tags, false)
		p.Decide("other/app", "Terminal shell in container", "NOTICE", tags, false)
	}
}
