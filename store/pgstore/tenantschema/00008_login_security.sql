-- Login protection and TOTP, applied like 00003 to the pooled schema and
-- every silo schema, under the same forced row-level security.
--
-- user_mfa: a user's TOTP enrolment. secret is the seed sealed under the
-- tenant's data key; last_step the last time step whose code was accepted,
-- so that no code is accepted twice. recovery_codes: single-use codes,
-- hashed. login_throttle: failed logins and the lock-out of each login
-- subject (keyed by a hash of the email, so that addresses naming no user
-- are throttled alike; locked_until 'epoch' when never locked).
-- login_addresses: the addresses each user logged in from lately.
-- auth_policy: the tenant's authentication policy.

CREATE TABLE user_mfa (
	tenant_id    uuid NOT NULL,
	user_id      text COLLATE "C" NOT NULL,
	secret       bytea NOT NULL,
	confirmed_at timestamptz,
	last_step    bigint NOT NULL,
	created_at   timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE recovery_codes (
	tenant_id uuid NOT NULL,
	user_id   text COLLATE "C" NOT NULL,
	id        text COLLATE "C" NOT NULL,
	hash      bytea NOT NULL,
	used_at   timestamptz,
	PRIMARY KEY (tenant_id, user_id, id)
);

CREATE TABLE login_throttle (
	tenant_id       uuid NOT NULL,
	subject         text COLLATE "C" NOT NULL,
	failures        integer NOT NULL,
	last_failure_at timestamptz NOT NULL,
	locked_until    timestamptz NOT NULL,
	reason          text NOT NULL,
	PRIMARY KEY (tenant_id, subject)
);

CREATE INDEX login_throttle_last_failure ON login_throttle (tenant_id, last_failure_at);

CREATE TABLE login_addresses (
	tenant_id uuid NOT NULL,
	user_id   text COLLATE "C" NOT NULL,
	addr      text COLLATE "C" NOT NULL,
	last_seen timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, user_id, addr)
);

CREATE TABLE auth_policy (
	tenant_id         uuid NOT NULL PRIMARY KEY,
	mfa_required_role text NOT NULL,
	updated_at        timestamptz NOT NULL
);

ALTER TABLE user_mfa        ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE recovery_codes  ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE login_throttle  ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE login_addresses ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE auth_policy     ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON user_mfa
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON recovery_codes
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON login_throttle
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON login_addresses
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON auth_policy
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
