package observe

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// SlugTimeout bounds the lookup of a tenant's slug that a log line waits
// for, the first time a node logs about the tenant.
const SlugTimeout = 250 * time.Millisecond

// maxSlugs bounds the slugs a TenantSlugs remembers; past it, it starts
// over.
const maxSlugs = 100_000

// TenantSlugs is a slog.Handler that writes "tenant_slug" beside each
// "tenant" attribute (a tenant ID) of a line that has none, so that people
// read the tenant's slug and machines join on its ID. Slugs come from a
// cache, filled by the function SetLookup installs (the store), each
// lookup bounded by SlugTimeout; a line whose tenant cannot be looked up
// goes out without the slug. It is safe for concurrent use.
type TenantSlugs struct {
	next  slog.Handler
	state *slugState
}

type slugState struct {
	lookup atomic.Pointer[func(ctx context.Context, id string) (string, error)]
	mu     sync.Mutex
	slugs  map[string]string
	busy   map[string]bool // lookups under way: a line logged by one does not look up again
}

// WithTenantSlugs returns a handler that adds tenant slugs to next's lines.
func WithTenantSlugs(next slog.Handler) *TenantSlugs {
	return &TenantSlugs{next: next, state: &slugState{slugs: map[string]string{}, busy: map[string]bool{}}}
}

// SetLookup installs how a tenant's slug is found from its ID.
func (h *TenantSlugs) SetLookup(fn func(ctx context.Context, id string) (string, error)) {
	h.state.lookup.Store(&fn)
}

// Remember records a tenant's slug, as a node that just read it knows it.
func (h *TenantSlugs) Remember(id, slug string) {
	s := h.state
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.slugs) >= maxSlugs {
		clear(s.slugs)
	}
	s.slugs[id] = slug
}

func (s *slugState) slug(id string) (string, bool) {
	s.mu.Lock()
	slug, ok := s.slugs[id]
	if ok || s.busy[id] {
		s.mu.Unlock()
		return slug, ok
	}
	fn := s.lookup.Load()
	if fn == nil {
		s.mu.Unlock()
		return "", false
	}
	s.busy[id] = true
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), SlugTimeout)
	slug, err := (*fn)(ctx, id)
	cancel()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.busy, id)
	if err != nil || slug == "" {
		return "", false
	}
	if len(s.slugs) >= maxSlugs {
		clear(s.slugs)
	}
	s.slugs[id] = slug
	return slug, true
}

// Enabled implements slog.Handler.
func (h *TenantSlugs) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *TenantSlugs) Handle(ctx context.Context, r slog.Record) error {
	var id string
	hasSlug := false
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "tenant":
			id = a.Value.Resolve().String()
		case "tenant_slug":
			hasSlug = true
		}
		return true
	})
	if id != "" && !hasSlug {
		if slug, ok := h.state.slug(id); ok {
			r = r.Clone()
			r.AddAttrs(slog.String("tenant_slug", slug))
		}
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *TenantSlugs) WithAttrs(attrs []slog.Attr) slog.Handler {
	var id string
	hasSlug := false
	for _, a := range attrs {
		switch a.Key {
		case "tenant":
			id = a.Value.Resolve().String()
		case "tenant_slug":
			hasSlug = true
		}
	}
	if id != "" && !hasSlug {
		if slug, ok := h.state.slug(id); ok {
			attrs = append(attrs[:len(attrs):len(attrs)], slog.String("tenant_slug", slug))
		}
	}
	return &TenantSlugs{next: h.next.WithAttrs(attrs), state: h.state}
}

// WithGroup implements slog.Handler.
func (h *TenantSlugs) WithGroup(name string) slog.Handler {
	return &TenantSlugs{next: h.next.WithGroup(name), state: h.state}
}
