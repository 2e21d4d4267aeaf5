package kubebench

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// Every compare operator, as kube-bench documents and implements it
// (check/test.go compareOp).
func TestCompareOps(t *testing.T) {
	cases := []struct {
		op, found, value string
		want             bool
		expected         string // substring of the expected-result text
	}{
		{"eq", "false", "false", true, "is equal to 'false'"},
		{"eq", "FALSE", "false", true, ""}, // booleans compare case-insensitively
		{"eq", "True", "false", false, ""},
		{"eq", "Webhook", "webhook", false, ""}, // other values are case-sensitive
		{"eq", "0", "0", true, ""},
		{"noteq", "0", "0", false, "is not equal to '0'"},
		{"noteq", "5m", "0", true, ""},
		{"noteq", "TRUE", "true", false, ""},
		{"gt", "10", "5", true, "is greater than 5"},
		{"gt", "5", "5", false, ""},
		{"gte", "5", "5", true, "greater or equal"},
		{"gte", "-1", "0", false, ""},
		{"lt", " 3 ", "5", true, "is lower than 5"},
		{"lte", "6", "5", false, "lower or equal"},
		{"gt", "ten", "5", false, "Invalid Number(s) used for comparison: 'ten' '5'"},
		{"lte", "4", "x", false, "Invalid Number"},
		{"has", "NodeRestriction,AlwaysPullImages", "NodeRestriction", true, "has 'NodeRestriction'"},
		{"has", "AlwaysPullImages", "NodeRestriction", false, ""},
		{"nothave", "Node,RBAC", "AlwaysAllow", true, "does not have 'AlwaysAllow'"},
		{"nothave", "AlwaysAllow,RBAC", "AlwaysAllow", false, ""},
		{"regex", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "^TLS_ECDHE_", true, "matched by regex expression"},
		{"regex", "abc", "^[0-9]+$", false, ""},
		{"regex", "abc", "(", false, "invalid regex"},
		{"valid_elements", "a,b,", "a,b,c", true, "contains valid elements from 'a,b,c'"},
		{"valid_elements", " a , c ", "a,b,c", true, ""},
		{"valid_elements", "a,d", "a,b,c", false, ""},
		{"valid_elements", "", "", true, ""},
		{"valid_elements", "", "a", false, ""},
		{"valid_elements", "a", "", false, ""},
		{"bitmask", "600", "600", true, "has permissions 600, expected 600 or more restrictive"},
		{"bitmask", "400", "600", true, ""},
		{"bitmask", "640", "644", true, ""},
		{"bitmask", "644", "600", false, ""},
		{"bitmask", "700", "600", false, ""},
		{"bitmask", "666", "644", false, ""},
		{"bitmask", "rw-", "600", false, "Not numeric value - flag: rw-"},
		{"bitmask", "600", "9", false, "Not numeric value - flag: 9"},
		{"approximately", "1", "1", false, ""},
	}
	for _, c := range cases {
		exp, got := CompareOp(c.op, c.found, c.value, "flag")
		if got != c.want {
			t.Errorf("%s(%q, %q) = %v, want %v (%s)", c.op, c.found, c.value, got, c.want, exp)
		}
		if !strings.Contains(exp, c.expected) {
			t.Errorf("%s(%q, %q): expected-result %q lacks %q", c.op, c.found, c.value, exp, c.expected)
		}
	}
	for _, op := range Ops {
		if !knownOp(op) {
			t.Errorf("%s", op)
		}
	}
}

// Flags are read from command lines and "key: value" text as kube-bench
// does.
func TestFindFlagValue(t *testing.T) {
	cases := []struct {
		s, flag    string
		hasCompare bool
		match      bool
		value      string
	}{
		{"/usr/bin/kubelet --anonymous-auth=false --x=1", "--anonymous-auth", true, true, "false"},
		{"/usr/bin/kubelet --anonymous-auth false --x=1", "--anonymous-auth", true, true, "false"},
		{"/usr/bin/kubelet --anonymous-auth false", "--anonymous-auth", false, true, "true"}, // no compare: boolean reading
		{"/usr/bin/kubelet --anonymous-auth --x=1", "--anonymous-auth", true, true, "true"},  // next token is a flag
		{"/usr/bin/kubelet --anonymous-auth", "--anonymous-auth", true, true, "true"},
		{"permissions=644", "permissions", true, true, "644"},
		{"root:root", "root:root", false, true, "root:root"},
		{"mode: Webhook", "mode", true, true, "Webhook"},
		{"/usr/bin/kubelet --v=2", "--anonymous-auth", true, false, ""},
		{"", "--anonymous-auth", true, false, ""},
		{"a?:b", "?:b", true, true, ""}, // a flag that is a regexp with fewer groups does not panic
	}
	for _, c := range cases {
		m, v, err := FindFlagValue(c.s, c.flag, c.hasCompare)
		if err != nil {
			t.Errorf("%q %q: %v", c.s, c.flag, err)
		}
		if m != c.match || (c.value != "" && v != c.value) {
			t.Errorf("FindFlagValue(%q, %q) = %v %q, want %v %q", c.s, c.flag, m, v, c.match, c.value)
		}
	}
}

