package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// pruneChunk bounds the rows one delete transaction removes, so a large
// prune never holds SQLite's single writer for long.
const pruneChunk = 5000

// Prune deletes rows older than their retention (zero keeps forever):
// alerts whose Time and LastSeen are both older than r.Alerts, incidents
// last seen before it, responses, audit entries, and scans with their
// findings — except the newest scan of each image digest, which stays
// while the image does. Expired sessions go too. It returns how many rows
// went, findings included.
func (s *db) Prune(ctx context.Context, r Retention, now time.Time) (int64, error) {
	var total int64
	del := func(what, q string, args ...any) error {
		for {
			n, err := s.exec(ctx, q, args...)
			if err != nil {
				return fmt.Errorf("pruning %s: %w", what, err)
			}
			total += n
			if n < pruneChunk {
				return nil
			}
		}
	}
	chunk := fmt.Sprint(pruneChunk)
	if r.Alerts > 0 {
		c := s.d.ts(now.Add(-r.Alerts))
		if err := del("alerts", "DELETE FROM alerts WHERE id IN (SELECT id FROM alerts WHERE time < ? AND (last_seen IS NULL OR last_seen < ?) LIMIT "+chunk+")", c, c); err != nil {
			return total, err
		}
		// The dashboard's counts of minutes and whole hours before the
		// cutoff (not in the total).
		m := floorDiv(now.Add(-r.Alerts).Unix(), 60)
		if _, err := s.exec(ctx, "DELETE FROM alert_counts WHERE minute < ?", m); err != nil {
			return total, fmt.Errorf("pruning alert counts: %w", err)
		}
		if _, err := s.exec(ctx, "DELETE FROM alert_counts_hour WHERE hour < ?", floorDiv(m, 60)); err != nil {
			return total, fmt.Errorf("pruning alert counts: %w", err)
		}
		if err := del("incidents", "DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE last_seen < ? LIMIT "+chunk+")", c); err != nil {
			return total, err
		}
	}
	if r.Responses > 0 {
		c := s.d.ts(now.Add(-r.Responses))
		if err := del("responses", "DELETE FROM responses WHERE id IN (SELECT id FROM responses WHERE time < ? LIMIT "+chunk+")", c); err != nil {
			return total, err
		}
	}
	if r.Audit > 0 {
		c := s.d.ts(now.Add(-r.Audit))
		if err := del("audit", "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE time < ? LIMIT "+chunk+")", c); err != nil {
			return total, err
		}
	}
	if r.Scans > 0 {
		c := s.d.ts(now.Add(-r.Scans))
		rows, err := s.query(ctx, "SELECT id FROM scans s WHERE time < ? AND NOT (image_digest <> '' AND NOT EXISTS "+
			"(SELECT 1 FROM scans n WHERE n.image_digest = s.image_digest AND (n.time > s.time OR (n.time = s.time AND n.id > s.id))))", c)
		if err != nil {
			return total, fmt.Errorf("pruning scans: %w", err)
		}
		ids, err := collect(rows, func(r *sql.Rows, id *string) error { return r.Scan(id) })
		if err != nil {
			return total, fmt.Errorf("pruning scans: %w", err)
		}
		for _, id := range ids {
			if err := del("findings", "DELETE FROM findings WHERE scan_id = ?", id); err != nil {
				return total, err
			}
			if err := del("scans", "DELETE FROM scans WHERE id = ?", id); err != nil {
				return total, err
			}
		}
	}
	if err := del("sessions", "DELETE FROM sessions WHERE expires < ?", s.d.ts(now)); err != nil {
		return total, err
	}
	return total, nil
}
