package vulndb

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Import adds the data in paths to the database at dbPath, creating it when
// it does not exist. Each path is a file or a directory (walked
// recursively, hidden directories skipped) and each file is recognised by
// its content: an OSV bulk zip, an OSV JSON record, the CISA KEV catalog,
// an EPSS CSV (plain or gzip), an NVD API 2.0 response or cve object, an
// Alpine secdb file, or a database written by Export, which replaces the
// whole database (later paths are applied on top of it).
//
// A bad record inside a usable source is skipped and reported. Anything
// worse — a file of no known format given by name, a damaged zip, a KEV
// file of the wrong shape, a source with no valid record — fails the whole
// import, and the database at dbPath is left exactly as it was. The same
// holds when ctx is cancelled.
func Import(ctx context.Context, dbPath string, paths []string, o Options) (*Report, error) {
	o = o.withDefaults()
	if len(paths) == 0 {
		return nil, errors.New("import: no files given")
	}
	b, warnings, err := newBuilder(ctx, dbPath, defaultCodec, o.Now, o.Logger)
	if err != nil {
		return nil, err
	}
	defer b.abort()
	im := &importer{b: b, log: o.Logger, prog: &progress{p: o.Progress}, rep: &Report{Warnings: warnings}, now: o.Now()}
	for _, p := range paths {
		if err := im.path(ctx, p); err != nil {
			return im.rep, err
		}
	}
	if err := b.commit(ctx); err != nil {
		return im.rep, err
	}
	return im.rep, nil
}

// importer writes sources into a build.
type importer struct {
	b    *builder
	log  *slog.Logger
	prog *progress
	rep  *Report
	now  time.Time
}

// fetched says where a source's data came from.
type fetched struct {
	origin       string // absolute path or URL
	etag         string
	lastModified string
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}

func (im *importer) path(ctx context.Context, p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	if fi.IsDir() {
		if err := im.dir(ctx, p); err != nil {
			return fmt.Errorf("import %s: %w", p, err)
		}
		return nil
	}
	f, gz, err := detectFile(p)
	if err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	if _, err := im.file(ctx, p, f, gz, fetched{origin: absPath(p)}, ""); err != nil {
		return fmt.Errorf("import %s: %w", p, err)
	}
	return nil
}

// file imports one file of format f. name, when set, is the source name
// for an OSV zip (Update knows it); otherwise it follows from the content.
func (im *importer) file(ctx context.Context, p string, f format, gz bool, fe fetched, name string) (*SourceReport, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch f {
	case formatOSVZip:
		return im.osvZip(ctx, p, fe, name)
	case formatOSV:
		return im.osvFiles(ctx, "osv-file:"+fe.origin, "osv-json", fe, []osvFile{{p, gz}})
	case formatKEV:
		return im.kev(ctx, p, gz, fe)
	case formatEPSS:
		return im.epss(ctx, p, gz, fe)
	case formatNVD:
		return im.nvd(ctx, fe, []osvFile{{p, gz}})
	case formatSecdb:
		return im.secdb(ctx, p, gz, fe)
	case formatDB:
		rep := im.rep.add(&SourceReport{Name: "vigil-db", Origin: fe.origin, Format: f.String()})
		if err := im.b.replaceWith(ctx, p); err != nil {
			rep.fail(err)
			return rep, err
		}
		srcs, err := im.b.sources(ctx)
		if err != nil {
			return rep, err
		}
		rep.Entries, rep.Imported = len(srcs), len(srcs)
		im.log.Info("database replaced by export", "origin", fe.origin, "sources", len(srcs))
		return rep, nil
	}
	return nil, errUnrecognised
}

