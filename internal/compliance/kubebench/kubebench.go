// Package kubebench evaluates kube-bench's CIS Kubernetes Benchmark
// definitions (config.yaml + cis-<version>/<target>.yaml, shipped
// unmodified and embedded under cfg/) the way kube-bench does: it finds the
// running Kubernetes binaries and their configuration files, substitutes
// $kubeletbin, $kubeletconf, … into the audit commands, runs each audit
// with /bin/sh, and judges the output with the definitions' test_items
// (flag / path / env, set, compare op, bin_op). Results are
// compliance.Result values with benchmark "cis-kubernetes".
package kubebench

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-cwpp/vigil/internal/compliance"
)

//go:embed cfg/config.yaml cfg/cis-1.12/*.yaml
var embedded embed.FS

// DefaultVersion is the definition used when no version is asked for and
// the configuration's version_mapping names nothing newer.
const DefaultVersion = "cis-1.12"

// AllTargets are kube-bench's targets, in kube-bench's order.
var AllTargets = []string{"master", "node", "controlplane", "etcd", "policies"}

// Benchmark is one loaded kube-bench definition (e.g. cis-1.12) with the
// top-level component configuration.
type Benchmark struct {
	// Version is the definition folder name, e.g. "cis-1.12".
	Version string
	// Controls holds the parsed controls file of each target the
	// definition has ("master", "node", …).
	Controls map[string]*Controls
	// Config is config.yaml merged with the definition's own config.yaml.
	Config *Config
}

// Config is kube-bench's config.yaml: component definitions per target,
// the Kubernetes-version to definition mapping and the targets each
// definition has.
type Config struct {
	// Targets maps "master", "node", "etcd", "controlplane", "policies"
	// to their component definitions.
	Targets       map[string]*TargetConfig
	VersionMap    map[string]string
	TargetMapping map[string][]string
}

// TargetConfig lists a target's components.
type TargetConfig struct {
	Components []string
	Component  map[string]*Component
}

// Component is one component's candidate binaries and files. Each list is
// searched in order; the first running binary / existing file wins, and the
// default (if any) is used when none is found.
type Component struct {
	Optional          bool
	Bins              []string
	Confs             []string
	DefaultConf       string
	Svc               []string
	DefaultSvc        string
	Kubeconfig        []string
	DefaultKubeconfig string
	CAFile            []string
	DefaultCAFile     string
	DataDirs          []string
	DefaultDataDir    string
}

// Runner runs one audit script with /bin/sh and returns its combined
// stdout and stderr. A non-zero exit is an error whose text contains
// "exit status N", as kube-bench reports it.
type Runner func(ctx context.Context, script string) (string, error)

// ProcessLister returns the command lines (arguments joined by spaces) of
// the running processes.
type ProcessLister func() ([]string, error)

// Options control a run.
type Options struct {
	// Targets to evaluate: master, node, controlplane, etcd, policies.
	// Empty: "node", plus master, controlplane and policies when an API
	// server runs, plus etcd when etcd runs.
	Targets []string
	// Root prefixes the candidate file paths when looking for a
	// component's files, and the substituted paths ("/host" when the host
	// is mounted there). Empty means "/".
	Root string
	// Substitutions override discovered values: "kubeletconf" →
	// "/tmp/x/config.yaml" replaces $kubeletconf.
	Substitutions map[string]string
	// Runner runs audit commands; nil: ShellRunner.
	Runner Runner
	// Processes lists running processes; nil: ProcProcesses (/proc).
	Processes ProcessLister
	// Timeout bounds each audit command; 0: 30 s.
	Timeout time.Duration
	// Checks, when set, limits the run to these check IDs ("4.2.1").
	Checks []string
	// Target is copied into every result's Target (e.g. the host name).
	Target string
	// Warnf receives notes: components not running, files not found.
	Warnf func(format string, args ...any)
}

// Default loads the embedded definitions at the newest mapped version
// (cis-1.12).
func Default() (*Benchmark, error) { return DefaultFor("") }

