package httpapi

import (
	"net/http"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
)

// deleteTenant offboards a tenant: suspended at once, as deleting, and
// purged when the grace period (?grace=, else the server's default) ends;
// grace=0 purges before answering. Either way the answer is 202 with the
// tenant as it now stands.
func (s *Server) deleteTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	var grace *time.Duration
	if v := r.URL.Query().Get("grace"); v != "" {
		g, err := core.ParseGrace(v)
		if err != nil {
			return err
		}
		grace = &g
	}
	t, err := rq.control.OffboardTenant(r.Context(), rq.scope, grace)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, t)
}
