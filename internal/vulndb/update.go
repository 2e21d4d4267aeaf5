package vulndb

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// DefaultEcosystems are the OSV ecosystems Update fetches unless told
// otherwise: the language ecosystems Vigil's inventory finds and the
// distributions of common container base images.
var DefaultEcosystems = []string{
	"Go", "PyPI", "npm", "Maven", "crates.io", "RubyGems", "Packagist", "NuGet", "Hex", "Pub",
	"Debian", "Ubuntu", "Alpine",
}

// UpdateOptions configure Update. Zero fields take the values of
// DefaultUpdateOptions.
type UpdateOptions struct {
	// OSVBaseURL serves <base>/<ecosystem>/all.zip.
	OSVBaseURL string
	// Ecosystems to fetch from OSV; nil means DefaultEcosystems. Records
	// keep their own ecosystem strings ("Debian:12" from the Debian zip).
	Ecosystems []string
	KEVURL     string // CISA KEV catalog JSON
	EPSSURL    string // FIRST EPSS scores, CSV (gzip or plain)
	NVDURL     string // NVD CVE API 2.0 endpoint
	NVDAPIKey  string // sent as the apiKey header; raises the rate limit
	// Skip names sources not to fetch: "osv", "kev", "epss", "nvd".
	Skip []string

	// NVDRate limits NVD requests. Zero means NVD's published limits:
	// 5 requests per 30 s, or 50 per 30 s with an API key.
	NVDRate Rate
	// NVDPageSize is resultsPerPage (NVD's maximum, 2000, by default).
	NVDPageSize int
	// NVDInitialDays is how far back the first NVD fetch looks, besides
	// every CVE in KEV (120 days, one API window, by default).
	NVDInitialDays int
	// MaxRetries bounds retries of a request that failed with a network
	// error, 429, 502, 503 or 504 (NVD: also 403, its rate-limit answer).
	MaxRetries int
	// Backoff is the first retry delay, doubled on each retry, with jitter;
	// a Retry-After header overrides it.
	Backoff time.Duration
	// MaxWait is the longest single wait before a retry; a server asking
	// for more (Retry-After) fails the source at once.
	MaxWait time.Duration
	// Concurrency is the number of parallel downloads.
	Concurrency int

	HTTPClient *http.Client
	UserAgent  string
	Progress   Progress
	Logger     *slog.Logger
	// Now is the clock for FetchedAt and NVD date windows.
	Now func() time.Time
}

// DefaultUpdateOptions returns the upstream feeds and limits Update uses.
func DefaultUpdateOptions() UpdateOptions {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = 2 * time.Minute
	return UpdateOptions{
		OSVBaseURL:     "https://osv-vulnerabilities.storage.googleapis.com",
		Ecosystems:     slices.Clone(DefaultEcosystems),
		KEVURL:         "https://www.cisa.gov/sites/default/files/feeds/known_exploited_vulnerabilities.json",
		EPSSURL:        "https://epss.empiricalsecurity.com/epss_scores-current.csv.gz",
		NVDURL:         "https://services.nvd.nist.gov/rest/json/cves/2.0",
		NVDPageSize:    2000,
		NVDInitialDays: 120,
		MaxRetries:     5,
		Backoff:        6 * time.Second,
		MaxWait:        5 * time.Minute,
		Concurrency:    4,
		HTTPClient:     &http.Client{Transport: t},
		UserAgent:      "vigil-vulndb",
		Logger:         slog.New(slog.DiscardHandler),
		Now:            time.Now,
	}
}