// DefaultFor loads the embedded definitions for a definition name or a
// Kubernetes version ("1.33", "v1.34.2"); see Load.
func DefaultFor(version string) (*Benchmark, error) {
	sub, err := fs.Sub(embedded, "cfg")
	if err != nil {
		return nil, err
	}
	return LoadFS(sub, version)
}

var gitVersionRe = regexp.MustCompile(`v(\d+)\.(\d+)\.\d+`)

// DetectVersion asks the running kubelet (else kube-apiserver) for its
// version ("<binary> --version" → "Kubernetes v1.34.2") and returns
// "1.34". It is an error when neither runs or the answer has no version.
func DetectVersion(ctx context.Context, opts Options) (string, error) {
	lister := opts.Processes
	if lister == nil {
		lister = ProcProcesses
	}
	procs, err := lister()
	if err != nil {
		return "", fmt.Errorf("kube-bench: listing processes: %w", err)
	}
	runner := opts.Runner
	if runner == nil {
		runner = ShellRunner
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	for _, name := range []string{"kubelet", "kube-apiserver"} {
		for _, p := range procs {
			f := strings.Fields(p)
			if len(f) == 0 || path.Base(f[0]) != name {
				continue
			}
			ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
			out, err := runner(ctx, shellQuote(f[0])+" --version")
			cancel()
			if m := gitVersionRe.FindStringSubmatch(out); m != nil {
				return m[1] + "." + m[2], nil
			}
			return "", fmt.Errorf("kube-bench: %s --version said %q (%v)", f[0], strings.TrimSpace(out), err)
		}
	}
	return "", errors.New("kube-bench: cannot detect the Kubernetes version: neither kubelet nor kube-apiserver is running")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Load reads a kube-bench cfg folder (config.yaml and cis-<v>/*.yaml).
// version is a definition name ("cis-1.12"), a Kubernetes version ("1.33",
// "v1.33.2") mapped through version_mapping, or "" for the newest
// Kubernetes version the mapping names whose folder exists.
func Load(cfgDir, version string) (*Benchmark, error) {
	return LoadFS(os.DirFS(cfgDir), version)
}

// LoadFS is Load on a file system whose root is the cfg folder.
func LoadFS(fsys fs.FS, version string) (*Benchmark, error) {
	raw, err := fs.ReadFile(fsys, "config.yaml")
	if err != nil {
		return nil, fmt.Errorf("kube-bench config: %w", err)
	}
	cfg, err := parseConfig(raw, "config.yaml")
	if err != nil {
		return nil, err
	}
	ver, err := resolveVersion(fsys, cfg, version)
	if err != nil {
		return nil, err
	}
	if over, err := fs.ReadFile(fsys, path.Join(ver, "config.yaml")); err == nil {
		if err := mergeConfig(cfg, over, path.Join(ver, "config.yaml")); err != nil {
			return nil, err
		}
	}
	b := &Benchmark{Version: ver, Controls: map[string]*Controls{}, Config: cfg}
	targets := cfg.TargetMapping[ver]
	if len(targets) == 0 {
		targets = AllTargets
	}
	for _, t := range targets {
		name := path.Join(ver, t+".yaml")
		data, err := fs.ReadFile(fsys, name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("kube-bench %s: %w", name, err)
		}
		c, err := ParseControls(data, name)
		if err != nil {
			return nil, err
		}
		b.Controls[t] = c
	}
	if len(b.Controls) == 0 {
		return nil, fmt.Errorf("kube-bench %s: no controls files (%s)", ver, strings.Join(targets, ", "))
	}
	return b, nil
}

var kubeVersionRe = regexp.MustCompile(`^v?(\d+)\.(\d+)(?:\..*)?$`)

func resolveVersion(fsys fs.FS, cfg *Config, version string) (string, error) {
	exists := func(v string) bool {
		st, err := fs.Stat(fsys, v)
		return err == nil && st.IsDir()
	}
	if version == "" {
		best, bestMinor := "", -1
		for k, v := range cfg.VersionMap {
			m := kubeVersionRe.FindStringSubmatch(k)
			if m == nil || m[1] != "1" || !exists(v) {
				continue
			}
			var minor int
			fmt.Sscanf(m[2], "%d", &minor)
			if minor > bestMinor {
				best, bestMinor = v, minor
			}
		}
		if best == "" {
			if exists(DefaultVersion) {
				return DefaultVersion, nil
			}
			return "", fmt.Errorf("kube-bench config: no definition folder for any Kubernetes version in version_mapping")
		}
		return best, nil
	}
	if m := kubeVersionRe.FindStringSubmatch(version); m != nil {
		key := m[1] + "." + m[2]
		v, ok := cfg.VersionMap[key]
		if !ok {
			return "", fmt.Errorf("kube-bench: Kubernetes version %q is not in version_mapping", version)
		}
		if !exists(v) {
			return "", fmt.Errorf("kube-bench: Kubernetes %s maps to %s, which is not shipped", key, v)
		}
		return v, nil
	}
	if !exists(version) {
		return "", fmt.Errorf("kube-bench: no definition %q", version)
	}
	return version, nil
}

// --- config.yaml ---------------------------------------------------------

func parseConfig(data []byte, name string) (*Config, error) {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("kube-bench %s: %w", name, err)
	}
	cfg := &Config{Targets: map[string]*TargetConfig{}, VersionMap: map[string]string{}, TargetMapping: map[string][]string{}}
	if err := applyConfig(cfg, doc, name); err != nil {
		return nil, err
	}
	return cfg, nil
}

func mergeConfig(cfg *Config, data []byte, name string) error {
	var doc map[string]yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("kube-bench %s: %w", name, err)
	}
	return applyConfig(cfg, doc, name)
}

type rawComponent struct {
	Optional          bool       `yaml:"optional"`
	Bins              stringList `yaml:"bins"`
	Confs             stringList `yaml:"confs"`
	DefaultConf       string     `yaml:"defaultconf"`
	Svc               stringList `yaml:"svc"`
	DefaultSvc        string     `yaml:"defaultsvc"`
	Kubeconfig        stringList `yaml:"kubeconfig"`
	DefaultKubeconfig string     `yaml:"defaultkubeconfig"`
	CAFile            stringList `yaml:"cafile"`
	DefaultCAFile     string     `yaml:"defaultcafile"`
	DataDirs          stringList `yaml:"datadirs"`
	DefaultDataDir    string     `yaml:"defaultdatadir"`
}

// stringList accepts a YAML list or a single string.
type stringList []string

func (s *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*s = []string{n.Value}
		return nil
	}
	var l []string
	if err := n.Decode(&l); err != nil {
		return err
	}
	*s = l
	return nil
}

// applyConfig overlays doc on cfg, key by key, like viper's MergeConfig.
func applyConfig(cfg *Config, doc map[string]yaml.Node, name string) error {
	for key, node := range doc {
		switch key {
		case "version_mapping":
			var m map[string]string
			if err := node.Decode(&m); err != nil {
				return fmt.Errorf("kube-bench %s: version_mapping: %w", name, err)
			}
			for k, v := range m {
				cfg.VersionMap[k] = v
			}
		case "target_mapping":
			var m map[string][]string
			if err := node.Decode(&m); err != nil {
				return fmt.Errorf("kube-bench %s: target_mapping: %w", name, err)
			}
			for k, v := range m {
				cfg.TargetMapping[k] = v
			}
		default:
			if node.Kind != yaml.MappingNode {
				continue // e.g. masterControls: a path kube-bench's CLI reads
			}
			var tm map[string]yaml.Node
			if err := node.Decode(&tm); err != nil {
				return fmt.Errorf("kube-bench %s: %s: %w", name, key, err)
			}
			tc := cfg.Targets[key]
			if tc == nil {
				tc = &TargetConfig{Component: map[string]*Component{}}
				cfg.Targets[key] = tc
			}
			for ck, cn := range tm {
				if ck == "components" {
					var l []string
					if err := cn.Decode(&l); err != nil {
						return fmt.Errorf("kube-bench %s: %s.components: %w", name, key, err)
					}
					tc.Components = l
					continue
				}
				if cn.Kind != yaml.MappingNode {
					continue
				}
				var rc rawComponent
				if err := cn.Decode(&rc); err != nil {
					return fmt.Errorf("kube-bench %s: %s.%s: %w", name, key, ck, err)
				}
				tc.Component[ck] = &Component{
					Optional: rc.Optional, Bins: rc.Bins,
					Confs: rc.Confs, DefaultConf: rc.DefaultConf,
					Svc: rc.Svc, DefaultSvc: rc.DefaultSvc,
					Kubeconfig: rc.Kubeconfig, DefaultKubeconfig: rc.DefaultKubeconfig,
					CAFile: rc.CAFile, DefaultCAFile: rc.DefaultCAFile,
					DataDirs: rc.DataDirs, DefaultDataDir: rc.DefaultDataDir,
				}
			}
		}
	}
	return nil
}

// --- discovery and substitution ------------------------------------------

// Substitutions computes, for one target, the values kube-bench puts in
// place of $<component><kind> (kinds: bin, conf, svc, kubeconfig, cafile,
// datadir), following kube-bench's cmd/util.go:
//   - bin: the first of the component's bins that is running (the first
//     word is the process name; the whole string must start the command
//     line, after an optional directory). When none runs, the component
//     name itself (kube-bench aborts the run for a non-optional component;
//     Vigil goes on, reports it through Warnf, and the audits that look for
//     the process then fail).
//   - files: the first candidate that exists (under Root), else the
//     default<kind>, else the component name.
//
// Options.Substitutions override the result. Multi-word values are
// single-quoted, as kube-bench does.
func (b *Benchmark) Substitutions(target string, opts Options) (map[string]string, error) {
	tc := b.Config.Targets[target]
	subs := map[string]string{}
	if tc == nil {
		return applyOverrides(subs, opts), nil
	}
	var procs []string
	procsLoaded := false
	var procErr error
	for _, name := range tc.Components {
		c := tc.Component[name]
		if c == nil {
			continue
		}
		if len(c.Bins) > 0 {
			if !procsLoaded {
				lister := opts.Processes
				if lister == nil {
					lister = ProcProcesses
				}
				procs, procErr = lister()
				procsLoaded = true
				if procErr != nil {
					return nil, fmt.Errorf("kube-bench: listing processes: %w", procErr)
				}
			}
			bin := FindExecutable(c.Bins, procs)
			if bin == "" {
				bin = name
				if !c.Optional {
					warnf(opts, "component %s (%s) is not running: $%sbin is %q", name, target, name, name)
				}
			}
			subs[name+"bin"] = bin
		}
		files := []struct {
			kind      string
			cands     []string
			def       string
			substKind string
		}{
			{"config", c.Confs, c.DefaultConf, "conf"},
			{"service", c.Svc, c.DefaultSvc, "svc"},
			{"kubeconfig", c.Kubeconfig, c.DefaultKubeconfig, "kubeconfig"},
			{"ca", c.CAFile, c.DefaultCAFile, "cafile"},
			{"datadir", c.DataDirs, c.DefaultDataDir, "datadir"},
		}
		for _, f := range files {
			file := findFile(opts.Root, f.cands)
			switch {
			case file != "":
			case f.def != "":
				file = rooted(opts.Root, f.def)
			default:
				file = name
			}
			subs[name+f.substKind] = file
		}
	}
	return applyOverrides(subs, opts), nil
}

func applyOverrides(subs map[string]string, opts Options) map[string]string {
	for k, v := range opts.Substitutions {
		subs[strings.TrimPrefix(k, "$")] = v
	}
	return subs
}

func warnf(opts Options, format string, args ...any) {
	if opts.Warnf != nil {
		opts.Warnf(format, args...)
	}
}

func rooted(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

func findFile(root string, cands []string) string {
	for _, c := range cands {
		p := rooted(root, c)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// FindExecutable returns the first candidate ("kubelet", "hyperkube
// kubelet") that one of the command lines runs, or "". As kube-bench's
// verifyBin: the process name (the base name of the first argument) must
// be the candidate's first word, and the command line must start with the
// whole candidate, after an optional directory.
func FindExecutable(candidates, cmdlines []string) string {
	for _, c := range candidates {
		bin := strings.Trim(c, `'"`)
		words := strings.Fields(bin)
		if len(words) == 0 {
			continue
		}
		re, err := regexp.Compile(`^(\S*/)*` + regexp.QuoteMeta(bin) + `(\s|$)`)
		if err != nil {
			continue
		}
		for _, l := range cmdlines {
			f := strings.Fields(l)
			if len(f) == 0 || path.Base(f[0]) != words[0] {
				continue
			}
			if re.MatchString(l) {
				return c
			}
		}
	}
	return ""
}

// ProcProcesses reads /proc/*/cmdline.
func ProcProcesses() ([]string, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue // exited, or a kernel thread
		}
		out = append(out, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " ")))
	}
	return out, nil
}

// substitute replaces every $<key> in s. Longer keys go first so that
// "$kubeletkubeconfig" is never cut by a shorter key.
func substitute(s string, subs map[string]string, keys []string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	for _, k := range keys {
		v := subs[k]
		if v == "" {
			continue
		}
		if len(strings.Fields(v)) > 1 {
			v = "'" + v + "'"
		}
		s = strings.ReplaceAll(s, "$"+k, v)
	}
	return s
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if len(keys[i]) != len(keys[j]) {
			return len(keys[i]) > len(keys[j])
		}
		return keys[i] < keys[j]
	})
	return keys
}

// --- running -------------------------------------------------------------

// Targets returns the targets the definition has, in kube-bench's order.
func (b *Benchmark) Targets() []string {
	var out []string
	for _, t := range AllTargets {
		if b.Controls[t] != nil {
			out = append(out, t)
		}
	}
	return out
}

func (b *Benchmark) autoTargets(opts Options) []string {
	out := []string{"node"}
	lister := opts.Processes
	if lister == nil {
		lister = ProcProcesses
	}
	procs, _ := lister()
	if cp := b.Config.Targets["controlplane"]; cp != nil {
		if c := cp.Component["apiserver"]; c != nil && FindExecutable(c.Bins, procs) != "" {
			out = append(out, "master", "controlplane", "policies")
		}
	}
	if et := b.Config.Targets["etcd"]; et != nil {
		if c := et.Component["etcd"]; c != nil && FindExecutable(c.Bins, procs) != "" {
			out = append(out, "etcd")
		}
	}
	var have []string
	for _, t := range out {
		if b.Controls[t] != nil {
			have = append(have, t)
		}
	}
	return have
}

// Run evaluates the checks of the chosen targets. A check that cannot be
// evaluated (unknown compare op or bin_op, bad regex) is a result with
// Status error naming why; the other checks go on. Run returns an error
// only for an unknown target, a process listing that fails, or a cancelled
// context.
func (b *Benchmark) Run(ctx context.Context, opts Options) ([]compliance.Result, error) {
	targets := opts.Targets
	if len(targets) == 0 {
		targets = b.autoTargets(opts)
	}
	if opts.Runner == nil {
		opts.Runner = ShellRunner
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	want := map[string]bool{}
	for _, id := range opts.Checks {
		want[id] = true
	}
	var results []compliance.Result
	for _, t := range targets {
		ctrl := b.Controls[t]
		if ctrl == nil {
			return results, fmt.Errorf("kube-bench %s: no target %q (have %s)", b.Version, t, strings.Join(b.Targets(), ", "))
		}
		subs, err := b.Substitutions(t, opts)
		if err != nil {
			return results, err
		}
		keys := sortedKeys(subs)
		for _, g := range ctrl.Groups {
			for _, c := range g.Checks {
				if len(want) > 0 && !want[c.ID] {
					continue
				}
				if err := ctx.Err(); err != nil {
					return results, err
				}
				sc := c.substituted(subs, keys)
				if g.Type == "skip" {
					sc.Type = "skip"
				}
				res := sc.run(ctx, opts)
				results = append(results, compliance.Result{
					Benchmark:   compliance.BenchKubernetes,
					ID:          c.ID,
					Title:       c.Text,
					Section:     strings.TrimSpace(g.ID + " " + g.Text),
					Profile:     ctrl.Type,
					Scored:      c.Scored,
					Status:      res.status,
					Target:      opts.Target,
					Evidence:    res.evidence,
					Remediation: strings.TrimSpace(sc.Remediation),
					Error:       res.err,
				})
			}
		}
	}
	return results, nil
}
