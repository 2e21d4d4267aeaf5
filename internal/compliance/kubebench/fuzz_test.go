package kubebench

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Any controls YAML either parses or is an error naming the file; parsed
// checks evaluate against any output without panicking.
func FuzzParseControls(f *testing.F) {
	// small seeds: the head of the shipped node definitions (up to its
	// third check) and the bad-operator fixture
	node, err := os.ReadFile("cfg/cis-1.12/node.yaml")
	if err != nil {
		f.Fatal(err)
	}
	if i := strings.Index(string(node), "      - id: 4.1.3"); i > 0 {
		node = node[:i]
	}
	f.Add(node, "permissions=644")
	bad, err := os.ReadFile("testdata/badop/test-0.1/node.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bad, "root:root")
	f.Add([]byte("groups:\n- id: 1\n  checks:\n  - id: 1.1\n    tests: {bin_op: or, test_items: [{flag: a, set: false}, {path: '{.a}', compare: {op: regex, value: '('}}]}\n"), "a: 1")
	f.Add([]byte("groups: [{checks: [{id: x, tests: {test_items: [{env: E, compare: {op: gt, value: 3}}]}}]}]"), "E=4")
	f.Fuzz(func(t *testing.T, data []byte, output string) {
		c, err := ParseControls(data, "fuzz.yaml")
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, g := range c.Groups {
			for _, ch := range g.Checks {
				if ch.Tests == nil || len(ch.Tests.TestItems) == 0 || ch.Tests.validate() != nil {
					continue
				}
				ch.execute(auditOutputs{audit: output, config: output, env: output})
			}
		}
	})
}

// The operators and value finders never panic, whatever the definition
// and the audit output.
func FuzzCompare(f *testing.F) {
	f.Add("eq", "false", "false")
	f.Add("bitmask", "644", "600")
	f.Add("valid_elements", "a,b,", "a,b,c")
	f.Add("regex", "abc", "(")
	f.Add("gte", " 5", "0")
	f.Add("has", "--authorization-mode=Node,RBAC", "--authorization-mode")
	f.Add("nothave", "authentication:\n  anonymous: {enabled: true}", "{.authentication.anonymous.enabled}")
	f.Add("lt", `{"a":[1,2]}`, "{range .a[*]}{}{','}{end}")
	f.Fuzz(func(t *testing.T, op, found, value string) {
		CompareOp(op, found, value, "flag")
		FindFlagValue(found, value, op != "")
		FindPathValue(found, value)
		FindEnvValue(found, value)
	})
}

// BenchmarkRunNode runs the 25 cis-1.12 node checks on the good fixture
// node: one /bin/sh per audit, as kube-bench does.
func BenchmarkRunNode(b *testing.B) {
	bench := defaultBench(b)
	f := benchFixture(b)
	opts := Options{
		Targets: []string{"node"}, Substitutions: f.subs,
		Processes: func() ([]string, error) { return f.procs, nil },
		Runner:    psRunner(f.procs),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bench.Run(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEvaluateNode is the engine alone: the same checks with canned
// audit outputs (no shell).
func BenchmarkEvaluateNode(b *testing.B) {
	bench := defaultBench(b)
	f := benchFixture(b)
	conf, err := os.ReadFile(filepath.Join("testdata", "kubelet-good.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	ps := "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 06:00 ? 00:00:01 " + f.procs[1]
	opts := Options{
		Targets: []string{"node"}, Substitutions: f.subs,
		Processes: func() ([]string, error) { return f.procs, nil },
		Runner: func(ctx context.Context, script string) (string, error) {
			switch {
			case strings.HasPrefix(script, "/bin/ps"):
				return ps, nil
			case strings.HasPrefix(script, "/bin/cat"):
				return string(conf), nil
			}
			return "permissions=600", nil
		},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bench.Run(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFixture(b *testing.B) fixture {
	dir := b.TempDir()
	subs := map[string]string{}
	for k, src := range map[string]string{"kubeletconf": "kubelet-good.yaml", "kubeletsvc": "", "kubeletkubeconfig": "", "proxykubeconfig": "proxy-kubeconfig.yaml", "kubeletcafile": ""} {
		data := []byte("# x\n")
		if src != "" {
			var err error
			if data, err = os.ReadFile(filepath.Join("testdata", src)); err != nil {
				b.Fatal(err)
			}
		}
		p := filepath.Join(dir, k)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			b.Fatal(err)
		}
		subs[k] = p
	}
	return fixture{subs: subs, procs: []string{
		"/sbin/init",
		"/usr/bin/kubelet --config=" + subs["kubeletconf"] + " --kubeconfig=" + subs["kubeletkubeconfig"],
		"/usr/local/bin/kube-proxy --metrics-bind-address=127.0.0.1:10249",
	}}
}
