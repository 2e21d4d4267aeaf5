package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// exec runs a write on the writer.
func (s *db) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := s.w.ExecContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return 0, fmt.Errorf("store %s: %w", s.name, err)
	}
	return res.RowsAffected()
}

// create inserts one row, ErrExists naming what when its key is taken.
func (s *db) create(ctx context.Context, what, table, cols string, args ...any) error {
	n, err := s.exec(ctx, insertText(table, cols, len(args), " ON CONFLICT DO NOTHING"), args...)
	if err != nil {
		return fmt.Errorf("creating %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrExists)
	}
	return nil
}

func insertText(table, cols string, n int, tail string) string {
	q := "INSERT INTO " + table + " (" + cols + ") VALUES ("
	for i := 0; i < n; i++ {
		if i > 0 {
			q += ", "
		}
		q += "?"
	}
	return q + ")" + tail
}

const agentCols = "id, hostname, version, enrolled, last_seen, cert_serial, cert_not_after, revoked, seq"

// PutAgent creates or updates an agent. On update it keeps the stored Seq:
// only Apply moves an agent's sequence.
func (s *db) PutAgent(ctx context.Context, a Agent) error {
	if a.ID == "" {
		return fmt.Errorf("putting agent: empty ID")
	}
	_, err := s.exec(ctx, insertText("agents", agentCols, 9, " ON CONFLICT (id) DO UPDATE SET "+excluded(agentCols, "id", "seq")),
		a.ID, a.Hostname, a.Version, s.d.ts(a.Enrolled), s.d.ts(a.LastSeen), a.CertSerial, s.d.ts(a.CertNotAfter), a.Revoked, int64(a.Seq))
	if err != nil {
		return fmt.Errorf("putting agent %s: %w", a.ID, err)
	}
	return nil
}

func scanAgent(r *sql.Rows, a *Agent) error {
	var seq int64
	err := r.Scan(&a.ID, &a.Hostname, &a.Version, timeCol{&a.Enrolled}, timeCol{&a.LastSeen}, &a.CertSerial, timeCol{&a.CertNotAfter}, &a.Revoked, &seq)
	a.Seq = uint64(seq)
	return err
}

func (s *db) Agent(ctx context.Context, id string) (Agent, error) {
	return one(s, ctx, "agent "+id, scanAgent, "SELECT "+agentCols+" FROM agents WHERE id = ?", id)
}

func (s *db) Agents(ctx context.Context) ([]Agent, error) {
	rows, err := s.query(ctx, "SELECT "+agentCols+" FROM agents ORDER BY hostname, id")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAgent)
}

