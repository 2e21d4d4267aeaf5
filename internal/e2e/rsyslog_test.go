package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// rsyslog is a private rsyslogd receiving on a TCP port of 127.0.0.1 and
// writing each message, as received, to a file.
type rsyslog struct {
	port int
	out  string
}

func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	bin := vigiltest.RequireCommand(t, "rsyslogd")
	dir := t.TempDir()
	port := freePort(t)
	r := &rsyslog{port: port, out: filepath.Join(dir, "received.log")}
	conf := fmt.Sprintf(`
global(workDirectory=%q)
module(load="imtcp")
template(name="raw" type="string" string="%%rawmsg%%\n")
ruleset(name="in") { action(type="omfile" file=%q template="raw") }
input(type="imtcp" port="%d" address="127.0.0.1" ruleset="in")
`, dir, r.out, port)
	cf := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-n", "-f", cf, "-i", filepath.Join(dir, "rsyslog.pid"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd does not listen on %d: %v", port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
