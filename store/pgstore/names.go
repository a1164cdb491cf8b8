package pgstore

import (
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// schemaName is the schema of the control plane and of the pooled tenants'
// tables.
const schemaName = "bulkhead"

// Silo schemas and roles are named from the tenant's UUID without dashes:
// t_<32 hex digits> and bulkhead_t_<32 hex digits>. Roles are cluster-wide,
// so two databases on one server must not provision the same tenant id.
const (
	siloSchemaPrefix = "t_"
	siloRolePrefix   = "bulkhead_t_"
	// siloSchemaPattern matches silo schema names in SQL (a POSIX regular
	// expression for the ~ operator).
	siloSchemaPattern = `^t_[0-9a-f]{32}$`
)

// tenantID is a tenant id that passed parseTenantID.
type tenantID struct {
	id  tenant.ID
	arg pgtype.UUID // bind parameter for uuid columns
	hex string      // 32 lower-case hex digits, for silo names
}

// parseTenantID accepts only the canonical lower-case text form of a UUID,
// the form the store returns: another spelling of the same UUID would be
// another tenant.ID to callers (and to sqlitestore), so it is not found
// here either. Anything else, such as "../../etc/passwd", is
// store.ErrNotFound.
func parseTenantID(id tenant.ID) (tenantID, error) {
	u, ok := id.Bytes()
	if !ok {
		return tenantID{}, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	return tenantID{id: id, arg: pgtype.UUID{Bytes: u, Valid: true}, hex: strings.ReplaceAll(string(id), "-", "")}, nil
}

// siloSchema is the name of t's silo schema.
func (t tenantID) siloSchema() string { return siloSchemaPrefix + t.hex }

// siloRole is the name of t's silo role.
func (t tenantID) siloRole() string { return siloRolePrefix + t.hex }

// ident quotes an SQL identifier. Only names the store derives itself (the
// schema, silo names from a validated UUID, role names read from the
// catalog) are ever quoted into SQL text.
func ident(parts ...string) string { return pgx.Identifier(parts).Sanitize() }

// searchPath is the search_path of a transaction on tenant tables in
// schema: the schema itself, then pg_temp, which is otherwise searched
// first for tables and could shadow them.
func searchPath(schema string) string { return ident(schema) + ", pg_temp" }
