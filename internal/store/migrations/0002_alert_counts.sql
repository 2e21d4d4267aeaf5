-- Alert counts for the dashboard (AlertStats), kept by Apply so that the
-- dashboard never reads the alert rows: per minute and per hour (Unix
-- seconds / 60, / 3600), by dimension: "p" priority, "r" rule, "w"
-- workload, "t" MITRE technique. Counts for alerts stored before this
-- version are added by the migration's Go step (migrate.go).
CREATE TABLE alert_counts (
	dim TEXT NOT NULL,
	minute BIGINT NOT NULL,
	name TEXT NOT NULL,
	n BIGINT NOT NULL,
	PRIMARY KEY (dim, minute, name)
);
CREATE TABLE alert_counts_hour (
	dim TEXT NOT NULL,
	hour BIGINT NOT NULL,
	name TEXT NOT NULL,
	n BIGINT NOT NULL,
	PRIMARY KEY (dim, hour, name)
);
