// Package store keeps the server's state: enrolled agents, the inventory,
// scan results, alerts and incidents, response actions, learned profiles,
// compliance results, users, sessions, API tokens and the audit log. Two
// engines implement one Store: embedded SQLite (modernc.org/sqlite, no cgo,
// one file) and PostgreSQL (jackc/pgx) for fleets and several server
// replicas. Both run the same migrations and pass the same test suite.
//
// The store holds no policy: deduplication, incident correlation and access
// control are decided by its callers (internal/hub, internal/server). It
// never imports agent code.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors a Store returns; wrap-checked with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	// ErrExists is a create whose key is taken.
	ErrExists = errors.New("already exists")
	// ErrTokenUsed is an enrollment token presented a second time.
	ErrTokenUsed = errors.New("enrollment token already used")
	// ErrExpired is an expired enrollment token, session or API token.
	ErrExpired = errors.New("expired")
	// ErrSeqGap is an agent batch that does not follow the stored
	// sequence: records are missing in between.
	ErrSeqGap = errors.New("sequence gap")
)

// Store is the server's persistence. Implementations are safe for
// concurrent use, also by several processes sharing one PostgreSQL.
type Store interface {
	// Apply writes a batch in one transaction. For an agent's batch
	// (AgentID set, LastSeq > 0) it is idempotent: a batch whose LastSeq is
	// at or below the agent's stored sequence changes nothing; one whose
	// FirstSeq is not the stored sequence + 1 fails with ErrSeqGap.
	// Apply returns the agent's sequence after the batch (0 for a batch
	// that is not an agent's).
	Apply(ctx context.Context, b *Batch) (uint64, error)

	// Agents.
	PutAgent(ctx context.Context, a Agent) error
	Agent(ctx context.Context, id string) (Agent, error)
	Agents(ctx context.Context) ([]Agent, error)
	// TouchAgent records a heartbeat.
	TouchAgent(ctx context.Context, id string, at time.Time) error

	// Enrollment tokens are stored by the SHA-256 of the token.
	CreateEnrollToken(ctx context.Context, t EnrollToken) error
	// UseEnrollToken marks the token used by agentID: ErrNotFound for an
	// unknown hash, ErrTokenUsed the second time, ErrExpired after
	// Expires. Atomic: of two concurrent uses exactly one succeeds.
	UseEnrollToken(ctx context.Context, hash, agentID string, now time.Time) error

	// Alerts, newest first.
	Alerts(ctx context.Context, f AlertFilter) ([]Alert, error)
	Alert(ctx context.Context, id string) (Alert, error)
	AlertStats(ctx context.Context, since time.Time, bucket time.Duration) (AlertStats, error)
	// OpenIncidents returns an agent's incidents whose LastSeen is after
	// since: what the hub correlates new alerts into.
	OpenIncidents(ctx context.Context, agentID string, since time.Time) ([]Incident, error)
	Incidents(ctx context.Context, f AlertFilter) ([]Incident, error)
	Incident(ctx context.Context, id string) (Incident, error)

	// Inventory: kind is one of the Kind constants; "" lists every kind.
	Assets(ctx context.Context, kind string) ([]Asset, error)
	Asset(ctx context.Context, kind, id string) (Asset, error)

	// Scans, newest first; ScanOf is the newest scan of an image digest.
	Scans(ctx context.Context, limit int) ([]Scan, error)
	Scan(ctx context.Context, id string) (Scan, error)
	ScanOf(ctx context.Context, digest string) (Scan, error)
	// Findings of a scan, KEV first, then by severity and EPSS.
	Findings(ctx context.Context, scanID string) ([]Finding, error)

	// Responses, newest first; agentID "" for all.
	Responses(ctx context.Context, agentID string, limit int) ([]Response, error)
	Response(ctx context.Context, id string) (Response, error)

	Profiles(ctx context.Context) ([]Profile, error)
	Compliance(ctx context.Context, limit int) ([]ComplianceResult, error)

	// Users and sessions (sessions by the SHA-256 of the cookie value).
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, name string) (User, error)
	Users(ctx context.Context) ([]User, error)
	CreateSession(ctx context.Context, s Session) error
	// Session returns ErrExpired after s.Expires (and deletes it).
	Session(ctx context.Context, hash string, now time.Time) (Session, error)
	DeleteSession(ctx context.Context, hash string) error

	// API tokens by the SHA-256 of the token.
	CreateAPIToken(ctx context.Context, t APIToken) error
	APIToken(ctx context.Context, hash string, now time.Time) (APIToken, error)
	APITokens(ctx context.Context) ([]APIToken, error)
	DeleteAPIToken(ctx context.Context, id string) error

	// Audit log, newest first.
	Audit(ctx context.Context, e AuditEntry) error
	AuditLog(ctx context.Context, limit int) ([]AuditEntry, error)

	// Prune deletes alerts, incidents, responses, scans and audit entries
	// older than their retention; zero keeps forever. It returns how many
	// rows went.
	Prune(ctx context.Context, r Retention, now time.Time) (int64, error)

	// Ping checks the database answers: the server reports itself
	// degraded while it does not.
	Ping(ctx context.Context) error
	Close() error
}

