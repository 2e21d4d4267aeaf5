package vulndb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// epssHeader is what the first comment line of an EPSS CSV says:
// "#model_version:v2025.03.14,score_date:2025-03-14T00:00:00+0000".
type epssHeader struct {
	Model string
	Date  string // YYYY-MM-DD, "" when the file has no score_date
}

// parseEPSS reads a FIRST EPSS CSV (the optional comment line, the header
// "cve,epss,percentile", then rows) and calls fn for each valid row. A bad
// row is skipped and counted in rep; a file without the header, or with no
// valid row, is an error.
func parseEPSS(r io.Reader, rep *SourceReport, fn func(*EPSS) error) (epssHeader, error) {
	var h epssHeader
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	header := false
	imported := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff")
		}
		if text == "" {
			continue
		}
		if strings.HasPrefix(text, "#") {
			if !header {
				h = parseEPSSComment(text, h)
			}
			continue
		}
		if !header {
			cols := strings.Split(strings.ToLower(text), ",")
			if len(cols) < 3 || strings.TrimSpace(cols[0]) != "cve" || strings.TrimSpace(cols[1]) != "epss" ||
				strings.TrimSpace(cols[2]) != "percentile" {
				return h, fmt.Errorf("line %d: expected the header cve,epss,percentile, got %.60q", line, text)
			}
			header = true
			continue
		}
		rep.Entries++
		e, err := parseEPSSRow(text)
		if err != nil {
			rep.skip("invalid row", "line %d: %v", line, err)
			continue
		}
		e.Date = h.Date
		if err := fn(e); err != nil {
			return h, err
		}
		imported++
	}
	if err := sc.Err(); err != nil {
		return h, fmt.Errorf("line %d: %w", line+1, err)
	}
	if !header {
		return h, errors.New("no cve,epss,percentile header")
	}
	if imported == 0 {
		return h, fmt.Errorf("no valid EPSS row in %d%s", rep.Entries, rep.firstWarning())
	}
	return h, nil
}

func parseEPSSComment(text string, h epssHeader) epssHeader {
	for _, kv := range strings.Split(strings.TrimPrefix(text, "#"), ",") {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "model_version":
			h.Model = strings.TrimSpace(v)
		case "score_date":
			v = strings.TrimSpace(v)
			if len(v) >= 10 {
				if _, err := time.Parse(time.DateOnly, v[:10]); err == nil {
					h.Date = v[:10]
				}
			}
		}
	}
	return h
}

func parseEPSSRow(text string) (*EPSS, error) {
	cols := strings.Split(text, ",")
	if len(cols) < 3 {
		return nil, fmt.Errorf("%d columns, want 3", len(cols))
	}
	cve := normCVE(cols[0])
	if !cveRe.MatchString(cve) {
		return nil, fmt.Errorf("%.40q is not a CVE ID", cols[0])
	}
	score, err := parseProbability(cols[1])
	if err != nil {
		return nil, fmt.Errorf("%s: epss: %w", cve, err)
	}
	pct, err := parseProbability(cols[2])
	if err != nil {
		return nil, fmt.Errorf("%s: percentile: %w", cve, err)
	}
	return &EPSS{CVE: cve, Score: score, Percentile: pct}, nil
}

func parseProbability(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil {
		return 0, err
	}
	if math.IsNaN(f) || f < 0 || f > 1 {
		return 0, fmt.Errorf("%v is not in [0, 1]", f)
	}
	return f, nil
}
