package vulndb

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// nvdMaxWindow is the longest lastModified range the NVD API accepts.
const nvdMaxWindow = 120 * 24 * time.Hour

// nvdOverlap is how far before the previous fetch's end the next one
// starts, for records NVD indexes a little after their lastModified time.
const nvdOverlap = 15 * time.Minute

// nvdTime formats a time the way the NVD API documents it:
// 2021-08-04T13:00:00.000+01:00.
func nvdTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000") + "+00:00"
}

// nvdWindows splits [from, to) into lastModStartDate/lastModEndDate
// queries of at most nvdMaxWindow each.
func nvdWindows(from, to time.Time) []string {
	var qs []string
	for start := from; start.Before(to); {
		end := start.Add(nvdMaxWindow)
		if end.After(to) {
			end = to
		}
		qs = append(qs, url.Values{
			"lastModStartDate": {nvdTime(start)},
			"lastModEndDate":   {nvdTime(end)},
		}.Encode())
		start = end
	}
	return qs
}

// nvdPlan returns the queries of an NVD update ending at now. With a
// cursor (the end of the previous fetch) it asks for what was modified
// since; without one, for every CVE in KEV (hasKev) and for those modified
// in the last initialDays days.
func nvdPlan(cursor string, now time.Time, initialDays int) []string {
	if c, err := time.Parse(time.RFC3339Nano, cursor); err == nil && !c.IsZero() {
		return nvdWindows(c.Add(-nvdOverlap), now)
	}
	qs := []string{"hasKev"}
	return append(qs, nvdWindows(now.Add(-time.Duration(initialDays)*24*time.Hour), now)...)
}

// nvdResult is what an NVD fetch brought back.
type nvdResult struct {
	recs     map[string]nvdRecord // by CVE, the newest version seen
	requests int
}

// fetchNVD runs the queries against the NVD API at base, paging each with
// startIndex/resultsPerPage until totalResults is reached.
func fetchNVD(ctx context.Context, hc *http.Client, base, apiKey, ua string, queries []string, pageSize int,
	p retryPolicy, rep *SourceReport, prog *progress) (*nvdResult, error) {
	res := &nvdResult{recs: map[string]nvdRecord{}}
	hdr := http.Header{"User-Agent": {ua}}
	if apiKey != "" {
		hdr.Set("apiKey", apiKey)
	}
	for _, q := range queries {
		for start := 0; ; {
			u := base + "?" + q + "&" + url.Values{
				"resultsPerPage": {strconv.Itoa(pageSize)},
				"startIndex":     {strconv.Itoa(start)},
			}.Encode()
			page, err := nvdGet(ctx, hc, u, hdr, p, rep, prog)
			res.requests++
			if err != nil {
				return nil, err
			}
			rep.Entries += page.Entries
			for _, r := range page.Records {
				if old, ok := res.recs[r.ID]; !ok || !r.LastModified.Before(old.LastModified) {
					res.recs[r.ID] = r
				}
			}
			start += page.Entries
			if start >= page.TotalResults {
				break
			}
			if page.Entries == 0 {
				return nil, fmt.Errorf("GET %s: empty page at %d of %d results", u, start, page.TotalResults)
			}
		}
	}
	return res, nil
}

func nvdGet(ctx context.Context, hc *http.Client, u string, hdr http.Header, p retryPolicy, rep *SourceReport, prog *progress) (*nvdPage, error) {
	resp, err := get(ctx, hc, u, hdr, p)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg := resp.Header.Get("Message") // NVD explains errors in this header
		return nil, fmt.Errorf("GET %s: %s %s", u, resp.Status, msg)
	}
	data, err := io.ReadAll(io.LimitReader(progressReader{resp.Body, prog, rep.Origin}, maxJSONFile))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the body: %w", u, err)
	}
	page, err := parseNVD(data, rep)
	if err == nil && !page.Envelope {
		err = fmt.Errorf("not an NVD API 2.0 response")
	}
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return page, nil
}