func (o UpdateOptions) withDefaults() UpdateOptions {
	d := DefaultUpdateOptions()
	set := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	set(&o.OSVBaseURL, d.OSVBaseURL)
	set(&o.KEVURL, d.KEVURL)
	set(&o.EPSSURL, d.EPSSURL)
	set(&o.NVDURL, d.NVDURL)
	set(&o.UserAgent, d.UserAgent)
	o.OSVBaseURL = strings.TrimRight(o.OSVBaseURL, "/")
	if o.Ecosystems == nil {
		o.Ecosystems = d.Ecosystems
	}
	if o.NVDRate.Requests <= 0 || o.NVDRate.Per <= 0 {
		o.NVDRate = Rate{5, 30 * time.Second}
		if o.NVDAPIKey != "" {
			o.NVDRate = Rate{50, 30 * time.Second}
		}
	}
	if o.NVDPageSize <= 0 {
		o.NVDPageSize = d.NVDPageSize
	}
	if o.NVDInitialDays <= 0 {
		o.NVDInitialDays = d.NVDInitialDays
	}
	if o.MaxRetries <= 0 {
		o.MaxRetries = d.MaxRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = d.Backoff
	}
	if o.MaxWait <= 0 {
		o.MaxWait = d.MaxWait
	}
	if o.Concurrency <= 0 {
		o.Concurrency = d.Concurrency
	}
	if o.HTTPClient == nil {
		o.HTTPClient = d.HTTPClient
	}
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}

// Update fetches the upstream feeds into the database at dbPath, creating
// it when it does not exist: one OSV bulk zip per ecosystem, the KEV
// catalog and the EPSS scores with conditional requests (a 304 keeps that
// source's rows; a 200 replaces them), and NVD CVSS metrics incrementally
// (see the package documentation).
//
// A source that fails — a network error, an error status, a truncated or
// damaged download — keeps its previous rows and is reported in its
// SourceReport (Report.Err joins these); the others are still updated, all
// in one atomic rename at the end. Update itself returns an error only
// when nothing was written: ctx was cancelled, the database could not be
// written, or no source could be fetched at all; the database is then left
// untouched.
func Update(ctx context.Context, dbPath string, o UpdateOptions) (*Report, error) {
	o = o.withDefaults()
	now := o.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	b, warnings, err := newBuilder(ctx, dbPath, defaultCodec, o.Now, o.Logger)
	if err != nil {
		return nil, err
	}
	defer b.abort()
	prev, err := b.sources(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading sources of %s: %w", dbPath, err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(b.final), ".vulndb-download-*")
	if err != nil {
		return nil, fmt.Errorf("creating a download directory beside %s: %w", dbPath, err)
	}
	// No goroutine outlives Update, and tmp goes once they are done.
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		os.RemoveAll(tmp)
	}()

	prog := &progress{p: o.Progress}
	im := &importer{b: b, log: o.Logger, prog: prog, rep: &Report{Warnings: warnings}, now: now}
	skip := func(s string) bool { return slices.Contains(o.Skip, s) }

	var dls []*download
	if !skip("osv") {
		for _, eco := range o.Ecosystems {
			dls = append(dls, &download{name: "osv:" + eco, url: o.OSVBaseURL + "/" + url.PathEscape(eco) + "/all.zip", want: formatOSVZip})
		}
	}
	if !skip("kev") {
		dls = append(dls, &download{name: "kev", url: o.KEVURL, want: formatKEV})
	}
	if !skip("epss") {
		dls = append(dls, &download{name: "epss", url: o.EPSSURL, want: formatEPSS})
	}
	policy := retryPolicy{
		statuses:   map[int]bool{429: true, 502: true, 503: true, 504: true},
		maxRetries: o.MaxRetries, backoff: o.Backoff, maxWait: o.MaxWait,
	}
	sem := make(chan struct{}, o.Concurrency)
	for _, d := range dls {
		d.done = make(chan struct{})
		var p *sourceRow
		if r, ok := prev[d.name]; ok {
			p = &r
		}
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
				fetch(ctx, o.HTTPClient, d, p, tmp, o.UserAgent, policy, prog)
			case <-ctx.Done():
				d.err = ctx.Err()
				close(d.done)
			}
		})
	}

	type nvdOutcome struct {
		res *nvdResult
		err error
	}
	var nvdDone chan nvdOutcome
	nvdRep := &SourceReport{Name: "nvd", Origin: o.NVDURL, Format: formatNVD.String()}
	if !skip("nvd") {
		nvdDone = make(chan nvdOutcome, 1)
		nvdPolicy := policy
		nvdPolicy.statuses = map[int]bool{403: true, 429: true, 502: true, 503: true, 504: true}
		nvdPolicy.limiter = newLimiter(o.NVDRate)
		queries := nvdPlan(prev["nvd"].cursor, now, o.NVDInitialDays)
		wg.Go(func() {
			prog.start(o.NVDURL, -1)
			res, err := fetchNVD(ctx, o.HTTPClient, o.NVDURL, o.NVDAPIKey, o.UserAgent, queries, o.NVDPageSize, nvdPolicy, nvdRep, prog)
			nvdDone <- nvdOutcome{res, err}
		})
	}

	u := &updater{b: b, im: im, o: o, now: now}
	applied := 0
	for _, d := range dls {
		select {
		case <-d.done:
		case <-ctx.Done():
			return im.rep, ctx.Err()
		}
		ok, err := u.apply(ctx, d)
		if err != nil {
			return im.rep, err
		}
		if ok {
			applied++
		}
	}
	if nvdDone != nil {
		var out nvdOutcome
		select {
		case out = <-nvdDone:
		case <-ctx.Done():
			return im.rep, ctx.Err()
		}
		im.rep.add(nvdRep)
		ok, err := u.applyNVD(ctx, nvdRep, out.res, out.err)
		if err != nil {
			return im.rep, err
		}
		if ok {
			applied++
		}
	}

	if applied == 0 {
		return im.rep, fmt.Errorf("update: no source could be updated, %s is unchanged: %w", dbPath, im.rep.Err())
	}
	if err := b.commit(ctx); err != nil {
		return im.rep, err
	}
	return im.rep, nil
}

