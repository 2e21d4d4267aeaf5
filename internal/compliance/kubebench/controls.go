package kubebench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	yamlv2 "go.yaml.in/yaml/v2"
	"gopkg.in/yaml.v3"
	"k8s.io/client-go/util/jsonpath"

	"github.com/vigil-cwpp/vigil/internal/compliance"
)

// Controls is one kube-bench controls file (cis-1.12/node.yaml, …).
type Controls struct {
	ID      string  `yaml:"id"`
	Version string  `yaml:"version"`
	Text    string  `yaml:"text"`
	Type    string  `yaml:"type"`
	Groups  []Group `yaml:"groups"`
}

// Group is a section of checks ("4.2 Kubelet"). Type "skip" skips all of
// its checks.
type Group struct {
	ID     string  `yaml:"id"`
	Text   string  `yaml:"text"`
	Type   string  `yaml:"type"`
	Checks []Check `yaml:"checks"`
}

// Check is one recommendation.
type Check struct {
	ID          string `yaml:"id"`
	Text        string `yaml:"text"`
	Audit       string `yaml:"audit"`
	AuditEnv    string `yaml:"audit_env"`
	AuditConfig string `yaml:"audit_config"`
	// Type "manual" or "skip"; empty for automated checks.
	Type        string `yaml:"type"`
	Tests       *Tests `yaml:"tests"`
	Remediation string `yaml:"remediation"`
	Scored      bool   `yaml:"scored"`
	// IsMultiple: every line of the output must pass.
	IsMultiple bool `yaml:"use_multiple_values"`
}

// Tests combines test items with BinOp "and" (default) or "or".
type Tests struct {
	TestItems []TestItem `yaml:"test_items"`
	BinOp     string     `yaml:"bin_op"`
}

// TestItem looks for Flag in the audit output (command-line style), Path
// (a JSONPath like {.authentication.anonymous.enabled}) in the
// audit_config output, or Env (NAME=value) in the audit_env output. Set
// (default true) says whether it must be present; Compare judges its value.
type TestItem struct {
	Flag    string  `yaml:"flag"`
	Path    string  `yaml:"path"`
	Env     string  `yaml:"env"`
	Set     bool    `yaml:"set"`
	Compare Compare `yaml:"compare"`
}

// Compare is an operator and the value it compares against.
type Compare struct {
	Op    string `yaml:"op"`
	Value string `yaml:"value"`
}

// UnmarshalYAML makes Set default to true, as kube-bench does.
func (t *TestItem) UnmarshalYAML(n *yaml.Node) error {
	type plain TestItem
	p := plain{Set: true}
	if err := n.Decode(&p); err != nil {
		return err
	}
	*t = TestItem(p)
	return nil
}

// Ops are the compare operators kube-bench knows.
var Ops = []string{"eq", "noteq", "gt", "gte", "lt", "lte", "has", "nothave", "regex", "valid_elements", "bitmask"}

func knownOp(op string) bool {
	for _, o := range Ops {
		if o == op {
			return true
		}
	}
	return false
}

// ParseControls parses a controls file. name is used in errors.
func ParseControls(data []byte, name string) (*Controls, error) {
	var c Controls
	if err := yaml.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("kube-bench %s: %w", name, err)
	}
	if len(c.Groups) == 0 {
		return nil, fmt.Errorf("kube-bench %s: no groups", name)
	}
	seen := map[string]bool{}
	for gi, g := range c.Groups {
		for ci, ch := range g.Checks {
			if ch.ID == "" {
				return nil, fmt.Errorf("kube-bench %s: groups[%d].checks[%d] has no id", name, gi, ci)
			}
			if seen[ch.ID] {
				return nil, fmt.Errorf("kube-bench %s: check %s appears twice", name, ch.ID)
			}
			seen[ch.ID] = true
		}
	}
	return &c, nil
}

func (c Check) substituted(subs map[string]string, keys []string) Check {
	c.Audit = substitute(c.Audit, subs, keys)
	c.AuditEnv = substitute(c.AuditEnv, subs, keys)
	c.AuditConfig = substitute(c.AuditConfig, subs, keys)
	c.Remediation = substitute(c.Remediation, subs, keys)
	return c
}

