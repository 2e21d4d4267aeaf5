package kubebench

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/compliance"
)

// fixture is a node in a known state: fixture files (with their modes) and
// the command lines of its "running" processes.
type fixture struct {
	procs []string
	subs  map[string]string
}

// psRunner answers "/bin/ps -fC <name>" from the fixture's process list,
// the way procps does (header, then one line per process whose name is
// <name>; exit 1 when there is none), and runs every other audit with the
// real /bin/sh.
func psRunner(procs []string) Runner {
	re := regexp.MustCompile(`^/bin/ps -fC (\S+)$`)
	return func(ctx context.Context, script string) (string, error) {
		m := re.FindStringSubmatch(strings.TrimSpace(script))
		if m == nil {
			return ShellRunner(ctx, script)
		}
		out := "UID          PID    PPID  C STIME TTY          TIME CMD\n"
		n := 0
		for i, p := range procs {
			f := strings.Fields(p)
			if len(f) > 0 && path.Base(f[0]) == strings.Trim(m[1], "'") {
				out += fmt.Sprintf("root        %d       1  2 06:00 ?        00:01:02 %s\n", 1000+i, p)
				n++
			}
		}
		if n == 0 {
			return out, fmt.Errorf("exit status 1")
		}
		return out, nil
	}
}

func writeFile(t *testing.T, dir, name, src string, mode os.FileMode) string {
	t.Helper()
	var data []byte
	if src != "" {
		var err error
		if data, err = os.ReadFile(filepath.Join("testdata", src)); err != nil {
			t.Fatal(err)
		}
	} else {
		data = []byte("# " + name + "\n")
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func nodeFixture(t *testing.T, good bool) fixture {
	dir := t.TempDir()
	mode, conf := os.FileMode(0o600), "kubelet-good.yaml"
	if !good {
		mode, conf = 0o644, "kubelet-bad.yaml"
	}
	f := fixture{subs: map[string]string{
		"kubeletconf":       writeFile(t, dir, "config.yaml", conf, mode),
		"kubeletsvc":        writeFile(t, dir, "10-kubeadm.conf", "", mode),
		"kubeletkubeconfig": writeFile(t, dir, "kubelet.conf", "", mode),
		"proxykubeconfig":   writeFile(t, dir, "proxy.conf", "proxy-kubeconfig.yaml", mode),
		"kubeletcafile":     writeFile(t, dir, "ca.crt", "", map[bool]os.FileMode{true: 0o644, false: 0o666}[good]),
	}}
	if good {
		f.procs = []string{
			"/sbin/init",
			"/usr/bin/kubelet --config=" + f.subs["kubeletconf"] + " --kubeconfig=" + f.subs["kubeletkubeconfig"] + " --container-runtime-endpoint=unix:///run/containerd/containerd.sock",
			"/usr/local/bin/kube-proxy --metrics-bind-address=127.0.0.1:10249",
		}
	} else {
		f.procs = []string{
			"/sbin/init",
			"/usr/bin/kubelet --config=" + f.subs["kubeletconf"] + " --hostname-override=evil-node",
			"/usr/local/bin/kube-proxy --metrics-bind-address=0.0.0.0:10249",
		}
	}
	return f
}

func runNode(t testing.TB, b *Benchmark, f fixture) map[string]compliance.Result {
	res, err := b.Run(context.Background(), Options{
		Targets:       []string{"node"},
		Substitutions: f.subs,
		Processes:     func() ([]string, error) { return f.procs, nil },
		Runner:        psRunner(f.procs),
	})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]compliance.Result{}
	for _, r := range res {
		m[r.ID] = r
	}
	return m
}

func defaultBench(t testing.TB) *Benchmark {
	b, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The node checks on a well-configured kubelet (config file, flags, file
// modes 600) pass; on a badly configured one they fail (scored) or warn
// (not scored), and the evidence shows what was seen.
func TestNodeGoodAndBad(t *testing.T) {
	b := defaultBench(t)
	good := runNode(t, b, nodeFixture(t, true))
	bad := runNode(t, b, nodeFixture(t, false))

	root := os.Geteuid() == 0
	type want struct {
		good, bad string
		evidence  string // in the bad result's evidence
	}
	cases := map[string]want{
		"4.1.1":  {compliance.Pass, compliance.Fail, "permissions=644"},
		"4.1.3":  {compliance.Pass, compliance.Warn, "permissions=644"},
		"4.1.5":  {compliance.Pass, compliance.Fail, "permissions=644"},
		"4.1.7":  {compliance.Pass, compliance.Warn, "permissions=666"},
		"4.1.9":  {compliance.Pass, compliance.Fail, "permissions=644"},
		"4.2.1":  {compliance.Pass, compliance.Fail, "enabled: true"},
		"4.2.2":  {compliance.Pass, compliance.Fail, "AlwaysAllow"},
		"4.2.3":  {compliance.Pass, compliance.Fail, "'{.authentication.x509.clientCAFile}' is present"},
		"4.2.4":  {compliance.Pass, compliance.Warn, "readOnlyPort: 10255"},
		"4.2.5":  {compliance.Pass, compliance.Warn, "streamingConnectionIdleTimeout: 0"},
		"4.2.6":  {compliance.Pass, compliance.Fail, "makeIPTablesUtilChains: false"},
		"4.2.7":  {compliance.Pass, compliance.Warn, "--hostname-override=evil-node"},
		"4.2.8":  {compliance.Pass, compliance.Warn, "eventRecordQPS: -1"},
		"4.2.9":  {compliance.Pass, compliance.Warn, "tlsCertFile"},
		"4.2.10": {compliance.Pass, compliance.Fail, "rotateCertificates: false"},
		"4.2.11": {compliance.Pass, compliance.Warn, "RotateKubeletServerCertificate: false"},
		"4.2.12": {compliance.Pass, compliance.Warn, "TLS_RSA_WITH_RC4_128_SHA"},
		"4.2.13": {compliance.Pass, compliance.Warn, "podPidsLimit"},
		"4.2.14": {compliance.Pass, compliance.Warn, "seccompDefault"},
		"4.3.1":  {compliance.Pass, compliance.Fail, "0.0.0.0:10249"},
	}
	if root {
		// ownership root:root holds in both states when the test runs as root
		for _, id := range []string{"4.1.2", "4.1.6", "4.1.10"} {
			cases[id] = want{compliance.Pass, compliance.Pass, "root:root"}
		}
	}
	for id, w := range cases {
		g, ok := good[id]
		if !ok {
			t.Errorf("%s: no result", id)
			continue
		}
		if g.Status != w.good {
			t.Errorf("%s good: status %s, want %s; evidence:\n%s", id, g.Status, w.good, g.Evidence)
		}
		bd := bad[id]
		if bd.Status != w.bad {
			t.Errorf("%s bad: status %s, want %s; evidence:\n%s", id, bd.Status, w.bad, bd.Evidence)
		}
		if !strings.Contains(bd.Evidence, w.evidence) {
			t.Errorf("%s bad: evidence does not show %q:\n%s", id, w.evidence, bd.Evidence)
		}
		if g.Benchmark != compliance.BenchKubernetes || g.Profile != "node" || g.Remediation == "" || g.Title == "" {
			t.Errorf("%s: incomplete result %+v", id, g)
		}
	}
	// the remediation names the real file, substituted
	if r := bad["4.1.9"].Remediation; !strings.Contains(r, "chmod 600 /") || strings.Contains(r, "$kubeletconf") {
		t.Errorf("4.1.9 remediation not substituted: %q", r)
	}
	if len(good) != 25 || len(bad) != 25 {
		t.Errorf("cis-1.12 has 25 node checks: %d good, %d bad results", len(good), len(bad))
	}
	for id, r := range good {
		if r.Status == compliance.Error || (root && r.Status != compliance.Pass) {
			t.Errorf("good %s: %s %s %s", id, r.Status, r.Error, r.Evidence)
		}
	}
}

// Command-line flags are read before the config file, as kube-bench does:
// --anonymous-auth=true on the command line fails 4.2.1 even with a good
// config file; "--read-only-port 10255" (space-separated) is read too.
func TestFlagsOverrideConfig(t *testing.T) {
	b := defaultBench(t)
	f := nodeFixture(t, true)
	f.procs[1] += " --anonymous-auth=true --read-only-port 10255 --authorization-mode=AlwaysAllow"
	r := runNode(t, b, f)
	for id, st := range map[string]string{"4.2.1": compliance.Fail, "4.2.2": compliance.Fail, "4.2.4": compliance.Warn, "4.2.3": compliance.Pass} {
		if r[id].Status != st {
			t.Errorf("%s: %s, want %s; evidence %s", id, r[id].Status, st, r[id].Evidence)
		}
	}
	if !strings.Contains(r["4.2.1"].Evidence, "--anonymous-auth=true") {
		t.Errorf("4.2.1 evidence: %s", r["4.2.1"].Evidence)
	}
}

// A JSON kubelet config is read like the YAML one.
func TestJSONConfig(t *testing.T) {
	b := defaultBench(t)
	f := nodeFixture(t, true)
	f.subs["kubeletconf"] = writeFile(t, t.TempDir(), "kubelet.json", "kubelet-good.json", 0o600)
	r := runNode(t, b, f)
	for _, id := range []string{"4.2.1", "4.2.2", "4.2.3", "4.2.4", "4.2.10", "4.1.9"} {
		if r[id].Status != compliance.Pass {
			t.Errorf("%s: %s; evidence %s", id, r[id].Status, r[id].Evidence)
		}
	}
}

// Without a running kubelet the audits that look for it fail, as in
// kube-bench; file checks still run; Warnf says the kubelet is missing.
func TestKubeletNotRunning(t *testing.T) {
	b := defaultBench(t)
	f := nodeFixture(t, true)
	f.procs = []string{"/sbin/init"}
	var notes []string
	res, err := b.Run(context.Background(), Options{
		Targets: []string{"node"}, Substitutions: f.subs,
		Processes: func() ([]string, error) { return f.procs, nil },
		Runner:    psRunner(f.procs),
		Warnf:     func(format string, a ...any) { notes = append(notes, fmt.Sprintf(format, a...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) == 0 || !strings.Contains(strings.Join(notes, "\n"), "kubelet") {
		t.Errorf("no note about the missing kubelet: %q", notes)
	}
	for _, r := range res {
		switch r.ID {
		case "4.2.1":
			if r.Status != compliance.Fail || !strings.Contains(r.Evidence, "exit status 1") {
				t.Errorf("4.2.1: %s %q", r.Status, r.Evidence)
			}
		case "4.1.9":
			if r.Status != compliance.Pass {
				t.Errorf("4.1.9: %s %q", r.Status, r.Evidence)
			}
		}
	}
}

// Discovery: the running binary is found among bins, the first existing
// conf under Root is used, and the default when none exists.
func TestSubstitutions(t *testing.T) {
	b := defaultBench(t)
	root := t.TempDir()
	for _, p := range []string{"var/lib/kubelet/config.yml", "etc/kubernetes/kubelet.conf", "lib/systemd/system/kubelet.service"} {
		if err := os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Dir(filepath.Join(root, p)), filepath.Base(p), "", 0o600)
	}
	subs, err := b.Substitutions("node", Options{Root: root, Processes: func() ([]string, error) {
		return []string{"/opt/bin/hyperkube kubelet --v=2", "kube-proxy-helper --x"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"kubeletbin":        "hyperkube kubelet",
		"kubeletconf":       filepath.Join(root, "var/lib/kubelet/config.yml"),
		"kubeletkubeconfig": filepath.Join(root, "etc/kubernetes/kubelet.conf"),
		"kubeletsvc":        filepath.Join(root, "lib/systemd/system/kubelet.service"),
		"kubeletcafile":     filepath.Join(root, "etc/kubernetes/pki/ca.crt"), // default
		"proxybin":          "proxy",                                          // kube-proxy-helper is not kube-proxy
		"proxykubeconfig":   filepath.Join(root, "etc/kubernetes/proxy.conf"),
		"kubernetesconf":    filepath.Join(root, "etc/kubernetes/config"),
		"kubeletdatadir":    "kubelet", // no datadir at all: the component name
	}
	for k, v := range want {
		if subs[k] != v {
			t.Errorf("$%s = %q, want %q", k, subs[k], v)
		}
	}
	// multi-word binaries are quoted in audits, as kube-bench does
	if got := substitute("/bin/ps -fC $kubeletbin", subs, sortedKeys(subs)); got != "/bin/ps -fC 'hyperkube kubelet'" {
		t.Errorf("substituted audit %q", got)
	}
}

// Version resolution: Kubernetes 1.32–1.34 map to cis-1.12; an unmapped
// version is an error naming it.
func TestVersions(t *testing.T) {
	dir := filepath.Join("cfg")
	for _, v := range []string{"", "cis-1.12", "1.32", "1.33", "v1.34.1"} {
		b, err := Load(dir, v)
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if b.Version != "cis-1.12" {
			t.Errorf("%q → %s", v, b.Version)
		}
	}
	for _, v := range []string{"1.12", "cis-9.9", "1.29"} {
		if _, err := Load(dir, v); err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(v, "v")) && !strings.Contains(err.Error(), "cis-1.11") {
			t.Errorf("%q: err %v", v, err)
		}
	}
}

// The whole embedded cis-1.12 loads, and every check of every target gets
// a status on a host without Kubernetes; none is an error (every operator
// in the shipped definitions is known).
func TestEmbeddedAllTargets(t *testing.T) {
	b := defaultBench(t)
	total := 0
	for _, c := range b.Controls {
		for _, g := range c.Groups {
			total += len(g.Checks)
		}
	}
	if total < 130 {
		t.Fatalf("only %d checks in the embedded cis-1.12", total)
	}
	res, err := b.Run(context.Background(), Options{
		Targets: AllTargets, Root: t.TempDir(),
		Processes: func() ([]string, error) { return nil, nil },
		Runner: func(ctx context.Context, script string) (string, error) {
			if strings.Contains(script, "kubectl") {
				return "", fmt.Errorf("exit status 127")
			}
			return ShellRunner(ctx, script)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != total {
		t.Fatalf("%d results for %d checks", len(res), total)
	}
	count := map[string]int{}
	for _, r := range res {
		switch r.Status {
		case compliance.Pass, compliance.Fail, compliance.Warn, compliance.Manual:
		default:
			t.Errorf("%s: status %q %s", r.ID, r.Status, r.Error)
		}
		count[r.Status]++
	}
	t.Logf("cis-1.12 on a host without Kubernetes: %d checks, %v", total, count)
	if count[compliance.Manual] < 20 {
		t.Errorf("manual checks: %d", count[compliance.Manual])
	}
}

// A definition with an unknown operator (and one with an unknown bin_op)
// gives an error result for that check only; the others are evaluated.
func TestUnknownOperator(t *testing.T) {
	b, err := Load(filepath.Join("testdata", "badop"), "1.99")
	if err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, t.TempDir(), "config.yaml", "kubelet-good.yaml", 0o600)
	res, err := b.Run(context.Background(), Options{
		Targets: []string{"node"}, Substitutions: map[string]string{"kubeletconf": conf},
		Processes: func() ([]string, error) { return []string{"/usr/bin/kubelet"}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]compliance.Result{}
	for _, r := range res {
		got[r.ID] = r
	}
	if len(got) != 4 {
		t.Fatalf("%d results", len(got))
	}
	if r := got["9.1.2"]; r.Status != compliance.Error || !strings.Contains(r.Error, `"approximately"`) {
		t.Errorf("9.1.2: %s %q", r.Status, r.Error)
	}
	if r := got["9.1.3"]; r.Status != compliance.Error || !strings.Contains(r.Error, `"xor"`) {
		t.Errorf("9.1.3: %s %q", r.Status, r.Error)
	}
	for _, id := range []string{"9.1.1", "9.1.4"} {
		if got[id].Status != compliance.Pass {
			t.Errorf("%s: %s %q", id, got[id].Status, got[id].Evidence)
		}
	}
}

func TestParseControlsErrors(t *testing.T) {
	for name, src := range map[string]string{
		"not yaml":  "groups: [",
		"no groups": "id: 1\ntext: x\n",
		"no id":     "groups:\n- id: 1\n  checks:\n  - text: x\n",
		"dup id":    "groups:\n- id: 1\n  checks:\n  - id: 1.1\n  - id: 1.1\n",
		"bad items": "groups:\n- id: 1\n  checks:\n  - id: 1.1\n    tests:\n      test_items: 3\n",
	} {
		_, err := ParseControls([]byte(src), "x.yaml")
		if err == nil || !strings.Contains(err.Error(), "x.yaml") {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

// kube-bench's check types: manual → manual; skip (on the check or its
// group) → manual "Test marked as skip" (kube-bench's INFO); scored without
// tests → warn; an empty test list → fail when scored, warn when not.
func TestCheckTypes(t *testing.T) {
	src := `
groups:
  - id: 1
    text: G
    checks:
      - {id: "1.1", text: m, type: manual, audit: "echo x", scored: false}
      - {id: "1.2", text: s, type: skip, scored: true}
      - {id: "1.3", text: n, scored: true}
      - {id: "1.4", text: e, audit: "echo x", tests: {test_items: []}, scored: true}
      - {id: "1.5", text: e, audit: "echo x", tests: {test_items: []}, scored: false}
      - {id: "1.6", text: ok, audit: "echo --x=1", tests: {test_items: [{flag: --x, compare: {op: eq, value: "1"}}]}, scored: true}
  - id: 2
    type: skip
    checks:
      - {id: "2.1", text: g, audit: "echo --x=1", tests: {test_items: [{flag: --x}]}, scored: true}
`
	c, err := ParseControls([]byte(src), "types.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b := &Benchmark{Version: "t", Controls: map[string]*Controls{"node": c}, Config: &Config{Targets: map[string]*TargetConfig{}}}
	res, err := b.Run(context.Background(), Options{Targets: []string{"node"}, Processes: func() ([]string, error) { return nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1.1": compliance.Manual, "1.2": compliance.Manual, "1.3": compliance.Warn, "1.4": compliance.Fail, "1.5": compliance.Warn, "1.6": compliance.Pass, "2.1": compliance.Manual}
	for _, r := range res {
		if r.Status != want[r.ID] {
			t.Errorf("%s: %s, want %s (%s)", r.ID, r.Status, want[r.ID], r.Evidence)
		}
		delete(want, r.ID)
	}
	if len(want) != 0 {
		t.Errorf("missing %v", want)
	}
	// Options.Checks limits the run
	res, _ = b.Run(context.Background(), Options{Targets: []string{"node"}, Checks: []string{"1.6"}, Processes: func() ([]string, error) { return nil, nil }})
	if len(res) != 1 || res[0].ID != "1.6" {
		t.Errorf("Checks filter: %+v", res)
	}
	if _, err := b.Run(context.Background(), Options{Targets: []string{"worker"}}); err == nil || !strings.Contains(err.Error(), `"worker"`) {
		t.Errorf("unknown target: %v", err)
	}
}

func TestDetectVersion(t *testing.T) {
	var asked []string
	opts := Options{
		Processes: func() ([]string, error) {
			return []string{"/sbin/init", "/opt/k8s/bin/kube-apiserver --etcd-servers=x", "/opt/k8s/bin/kubelet --config=/x"}, nil
		},
		Runner: func(ctx context.Context, script string) (string, error) {
			asked = append(asked, script)
			return "Kubernetes v1.34.2\n", nil
		},
	}
	v, err := DetectVersion(context.Background(), opts)
	if err != nil || v != "1.34" {
		t.Fatalf("%q %v", v, err)
	}
	if len(asked) != 1 || asked[0] != "'/opt/k8s/bin/kubelet' --version" {
		t.Errorf("asked %q", asked)
	}
	b, err := DefaultFor(v)
	if err != nil || b.Version != "cis-1.12" {
		t.Fatalf("%v %v", b, err)
	}
	opts.Processes = func() ([]string, error) { return []string{"/sbin/init"}, nil }
	if _, err := DetectVersion(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "neither kubelet nor kube-apiserver") {
		t.Errorf("no kubelet: %v", err)
	}
}
