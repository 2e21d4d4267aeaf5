package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateIdempotent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	ca, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if ca.Fingerprint() != again.Fingerprint() {
		t.Errorf("second load has another CA: %s vs %s", again.Fingerprint(), ca.Fingerprint())
	}
	c := ca.Certificate()
	if !c.IsCA || c.PublicKeyAlgorithm != x509.ECDSA || c.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("CA: IsCA %v, key %v, want a P-256 CA", c.IsCA, c.PublicKeyAlgorithm)
	}
	if v := c.NotAfter.Sub(c.NotBefore); v < CAValidity {
		t.Errorf("CA valid for %v, want >= %v", v, CAValidity)
	}
	if len(ca.Fingerprint()) != 95 || strings.Count(ca.Fingerprint(), ":") != 31 {
		t.Errorf("fingerprint %q is not 32 colon-separated hex pairs", ca.Fingerprint())
	}
	if _, err := ca.ServerTLS(nil); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.crt", "ca.key", "server.crt", "server.key"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v, want 0600", f, st.Mode().Perm())
		}
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", st.Mode().Perm())
	}
}

func TestLoadOrCreateRefusesHalfCA(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadOrCreate(dir); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "ca.key"))
	_, err := LoadOrCreate(dir)
	if err == nil || !strings.Contains(err.Error(), "ca.key") {
		t.Errorf("load with the key missing: %v, want an error naming ca.key", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.key")); err == nil {
		t.Error("a new key was written over a half CA")
	}

	dir = t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.crt"), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(dir, "ca.key"), []byte("junk"), 0o600)
	if _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "ca.crt") {
		t.Errorf("load of a junk CA: %v, want an error naming ca.crt", err)
	}
}

func TestServerCertKeptAndRenewed(t *testing.T) {
	dir := t.TempDir()
	ca, _ := LoadOrCreate(dir)
	first, err := ca.ServerTLS([]string{"vigil.example", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	leaf := first.Certificates[0].Leaf
	for _, h := range []string{"vigil.example", "10.1.2.3", "localhost", "127.0.0.1"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("server certificate: %v", err)
		}
	}
	if len(first.Certificates[0].Certificate) != 2 {
		t.Errorf("server chain has %d certificates, want leaf + CA", len(first.Certificates[0].Certificate))
	}
	if first.ClientAuth != tls.VerifyClientCertIfGiven {
		t.Errorf("ClientAuth = %v, want VerifyClientCertIfGiven", first.ClientAuth)
	}
	// Reloaded (also by a new process), the same certificate.
	ca2, _ := LoadOrCreate(dir)
	again, err := ca2.ServerTLS([]string{"vigil.example"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Certificates[0].Certificate[0], first.Certificates[0].Certificate[0]) {
		t.Error("the server certificate was made anew although it covers the hosts")
	}
	// A new host name: a new certificate covering it.
	third, err := ca2.ServerTLS([]string{"other.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := third.Certificates[0].Leaf.VerifyHostname("other.example"); err != nil {
		t.Error(err)
	}
}

func TestSignAgent(t *testing.T) {
	ca, _ := LoadOrCreate(t.TempDir())
	keyPEM, csrPEM, err := NewKeyCSR("node-1")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, serial, notAfter, err := ca.SignAgent(csrPEM, "agent-42", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "agent-42" {
		t.Errorf("CN = %q, want the agent ID", cert.Subject.CommonName)
	}
	if !slices.Equal(cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || cert.IsCA {
		t.Errorf("EKU %v IsCA %v, want client auth only", cert.ExtKeyUsage, cert.IsCA)
	}
	if serial != Serial(cert) || !notAfter.Equal(cert.NotAfter) {
		t.Errorf("returned serial %s notAfter %v, certificate has %s %v", serial, notAfter, Serial(cert), cert.NotAfter)
	}
	if d := time.Until(notAfter); d > time.Hour || d < 55*time.Minute {
		t.Errorf("valid for %v more, want about 1h", d)
	}
	id, sn, err := ca.VerifyAgent(cert, time.Now())
	if id != "agent-42" || sn != serial || err != nil {
		t.Errorf("VerifyAgent = %q %q %v", id, sn, err)
	}
	if _, _, err := ca.VerifyAgent(cert, time.Now().Add(2*time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Errorf("VerifyAgent after expiry: %v, want expired", err)
	}
	if _, err := AgentTLS(certPEM, keyPEM, ca.CertPEM()); err != nil {
		t.Errorf("AgentTLS: %v", err)
	}
	// Another CA's certificate does not verify.
	other, _ := LoadOrCreate(t.TempDir())
	if _, _, err := other.VerifyAgent(cert, time.Now()); err == nil {
		t.Error("another CA verified the agent certificate")
	}
}

func TestSignAgentBadCSR(t *testing.T) {
	ca, _ := LoadOrCreate(t.TempDir())
	_, csr, _ := NewKeyCSR("n")
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "n"}}, rsaKey)
	tampered := slices.Clone(csr)
	block, _ := pem.Decode(tampered)
	block.Bytes[len(block.Bytes)/2] ^= 0xff
	for name, tc := range map[string]struct {
		csr  []byte
		id   string
		want string
	}{
		"not PEM":   {[]byte("hello"), "a", "PEM"},
		"empty id":  {csr, "", "empty agent ID"},
		"rsa":       {pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: rsaDER}), "a", "rsa"},
		"tampered":  {pem.EncodeToMemory(block), "a", "CSR"},
		"wrong PEM": {ca.CertPEM(), "a", "CERTIFICATE REQUEST"},
	} {
		_, _, _, err := ca.SignAgent(tc.csr, tc.id, 0)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, tc.want)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	ca, _ := LoadOrCreate(t.TempDir())
	fp := ca.Fingerprint()
	want, err := ParseFingerprint(fp)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{strings.ToLower(fp), strings.ReplaceAll(fp, ":", ""), "sha256:" + fp, " " + fp + "\n"} {
		got, err := ParseFingerprint(s)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "AB:CD", fp + ":00", strings.Replace(fp, "A", "G", 1) + "G"} {
		if _, err := ParseFingerprint(s); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", s)
		}
	}
}

