-- OpenID Connect federation, per tenant: at most one identity provider
-- (oidc_configs, whose client secret is sealed under the tenant's data key)
-- and the identities at providers linked to the tenant's users
-- (identity_links). An identity is (issuer, subject), the pair OpenID
-- Connect guarantees to be unique and stable; it is linked within one tenant
-- only, so the same person at the same provider is a different link in
-- every tenant.

CREATE TABLE oidc_configs (
	tenant_id     TEXT    NOT NULL,
	issuer        TEXT    NOT NULL,
	client_id     TEXT    NOT NULL,
	client_secret BLOB    NOT NULL,
	default_role  TEXT    NOT NULL,
	jit           INTEGER NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant_id)
) STRICT;

CREATE TABLE identity_links (
	tenant_id  TEXT    NOT NULL,
	issuer     TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, issuer, subject)
) STRICT;

CREATE INDEX identity_links_user ON identity_links (tenant_id, user_id);
