package compliance

import (
	"errors"
	"testing"
)

// FuzzSSHD: any sshd_config (with Include loops) parses without a panic
// or a hang; the first value of a keyword wins.
func FuzzSSHD(f *testing.F) {
	f.Add([]byte("PermitRootLogin no\nPermitRootLogin yes\n"))
	f.Add([]byte("Include /etc/ssh/sshd_config\nMaxAuthTries=4\n"))
	f.Add([]byte("Match User x\n PermitRootLogin yes\n"))
	f.Add([]byte("  Banner \"/etc/issue net\"\n#c\n=\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func(string) ([]byte, error) { return data, nil }
		glob := func(p string) []string { return []string{p} }
		c := parseSSHD("/etc/ssh/sshd_config", read, glob)
		if len(c.Files) == 0 {
			t.Fatal("the main file was not read")
		}
		for k, s := range c.Values {
			if s.Line < 1 || k == "" {
				t.Fatalf("bad setting %q %+v", k, s)
			}
		}
		parseSSHD("/x", func(string) ([]byte, error) { return nil, errors.New("unreadable") }, glob)
	})
}

// FuzzConfigParsers: mounts/fstab, modprobe.d, dpkg status, login.defs,
// daemon.json and dockerd arguments never panic.
func FuzzConfigParsers(f *testing.F) {
	f.Add([]byte("tmpfs /tmp tmpfs rw,nodev 0 0\n/dev/a /mnt\\040x ext4 ro 0 0\n\\"))
	f.Add([]byte("install cramfs /bin/false\nblacklist usb-storage\n"))
	f.Add([]byte("Package: aide\nStatus: install ok installed\n\n"))
	f.Add([]byte(`{"icc": false, "hosts": ["fd://", 1], "log-opts": {"a": "b"}, "n": 1.5, "x": null}`))
	f.Add([]byte("dockerd\x00-H\x00--icc=false\x00--log-driver"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, m := range parseMounts(data) {
			if len(m.Options) == 0 {
				t.Fatal("a mount without an option list")
			}
		}
		var mp modprobeConf
		mp.parse(data, "f")
		parseDpkgStatus(data)
		parseKeyValues(data, "f")
		parseDaemonJSON(data)
		var args []string
		start := 0
		for i, c := range data {
			if c == 0 {
				args = append(args, string(data[start:i]))
				start = i + 1
			}
		}
		parseDockerdArgs(append(args, string(data[start:])))
	})
}

// TestSSHDIncludeLoop: a file including itself (twice per line) is read
// once and reported, not followed exponentially.
func TestSSHDIncludeLoop(t *testing.T) {
	data := []byte("Include /etc/ssh/sshd_config /etc/ssh/sshd_config\nInclude /etc/ssh/sshd_config\nPort 22\n")
	reads := 0
	c := parseSSHD("/etc/ssh/sshd_config", func(string) ([]byte, error) { reads++; return data, nil },
		func(p string) []string { return []string{p} })
	if reads != 1 || len(c.Problems) != 3 || c.Values["port"].Value != "22" {
		t.Errorf("reads %d problems %q values %v", reads, c.Problems, c.Values)
	}
}
