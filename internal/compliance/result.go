// Package compliance runs configuration benchmarks — CIS Debian Linux 12,
// CIS Docker, and the CIS Kubernetes node checks of kube-bench's
// definitions (internal/compliance/kubebench) — and keeps every run, so a
// later run shows what regressed and what improved. Each result says what
// was actually seen (the evidence) and how to fix a failure. A check that
// cannot be evaluated is an "error" result naming why; it never ends the
// run.
package compliance

import "time"

// Statuses of a result.
const (
	Pass   = "pass"
	Fail   = "fail"
	Warn   = "warn"   // not a clear failure: review it
	Manual = "manual" // cannot be decided automatically
	Error  = "error"  // could not be checked (unreadable file, unknown operator, …)
)

// Benchmark names used in results and in the compliance mapping.
const (
	BenchLinux      = "cis-debian-12"
	BenchDocker     = "cis-docker"
	BenchKubernetes = "cis-kubernetes" // Version says which kube-bench definition, e.g. "cis-1.12"
)

// Result is one check's outcome on one target.
type Result struct {
	Benchmark string `json:"benchmark"`
	// ID is the benchmark's own numbering ("1.1.1.1", "5.4", "4.2.1").
	ID      string `json:"id"`
	Title   string `json:"title"`
	Section string `json:"section,omitempty"`
	// Profile is "Level 1 - Server", "node", … when the benchmark has one.
	Profile string `json:"profile,omitempty"`
	Scored  bool   `json:"scored"`
	Status  string `json:"status"`
	// Target is what was checked: the host name, or a container's name
	// and ID for per-container checks.
	Target string `json:"target,omitempty"`
	// Evidence is what was actually seen ("PermitRootLogin yes in
	// /etc/ssh/sshd_config:32", "mode 0644 uid 0").
	Evidence    string `json:"evidence,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	// Error says why the check could not be evaluated (Status Error).
	Error string `json:"error,omitempty"`
}

// Key is how the compliance mapping names a check: "cis-docker:5.4".
func (r *Result) Key() string { return r.Benchmark + ":" + r.ID }

// Report is one run of one benchmark.
type Report struct {
	Benchmark string    `json:"benchmark"`
	Version   string    `json:"version,omitempty"`
	Host      string    `json:"host"`
	Time      time.Time `json:"time"`
	Results   []Result  `json:"results"`
	Summary   Summary   `json:"summary"`
}

// Summary counts results by status.
type Summary struct {
	Pass   int `json:"pass"`
	Fail   int `json:"fail"`
	Warn   int `json:"warn"`
	Manual int `json:"manual"`
	Error  int `json:"error"`
}
