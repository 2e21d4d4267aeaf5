package vulndb

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// Rate is a request rate limit: at most Requests in any period Per.
type Rate struct {
	Requests int
	Per      time.Duration
}

// limiter enforces a Rate as a token bucket of Requests tokens, each one
// returned Per after it was taken, so no window of length Per ever holds
// more than Requests requests (a refilling bucket would allow a burst on
// top of a full refill).
type limiter struct {
	mu   sync.Mutex
	rate Rate
	used []time.Time // when the tokens in use were taken, oldest first
}

func newLimiter(r Rate) *limiter {
	return &limiter{rate: r}
}

// wait blocks until a request may be sent, or ctx is done.
func (l *limiter) wait(ctx context.Context) error {
	if l == nil || l.rate.Requests <= 0 || l.rate.Per <= 0 {
		return ctx.Err()
	}
	for {
		l.mu.Lock()
		now := time.Now()
		for len(l.used) > 0 && now.Sub(l.used[0]) >= l.rate.Per {
			l.used = l.used[1:]
		}
		if len(l.used) < l.rate.Requests {
			l.used = append(l.used, now)
			l.mu.Unlock()
			return ctx.Err()
		}
		d := l.rate.Per - now.Sub(l.used[0])
		l.mu.Unlock()
		if err := sleep(ctx, d); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryPolicy says which answers are retried and how long to wait.
type retryPolicy struct {
	statuses   map[int]bool // retried status codes
	maxRetries int
	backoff    time.Duration // first delay; doubled per retry, with jitter
	maxWait    time.Duration // a longer wait (Retry-After included) gives up
	limiter    *limiter      // nil: no rate limit
}

// delay is the wait before retry number attempt (0-based): Retry-After
// when the server sent one, else exponential backoff with full jitter on
// the upper half.
func (p retryPolicy) delay(attempt int, resp *http.Response, now time.Time) time.Duration {
	if resp != nil {
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), now); ok {
			return d
		}
	}
	d := p.backoff << min(attempt, 30)
	if d <= 0 || d > p.maxWait {
		d = p.maxWait
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now)), true
	}
	return 0, false
}

// errGaveUp is wrapped by errors from requests that kept failing.
var errGaveUp = errors.New("giving up")

// get sends GET url with hdr, waiting for the limiter before each attempt
// and retrying network errors and the policy's statuses. The caller closes
// the response body.
func get(ctx context.Context, hc *http.Client, url string, hdr http.Header, p retryPolicy) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		if err := p.limiter.wait(ctx); err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err == nil && !p.statuses[resp.StatusCode] {
			return resp, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, cerr
		}
		what := ""
		if err != nil {
			what = err.Error()
		} else {
			what = resp.Status
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if attempt >= p.maxRetries {
			return nil, fmt.Errorf("GET %s: %w after %d attempts: %s", url, errGaveUp, attempt+1, what)
		}
		d := p.delay(attempt, resp, time.Now())
		if d > p.maxWait {
			return nil, fmt.Errorf("GET %s: %s, and the server asks to retry in %v, more than the %v allowed: %w", url, what, d, p.maxWait, errGaveUp)
		}
		if err := sleep(ctx, d); err != nil {
			return nil, err
		}
	}
}

// download is one conditional GET of a file-shaped source.
type download struct {
	name string // source name
	url  string
	want format // the format the file must have

	// Results, valid once done is closed.
	done         chan struct{}
	path         string // the body, in a temporary file
	gz           bool
	notModified  bool
	etag         string
	lastModified string
	err          error
}

// fetch performs d: a GET with If-None-Match / If-Modified-Since from prev
// when the source has data, the body saved under dir. A short body (fewer
// bytes than Content-Length) is an error.
func fetch(ctx context.Context, hc *http.Client, d *download, prev *sourceRow, dir, ua string, p retryPolicy, prog *progress) {
	defer close(d.done)
	hdr := http.Header{"User-Agent": {ua}}
	if prev != nil {
		if prev.ETag != "" {
			hdr.Set("If-None-Match", prev.ETag)
		}
		if prev.LastModified != "" {
			hdr.Set("If-Modified-Since", prev.LastModified)
		}
	}
	resp, err := get(ctx, hc, d.url, hdr, p)
	if err != nil {
		d.err = err
		return
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		d.notModified = true
		return
	case http.StatusOK:
	default:
		d.err = fmt.Errorf("GET %s: %s", d.url, resp.Status)
		return
	}
	d.etag, d.lastModified = resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	f, err := os.CreateTemp(dir, "download-*")
	if err != nil {
		d.err = err
		return
	}
	d.path = f.Name()
	prog.start(d.url, resp.ContentLength)
	n, err := io.Copy(f, progressReader{resp.Body, prog, d.url})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("got %d of %d bytes", n, resp.ContentLength)
	}
	if err != nil {
		d.err = fmt.Errorf("GET %s: reading the body: %w", d.url, err)
		return
	}
	f2, gz, err := detectFile(d.path)
	if err == nil && f2 != d.want {
		err = fmt.Errorf("expected %s data, got %s", d.want, f2)
	}
	if err != nil {
		d.err = fmt.Errorf("GET %s: %w", d.url, err)
		return
	}
	d.gz = gz
}

// progressReader reports bytes read to a progress.
type progressReader struct {
	r      io.Reader
	prog   *progress
	source string
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.prog.add(p.source, int64(n))
	return n, err
}