func TestFindPathAndEnv(t *testing.T) {
	yml := "authentication:\n  anonymous:\n    enabled: false\nreadOnlyPort: 0\ntlsCipherSuites: [A, B]\n"
	js := `{"authentication":{"anonymous":{"enabled":true}},"readOnlyPort":10255}`
	for _, c := range []struct {
		doc, path string
		match     bool
		value     string
	}{
		{yml, "{.authentication.anonymous.enabled}", true, "false"},
		{js, "{.authentication.anonymous.enabled}", true, "true"},
		{yml, "{.readOnlyPort}", true, "0"},
		{js, "{.readOnlyPort}", true, "10255"},
		{yml, "{.authorization.mode}", false, ""},
		{yml, "{range .tlsCipherSuites[:]}{}{','}{end}", true, "A,B,"},
		{"authentication: {anonymous: {enabled: off}}", "{.authentication.anonymous.enabled}", true, "false"}, // YAML 1.1, as the kubelet reads it
		{"featureGates:\n  RotateKubeletServerCertificate: yes\n", "{.featureGates.RotateKubeletServerCertificate}", true, "true"},
	} {
		m, v, err := FindPathValue(c.doc, c.path)
		if err != nil || m != c.match || v != c.value {
			t.Errorf("FindPathValue(%q) = %v %q %v, want %v %q", c.path, m, v, err, c.match, c.value)
		}
	}
	if _, _, err := FindPathValue("a: [", "{.a}"); err == nil || !strings.Contains(err.Error(), "YAML or JSON") {
		t.Errorf("bad document: %v", err)
	}
	if _, _, err := FindPathValue(yml, "{.a"); err == nil || !strings.Contains(err.Error(), "{.a") {
		t.Errorf("bad path: %v", err)
	}
	env := "ETCD_CERT_FILE=/etc/etcd/server.crt\nETCD_KEY_FILE=/k\n"
	if m, v := FindEnvValue(env, "ETCD_CERT_FILE"); !m || v != "/etc/etcd/server.crt" {
		t.Errorf("env: %v %q", m, v)
	}
	if m, _ := FindEnvValue(env, "ETCD_AUTO_TLS"); m {
		t.Error("absent env found")
	}
}

// set: true/false and the audit → audit_config → audit_env fallback.
func TestTestItemSemantics(t *testing.T) {
	parse := func(src string) TestItem {
		var ti TestItem
		if err := yaml.Unmarshal([]byte(src), &ti); err != nil {
			t.Fatal(err)
		}
		return ti
	}
	if ti := parse("flag: --x\n"); !ti.Set {
		t.Fatal("set must default to true")
	}
	notSet := parse("flag: --hostname-override\nset: false\n")
	if r := notSet.evaluate("kubelet --v=2", usedCommand); !r.testResult {
		t.Error("set:false with the flag absent must pass")
	}
	if r := notSet.evaluate("kubelet --hostname-override=x", usedCommand); r.testResult || !strings.Contains(r.ExpectedResult, "is not present") {
		t.Errorf("set:false with the flag present must fail: %+v", r)
	}
	present := parse("flag: --client-ca-file\npath: '{.authentication.x509.clientCAFile}'\n")
	c := &Check{ID: "x", AuditConfig: "cat", Tests: &Tests{TestItems: []TestItem{present}}}
	r := c.execute(auditOutputs{audit: "kubelet --v=2", config: "authentication: {x509: {clientCAFile: /ca}}"})
	if !r.testResult || !strings.Contains(r.seen, "clientCAFile}=/ca") {
		t.Errorf("config fallback: %+v", r)
	}
	envItem := parse("flag: --cert-file\nenv: ETCD_CERT_FILE\n")
	c = &Check{ID: "y", Tests: &Tests{TestItems: []TestItem{envItem}}}
	if r := c.execute(auditOutputs{audit: "etcd", env: "ETCD_CERT_FILE=/c"}); !r.testResult {
		t.Errorf("env fallback: %+v", r)
	}
	// use_multiple_values: every line must pass
	multi := &Check{ID: "z", IsMultiple: true, Tests: &Tests{TestItems: []TestItem{parse("flag: permissions\ncompare: {op: bitmask, value: \"600\"}\n")}}}
	if r := multi.execute(auditOutputs{audit: "permissions=600\npermissions=644\n"}); r.testResult {
		t.Error("one bad line must fail a use_multiple_values check")
	}
	if r := multi.execute(auditOutputs{audit: "permissions=600\npermissions=400\n"}); !r.testResult {
		t.Error("all good lines must pass")
	}
}

func TestShellRunnerTimeout(t *testing.T) {
	opts := Options{Runner: ShellRunner, Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := runAudit(context.Background(), opts, "sleep 20")
	if err == nil || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err %v", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("the timeout did not stop the audit")
	}
	out, err := runAudit(context.Background(), opts, "echo out; echo err >&2; exit 3")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(out, "out\nerr") {
		t.Fatalf("%q %v", out, err)
	}
}

func TestProcProcesses(t *testing.T) {
	procs, err := ProcProcesses()
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	found := false
	for _, p := range procs {
		if strings.Contains(p, "kubebench.test") || (self != "" && strings.Contains(p, self)) {
			found = true
		}
	}
	if !found {
		t.Errorf("own process not among %d processes", len(procs))
	}
	if got := FindExecutable([]string{"kube-apiserver", "apiserver"}, []string{"/usr/local/bin/kube-apiserver --etcd-servers=x"}); got != "kube-apiserver" {
		t.Errorf("FindExecutable: %q", got)
	}
	if got := FindExecutable([]string{"apiserver"}, []string{"/usr/local/bin/kube-apiserver --etcd-servers=x"}); got != "" {
		t.Errorf("apiserver must not match kube-apiserver: %q", got)
	}
}
