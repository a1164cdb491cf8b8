package pgstore

import "strings"

// tableGrant is what the store's statements need of one table: the
// application role gets it on the pooled schema and the control plane, and
// each silo role on its own schema. Nothing else is granted: no TRUNCATE,
// REFERENCES or TRIGGER, no CREATE on any schema, no ownership.
type tableGrant struct {
	table string
	privs []string
	// purge says DELETE is needed only to purge a deleted pooled tenant's
	// rows; silo roles, whose schema is dropped instead, do not get it.
	purge bool
}

// tenantTableGrants lists every tenant table. UPDATE is needed for ON
// CONFLICT DO UPDATE and SELECT … FOR UPDATE as well as for UPDATE.
var tenantTableGrants = []tableGrant{
	{"users", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"api_keys", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"refresh_tokens", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"collections", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"collection_indexes", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"records", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"idempotency_keys", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"audit_log", []string{"SELECT", "INSERT"}, true},
	{"audit_checkpoints", []string{"SELECT", "INSERT"}, true},
	{"audit_heads", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"usage", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"containments", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"oidc_configs", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"identity_links", []string{"SELECT", "INSERT", "DELETE"}, false},
	{"user_mfa", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"recovery_codes", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"login_throttle", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"login_addresses", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"auth_policy", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"break_glass", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"jobs", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"audit_retention", []string{"SELECT", "INSERT", "UPDATE"}, true},
	{"audit_cuts", []string{"SELECT", "INSERT"}, true},
}

// tenantFunctions are the functions of a tenant schema the store calls;
// EXECUTE on them is granted like the tables' privileges, and taken from
// PUBLIC.
var tenantFunctions = []string{"audit_cut()"}

// functionSQL returns the statements that let role, and no one else but
// the owner, execute the tenant functions of schema.
func functionSQL(schema, role string) string {
	var b strings.Builder
	for _, f := range tenantFunctions {
		b.WriteString("REVOKE ALL ON FUNCTION " + ident(schema) + "." + f + " FROM PUBLIC;\n")
		b.WriteString("GRANT EXECUTE ON FUNCTION " + ident(schema) + "." + f + " TO " + ident(role) + ";\n")
	}
	return b.String()
}

// platformTableGrants lists the control plane's tables. UPDATE on tenants
// also lets a tenant transaction lock its tenant's row FOR KEY SHARE.
// SELECT on goose's version table lets Open check the schema version.
var platformTableGrants = []tableGrant{
	{"plans", []string{"SELECT", "INSERT", "UPDATE"}, false},
	{"tenants", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{"platform_idempotency", []string{"SELECT", "INSERT", "UPDATE"}, false},
	{"platform_audit_log", []string{"SELECT", "INSERT"}, false},
	{"platform_audit_checkpoints", []string{"SELECT", "INSERT"}, false},
	{"platform_audit_head", []string{"SELECT", "INSERT", "UPDATE"}, false},
	{"data_keys", []string{"SELECT", "INSERT", "UPDATE", "DELETE"}, false},
	{versionTable, []string{"SELECT"}, false},
}

// pooled returns the privileges the application role needs on g's table in
// the pooled schema.
func (g tableGrant) pooled() []string {
	if g.purge {
		return append(g.privs[:len(g.privs):len(g.privs)], "DELETE")
	}
	return g.privs
}

// tenantTables are the names of the tenant tables.
var tenantTables = func() []string {
	var names []string
	for _, g := range tenantTableGrants {
		names = append(names, g.table)
	}
	return names
}()

// grantSQL returns the statements that give role exactly privs on table
// schema.table, taking away anything else it held there.
func grantSQL(schema, table, role string, privs []string) string {
	return "REVOKE ALL ON TABLE " + ident(schema, table) + " FROM " + ident(role) + ";\n" +
		"GRANT " + strings.Join(privs, ", ") + " ON TABLE " + ident(schema, table) + " TO " + ident(role) + ";\n"
}

// memberSQL returns the statement that makes member a member of role that
// can switch to it (SET ROLE) but does not inherit its privileges. Before
// PostgreSQL 16 membership has no such options: inheritance is the
// member's own attribute, which is why the application role must be
// NOINHERIT (Open checks it).
func memberSQL(role, member string, serverVersion int) string {
	s := "GRANT " + ident(role) + " TO " + member
	if serverVersion >= 160000 {
		s += " WITH INHERIT FALSE, SET TRUE"
	}
	return s + ";\n"
}

// siloRoleSQL returns the statements that give silo tenant tid's role
// exactly what it needs on its schema, and let appRole and the current
// (owner) role switch to it.
func siloRoleSQL(schema, role, appRole string, serverVersion int) string {
	var b strings.Builder
	b.WriteString("REVOKE ALL ON SCHEMA " + ident(schema) + " FROM PUBLIC;\n")
	b.WriteString("GRANT USAGE ON SCHEMA " + ident(schema) + " TO " + ident(role) + ";\n")
	for _, g := range tenantTableGrants {
		b.WriteString(grantSQL(schema, g.table, role, g.privs))
	}
	b.WriteString(functionSQL(schema, role))
	b.WriteString(memberSQL(role, ident(appRole), serverVersion))
	b.WriteString(memberSQL(role, "CURRENT_USER", serverVersion))
	return b.String()
}
