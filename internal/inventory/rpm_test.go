package inventory_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// TestRPMSqlite builds two real RPM packages with rpmbuild, records them in
// an rpmdb (sqlite, rpm 4.18's default backend) below a root directory with
// rpm itself, and expects the packages `rpm -qa` lists there.
func TestRPMSqlite(t *testing.T) {
	vigiltest.RequireCommand(t, "rpm")
	vigiltest.RequireCommand(t, "rpmbuild")
	top := t.TempDir()
	if err := os.MkdirAll(filepath.Join(top, "SPECS"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ name, version, release string }{{"vigil-alpha", "1.2.3", "4"}, {"vigil-beta", "0.9", "1.el9"}} {
		spec := "Name: " + p.name + "\nVersion: " + p.version + "\nRelease: " + p.release +
			"\nSummary: test package\nLicense: MIT\nBuildArch: noarch\n%description\ntest package\n%files\n"
		path := filepath.Join(top, "SPECS", p.name+".spec")
		if err := os.WriteFile(path, []byte(spec), 0o644); err != nil {
			t.Fatal(err)
		}
		vigiltest.Run(t, top, "rpmbuild", "--define", "_topdir "+top, "-bb", path)
	}
	rpms, _ := filepath.Glob(filepath.Join(top, "RPMS", "noarch", "*.rpm"))
	if len(rpms) != 2 {
		t.Fatalf("rpmbuild made %v", rpms)
	}
	root := t.TempDir()
	rpm := func(args ...string) string {
		return vigiltest.Run(t, "", "rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm"}, args...)...)
	}
	rpm("--initdb")
	cmd := exec.Command("rpm", append([]string{"--root", root, "--dbpath", "/var/lib/rpm", "-i", "--nodeps", "--justdb", "--ignoreos"}, rpms...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rpm -i: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite")); err != nil {
		t.Fatalf("no sqlite rpmdb: %v", err)
	}
	want := strings.Split(strings.TrimSpace(rpm("-qa", "--qf", `%{NAME}\t%{VERSION}-%{RELEASE}\t%{SOURCERPM}\n`)), "\n")

	rep := scan(t, "dir:"+root, nil)
	var got []string
	for _, p := range rep.Packages {
		if p.Type == "rpm" {
			got = append(got, strings.Join([]string{p.Name, p.Version, p.SourceName}, "\t"))
		}
	}
	if diff := cmp.Diff(sorted(want), sorted(got)); diff != "" {
		t.Errorf("rpm packages differ from rpm -qa (-rpm +vigil):\n%s", diff)
	}
}
