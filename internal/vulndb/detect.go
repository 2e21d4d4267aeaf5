package vulndb

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// format is a kind of input file, recognised by content (never by name).
type format int

const (
	formatUnknown format = iota
	formatOSVZip         // OSV bulk zip: one OSV JSON record per entry
	formatOSV            // one OSV JSON record
	formatKEV            // CISA KEV catalog JSON
	formatEPSS           // FIRST EPSS CSV
	formatNVD            // NVD CVE API 2.0 response, or one cve object
	formatSecdb          // Alpine secdb JSON
	formatDB             // a Vigil database (Export)
)

func (f format) String() string {
	switch f {
	case formatOSVZip:
		return "osv-zip"
	case formatOSV:
		return "osv-json"
	case formatKEV:
		return "kev"
	case formatEPSS:
		return "epss"
	case formatNVD:
		return "nvd"
	case formatSecdb:
		return "alpine-secdb"
	case formatDB:
		return "vigil-db"
	}
	return "unknown"
}

// errUnrecognised is wrapped by errors about files of no known format.
var errUnrecognised = errors.New("unrecognised format (not an OSV zip or record, KEV JSON, EPSS CSV, NVD JSON, Alpine secdb JSON or Vigil database)")

// detectFile sniffs the file at path. gz is set when the content is
// gzip-compressed (the format is that of the content inside).
func detectFile(path string) (f format, gz bool, err error) {
	fh, err := os.Open(path)
	if err != nil {
		return formatUnknown, false, err
	}
	defer fh.Close()
	return sniff(fh)
}

// sniff reads as little of r as it needs to tell its format.
func sniff(r io.Reader) (format, bool, error) {
	br := bufio.NewReaderSize(r, 4096)
	head, _ := br.Peek(512)
	switch {
	case bytes.HasPrefix(head, []byte("PK\x03\x04")) || bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return formatOSVZip, false, nil
	case bytes.HasPrefix(head, []byte(sqliteMagic)):
		if isVigilHeader(head) {
			return formatDB, false, nil
		}
		return formatUnknown, false, fmt.Errorf("a SQLite database, but not a Vigil one: %w", errUnrecognised)
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return formatUnknown, true, fmt.Errorf("reading gzip: %w", err)
		}
		f, err := sniffText(bufio.NewReaderSize(zr, 4096))
		return f, true, err
	}
	f, err := sniffText(br)
	return f, false, err
}

// sniffText recognises the text formats: EPSS CSV and the JSON ones.
func sniffText(br *bufio.Reader) (format, error) {
	head, _ := br.Peek(512)
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	head = bytes.TrimLeft(head, " \t\r\n")
	lower := bytes.ToLower(head)
	switch {
	case bytes.HasPrefix(lower, []byte("#model_version")) || bytes.HasPrefix(lower, []byte("cve,epss")):
		return formatEPSS, nil
	case bytes.HasPrefix(head, []byte("{")):
		return sniffJSON(br)
	}
	return formatUnknown, errUnrecognised
}

// jsonKeyFormat maps top-level keys that only one format uses to it.
var jsonKeyFormat = map[string]format{
	// Alpine secdb
	"distroversion": formatSecdb, "reponame": formatSecdb, "apkurl": formatSecdb, "urlprefix": formatSecdb,
	"archs": formatSecdb,
	// CISA KEV
	"catalogVersion": formatKEV, "dateReleased": formatKEV,
	// NVD API 2.0 envelope, and the cve object itself
	"resultsPerPage": formatNVD, "totalResults": formatNVD, "startIndex": formatNVD,
	"sourceIdentifier": formatNVD, "vulnStatus": formatNVD, "cveTags": formatNVD, "lastModified": formatNVD,
	"descriptions": formatNVD, "metrics": formatNVD, "configurations": formatNVD, "weaknesses": formatNVD,
	"cve": formatNVD,
	// OSV
	"schema_version": formatOSV, "modified": formatOSV, "affected": formatOSV, "aliases": formatOSV,
	"withdrawn": formatOSV, "summary": formatOSV, "details": formatOSV, "related": formatOSV,
	"database_specific": formatOSV, "upstream": formatOSV,
}

// sniffJSON reads top-level keys of a JSON object until one tells the
// format. For "vulnerabilities" (KEV and NVD both have it) it looks at the
// first element's keys.
func sniffJSON(r io.Reader) (format, error) {
	dec := json.NewDecoder(r)
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return formatUnknown, errUnrecognised
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return formatUnknown, fmt.Errorf("invalid JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return formatUnknown, errUnrecognised
		}
		if f, ok := jsonKeyFormat[key]; ok {
			return f, nil
		}
		if key == "vulnerabilities" {
			if f := sniffVulnerabilities(dec); f != formatUnknown {
				return f, nil
			}
			return formatUnknown, errUnrecognised
		}
		if err := skipValue(dec); err != nil {
			return formatUnknown, fmt.Errorf("invalid JSON: %w", err)
		}
	}
	return formatUnknown, errUnrecognised
}

// sniffVulnerabilities tells KEV ({"cveID": …}) from NVD ({"cve": …}) by
// the first element of a vulnerabilities array.
func sniffVulnerabilities(dec *json.Decoder) format {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return formatUnknown
	}
	if !dec.More() {
		return formatUnknown
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return formatUnknown
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return formatUnknown
		}
		switch tok {
		case "cveID", "vendorProject", "knownRansomwareCampaignUse", "dateAdded":
			return formatKEV
		case "cve":
			return formatNVD
		}
		if skipValue(dec) != nil {
			return formatUnknown
		}
	}
	return formatUnknown
}

// skipValue consumes one JSON value from dec.
func skipValue(dec *json.Decoder) error {
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// openContent opens path for reading, through gzip when gz is set.
func openContent(path string, gz bool) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if !gz {
		return f, nil
	}
	zr, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// maxJSONFile bounds a JSON file read whole (KEV, NVD, secdb, one OSV
// record). NVD API pages are about 20 MB.
const maxJSONFile = 1 << 30

// readContent reads a whole (possibly gzip-compressed) file.
func readContent(path string, gz bool) ([]byte, error) {
	rc, err := openContent(path, gz)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxJSONFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxJSONFile {
		return nil, fmt.Errorf("larger than %d bytes", maxJSONFile)
	}
	return b, nil
}
