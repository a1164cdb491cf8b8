-- Retention (store.RetentionTx), applied like 00003 to the pooled schema
-- and every silo schema: how long a collection keeps its records, counted
-- from created_at, updated_at or a data field; how long the tenant keeps
-- its audit entries; and the signed cuts of its audit chain.
--
-- audit_log and audit_checkpoints stay append-only for the roles the store
-- runs as (silo roles hold SELECT and INSERT only). Entries leave them
-- through audit_cut() alone: a SECURITY DEFINER function, owned by the
-- schema's owner, that removes only the entries and checkpoints below the
-- tenant's latest cut, and only if that cut matches both the entry and the
-- checkpoint at its seq. A cut row can be inserted but never changed or
-- removed by those roles, so every removal leaves its cut behind, and the
-- verifier (package audit) fails the chain unless the cut carries a valid
-- signature of the audit signing key, which the database never holds.

ALTER TABLE collections
	ADD COLUMN retention_seconds bigint NOT NULL DEFAULT 0,
	ADD COLUMN retention_field text NOT NULL DEFAULT '';

CREATE TABLE audit_retention (
	tenant_id    uuid NOT NULL PRIMARY KEY,
	keep_seconds bigint NOT NULL,
	updated_by   text NOT NULL,
	updated_at   timestamptz NOT NULL
);

CREATE TABLE audit_cuts (
	tenant_id uuid NOT NULL,
	seq       bigint NOT NULL,
	hash      bytea NOT NULL,
	key_id    text NOT NULL,
	signature bytea NOT NULL,
	time      timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, seq)
);

ALTER TABLE audit_retention ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_cuts      ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON audit_retention
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON audit_cuts
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);

-- audit_cut removes the current tenant's entries and checkpoints below its
-- latest cut and returns how many entries it removed. Row-level security
-- is forced on the owner too, so it reaches the current tenant's rows only.
-- search_path is fixed to this schema (then pg_temp) when it is created.
CREATE FUNCTION audit_cut() RETURNS bigint
	LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
	tid uuid := nullif(current_setting('bulkhead.tenant_id', true), '')::uuid;
	cut_seq bigint;
	cut_hash bytea;
	n bigint;
BEGIN
	IF tid IS NULL THEN
		RAISE EXCEPTION 'audit_cut: no tenant' USING ERRCODE = '42501';
	END IF;
	SELECT c.seq, c.hash INTO cut_seq, cut_hash FROM audit_cuts c WHERE c.tenant_id = tid ORDER BY c.seq DESC LIMIT 1;
	IF NOT FOUND THEN
		RETURN 0;
	END IF;
	IF NOT EXISTS (SELECT 1 FROM audit_log l WHERE l.tenant_id = tid AND l.seq = cut_seq AND l.hash = cut_hash)
		OR NOT EXISTS (SELECT 1 FROM audit_checkpoints k WHERE k.tenant_id = tid AND k.seq = cut_seq AND k.hash = cut_hash) THEN
		RAISE EXCEPTION 'audit_cut: cut % matches no entry and checkpoint', cut_seq USING ERRCODE = 'P0002';
	END IF;
	DELETE FROM audit_checkpoints k WHERE k.tenant_id = tid AND k.seq < cut_seq;
	DELETE FROM audit_log l WHERE l.tenant_id = tid AND l.seq < cut_seq;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

REVOKE ALL ON FUNCTION audit_cut() FROM PUBLIC;
