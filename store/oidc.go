package store

import (
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// OIDCConfig is a tenant's OpenID Connect federation: the one identity
// provider its users may log in with.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, exactly as its ID tokens state
	// it in "iss".
	Issuer   string
	ClientID string
	// SealedSecret is the client secret sealed under the tenant's data key;
	// the store never sees it in clear.
	SealedSecret []byte
	// DefaultRole is the role of users created on their first login.
	DefaultRole tenant.Role
	// JIT says whether a first login creates the user.
	JIT       bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// IdentityLink ties an identity at a provider (issuer and subject) to a
// user of the tenant.
type IdentityLink struct {
	Issuer    string
	Subject   string
	UserID    UserID
	CreatedAt time.Time
}
