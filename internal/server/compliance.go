package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/compliance"
	"github.com/vigil-cwpp/vigil/internal/store"
)

// maxComplianceResults bounds one upload (a CIS run has a few hundred
// results; per-container checks multiply that).
const maxComplianceResults = 100_000

// complianceUploaded is the answer of POST /api/v1/compliance.
type complianceUploaded struct {
	Benchmark string             `json:"benchmark"`
	Host      string             `json:"host"`
	Stored    int                `json:"stored"`
	Summary   compliance.Summary `json:"summary"`
}

// ParseComplianceUpload reads the body of POST /api/v1/compliance: one
// compliance.Report as `vigil bench -f json` writes it. It returns the
// report with each result's Benchmark filled from the report when empty;
// errors name the offending field.
func ParseComplianceUpload(body []byte) (*compliance.Report, error) {
	var rep compliance.Report
	if err := json.Unmarshal(body, &rep); err != nil {
		return nil, fmt.Errorf("body: not a benchmark report (vigil bench -f json): %w", describeJSONError(err))
	}
	switch {
	case rep.Benchmark == "" || len(rep.Benchmark) > 64:
		return nil, errors.New("benchmark: 1 to 64 bytes")
	case len(rep.Host) > 1024:
		return nil, errors.New("host: more than 1024 bytes")
	case len(rep.Results) == 0:
		return nil, errors.New("results: empty")
	case len(rep.Results) > maxComplianceResults:
		return nil, fmt.Errorf("results: %d, more than %d", len(rep.Results), maxComplianceResults)
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if r.Benchmark == "" {
			r.Benchmark = rep.Benchmark
		}
		switch {
		case r.ID == "" || len(r.ID) > 256:
			return nil, fmt.Errorf("results[%d].id: 1 to 256 bytes", i)
		case len(r.Benchmark) > 64:
			return nil, fmt.Errorf("results[%d].benchmark: more than 64 bytes", i)
		}
		switch r.Status {
		case compliance.Pass, compliance.Fail, compliance.Warn, compliance.Manual, compliance.Error:
		default:
			return nil, fmt.Errorf("results[%d].status: %q is not pass, fail, warn, manual or error", i, r.Status)
		}
	}
	return &rep, nil
}

// uploadCompliance stores a benchmark run sent by `vigil bench
// --report-to` or `vigil report compliance --report-to`: one
// ComplianceResult per result (Data is the result's JSON), published to
// the SIEM exports and audited.
func (s *Server) uploadCompliance(w http.ResponseWriter, r *http.Request, p *principal) {
	const action = "upload-compliance"
	body, err := io.ReadAll(r.Body)
	if err != nil {
		err = jsonError(err)
		s.audit(r, p, action, "", "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	rep, err := ParseComplianceUpload(body)
	if err != nil {
		s.audit(r, p, action, "", "refused: "+err.Error(), false)
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	t := rep.Time.UTC()
	if t.IsZero() {
		t = s.o.Now().UTC()
	}
	b := &store.Batch{Compliance: make([]store.ComplianceResult, 0, len(rep.Results))}
	var sum compliance.Summary
	for i := range rep.Results {
		res := rep.Results[i]
		if res.Target == "" {
			res.Target = rep.Host
		}
		data, err := json.Marshal(&res)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		b.Compliance = append(b.Compliance, store.ComplianceResult{ID: uuid.Must(uuid.NewV7()).String(), Time: t,
			Benchmark: res.Benchmark, CheckID: res.ID, Title: res.Title, Status: res.Status, Data: data})
		switch res.Status {
		case compliance.Pass:
			sum.Pass++
		case compliance.Fail:
			sum.Fail++
		case compliance.Warn:
			sum.Warn++
		case compliance.Manual:
			sum.Manual++
		default:
			sum.Error++
		}
	}
	target := rep.Benchmark + " on " + rep.Host
	if err := s.apply(r.Context(), b); err != nil {
		s.audit(r, p, action, target, "failed: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	s.audit(r, p, action, target, fmt.Sprintf("%d results: %d pass, %d fail, %d warn, %d manual, %d error",
		len(b.Compliance), sum.Pass, sum.Fail, sum.Warn, sum.Manual, sum.Error), true)
	writeJSON(w, http.StatusCreated, complianceUploaded{Benchmark: rep.Benchmark, Host: rep.Host, Stored: len(b.Compliance), Summary: sum})
}
