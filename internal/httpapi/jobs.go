package httpapi

import (
	"net/http"
	"regexp"

	"github.com/bulkheadhq/bulkhead/store"
)

// jobKindPattern is what a job kind looks like; the kind filter takes
// nothing else.
var jobKindPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// listJobs answers a page of the tenant's background jobs, newest first,
// of one kind if ?kind= names it.
func (s *Server) listJobs(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	kind := q.Get("kind")
	if kind != "" && !jobKindPattern.MatchString(kind) {
		return fieldProblem("kind", "kind must match ^[a-z][a-z0-9_]{0,63}$", "must match ^[a-z][a-z0-9_]{0,63}$")
	}
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := rq.scope.ListJobs(r.Context(), kind, limit, q.Get("cursor"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

// getJob answers one of the tenant's jobs: its state, progress, error and
// result.
func (s *Server) getJob(w http.ResponseWriter, r *http.Request, rq *request) error {
	j, err := rq.scope.GetJob(r.Context(), store.JobID(r.PathValue("id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}

// cancelJob cancels a queued or running job of the tenant and answers it,
// cancelled; 409 job_finished if it has finished.
func (s *Server) cancelJob(w http.ResponseWriter, r *http.Request, rq *request) error {
	j, err := rq.scope.CancelJob(r.Context(), store.JobID(r.PathValue("id")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, j)
}