// updater applies fetched sources to a build.
type updater struct {
	b   *builder
	im  *importer
	o   UpdateOptions
	now time.Time
}

// apply stores a finished download. ok reports whether the source is now
// current (imported, or confirmed by a 304); a source that failed is
// recorded in the report. err is set only for what fails the whole update.
func (u *updater) apply(ctx context.Context, d *download) (ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	rep := u.im.rep
	switch {
	case d.err != nil:
		r := rep.add(&SourceReport{Name: d.name, Origin: d.url, Format: d.want.String()})
		r.fail(d.err)
		u.im.prog.done(d.url, d.err)
		u.o.Logger.Warn("update failed; previous data kept", "source", d.name, "err", d.err)
		return false, nil
	case d.notModified:
		rep.add(&SourceReport{Name: d.name, Origin: d.url, Format: d.want.String(), NotModified: true})
		if err := u.b.tx(ctx, func(w *writer) error { return w.touchSource(d.name, u.now) }); err != nil {
			return false, fmt.Errorf("updating %s: %w", d.name, err)
		}
		u.o.Logger.Info("not modified", "source", d.name)
		return true, nil
	}
	name := ""
	if d.want == formatOSVZip {
		name = d.name
	}
	fe := fetched{origin: d.url, etag: d.etag, lastModified: d.lastModified}
	r, err := u.im.file(ctx, d.path, d.want, d.gz, fe, name)
	os.Remove(d.path)
	if err == nil {
		return true, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if r == nil {
		r = rep.add(&SourceReport{Origin: d.url, Format: d.want.String()})
	}
	r.Name = d.name
	r.fail(fmt.Errorf("%s: %w", d.url, err))
	u.o.Logger.Warn("update failed; previous data kept", "source", d.name, "err", err)
	return false, nil
}

// applyNVD stores the result of the NVD fetch and moves its cursor to now.
func (u *updater) applyNVD(ctx context.Context, rep *SourceReport, res *nvdResult, fetchErr error) (ok bool, err error) {
	if fetchErr != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		rep.fail(fetchErr)
		u.im.prog.done(u.o.NVDURL, fetchErr)
		u.o.Logger.Warn("update failed; previous data kept", "source", "nvd", "err", fetchErr)
		return false, nil
	}
	recs := make([]nvdRecord, 0, len(res.recs))
	for _, r := range res.recs {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	err = u.b.tx(ctx, func(w *writer) error {
		newest, err := putNVD(w, recs)
		if err != nil {
			return err
		}
		return u.im.setNVDSource(w, newest, fetched{origin: u.o.NVDURL}, &u.now)
	})
	u.im.prog.done(u.o.NVDURL, err)
	if err != nil {
		return false, fmt.Errorf("storing NVD data: %w", err)
	}
	rep.Imported = len(recs)
	u.o.Logger.Info("updated", "source", "nvd", "cves", len(recs), "requests", res.requests)
	return true, nil
}