// handshake runs a TLS handshake between server and client configurations
// over a pipe and returns the client's error and the server's.
func handshake(t *testing.T, server, client *tls.Config) (cerr, serr error, verified int) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(10 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			// TLS 1.3 checks the client certificate after the client's
			// handshake returns: read to see the server's verdict.
			_, err = s.Read(make([]byte, 1))
			verified = len(s.ConnectionState().VerifiedChains)
		}
		a.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	cerr = c.Handshake()
	if cerr == nil {
		c.Write([]byte{1})
		_, cerr = c.Read(make([]byte, 1))
		if cerr != nil && strings.Contains(cerr.Error(), "closed") || cerr != nil && cerr.Error() == "EOF" {
			cerr = nil
		}
	}
	b.Close()
	serr = <-done
	return cerr, serr, verified
}

func TestTLSHandshakes(t *testing.T) {
	ca, _ := LoadOrCreate(t.TempDir())
	srv, err := ca.ServerTLS(nil)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, csrPEM, _ := NewKeyCSR("n")
	certPEM, _, _, _ := ca.SignAgent(csrPEM, "agent-1", time.Hour)
	agent, err := AgentTLS(certPEM, keyPEM, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	other, _ := LoadOrCreate(t.TempDir())
	otherSrv, _ := other.ServerTLS(nil)
	okey, ocsr, _ := NewKeyCSR("n")
	ocert, _, _, _ := other.SignAgent(ocsr, "agent-1", time.Hour)
	forged, _ := AgentTLS(ocert, okey, ca.CertPEM())

	// An agent certificate offered as a server certificate: a server
	// impersonated with a key the CA gave an agent.
	agentPair, _ := tls.X509KeyPair(certPEM, keyPEM)
	agentPair.Certificate = append(agentPair.Certificate, ca.Certificate().Raw)
	impostor := &tls.Config{Certificates: []tls.Certificate{agentPair}}

	for _, tc := range []struct {
		name           string
		server, client *tls.Config
		ok             bool
		verified       int // client chains the server verified
	}{
		{"enrolled agent", srv, agent, true, 1},
		{"pinned first contact", srv, PinnedTLS(ca.Fingerprint()), true, 0},
		{"pinned, lower case without colons", srv, PinnedTLS(strings.ToLower(strings.ReplaceAll(ca.Fingerprint(), ":", ""))), true, 0},
		{"pinned to another CA", srv, PinnedTLS(other.Fingerprint()), false, 0},
		{"malformed pin", srv, PinnedTLS("nope"), false, 0},
		{"agent trusting another server", otherSrv, agent, false, 0},
		// The server names its CA in the request, so a client holding
		// another CA's certificate sends none: the connection is the
		// unauthenticated kind enrollment uses, and Connect refuses it.
		{"client certificate of another CA", srv, forged, true, 0},
		{"agent certificate used as a server", impostor, agent, false, 0},
		{"agent certificate used as a server, pinned", impostor, PinnedTLS(ca.Fingerprint()), false, 0},
	} {
		cerr, serr, verified := handshake(t, tc.server, tc.client)
		if got := cerr == nil && serr == nil; got != tc.ok || verified != tc.verified {
			t.Errorf("%s: client err %v, server err %v, verified chains %d; want ok=%v, %d chains", tc.name, cerr, serr, verified, tc.ok, tc.verified)
		}
	}
}

func TestPinnedTLSErrorNamesFingerprint(t *testing.T) {
	ca, _ := LoadOrCreate(t.TempDir())
	srv, _ := ca.ServerTLS(nil)
	cerr, _, _ := handshake(t, srv, PinnedTLS("nope"))
	if cerr == nil || !strings.Contains(cerr.Error(), `"nope"`) {
		t.Errorf("handshake with a malformed pin: %v, want an error naming it", cerr)
	}
}

func BenchmarkSignAgent(b *testing.B) {
	ca, _ := LoadOrCreate(b.TempDir())
	_, csr, _ := NewKeyCSR("n")
	for b.Loop() {
		if _, _, _, err := ca.SignAgent(csr, "agent", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
