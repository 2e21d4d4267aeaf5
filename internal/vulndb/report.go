package vulndb

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Report says what an Import or Update did, source by source.
type Report struct {
	Sources []*SourceReport `json:"sources"`
	// Warnings are about the run rather than one source (an unrecognised
	// file in a directory, an old database rebuilt).
	Warnings []string `json:"warnings,omitempty"`
	// WarningsDropped counts warnings beyond the first maxWarnings.
	WarningsDropped int `json:"warnings_dropped,omitempty"`
}

func (r *Report) warnf(format string, args ...any) {
	if len(r.Warnings) >= maxWarnings {
		r.WarningsDropped++
		return
	}
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Source returns the report of the named source, nil when there is none.
func (r *Report) Source(name string) *SourceReport {
	for _, s := range r.Sources {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Err joins the errors of the sources that failed, nil when none did.
func (r *Report) Err() error {
	var errs []error
	for _, s := range r.Sources {
		if s.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, s.Err))
		}
	}
	return errors.Join(errs...)
}

func (r *Report) add(s *SourceReport) *SourceReport {
	r.Sources = append(r.Sources, s)
	return s
}

// maxWarnings bounds SourceReport.Warnings; the rest are only counted.
const maxWarnings = 50

// SourceReport is the outcome for one source.
type SourceReport struct {
	Name   string `json:"name"`   // as in SourceStatus.Name
	Origin string `json:"origin"` // file path or URL
	Format string `json:"format"` // osv-zip, osv-dir, osv-json, kev, epss, nvd, alpine-secdb, vigil-db
	// Entries counts what was read: zip entries or files, KEV
	// vulnerabilities, EPSS rows, NVD CVE records, secdb package entries.
	Entries int `json:"entries"`
	// Imported counts records written: advisories, KEV entries, EPSS
	// scores, NVD CVEs.
	Imported int `json:"imported"`
	// Withdrawn counts imported OSV advisories that are withdrawn.
	Withdrawn int `json:"withdrawn,omitempty"`
	// Skipped counts entries left out, by reason.
	Skipped  map[string]int `json:"skipped,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
	// WarningsDropped counts warnings beyond the first maxWarnings.
	WarningsDropped int `json:"warnings_dropped,omitempty"`
	// NotModified is set when upstream answered 304: the stored rows were
	// kept as they were.
	NotModified bool `json:"not_modified,omitempty"`
	// Err is set when the source failed and its previous rows were kept
	// (Update only: a failing source fails a whole Import).
	Err   error  `json:"-"`
	Error string `json:"error,omitempty"`
}

// skip counts an entry left out for reason, with a warning naming it.
func (s *SourceReport) skip(reason, format string, args ...any) {
	if s.Skipped == nil {
		s.Skipped = map[string]int{}
	}
	s.Skipped[reason]++
	s.warnf(format, args...)
}

func (s *SourceReport) warnf(format string, args ...any) {
	if len(s.Warnings) >= maxWarnings {
		s.WarningsDropped++
		return
	}
	s.Warnings = append(s.Warnings, fmt.Sprintf(format, args...))
}

func (s *SourceReport) fail(err error) {
	s.Err = err
	s.Error = err.Error()
}

// firstWarning is used in errors for sources with no usable record.
func (s *SourceReport) firstWarning() string {
	if len(s.Warnings) == 0 {
		return ""
	}
	return " (first problem: " + s.Warnings[0] + ")"
}

// Progress receives progress reports from Import and Update. A source is
// named by its file path or URL (an Update download is started once to
// fetch it and once to import it). Calls are serialised; total is -1 when
// unknown.
type Progress interface {
	// Start is called when work on a source starts (a download or a file).
	Start(source string, total int64)
	// Add reports n more bytes read for source.
	Add(source string, n int64)
	// Done is called when the source is finished; err is nil on success.
	Done(source string, err error)
}

// progress serialises calls to a Progress that may be nil.
type progress struct {
	mu sync.Mutex
	p  Progress
}

func (p *progress) start(source string, total int64) {
	if p == nil || p.p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Start(source, total)
}

func (p *progress) add(source string, n int64) {
	if p == nil || p.p == nil || n == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Add(source, n)
}

func (p *progress) done(source string, err error) {
	if p == nil || p.p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.p.Done(source, err)
}

// Options configure Import.
type Options struct {
	// Logger receives a line per source; nil discards.
	Logger *slog.Logger
	// Progress, if set, is told about each file read.
	Progress Progress
	// Now is the clock used for FetchedAt and Built; nil means time.Now.
	Now func() time.Time
}

// DefaultOptions returns the options Import uses for zero fields: no
// logging, no progress, the wall clock.
func DefaultOptions() Options {
	return Options{Logger: slog.New(slog.DiscardHandler), Now: time.Now}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Logger == nil {
		o.Logger = d.Logger
	}
	if o.Now == nil {
		o.Now = d.Now
	}
	return o
}
