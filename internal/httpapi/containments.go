package httpapi

import (
	"net/http"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
)

func (s *Server) listContainments(w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := rq.scope.ListContainments(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) liftContainment(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.LiftContainment(r.Context(), store.ContainmentID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// reportDenied hands a tenant credential's 404 to automatic containment,
// after the answer: another tenant's slug and ids unknown in its own tenant
// are answered alike, and audited in the credential's own tenant only.
func (s *Server) reportDenied(rw *responseWriter, r *http.Request, rq *request) {
	if rw.status != http.StatusNotFound || rq.principal == nil || rq.principal.IsOperator() {
		return
	}
	ctx := core.WithClient(r.Context(), clientAddr(r, s.proxies))
	s.core.Denied(ctx, rq.principal, r.URL.Path, rq.id)
}
