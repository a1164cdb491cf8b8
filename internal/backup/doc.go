// Package backup takes and verifies platform backups: an online, consistent
// copy of the whole store (SQLite files through SQLite's online backup API,
// PostgreSQL through pg_dump of one exported snapshot) with a signed
// manifest that records each file's SHA-256 and every tenant's audit head
// and record count as the copy holds them. Verify restores a backup into a
// scratch location, opens it with the store and checks all of it against
// the manifest. Backups are staged locally and kept in a directory or a
// bucket (gocloud.dev/blob).
package backup