type checkResult struct {
	status, evidence, err string
}

// maxEvidence bounds the evidence kept from an audit's output.
const maxEvidence = 4000

func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxEvidence {
		s = s[:maxEvidence] + "…(truncated)"
	}
	return s
}

// run follows kube-bench's check.run: type skip/manual first, then the
// audit commands, then the test items.
func (c *Check) run(ctx context.Context, opts Options) checkResult {
	failOrWarn := compliance.Warn
	if c.Scored {
		failOrWarn = compliance.Fail
	}
	if c.Scored && strings.TrimSpace(c.Type) == "" && c.Tests == nil {
		return checkResult{status: compliance.Warn, evidence: "There are no tests"}
	}
	switch c.Type {
	case "skip":
		return checkResult{status: compliance.Manual, evidence: "Test marked as skip"}
	case "manual":
		ev := "Test marked as a manual test"
		if a := strings.TrimSpace(c.Audit); a != "" {
			ev += "; audit: " + a
		}
		return checkResult{status: compliance.Manual, evidence: ev}
	}
	if c.Tests == nil || len(c.Tests.TestItems) == 0 {
		return checkResult{status: failOrWarn, evidence: "No tests defined"}
	}
	// Definition errors: kube-bench would silently fail (unknown op) or
	// panic (bad regex); Vigil says what is wrong with this check.
	if err := c.Tests.validate(); err != nil {
		return checkResult{status: compliance.Error, err: fmt.Sprintf("check %s: %v", c.ID, err)}
	}

	outs, err := c.runAudits(ctx, opts)
	if err != nil {
		return checkResult{status: failOrWarn, evidence: clip(err.Error())}
	}
	final := c.execute(outs)
	st := failOrWarn
	if final.testResult {
		st = compliance.Pass
	}
	out := clip(final.actualResult)
	if out == "" {
		out = "(no output)"
	}
	ev := "seen: " + final.seen
	if final.ExpectedResult != "" {
		ev += "\nexpected: " + final.ExpectedResult
	}
	ev += "\noutput:\n" + out
	return checkResult{status: st, evidence: ev}
}

func (t *Tests) validate() error {
	switch t.BinOp {
	case "", "and", "or":
	default:
		return fmt.Errorf("unknown bin_op %q", t.BinOp)
	}
	for i, ti := range t.TestItems {
		if ti.Compare.Op == "" {
			continue
		}
		if !knownOp(ti.Compare.Op) {
			return fmt.Errorf("test_items[%d]: unknown compare op %q (known: %s)", i, ti.Compare.Op, strings.Join(Ops, ", "))
		}
		if ti.Compare.Op == "regex" {
			if _, err := regexp.Compile(ti.Compare.Value); err != nil {
				return fmt.Errorf("test_items[%d]: bad regex %q: %v", i, ti.Compare.Value, err)
			}
		}
	}
	return nil
}

type auditOutputs struct {
	audit, config, env string
}

// runAudits runs audit_env, audit and audit_config. As kube-bench: an
// audit_config that fails because its file is missing is ignored when the
// audit or audit_env said something.
func (c *Check) runAudits(ctx context.Context, opts Options) (auditOutputs, error) {
	var o auditOutputs
	var err error
	if strings.TrimSpace(c.AuditEnv) != "" {
		if o.env, err = runAudit(ctx, opts, c.AuditEnv); err != nil {
			return o, err
		}
	}
	if o.audit, err = runAudit(ctx, opts, c.Audit); err != nil {
		return o, err
	}
	o.config, err = runAudit(ctx, opts, c.AuditConfig)
	if err != nil && (strings.Contains(err.Error(), "exit status 127") ||
		strings.Contains(err.Error(), "No such file or directory")) &&
		(o.env != "" || o.audit != "") {
		o.config, err = "", nil
	}
	return o, err
}

func runAudit(ctx context.Context, opts Options, audit string) (string, error) {
	audit = strings.TrimSpace(audit)
	if audit == "" {
		return "", nil
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	out, err := opts.Runner(ctx, audit)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timeout %s)", err, opts.Timeout)
		}
		return out, fmt.Errorf("failed to run: %q, output: %q, error: %s", audit, out, err)
	}
	return out, nil
}

