package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/vigil-cwpp/vigil/internal/store"
	"github.com/vigil-cwpp/vigil/internal/wire"
)

// Bounds on what an enrollment request may carry.
const (
	maxTokenLen    = 512
	maxHostnameLen = 253
	maxVersionLen  = 128
)

// TokenHash is how enrollment tokens are stored: the SHA-256 of the token,
// lower-case hex.
func TokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func remote(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return "?"
}

func (h *Hub) enroll(ctx context.Context, r *wire.EnrollRequest) (*wire.EnrollResponse, error) {
	log := h.log.With("remote", remote(ctx), "hostname", clip(r.Hostname, 64))
	switch {
	case r.Token == "" || len(r.Token) > maxTokenLen:
		log.Warn("enrollment refused: no token or an oversized one")
		return nil, status.Error(codes.Unauthenticated, "enrollment token missing or malformed")
	case r.Hostname == "" || len(r.Hostname) > maxHostnameLen || strings.ContainsFunc(r.Hostname, isControl):
		log.Warn("enrollment refused: bad hostname")
		return nil, status.Error(codes.InvalidArgument, "hostname missing, over 253 bytes or with control characters")
	case len(r.Version) > maxVersionLen || strings.ContainsFunc(r.Version, isControl):
		log.Warn("enrollment refused: bad version")
		return nil, status.Error(codes.InvalidArgument, "version over 128 bytes or with control characters")
	}
	id := newID()
	// The request is checked before the token is spent, so a bad CSR does
	// not burn a token; the certificate is signed after, so a refused
	// token signs nothing.
	if _, _, _, err := h.opts.CA.SignAgent(r.CSR, id, h.opts.CertTTL); err != nil {
		log.Warn("enrollment refused: bad certificate request", "err", err)
		return nil, status.Errorf(codes.InvalidArgument, "certificate request: %v", err)
	}
	now := h.opts.Now()
	if err := h.opts.Store.UseEnrollToken(ctx, TokenHash(r.Token), id, now); err != nil {
		switch {
		case errors.Is(err, store.ErrTokenUsed):
			log.Warn("enrollment refused: token replayed")
			return nil, status.Error(codes.PermissionDenied, "enrollment token already used")
		case errors.Is(err, store.ErrExpired):
			log.Warn("enrollment refused: token expired")
			return nil, status.Error(codes.PermissionDenied, "enrollment token expired")
		case errors.Is(err, store.ErrNotFound):
			log.Warn("enrollment refused: unknown token")
			return nil, status.Error(codes.Unauthenticated, "unknown enrollment token")
		}
		log.Error("enrollment: store", "err", err)
		return nil, status.Errorf(codes.Unavailable, "store: %v", err)
	}
	certPEM, serial, notAfter, err := h.opts.CA.SignAgent(r.CSR, id, h.opts.CertTTL)
	if err != nil {
		log.Error("enrollment: signing after the token was used", "agent", id, "err", err)
		return nil, status.Errorf(codes.Internal, "signing: %v", err)
	}
	a := store.Agent{
		ID: id, Hostname: r.Hostname, Version: r.Version, Enrolled: now, LastSeen: now,
		CertSerial: serial, CertNotAfter: notAfter,
	}
	if err := h.opts.Store.PutAgent(ctx, a); err != nil {
		log.Error("enrollment: storing the agent after the token was used", "agent", id, "err", err)
		return nil, status.Errorf(codes.Unavailable, "store: %v", err)
	}
	log.Info("agent enrolled", "agent", id, "serial", serial, "not_after", notAfter)
	return &wire.EnrollResponse{AgentID: id, Certificate: certPEM, CA: h.opts.CA.CertPEM()}, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// clip shortens untrusted text for a log line.
func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
