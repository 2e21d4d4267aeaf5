package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// httpPoster is what the HTTP sinks share: a client with the sink's TLS
// setup and a POST that classifies failures.
type httpPoster struct {
	cfg    SinkConfig
	client *http.Client
}

func newHTTPPoster(c SinkConfig) (*httpPoster, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 4
	if u.Scheme == "https" {
		tc, err := c.TLS.config(u.Hostname())
		if err != nil {
			return nil, err
		}
		tr.TLSClientConfig = tc
	}
	return &httpPoster{cfg: c, client: &http.Client{Transport: tr, Timeout: c.Timeout}}, nil
}

// httpStatusError is a response outside 2xx.
type httpStatusError struct {
	Code int
	Body string
	// After is the response's Retry-After, zero without one.
	After time.Duration
}

// retryAfter is how long the receiver asked to wait.
func (e *httpStatusError) retryAfter() time.Duration { return e.After }

// parseRetryAfter reads a Retry-After header: delay-seconds or an
// HTTP-date; zero when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

func (e *httpStatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

// retryable: 408, 429 and 5xx are worth retrying; other 4xx are not.
func (e *httpStatusError) retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code == http.StatusRequestTimeout || e.Code >= 500
}

// post sends body and returns the response body of a 2xx answer.
func (p *httpPoster) post(ctx context.Context, url, contentType string, body []byte, hdr http.Header) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", "vigil-export")
	for k, v := range p.cfg.Headers {
		req.Header.Set(k, v)
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("reading response: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return rb, &httpStatusError{Code: resp.StatusCode, Body: truncate(string(rb), 300),
			After: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	return rb, nil
}

// classify turns a post error into what the runner does with the batch.
func classify(n int, err error) error {
	var se *httpStatusError
	if errors.As(err, &se) && !se.retryable() {
		return permanentError(n, err)
	}
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (p *httpPoster) close() error {
	p.client.CloseIdleConnections()
	return nil
}

// Splunk HTTP Event Collector: POST {url}/services/collector/event with
// "Authorization: Splunk <token>" and the events concatenated, one JSON
// object per line.
type splunkSink struct {
	*httpPoster
	endpoint string
}

func newSplunk(c SinkConfig) (*splunkSink, error) {
	p, err := newHTTPPoster(c)
	if err != nil {
		return nil, err
	}
	u, _ := url.Parse(c.URL)
	u = u.JoinPath("services", "collector", "event")
	return &splunkSink{httpPoster: p, endpoint: u.String()}, nil
}

// hecTime is epoch seconds with milliseconds, as HEC wants it.
func hecTime(t time.Time) string {
	ms := t.UnixMilli()
	return fmt.Sprintf("%d.%03d", ms/1000, ms%1000)
}

// encodeHEC appends the item's HEC envelope line.
func encodeHEC(buf []byte, it *Item, c *SinkConfig) ([]byte, error) {
	var ev []byte
	var err error
	if c.Format == "ocsf" {
		ev, err = appendJSON(nil, OCSF(it))
	} else {
		ev, err = it.NativeJSON()
	}
	if err != nil {
		return buf, err
	}
	st := c.Sourcetype
	if st == "" {
		st = "vigil:" + it.Kind
	}
	host := it.Host()
	if host == "" {
		host = factsOf(it).agentID
	}
	buf = append(buf, `{"time":`...)
	buf = append(buf, hecTime(it.Time())...)
	for _, f := range [...]struct{ k, v string }{{"host", host}, {"source", c.Source}, {"sourcetype", st}, {"index", c.Index}} {
		if f.v != "" {
			buf = append(buf, ',')
			buf = appendJSONString(buf, f.k)
			buf = append(buf, ':')
			buf = appendJSONString(buf, f.v)
		}
	}
	buf = append(buf, `,"event":`...)
	buf = append(buf, ev...)
	buf = append(buf, '}')
	return append(buf, '\n'), nil
}

func (s *splunkSink) send(ctx context.Context, items []*Item) error {
	var body []byte
	for _, it := range items {
		var err error
		if body, err = encodeHEC(body, it, &s.cfg); err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
	}
	hdr := http.Header{"Authorization": {"Splunk " + s.cfg.Token}}
	rb, err := s.post(ctx, s.endpoint, "application/json", body, hdr)
	if err != nil {
		var reply struct {
			Text string `json:"text"`
			Code int    `json:"code"`
		}
		if json.Unmarshal(rb, &reply) == nil && reply.Text != "" {
			err = fmt.Errorf("splunk HEC: %s (code %d): %w", reply.Text, reply.Code, err)
		}
		return classify(len(items), err)
	}
	var reply struct {
		Text string `json:"text"`
		Code *int   `json:"code"`
	}
	if err := json.Unmarshal(rb, &reply); err != nil || reply.Code == nil {
		return fmt.Errorf("splunk HEC: unexpected reply %q", truncate(string(rb), 200))
	}
	if *reply.Code != 0 {
		return permanentError(len(items), fmt.Errorf("splunk HEC: %s (code %d)", reply.Text, *reply.Code))
	}
	return nil
}

// Webhook: POST the items' JSON (an array) to the URL, signed:
// X-Vigil-Timestamp is the Unix time in seconds, X-Vigil-Signature
// "sha256=" + hex(HMAC-SHA256(secret, timestamp + "." + body)).
type webhookSink struct{ *httpPoster }

func newWebhook(c SinkConfig) (*webhookSink, error) {
	p, err := newHTTPPoster(c)
	if err != nil {
		return nil, err
	}
	return &webhookSink{p}, nil
}

func (s *webhookSink) send(ctx context.Context, items []*Item) error {
	docs := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		var b []byte
		var err error
		if s.cfg.Format == "ocsf" {
			b, err = appendJSON(nil, OCSF(it))
		} else {
			b, err = it.NativeJSON()
		}
		if err != nil {
			return permanentError(len(items), fmt.Errorf("encoding: %w", err))
		}
		docs = append(docs, b)
	}
	body, err := json.Marshal(docs)
	if err != nil {
		return permanentError(len(items), err)
	}
	ts := time.Now().Unix()
	hdr := http.Header{
		"X-Vigil-Timestamp": {fmt.Sprint(ts)},
		"X-Vigil-Signature": {Sign(s.cfg.Secret, ts, body)},
	}
	_, err = s.post(ctx, s.cfg.URL, "application/json", body, hdr)
	return classify(len(items), err)
}
