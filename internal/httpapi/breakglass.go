package httpapi

import (
	"net/http"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
)

// grantBreakGlass is POST /v1/tenants/{tenant}/break-glass: the operator
// gives itself read access to the tenant for a while.
func (s *Server) grantBreakGlass(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.BreakGlassParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	g, err := rq.control.GrantBreakGlass(r.Context(), rq.scope, p)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/tenants/"+string(rq.scope.Tenant().Slug)+"/break-glass/"+string(g.ID))
	return writeJSON(w, http.StatusCreated, g)
}

// listBreakGlass is GET /v1/tenants/{tenant}/break-glass, for the tenant's
// admins and the operator.
func (s *Server) listBreakGlass(w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := rq.scope.ListBreakGlass(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// endBreakGlass is DELETE /v1/tenants/{tenant}/break-glass/{id}: the
// operator ends a grant before it expires.
func (s *Server) endBreakGlass(w http.ResponseWriter, r *http.Request, rq *request) error {
	if _, err := rq.control.EndBreakGlass(r.Context(), rq.scope, store.BreakGlassID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
