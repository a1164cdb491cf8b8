package httpapi

import "net/http"

// getKeys answers the versions of the tenant's data keys and the progress
// of a rotation; never key material.
func (s *Server) getKeys(w http.ResponseWriter, r *http.Request, rq *request) error {
	st, err := rq.scope.Keys(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, st)
}

// rotateKeys starts a rotation of the tenant's data key: 202, with the new
// versions; records are re-encrypted in the background.
func (s *Server) rotateKeys(w http.ResponseWriter, r *http.Request, rq *request) error {
	st, err := rq.control.RotateKeys(r.Context(), rq.scope)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, st)
}
