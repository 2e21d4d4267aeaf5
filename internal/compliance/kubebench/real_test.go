package kubebench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// Nothing injected: a real process named "kubelet" (a copy of bash
// waiting on its stdin) runs with bad flags; discovery reads /proc, the
// audits run the real /bin/sh and /bin/ps -fC kubelet, and the node checks
// judge the real command line and a config file.
func TestRealKubeletProcess(t *testing.T) {
	vigiltest.RequireCommand(t, "ps")
	bash := vigiltest.RequireCommand(t, "bash")
	if out, err := exec.Command("/bin/ps", "-C", "kubelet", "-o", "pid=").Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
		t.Skipf("a kubelet already runs here (%s): its flags would mix with the fixture's", strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "kubelet")
	data, err := os.ReadFile(bash)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, dir, "config.yaml", "kubelet-good.yaml", 0o600)
	cmd := exec.Command(bin, "-c", "read line", "kubelet", "--config="+conf,
		"--anonymous-auth=true", "--read-only-port=10255", "--hostname-override=evil")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	})
	// wait until /proc shows the process under its name
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs, _ := ProcProcesses()
		if FindExecutable([]string{"kubelet"}, procs) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fixture kubelet never appeared in /proc")
		}
		time.Sleep(20 * time.Millisecond)
	}

	b := defaultBench(t)
	var notes []string
	res, err := b.Run(context.Background(), Options{
		Targets:       []string{"node"},
		Checks:        []string{"4.2.1", "4.2.2", "4.2.4", "4.2.7", "4.1.9"},
		Substitutions: map[string]string{"kubeletconf": conf},
		Warnf:         func(f string, a ...any) { notes = append(notes, fmt.Sprintf(f, a...)) },
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		if strings.Contains(n, "kubelet") {
			t.Errorf("the running kubelet was not discovered: %s", n)
		}
	}
	want := map[string]string{
		"4.2.1": compliance.Fail, // --anonymous-auth=true on the command line beats the good config
		"4.2.2": compliance.Pass, // not on the command line: the config's Webhook
		"4.2.4": compliance.Warn, // --read-only-port=10255, not scored
		"4.2.7": compliance.Warn, // --hostname-override set, not scored
		"4.1.9": compliance.Pass, // the config file is 600
	}
	for _, r := range res {
		if r.Status != want[r.ID] {
			t.Errorf("%s: %s, want %s\n%s", r.ID, r.Status, want[r.ID], r.Evidence)
		}
		delete(want, r.ID)
	}
	if len(want) > 0 {
		t.Errorf("no result for %v", want)
	}
	for _, r := range res {
		if r.ID == "4.2.1" && !strings.Contains(r.Evidence, "--anonymous-auth=true") {
			t.Errorf("4.2.1 evidence lacks the real ps line:\n%s", r.Evidence)
		}
	}
}
