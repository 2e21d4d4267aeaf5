package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// severities are Falco's priorities by rank, as store.Alert.Severity
// holds them.
var severities = map[string]int{
	"emergency": 0, "alert": 1, "critical": 2, "error": 3,
	"warning": 4, "warn": 4, "notice": 5, "informational": 6, "info": 6, "debug": 7,
}

const (
	defaultPage = 100
	maxPage     = 1000
)

var alertParams = map[string]bool{
	"since": true, "until": true, "severity": true, "workload": true, "rule": true,
	"incident": true, "agent": true, "limit": true, "before": true,
}

// parseAlertFilter reads the alert and incident list's query: since and
// until (a duration back from now such as 24h or 7d, or an RFC 3339 time),
// severity (a priority name or rank 0–7: that or more severe), workload,
// rule, incident, agent, limit (1–1000) and before (the cursor from the
// previous page's next).
func parseAlertFilter(q url.Values, now time.Time) (store.AlertFilter, error) {
	var f store.AlertFilter
	for k, v := range q {
		if !alertParams[k] {
			return f, fmt.Errorf("unknown query parameter %q", k)
		}
		if len(v) > 1 {
			return f, fmt.Errorf("query parameter %q given %d times", k, len(v))
		}
	}
	var err error
	if f.Since, err = parseTime("since", q.Get("since"), now); err != nil {
		return f, err
	}
	if f.Until, err = parseTime("until", q.Get("until"), now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return f, fmt.Errorf("until (%s) is before since (%s)", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	if v := q.Get("severity"); v != "" {
		n, ok := severities[strings.ToLower(v)]
		if !ok {
			r, err := strconv.Atoi(v)
			if err != nil || r < 0 || r > 7 {
				return f, fmt.Errorf("severity: %q is not a priority (emergency, alert, critical, error, warning, notice, informational, debug) or a rank 0-7", v)
			}
			n = r
		}
		f.MaxSeverity, f.HasSeverity = n, true
	}
	for _, p := range []struct {
		name string
		dst  *string
	}{{"workload", &f.Workload}, {"rule", &f.Rule}, {"incident", &f.IncidentID}, {"agent", &f.AgentID}, {"before", &f.Before}} {
		v := q.Get(p.name)
		if len(v) > 256 {
			return f, fmt.Errorf("%s: longer than 256 bytes", p.name)
		}
		if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == 0xfffd }) {
			return f, fmt.Errorf("%s: control characters or invalid UTF-8", p.name)
		}
		*p.dst = v
	}
	f.Limit = defaultPage
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return f, fmt.Errorf("limit: %q is not a number in 1..%d", v, maxPage)
		}
		f.Limit = n
	}
	return f, nil
}

// parseTime reads a point in time: empty is zero; "24h", "90m", "7d" are
// that long before now; anything else must be RFC 3339.
func parseTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	var d time.Duration
	var err error
	if days, ok := strings.CutSuffix(v, "d"); ok {
		var n int
		n, err = strconv.Atoi(days)
		if err == nil && (n < 0 || n > 36500) {
			err = errors.New("out of range")
		}
		d = time.Duration(n) * 24 * time.Hour
	} else if t, terr := time.Parse(time.RFC3339, v); terr == nil {
		return t.UTC(), nil
	} else {
		d, err = time.ParseDuration(v)
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%s: %q is neither a duration back from now (24h, 7d) nor an RFC 3339 time", name, v)
	}
	return now.Add(-d).UTC(), nil
}

type alertPage struct {
	Alerts []store.Alert `json:"alerts"`
	// Next is the cursor for the next (older) page, empty on the last.
	Next string `json:"next,omitempty"`
}

func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, _ *principal) {
	f, err := parseAlertFilter(r.URL.Query(), s.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	as, err := s.o.Store.Alerts(r.Context(), f)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing alerts: %w", err))
		return
	}
	page := alertPage{Alerts: nonNil(as)}
	if len(as) == f.Limit {
		page.Next = as[len(as)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

// alertDetail is an alert with the response actions taken on it.
type alertDetail struct {
	store.Alert
	Actions []store.Response `json:"actions"`
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := r.PathValue("id")
	a, err := s.o.Store.Alert(r.Context(), id)
	if err != nil {
		s.fail(w, r, notFound(err, "alert", id))
		return
	}
	acts, err := s.responsesOf(r, a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, alertDetail{Alert: a, Actions: acts})
}

// responsesOf returns the stored responses linked to alert a.
func (s *Server) responsesOf(r *http.Request, a store.Alert) ([]store.Response, error) {
	rs, err := s.o.Store.Responses(r.Context(), a.AgentID, maxPage)
	if err != nil {
		return nil, fmt.Errorf("listing the responses of alert %s: %w", a.ID, err)
	}
	noted := map[string]bool{}
	for _, n := range a.Responses {
		if m := responseNote.FindStringSubmatch(n); m != nil {
			noted[m[1]] = true
		}
	}
	out := []store.Response{}
	for _, x := range rs {
		if x.AlertID == a.ID || noted[x.ID] {
			out = append(out, x)
		}
	}
	return out, nil
}

type incidentPage struct {
	Incidents []store.Incident `json:"incidents"`
	Next      string           `json:"next,omitempty"`
}

func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, _ *principal) {
	f, err := parseAlertFilter(r.URL.Query(), s.o.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	is, err := s.o.Store.Incidents(r.Context(), f)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing incidents: %w", err))
		return
	}
	page := incidentPage{Incidents: nonNil(is)}
	if len(is) == f.Limit {
		page.Next = is[len(is)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

type incidentDetail struct {
	store.Incident
	Alerts []store.Alert `json:"alerts"`
}

func (s *Server) getIncident(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := r.PathValue("id")
	inc, err := s.o.Store.Incident(r.Context(), id)
	if err != nil {
		s.fail(w, r, notFound(err, "incident", id))
		return
	}
	as, err := s.o.Store.Alerts(r.Context(), store.AlertFilter{IncidentID: id, Limit: maxPage})
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing the alerts of incident %s: %w", id, err))
		return
	}
	writeJSON(w, http.StatusOK, incidentDetail{Incident: inc, Alerts: nonNil(as)})
}

// notFound maps store.ErrNotFound to a 404 naming what was looked for.
func notFound(err error, what, id string) error {
	if errors.Is(err, store.ErrNotFound) {
		return errorf(http.StatusNotFound, "no %s with id %q", what, id)
	}
	return fmt.Errorf("reading %s %s: %w", what, id, err)
}
