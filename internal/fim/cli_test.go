package fim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/cli"
	"github.com/vigil-cwpp/vigil/internal/fim"
)

// TestCLIExitCodes runs vigil fim init/check/update and checks AIDE's exit
// codes: the 1|2|4 bitmask, 14 for errors, 16 for a tampered baseline.
func TestCLIExitCodes(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "tree")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keep", "k")
	write("gone", "g")
	write("edit", "e")
	conf := filepath.Join(dir, "fim.yaml")
	if err := os.WriteFile(conf, []byte("watch:\n  - {path: "+root+", attrs: p+s+sha256}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, key := filepath.Join(dir, "fim.db"), filepath.Join(dir, "fim.key")
	vigil := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"fim"}, append(args, "-c", conf, "--db", db, "--key", key)...), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, _, stderr := vigil("check"); code != fim.ExitError || !strings.Contains(stderr, "fim.key") {
		t.Errorf("check without a baseline: %d %q, want 14", code, stderr)
	}
	if code, _, stderr := vigil("init"); code != 0 {
		t.Fatalf("init: %d %s", code, stderr)
	}
	if code, out, _ := vigil("check"); code != 0 || !strings.HasPrefix(out, "0 added, 0 removed, 0 changed") {
		t.Errorf("clean check: %d %q", code, out)
	}
	write("new", "n")
	if code, _, _ := vigil("check"); code != fim.ExitAdded {
		t.Errorf("added: exit %d, want 1", code)
	}
	if err := os.Remove(filepath.Join(root, "gone")); err != nil {
		t.Fatal(err)
	}
	write("edit", "edited")
	code, out, _ := vigil("check", "--format", "json")
	if code != 7 {
		t.Errorf("added+removed+changed: exit %d, want 7", code)
	}
	var rep fim.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Summary.Changed != 1 || len(rep.Changed) != 1 || rep.Changed[0].Path != filepath.Join(root, "edit") || len(rep.Changed[0].Changes) != 2 {
		t.Errorf("json report: %v %+v", err, rep)
	}
	if code, _, _ := vigil("check", "--bogus"); code != fim.ExitError {
		t.Errorf("bad flag: exit %d, want 14", code)
	}
	if code, _, _ := vigil("update"); code != 7 {
		t.Errorf("update: exit %d, want 7 (the changes it accepted)", code)
	}
	if code, _, _ := vigil("check"); code != 0 {
		t.Errorf("check after update: exit %d", code)
	}
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(db, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := vigil("check"); code != fim.ExitTampered || !strings.Contains(stderr, "tampered") {
		t.Errorf("tampered: exit %d %q, want 16", code, stderr)
	}
	if code, _, _ := vigil("update"); code != fim.ExitTampered {
		t.Errorf("update of a tampered baseline: exit %d, want 16", code)
	}
	if err := os.WriteFile(conf, []byte("watch:\n  - {path: "+root+", attrs: p+sha384}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := vigil("check"); code != fim.ExitError || !strings.Contains(stderr, "fim.yaml:2") || !strings.Contains(stderr, `"sha384"`) {
		t.Errorf("unknown attribute: exit %d %q", code, stderr)
	}
}
