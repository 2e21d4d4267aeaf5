package fim

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// aideConf is one configuration both AIDE and vigil read (vigil reads the
// aide.conf subset): the same attributes for the same tree.
func aideConf(dir, root string) string {
	return `database_in=file:` + dir + `/aide.db
database_out=file:` + dir + `/aide.db.new
report_format=json
report_url=stdout
G = p+ftype+i+l+n+u+g+s+m+c+sha256+acl+xattrs+caps
LOGS = p+ftype+l+u+g+i+n+s+growing+sha256+acl+xattrs+caps
` + root + ` G
` + root + `/logs LOGS
!` + root + `/excluded
`
}

type aideReport struct {
	Added   map[string]string `json:"added"`
	Removed map[string]string `json:"removed"`
	Changed map[string]string `json:"changed"`
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSameFindingsAsAIDE runs AIDE and vigil on the same tree with the same
// configuration, makes every kind of change, and requires identical sets
// of added, removed and changed paths.
func TestSameFindingsAsAIDE(t *testing.T) {
	vigiltest.RequireRoot(t)
	aide := vigiltest.RequireCommand(t, "aide")
	vigiltest.RequireCommand(t, "setfacl")
	vigiltest.RequireCommand(t, "setcap")
	vigiltest.RequireCommand(t, "setfattr")
	root := standardTree(t)
	dir := t.TempDir()
	confPath := filepath.Join(dir, "aide.conf")
	must(t, os.WriteFile(confPath, []byte(aideConf(dir, root)), 0o644))
	cfg, err := LoadConfig(confPath)
	must(t, err)
	o := Options{Config: cfg, Database: filepath.Join(dir, "vigil.db"), Key: filepath.Join(dir, "vigil.key")}
	ctx := context.Background()

	if out, err := exec.Command(aide, "--init", "-c", confPath).CombinedOutput(); err != nil {
		t.Fatalf("aide --init: %v\n%s", err, out)
	}
	must(t, os.Rename(filepath.Join(dir, "aide.db.new"), filepath.Join(dir, "aide.db")))
	_, err = Init(ctx, o, false)
	must(t, err)
	// AIDE keeps times in seconds: change things in a later second than
	// the tree was made in, or AIDE cannot see a directory's new mtime.
	// The filesystem's clock is coarse (it may lag time.Now by a tick), so
	// wait on the filesystem's own timestamps.
	probe := filepath.Join(dir, "probe")
	fsNow := func() int64 {
		must(t, os.WriteFile(probe, nil, 0o644))
		fi, err := os.Stat(probe)
		must(t, err)
		return fi.ModTime().Unix()
	}
	first, deadline := fsNow(), time.Now().Add(3*time.Second)
	for fsNow() <= first && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	applyChanges(t, root)

	out, err := exec.Command(aide, "--check", "-c", confPath).Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var ar aideReport
	if err := json.Unmarshal(out, &ar); err != nil {
		t.Fatalf("aide --check output: %v\n%s", err, out)
	}
	rep, err := Check(ctx, o)
	must(t, err)
	var vAdded, vRemoved, vChanged []string
	for _, b := range rep.Added {
		vAdded = append(vAdded, b.Path)
	}
	for _, b := range rep.Removed {
		vRemoved = append(vRemoved, b.Path)
	}
	for _, c := range rep.Changed {
		vChanged = append(vChanged, c.Path)
	}
	for _, c := range []struct {
		what        string
		aide, vigil []string
	}{{"added", keys(ar.Added), vAdded}, {"removed", keys(ar.Removed), vRemoved}, {"changed", keys(ar.Changed), vChanged}} {
		if !slices.Equal(c.aide, c.vigil) {
			t.Errorf("%s: aide %v\nvigil %v", c.what, strip(root, c.aide), strip(root, c.vigil))
		}
	}
	if code != rep.ExitCode() {
		t.Errorf("exit code: aide %d, vigil %d", code, rep.ExitCode())
	}
	if len(vChanged) < 10 {
		t.Errorf("only %d changes seen: %v", len(vChanged), vChanged)
	}
}

func strip(root string, ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = strings.TrimPrefix(p, root)
	}
	return out
}