// dir imports every recognised file under root. Its OSV records form one
// source, "osv-dir:<root>", and its NVD files one batch; other files are
// sources of their own. Files of no known format are skipped with a
// warning.
func (im *importer) dir(ctx context.Context, root string) error {
	var osv, nvd []osvFile
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, gz, err := detectFile(p)
		switch {
		case err != nil:
			im.rep.warnf("%s: skipped: %v", p, err)
		case f == formatOSV:
			osv = append(osv, osvFile{p, gz})
		case f == formatNVD:
			nvd = append(nvd, osvFile{p, gz})
		case f == formatDB:
			im.rep.warnf("%s: skipped: a database export replaces the whole database; name it on its own", p)
		default:
			if _, err := im.file(ctx, p, f, gz, fetched{origin: absPath(p)}, ""); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	root = absPath(root)
	if len(nvd) > 0 {
		if _, err := im.nvd(ctx, fetched{origin: root}, nvd); err != nil {
			return err
		}
	}
	if len(osv) > 0 {
		_, err = im.osvFiles(ctx, "osv-dir:"+root, "osv-dir", fetched{origin: root}, osv)
	}
	return err
}

// osvFile is a file to read, gzip-compressed or not.
type osvFile struct {
	path string
	gz   bool
}

// osvFiles imports OSV JSON files as the source name.
func (im *importer) osvFiles(ctx context.Context, name, form string, fe fetched, files []osvFile) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Name: name, Origin: fe.origin, Format: form})
	im.prog.start(fe.origin, int64(len(files)))
	err := im.b.tx(ctx, func(w *writer) error {
		if err := w.deleteAdvisories(name); err != nil {
			return err
		}
		sink := newAdvSink(w, name, rep)
		err := pipeline(ctx, len(files), func(i int) osvEntry {
			f := files[i]
			e := osvEntry{name: f.path, size: 1}
			if rel, err := filepath.Rel(fe.origin, f.path); err == nil && !strings.HasPrefix(rel, "..") && rel != "." {
				e.name = rel
			}
			data, err := readContent(f.path, f.gz)
			if err == nil && len(data) > maxRecordSize {
				err = fmt.Errorf("larger than %d bytes", maxRecordSize)
			}
			if err != nil {
				e.skip, e.bad = "unreadable file", err
				return e
			}
			return parseOSVEntry(w.codec, e, data)
		}, func(e osvEntry) error {
			im.prog.add(fe.origin, e.size)
			return consumeOSV(sink, e)
		})
		if err != nil {
			return err
		}
		if rep.Imported == 0 {
			return fmt.Errorf("no valid OSV record in %d files%s", rep.Entries, rep.firstWarning())
		}
		return im.finishAdvisories(w, name, sink, fe)
	})
	return im.finish(rep, err)
}

// osvZip imports an OSV bulk zip. Its source is name when given, else
// "osv:<ecosystem>" from the records (see advSink.ecosystemName), else
// "osv-zip:<origin>".
func (im *importer) osvZip(ctx context.Context, p string, fe fetched, name string) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Name: name, Origin: fe.origin, Format: formatOSVZip.String()})
	zr, err := zip.OpenReader(p)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // names are never used as paths here
		return im.finish(rep, err)
	}
	defer zr.Close()
	var size int64
	if fi, err := os.Stat(p); err == nil {
		size = fi.Size()
	}
	im.prog.start(fe.origin, size)
	err = im.b.tx(ctx, func(w *writer) error {
		sink := newAdvSink(w, provisionalSource, rep)
		if err := readOSVZip(w, &zr.Reader, sink, im.prog); err != nil {
			return err
		}
		if rep.Name == "" {
			rep.Name = sink.ecosystemName()
		}
		if rep.Name == "" {
			rep.Name = "osv-zip:" + fe.origin
		}
		if err := w.renameAdvisories(provisionalSource, rep.Name); err != nil {
			return err
		}
		return im.finishAdvisories(w, rep.Name, sink, fe)
	})
	return im.finish(rep, err)
}

// finishAdvisories writes the sources row of an advisory source.
func (im *importer) finishAdvisories(w *writer, name string, sink *advSink, fe fetched) error {
	n, err := w.count(`SELECT count(*) FROM advisories WHERE source = ?`, name)
	if err != nil {
		return err
	}
	return w.setSource(im.row(name, n, sink.newest, fe))
}

func (im *importer) row(name string, records int, upstream time.Time, fe fetched) sourceRow {
	return sourceRow{SourceStatus: SourceStatus{
		Name: name, Records: records, UpstreamDate: upstream, FetchedAt: im.now, CheckedAt: im.now,
		Origin: fe.origin, ETag: fe.etag, LastModified: fe.lastModified,
	}}
}

// finish logs the outcome of a source and records a failure in its report.
func (im *importer) finish(rep *SourceReport, err error) (*SourceReport, error) {
	im.prog.done(rep.Origin, err)
	if err != nil {
		rep.fail(err)
		return rep, err
	}
	skipped := 0
	for _, n := range rep.Skipped {
		skipped += n
	}
	im.log.Info("imported", "source", rep.Name, "origin", rep.Origin, "records", rep.Imported,
		"skipped", skipped, "warnings", len(rep.Warnings)+rep.WarningsDropped)
	return rep, nil
}

func (im *importer) kev(ctx context.Context, p string, gz bool, fe fetched) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Name: "kev", Origin: fe.origin, Format: formatKEV.String()})
	im.prog.start(fe.origin, -1)
	data, err := readContent(p, gz)
	if err != nil {
		return im.finish(rep, err)
	}
	cat, err := parseKEV(data, rep)
	if err != nil {
		return im.finish(rep, err)
	}
	err = im.b.tx(ctx, func(w *writer) error {
		if _, err := w.exec(`DELETE FROM kev`); err != nil {
			return err
		}
		for i := range cat.Entries {
			if err := w.putKEV(&cat.Entries[i]); err != nil {
				return err
			}
		}
		rep.Imported = len(cat.Entries)
		return w.setSource(im.row("kev", len(cat.Entries), cat.Released, fe))
	})
	return im.finish(rep, err)
}