// ShellRunner feeds the script to /bin/sh on stdin (as kube-bench does)
// and returns stdout and stderr together. When ctx ends, the shell's whole
// process group is killed.
func ShellRunner(ctx context.Context, script string) (string, error) {
	cmd := exec.CommandContext(ctx, "/bin/sh")
	cmd.Stdin = strings.NewReader(script)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// the audit's children (a pipeline, a sleeping command) die with it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// --- test items (kube-bench check/test.go) --------------------------------

type auditUsed int

const (
	usedCommand auditUsed = iota
	usedConfig
	usedEnv
)

type testOutput struct {
	// seen is what the item found: "name=value" or "name not found".
	seen           string
	testResult     bool
	flagFound      bool
	actualResult   string
	ExpectedResult string
}

func (c *Check) execute(o auditOutputs) testOutput {
	ts := c.Tests
	res := make([]testOutput, len(ts.TestItems))
	expected := make([]string, len(res))
	var seen []string
	for i, t := range ts.TestItems {
		r := t.execute(o.audit, usedCommand, c.IsMultiple)
		if !r.flagFound && c.AuditConfig != "" {
			r = t.execute(o.config, usedConfig, c.IsMultiple)
			if !r.flagFound && t.Env != "" {
				r = t.execute(o.env, usedEnv, c.IsMultiple)
			}
		}
		if !r.flagFound && t.Env != "" {
			r = t.execute(o.env, usedEnv, c.IsMultiple)
		}
		res[i] = r
		expected[i] = r.ExpectedResult
		if r.seen != "" && !contains(seen, r.seen) {
			seen = append(seen, r.seen)
		}
	}
	var final testOutput
	switch ts.BinOp {
	case "or":
		for i := range res {
			final.testResult = final.testResult || res[i].testResult
		}
		final.ExpectedResult = strings.Join(expected, " OR ")
	default: // "and", "" (validated before)
		final.testResult = true
		for i := range res {
			final.testResult = final.testResult && res[i].testResult
		}
		final.ExpectedResult = strings.Join(expected, " AND ")
	}
	final.actualResult = res[0].actualResult
	final.seen = strings.Join(seen, "; ")
	return final
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (t TestItem) name(used auditUsed) string {
	switch used {
	case usedConfig:
		return t.Path
	case usedEnv:
		return t.Env
	}
	return t.Flag
}

func (t TestItem) execute(s string, used auditUsed, multiple bool) testOutput {
	s = strings.TrimRight(s, " \n")
	lines := []string{s}
	if multiple {
		lines = strings.Split(s, "\n")
	}
	var r testOutput
	for _, l := range lines {
		r = t.evaluate(l, used)
		if !r.testResult {
			break
		}
	}
	r.actualResult = s
	return r
}

func (t TestItem) evaluate(s string, used auditUsed) testOutput {
	var match bool
	var value string
	var err error
	switch used {
	case usedConfig:
		match, value, err = t.findPathValue(s)
	case usedEnv:
		match, value = t.findEnvValue(s)
	default:
		match, value, err = t.findFlagValue(s)
	}
	if err != nil {
		return testOutput{actualResult: err.Error(), ExpectedResult: err.Error()}
	}
	var r testOutput
	if t.Set {
		if match && t.Compare.Op != "" {
			r.ExpectedResult, r.testResult = CompareOp(t.Compare.Op, value, t.Compare.Value, t.name(used))
		} else {
			r.ExpectedResult = fmt.Sprintf("'%s' is present", t.name(used))
			r.testResult = match
		}
	} else {
		r.ExpectedResult = fmt.Sprintf("'%s' is not present", t.name(used))
		r.testResult = !match
	}
	r.flagFound = match
	if match {
		r.seen = t.name(used) + "=" + value
	} else {
		r.seen = t.name(used) + " not found"
	}
	return r
}

// FindFlagValue finds flag in a command line or "key: value" text as
// kube-bench does: "--flag=v", "--flag v" (only when a compare op is set
// and v does not start with "-"), "flag: v", and a bare "--flag" meaning
// "true".
func FindFlagValue(s, flag string, hasCompare bool) (match bool, value string, err error) {
	if s == "" || flag == "" {
		return false, "", nil
	}
	if !strings.Contains(s, flag) {
		return false, "", nil
	}
	// kube-bench compiles the flag unquoted; a flag that is not a valid
	// regexp is quoted instead of panicking.
	re, rerr := compileCached(`(` + flag + `)(=|: *)*([^\s]*) *`)
	if rerr != nil || re.NumSubexp() < 3 {
		re, rerr = compileCached(`(` + regexp.QuoteMeta(flag) + `)(=|: *)*([^\s]*) *`)
		if rerr != nil { // e.g. invalid UTF-8
			return false, "", fmt.Errorf("invalid flag %q in testItem definition: %v", flag, rerr)
		}
	}
	vals := re.FindStringSubmatch(s)
	if len(vals) == 0 {
		return true, "", fmt.Errorf("invalid flag in testItem definition: %s", s)
	}
	switch {
	case vals[3] != "":
		value = vals[3]
	default:
		if v, ok := spaceSeparatedValue(s, flag, hasCompare); ok {
			value = v
		} else if strings.HasPrefix(flag, "--") {
			value = "true"
		} else {
			value = vals[1]
		}
	}
	return true, value, nil
}

func spaceSeparatedValue(s, flag string, hasCompare bool) (string, bool) {
	if !hasCompare {
		return "", false
	}
	re, err := compileCached(regexp.QuoteMeta(flag) + `\s+([^\s-][^\s]*)`)
	if err != nil {
		return "", false
	}
	if m := re.FindStringSubmatch(s); len(m) > 1 {
		return m[1], true
	}
	return "", false
}

func (t TestItem) findFlagValue(s string) (bool, string, error) {
	return FindFlagValue(s, t.Flag, t.Compare.Op != "")
}

// FindPathValue reads s as JSON or YAML and evaluates the JSONPath
// expression (Kubernetes' jsonpath, missing keys allowed). A path that
// yields "" is not found.
func FindPathValue(s, path string) (match bool, value string, err error) {
	var doc interface{}
	if err := json.Unmarshal([]byte(s), &doc); err != nil {
		// YAML 1.1 as kube-bench (yaml.v2) and the kubelet (sigs.k8s.io/yaml)
		// read it: "enabled: off" is false.
		doc = nil
		if err := yamlv2.Unmarshal([]byte(s), &doc); err != nil {
			return false, "", fmt.Errorf("failed to load YAML or JSON from input %q: %v", clip(s), err)
		}
	}
	value, err = ExecuteJSONPath(path, doc)
	if err != nil {
		return false, "", fmt.Errorf("unable to parse path expression %q: %v", path, err)
	}
	return value != "", value, nil
}

func (t TestItem) findPathValue(s string) (bool, string, error) {
	return FindPathValue(s, t.Path)
}

// ExecuteJSONPath runs a Kubernetes JSONPath template over doc.
func ExecuteJSONPath(path string, doc interface{}) (out string, err error) {
	defer func() {
		// the template engine is not ours: a panic there is a bad path,
		// not a crash of the run.
		if r := recover(); r != nil {
			out, err = "", fmt.Errorf("jsonpath %q: %v", path, r)
		}
	}()
	j := jsonpath.New("jsonpath")
	j.AllowMissingKeys(true)
	if err := j.Parse(path); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := j.Execute(&buf, doc); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func (t TestItem) findEnvValue(s string) (bool, string) {
	return FindEnvValue(s, t.Env)
}

// FindEnvValue finds NAME=value in env-style output.
func FindEnvValue(s, env string) (bool, string) {
	if s == "" || env == "" {
		return false, ""
	}
	re, err := compileCached(regexp.QuoteMeta(env) + `=.*(?:$|\n)`)
	if err != nil {
		return false, ""
	}
	out := re.FindString(s)
	out = strings.Replace(out, "\n", "", 1)
	out = strings.Replace(out, env+"=", "", 1)
	return out != "", out
}

// CompareOp applies a kube-bench compare operator to a found value: it
// returns the expected-result text and whether the test passed. An unknown
// op returns ("", false); Run reports it as an error before getting here.
func CompareOp(op, flagVal, compareValue, flagName string) (string, bool) {
	pattern := ""
	result := false
	switch op {
	case "eq":
		pattern = "'%s' is equal to '%s'"
		v := strings.ToLower(flagVal)
		if v == "false" || v == "true" {
			result = v == compareValue
		} else {
			result = flagVal == compareValue
		}
	case "noteq":
		pattern = "'%s' is not equal to '%s'"
		v := strings.ToLower(flagVal)
		if v == "false" || v == "true" {
			result = v != compareValue
		} else {
			result = flagVal != compareValue
		}
	case "gt", "gte", "lt", "lte":
		a, b, err := toNumeric(flagVal, compareValue)
		if err != nil {
			return fmt.Sprintf("Invalid Number(s) used for comparison: '%s' '%s'", flagVal, compareValue), false
		}
		switch op {
		case "gt":
			pattern, result = "'%s' is greater than %s", a > b
		case "gte":
			pattern, result = "'%s' is greater or equal to %s", a >= b
		case "lt":
			pattern, result = "'%s' is lower than %s", a < b
		case "lte":
			pattern, result = "'%s' is lower or equal to %s", a <= b
		}
	case "has":
		pattern = "'%s' has '%s'"
		result = strings.Contains(flagVal, compareValue)
	case "nothave":
		pattern = "'%s' does not have '%s'"
		result = !strings.Contains(flagVal, compareValue)
	case "regex":
		pattern = "'%s' matched by regex expression '%s'"
		re, err := compileCached(compareValue)
		if err != nil {
			return fmt.Sprintf("invalid regex %q: %v", compareValue, err), false
		}
		result = re.MatchString(flagVal)
	case "valid_elements":
		pattern = "'%s' contains valid elements from '%s'"
		result = allElementsValid(splitTrim(flagVal, ","), splitTrim(compareValue, ","))
	case "bitmask":
		requested, err := strconv.ParseInt(flagVal, 8, 64)
		if err != nil {
			return fmt.Sprintf("Not numeric value - flag: %s", flagVal), false
		}
		max, err := strconv.ParseInt(compareValue, 8, 64)
		if err != nil {
			return fmt.Sprintf("Not numeric value - flag: %s", compareValue), false
		}
		return fmt.Sprintf("%s has permissions %s, expected %s or more restrictive", flagName, flagVal, compareValue),
			max&requested == requested
	}
	if pattern == "" {
		return "", result
	}
	return fmt.Sprintf(pattern, flagName, compareValue), result
}

func toNumeric(a, b string) (int, int, error) {
	c, err := strconv.Atoi(strings.TrimSpace(a))
	if err != nil {
		return -1, -1, err
	}
	d, err := strconv.Atoi(strings.TrimSpace(b))
	if err != nil {
		return -1, -1, err
	}
	return c, d, nil
}

func splitTrim(s, sep string) []string {
	clean := strings.TrimRight(strings.TrimSpace(s), sep)
	if clean == "" {
		return nil
	}
	parts := strings.Split(clean, sep)
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func allElementsValid(s, t []string) bool {
	if len(s) == 0 && len(t) == 0 {
		return true
	}
	if len(s) == 0 || len(t) == 0 {
		return false
	}
	for _, sv := range s {
		found := false
		for _, tv := range t {
			if sv == tv {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// regexCache keeps the patterns built from definitions: a
// use_multiple_values check evaluates every output line with the same
// patterns.
var regexCache struct {
	sync.Mutex
	m map[string]*regexp.Regexp
}

func compileCached(expr string) (*regexp.Regexp, error) {
	regexCache.Lock()
	re, ok := regexCache.m[expr]
	regexCache.Unlock()
	if ok {
		return re, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	regexCache.Lock()
	if regexCache.m == nil || len(regexCache.m) > 4096 {
		regexCache.m = map[string]*regexp.Regexp{}
	}
	regexCache.m[expr] = re
	regexCache.Unlock()
	return re, nil
}
