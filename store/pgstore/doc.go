/*
Package pgstore is bulkhead's PostgreSQL storage backend: an implementation
of store.Store whose tenant isolation holds in the database itself. Even a
raw query by the application's own role cannot read or write another
tenant's rows.

# Roles

Three roles are involved, and the store refuses to run if they are mixed
up:

  - The owner role owns every schema, table and silo role the store uses.
    It runs Migrate, and it provisions silo tenants (Options.ProvisionURL).
    It needs CREATEROLE and the right to create schemas in the database.
    Its credentials are administrative: keep them off the request path.
  - The application role is what Open connects as and what serves every
    request. It is no superuser, has no BYPASSRLS, CREATEROLE or INHERIT,
    owns nothing and holds exactly the privileges Migrate grants: USAGE on
    schema bulkhead and SELECT, INSERT, UPDATE or DELETE, as each statement
    needs, on its tables. Open checks all of this (see Open).
  - Each silo tenant has a NOLOGIN role, bulkhead_t_<uuid hex>, with exactly
    those privileges on its own schema t_<uuid hex> and nothing else. The
    application role is a member of it but, being NOINHERIT, holds none of
    its privileges until a transaction switches to it.

One-time setup, as a superuser (names and password are examples; the owner
needs CREATE on the database, here by owning it):

	CREATE ROLE bulkhead_owner LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS CREATEROLE NOCREATEDB;
	CREATE ROLE bulkhead_app LOGIN PASSWORD '…' NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT;
	CREATE DATABASE bulkhead OWNER bulkhead_owner;
	REVOKE ALL ON DATABASE bulkhead FROM PUBLIC;
	GRANT CONNECT ON DATABASE bulkhead TO bulkhead_app;
	\c bulkhead
	REVOKE CREATE ON SCHEMA public FROM PUBLIC;

Then, as the owner, and again after every upgrade:

	pgstore.Migrate(ctx, "postgres://bulkhead_owner:…@host/bulkhead", "bulkhead_app")

and once more as a superuser, after the first Migrate, the statements of
LeakproofSQL (see Indexes): they let declared indexes serve filters.

and serve with

	pgstore.Open(ctx, "postgres://bulkhead_app:…@host/bulkhead",
		&pgstore.Options{ProvisionURL: "postgres://bulkhead_owner:…@host/bulkhead"})

Roles are cluster-wide: silo roles are named after their tenant's UUID, so
several bulkhead databases may share a server as long as their owner and
application roles differ.

# Schema

Schema bulkhead holds the control plane (plans, tenants, platform
idempotency keys and the platform's audit chain, in platform_audit_* tables)
and the pooled tenants' tables. Every tenant table has a tenant_id uuid
column that leads its primary, unique and foreign keys, and row-level
security enabled and forced with the policy

	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (the same)

A silo tenant's schema t_<uuid hex> holds the same tables, tenant_id and
policy included, so one set of statements serves both kinds of tenant; only
the search_path and the role differ. Control-plane tables hold no tenant
data and have no row-level security. There are no views. The only
functions are the key functions of schema bulkhead_keys (rank, num and
txt), which compute a data key's sort key from a record's object and the
key's name, read nothing else, and are open to every role (see Filters).

Migrate applies the embedded, versioned migrations with goose (its version
table is bulkhead.goose_db_version). Open refuses a database whose schema
is at another version than the build's.

# Transactions

InTenant and ReadTenant run one transaction on the application role's pool.
Its first batch, sent with the first statement of fn so that it costs no
round trip of its own, holds BEGIN, a check that the tenant exists (locking
its row against deletion, in read-write transactions) and

	set_config('bulkhead.tenant_id', <tenant>, true)
	set_config('search_path', 'bulkhead' or 't_<hex>', true)
	set_config('role', 'none' or 'bulkhead_t_<hex>', true)
	set_config('statement_timeout', <Options.StatementTimeout>, true)

All of these are local to the transaction, never session-level, so nothing
survives into the next transaction on a pooled connection. (Each connection
does get the pooled schema as its session search_path, for pgx to prepare
statements before a batch's BEGIN; PostgreSQL analyzes a prepared statement
again when it runs under another search_path, so a connection that moves
between silo tenants re-plans its statements.) Statements also
bind tenant_id = $1 themselves: row-level security is what guarantees
isolation; the predicate is defence in depth and lets the planner use the
indexes. Read-write transactions are READ COMMITTED; read-only ones
REPEATABLE READ READ ONLY, one snapshot each, and their write methods
return store.ErrReadOnly without touching the database.

A tenant's concurrent writers serialize on two rows: its audit head (a row
of audit_heads, which AuditHead locks in read-write transactions, so that
appenders never take the same seq) and its usage row. Each holds its lock
for as few round trips as it can. Writes do not update the usage row
themselves: the transaction adds up what they change and adds it to the
row in the batch that commits, so the row is locked for that round trip
only. Tx.Usage in a read-write transaction locks the audit head, and reads
the usage row after the lock in the same batch; every transaction that
changes the usage holds the head when it commits (it takes it in the commit
batch if it has not yet), so a quota checked against Usage holds against
concurrent writers. Once a transaction holds the head it knows it, so
AuditHead needs no round trip, and AppendAudit of the next seq, which then
cannot conflict, is sent with the transaction's next statement or with
COMMIT. A write like the API's record creation (CreateRecord, Usage,
AuditHead, AppendAudit) thus holds the head from its second round trip to
the end of its third, the last, and the usage row for that last one
(BenchmarkTenantWrites).

LookupAPIKey, authentication's read, sends its whole transaction in one
batch: BEGIN (REPEATABLE READ READ ONLY), the tenant's row and plan (as the
application role), the settings above, the key and COMMIT. It costs one
round trip where ReadTenant and two ReadPlatform calls cost six.

Silo tenants are created and deleted in one transaction of the owner role
(Options.ProvisionURL), DDL included, so that a failure or a crash leaves
nothing behind; see CreateTenant.

# Filters

Filters compile, with package filter's compiler, to parameterized SQL over
the jsonb copy of each record (column doc; column data keeps the record's
text byte for byte), with the same results as sqlitestore. A data key is
compared through its typed sort key, package filter's (rank, number, text),
computed by the key functions bulkhead_keys.rank, num and txt: types are
strict (jsonb_typeof), numbers compare as float8
(IEEE doubles, as in SQLite, not numeric), strings bytewise (COLLATE "C"),
~ with strpos and ^= as a range on the text with starts_with. Orders by a
data key sort by the same key, then id, and page with a row comparison on
it. The key's name is inlined as a literal and so are the tenant and the
collection, once validated: that is what lets the planner match a declared
index's expressions and prove its predicate (see Indexes). Every value of a
filter is a bind parameter.

# Indexes

A declared index (store.Index) is a row of collection_indexes, under
row-level security like every tenant table, and, once BuildIndexes has run,
a partial index on the tenant's records table (the pooled one, or the silo
schema's), named bx_<hash> after tenant, collection and declaration,
restricted to the tenant's collection by its predicate and keyed by the
fields' sort key expressions, then id: see indexes.go. BuildIndexes runs
CREATE INDEX CONCURRENTLY and DROP INDEX CONCURRENTLY on the owner role's
pool (Options.ProvisionURL), since only a table's owner may index it; the
application role gets no DDL privilege, and no SECURITY DEFINER function
but audit_cut, which removes audit entries below a stored cut (see
tenantschema/00013_retention.sql), and which Open accepts only with the
body this build gave it.
Builds take turns across processes, and never block reads or writes.

Row-level security stands between a query's conditions and an index:
PostgreSQL evaluates a condition before the policy, and so as an index
condition, only if every function it applies to a column is LEAKPROOF, and
no jsonb function is. The key functions are (they never fail and have no
side effect), but only a superuser may declare it, which LeakproofSQL does.
Until then an index serves orders, but neither filters nor the seek to a
page's cursor; Open logs a warning. Results are the same either way. A
removed declaration stays, hidden and in state dropping, until BuildIndexes
has dropped its index: meanwhile a removed unique index goes on refusing
duplicates, and the refusal names it. A unique index's violation comes back
as a *store.UniqueError naming the declaration, without aborting the
transaction: an update of a collection with unique indexes, and the retry of
an insert that one refused, run in a savepoint.

A string longer than about 2.7 kB in an indexed field cannot be indexed
(a B-tree entry is at most a third of a page): the index fails to build, or
a write of such a record to a collection whose index is built fails.

Two differences from sqlitestore are known, both outside what the API
layer (internal/core) ever stores: jsonb cannot hold U+0000, so filters see
it as U+FFFD (the record itself comes back byte for byte); and of duplicate
keys in an object, filters here see the last, SQLite the first.

# Faults

Errors of the database come back wrapped in the store's sentinels, with
pgx's error kept in the chain. disk_full (53100) becomes
store.ErrStorageFull. store.ErrUnavailable covers connection exceptions
(class 08, but for 08P01 protocol_violation, which is a client's bug),
admin_shutdown, crash_shutdown and cannot_connect_now (57P01-57P03: a
restart, or pg_terminate_backend), out_of_memory (53200),
too_many_connections (53300), read_only_sql_transaction (25006: a standby),
serialization_failure (40001), deadlock_detected (40P01) and io_error
(58030), and errors without a SQLSTATE that mean the server cannot be
reached or the connection broke: a failed connect (but not one the server
refuses for a wrong password or an unknown database: those are configuration
errors), a refused or reset connection, an EOF, a connection pgx has closed,
and a connect that ran out of the URL's connect_timeout. Every path to the
database goes through this mapping: acquiring a connection, the first batch
with BEGIN, each statement, COMMIT and Ping. A context that ends is not the
database's fault: its error is returned as it is, and so is a statement
timeout (57014). A connection lost during COMMIT leaves the outcome unknown.
pgxpool discards broken connections, so once the server answers again the
same Store serves without being reopened; a connection that broke while idle
may fail one more operation with ErrUnavailable.

# Behind pgbouncer

Transaction pooling works: every setting is transaction-local. pgbouncer
before 1.21 cannot carry pgx's prepared statements; add
default_query_exec_mode=exec to both URLs.

# Unstable

The schema may still change in ways Migrate handles; the package API is
unstable while store.Store is.
*/
package pgstore
