package vulndb

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// upstream serves the real files in their upstream layout: OSV zips under
// /osv/<ecosystem>/all.zip, the KEV JSON, an EPSS csv.gz, and the NVD API
// 2.0 built from the NVD subset, with ETag/Last-Modified on the files and
// startIndex/resultsPerPage paging (at most pageCap per page) on NVD.
type upstream struct {
	mu       sync.Mutex
	files    map[string]*servedFile
	nvd      []nvdServed
	pageCap  int
	nvdFault func(n int) (status int, retryAfter string) // n counts NVD requests from 1; status 0 answers normally
	nvdCount int
	log      []served
}

type servedFile struct {
	data    []byte
	etag    string
	modTime time.Time
	cut     bool // declare the full length but send half, then drop the connection
}

type nvdServed struct {
	raw          json.RawMessage // the vulnerabilities[] element
	id           string
	lastModified time.Time
}

// served is one request as the server saw it.
type served struct {
	path, query         string
	ifNoneMatch, ifMod  string
	apiKey              string
	status              int
	at                  time.Time
	startIndex, results int
}

func newUpstream(t *testing.T) (*upstream, *httptest.Server) {
	t.Helper()
	d := sharedData(t)
	u := &upstream{files: map[string]*servedFile{}, pageCap: 3}
	mod := time.Date(2025, 8, 25, 17, 0, 0, 0, time.UTC)
	for path, file := range map[string]string{
		"/osv/Go/all.zip":   filepath.Join(d, "osv", "Go", "all.zip"),
		"/osv/PyPI/all.zip": filepath.Join(d, "osv", "PyPI", "all.zip"),
		"/kev.json":         filepath.Join(d, "kev", "known_exploited_vulnerabilities.json"),
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		u.setFile(path, b, mod)
	}
	epss, err := os.ReadFile(writeEPSS(t, t.TempDir(), syntheticEPSS(), true))
	if err != nil {
		t.Fatal(err)
	}
	u.setFile("/epss.csv.gz", epss, mod)

	var subset struct {
		Vulnerabilities []json.RawMessage `json:"vulnerabilities"`
	}
	readJSON(t, filepath.Join(d, "nvd", "nvdcve-2.0-subset.json"), &subset)
	for _, raw := range subset.Vulnerabilities {
		var v struct {
			CVE struct {
				ID           string `json:"id"`
				LastModified string `json:"lastModified"`
			} `json:"cve"`
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		lm, err := parseNVDTime(v.CVE.LastModified)
		if err != nil {
			t.Fatal(err)
		}
		u.nvd = append(u.nvd, nvdServed{raw, v.CVE.ID, lm})
	}
	srv := httptest.NewServer(u)
	t.Cleanup(srv.Close)
	return u, srv
}

func (u *upstream) setFile(path string, data []byte, mod time.Time) *servedFile {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := &servedFile{data: data, etag: fmt.Sprintf(`"%x"`, sha256.Sum256(data)), modTime: mod}
	u.files[path] = f
	return f
}

// requests returns the requests for path seen since from.
func (u *upstream) requests(path string, from int) []served {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []served
	for _, r := range u.log[from:] {
		if r.path == path {
			out = append(out, r)
		}
	}
	return out
}

func (u *upstream) mark() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.log)
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	entry := served{path: r.URL.Path, query: r.URL.RawQuery, ifNoneMatch: r.Header.Get("If-None-Match"),
		ifMod: r.Header.Get("If-Modified-Since"), apiKey: r.Header.Get("apiKey"), at: time.Now()}
	if r.URL.Path == "/nvd" {
		entry.startIndex, entry.results = u.serveNVD(rec, r)
	} else {
		u.mu.Lock()
		f := u.files[r.URL.Path]
		u.mu.Unlock()
		switch {
		case f == nil:
			http.NotFound(rec, r)
		case f.cut:
			rec.Header().Set("ETag", f.etag)
			rec.Header().Set("Content-Length", strconv.Itoa(len(f.data)))
			rec.WriteHeader(200)
			rec.Write(f.data[:len(f.data)/2])
			// Returning with a short body makes the server drop the
			// connection: the client sees an unexpected EOF.
		default:
			rec.Header().Set("ETag", f.etag)
			http.ServeContent(rec, r, "", f.modTime, bytes.NewReader(f.data))
		}
	}
	entry.status = rec.status
	u.mu.Lock()
	u.log = append(u.log, entry)
	u.mu.Unlock()
}

