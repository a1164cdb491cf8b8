package access

import "github.com/bulkheadhq/bulkhead/tenant"

// Permissions on automatic containment's actions against a tenant's
// credentials: tenant admins and the operator list and lift them.
const (
	ListContainments Permission = "containments.list"
	LiftContainment  Permission = "containments.lift"
)

func init() {
	for _, perm := range []Permission{ListContainments, LiftContainment} {
		minRole[perm] = tenant.Admin
		operator[perm] = true
	}
}
