// Package access decides what a principal may do: the permissions of each
// role and of the platform operator. It is the one place such rules live.
package access

import "github.com/bulkheadhq/bulkhead/tenant"

// operatorOnly are the permissions no tenant role holds.
var operatorOnly = map[Permission]bool{ManageTenants: true, ManagePlans: true, ReadMetrics: true, ManageBreakGlass: true,
	ManageAuditRetention: true}

// Permission is an action on a tenant's resources.
type Permission string

const (
	CreateUser      Permission = "users.create"
	ListUsers       Permission = "users.list"
	UpdateUser      Permission = "users.update"
	DeleteUser      Permission = "users.delete"
	CreateAPIKey    Permission = "api_keys.create"
	ListAPIKeys     Permission = "api_keys.list"
	RevokeAPIKey    Permission = "api_keys.revoke"
	PutCollection   Permission = "collections.put"
	ListCollections Permission = "collections.list"
	CreateRecord    Permission = "records.create"
	ReadRecord      Permission = "records.read"
	UpdateRecord    Permission = "records.update"
	DeleteRecord    Permission = "records.delete"
	ReadAudit       Permission = "audit.read"
	VerifyAudit     Permission = "audit.verify"
	ReadUsage       Permission = "usage.read"
	ManageOIDC      Permission = "auth.oidc.manage"
	ReadKeys        Permission = "keys.read"
	ManageTenants   Permission = "tenants.manage"
	ReadMetrics     Permission = "metrics.read"
	ManagePlans     Permission = "plans.manage"
	// ManageAuthPolicy is setting the tenant's authentication policy.
	ManageAuthPolicy Permission = "auth_policy.manage"
	// ReadAuthPolicy is reading it.
	ReadAuthPolicy Permission = "auth_policy.read"
	// ResetUserMFA is removing another user's TOTP enrolment.
	ResetUserMFA Permission = "users.reset_mfa"
	// LockUsers is locking a user out of logins, and lifting a lock-out.
	LockUsers Permission = "users.lock"
	// ManageBreakGlass is granting and ending the operator's break-glass
	// access to a tenant; ListBreakGlass is seeing those grants.
	ManageBreakGlass Permission = "break_glass.manage"
	ListBreakGlass   Permission = "break_glass.list"
	// ExportData is exporting the tenant's data as a signed, encrypted
	// archive and downloading it; RestoreData is replacing the tenant's
	// collections and records with an archive's.
	ExportData  Permission = "data.export"
	RestoreData Permission = "data.restore"
	// ManageAuditRetention is setting how long a tenant keeps its audit
	// entries: the operator's alone, so that no tenant admin can shorten
	// the record of what admins did. ReadAuditRetention is seeing it.
	ManageAuditRetention Permission = "audit.retention.manage"
	ReadAuditRetention   Permission = "audit.retention.read"
	// ReadUsageHistory is reading the tenant's usage per hour: counts and
	// sizes for billing, which the operator may read too.
	ReadUsageHistory Permission = "usage.history.read"
	// ReadJobs is listing and reading the tenant's background jobs;
	// CancelJobs is cancelling one.
	ReadJobs   Permission = "jobs.read"
	CancelJobs Permission = "jobs.cancel"
)

// minRole is the least role holding each tenant permission.
var minRole = map[Permission]tenant.Role{
	CreateUser:      tenant.Admin,
	ListUsers:       tenant.Admin,
	UpdateUser:      tenant.Admin,
	DeleteUser:      tenant.Admin,
	CreateAPIKey:    tenant.Admin,
	ListAPIKeys:     tenant.Admin,
	RevokeAPIKey:    tenant.Admin,
	PutCollection:   tenant.Admin,
	ListCollections: tenant.Member,
	CreateRecord:    tenant.Member,
	ReadRecord:      tenant.Viewer,
	UpdateRecord:    tenant.Member,
	DeleteRecord:    tenant.Member,
	ReadAudit:       tenant.Admin,
	VerifyAudit:     tenant.Admin,
	ReadUsage:       tenant.Admin,
	ManageOIDC:      tenant.Admin,

	ManageAuthPolicy: tenant.Admin,
	ReadAuthPolicy:   tenant.Admin,
	ResetUserMFA:     tenant.Admin,
	LockUsers:        tenant.Admin,
	ListBreakGlass:   tenant.Admin,
	ReadKeys:         tenant.Admin,
	ExportData:       tenant.Admin,
	RestoreData:      tenant.Admin,

	ReadAuditRetention: tenant.Admin,
	ReadUsageHistory:   tenant.Admin,
	ReadJobs:           tenant.Admin,
	CancelJobs:         tenant.Admin,
}

// operator lists what the platform operator may do. It manages tenants and
// can bootstrap a tenant's first users and keys, but holds no permission on
// a tenant's data: records, collections and audit stay closed to it.
var operator = map[Permission]bool{
	ManageTenants: true,
	ManagePlans:   true,
	ReadMetrics:   true,
	CreateUser:    true,
	CreateAPIKey:  true,
	VerifyAudit:   true, // the result reveals no tenant data
	LockUsers:     true, // containment: a suspected account is locked out

	ManageBreakGlass: true,
	ListBreakGlass:   true,
	ReadKeys:         true, // key versions and states, never key material

	ManageAuditRetention: true,
	ReadAuditRetention:   true,
	ReadUsageHistory:     true, // hourly counts and sizes, for billing: no tenant data
}

// breakGlassReadable are the permissions the operator holds on a tenant
// while the tenant has an active break-glass grant: reading, never
// writing.
var breakGlassReadable = map[Permission]bool{
	ListCollections: true,
	ReadRecord:      true,
	ListUsers:       true,
	ReadAudit:       true,
	VerifyAudit:     true,
	ReadUsage:       true,
}

// BreakGlassReadable reports whether an active break-glass grant gives the
// operator perm on the tenant. Whether a grant is active is the caller's
// to decide.
func BreakGlassReadable(perm Permission) bool { return breakGlassReadable[perm] }

// Allowed reports whether p holds perm. A tenant principal's tenant must
// already have been matched against the resource's tenant by the caller.
func Allowed(p *tenant.Principal, perm Permission) bool {
	if p.IsOperator() {
		return operator[perm]
	}
	min, ok := minRole[perm]
	return ok && p.Role.AtLeast(min)
}

// CanGrant reports whether p may create a credential or user holding role:
// nobody grants more than they hold, only an owner (or the operator, who
// bootstraps tenants) creates owners.
func CanGrant(p *tenant.Principal, role tenant.Role) bool {
	if !role.Valid() {
		return false
	}
	if p.IsOperator() {
		return true
	}
	return p.Role.AtLeast(role)
}

// Refusal says why p does not hold perm, in words safe to show to p: which
// rule refused it, and nothing about other tenants. It is "" when Allowed.
func Refusal(p *tenant.Principal, perm Permission) string {
	switch {
	case Allowed(p, perm):
		return ""
	case p.IsOperator():
		return "the operator token does not reach a tenant's data; use a credential of the tenant"
	case operatorOnly[perm]:
		return "only the platform operator may do this"
	}
	return "this needs the " + string(minRole[perm]) + " role or above; the credential's role is " + string(p.Role)
}

// GrantRefusal says why p may not grant role, as Refusal does; "" when
// CanGrant.
func GrantRefusal(p *tenant.Principal, role tenant.Role) string {
	if CanGrant(p, role) {
		return ""
	}
	if !role.Valid() {
		return "no such role"
	}
	return "a credential cannot grant, change or remove a role above its own (" + string(p.Role) + ")"
}