// serveNVD answers like the NVD CVE API 2.0 for the parameters Update uses.
func (u *upstream) serveNVD(w http.ResponseWriter, r *http.Request) (start, n int) {
	u.mu.Lock()
	u.nvdCount++
	count, fault := u.nvdCount, u.nvdFault
	u.mu.Unlock()
	if fault != nil {
		if status, after := fault(count); status != 0 {
			if after != "" {
				w.Header().Set("Retry-After", after)
			}
			http.Error(w, http.StatusText(status), status)
			return 0, 0
		}
	}
	q := r.URL.Query()
	start, _ = strconv.Atoi(q.Get("startIndex"))
	per, _ := strconv.Atoi(q.Get("resultsPerPage"))
	if per <= 0 || per > 2000 || start < 0 {
		http.Error(w, "bad paging", 404)
		return 0, 0
	}
	per = min(per, u.pageCap)
	var match []nvdServed
	switch {
	case q.Has("hasKev"):
		match = u.nvd // every CVE of the subset is in KEV
	case q.Has("lastModStartDate"):
		const layout = "2006-01-02T15:04:05.000-07:00"
		from, err1 := time.Parse(layout, q.Get("lastModStartDate"))
		to, err2 := time.Parse(layout, q.Get("lastModEndDate"))
		if err1 != nil || err2 != nil || to.Before(from) || to.Sub(from) > 120*24*time.Hour {
			w.Header().Set("Message", "Invalid date range")
			http.Error(w, "bad dates", 404)
			return 0, 0
		}
		for _, v := range u.nvd {
			if !v.lastModified.Before(from) && !v.lastModified.After(to) {
				match = append(match, v)
			}
		}
	default:
		http.Error(w, "unsupported query", 404)
		return 0, 0
	}
	page := []json.RawMessage{}
	for i := start; i < len(match) && i < start+per; i++ {
		page = append(page, match[i].raw)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"resultsPerPage": len(page), "startIndex": start, "totalResults": len(match),
		"format": "NVD_CVE", "version": "2.0", "timestamp": "2025-10-25T00:00:00.000",
		"vulnerabilities": page,
	})
	return start, len(page)
}

