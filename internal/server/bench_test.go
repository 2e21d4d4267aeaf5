package server

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// BenchmarkAPI measures GET /api/v1/alerts and /api/v1/dashboard over TLS
// (keep-alive, Bearer token) with 100k alerts stored in SQLite, spread
// over the last 24 hours across 200 rules and 500 containers. It reports
// the p50 and p99 latency of one request. The dashboard is served from
// its cache (Options.DashboardTTL) after the first request;
// dashboard-uncached is the computation a cache miss runs.
//
//	go test -run XXX -bench BenchmarkAPI -benchtime 200x ./internal/server/
func BenchmarkAPI(b *testing.B) {
	st := openStore(b)
	now := time.Now().UTC()
	const n = 100_000
	tmpl := testAlert("agent-1", "", now, 4, "R")
	for i := 0; i < n; i += 5000 {
		batch := &store.Batch{}
		for j := i; j < min(i+5000, n); j++ {
			a := tmpl
			a.ID = uuid.Must(uuid.NewV7()).String()
			a.Time = now.Add(-time.Duration(n-j) * 24 * time.Hour / n)
			a.LastSeen = a.Time
			a.Severity = j % 8
			a.Priority = priorities[a.Severity]
			a.Rule = fmt.Sprintf("rule %d", j%200)
			a.ContainerID = fmt.Sprintf("%064x", j%500)
			a.Techniques = []string{fmt.Sprintf("T%04d", 1000+j%50)}
			a.DedupKey = a.ID
			batch.Alerts = append(batch.Alerts, a)
		}
		if _, err := st.Apply(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := New(Options{Store: st, Argon2: testArgon2, Agents: &fakeAgents{}})
	if err != nil {
		b.Fatal(err)
	}
	ts := newTLS(b, srv)
	tok := "vigil_bench"
	if err := st.CreateAPIToken(b.Context(), store.APIToken{ID: "bench", Name: "bench", Hash: hashSecret(tok), Role: store.RoleReadOnly, Created: now}); err != nil {
		b.Fatal(err)
	}
	hc := ts.Client()
	for _, path := range []string{"/api/v1/alerts", "/api/v1/alerts?severity=warning&since=1h", "/api/v1/alerts?workload=" + fmt.Sprintf("%064x", 7)[:12], "/api/v1/dashboard"} {
		b.Run(path, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				req, _ := http.NewRequest("GET", ts.URL+path, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				start := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				lat = append(lat, time.Since(start))
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%s: %d %v", path, resp.StatusCode, err)
				}
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
	// What a dashboard cache miss costs: the store's aggregates over the
	// 24 hours (every stored alert).
	b.Run("dashboard-uncached", func(b *testing.B) {
		for b.Loop() {
			if _, err := srv.computeDashboard(b.Context(), "24h"); err != nil {
				b.Fatal(err)
			}
		}
	})
}
