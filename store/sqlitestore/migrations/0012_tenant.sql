-- Usage over time (store.UsageHour): per tenant and hour, the records and
-- bytes stored as of the hour's last sample, the requests served and the
-- milliseconds of job work. Nodes add their counts to a row; they never
-- replace another node's.

CREATE TABLE usage_hourly (
	tenant_id TEXT    NOT NULL,
	hour      INTEGER NOT NULL, -- Unix seconds of the hour's start, UTC
	records   INTEGER NOT NULL DEFAULT 0,
	bytes     INTEGER NOT NULL DEFAULT 0,
	requests  INTEGER NOT NULL DEFAULT 0,
	job_ms    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant_id, hour)
) STRICT;
