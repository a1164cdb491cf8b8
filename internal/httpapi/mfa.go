package httpapi

import (
	"net/http"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
)

// Handlers of TOTP enrolment, the authentication policy and lock-outs.

func (s *Server) enrollTOTP(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	e, err := rq.scope.EnrollTOTP(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, e)
}

func (s *Server) verifyTOTP(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.TOTPCodeParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	codes, err := rq.scope.VerifyTOTP(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, codes)
}

func (s *Server) disableTOTP(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.TOTPCodeParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	if err := rq.scope.DisableTOTP(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) resetUserTOTP(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.ResetUserTOTP(r.Context(), store.UserID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.UnlockUser(r.Context(), store.UserID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getAuthPolicy(w http.ResponseWriter, r *http.Request, rq *request) error {
	p, err := rq.scope.GetAuthPolicy(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, p)
}

func (s *Server) putAuthPolicy(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.PutAuthPolicyParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	policy, err := rq.scope.PutAuthPolicy(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, policy)
}
