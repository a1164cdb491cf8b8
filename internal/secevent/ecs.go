package secevent

import (
	"encoding/json"
	"strings"
	"time"
)

// ECSVersion is the Elastic Common Schema version the encoding follows.
const ECSVersion = "8.11.0"

// ServiceName is the service.name of every event.
const ServiceName = "bulkhead"

// ecsEvent is the JSON document of one event, in ECS's nested form (the
// dotted names of docs/security-events.md are paths into it).
type ecsEvent struct {
	Timestamp    string       `json:"@timestamp"`
	Event        ecsEventBody `json:"event"`
	Organization *ecsOrg      `json:"organization,omitempty"`
	User         *ecsUser     `json:"user,omitempty"`
	Source       *ecsSource   `json:"source,omitempty"`
	HTTP         *ecsHTTP     `json:"http,omitempty"`
	Bulkhead     *ecsBulkhead `json:"bulkhead,omitempty"`
	ECS          ecsVersion   `json:"ecs"`
	Service      ecsService   `json:"service"`
}

type ecsEventBody struct {
	Kind     string   `json:"kind"`
	Category []string `json:"category"`
	Type     []string `json:"type"`
	Action   string   `json:"action"`
	Outcome  string   `json:"outcome"`
	Severity int      `json:"severity"`
	Reason   string   `json:"reason,omitempty"`
}

type ecsOrg struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
}

type ecsUser struct {
	ID     string     `json:"id,omitempty"`
	Target *ecsTarget `json:"target,omitempty"`
}

type ecsTarget struct {
	ID string `json:"id"`
}

type ecsSource struct {
	IP string `json:"ip"`
}

type ecsHTTP struct {
	Request ecsRequest `json:"request"`
}

type ecsRequest struct {
	ID string `json:"id"`
}

type ecsBulkhead struct {
	Target string `json:"target"`
}

type ecsVersion struct {
	Version string `json:"version"`
}

type ecsService struct {
	Name string `json:"name"`
}

// Encode returns ev as one line of JSON (with its newline) in Elastic
// Common Schema field names. docs/security-events.md documents the mapping.
func Encode(ev Event) []byte {
	doc := ecsEvent{
		Timestamp: ev.Time.UTC().Format(time.RFC3339Nano),
		Event: ecsEventBody{
			Kind:     kindOf(ev),
			Category: []string{or(ev.Category, "configuration")},
			Type:     []string{typeOf(ev)},
			Action:   ev.Action,
			Outcome:  or(ev.Outcome, "unknown"),
			Severity: min(max(ev.Severity, 1), 4),
			Reason:   ev.Reason,
		},
		ECS:     ecsVersion{Version: ECSVersion},
		Service: ecsService{Name: ServiceName},
	}
	if ev.Tenant != "" || ev.TenantSlug != "" {
		doc.Organization = &ecsOrg{ID: string(ev.Tenant), Name: string(ev.TenantSlug)}
	}
	if ev.Actor != "" || isPrincipal(ev.Target) {
		doc.User = &ecsUser{ID: ev.Actor}
		if isPrincipal(ev.Target) {
			doc.User.Target = &ecsTarget{ID: ev.Target}
		}
	}
	if ev.Target != "" && !isPrincipal(ev.Target) {
		doc.Bulkhead = &ecsBulkhead{Target: ev.Target}
	}
	if ev.ClientAddr != "" {
		doc.Source = &ecsSource{IP: ev.ClientAddr}
	}
	if ev.RequestID != "" {
		doc.HTTP = &ecsHTTP{Request: ecsRequest{ID: ev.RequestID}}
	}
	b, err := json.Marshal(doc)
	if err != nil { // cannot happen: every field is a string or an int
		panic(err)
	}
	return append(b, '\n')
}

// isPrincipal reports whether target names a credential holder, which ECS
// puts in user.target.id; anything else goes to bulkhead.target.
func isPrincipal(target string) bool {
	return strings.HasPrefix(target, "user:") || strings.HasPrefix(target, "key:") || strings.HasPrefix(target, "api_key:")
}

// kindOf is "alert" for events of severity 3 and above (containment
// actions, breaker trips, a tenant suspended) and "event" for the rest.
func kindOf(ev Event) string {
	if ev.Severity >= 3 {
		return "alert"
	}
	return "event"
}

// typeOf derives the ECS event.type from the outcome and the action's verb.
func typeOf(ev Event) string {
	if ev.Outcome == "failure" && (ev.Category == "intrusion_detection" || strings.Contains(ev.Action, "denied")) {
		return "denied"
	}
	verb := ev.Action
	if i := strings.LastIndexAny(verb, ".-_"); i >= 0 {
		verb = verb[i+1:]
	}
	switch verb {
	case "create", "created", "issued":
		return "creation"
	case "delete", "deleted", "revoke", "revoked":
		return "deletion"
	case "change", "changed", "update", "suspend", "suspended", "resume", "resumed", "lift", "lifted", "locked":
		return "change"
	case "denied":
		return "denied"
	}
	return "info"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
