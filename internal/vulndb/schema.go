package vulndb

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sync"
)

// applicationID is written to the SQLite header (PRAGMA application_id) so a
// Vigil database is recognised without opening it: "VGDB".
const applicationID = 0x56474442

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// schemaSQL creates an empty database. Times are Unix milliseconds
// (advisories.modified) or RFC 3339 text (sources); advisories.data holds the
// Advisory as JSON, encoded with the codec named in meta.
var schemaSQL = []string{
	`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	`CREATE TABLE sources (
		name TEXT PRIMARY KEY,
		records INTEGER NOT NULL,
		upstream_date TEXT NOT NULL DEFAULT '',
		fetched_at TEXT NOT NULL DEFAULT '',
		checked_at TEXT NOT NULL DEFAULT '',
		origin TEXT NOT NULL DEFAULT '',
		etag TEXT NOT NULL DEFAULT '',
		last_modified TEXT NOT NULL DEFAULT '',
		cursor TEXT NOT NULL DEFAULT ''
	)`,
	`CREATE TABLE advisories (
		rowid INTEGER PRIMARY KEY,
		source TEXT NOT NULL,
		id TEXT NOT NULL,
		modified INTEGER NOT NULL,
		withdrawn INTEGER NOT NULL,
		data BLOB NOT NULL,
		UNIQUE (source, id)
	)`,
	`CREATE TABLE affected (
		ecosystem TEXT NOT NULL,
		name TEXT NOT NULL,
		adv INTEGER NOT NULL,
		PRIMARY KEY (ecosystem, name, adv)
	) WITHOUT ROWID`,
	`CREATE INDEX affected_adv ON affected (adv)`,
	`CREATE TABLE kev (
		cve TEXT PRIMARY KEY,
		vendor_project TEXT NOT NULL,
		product TEXT NOT NULL,
		name TEXT NOT NULL,
		date_added TEXT NOT NULL,
		due_date TEXT NOT NULL,
		required_action TEXT NOT NULL,
		known_ransomware INTEGER NOT NULL,
		short_description TEXT NOT NULL
	) WITHOUT ROWID`,
	`CREATE TABLE epss (
		cve TEXT PRIMARY KEY,
		score REAL NOT NULL,
		percentile REAL NOT NULL,
		date TEXT NOT NULL
	) WITHOUT ROWID`,
	`CREATE TABLE nvd_cvss (
		cve TEXT NOT NULL,
		seq INTEGER NOT NULL,
		version TEXT NOT NULL,
		vector TEXT NOT NULL,
		base_score REAL NOT NULL,
		severity TEXT NOT NULL,
		source TEXT NOT NULL,
		PRIMARY KEY (cve, seq)
	) WITHOUT ROWID`,
}

// codec turns an advisory's JSON into the stored blob and back.
type codec string

const (
	// codecFlateDict1 is raw DEFLATE (RFC 1951, level 6) with the preset
	// dictionary osvDict1: the default.
	codecFlateDict1 codec = "flate-dict1"
	codecFlate      codec = "flate" // raw DEFLATE without a dictionary
	codecJSON       codec = "json"  // plain JSON
)

// defaultCodec is what new databases use; docs/decisions/0003-vulndb-store.md
// has the measurements behind it.
const defaultCodec = codecFlateDict1

// flatePools hold writers and readers per dictionary; flate state is large
// (about 1 MB per writer), so it is reused.
type flatePool struct {
	dict    []byte
	writers sync.Pool
	readers sync.Pool
}

func newFlatePool(dict string) *flatePool {
	p := &flatePool{dict: []byte(dict)}
	p.writers.New = func() any {
		w, _ := flate.NewWriterDict(nil, flate.DefaultCompression, p.dict)
		return w
	}
	p.readers.New = func() any { return flate.NewReaderDict(nil, p.dict) }
	return p
}

var (
	plainFlate = newFlatePool("")
	dict1Flate = newFlatePool(osvDict1)
)

func (c codec) pool() *flatePool {
	switch c {
	case codecFlate:
		return plainFlate
	case codecFlateDict1:
		return dict1Flate
	}
	return nil
}

// encode appends the stored form of js to dst.
func (c codec) encode(dst, js []byte) ([]byte, error) {
	if c == codecJSON {
		return append(dst, js...), nil
	}
	p := c.pool()
	if p == nil {
		return nil, fmt.Errorf("unknown codec %q", string(c))
	}
	buf := bytes.NewBuffer(dst)
	w := p.writers.Get().(*flate.Writer)
	defer p.writers.Put(w)
	w.Reset(buf)
	if _, err := w.Write(js); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decode returns the JSON of a stored blob.
func (c codec) decode(blob []byte) ([]byte, error) {
	if c == codecJSON {
		return blob, nil
	}
	p := c.pool()
	if p == nil {
		return nil, fmt.Errorf("unknown codec %q", string(c))
	}
	r := p.readers.Get().(io.ReadCloser)
	defer p.readers.Put(r)
	if err := r.(flate.Resetter).Reset(bytes.NewReader(blob), p.dict); err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func parseCodec(s string) (codec, error) {
	switch c := codec(s); c {
	case codecFlateDict1, codecFlate, codecJSON:
		return c, nil
	}
	return "", fmt.Errorf("unknown advisory encoding %q", s)
}

// errNotVigilDB says a file is not a database written by this package.
var errNotVigilDB = errors.New("not a Vigil vulnerability database")

// checkHeader reads the SQLite header of path and reports whether it is a
// Vigil database (errNotVigilDB when it is another file).
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var h [100]byte
	if _, err := io.ReadFull(f, h[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errNotVigilDB
		}
		return err
	}
	if !isVigilHeader(h[:]) {
		return errNotVigilDB
	}
	return nil
}

// isVigilHeader reports whether b starts with the header of a SQLite file
// carrying our application ID.
func isVigilHeader(b []byte) bool {
	return len(b) >= 72 && string(b[:16]) == sqliteMagic &&
		binary.BigEndian.Uint32(b[68:72]) == applicationID
}

// dsn returns a modernc.org/sqlite URI for path with the query parameters
// given; the path is escaped so "?", "#" and "%" in it are not misread.
func dsn(path, query string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	u := url.URL{Path: filepath.ToSlash(abs)}
	s := "file:" + u.EscapedPath()
	if query != "" {
		s += "?" + query
	}
	return s, nil
}

// SchemaError is returned by Open for a database of another schema version.
type SchemaError struct {
	Path      string
	Version   int // the file's version, 0 when it has none
	Supported int
}

func (e *SchemaError) Error() string {
	return fmt.Sprintf("vulnerability database %s has schema version %d, but this vigil reads version %d: run `vigil db update` (or import the data again) to rebuild it",
		e.Path, e.Version, e.Supported)
}
