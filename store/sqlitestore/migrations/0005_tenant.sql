-- Login protection and TOTP, in the main file for pooled tenants and in
-- every silo file.
--
-- user_mfa: a user's TOTP enrolment. secret is the seed sealed under the
-- tenant's data key; last_step the last time step whose code was accepted,
-- so that no code is accepted twice. recovery_codes: single-use codes,
-- hashed. login_throttle: failed logins and the lock-out of each login
-- subject (keyed by a hash of the email, so that addresses naming no user
-- are throttled alike). login_addresses: the addresses each user logged in
-- from lately. auth_policy: the tenant's authentication policy.

CREATE TABLE user_mfa (
	tenant_id    TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	secret       BLOB    NOT NULL,
	confirmed_at INTEGER,
	last_step    INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, user_id)
) STRICT;

CREATE TABLE recovery_codes (
	tenant_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	id        TEXT NOT NULL,
	hash      BLOB NOT NULL,
	used_at   INTEGER,
	PRIMARY KEY (tenant_id, user_id, id)
) STRICT;

CREATE TABLE login_throttle (
	tenant_id       TEXT    NOT NULL,
	subject         TEXT    NOT NULL,
	failures        INTEGER NOT NULL,
	last_failure_at INTEGER NOT NULL,
	locked_until    INTEGER NOT NULL,
	reason          TEXT    NOT NULL,
	PRIMARY KEY (tenant_id, subject)
) STRICT;

CREATE INDEX login_throttle_last_failure ON login_throttle (tenant_id, last_failure_at);

CREATE TABLE login_addresses (
	tenant_id TEXT    NOT NULL,
	user_id   TEXT    NOT NULL,
	addr      TEXT    NOT NULL,
	last_seen INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, user_id, addr)
) STRICT;

CREATE TABLE auth_policy (
	tenant_id         TEXT    NOT NULL PRIMARY KEY,
	mfa_required_role TEXT    NOT NULL,
	updated_at        INTEGER NOT NULL
) STRICT;