// contentDigest hashes the data tables of a database (not meta or sources).
func contentDigest(t *testing.T, path string) string {
	t.Helper()
	db := openDB(t, path)
	h := sha256.New()
	for _, q := range []string{
		`SELECT source, id, modified, withdrawn, hex(data) FROM advisories ORDER BY source, id`,
		`SELECT ecosystem, name, adv FROM affected ORDER BY 1, 2, 3`,
		`SELECT * FROM kev ORDER BY cve`,
		`SELECT * FROM epss ORDER BY cve`,
		`SELECT * FROM nvd_cvss ORDER BY cve, seq`,
	} {
		rows, err := db.sql.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rows.Next() {
			rows.Scan(ptrs...)
			fmt.Fprintln(h, vals...)
		}
		rows.Close()
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

func statusByName(t *testing.T, path string) map[string]SourceStatus {
	t.Helper()
	st, err := openDB(t, path).Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]SourceStatus{}
	for _, s := range st {
		m[s.Name] = s
	}
	return m
}

// TestUpdate runs Update against a fake upstream serving the real files:
// first download, 304s, a truncated zip, NVD rate limiting and failure.
func TestUpdate(t *testing.T) {
	u, srv := newUpstream(t)
	path := filepath.Join(t.TempDir(), "vulndb.sqlite")
	t0 := time.Date(2025, 10, 25, 12, 0, 0, 0, time.UTC)
	opts := func(now time.Time) UpdateOptions {
		return UpdateOptions{
			OSVBaseURL: srv.URL + "/osv",
			Ecosystems: []string{"Go", "PyPI"},
			KEVURL:     srv.URL + "/kev.json",
			EPSSURL:    srv.URL + "/epss.csv.gz",
			NVDURL:     srv.URL + "/nvd",
			NVDAPIKey:  "test-key",
			NVDRate:    Rate{1000, time.Second},
			Backoff:    time.Millisecond,
			MaxWait:    5 * time.Second,
			Now:        func() time.Time { return now },
		}
	}
	ctx := t.Context()
	osvSources := []string{"osv:Go", "osv:PyPI", "kev", "epss"}

	// First run: everything downloaded, NVD's first fetch (hasKev plus
	// the last 120 days) paged three CVEs at a time.
	rep, err := Update(ctx, path, opts(t0))
	if err != nil || rep.Err() != nil {
		t.Fatalf("first Update: %v / %v", err, rep.Err())
	}
	for _, name := range osvSources {
		if s := rep.Source(name); s == nil || s.Imported == 0 || s.NotModified {
			t.Errorf("first run, %s: %+v", name, s)
		}
	}
	goRaw, _ := zipRecords(t, filepath.Join(sharedData(t), "osv", "Go", "all.zip"))
	if s := rep.Source("osv:Go"); s.Imported != len(goRaw) || s.Entries != len(goRaw) {
		t.Errorf("osv:Go imported %d of %d entries; the zip has %d", s.Imported, s.Entries, len(goRaw))
	}
	if s := rep.Source("nvd"); s == nil || s.Imported != len(u.nvd) {
		t.Errorf("first run, nvd: %+v, want %d CVEs", s, len(u.nvd))
	}
	nvdReqs := u.requests("/nvd", 0)
	var hasKev []int
	for _, r := range nvdReqs {
		if r.apiKey != "test-key" {
			t.Errorf("NVD request without the apiKey header: %+v", r)
		}
		if strings.HasPrefix(r.query, "hasKev&") {
			hasKev = append(hasKev, r.startIndex)
		}
	}
	if fmt.Sprint(hasKev) != "[0 3 6]" {
		t.Errorf("hasKev pages at startIndex %v, want [0 3 6]", hasKev)
	}
	for _, p := range []string{"/osv/Go/all.zip", "/kev.json"} {
		if r := u.requests(p, 0); len(r) != 1 || r[0].ifNoneMatch != "" || r[0].status != 200 {
			t.Errorf("first run, %s: %+v", p, r)
		}
	}
	db := openDB(t, path)
	if c, _ := db.CVSS(ctx, "CVE-2020-11651"); len(c) == 0 || c[0].BaseScore != 9.8 {
		t.Errorf("CVSS after update: %+v", c)
	}
	if e, _ := db.EPSS(ctx, "CVE-2020-11651"); e == nil {
		t.Error("no EPSS after update")
	}
	if a, _ := db.Advisories(ctx, "Go", "stdlib"); len(a) == 0 {
		t.Error("no Go advisories after update")
	}
	first := statusByName(t, path)
	digest := contentDigest(t, path)

	t.Run("not modified", func(t *testing.T) {
		m := u.mark()
		t1 := t0.Add(time.Hour)
		rep, err := Update(ctx, path, opts(t1))
		if err != nil || rep.Err() != nil {
			t.Fatalf("Update: %v / %v", err, rep.Err())
		}
		for _, name := range osvSources {
			if s := rep.Source(name); s == nil || !s.NotModified {
				t.Errorf("%s: %+v, want not modified", name, s)
			}
		}
		for _, p := range []string{"/osv/Go/all.zip", "/osv/PyPI/all.zip", "/kev.json", "/epss.csv.gz"} {
			r := u.requests(p, m)
			if len(r) != 1 || r[0].status != http.StatusNotModified || r[0].ifNoneMatch != first[sourceOf(p)].ETag || r[0].ifMod == "" {
				t.Errorf("%s: %+v, want one conditional request answered 304 (ETag %s)", p, r, first[sourceOf(p)].ETag)
			}
		}
		// NVD: one incremental window from the previous fetch (with the
		// overlap) to now.
		r := u.requests("/nvd", m)
		if len(r) != 1 {
			t.Errorf("NVD requests %+v, want one", r)
		} else if q, _ := url.ParseQuery(r[0].query); q.Get("lastModStartDate") != nvdTime(t0.Add(-nvdOverlap)) || q.Get("lastModEndDate") != nvdTime(t1) {
			t.Errorf("NVD query %s, want the window %s to %s", r[0].query, nvdTime(t0.Add(-nvdOverlap)), nvdTime(t1))
		}
		if got := contentDigest(t, path); got != digest {
			t.Error("the data changed although upstream answered 304")
		}
		st := statusByName(t, path)
		for _, name := range osvSources {
			if st[name].ETag != first[name].ETag || !st[name].FetchedAt.Equal(first[name].FetchedAt) || !st[name].CheckedAt.Equal(t1) {
				t.Errorf("%s status %+v, before %+v", name, st[name], first[name])
			}
		}
	})

	t.Run("truncated zip", func(t *testing.T) {
		good := u.files["/osv/Go/all.zip"]
		defer u.setFile("/osv/Go/all.zip", good.data, good.modTime)
		for _, cut := range []bool{false, true} {
			f := u.setFile("/osv/Go/all.zip", good.data[:len(good.data)/2], good.modTime.Add(time.Hour))
			if cut {
				f = u.setFile("/osv/Go/all.zip", good.data, good.modTime.Add(time.Hour))
				f.cut = true
			}
			before := statusByName(t, path)["osv:Go"]
			goBefore, _ := openDB(t, path).Advisories(ctx, "Go", "stdlib")
			rep, err := Update(ctx, path, opts(t0.Add(2*time.Hour)))
			if err != nil {
				t.Fatalf("cut=%v: Update failed as a whole: %v", cut, err)
			}
			s := rep.Source("osv:Go")
			if s == nil || s.Err == nil || !strings.Contains(rep.Err().Error(), "osv:Go") {
				t.Fatalf("cut=%v: osv:Go report %+v, Err %v; want a failure", cut, s, rep.Err())
			}
			if kev := rep.Source("kev"); kev == nil || kev.Err != nil {
				t.Errorf("cut=%v: kev %+v, want it updated regardless", cut, kev)
			}
			after := statusByName(t, path)["osv:Go"]
			goAfter, _ := openDB(t, path).Advisories(ctx, "Go", "stdlib")
			if after.ETag != before.ETag || !after.FetchedAt.Equal(before.FetchedAt) || mustJSON(t, goAfter) != mustJSON(t, goBefore) || len(goAfter) == 0 {
				t.Errorf("cut=%v: Go data or status changed after a failed download: %+v → %+v", cut, before, after)
			}
		}
	})

	t.Run("NVD 429 then success", func(t *testing.T) {
		m := u.mark()
		u.mu.Lock()
		base := u.nvdCount
		u.nvdFault = func(n int) (int, string) {
			if n == base+1 {
				return http.StatusTooManyRequests, "1"
			}
			return 0, ""
		}
		u.mu.Unlock()
		defer func() { u.mu.Lock(); u.nvdFault = nil; u.mu.Unlock() }()
		rep, err := Update(ctx, path, opts(t0.Add(3*time.Hour)))
		if err != nil || rep.Err() != nil {
			t.Fatalf("Update: %v / %v", err, rep.Err())
		}
		r := u.requests("/nvd", m)
		if len(r) < 2 || r[0].status != 429 || r[1].status != 200 || r[1].query != r[0].query {
			t.Fatalf("NVD requests %+v, want a 429 and the same request again", r)
		}
		if wait := r[1].at.Sub(r[0].at); wait < time.Second {
			t.Errorf("retried after %v, Retry-After said 1s", wait)
		}
		if st := statusByName(t, path)["nvd"]; !st.CheckedAt.Equal(t0.Add(3 * time.Hour)) {
			t.Errorf("nvd status %+v after a successful retry", st)
		}
	})

	t.Run("NVD 403 persistently", func(t *testing.T) {
		u.mu.Lock()
		u.nvdFault = func(int) (int, string) { return http.StatusForbidden, "" }
		u.mu.Unlock()
		defer func() { u.mu.Lock(); u.nvdFault = nil; u.mu.Unlock() }()
		// KEV changes upstream in the same run: it is still updated.
		var kev map[string]any
		json.Unmarshal(u.files["/kev.json"].data, &kev)
		vulns := kev["vulnerabilities"].([]any)
		kev["vulnerabilities"], kev["count"] = vulns[:10], 10
		b, _ := json.Marshal(kev)
		good := u.files["/kev.json"]
		u.setFile("/kev.json", b, good.modTime.Add(time.Hour))
		defer u.setFile("/kev.json", good.data, good.modTime)

		before := statusByName(t, path)["nvd"]
		cvssBefore, _ := openDB(t, path).CVSS(ctx, "CVE-2020-11651")
		m := u.mark()
		o := opts(t0.Add(4 * time.Hour))
		o.MaxRetries = 2
		rep, err := Update(ctx, path, o)
		if err != nil {
			t.Fatalf("Update failed as a whole: %v", err)
		}
		if s := rep.Source("nvd"); s == nil || s.Err == nil || !strings.Contains(s.Error, "403") {
			t.Fatalf("nvd report %+v, want a 403 failure", s)
		}
		if n := len(u.requests("/nvd", m)); n != 3 {
			t.Errorf("%d NVD requests, want 3 (two retries)", n)
		}
		if s := rep.Source("kev"); s == nil || s.Err != nil || s.Imported != 10 {
			t.Errorf("kev %+v, want the new catalog of 10", s)
		}
		after := statusByName(t, path)["nvd"]
		cvssAfter, _ := openDB(t, path).CVSS(ctx, "CVE-2020-11651")
		if !after.CheckedAt.Equal(before.CheckedAt) || mustJSON(t, cvssAfter) != mustJSON(t, cvssBefore) {
			t.Errorf("NVD data or status changed after a failed fetch: %+v → %+v", before, after)
		}
	})

	t.Run("long gap splits NVD windows", func(t *testing.T) {
		m := u.mark()
		last := statusByName(t, path)["nvd"].CheckedAt
		now := last.Add(300 * 24 * time.Hour)
		rep, err := Update(ctx, path, opts(now))
		if err != nil || rep.Err() != nil {
			t.Fatalf("Update: %v / %v", err, rep.Err())
		}
		var windows [][2]time.Time
		for _, r := range u.requests("/nvd", m) {
			q, _ := url.ParseQuery(r.query)
			from, _ := time.Parse("2006-01-02T15:04:05.000-07:00", q.Get("lastModStartDate"))
			to, _ := time.Parse("2006-01-02T15:04:05.000-07:00", q.Get("lastModEndDate"))
			if r.startIndex == 0 {
				windows = append(windows, [2]time.Time{from, to})
			}
		}
		if len(windows) != 3 || !windows[0][0].Equal(last.Add(-nvdOverlap)) || !windows[2][1].Equal(now) {
			t.Fatalf("windows %v, want 3 covering %v to %v", windows, last.Add(-nvdOverlap), now)
		}
		for i, w := range windows {
			if w[1].Sub(w[0]) > 120*24*time.Hour || (i > 0 && !w[0].Equal(windows[i-1][1])) {
				t.Errorf("window %d %v is too long or not contiguous", i, w)
			}
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		before := fileHash(t, path)
		// Go's zip changes upstream, so it is downloaded; the run is
		// cancelled as soon as bytes arrive.
		good := u.files["/osv/Go/all.zip"]
		f := u.setFile("/osv/Go/all.zip", good.data, good.modTime.Add(2*time.Hour))
		f.etag = `"changed"`
		defer u.setFile("/osv/Go/all.zip", good.data, good.modTime)
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		p := &cancelOnAdd{cancel: cancel, after: 1}
		o := opts(statusByName(t, path)["nvd"].CheckedAt.Add(time.Hour))
		o.Progress = p
		if _, err := Update(ctx, path, o); !errors.Is(err, context.Canceled) {
			t.Fatalf("Update = %v, want context.Canceled", err)
		}
		if p.seen == 0 {
			t.Fatal("nothing was under way when the update was cancelled")
		}
		assertUntouched(t, path, before)
	})

	t.Run("nothing reachable", func(t *testing.T) {
		before := fileHash(t, path)
		o := opts(statusByName(t, path)["nvd"].CheckedAt.Add(24 * time.Hour))
		o.OSVBaseURL, o.KEVURL, o.EPSSURL, o.NVDURL = srv.URL+"/gone", srv.URL+"/gone", srv.URL+"/gone", srv.URL+"/gone"
		rep, err := Update(ctx, path, o)
		if err == nil || rep == nil || len(rep.Sources) != 5 {
			t.Fatalf("Update with every source failing = %v, %+v", err, rep)
		}
		assertUntouched(t, path, before)
	})
}

func sourceOf(path string) string {
	switch path {
	case "/kev.json":
		return "kev"
	case "/epss.csv.gz":
		return "epss"
	}
	return "osv:" + strings.Split(path, "/")[2]
}

// TestLimiter checks that no window of Per holds more than Requests.
func TestLimiter(t *testing.T) {
	l := newLimiter(Rate{Requests: 2, Per: 100 * time.Millisecond})
	var at []time.Time
	for range 5 {
		if err := l.wait(t.Context()); err != nil {
			t.Fatal(err)
		}
		at = append(at, time.Now())
	}
	for i := 2; i < len(at); i++ {
		if d := at[i].Sub(at[i-2]); d < 100*time.Millisecond {
			t.Errorf("requests %d and %d were %v apart: three in one window", i-2, i, d)
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := l.wait(ctx); err == nil {
		t.Error("wait with a cancelled context succeeded")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{"-1", 0, false},
		{"Wed, 01 Jan 2025 00:00:30 GMT", 30 * time.Second, true},
		{"Tue, 31 Dec 2024 23:00:00 GMT", 0, true},
		{"soon", 0, false},
	} {
		got, ok := retryAfter(tt.in, now)
		if got != tt.want || ok != tt.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
	p := retryPolicy{backoff: 100 * time.Millisecond, maxWait: time.Second}
	for attempt := range 8 {
		d := p.delay(attempt, nil, now)
		hi := min(p.backoff<<attempt, p.maxWait)
		if d < hi/2 || d > hi {
			t.Errorf("delay(%d) = %v, want within [%v, %v]", attempt, d, hi/2, hi)
		}
	}
}

func TestNVDPlan(t *testing.T) {
	now := time.Date(2025, 10, 25, 0, 0, 0, 0, time.UTC)
	first := nvdPlan("", now, 200)
	if len(first) != 3 || first[0] != "hasKev" {
		t.Errorf("first plan %q, want hasKev and two windows for 200 days", first)
	}
	next := nvdPlan(formatTime(now.Add(-time.Hour)), now, 200)
	if len(next) != 1 || slices.Contains(next, "hasKev") {
		t.Errorf("incremental plan %q, want one window", next)
	}
	if p := nvdPlan(formatTime(now.Add(time.Hour)), now, 200); len(p) != 0 {
		t.Errorf("plan with a cursor in the future = %q, want nothing", p)
	}
}
