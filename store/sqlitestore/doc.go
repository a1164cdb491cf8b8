/*
Package sqlitestore is bulkhead's embedded storage backend: an implementation
of store.Store on SQLite (modernc.org/sqlite, pure Go), with no server to run.

# Files

Open takes the path of the main database file. It holds the control plane
(plans, tenants, platform idempotency keys) and the tables of every pooled
tenant, which share them and are kept apart by a tenant_id column. A silo
tenant gets its own file, tenants/<tenant-id>.db beside the main file, with
the same tenant tables, tenant_id column included, so that one set of
statements serves both kinds. Every statement on a tenant table is bound to
the transaction's tenant (tenant_id = ?), in silo files too. No SQL text is
ever built from input: filter values, field paths and keys are all bind
parameters.

The files are readable and writable by the process's user only, whatever
the umask: Open and CreateTenant create each database file with mode 0600
before SQLite opens it, and SQLite gives a database's -wal and -shm files
the database file's mode. The tenants directory, and the main file's
directory if Open creates it, get mode 0700; an existing main directory is
left alone, since it may be shared. Open takes the group and other
permissions off existing database files, their -wal and -shm files and the
tenants directory (left by older versions, or made by hand), and logs each
change at level info.

All files run in WAL mode with synchronous=FULL and foreign keys on. Their
schema is embedded and applied by Open (and by the first open of a silo file)
in one transaction, versioned with PRAGMA user_version.

# Writes and group commit

Each file has exactly one write connection, owned by one goroutine that
serves a queue of write transactions (InTenant, InPlatform, tenant
provisioning). It takes everything waiting (up to Options.MaxBatch), opens
one transaction, runs each request's function inside its own savepoint —
rolled back alone if the function fails or panics — and commits once. No
request learns its result before that COMMIT (and its fsync) returns, so a
nil error always means a durable write, while the cost of the sync is shared
by every request in the batch.

Reads (ReadTenant, ReadPlatform) run on a pool of read-only connections, one
snapshot per transaction, and never wait for the writer.

Because a file has one writer, a write transaction must not start another
write on the same file from inside its function (InTenant inside InTenant of
a pooled tenant, or InPlatform inside either): the inner one would wait
forever for the writer running the outer one.

# Faults

Errors of the database or its files come back wrapped in the store's
sentinels, with SQLite's error (its extended result code in the text) kept
in the chain: SQLITE_FULL becomes store.ErrStorageFull; SQLITE_BUSY (locked
past Options.BusyTimeout), SQLITE_LOCKED, SQLITE_NOMEM, SQLITE_READONLY,
SQLITE_IOERR, SQLITE_CANTOPEN and SQLITE_PROTOCOL become
store.ErrUnavailable. From the file system, ENOSPC and EDQUOT become
store.ErrStorageFull too, EROFS and EIO store.ErrUnavailable. SQLITE_CORRUPT
and SQLITE_NOTADB are left as they are: a damaged file needs an operator,
not a retry. A group commit that fails as a whole (its BEGIN, its COMMIT, or
a fault that rolls back its transaction) returns its error to every request
of the batch, so each of them learns the fault.

# Filters

A filtered listing compiles its filter.Expr, with package filter's
compiler, to a parameterized WHERE clause. A data key is compared through
package filter's typed sort key (rank, number, text), computed in SQL with
json_type and json_extract; orders by a data key sort by the same key, then
id. The key's JSON path is inlined as a literal, and so are the tenant and
the collection, once validated, so that a declared index's expressions and
partial-index predicate match the query's; every value of a filter is a
bind parameter. Without an index, a listing scans the collection's records;
orders by created_at, updated_at and id use the built-in indexes.

# Indexes

A declared index (store.Index) is a row of collection_indexes and, once
BuildIndexes has run, a partial index on records in the tenant's file,
named after a hash of tenant, collection and declaration, restricted to the
tenant's collection by its predicate and keyed by the fields' sort key
expressions: see indexes.go. DDL is transactional in SQLite: a removed
index is dropped in the transaction that removes it; BuildIndexes builds
new ones with plain CREATE INDEX in one write on the file's writer, which
the file's other writes wait for, and then gathers the planner's statistics
for them (ANALYZE, with analysis_limit), without which SQLite misjudges
them. A unique index's violation comes back as a *store.UniqueError naming
the declaration.

# Limits

One process owns a data directory: Open removes silo files that no tenant row
claims, which would race with another process provisioning a tenant. Silo
tenant ids must be UUIDs in canonical lower-case form, since they name files.
*/
package sqlitestore