func (im *importer) epss(ctx context.Context, p string, gz bool, fe fetched) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Name: "epss", Origin: fe.origin, Format: formatEPSS.String()})
	im.prog.start(fe.origin, -1)
	rc, err := openContent(p, gz)
	if err != nil {
		return im.finish(rep, err)
	}
	defer rc.Close()
	err = im.b.tx(ctx, func(w *writer) error {
		if _, err := w.exec(`DELETE FROM epss`); err != nil {
			return err
		}
		h, err := parseEPSS(ctxReader{ctx, rc}, rep, func(e *EPSS) error {
			rep.Imported++
			return w.putEPSS(e)
		})
		if err != nil {
			return err
		}
		date, _ := time.Parse(time.DateOnly, h.Date)
		n, err := w.count(`SELECT count(*) FROM epss`)
		if err != nil {
			return err
		}
		return w.setSource(im.row("epss", n, date, fe))
	})
	return im.finish(rep, err)
}

func (im *importer) nvd(ctx context.Context, fe fetched, files []osvFile) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Name: "nvd", Origin: fe.origin, Format: formatNVD.String()})
	im.prog.start(fe.origin, int64(len(files)))
	var recs []nvdRecord
	for _, f := range files {
		data, err := readContent(f.path, f.gz)
		if err != nil {
			return im.finish(rep, fmt.Errorf("%s: %w", f.path, err))
		}
		page, err := parseNVD(data, rep)
		if err != nil {
			return im.finish(rep, fmt.Errorf("%s: %w", f.path, err))
		}
		rep.Entries += page.Entries
		recs = append(recs, page.Records...)
		im.prog.add(fe.origin, 1)
	}
	err := im.b.tx(ctx, func(w *writer) error {
		newest, err := putNVD(w, recs)
		if err != nil {
			return err
		}
		rep.Imported = len(recs)
		return im.setNVDSource(w, newest, fe, nil)
	})
	return im.finish(rep, err)
}

// putNVD stores NVD records (a rejected CVE loses its metrics) and returns
// the newest lastModified among them.
func putNVD(w *writer, recs []nvdRecord) (time.Time, error) {
	var newest time.Time
	for _, r := range recs {
		if err := w.ctx.Err(); err != nil {
			return newest, err
		}
		ms := r.Metrics
		if r.Rejected {
			ms = nil
		}
		if err := w.putCVSS(r.ID, ms); err != nil {
			return newest, err
		}
		if r.LastModified.After(newest) {
			newest = r.LastModified
		}
	}
	return newest, nil
}

// setNVDSource updates the "nvd" row after a merge; cursor, when set, is
// the new end of the incremental window.
func (im *importer) setNVDSource(w *writer, newest time.Time, fe fetched, cursor *time.Time) error {
	prev, _, err := w.source("nvd")
	if err != nil {
		return err
	}
	n, err := w.count(`SELECT count(DISTINCT cve) FROM nvd_cvss`)
	if err != nil {
		return err
	}
	r := im.row("nvd", n, newest, fe)
	if prev.UpstreamDate.After(newest) {
		r.UpstreamDate = prev.UpstreamDate
	}
	r.cursor = prev.cursor
	if cursor != nil {
		r.cursor = formatTime(*cursor)
	}
	return w.setSource(r)
}

func (im *importer) secdb(ctx context.Context, p string, gz bool, fe fetched) (*SourceReport, error) {
	rep := im.rep.add(&SourceReport{Origin: fe.origin, Format: formatSecdb.String()})
	im.prog.start(fe.origin, -1)
	data, err := readContent(p, gz)
	if err != nil {
		return im.finish(rep, err)
	}
	s, err := parseSecdb(data, rep)
	if err != nil {
		return im.finish(rep, err)
	}
	rep.Name = s.Source()
	if len(s.Advs) == 0 {
		rep.warnf("no advisories: the file lists no fixed CVE")
	}
	err = im.b.tx(ctx, func(w *writer) error {
		if err := w.deleteAdvisories(rep.Name); err != nil {
			return err
		}
		sink := newAdvSink(w, rep.Name, rep)
		type result struct {
			p   prepared
			err error
		}
		err := pipeline(ctx, len(s.Advs), func(i int) result {
			p, err := prepare(w.codec, s.Advs[i])
			return result{p, err}
		}, func(r result) error {
			if r.err != nil {
				return r.err
			}
			return sink.put(r.p, r.p.a.ID)
		})
		if err != nil {
			return err
		}
		return im.finishAdvisories(w, rep.Name, sink, fe)
	})
	return im.finish(rep, err)
}
