// Package pki is the server's private certificate authority for the agent
// channel: it is made on the server's first start (ECDSA P-256, valid ten
// years), signs the server's TLS certificate and, at enrollment, each
// agent's client certificate (subject CN = the agent's ID, client
// authentication only). It also builds the agent's TLS configurations:
// AgentTLS once enrolled, PinnedTLS for the first contact, where the
// operator gives the CA's SHA-256 fingerprint instead of a CA file.
//
// Key files are written 0600 and never leave the directory; the agent's
// key is made on the agent (NewKeyCSR) and only its CSR is sent. pki keeps
// no revocation list: the server refuses a revoked agent by its stored
// state (internal/hub), not by the certificate.
package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Validity periods.
const (
	CAValidity     = 10 * 365 * 24 * time.Hour
	ServerValidity = 2 * 365 * 24 * time.Hour
	// DefaultAgentValidity is an agent certificate's lifetime when
	// SignAgent is given none.
	DefaultAgentValidity = 365 * 24 * time.Hour
	// renewBefore: a server certificate closer than this to its end is
	// made anew at start.
	renewBefore = 30 * 24 * time.Hour
	// backdate covers clocks a little behind the server's.
	backdate = 5 * time.Minute
)

// File names inside the CA directory.
const (
	caCertFile     = "ca.crt"
	caKeyFile      = "ca.key"
	serverCertFile = "server.crt"
	serverKeyFile  = "server.key"
)

// CA is the loaded certificate authority. It is safe for concurrent use.
type CA struct {
	dir     string
	cert    *x509.Certificate
	certPEM []byte
	key     crypto.Signer
	pool    *x509.CertPool
	mu      sync.Mutex // serialises writes of the server certificate
}

// LoadOrCreate loads the CA from dir (ca.crt, ca.key), creating the
// directory (0700) and a new CA the first time. A directory with one of the
// two files and not the other is an error, never overwritten.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: creating %s: %w", dir, err)
	}
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	_, certErr := os.Stat(certPath)
	_, keyErr := os.Stat(keyPath)
	switch {
	case certErr == nil && keyErr == nil:
		return load(dir)
	case errors.Is(certErr, os.ErrNotExist) && errors.Is(keyErr, os.ErrNotExist):
		return create(dir)
	case certErr == nil:
		return nil, fmt.Errorf("pki: %s exists without %s: restore the key or remove both to make a new CA (every agent must then enroll again)", certPath, keyPath)
	case keyErr == nil:
		return nil, fmt.Errorf("pki: %s exists without %s: restore the certificate or remove both to make a new CA (every agent must then enroll again)", keyPath, certPath)
	case certErr != nil:
		return nil, fmt.Errorf("pki: %w", certErr)
	default:
		return nil, fmt.Errorf("pki: %w", keyErr)
	}
}

func create(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generating the CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Vigil agent CA " + serial.Text(16)[:8], Organization: []string{"Vigil"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("pki: making the CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	// The key first: a crash between the two leaves a key without a
	// certificate, which LoadOrCreate reports rather than replaces.
	if err := writeFile(filepath.Join(dir, caKeyFile), keyPEM); err != nil {
		return nil, err
	}
	if err := writeFile(filepath.Join(dir, caCertFile), pemBlock("CERTIFICATE", der)); err != nil {
		return nil, err
	}
	return load(dir)
}

func load(dir string) (*CA, error) {
	certPath, keyPath := filepath.Join(dir, caCertFile), filepath.Join(dir, caKeyFile)
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	cert, err := parseCertPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", certPath, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("pki: %s is not a CA certificate", certPath)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", keyPath, err)
	}
	if !publicKeysEqual(key.Public(), cert.PublicKey) {
		return nil, fmt.Errorf("pki: %s does not match %s", keyPath, certPath)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &CA{dir: dir, cert: cert, certPEM: pemBlock("CERTIFICATE", cert.Raw), key: key, pool: pool}, nil
}

// Certificate is the CA certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// CertPEM is the CA certificate, PEM encoded.
func (ca *CA) CertPEM() []byte { return slices.Clone(ca.certPEM) }

// Pool is a pool holding only the CA certificate.
func (ca *CA) Pool() *x509.CertPool { return ca.pool.Clone() }

