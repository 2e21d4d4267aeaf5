package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-cwpp/vigil/internal/console"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestHandlerServesAssetsAndRoutes(t *testing.T) {
	h := console.Handler()
	tests := []struct {
		method, path string
		status       int
		ctype        string
		cache        string
		body         string // a substring the body must contain
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", "no-store", `<script type="module" src="/assets/js/main.js">`},
		{"GET", "/alerts/0190abcd-1234", 200, "text/html; charset=utf-8", "no-store", `<main id="main"`},
		{"GET", "/images/sha256:abc/def", 200, "text/html; charset=utf-8", "no-store", `<main id="main"`},
		{"HEAD", "/inventory", 200, "text/html; charset=utf-8", "no-store", ""},
		{"GET", "/assets/js/main.js", 200, "text/javascript; charset=utf-8", "no-cache", "function render"},
		{"GET", "/assets/app.css", 200, "text/css; charset=utf-8", "no-cache", ":root"},
		{"GET", "/assets/favicon.svg", 200, "image/svg+xml", "no-cache", "<svg"},
		{"GET", "/assets/js/nope.js", 404, "", "", ""},
		{"GET", "/assets/../console.go", 404, "", "", ""}, // nothing outside assets/ is served
		{"GET", "/api/v1/nothing", 404, "application/json", "", "no such API endpoint"},
		{"POST", "/", 405, "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			res := get(t, h, tc.method, tc.path)
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %.200s", res.StatusCode, tc.status, body)
			}
			if csp := res.Header.Get("Content-Security-Policy"); csp != console.ContentSecurityPolicy {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			if tc.ctype != "" && res.Header.Get("Content-Type") != tc.ctype {
				t.Errorf("Content-Type %q, want %q", res.Header.Get("Content-Type"), tc.ctype)
			}
			if tc.cache != "" && res.Header.Get("Cache-Control") != tc.cache {
				t.Errorf("Cache-Control %q, want %q", res.Header.Get("Cache-Control"), tc.cache)
			}
			if !strings.Contains(string(body), tc.body) {
				t.Errorf("body does not contain %q: %.300s", tc.body, body)
			}
		})
	}
}

func TestHandlerETagRevalidation(t *testing.T) {
	h := console.Handler()
	res := get(t, h, "GET", "/assets/app.css")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on an asset")
	}
	res = get(t, h, "GET", "/assets/app.css", "If-None-Match", etag)
	if res.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidation with the ETag: status %d, want 304", res.StatusCode)
	}
	res = get(t, h, "GET", "/assets/app.css", "If-None-Match", `"stale"`)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("a stale ETag: status %d, want 200", res.StatusCode)
	}
}

// TestCSPForbidsInlineScript checks the policy leaves no way to run inline
// script and that no page of the console needs one.
func TestCSPForbidsInlineScript(t *testing.T) {
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "data: 'self'; script", "*"} {
		if strings.Contains(console.ContentSecurityPolicy, bad) {
			t.Errorf("policy contains %s", bad)
		}
	}
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(console.ContentSecurityPolicy, want) {
			t.Errorf("policy lacks %s", want)
		}
	}
	res := get(t, console.Handler(), "GET", "/")
	body, _ := io.ReadAll(res.Body)
	if n := strings.Count(string(body), "<script"); n != 1 || !strings.Contains(string(body), `<script type="module" src=`) {
		t.Errorf("index.html has %d script tags, want exactly the one external module", n)
	}
	if m := regexp.MustCompile(`(?i)\son[a-z]+\s*=`).FindString(string(body)); m != "" {
		t.Errorf("index.html has an inline event handler: %q", m)
	}
}

// TestNoInnerHTML guards the rule that data goes into the page as text:
// no asset assigns innerHTML/outerHTML or calls insertAdjacentHTML or
// document.write.
func TestNoInnerHTML(t *testing.T) {
	h := console.Handler()
	for _, p := range console.Assets() {
		if !strings.HasSuffix(p, ".js") {
			continue
		}
		res := get(t, h, "GET", p)
		body, _ := io.ReadAll(res.Body)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"} {
			if strings.Contains(string(body), bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
	}
}

func BenchmarkHandlerAsset(b *testing.B) {
	h := console.Handler()
	req := httptest.NewRequest("GET", "/assets/js/alerts.js", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
	}
}