// Batch is everything one write brings, applied atomically.
type Batch struct {
	// AgentID and FirstSeq..LastSeq identify an agent's spooled records;
	// zero for writes that are not an agent's (CI scans, operators).
	AgentID           string
	FirstSeq, LastSeq uint64

	Alerts       []Alert // new alerts
	AlertUpdates []AlertUpdate
	Incidents    []Incident // upserted by ID
	Assets       []Asset    // upserted by (Kind, ID)
	Scans        []Scan     // with their Findings
	Responses    []Response // upserted by ID
	Profiles     []Profile  // upserted by (AgentID, Class)
	Compliance   []ComplianceResult
}

// Agent is an enrolled node.
type Agent struct {
	ID       string    `json:"id"`
	Hostname string    `json:"hostname"`
	Version  string    `json:"version,omitempty"`
	Enrolled time.Time `json:"enrolled"`
	LastSeen time.Time `json:"last_seen,omitzero"`
	// CertSerial is the serial of the client certificate issued at
	// enrollment (hex); CertNotAfter its expiry.
	CertSerial   string    `json:"cert_serial"`
	CertNotAfter time.Time `json:"cert_not_after"`
	Revoked      bool      `json:"revoked,omitempty"`
	// Seq is the last record sequence number stored from this agent.
	Seq uint64 `json:"seq"`
}

// EnrollToken is a one-time enrollment secret, stored by hash.
type EnrollToken struct {
	Hash      string    `json:"-"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires"`
	UsedBy    string    `json:"used_by,omitempty"`
	UsedAt    time.Time `json:"used_at,omitzero"`
}

// Alert is one stored alert: the agent's alert.Alert (Raw) plus the
// columns it is searched by.
type Alert struct {
	ID      string `json:"id"` // assigned by the server (UUIDv7)
	AgentID string `json:"agent_id"`
	Host    string `json:"host"`
	// Time is the first occurrence, LastSeen the latest; Count how many
	// occurrences this row stands for after deduplication.
	Time     time.Time `json:"time"`
	LastSeen time.Time `json:"last_seen"`
	Count    int       `json:"count"`
	Rule     string    `json:"rule"`
	// Priority is Falco's: emergency … debug; Severity its rank, 0 for
	// emergency to 7 for debug, so "at least warning" is Severity <= 4.
	Priority   string   `json:"priority"`
	Severity   int      `json:"severity"`
	Source     string   `json:"source"`
	Tactics    []string `json:"mitre_tactics,omitempty"`
	Techniques []string `json:"mitre_techniques,omitempty"`
	Output     string   `json:"output"`
	// The workload: container (ID, name, image), Kubernetes pod and
	// namespace, and the workload class profiles and policy use.
	ContainerID   string `json:"container_id,omitempty"`
	ContainerName string `json:"container_name,omitempty"`
	Image         string `json:"image,omitempty"`
	Namespace     string `json:"namespace,omitempty"`
	Pod           string `json:"pod,omitempty"`
	Class         string `json:"class,omitempty"`
	IncidentID    string `json:"incident_id,omitempty"`
	// DedupKey is alert.Key plus the agent: repeats share it.
	DedupKey  string          `json:"-"`
	Responses []string        `json:"responses,omitempty"`
	Raw       json.RawMessage `json:"raw"`
}

