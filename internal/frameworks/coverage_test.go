package frameworks

import (
	"testing"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/compliance/kubebench"
	"github.com/vigil-cwpp/vigil/internal/fim"
)

// TestEveryCheckMapped: every check the compliance packages register —
// CIS Debian 12, CIS Docker, and kube-bench's CIS Kubernetes definitions —
// maps to at least one requirement of every framework.
func TestEveryCheckMapped(t *testing.T) {
	c := Default()
	keys := map[string]bool{}
	for _, b := range compliance.Benchmarks() {
		for _, ch := range compliance.Checks(b) {
			r := compliance.Result{Benchmark: b, ID: ch.ID}
			keys[r.Key()] = true
		}
	}
	kb, err := kubebench.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, ctl := range kb.Controls {
		for _, g := range ctl.Groups {
			for _, ch := range g.Checks {
				r := compliance.Result{Benchmark: compliance.BenchKubernetes, ID: ch.ID}
				keys[r.Key()] = true
			}
		}
	}
	per := map[string]int{}
	for k := range keys {
		b, _, _ := cutKey(k)
		per[b]++
		// Beyond the benchmark-wide entry ("cis-docker:*", every check is
		// a configuration setting) each check needs a reviewed, specific one.
		specific := 0
		for _, m := range c.Lookup(k) {
			for _, mk := range m.Match {
				if mk != b+":*" && matches(mk, k) {
					specific++
				}
			}
		}
		if specific == 0 {
			t.Errorf("check %s: only the benchmark-wide mapping covers it; add a section or ID entry", k)
		}
		for _, fw := range Names {
			if len(c.RefsFor(fw, k)) == 0 {
				t.Errorf("check %s: no %s requirement", k, fw)
			}
		}
	}
	t.Logf("checks mapped per benchmark: %v", per)
	// An exact check ID in the mapping must be a registered check: a
	// renumbered benchmark must not leave a mapping silently dead.
	for _, m := range c.Mappings {
		for _, mk := range m.Match {
			b, id, _ := cutKey(mk)
			if per[b] == 0 || id == "" || id[len(id)-1] == '*' {
				continue
			}
			if !keys[mk] {
				t.Errorf("mapping %s: %s is not a registered check", m.ID, mk)
			}
		}
	}
	for _, b := range []string{compliance.BenchLinux, compliance.BenchDocker, compliance.BenchKubernetes} {
		if per[b] == 0 {
			t.Errorf("no %s checks registered: the test would prove nothing", b)
		}
	}
}

func cutKey(k string) (bench, id string, ok bool) {
	for i := 0; i < len(k); i++ {
		if k[i] == ':' {
			return k[:i], k[i+1:], true
		}
	}
	return k, "", false
}

// TestAlertSources holds the alert sources the scoring reads to the
// producers' constants.
func TestAlertSources(t *testing.T) {
	if fim.SourceFIM != "fim" || alertFindingType(&Alert{Source: fim.SourceFIM}) != FindingFIMChange {
		t.Errorf("fim.SourceFIM = %q is not read as a FIM change", fim.SourceFIM)
	}
	if alertFindingType(&Alert{Source: "drift"}) != FindingContainerDrift || alertFindingType(&Alert{Source: "syscall"}) != "" {
		t.Error("alert sources misread")
	}
}
