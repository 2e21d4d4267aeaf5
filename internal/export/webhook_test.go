package export

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestWebhookSignatureVerifies(t *testing.T) {
	type req struct {
		body    []byte
		sig, ts string
	}
	var mu sync.Mutex
	var got []req
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(415)
			return
		}
		// A receiver checks before trusting anything.
		if err := Verify("s3cret", r.Header.Get("X-Vigil-Signature"), r.Header.Get("X-Vigil-Timestamp"), b, time.Now(), 5*time.Minute); err != nil {
			w.WriteHeader(401)
			return
		}
		mu.Lock()
		got = append(got, req{b, r.Header.Get("X-Vigil-Signature"), r.Header.Get("X-Vigil-Timestamp")})
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeWebhook, URL: srv.URL + "/hook", Secret: "s3cret"})
	m.Publish(testBatch(t))
	waitFor(t, "delivery", func() bool { return m.Stats()[0].Sent == 5 })
	mu.Lock()
	r := got[0]
	mu.Unlock()
	var docs []map[string]any
	if err := json.Unmarshal(r.body, &docs); err != nil || len(docs) != 5 || docs[0]["kind"] != "alert" {
		t.Fatalf("body %s: %v", r.body, err)
	}
	now := time.Now()
	if err := Verify("another", r.sig, r.ts, r.body, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("another secret: %v, want ErrBadSignature", err)
	}
	tampered := append([]byte(nil), r.body...)
	tampered[10] ^= 1
	if err := Verify("s3cret", r.sig, r.ts, tampered, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered body: %v, want ErrBadSignature", err)
	}
	ts, _ := strconv.ParseInt(r.ts, 10, 64)
	if err := Verify("s3cret", r.sig, strconv.FormatInt(ts+1, 10), r.body, now, time.Minute); !errors.Is(err, ErrBadSignature) {
		t.Errorf("changed timestamp: %v, want ErrBadSignature", err)
	}
	if err := Verify("s3cret", r.sig, r.ts, r.body, now.Add(10*time.Minute), 5*time.Minute); !errors.Is(err, ErrStale) {
		t.Errorf("replayed later: %v, want ErrStale", err)
	}
	if err := Verify("s3cret", r.sig, "yesterday", r.body, now, time.Minute); err == nil {
		t.Error("bad timestamp accepted")
	}
}

// A receiver that refuses the signature (401) makes the sink drop the
// batch, not retry it forever.
func TestWebhookRefusedSignatureDrops(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if Verify("right", r.Header.Get("X-Vigil-Signature"), r.Header.Get("X-Vigil-Timestamp"), b, time.Now(), time.Minute) != nil {
			w.WriteHeader(401)
			return
		}
		w.WriteHeader(200)
	}))
	defer srv.Close()
	m := runSink(t, SinkConfig{Type: TypeWebhook, URL: srv.URL, Secret: "wrong"})
	m.Publish(testBatch(t))
	waitFor(t, "the drop", func() bool { return m.Stats()[0].Dropped == 5 })
	if s := m.Stats()[0]; s.Failed != 1 || s.Sent != 0 {
		t.Errorf("stats %+v", s)
	}
}
