// Package secevent carries security events — failed logins, lock-outs,
// changes of credentials and roles, denied cross-tenant attempts,
// containment actions — from where they happen to a SIEM. Events are
// published without blocking the request that caused them.
package secevent

import (
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Event is one security event. Its fields map onto Elastic Common Schema
// fields when it is written out.
type Event struct {
	// Time is when it happened (ECS @timestamp).
	Time time.Time
	// Action names what happened, such as "login-failed" (event.action).
	Action string
	// Category is the ECS event.category: "authentication", "iam",
	// "configuration", "intrusion_detection" or "database".
	Category string
	// Outcome is "success", "failure" or "unknown" (event.outcome).
	Outcome string
	// Severity ranks it from 1 (informational) to 4 (critical)
	// (event.severity).
	Severity int
	// Tenant and TenantSlug name the tenant it concerns, if any
	// (organization.id, organization.name).
	Tenant     tenant.ID
	TenantSlug tenant.Slug
	// Actor is the principal that acted, such as "user:…", "api_key:…" or
	// "operator" (user.id).
	Actor string
	// Target names what was acted on, such as "user:…" or "api_key:…"
	// (user.target.id, or the resource).
	Target string
	// ClientAddr is the client's address, if known (source.ip).
	ClientAddr string
	// RequestID ties it to the request's log line (http.request.id).
	RequestID string
	// Reason says why, in words (event.reason).
	Reason string
}

// Publisher takes events. Publish must not block: a publisher whose queue
// is full drops the event and counts the drop.
type Publisher interface {
	Publish(Event)
}

// Discard drops every event.
type Discard struct{}

// Publish implements Publisher.
func (Discard) Publish(Event) {}