// Fingerprint is the SHA-256 of the CA certificate's DER, as upper-case hex
// pairs separated by colons ("AB:01:…"): what an operator gives an agent
// to trust the server on first contact.
func (ca *CA) Fingerprint() string { return Fingerprint(ca.cert) }

// Fingerprint is the SHA-256 of cert's DER in the form CA.Fingerprint uses.
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// ParseFingerprint reads a SHA-256 fingerprint written as 64 hex digits,
// with or without colons and an optional "sha256:" prefix, in either case.
func ParseFingerprint(s string) ([]byte, error) {
	t := strings.TrimSpace(s)
	if len(t) > 7 && strings.EqualFold(t[:7], "sha256:") {
		t = t[7:]
	}
	t = strings.ReplaceAll(t, ":", "")
	b, err := hex.DecodeString(t)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("pki: CA fingerprint %q is not a SHA-256 (64 hex digits)", s)
	}
	return b, nil
}

// Serial is a certificate serial as the store keeps it: lower-case hex.
func Serial(cert *x509.Certificate) string { return cert.SerialNumber.Text(16) }

// ServerTLS returns the server's TLS configuration for the agent channel
// (and the API): a certificate for hosts plus localhost and 127.0.0.1,
// signed by the CA and kept in server.crt/server.key (made anew when
// missing, expiring within 30 days, not signed by this CA or not covering
// every host), the CA sent along in the chain, and client certificates
// verified against the CA when one is given (enrollment comes without).
func (ca *CA) ServerTLS(hosts []string) (*tls.Config, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	hosts = normalizeHosts(hosts)
	certPath, keyPath := filepath.Join(ca.dir, serverCertFile), filepath.Join(ca.dir, serverKeyFile)
	pair, err := ca.loadServer(certPath, keyPath, hosts)
	if err != nil {
		if pair, err = ca.makeServer(certPath, keyPath, hosts); err != nil {
			return nil, err
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    ca.Pool(),
		MinVersion:   tls.VersionTLS12,
	}, nil
}

func normalizeHosts(hosts []string) []string {
	out := []string{"localhost", "127.0.0.1"}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" || slices.Contains(out, h) {
			continue
		}
		out = append(out, h)
	}
	return out
}

// loadServer returns the stored server certificate when it still serves:
// signed by this CA, not close to its end, covering every host.
func (ca *CA) loadServer(certPath, keyPath string, hosts []string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf := pair.Leaf
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return tls.Certificate{}, err
	}
	if time.Until(leaf.NotAfter) < renewBefore {
		return tls.Certificate{}, errors.New("expiring")
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return tls.Certificate{}, fmt.Errorf("does not cover %s", h)
		}
	}
	pair.Certificate = [][]byte{leaf.Raw, ca.cert.Raw}
	return pair, nil
}

