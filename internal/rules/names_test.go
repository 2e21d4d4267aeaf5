package rules

import (
	"slices"
	"testing"
)

func TestWatchedNames(t *testing.T) {
	rs, err := Load(File{Name: "t.yaml", Data: []byte(`
- list: pools
  items: ["pool.example.org", "Other.Example.org."]
- macro: api
  condition: (fd.sip.name = "kubernetes.default.svc.cluster.local")
- rule: r1
  desc: d
  condition: evt.type = connect and (api or fd.rip.name in (pools))
  output: x
  priority: NOTICE
- rule: r2
  desc: d
  condition: evt.type = connect and proc.name = "pool.ignored.org"
  output: x
  priority: NOTICE
`)})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kubernetes.default.svc.cluster.local", "other.example.org", "pool.example.org"}
	if got := rs.WatchedNames(); !slices.Equal(got, want) {
		t.Errorf("WatchedNames() = %q, want %q", got, want)
	}
	def, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := def.WatchedNames(); !slices.Contains(got, "kubernetes.default.svc.cluster.local") || !slices.Contains(got, "pool.minexmr.com") {
		t.Errorf("default ruleset's WatchedNames() = %q, want the K8s API server and the miner pools", got)
	}
}