// AlertUpdate folds repeats into a stored alert.
type AlertUpdate struct {
	ID        string
	AddCount  int
	LastSeen  time.Time
	Responses []string // appended
	Raw       json.RawMessage
}

// AlertFilter selects alerts (and incidents, by the fields that apply).
// Zero fields do not filter.
type AlertFilter struct {
	Since, Until time.Time
	// MaxSeverity keeps alerts at least that severe (Severity <= it); -1
	// or a zero filter with HasSeverity false keeps all.
	MaxSeverity int
	HasSeverity bool
	// Workload matches the container ID (prefix), container name, image,
	// pod, class or host.
	Workload   string
	Rule       string
	AgentID    string
	IncidentID string
	// Limit caps the rows (default 100, at most 1000); Before is a cursor:
	// only rows with an ID below it (IDs sort by time).
	Limit  int
	Before string
}

// AlertStats is the dashboard's summary.
type AlertStats struct {
	Total int `json:"total"`
	// Buckets are alerts over time, by priority, oldest first.
	Buckets       []Bucket       `json:"buckets"`
	ByPriority    map[string]int `json:"by_priority"`
	TopRules      []Count        `json:"top_rules"`
	TopTechniques []Count        `json:"top_techniques"`
	TopWorkloads  []Count        `json:"top_workloads"`
}

// Bucket counts alerts starting at Start.
type Bucket struct {
	Start  time.Time      `json:"start"`
	Counts map[string]int `json:"counts"`
}

