package export

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
)

func reportItems(b *testing.B, n int) {
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkEncode renders one alert (its Raw already decoded: the decode
// is shared by all sinks and measured by BenchmarkDecodeAlert) per format.
func BenchmarkEncode(b *testing.B) {
	it := AlertItem(testAlert(b, "01J-alert-1"))
	it.AgentAlert()
	es := &elasticSink{httpPoster: &httpPoster{cfg: SinkConfig{IndexPrefix: "vigil"}}}
	hec := SinkConfig{Source: "vigil", Format: "vigil"}
	for _, f := range []struct {
		name string
		fn   func() (int, error)
	}{
		{"cef", func() (int, error) { return len(CEF(it)), nil }},
		{"syslog-cef", func() (int, error) { m, err := Syslog(it, 16, "vigil", true); return len(m), err }},
		{"syslog-json", func() (int, error) { m, err := Syslog(it, 16, "vigil", false); return len(m), err }},
		{"splunk-hec", func() (int, error) { m, err := encodeHEC(nil, it, &hec); return len(m), err }},
		{"elastic-ecs", func() (int, error) { m, err := es.encodeBulk(nil, it); return len(m), err }},
		{"ocsf", func() (int, error) { m, err := OCSFJSON(it); return len(m), err }},
		{"webhook-json", func() (int, error) { m, err := it.NativeJSON(); return len(m), err }},
	} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				k, err := f.fn()
				if err != nil {
					b.Fatal(err)
				}
				n = k
			}
			b.ReportMetric(float64(n), "bytes/item")
			reportItems(b, b.N)
		})
	}
}

func BenchmarkDecodeAlert(b *testing.B) {
	a := testAlert(b, "x")
	b.ReportAllocs()
	for b.Loop() {
		if AlertItem(a).AgentAlert() == nil {
			b.Fatal("no decode")
		}
	}
	reportItems(b, b.N)
}

// BenchmarkPublish is the cost on the ingest path: one batch of one alert
// into three sinks' buffers.
func BenchmarkPublish(b *testing.B) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	var sinks []SinkConfig
	for range 3 {
		sinks = append(sinks, SinkConfig{Type: TypeWebhook, URL: srv.URL, Secret: "s", Buffer: 1000})
	}
	m, err := New(Config{Sinks: sinks}, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := &store.Batch{Alerts: []store.Alert{testAlert(b, "x")}}
	b.ReportAllocs()
	for b.Loop() {
		m.Publish(batch)
	}
	reportItems(b, b.N)
	ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	m.Close(ctx)
}

// BenchmarkPublishToHTTP is end to end: Publish → buffer → batch encode →
// HTTP POST to a local receiver that reads the body, until all are sent.
func BenchmarkPublishToHTTP(b *testing.B) {
	for _, typ := range []string{TypeSplunk, TypeElastic, TypeOCSFHTTP} {
		b.Run(typ, func(b *testing.B) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				switch {
				case strings.HasSuffix(r.URL.Path, "/_bulk"):
					w.Write([]byte(`{"errors":false,"items":[]}`))
				default:
					w.Write([]byte(`{"text":"Success","code":0}`))
				}
			}))
			defer srv.Close()
			m, err := New(Config{Sinks: []SinkConfig{{Type: typ, URL: srv.URL, Token: "t", Buffer: max(b.N, 10000)}}}, nil)
			if err != nil {
				b.Fatal(err)
			}
			alerts := make([]store.Alert, 100)
			for i := range alerts {
				alerts[i] = testAlert(b, "x")
			}
			b.ResetTimer()
			sent := 0
			for sent < b.N {
				n := min(100, b.N-sent)
				m.Publish(&store.Batch{Alerts: alerts[:n]})
				sent += n
			}
			for m.Stats()[0].Sent < uint64(b.N) {
				if s := m.Stats()[0]; s.Dropped > 0 || s.Failed > 0 {
					b.Fatalf("stats %+v", s)
				}
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			reportItems(b, b.N)
			m.Close(context.Background())
		})
	}
}

// BenchmarkPublishToSyslogTCP is end to end into a TCP listener that reads
// and discards (CEF payload).
func BenchmarkPublishToSyslogTCP(b *testing.B) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go io.Copy(io.Discard, c)
		}
	}()
	m, err := New(Config{Sinks: []SinkConfig{{Type: TypeSyslog, Address: l.Addr().String(), Format: "cef", Buffer: max(b.N, 10000)}}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	alerts := make([]store.Alert, 100)
	for i := range alerts {
		alerts[i] = testAlert(b, "x")
	}
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		n := min(100, b.N-sent)
		m.Publish(&store.Batch{Alerts: alerts[:n]})
		sent += n
	}
	for m.Stats()[0].Sent < uint64(b.N) {
		if s := m.Stats()[0]; s.Dropped > 0 || s.Failed > 0 {
			b.Fatalf("stats %+v", s)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	reportItems(b, b.N)
	m.Close(context.Background())
}
