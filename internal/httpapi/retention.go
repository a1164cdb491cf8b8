package httpapi

import (
	"net/http"

	"github.com/bulkheadhq/bulkhead/internal/core"
)

// getAuditRetention is GET /v1/tenants/{tenant}/audit/retention, for the
// tenant's admins and the operator.
func (s *Server) getAuditRetention(w http.ResponseWriter, r *http.Request, rq *request) error {
	ret, err := rq.scope.GetAuditRetention(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ret)
}

// putAuditRetention is PUT /v1/tenants/{tenant}/audit/retention: the
// operator sets how long the tenant keeps its audit entries.
func (s *Server) putAuditRetention(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.PutAuditRetentionParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	ret, err := rq.scope.PutAuditRetention(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ret)
}
