package agent

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/vigil-cwpp/vigil/internal/alert"
	"github.com/vigil-cwpp/vigil/internal/drift"
	"github.com/vigil-cwpp/vigil/internal/rules"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestDriftSharedWithRules drops a binary in a running container: `vigil
// drift` (drift.Container) lists it as an added ELF executable, and when it
// runs, the agent's built-in rule "Drop and execute new binary in
// container" fires for that same path — the static and the runtime side of
// container drift agree on what is not from the image.
func TestDriftSharedWithRules(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	rs, err := rules.Default()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgentWith(t, func(a *agentRun, o *Options) {
		a.keepLine = func([]byte) bool { return false }
		o.Detector = NewDetector(Detection{Rules: rs})
	})
	name := uniqueName(t, "drift")
	if out, err := exec.Command("docker", "run", "-d", "--name", name, img, "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })
	const dropped = "/usr/local/bin/dropped"
	if out, err := exec.Command("docker", "exec", name, "cp", "/bin/true", dropped).CombinedOutput(); err != nil {
		t.Fatalf("docker exec cp: %v: %s", err, out)
	}
	c, err := client.New(client.FromEnv)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := drift.Container(context.Background(), c, name)
	if err != nil {
		t.Fatal(err)
	}
	exes := r.Executables()
	if len(exes) != 1 || exes[0].Path != dropped || exes[0].Kind != drift.Added || !exes[0].ELF {
		t.Fatalf("drift executables: %+v (all changes %+v)", exes, r.Changes)
	}
	if out, err := exec.Command("docker", "exec", name, dropped).CombinedOutput(); err != nil {
		t.Fatalf("docker exec %s: %v: %s", dropped, err, out)
	}
	got := a.waitAlert(t, 30*time.Second, "Drop and execute new binary in container", func(al *alert.Alert) bool {
		return al.Rule == "Drop and execute new binary in container" && al.Event.Workload != nil && al.Event.Workload.ContainerName == name
	})
	if got.Event.Process.Exe != dropped || !got.Event.Process.ExeUpper || !strings.Contains(got.Output, dropped) {
		t.Errorf("alert: exe %q upper %v output %q", got.Event.Process.Exe, got.Event.Process.ExeUpper, got.Output)
	}
}
