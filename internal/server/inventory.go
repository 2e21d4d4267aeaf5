package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/store"
)

var assetKinds = []string{store.KindHost, store.KindContainer, store.KindImage, store.KindWorkload, store.KindFunction}

func (s *Server) inventory(w http.ResponseWriter, r *http.Request, _ *principal) {
	kind := r.URL.Query().Get("kind")
	if kind != "" && !slices.Contains(assetKinds, kind) {
		writeError(w, http.StatusBadRequest, "kind: %q is not one of host, container, image, k8s_workload, function", kind)
		return
	}
	as, err := s.o.Store.Assets(r.Context(), kind)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing the inventory: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"assets": nonNil(as)})
}

// imageDetail is an image: its inventory entry (when an agent reported
// it), its newest scan and that scan's findings, KEV first.
type imageDetail struct {
	Digest   string          `json:"digest"`
	Asset    *store.Asset    `json:"asset,omitempty"`
	Scan     *store.Scan     `json:"scan,omitempty"`
	Findings []store.Finding `json:"findings"`
}

func (s *Server) getImage(w http.ResponseWriter, r *http.Request, _ *principal) {
	ctx := r.Context()
	digest := r.PathValue("digest")
	d := imageDetail{Digest: digest, Findings: []store.Finding{}}
	a, err := s.o.Store.Asset(ctx, store.KindImage, digest)
	switch {
	case err == nil:
		d.Asset = &a
	case !errors.Is(err, store.ErrNotFound):
		s.fail(w, r, fmt.Errorf("reading image %s: %w", digest, err))
		return
	}
	sc, err := s.o.Store.ScanOf(ctx, digest)
	switch {
	case err == nil:
		d.Scan = &sc
		fs, err := s.o.Store.Findings(ctx, sc.ID)
		if err != nil {
			s.fail(w, r, fmt.Errorf("reading the findings of scan %s: %w", sc.ID, err))
			return
		}
		// The store orders them; KEV first is this page's promise, so
		// hold it whatever the engine did.
		slices.SortStableFunc(fs, func(a, b store.Finding) int {
			if a.KEV != b.KEV {
				if a.KEV {
					return -1
				}
				return 1
			}
			return 0
		})
		d.Findings = nonNil(fs)
		d.Scan.Findings = nil
	case !errors.Is(err, store.ErrNotFound):
		s.fail(w, r, fmt.Errorf("reading the scan of image %s: %w", digest, err))
		return
	}
	if d.Asset == nil && d.Scan == nil {
		writeError(w, http.StatusNotFound, "no image %q in the inventory and no scan of it", digest)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) getSBOM(w http.ResponseWriter, r *http.Request, _ *principal) {
	digest := r.PathValue("digest")
	sc, err := s.o.Store.ScanOf(r.Context(), digest)
	if err != nil {
		s.fail(w, r, notFound(err, "scan of image", digest))
		return
	}
	if len(sc.SBOM) == 0 {
		writeError(w, http.StatusNotFound, "the newest scan of image %q (%s) came without an SBOM", digest, sc.ID)
		return
	}
	w.Header().Set("Content-Type", "application/vnd.cyclonedx+json")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "sbom-"+sanitizeFilename(digest)+".cdx.json"))
	w.Write(sc.SBOM)
}

