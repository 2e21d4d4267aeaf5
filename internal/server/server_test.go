package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/pki"
	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/vigiltest"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServe runs Serve on a real listener with the CA's server
// certificate: a client pinning the CA fingerprint gets HTTP/2 over TLS,
// plain HTTP is refused, and cancelling the context lets the request in
// flight finish before Serve returns.
func TestServe(t *testing.T) {
	ca, err := pki.LoadOrCreate(filepath.Join(t.TempDir(), "pki"))
	if err != nil {
		t.Fatal(err)
	}
	tc, err := ca.ServerTLS([]string{"127.0.0.1", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	started, release := make(chan struct{}), make(chan struct{})
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "console "+r.URL.Path)
	})
	logs := &syncBuffer{}
	srv, err := New(Options{Store: openStore(t), TLS: tc, Console: console, Argon2: testArgon2, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "https://" + ln.Addr().String()

	tr := &http.Transport{TLSClientConfig: pki.PinnedTLS(ca.Fingerprint()), ForceAttemptHTTP2: true}
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	resp, err := hc.Get(base + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over TLS: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ProtoMajor != 2 || !strings.Contains(string(body), `"ok"`) {
		t.Errorf("GET /healthz: %s %s %s", resp.Status, resp.Proto, body)
	}
	if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 || resp.TLS.PeerCertificates[len(resp.TLS.PeerCertificates)-1].Issuer.String() != ca.Certificate().Subject.String() {
		t.Errorf("the server's chain does not lead to the CA")
	}
	if tc.ClientAuth == tls.NoClientCert {
		t.Errorf("pki's config asks for no client certificate: the next check proves nothing")
	}
	// The API does not ask browsers for a client certificate.
	asked := false
	ctc := pki.PinnedTLS(ca.Fingerprint())
	ctc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
		asked = true
		return &tls.Certificate{}, nil
	}
	if resp, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: ctc}}).Get(base + "/healthz"); err != nil {
		t.Errorf("second client: %v", err)
	} else {
		resp.Body.Close()
	}
	if asked {
		t.Error("the API asked the client for a certificate")
	}
	if resp.Header.Get("Strict-Transport-Security") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("security headers missing: %v", resp.Header)
	}
	// A client that does not pin this CA refuses the server.
	if _, err := (&http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{}}}).Get(base + "/healthz"); err == nil {
		t.Error("an unpinned client accepted the self-signed server")
	}
	// Plain HTTP gets no answer.
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served")
		}
		resp.Body.Close()
	}

	// Graceful shutdown with a request in flight.
	slow := make(chan error, 1)
	go func() {
		resp, err := hc.Get(base + "/slow")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(b) != "console /slow" {
				err = io.ErrUnexpectedEOF
			}
		}
		slow <- err
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow request did not arrive")
	}
	cancel()
	// Serve waits for the request in flight.
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-slow; err != nil {
		t.Errorf("the request in flight failed: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		t.Error("the listener is still open after shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"http request"`) || !strings.Contains(logs.String(), `"path":"/slow","status":200`) {
		t.Errorf("requests not logged: %s", logs)
	}

	if err := (&Server{o: Options{}}).Serve(t.Context(), ln); err == nil {
		t.Error("Serve without TLS did not fail")
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without a store did not fail")
	}
}

// TestBadInput: oversized bodies 413, malformed JSON and unknown fields
// 400 naming them, unknown routes 404, a panic 500 — all as JSON errors,
// and the server keeps serving.
func TestBadInput(t *testing.T) {
	logs := &syncBuffer{}
	e := newEnv(t, func(o *Options) {
		o.MaxScanBody = 4 << 10
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
		o.Console = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/boom" {
				panic("console exploded")
			}
			io.WriteString(w, "console")
		})
	})
	admin := e.login("admin", e.adminPW)
	big := []byte(`{"name": "` + strings.Repeat("x", 1<<20) + `", "role": "admin"}`)
	for _, c := range []struct {
		method, path string
		body         []byte
		want         int
		mention      string
	}{
		{"POST", "/api/v1/tokens", big, 413, "larger than 1048576"},
		{"POST", "/api/v1/scans", []byte(`{"schema": "vigil.scan/v1", "x": "` + strings.Repeat("y", 5<<10) + `"}`), 413, "larger than 4096"},
		{"POST", "/api/v1/tokens", []byte(`{"name": "a", "role": "admin", "roles": "x"}`), 400, `unknown field \"roles\"`},
		{"POST", "/api/v1/tokens", []byte(`{"name": 5, "role": "admin"}`), 400, "field name"},
		{"POST", "/api/v1/tokens", []byte(`{"name": "a", "role": "admin"`), 400, "ends early"},
		{"POST", "/api/v1/tokens", []byte(`{"name": "a", "role": "admin"} {}`), 400, "after the object"},
		{"POST", "/api/v1/tokens", []byte(`["name"]`), 400, "array"},
		{"POST", "/api/v1/tokens", []byte(``), 400, "empty body"},
		{"POST", "/api/v1/tokens", []byte(`{"name": "a b", "role": "admin"}`), 400, "name"},
		{"POST", "/api/v1/tokens", []byte(`{"name": "a", "role": "admin", "ttl": "forever"}`), 400, "ttl"},
		{"POST", "/api/v1/enroll-tokens", []byte(`{"ttl": "200h"}`), 400, "ttl"},
		{"POST", "/api/v1/login", []byte(`{"username": "admin"}`), 400, "password"},
		{"GET", "/api/v1/nope", nil, 404, "no such API route"},
		{"DELETE", "/api/v1/alerts", nil, 405, "allowed: GET"},
		{"PUT", "/api/v1/tokens/abc", nil, 405, "allowed: DELETE"},
		{"GET", "/api/v1/scans?limit=-1", nil, 400, "limit"},
		{"GET", "/api/v1/responses/does-not-exist", nil, 404, "does-not-exist"},
		{"GET", "/api/v1/incidents/does-not-exist", nil, 404, "does-not-exist"},
		{"GET", "/api/v1/agents/does-not-exist", nil, 404, "does-not-exist"},
		{"GET", "/api/v1/scans/does-not-exist", nil, 404, "does-not-exist"},
		{"GET", "/boom", nil, 500, "internal error"},
	} {
		var body any
		if c.body != nil {
			body = c.body
		}
		st, b := admin.raw(c.method, c.path, body, nil)
		if st != c.want || !strings.Contains(string(b), c.mention) {
			t.Errorf("%s %s: %d %.200s, want %d mentioning %q", c.method, c.path, st, b, c.want, c.mention)
		}
	}
	if !strings.Contains(logs.String(), "console exploded") {
		t.Error("the panic was not logged")
	}
	if st := admin.do("GET", "/api/v1/me", nil, nil); st != 200 {
		t.Errorf("after the bad requests: %d", st)
	}
	if st, b := admin.raw("GET", "/index.html", nil, nil); st != 200 || string(b) != "console" {
		t.Errorf("console mount: %d %s", st, b)
	}
}

// TestHealthDegraded stops the server's PostgreSQL: /healthz turns 503
// degraded naming the store error, and ok again once it is back.
func TestHealthDegraded(t *testing.T) {
	dsn, stop, start := vigiltest.PrivatePostgres(t)
	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := New(Options{Store: st, Argon2: testArgon2})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTLS(t, srv)
	health := func() (int, healthResponse) {
		resp, err := ts.Client().Get(ts.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var h healthResponse
		json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode, h
	}
	waitFor := func(want int) healthResponse {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, h := health()
			if code == want {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("/healthz stayed %d %+v, want %d", code, h, want)
			}
			time.Sleep(100 * time.Millisecond) // polling interval, not synchronisation
		}
	}
	if h := waitFor(200); h.Status != "ok" {
		t.Errorf("healthy: %+v", h)
	}
	stop()
	if h := waitFor(503); h.Status != "degraded" || h.Store == "" {
		t.Errorf("degraded: %+v", h)
	}
	start()
	if h := waitFor(200); h.Status != "ok" {
		t.Errorf("recovered: %+v", h)
	}
}
