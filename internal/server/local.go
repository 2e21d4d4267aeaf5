package server

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-cwpp/vigil/internal/store"
)

// NewEnrollToken creates a one-time enrollment token for an agent on this
// machine (`vigil up` enrolls its local agent with it) and audits it as
// actor's. The token is returned once; the store keeps its hash.
func (s *Server) NewEnrollToken(ctx context.Context, actor string, ttl time.Duration) (string, error) {
	return IssueEnrollToken(ctx, s.o.Store, actor, ttl, s.o.Now())
}

// IssueEnrollToken creates a one-time enrollment token valid for ttl from
// now (0: one hour; 1m to 7 days) directly in st, audited as actor's: `vigil server enroll-token` on
// the server's host uses it without a running server.
func IssueEnrollToken(ctx context.Context, st store.Store, actor string, ttl time.Duration, now time.Time) (string, error) {
	tok, t, err := issueEnrollToken(ctx, st, actor, ttl, now)
	if err != nil {
		return "", err
	}
	if err := st.Audit(ctx, store.AuditEntry{Time: now.UTC(), Actor: actor, Action: "create-enroll-token", Target: t.Hash[:12],
		Detail: "expires " + t.Expires.Format(time.RFC3339), OK: true}); err != nil {
		return "", fmt.Errorf("auditing the enrollment token: %w", err)
	}
	return tok, nil
}

// NewAPIToken creates an API token named name (made unique with a suffix)
// with role and ttl, for a job of this process (`vigil up` reports its
// first scan with one), and audits it.
func (s *Server) NewAPIToken(ctx context.Context, name, role string, ttl time.Duration) (string, error) {
	now := s.o.Now().UTC()
	secret := "vigil_" + randomToken(32)
	id := uuid.Must(uuid.NewV7()).String()
	t := store.APIToken{ID: id, Name: name + " " + id[len(id)-12:], Hash: hashSecret(secret), Role: role,
		CreatedBy: "vigil", Created: now, Expires: now.Add(ttl)}
	if err := s.o.Store.CreateAPIToken(ctx, t); err != nil {
		return "", fmt.Errorf("creating API token %s: %w", t.Name, err)
	}
	s.o.Store.Audit(ctx, store.AuditEntry{Time: now, Actor: "vigil", Action: "create-token", Target: t.Name,
		Detail: "role " + role + ", id " + id, OK: true})
	return secret, nil
}