func (s *db) TouchAgent(ctx context.Context, id string, at time.Time) error {
	n, err := s.exec(ctx, "UPDATE agents SET last_seen = ? WHERE id = ?", s.d.ts(at), id)
	if err != nil {
		return fmt.Errorf("touching agent %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("agent %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *db) CreateEnrollToken(ctx context.Context, t EnrollToken) error {
	return s.create(ctx, "enrollment token", "enroll_tokens", "hash, created_by, created, expires",
		t.Hash, t.CreatedBy, s.d.ts(t.Created), s.d.ts(t.Expires))
}

// UseEnrollToken marks the token used in one conditional UPDATE, so of
// two concurrent uses the engine lets exactly one match.
func (s *db) UseEnrollToken(ctx context.Context, hash, agentID string, now time.Time) error {
	n, err := s.exec(ctx, "UPDATE enroll_tokens SET used_by = ?, used_at = ? WHERE hash = ? AND used_by IS NULL AND (expires IS NULL OR expires >= ?)",
		agentID, s.d.ts(now), hash, s.d.ts(now))
	if err != nil {
		return fmt.Errorf("using enrollment token: %w", err)
	}
	if n == 1 {
		return nil
	}
	var usedBy sql.NullString
	var expires time.Time
	err = s.w.QueryRowContext(ctx, s.d.rebind("SELECT used_by, expires FROM enroll_tokens WHERE hash = ?"), hash).Scan(&usedBy, timeCol{&expires})
	switch {
	case isNoRows(err):
		return fmt.Errorf("enrollment token: %w", ErrNotFound)
	case err != nil:
		return fmt.Errorf("using enrollment token: %w", err)
	case usedBy.Valid:
		return fmt.Errorf("enrollment token (used by agent %s): %w", usedBy.String, ErrTokenUsed)
	default:
		return fmt.Errorf("enrollment token (expired %s): %w", expires.Format(time.RFC3339), ErrExpired)
	}
}

func (s *db) CreateUser(ctx context.Context, u User) error {
	if u.Name == "" {
		return fmt.Errorf("creating user: empty name")
	}
	return s.create(ctx, "user "+u.Name, "users", "name, password_hash, role, created", u.Name, u.PasswordHash, u.Role, s.d.ts(u.Created))
}

func scanUser(r *sql.Rows, u *User) error {
	return r.Scan(&u.Name, &u.PasswordHash, &u.Role, timeCol{&u.Created})
}

func (s *db) User(ctx context.Context, name string) (User, error) {
	return one(s, ctx, "user "+name, scanUser, "SELECT name, password_hash, role, created FROM users WHERE name = ?", name)
}

func (s *db) Users(ctx context.Context) ([]User, error) {
	rows, err := s.query(ctx, "SELECT name, password_hash, role, created FROM users ORDER BY name")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanUser)
}

func (s *db) CreateSession(ctx context.Context, x Session) error {
	return s.create(ctx, "session", "sessions", "hash, user_name, role, csrf, created, expires",
		x.Hash, x.User, x.Role, x.CSRF, s.d.ts(x.Created), s.d.ts(x.Expires))
}

func (s *db) Session(ctx context.Context, hash string, now time.Time) (Session, error) {
	x, err := one(s, ctx, "session", func(r *sql.Rows, x *Session) error {
		return r.Scan(&x.Hash, &x.User, &x.Role, &x.CSRF, timeCol{&x.Created}, timeCol{&x.Expires})
	}, "SELECT hash, user_name, role, csrf, created, expires FROM sessions WHERE hash = ?", hash)
	if err != nil {
		return Session{}, err
	}
	if !x.Expires.IsZero() && now.After(x.Expires) {
		if err := s.DeleteSession(ctx, hash); err != nil {
			return Session{}, err
		}
		return Session{}, fmt.Errorf("session of %s: %w", x.User, ErrExpired)
	}
	return x, nil
}

// DeleteSession deletes a session; deleting an unknown one is no error
// (logging out twice).
func (s *db) DeleteSession(ctx context.Context, hash string) error {
	if _, err := s.exec(ctx, "DELETE FROM sessions WHERE hash = ?", hash); err != nil {
		return fmt.Errorf("deleting session: %w", err)
	}
	return nil
}

const apiTokenCols = "id, name, hash, role, created_by, created, expires"

func scanAPIToken(r *sql.Rows, t *APIToken) error {
	return r.Scan(&t.ID, &t.Name, &t.Hash, &t.Role, &t.CreatedBy, timeCol{&t.Created}, timeCol{&t.Expires})
}

func (s *db) CreateAPIToken(ctx context.Context, t APIToken) error {
	return s.create(ctx, "API token "+t.Name, "api_tokens", apiTokenCols,
		t.ID, t.Name, t.Hash, t.Role, t.CreatedBy, s.d.ts(t.Created), s.d.ts(t.Expires))
}

// APIToken returns the token with that hash: ErrNotFound, or ErrExpired
// after its Expires (a zero Expires never expires).
func (s *db) APIToken(ctx context.Context, hash string, now time.Time) (APIToken, error) {
	t, err := one(s, ctx, "API token", scanAPIToken, "SELECT "+apiTokenCols+" FROM api_tokens WHERE hash = ?", hash)
	if err != nil {
		return APIToken{}, err
	}
	if !t.Expires.IsZero() && now.After(t.Expires) {
		return APIToken{}, fmt.Errorf("API token %s: %w", t.Name, ErrExpired)
	}
	return t, nil
}

func (s *db) APITokens(ctx context.Context) ([]APIToken, error) {
	rows, err := s.query(ctx, "SELECT "+apiTokenCols+" FROM api_tokens ORDER BY created, name, id")
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAPIToken)
}

func (s *db) DeleteAPIToken(ctx context.Context, id string) error {
	n, err := s.exec(ctx, "DELETE FROM api_tokens WHERE id = ?", id)
	if err != nil {
		return fmt.Errorf("deleting API token %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("API token %s: %w", id, ErrNotFound)
	}
	return nil
}

func (s *db) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.exec(ctx, "INSERT INTO audit (time, actor, action, target, detail, remote, ok) VALUES (?, ?, ?, ?, ?, ?, ?)",
		s.d.ts(e.Time), e.Actor, e.Action, e.Target, e.Detail, e.Remote, e.OK)
	if err != nil {
		return fmt.Errorf("writing audit entry %s by %s: %w", e.Action, e.Actor, err)
	}
	return nil
}

// AuditLog lists entries newest first (ties in the order written).
func (s *db) AuditLog(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, err := s.query(ctx, "SELECT time, actor, action, target, detail, remote, ok FROM audit ORDER BY time DESC, id DESC LIMIT ?", clamp(limit, maxRows))
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows, e *AuditEntry) error {
		return r.Scan(timeCol{&e.Time}, &e.Actor, &e.Action, &e.Target, &e.Detail, &e.Remote, &e.OK)
	})
}
