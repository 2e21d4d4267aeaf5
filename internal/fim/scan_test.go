package fim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// tree makes files under a fresh directory: name → content; names ending
// in "/" are directories.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(root, n)
		if strings.HasSuffix(n, "/") {
			must(t, os.MkdirAll(p, 0o755))
			continue
		}
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		must(t, os.WriteFile(p, []byte(files[n]), 0o644))
	}
	return root
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

func testConfig(t *testing.T, root, extra string) *Config {
	t.Helper()
	c, err := ParseConfig([]byte("watch:\n  - {path: "+root+", attrs: NORMAL}\n  - {path: "+root+"/logs, attrs: \">+sha256\"}\nexclude:\n  - \"re:/excluded(/|$)\"\n"+extra), "test.yaml")
	must(t, err)
	return c
}

func testOptions(t *testing.T, c *Config) Options {
	dir := t.TempDir()
	return Options{Config: c, Database: filepath.Join(dir, "fim.db"), Key: filepath.Join(dir, "fim.key")}
}

// changeSet is added, removed and changed paths relative to root, changed
// ones with their attribute names.
func changeSet(root string, r *Report) (added, removed []string, changed map[string][]string) {
	rel := func(p string) string {
		if p == root {
			return "."
		}
		return strings.TrimPrefix(p, root+"/")
	}
	for _, b := range r.Added {
		added = append(added, rel(b.Path))
	}
	for _, b := range r.Removed {
		removed = append(removed, rel(b.Path))
	}
	changed = map[string][]string{}
	for _, c := range r.Changed {
		for _, a := range c.Changes {
			changed[rel(c.Path)] = append(changed[rel(c.Path)], a.Attr)
		}
	}
	return
}

func findChange(r *Report, path, attr string) (AttrChange, bool) {
	for _, c := range r.Changed {
		if c.Path == path {
			for _, a := range c.Changes {
				if a.Attr == attr {
					return a, true
				}
			}
		}
	}
	return AttrChange{}, false
}