func (ca *CA) makeServer(certPath, keyPath string, hosts []string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: generating the server key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "vigil-server", Organization: []string{"Vigil"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     now.Add(ServerValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: signing the server certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pemBlock("CERTIFICATE", der)
	if err := writeFile(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFile(certPath, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	pair.Certificate = append(pair.Certificate, ca.cert.Raw)
	return pair, nil
}

// SignAgent signs an agent's certificate request: subject CN agentID
// (whatever the request asked), client authentication only, valid for ttl
// (DefaultAgentValidity when ttl <= 0). It returns the PEM certificate,
// its serial as Serial writes it, and its expiry. The request must carry a
// valid self-signature and an ECDSA P-256/P-384 or Ed25519 key.
func (ca *CA) SignAgent(csrPEM []byte, agentID string, ttl time.Duration) (certPEM []byte, serial string, notAfter time.Time, err error) {
	if agentID == "" {
		return nil, "", time.Time{}, errors.New("pki: signing an agent certificate: empty agent ID")
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, "", time.Time{}, errors.New("pki: the agent's CSR is not a PEM CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("pki: parsing the agent's CSR: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", time.Time{}, fmt.Errorf("pki: the agent's CSR signature: %w", err)
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, "", time.Time{}, fmt.Errorf("pki: the agent's CSR has an ECDSA key on %s, want P-256 or P-384", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, "", time.Time{}, fmt.Errorf("pki: the agent's CSR has a %T key, want ECDSA P-256", csr.PublicKey)
	}
	if ttl <= 0 {
		ttl = DefaultAgentValidity
	}
	sn, err := newSerial()
	if err != nil {
		return nil, "", time.Time{}, err
	}
	now := time.Now()
	notAfter = now.Add(ttl)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: agentID, Organization: []string{"Vigil agent"}},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, csr.PublicKey, ca.key)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("pki: signing the agent certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, "", time.Time{}, fmt.Errorf("pki: %w", err)
	}
	return pemBlock("CERTIFICATE", der), Serial(cert), cert.NotAfter, nil
}

// VerifyAgent checks a client certificate the way the server trusts an
// agent: it chains to the CA, is valid at now and is for client
// authentication. It returns the agent ID (the subject CN) and serial.
func (ca *CA) VerifyAgent(cert *x509.Certificate, now time.Time) (agentID, serial string, err error) {
	if cert == nil {
		return "", "", errors.New("no client certificate")
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:       ca.pool,
		CurrentTime: now,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return "", "", fmt.Errorf("client certificate %q (serial %s): %w", cert.Subject.CommonName, Serial(cert), err)
	}
	if cert.Subject.CommonName == "" {
		return "", "", fmt.Errorf("client certificate (serial %s) has no subject CN", Serial(cert))
	}
	return cert.Subject.CommonName, Serial(cert), nil
}

// NewKeyCSR makes an agent's key (ECDSA P-256) and a certificate request
// for it with subject CN name (the hostname: the server replaces it with
// the agent ID). keyPEM is PKCS #8 ("PRIVATE KEY").
func NewKeyCSR(name string) (keyPEM, csrPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: generating the agent key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: name},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: making the certificate request: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return keyPEM, pemBlock("CERTIFICATE REQUEST", der), nil
}

// AgentTLS is an enrolled agent's client configuration: its certificate
// and key, and the server verified against caPEM alone. The server is
// identified by the CA rather than by a host name: the agent may reach it
// by any name or address, and the CA issues server-authentication
// certificates to the server only (agents get client-only ones).
func AgentTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("pki: the agent certificate and key: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("pki: the CA PEM holds no certificate")
	}
	cfg := verifyServerBy(func([]*x509.Certificate) (*x509.CertPool, error) { return pool, nil })
	cfg.Certificates = []tls.Certificate{pair}
	return cfg, nil
}

// PinnedTLS is the configuration for an agent's first contact (enrollment):
// no client certificate, and the server trusted when the chain it sends
// holds a CA certificate whose SHA-256 fingerprint is fingerprint (any form
// ParseFingerprint reads) and its certificate chains to that CA for server
// authentication. A malformed fingerprint fails every handshake with an
// error naming it.
func PinnedTLS(fingerprint string) *tls.Config {
	want, perr := ParseFingerprint(fingerprint)
	return verifyServerBy(func(chain []*x509.Certificate) (*x509.CertPool, error) {
		if perr != nil {
			return nil, perr
		}
		for _, c := range chain[1:] {
			sum := sha256.Sum256(c.Raw)
			if c.IsCA && bytes.Equal(sum[:], want) {
				pool := x509.NewCertPool()
				pool.AddCert(c)
				return pool, nil
			}
		}
		return nil, fmt.Errorf("pki: the server's chain has no CA with fingerprint %s", fingerprint)
	})
}

// verifyServerBy verifies the server's chain against the pool roots picks,
// for server authentication, without a host name check.
func verifyServerBy(roots func(chain []*x509.Certificate) (*x509.CertPool, error)) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The standard verification is replaced, not skipped: it would
		// check a host name, and the CA is the server's identity here.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("pki: the server sent no certificate")
			}
			pool, err := roots(cs.PeerCertificates)
			if err != nil {
				return err
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err = cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         pool,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("pki: verifying the server certificate: %w", err)
			}
			return nil
		},
	}
}

func newSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encoding a key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func parseCertPEM(b []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("no PEM CERTIFICATE")
	}
	return x509.ParseCertificate(block.Bytes)
}

func parseKeyPEM(b []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	var k any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM %s is not a private key", block.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%T is not a signing key", k)
	}
	return s, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// writeFile writes b to path with mode 0600, through a temporary file and
// a rename, so a crash never leaves half a key.
func writeFile(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