// Count is one ranked name.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Incident groups an agent's alerts on one workload close in time, with the
// chain of techniques they show.
type Incident struct {
	ID      string `json:"id"`
	AgentID string `json:"agent_id"`
	Host    string `json:"host"`
	// WorkloadKey is the container ID, else "host:<hostname>".
	WorkloadKey string    `json:"workload_key"`
	Title       string    `json:"title"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
	AlertCount  int       `json:"alert_count"`
	Severity    int       `json:"severity"` // the most severe alert's
	Priority    string    `json:"priority"`
	Tactics     []string  `json:"mitre_tactics,omitempty"`
	Techniques  []string  `json:"mitre_techniques,omitempty"` // in order of first appearance
}

// Asset kinds.
const (
	KindHost      = "host"
	KindContainer = "container"
	KindImage     = "image" // ID is the image digest (sha256:…) or, unknown that, the reference
	KindWorkload  = "k8s_workload"
	KindFunction  = "function"
)

// Asset is one inventory item.
type Asset struct {
	Kind    string            `json:"kind"`
	ID      string            `json:"id"`
	AgentID string            `json:"agent_id,omitempty"`
	Name    string            `json:"name"`
	Labels  map[string]string `json:"labels,omitempty"`
	// Data is the kind's own record (the host's OS, the container's image
	// and state, …) as JSON.
	Data      json.RawMessage `json:"data,omitempty"`
	FirstSeen time.Time       `json:"first_seen"`
	LastSeen  time.Time       `json:"last_seen"`
	// Gone is set when the agent saw the asset end (a removed container).
	Gone bool `json:"gone,omitempty"`
}

// Scan is one vulnerability scan of an image, filesystem or host.
type Scan struct {
	ID     string    `json:"id"`
	Time   time.Time `json:"time"`
	Target string    `json:"target"`
	// ImageDigest is set for image scans.
	ImageDigest string `json:"image_digest,omitempty"`
	// Source is "agent:<id>" or "ci:<token name>".
	Source   string      `json:"source"`
	Summary  ScanSummary `json:"summary"`
	Findings []Finding   `json:"findings,omitempty"` // written by Apply, read by Findings
	// Report is the whole `vigil scan --format json` document; SBOM the
	// CycloneDX JSON when it came with the scan.
	Report json.RawMessage `json:"-"`
	SBOM   json.RawMessage `json:"-"`
}

// ScanSummary counts a scan's findings.
type ScanSummary struct {
	Packages int `json:"packages"`
	Findings int `json:"findings"`
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	KEV      int `json:"kev"`
}

// Finding is one vulnerability in one package of a scan.
type Finding struct {
	ScanID       string   `json:"scan_id"`
	VulnID       string   `json:"vuln_id"`
	CVE          string   `json:"cve,omitempty"`
	Package      string   `json:"package"`
	Version      string   `json:"version"`
	PackageType  string   `json:"package_type,omitempty"`
	PURL         string   `json:"purl,omitempty"`
	FixedVersion string   `json:"fixed_version,omitempty"`
	Severity     string   `json:"severity"`
	CVSS         float64  `json:"cvss,omitempty"`
	KEV          bool     `json:"kev"`
	EPSS         float64  `json:"epss,omitempty"`
	Summary      string   `json:"summary,omitempty"`
	Aliases      []string `json:"aliases,omitempty"`
}

// Response is one response action and its outcome, as the agent recorded
// it (Record is response.Record's JSON).
type Response struct {
	ID      string          `json:"id"`
	AgentID string          `json:"agent_id"`
	AlertID string          `json:"alert_id,omitempty"`
	Time    time.Time       `json:"time"`
	Action  string          `json:"action"`
	Actor   string          `json:"actor"`
	Outcome string          `json:"outcome"`
	Error   string          `json:"error,omitempty"`
	Target  string          `json:"target"` // container ID or pid
	Undone  bool            `json:"undone,omitempty"`
	Record  json.RawMessage `json:"record"`
}

// Profile is one workload class's learned profile on one agent (Data is
// profile.Profile's JSON).
type Profile struct {
	AgentID string          `json:"agent_id"`
	Class   string          `json:"class"`
	Mode    string          `json:"mode"`
	Updated time.Time       `json:"updated"`
	Data    json.RawMessage `json:"data"`
}

// ComplianceResult is one check's outcome on one node (filled by the
// benchmark work: CIS Linux, Docker, Kubernetes).
type ComplianceResult struct {
	ID        string          `json:"id"`
	AgentID   string          `json:"agent_id,omitempty"`
	Time      time.Time       `json:"time"`
	Benchmark string          `json:"benchmark"`
	CheckID   string          `json:"check_id"`
	Title     string          `json:"title"`
	Status    string          `json:"status"` // pass, fail, warn, manual
	Data      json.RawMessage `json:"data,omitempty"`
}

// Roles, from most to least allowed.
const (
	RoleAdmin    = "admin"
	RoleAnalyst  = "analyst"
	RoleReadOnly = "read-only"
)

// User is a console user; PasswordHash is a PHC-style argon2id or bcrypt
// string, never the password.
type User struct {
	Name         string    `json:"name"`
	PasswordHash string    `json:"-"`
	Role         string    `json:"role"`
	Created      time.Time `json:"created"`
}

// Session is a logged-in console user, stored by the hash of its cookie.
type Session struct {
	Hash    string    `json:"-"`
	User    string    `json:"user"`
	Role    string    `json:"role"`
	CSRF    string    `json:"-"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
}

// APIToken authenticates scripts and CI, stored by hash.
type APIToken struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Hash      string    `json:"-"`
	Role      string    `json:"role"`
	CreatedBy string    `json:"created_by"`
	Created   time.Time `json:"created"`
	Expires   time.Time `json:"expires,omitzero"`
}

// AuditEntry is one operator action, allowed or refused.
type AuditEntry struct {
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`  // user name, "token:<name>" or "agent:<id>"
	Action string    `json:"action"` // "respond", "login", "create-token", …
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Remote string    `json:"remote,omitempty"`
	OK     bool      `json:"ok"`
}

// Retention says how long each kind of row is kept; zero keeps forever.
type Retention struct {
	Alerts, Responses, Scans, Audit time.Duration
}