// applyChanges makes one change of each kind under root (made by
// standardTree); tests run it between init and check.
func applyChanges(t *testing.T, root string) {
	t.Helper()
	p := func(n string) string { return filepath.Join(root, n) }
	must(t, os.WriteFile(p("created.txt"), []byte("new"), 0o644))
	must(t, os.WriteFile(p("modify.txt"), []byte("modified content"), 0o644))
	must(t, os.Chmod(p("chmod.txt"), 0o600))
	must(t, os.Chown(p("chown.txt"), 1234, 5678))
	must(t, os.Rename(p("sub/rename-from.txt"), p("sub/rename-to.txt")))
	must(t, os.Remove(p("delete.txt")))
	run(t, "setfattr", "-n", "user.vigil", "-v", "changed", p("xattr.txt"))
	run(t, "setfacl", "-m", "u:1234:r", p("acl.txt"))
	run(t, "setcap", "cap_net_raw=ep", p("cap.bin"))
	must(t, os.Remove(p("bin/tool")))
	must(t, os.Symlink("/bin/true", p("bin/tool")))
	must(t, os.Link(p("hard.txt"), p("excluded/hard-link")))
	f, err := os.OpenFile(p("logs/app.log"), os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteString("line 2\n")
	must(t, err)
	must(t, f.Close())
	must(t, os.WriteFile(p("logs/rotated.log"), []byte("x"), 0o644))
}

func standardTree(t *testing.T) string {
	t.Helper()
	root := tree(t, map[string]string{
		"modify.txt": "original", "chmod.txt": "c", "chown.txt": "o", "sub/rename-from.txt": "r",
		"delete.txt": "d", "xattr.txt": "x", "acl.txt": "a", "cap.bin": "\x7fELF", "bin/tool": "\x7fELF tool binary",
		"hard.txt": "h", "excluded/": "", "logs/app.log": "line 1\n", "logs/rotated.log": "many lines\n",
		"same.txt": "unchanged",
	})
	run(t, "setfattr", "-n", "user.vigil", "-v", "original", filepath.Join(root, "xattr.txt"))
	return root
}

// TestCheckDetectsEveryChange makes one change of each kind to a real tree
// and checks that each is reported with the right attributes, and nothing
// else is.
func TestCheckDetectsEveryChange(t *testing.T) {
	vigiltest.RequireRoot(t) // chown, setcap
	vigiltest.RequireCommand(t, "setfacl")
	vigiltest.RequireCommand(t, "setcap")
	vigiltest.RequireCommand(t, "setfattr")
	root := standardTree(t)
	o := testOptions(t, testConfig(t, root, ""))
	ctx := context.Background()
	res, err := Init(ctx, o, false)
	must(t, err)
	if len(res.Errors) > 0 {
		t.Fatalf("init errors: %v", res.Errors)
	}
	if _, err := Init(ctx, o, false); !errors.Is(err, ErrBaselineExists) {
		t.Fatalf("second init: %v, want ErrBaselineExists", err)
	}
	rep, err := Check(ctx, o)
	must(t, err)
	if rep.ExitCode() != 0 || len(rep.Changed) > 0 {
		t.Fatalf("check before changes: exit %d, %+v", rep.ExitCode(), rep)
	}

	applyChanges(t, root)
	rep, err = Check(ctx, o)
	must(t, err)
	added, removed, changed := changeSet(root, rep)
	if want := []string{"created.txt", "sub/rename-to.txt"}; !slices.Equal(added, want) {
		t.Errorf("added %v, want %v", added, want)
	}
	if want := []string{"delete.txt", "sub/rename-from.txt"}; !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	want := map[string][]string{
		".":                {"mtime", "ctime"},
		"sub":              {"mtime", "ctime"},
		"bin":              {"mtime", "ctime"},
		"modify.txt":       {"size", "mtime", "ctime", "sha256"},
		"chmod.txt":        {"perm", "ctime"},
		"chown.txt":        {"uid", "gid", "ctime"},
		"xattr.txt":        {"ctime", "xattrs"},
		"acl.txt":          {"ctime", "acl"},
		"cap.bin":          {"ctime", "caps"},
		"bin/tool":         {"ftype", "perm", "size", "mtime", "ctime", "link", "sha256"}, // the inode may be reused
		"hard.txt":         {"ctime", "nlink"},
		"logs/rotated.log": {"size", "sha256"},
	}
	for p, attrs := range want {
		got := changed[p]
		for _, a := range attrs {
			if !slices.Contains(got, a) {
				t.Errorf("%s: changed %v, missing %s", p, got, a)
			}
		}
	}
	for p, got := range changed {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected change %s: %v", p, got)
		}
	}
	for _, c := range []struct{ path, attr, old, new string }{
		{"chmod.txt", "perm", "0644 (-rw-r--r--)", "0600 (-rw-------)"},
		{"chown.txt", "uid", "0", "1234"},
		{"chown.txt", "gid", "0", "5678"},
		{"xattr.txt", "xattrs", `user.vigil="original"`, `user.vigil="changed"`},
		{"acl.txt", "acl", "", "user::rw-,user:1234:r--,group::r--,mask::r--,other::r--"},
		{"cap.bin", "caps", "", "cap_net_raw=ep"},
		{"bin/tool", "ftype", "file", "symlink"},
		{"bin/tool", "link", "", "/bin/true"},
		{"hard.txt", "nlink", "1", "2"},
		{"logs/rotated.log", "size", "11", "1"},
	} {
		a, ok := findChange(rep, filepath.Join(root, c.path), c.attr)
		if !ok || a.Old != c.old || a.New != c.new {
			t.Errorf("%s %s: %+v, want %q → %q", c.path, c.attr, a, c.old, c.new)
		}
	}
	if rep.ExitCode() != ExitAdded|ExitRemoved|ExitChanged {
		t.Errorf("exit code %d, want 7", rep.ExitCode())
	}

	// update accepts the changes, audited; then check is clean.
	if _, err := Update(ctx, o); err != nil {
		t.Fatal(err)
	}
	rep, err = Check(ctx, o)
	must(t, err)
	if rep.ExitCode() != 0 {
		t.Errorf("check after update: exit %d: %+v", rep.ExitCode(), rep)
	}
	log, err := os.ReadFile(AuditLogPath(o.Database))
	must(t, err)
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"action":"init"`) || !strings.Contains(lines[1], `"action":"update"`) ||
		!strings.Contains(lines[1], `"added":2,"removed":2,"changed":12`) || !strings.Contains(lines[1], `"user":"root"`) {
		t.Errorf("audit log:\n%s", log)
	}
}

// TestGrowingLog: a growing file that grew is not a change; one rewritten
// with more content than before is (its first old-size bytes differ).
func TestGrowingLog(t *testing.T) {
	root := tree(t, map[string]string{"logs/grow.log": "one\n", "logs/rewrite.log": "one\n", "logs/shrink.log": "one\ntwo\n"})
	o := testOptions(t, testConfig(t, root, ""))
	ctx := context.Background()
	_, err := Init(ctx, o, false)
	must(t, err)
	appendTo := func(name, s string) {
		f, err := os.OpenFile(filepath.Join(root, name), os.O_APPEND|os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteString(s)
		must(t, err)
		must(t, f.Close())
	}
	appendTo("logs/grow.log", "two\nthree\n")
	must(t, os.WriteFile(filepath.Join(root, "logs/rewrite.log"), []byte("ONE\ntwo\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(root, "logs/shrink.log"), []byte("o"), 0o644))
	rep, err := Check(ctx, o)
	must(t, err)
	_, _, changed := changeSet(root, rep)
	want := map[string][]string{"logs/rewrite.log": {"sha256"}, "logs/shrink.log": {"size", "sha256"}}
	if len(changed) != len(want) || !slices.Equal(changed["logs/rewrite.log"], want["logs/rewrite.log"]) || !slices.Equal(changed["logs/shrink.log"], want["logs/shrink.log"]) {
		t.Errorf("changed %v, want %v", changed, want)
	}
}

// TestScanVanishedMidScan deletes a file after its directory was listed
// and before it was examined: the scan records an error and goes on.
func TestScanVanishedMidScan(t *testing.T) {
	root := tree(t, map[string]string{"d/gone.txt": "g", "d/stays.txt": "s", "other.txt": "o"})
	c := testConfig(t, root, "")
	testHookReadDir = func(dir string) {
		if dir == filepath.Join(root, "d") {
			os.Remove(filepath.Join(dir, "gone.txt"))
		}
	}
	t.Cleanup(func() { testHookReadDir = nil })
	res, err := Scan(context.Background(), c, ScanOptions{Workers: 3})
	must(t, err)
	if len(res.Errors) != 1 || res.Errors[0].Path != filepath.Join(root, "d/gone.txt") || !strings.Contains(res.Errors[0].Err, "vanished") {
		t.Errorf("errors %+v, want d/gone.txt vanished", res.Errors)
	}
	var paths []string
	for _, e := range res.Entries {
		paths = append(paths, strings.TrimPrefix(e.Path, root))
	}
	if want := []string{"", "/d", "/d/stays.txt", "/other.txt"}; !slices.Equal(paths, want) {
		t.Errorf("entries %v, want %v", paths, want)
	}
}

// TestScanUnreadable: a file that cannot be read is recorded with its
// metadata and listed as an error; the others are hashed. As root the scan
// runs in a child process as nobody.
func TestScanUnreadable(t *testing.T) {
	if os.Getenv("FIM_UNREADABLE_ROOT") != "" {
		scanUnreadable(t, os.Getenv("FIM_UNREADABLE_ROOT"))
		return
	}
	dir, err := os.MkdirTemp("", "fim-unreadable")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o000))
	must(t, os.WriteFile(filepath.Join(dir, "open"), []byte("o"), 0o644))
	if os.Geteuid() != 0 {
		scanUnreadable(t, dir)
		return
	}
	must(t, os.Chown(filepath.Join(dir, "secret"), 1, 1)) // not nobody's: it cannot read it
	// The test binary's directory is private: run a copy nobody can execute.
	bindir, err := os.MkdirTemp("", "fim-test-bin")
	must(t, err)
	t.Cleanup(func() { os.RemoveAll(bindir) })
	bin := filepath.Join(bindir, "fim.test")
	self, err := os.ReadFile(os.Args[0])
	must(t, err)
	must(t, os.WriteFile(bin, self, 0o755))
	must(t, os.Chmod(bindir, 0o755))
	cmd := exec.Command(bin, "-test.run=^TestScanUnreadable$", "-test.v")
	cmd.Env = append(os.Environ(), "FIM_UNREADABLE_ROOT="+dir)
	cmd.SysProcAttr = nobody()
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestScanUnreadable") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}

func scanUnreadable(t *testing.T, dir string) {
	c, err := ParseConfig([]byte("watch: [{path: "+dir+", attrs: NORMAL}]"), "t.yaml")
	must(t, err)
	res, err := Scan(context.Background(), c, ScanOptions{})
	must(t, err)
	secret := filepath.Join(dir, "secret")
	if len(res.Errors) != 1 || res.Errors[0].Path != secret || !strings.Contains(res.Errors[0].Err, "permission denied") {
		t.Fatalf("errors %+v, want %s permission denied", res.Errors, secret)
	}
	if len(res.Entries) != 3 || res.Entries[2].Path != secret || res.Entries[2].SHA256 != nil || res.Entries[2].Err == "" || res.Entries[2].Size != 1 {
		t.Fatalf("entries %+v", res.Entries)
	}
	if res.Entries[1].SHA256 == nil {
		t.Fatalf("open file not hashed: %+v", res.Entries[1])
	}
	if res.Hashed != 1 {
		t.Fatalf("hashed %d", res.Hashed)
	}
}

// TestTamperedBaseline: a baseline changed without the key, or checked
// with another key, is refused as tampered.
func TestTamperedBaseline(t *testing.T) {
	root := tree(t, map[string]string{"a": "a"})
	o := testOptions(t, testConfig(t, root, ""))
	ctx := context.Background()
	_, err := Init(ctx, o, false)
	must(t, err)
	good, err := os.ReadFile(o.Database)
	must(t, err)
	fi, err := os.Stat(o.Key)
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %o", fi.Mode().Perm())
	}
	for name, mutate := range map[string]func([]byte) []byte{
		"payload byte": func(b []byte) []byte { b[len(b)-3] ^= 1; return b },
		"mac byte":     func(b []byte) []byte { b[12] ^= 0x80; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-1] },
		"header":       func(b []byte) []byte { b[0] = 'X'; return b },
		"empty":        func([]byte) []byte { return nil },
	} {
		must(t, os.WriteFile(o.Database, mutate(slices.Clone(good)), 0o600))
		if _, err := Check(ctx, o); !errors.Is(err, ErrTampered) {
			t.Errorf("%s: check error %v, want ErrTampered", name, err)
		}
	}
	must(t, os.WriteFile(o.Database, good, 0o600))
	if _, err := Check(ctx, o); err != nil {
		t.Fatal(err)
	}
	other := o
	other.Key = filepath.Join(t.TempDir(), "other.key")
	if _, _, err := CreateKey(other.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, other); !errors.Is(err, ErrTampered) {
		t.Errorf("other key: %v, want ErrTampered", err)
	}
	if _, err := Update(ctx, other); !errors.Is(err, ErrTampered) {
		t.Errorf("update with other key: %v, want ErrTampered", err)
	}
	must(t, os.Chmod(o.Key, 0o644))
	if _, err := Check(ctx, o); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("key readable by others: %v", err)
	}
}

func TestBaselineRoundTrip(t *testing.T) {
	key := make([]byte, KeySize)
	b := &Baseline{Created: time.Unix(1700000000, 0).UTC(), Host: "h", Config: "c", Entries: []Entry{
		{Path: "/a", Attrs: AttrSHA256, Type: "file", SHA256: []byte{1, 2}, Xattrs: map[string][]byte{"user.x": {0xff}}},
		{Path: "/a/\xff", Attrs: AttrPerm, Type: "dir", Perm: 0o755},
	}}
	var buf strings.Builder
	must(t, EncodeBaseline(&buf, key, b))
	got, err := DecodeBaseline([]byte(buf.String()), key)
	must(t, err)
	if len(got.Entries) != 2 || got.Entries[1].Path != "/a/\xff" || got.Entries[0].Xattrs["user.x"][0] != 0xff || !got.Created.Equal(b.Created) {
		t.Errorf("round trip: %+v", got)
	}
}

// FuzzDecodeBaseline feeds arbitrary payloads that carry a valid MAC to
// the decoder, and arbitrary files to the MAC check.
func FuzzDecodeBaseline(f *testing.F) {
	key := make([]byte, KeySize)
	var buf strings.Builder
	EncodeBaseline(&buf, key, &Baseline{Entries: []Entry{{Path: "/a", Type: "file", SHA256: []byte{1}}, {Path: "/b", Xattrs: map[string][]byte{"k": nil}}}})
	good := []byte(buf.String())
	f.Add(good[len(dbMagic)+32:])
	f.Add([]byte{})
	f.Add([]byte("\x28\xb5\x2f\xfd\x00\x00"))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if _, err := DecodeBaseline(payload, key); err == nil {
			t.Fatal("unsigned data accepted")
		}
		var signed strings.Builder
		signed.WriteString(dbMagic)
		mac := macOf(key, payload)
		signed.Write(mac)
		signed.Write(payload)
		b, err := DecodeBaseline([]byte(signed.String()), key)
		if err == nil {
			for i := 1; i < len(b.Entries); i++ {
				if b.Entries[i].Path <= b.Entries[i-1].Path {
					t.Fatal("unsorted entries accepted")
				}
			}
		}
	})
}

// TestScanOneFilesystem: with one_filesystem, a mount point under a
// watched root is recorded and not descended into.
func TestScanOneFilesystem(t *testing.T) {
	vigiltest.RequireRoot(t)
	root := tree(t, map[string]string{"a": "a", "mnt/": ""})
	run(t, "mount", "-t", "tmpfs", "none", filepath.Join(root, "mnt"))
	t.Cleanup(func() { exec.Command("umount", filepath.Join(root, "mnt")).Run() })
	must(t, os.WriteFile(filepath.Join(root, "mnt/inside"), []byte("i"), 0o644))
	for _, one := range []bool{true, false} {
		c, err := ParseConfig([]byte("one_filesystem: "+strconv.FormatBool(one)+"\nwatch: [{path: "+root+", attrs: p}]"), "t.yaml")
		must(t, err)
		res, err := Scan(context.Background(), c, ScanOptions{})
		must(t, err)
		var paths []string
		for _, e := range res.Entries {
			paths = append(paths, strings.TrimPrefix(e.Path, root))
		}
		want := []string{"", "/a", "/mnt"}
		if !one {
			want = append(want, "/mnt/inside")
		}
		if !slices.Equal(paths, want) {
			t.Errorf("one_filesystem %v: %v, want %v", one, paths, want)
		}
	}
}

// TestScanTruncatedWhileMapped truncates a large file after it was
// memory-mapped for hashing: the fault is an error for that file, not a
// crash, and the scan goes on.
func TestScanTruncatedWhileMapped(t *testing.T) {
	big := strings.Repeat("x", 2*mmapMin)
	root := tree(t, map[string]string{"big": big, "small": "s"})
	c := testConfig(t, root, "")
	testHookMapped = func() { must(t, os.Truncate(filepath.Join(root, "big"), 0)) }
	t.Cleanup(func() { testHookMapped = nil })
	res, err := Scan(context.Background(), c, ScanOptions{Workers: 1})
	must(t, err)
	if len(res.Errors) != 1 || res.Errors[0].Path != filepath.Join(root, "big") || !strings.Contains(res.Errors[0].Err, "shrank") {
		t.Fatalf("errors %+v, want big shrank", res.Errors)
	}
	if len(res.Entries) != 3 || res.Entries[2].SHA256 == nil {
		t.Fatalf("entries %+v", res.Entries)
	}

	// Not truncated: the mapped hash is the file's sha256.
	testHookMapped = nil
	must(t, os.WriteFile(filepath.Join(root, "big"), []byte(big), 0o644))
	res, err = Scan(context.Background(), c, ScanOptions{})
	must(t, err)
	if want := sha256.Sum256([]byte(big)); !bytes.Equal(res.Entries[1].SHA256, want[:]) {
		t.Errorf("mapped hash %x, want %x", res.Entries[1].SHA256, want)
	}
}
