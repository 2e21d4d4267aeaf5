package vulndb

import (
	"archive/zip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
	"unicode"
)

// maxRecordSize bounds one OSV record in a zip or directory.
const maxRecordSize = 64 << 20

// parseOSV decodes one OSV record and checks what the schema requires and
// Vigil relies on: an id, and ranges with a type and events. Wrong types
// anywhere are errors; unknown fields are ignored. A zero modified time is
// accepted (real PyPI records carry 0001-01-01T00:00:00Z). Withdrawn
// records and GIT ranges are returned like any other.
func parseOSV(data []byte) (*Advisory, error) {
	var a Advisory
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("invalid OSV JSON: %w", err)
	}
	if a.ID == "" {
		return nil, errors.New("invalid OSV record: missing id")
	}
	if len(a.ID) > 256 || strings.IndexFunc(a.ID, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return nil, fmt.Errorf("invalid OSV record: bad id %.80q", a.ID)
	}
	for i, af := range a.Affected {
		for j, r := range af.Ranges {
			if r.Type == "" || len(r.Events) == 0 {
				return nil, fmt.Errorf("invalid OSV record %s: affected[%d].ranges[%d] has no type or no events", a.ID, i, j)
			}
		}
	}
	return &a, nil
}

// advSink writes the advisories of one source and works out the source's
// name from their ecosystems.
type advSink struct {
	w      *writer
	source string
	rep    *SourceReport
	ids    map[string]int64
	newest time.Time

	common map[string]bool            // ecosystem bases in every record so far
	fulls  map[string]map[string]bool // base → full ecosystem strings seen
	seen   bool
}

func newAdvSink(w *writer, source string, rep *SourceReport) *advSink {
	return &advSink{w: w, source: source, rep: rep, ids: map[string]int64{}, fulls: map[string]map[string]bool{}}
}

// put stores p; entry names where it came from, for warnings.
func (s *advSink) put(p prepared, entry string) error {
	a := p.a
	prev, dup := s.ids[a.ID]
	if dup {
		s.rep.warnf("%s: duplicate advisory %s replaces the one read earlier", entry, a.ID)
	}
	row, err := s.w.putAdvisory(s.source, p, prev)
	if err != nil {
		return fmt.Errorf("storing %s from %s: %w", a.ID, entry, err)
	}
	s.ids[a.ID] = row
	if !dup {
		s.rep.Imported++
		if !a.Withdrawn.IsZero() {
			s.rep.Withdrawn++
		}
	}
	if a.Modified.After(s.newest) {
		s.newest = a.Modified
	}
	bases := map[string]bool{}
	for _, af := range a.Affected {
		eco := af.Package.Ecosystem
		if eco == "" {
			continue
		}
		base, _, _ := strings.Cut(eco, ":")
		bases[base] = true
		if s.fulls[base] == nil {
			s.fulls[base] = map[string]bool{}
		}
		s.fulls[base][eco] = true
	}
	if len(bases) == 0 {
		return nil
	}
	if !s.seen {
		s.common, s.seen = bases, true
		return nil
	}
	for b := range s.common {
		if !bases[b] {
			delete(s.common, b)
		}
	}
	return nil
}

// ecosystemName is "osv:<ecosystem>" when every record names one ecosystem
// (or one base, like "Debian" for "Debian:11" and "Debian:12"), else "".
func (s *advSink) ecosystemName() string {
	if len(s.common) != 1 {
		return ""
	}
	for base := range s.common {
		if len(s.fulls[base]) == 1 {
			for full := range s.fulls[base] {
				return "osv:" + full
			}
		}
		return "osv:" + base
	}
	return ""
}

// provisionalSource holds a source's advisories while it is being read,
// before its final name is known; it never outlives a transaction.
const provisionalSource = "\x00importing"

// osvEntry is one zip entry or file, read, parsed and encoded by a
// pipeline worker.
type osvEntry struct {
	name    string
	size    int64
	p       prepared
	skip    string // reason the entry is skipped, with bad
	bad     error
	readErr error // the container is damaged: the whole source fails
}

// consumeOSV stores a pipeline result in sink.
func consumeOSV(sink *advSink, e osvEntry) error {
	rep := sink.rep
	rep.Entries++
	switch {
	case e.readErr != nil:
		return fmt.Errorf("reading entry %s: %w", e.name, e.readErr)
	case e.skip != "":
		rep.skip(e.skip, "%s: %v", e.name, e.bad)
		return nil
	}
	return sink.put(e.p, e.name)
}

// parseOSVEntry parses and encodes the record in data.
func parseOSVEntry(c codec, e osvEntry, data []byte) osvEntry {
	a, err := parseOSV(data)
	if err != nil {
		e.skip, e.bad = "invalid OSV record", err
		return e
	}
	if e.p, err = prepare(c, a); err != nil {
		e.skip, e.bad = "unencodable OSV record", err
	}
	return e
}

// readOSVZip streams the records of an OSV bulk zip into sink. A record
// that does not parse is skipped with a warning; a damaged archive fails.
func readOSVZip(w *writer, zr *zip.Reader, sink *advSink, prog *progress) error {
	var files []*zip.File
	for _, f := range zr.File {
		if !f.FileInfo().IsDir() {
			files = append(files, f)
		}
	}
	rep := sink.rep
	err := pipeline(w.ctx, len(files), func(i int) osvEntry {
		f := files[i]
		e := osvEntry{name: f.Name, size: int64(f.CompressedSize64)}
		switch {
		case !strings.EqualFold(path.Ext(f.Name), ".json"):
			e.skip, e.bad = "not a .json entry", errors.New("not a .json file")
			return e
		case f.UncompressedSize64 > maxRecordSize:
			e.skip, e.bad = "entry too large", fmt.Errorf("%d bytes, more than %d", f.UncompressedSize64, maxRecordSize)
			return e
		}
		data, err := readZipEntry(f)
		if err != nil {
			e.readErr = err
			return e
		}
		return parseOSVEntry(w.codec, e, data)
	}, func(e osvEntry) error {
		prog.add(rep.Origin, e.size)
		return consumeOSV(sink, e)
	})
	if err != nil {
		return err
	}
	if rep.Imported == 0 {
		return fmt.Errorf("no valid OSV record in %d entries%s", rep.Entries, rep.firstWarning())
	}
	return nil
}

func readZipEntry(f *zip.File) ([]byte, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(io.LimitReader(rc, maxRecordSize+1))
}