func sanitizeFilename(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

func (s *Server) listScans(w http.ResponseWriter, r *http.Request, _ *principal) {
	limit, err := queryLimit(r, defaultPage, maxPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ss, err := s.o.Store.Scans(r.Context(), limit)
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing scans: %w", err))
		return
	}
	for i := range ss {
		ss[i].Findings = nil
	}
	writeJSON(w, http.StatusOK, map[string]any{"scans": nonNil(ss)})
}

func (s *Server) getScan(w http.ResponseWriter, r *http.Request, _ *principal) {
	id := r.PathValue("id")
	sc, err := s.o.Store.Scan(r.Context(), id)
	if err != nil {
		s.fail(w, r, notFound(err, "scan", id))
		return
	}
	fs, err := s.o.Store.Findings(r.Context(), id)
	if err != nil {
		s.fail(w, r, fmt.Errorf("reading the findings of scan %s: %w", id, err))
		return
	}
	sc.Findings = nonNil(fs)
	writeJSON(w, http.StatusOK, sc)
}

func (s *Server) uploadScan(w http.ResponseWriter, r *http.Request, p *principal) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		err = jsonError(err)
		s.audit(r, p, "upload-scan", "", "refused: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	sc, err := ParseScanUpload(body)
	if err != nil {
		s.audit(r, p, "upload-scan", "", "refused: "+err.Error(), false)
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	sc.ID = uuid.Must(uuid.NewV7()).String()
	sc.Time = s.o.Now().UTC()
	sc.Source = "ci:" + p.Name
	for i := range sc.Findings {
		sc.Findings[i].ScanID = sc.ID
	}
	if err := s.apply(r.Context(), &store.Batch{Scans: []store.Scan{sc}}); err != nil {
		s.audit(r, p, "upload-scan", sc.Target, "failed: "+err.Error(), false)
		s.fail(w, r, err)
		return
	}
	s.audit(r, p, "upload-scan", sc.Target, fmt.Sprintf("scan %s: %d findings, %d KEV", sc.ID, sc.Summary.Findings, sc.Summary.KEV), true)
	sc.Findings = nil
	writeJSON(w, http.StatusCreated, sc)
}

// kevImage is an image whose newest scan has KEV findings.
type kevImage struct {
	ImageDigest string            `json:"image_digest,omitempty"`
	Target      string            `json:"target"`
	ScanID      string            `json:"scan_id"`
	Time        time.Time         `json:"time"`
	Summary     store.ScanSummary `json:"summary"`
}

// vulnerableWorkload is an inventory item with its image's newest scan.
type vulnerableWorkload struct {
	Kind        string            `json:"kind"`
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	AgentID     string            `json:"agent_id,omitempty"`
	Image       string            `json:"image,omitempty"`
	ImageDigest string            `json:"image_digest,omitempty"`
	ScanID      string            `json:"scan_id"`
	Summary     store.ScanSummary `json:"summary"`
}

type dashboardResponse struct {
	Stats               store.AlertStats     `json:"stats"`
	KEVExposure         []kevImage           `json:"kev_exposure"`
	VulnerableWorkloads []vulnerableWorkload `json:"vulnerable_workloads"`
	Agents              struct {
		Total     int `json:"total"`
		Connected int `json:"connected"`
	} `json:"agents"`
}

const (
	dashboardScans = 1000 // newest scans looked at for KEV exposure
	dashboardTop   = 10
)

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, _ *principal) {
	q := r.URL.Query()
	for k := range q {
		if k != "since" {
			writeError(w, http.StatusBadRequest, "unknown query parameter %q (only since)", k)
			return
		}
	}
	since := q.Get("since")
	if since == "" {
		since = "24h"
	}
	now := s.o.Now()
	from, err := parseTime("since", since, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, "%v", err)
		return
	}
	if !from.Before(now) {
		writeError(w, http.StatusBadRequest, "since: %q is not in the past", since)
		return
	}
	d, err := s.dash.get(r.Context(), since, func(ctx context.Context) (dashboardResponse, error) {
		return s.computeDashboard(ctx, since)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// Agents are counted live: cheap, and what an operator watches.
	agents, err := s.o.Store.Agents(r.Context())
	if err != nil {
		s.fail(w, r, fmt.Errorf("listing agents: %w", err))
		return
	}
	d.Agents.Total = len(agents)
	conn := s.connectedSet()
	for _, a := range agents {
		if conn[a.ID] {
			d.Agents.Connected++
		}
	}
	writeJSON(w, http.StatusOK, d)
}

// computeDashboard reads the dashboard's figures from the store.
func (s *Server) computeDashboard(ctx context.Context, since string) (dashboardResponse, error) {
	var d dashboardResponse
	now := s.o.Now()
	from, err := parseTime("since", since, now)
	if err != nil {
		return d, err
	}
	// About 24 buckets over the span, whole minutes.
	bucket := now.Sub(from) / 24
	bucket = max(bucket.Round(time.Minute), time.Minute)
	if d.Stats, err = s.o.Store.AlertStats(ctx, from, bucket); err != nil {
		return d, fmt.Errorf("alert statistics: %w", err)
	}
	scans, err := s.o.Store.Scans(ctx, dashboardScans)
	if err != nil {
		return d, fmt.Errorf("listing scans: %w", err)
	}
	// Newest scan per image: by digest (else the reference scanned), and
	// by reference for assets whose digest is not known.
	newest, byRef := map[string]store.Scan{}, map[string]store.Scan{}
	d.KEVExposure = []kevImage{}
	for _, sc := range scans {
		if _, ok := byRef[sc.Target]; !ok {
			byRef[sc.Target] = sc
		}
		key := cmp.Or(sc.ImageDigest, sc.Target)
		if _, ok := newest[key]; ok {
			continue
		}
		newest[key] = sc
		if sc.Summary.KEV > 0 {
			d.KEVExposure = append(d.KEVExposure, kevImage{ImageDigest: sc.ImageDigest, Target: sc.Target, ScanID: sc.ID, Time: sc.Time.UTC(), Summary: sc.Summary})
		}
	}
	slices.SortStableFunc(d.KEVExposure, func(a, b kevImage) int { return cmp.Compare(b.Summary.KEV, a.Summary.KEV) })
	assets, err := s.o.Store.Assets(ctx, "")
	if err != nil {
		return d, fmt.Errorf("listing the inventory: %w", err)
	}
	d.VulnerableWorkloads = []vulnerableWorkload{}
	for _, a := range assets {
		if a.Gone || (a.Kind != store.KindContainer && a.Kind != store.KindWorkload && a.Kind != store.KindFunction && a.Kind != store.KindImage) {
			continue
		}
		ref, digest := assetImage(a)
		sc, ok := newest[digest]
		if !ok || digest == "" {
			sc, ok = byRef[ref]
		}
		if !ok || sc.Summary.Findings == 0 {
			continue
		}
		d.VulnerableWorkloads = append(d.VulnerableWorkloads, vulnerableWorkload{
			Kind: a.Kind, ID: a.ID, Name: a.Name, AgentID: a.AgentID, Image: ref, ImageDigest: cmp.Or(digest, sc.ImageDigest),
			ScanID: sc.ID, Summary: sc.Summary,
		})
	}
	slices.SortStableFunc(d.VulnerableWorkloads, func(a, b vulnerableWorkload) int {
		return cmp.Or(cmp.Compare(b.Summary.KEV, a.Summary.KEV), cmp.Compare(b.Summary.Critical, a.Summary.Critical),
			cmp.Compare(b.Summary.High, a.Summary.High), cmp.Compare(b.Summary.Findings, a.Summary.Findings))
	})
	if len(d.VulnerableWorkloads) > dashboardTop {
		d.VulnerableWorkloads = d.VulnerableWorkloads[:dashboardTop]
	}
	return d, nil
}

// assetImage reads the image reference and digest of an inventory item:
// an image asset is its own digest; a container's or workload's Data names
// its image with one of the usual keys.
func assetImage(a store.Asset) (ref, digest string) {
	if a.Kind == store.KindImage {
		if digestRE.MatchString(a.ID) {
			return a.Name, a.ID
		}
		return a.ID, ""
	}
	var m map[string]any
	if len(a.Data) > 0 && json.Unmarshal(a.Data, &m) == nil {
		str := func(keys ...string) string {
			for _, k := range keys {
				if v, ok := m[k].(string); ok && v != "" {
					return v
				}
			}
			return ""
		}
		ref = str("image", "image_ref", "image_name")
		digest = str("image_digest", "image_id", "digest")
	}
	if ref == "" {
		ref = cmp.Or(a.Labels["image"], a.Labels["vigil.image"])
	}
	return ref, digest
}
