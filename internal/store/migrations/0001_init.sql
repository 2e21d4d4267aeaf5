-- Vigil server schema, version 1. {{TIME}}, {{BOOL}}, {{FLOAT}} and {{SERIAL}}
-- are filled per engine (internal/store/dialect.go). One statement per
-- line group, each ending with ";" at the end of a line.

CREATE TABLE agents (
	id TEXT PRIMARY KEY,
	hostname TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	enrolled {{TIME}},
	last_seen {{TIME}},
	cert_serial TEXT NOT NULL DEFAULT '',
	cert_not_after {{TIME}},
	revoked {{BOOL}},
	seq BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE enroll_tokens (
	hash TEXT PRIMARY KEY,
	created_by TEXT NOT NULL DEFAULT '',
	created {{TIME}},
	expires {{TIME}},
	used_by TEXT,
	used_at {{TIME}}
);

CREATE TABLE alerts (
	id TEXT PRIMARY KEY,
	agent_id TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	time {{TIME}},
	last_seen {{TIME}},
	count INTEGER NOT NULL DEFAULT 1,
	rule TEXT NOT NULL DEFAULT '',
	priority TEXT NOT NULL DEFAULT '',
	severity INTEGER NOT NULL DEFAULT 0,
	source TEXT NOT NULL DEFAULT '',
	tactics TEXT,
	techniques TEXT,
	output TEXT NOT NULL DEFAULT '',
	container_id TEXT NOT NULL DEFAULT '',
	container_name TEXT NOT NULL DEFAULT '',
	image TEXT NOT NULL DEFAULT '',
	namespace TEXT NOT NULL DEFAULT '',
	pod TEXT NOT NULL DEFAULT '',
	class TEXT NOT NULL DEFAULT '',
	incident_id TEXT NOT NULL DEFAULT '',
	dedup_key TEXT NOT NULL DEFAULT '',
	responses TEXT,
	raw TEXT
);
-- Range filters and the dashboard's statistics.
CREATE INDEX alerts_time ON alerts (time);
-- The alert list filtered by rule or agent, newest (highest ID) first.
CREATE INDEX alerts_rule ON alerts (rule, id);
CREATE INDEX alerts_agent ON alerts (agent_id, id);
-- An incident's alerts.
CREATE INDEX alerts_incident ON alerts (incident_id);

CREATE TABLE incidents (
	id TEXT PRIMARY KEY,
	agent_id TEXT NOT NULL DEFAULT '',
	host TEXT NOT NULL DEFAULT '',
	workload_key TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	first_seen {{TIME}},
	last_seen {{TIME}},
	alert_count INTEGER NOT NULL DEFAULT 0,
	severity INTEGER NOT NULL DEFAULT 0,
	priority TEXT NOT NULL DEFAULT '',
	tactics TEXT,
	techniques TEXT
);
CREATE INDEX incidents_agent ON incidents (agent_id, last_seen);
CREATE INDEX incidents_last_seen ON incidents (last_seen);

CREATE TABLE assets (
	kind TEXT NOT NULL,
	id TEXT NOT NULL,
	agent_id TEXT NOT NULL DEFAULT '',
	name TEXT NOT NULL DEFAULT '',
	labels TEXT,
	data TEXT,
	first_seen {{TIME}},
	last_seen {{TIME}},
	gone {{BOOL}},
	PRIMARY KEY (kind, id)
);

CREATE TABLE scans (
	id TEXT PRIMARY KEY,
	time {{TIME}},
	target TEXT NOT NULL DEFAULT '',
	image_digest TEXT NOT NULL DEFAULT '',
	source TEXT NOT NULL DEFAULT '',
	summary TEXT,
	report TEXT,
	sbom TEXT
);
CREATE INDEX scans_time ON scans (time);
CREATE INDEX scans_digest ON scans (image_digest, time);

CREATE TABLE findings (
	scan_id TEXT NOT NULL,
	n INTEGER NOT NULL,
	vuln_id TEXT NOT NULL DEFAULT '',
	cve TEXT NOT NULL DEFAULT '',
	package TEXT NOT NULL DEFAULT '',
	version TEXT NOT NULL DEFAULT '',
	package_type TEXT NOT NULL DEFAULT '',
	purl TEXT NOT NULL DEFAULT '',
	fixed_version TEXT NOT NULL DEFAULT '',
	severity TEXT NOT NULL DEFAULT '',
	severity_rank INTEGER NOT NULL DEFAULT 9,
	cvss {{FLOAT}} NOT NULL DEFAULT 0,
	kev {{BOOL}},
	epss {{FLOAT}} NOT NULL DEFAULT 0,
	summary TEXT NOT NULL DEFAULT '',
	aliases TEXT,
	PRIMARY KEY (scan_id, n)
);
-- Findings in risk order: KEV first, then severity, then EPSS.
CREATE INDEX findings_risk ON findings (scan_id, kev DESC, severity_rank, epss DESC);

CREATE TABLE responses (
	id TEXT PRIMARY KEY,
	agent_id TEXT NOT NULL DEFAULT '',
	alert_id TEXT NOT NULL DEFAULT '',
	time {{TIME}},
	action TEXT NOT NULL DEFAULT '',
	actor TEXT NOT NULL DEFAULT '',
	outcome TEXT NOT NULL DEFAULT '',
	error TEXT NOT NULL DEFAULT '',
	target TEXT NOT NULL DEFAULT '',
	undone {{BOOL}},
	record TEXT
);
CREATE INDEX responses_time ON responses (time);
CREATE INDEX responses_agent ON responses (agent_id, time);
CREATE INDEX responses_alert ON responses (alert_id);

CREATE TABLE profiles (
	agent_id TEXT NOT NULL,
	class TEXT NOT NULL,
	mode TEXT NOT NULL DEFAULT '',
	updated {{TIME}},
	data TEXT,
	PRIMARY KEY (agent_id, class)
);

CREATE TABLE compliance (
	id TEXT PRIMARY KEY,
	agent_id TEXT NOT NULL DEFAULT '',
	time {{TIME}},
	benchmark TEXT NOT NULL DEFAULT '',
	check_id TEXT NOT NULL DEFAULT '',
	title TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT '',
	data TEXT
);
CREATE INDEX compliance_time ON compliance (time);

CREATE TABLE users (
	name TEXT PRIMARY KEY,
	password_hash TEXT NOT NULL,
	role TEXT NOT NULL,
	created {{TIME}}
);

CREATE TABLE sessions (
	hash TEXT PRIMARY KEY,
	user_name TEXT NOT NULL,
	role TEXT NOT NULL,
	csrf TEXT NOT NULL DEFAULT '',
	created {{TIME}},
	expires {{TIME}}
);
CREATE INDEX sessions_expires ON sessions (expires);

CREATE TABLE api_tokens (
	id TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT '',
	hash TEXT NOT NULL UNIQUE,
	role TEXT NOT NULL,
	created_by TEXT NOT NULL DEFAULT '',
	created {{TIME}},
	expires {{TIME}}
);

CREATE TABLE audit (
	id {{SERIAL}},
	time {{TIME}},
	actor TEXT NOT NULL DEFAULT '',
	action TEXT NOT NULL DEFAULT '',
	target TEXT NOT NULL DEFAULT '',
	detail TEXT NOT NULL DEFAULT '',
	remote TEXT NOT NULL DEFAULT '',
	ok {{BOOL}}
);
CREATE INDEX audit_time ON audit (time);
