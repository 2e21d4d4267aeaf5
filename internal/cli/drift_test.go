package cli

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/drift"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestDriftCommand runs `vigil drift` on a real container before and after
// dropping an executable in it: exit 0 and no changes, then exit 1 with the
// file in the table and in the JSON; an unknown container is exit 2.
func TestDriftCommand(t *testing.T) {
	vigiltest.RequireRoot(t)
	img := vigiltest.RequireBookwormImage(t)
	name := fmt.Sprintf("vigil-cli-drift-%d", time.Now().UnixNano())
	if out, err := exec.Command("docker", "run", "-d", "--name", name, img, "sleep", "600").CombinedOutput(); err != nil {
		t.Fatalf("docker run: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rm", "-f", name).Run() })

	code, out, stderr := run(t, "drift", name)
	if code != ExitClean || !strings.Contains(out, "0 changes") {
		t.Fatalf("untouched container: exit %d\n%s%s", code, out, stderr)
	}
	if out, err := exec.Command("docker", "exec", name, "cp", "/bin/true", "/usr/local/bin/dropper").CombinedOutput(); err != nil {
		t.Fatalf("docker exec: %v: %s", err, out)
	}
	code, out, stderr = run(t, "drift", name)
	if code != ExitPolicy || !strings.Contains(out, "/usr/local/bin/dropper") || !strings.Contains(out, "elf") {
		t.Fatalf("after the drop: exit %d\n%s%s", code, out, stderr)
	}
	code, out, _ = run(t, "drift", "-f", "json", name)
	var reps []drift.Report
	if err := json.Unmarshal([]byte(out), &reps); err != nil || code != ExitPolicy {
		t.Fatalf("json: exit %d, %v\n%s", code, err, out)
	}
	if len(reps) != 1 || len(reps[0].Executables()) != 1 || reps[0].Executables()[0].Path != "/usr/local/bin/dropper" {
		t.Errorf("json reports: %+v", reps)
	}
	code, _, stderr = run(t, "drift", "vigil-no-such-container-x")
	if code != ExitError || !strings.Contains(stderr, "vigil-no-such-container-x") {
		t.Errorf("unknown container: exit %d, %s", code, stderr)
	}
	if code, _, stderr = run(t, "drift", "-f", "xml", name); code != ExitError || !strings.Contains(stderr, "xml") {
		t.Errorf("bad format: exit %d, %s", code, stderr)
	}
}
