package tenant

// Role is a tenant member's level of access. Roles are ordered:
// Owner ⊃ Admin ⊃ Member ⊃ Viewer.
type Role string

const (
	Viewer Role = "viewer"
	Member Role = "member"
	Admin  Role = "admin"
	Owner  Role = "owner"
)

// rank orders roles; unknown roles rank below Viewer.
func (r Role) rank() int {
	switch r {
	case Viewer:
		return 1
	case Member:
		return 2
	case Admin:
		return 3
	case Owner:
		return 4
	}
	return 0
}

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool { return r.rank() > 0 }

// AtLeast reports whether r includes every permission of min. An unknown role
// includes nothing.
func (r Role) AtLeast(min Role) bool { return r.rank() > 0 && r.rank() >= min.rank() }

// ActorKind says what kind of credential authenticated a request.
type ActorKind string

const (
	// ActorOperator is the platform operator token. It manages tenants but
	// holds no role inside any tenant.
	ActorOperator ActorKind = "operator"
	// ActorUser is a tenant user holding an access token.
	ActorUser ActorKind = "user"
	// ActorAPIKey is a tenant API key.
	ActorAPIKey ActorKind = "key"
)

// Principal is the authenticated identity of a request. Its tenant comes from
// the credential alone, never from a header, query parameter or body.
type Principal struct {
	// Kind is the kind of credential.
	Kind ActorKind
	// Tenant is the tenant the credential belongs to; empty for the operator.
	Tenant ID
	// ActorID identifies the user or key within the tenant; empty for the operator.
	ActorID string
	// Role is the principal's role in Tenant; empty for the operator.
	Role Role
	// Scope, when not empty, restricts the principal to one purpose (such
	// as enrolling in TOTP) instead of everything Role allows.
	Scope string
}

// IsOperator reports whether p is the platform operator.
func (p *Principal) IsOperator() bool { return p.Kind == ActorOperator }

// Actor is the principal's name in audit entries and logs, such as
// "user:0192…" or "operator".
func (p *Principal) Actor() string {
	if p.Kind == ActorOperator {
		return string(ActorOperator)
	}
	return string(p.Kind) + ":" + p.ActorID
}
