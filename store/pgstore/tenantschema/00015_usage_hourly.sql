-- Usage over time (store.UsageHour): per tenant and hour, the records and
-- bytes stored as of the hour's last sample, the requests served and the
-- milliseconds of job work, applied like 00003 to the pooled schema and
-- every silo schema. Nodes add their counts to a row; they never replace
-- another node's. Row-level security confines it like every tenant table.

CREATE TABLE usage_hourly (
	tenant_id uuid NOT NULL,
	hour      timestamptz NOT NULL,
	records   bigint NOT NULL DEFAULT 0,
	bytes     bigint NOT NULL DEFAULT 0,
	requests  bigint NOT NULL DEFAULT 0,
	job_ms    bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant_id, hour)
);

ALTER TABLE usage_hourly ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON usage_hourly
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
