-- OpenID Connect federation, per tenant, applied like 00003 to the pooled
-- schema and every silo schema: at most one identity provider per tenant
-- (oidc_configs, whose client secret is sealed under the tenant's data key)
-- and the identities at providers linked to the tenant's users
-- (identity_links). An identity is (issuer, subject); it is linked within
-- one tenant only. Row-level security confines both like every tenant table.

CREATE TABLE oidc_configs (
	tenant_id     uuid NOT NULL,
	issuer        text NOT NULL,
	client_id     text NOT NULL,
	client_secret bytea NOT NULL,
	default_role  text NOT NULL,
	jit           boolean NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	PRIMARY KEY (tenant_id)
);

CREATE TABLE identity_links (
	tenant_id  uuid NOT NULL,
	issuer     text COLLATE "C" NOT NULL,
	subject    text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, issuer, subject)
);

CREATE INDEX identity_links_user ON identity_links (tenant_id, user_id);

ALTER TABLE oidc_configs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE identity_links ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON oidc_configs
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);

CREATE POLICY tenant_isolation ON identity_links
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
