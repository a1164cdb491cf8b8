package httpapi

import (
	"math"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// routeTable lists every route of the API. openapi.json documents exactly
// these; a test keeps the two in step.
func (s *Server) routeTable() []Route {
	return []Route{
		{Method: "GET", Pattern: "/healthz", Public: true, handle: s.healthz},
		{Method: "GET", Pattern: "/readyz", Public: true, handle: s.readyz},
		{Method: "GET", Pattern: "/metrics", handle: s.serveMetrics},
		{Method: "GET", Pattern: "/openapi.json", Public: true, handle: serveOpenAPI},
		{Method: "GET", Pattern: "/.well-known/jwks.json", Public: true, handle: s.jwks},

		{Method: "POST", Pattern: "/v1/tenants", Operator: true, Body: true, handle: s.createTenant},
		{Method: "GET", Pattern: "/v1/tenants", Operator: true, handle: s.listTenants},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}", Operator: true, handle: s.getTenant},
		{Method: "PATCH", Pattern: "/v1/tenants/{tenant}", Operator: true, Body: true, handle: s.updateTenant},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}", Operator: true, handle: s.deleteTenant},
		{Method: "GET", Pattern: "/v1/plans", Operator: true, handle: s.listPlans},
		{Method: "PUT", Pattern: "/v1/plans/{plan}", Operator: true, Body: true, handle: s.putPlan},
		{Method: "GET", Pattern: "/v1/audit", Operator: true, handle: s.listPlatformAudit},
		{Method: "GET", Pattern: "/v1/audit/verify", Operator: true, handle: s.verifyPlatformAudit},

		{Method: "POST", Pattern: "/v1/tenants/{tenant}/users", Body: true, handle: s.createUser},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/users", handle: s.listUsers},
		{Method: "PATCH", Pattern: "/v1/tenants/{tenant}/users/{id}", Body: true, handle: s.updateUser},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/users/{id}", handle: s.deleteUser},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/auth/login", Public: true, AuthLimited: true, Body: true, handle: s.login},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/auth/refresh", Public: true, AuthLimited: true, Body: true, handle: s.refresh},
		{Method: "PUT", Pattern: "/v1/tenants/{tenant}/auth/oidc", Body: true, handle: s.putOIDC},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/auth/oidc", handle: s.getOIDC},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/auth/oidc", handle: s.deleteOIDC},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/auth/oidc/start", Public: true, AuthLimited: true, handle: s.oidcStart},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/auth/oidc/callback", Public: true, AuthLimited: true, handle: s.oidcCallback},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/users/{id}/totp", handle: s.resetUserTOTP},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/users/{id}/lockout", handle: s.unlockUser},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/auth/totp", handle: s.enrollTOTP},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/auth/totp/verify", Body: true, handle: s.verifyTOTP},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/auth/totp/disable", Body: true, handle: s.disableTOTP},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/auth/policy", handle: s.getAuthPolicy},
		{Method: "PUT", Pattern: "/v1/tenants/{tenant}/auth/policy", Body: true, handle: s.putAuthPolicy},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/api-keys", Body: true, handle: s.createAPIKey},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/api-keys", handle: s.listAPIKeys},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/api-keys/{id}", handle: s.revokeAPIKey},
		{Method: "PUT", Pattern: "/v1/tenants/{tenant}/collections/{collection}", Body: true, handle: s.putCollection},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/collections/{collection}", handle: s.getCollection},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/collections/{collection}", handle: s.deleteCollection},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/collections", handle: s.listCollections},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/collections/{collection}/records", Body: true, handle: s.createRecord},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/collections/{collection}/records", handle: s.listRecords},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/collections/{collection}/records/{id}", handle: s.getRecord},
		{Method: "PATCH", Pattern: "/v1/tenants/{tenant}/collections/{collection}/records/{id}", Body: true, handle: s.updateRecord},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/collections/{collection}/records/{id}", handle: s.deleteRecord},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/audit", handle: s.listAudit},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/audit/verify", handle: s.verifyAudit},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/audit/retention", handle: s.getAuditRetention},
		{Method: "PUT", Pattern: "/v1/tenants/{tenant}/audit/retention", Operator: true, Body: true, handle: s.putAuditRetention},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/usage", handle: s.usage},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/containments", handle: s.listContainments},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/containments/{id}", handle: s.liftContainment},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/break-glass", Operator: true, Body: true, handle: s.grantBreakGlass},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/break-glass", handle: s.listBreakGlass},
		{Method: "DELETE", Pattern: "/v1/tenants/{tenant}/break-glass/{id}", Operator: true, handle: s.endBreakGlass},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/keys", handle: s.getKeys},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/keys/rotate", Operator: true, handle: s.rotateKeys},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/health", Operator: true, handle: s.tenantHealth},
		{Method: "GET", Pattern: "/v1/health/tenants", Operator: true, handle: s.listTenantHealth},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/jobs", WhileDeleting: true, handle: s.listJobs},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/jobs/{id}", WhileDeleting: true, handle: s.getJob},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/jobs/{id}/cancel", handle: s.cancelJob},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/exports", WhileDeleting: true, handle: s.startExport},
		{Method: "GET", Pattern: "/v1/tenants/{tenant}/exports/{id}/download", WhileDeleting: true, handle: s.downloadExport},
		{Method: "POST", Pattern: "/v1/tenants/{tenant}/restores", Stream: true, handle: s.startRestore},
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request, rq *request) error {
	return writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readiness is the body of a 200 from /readyz: "ready", or "degraded" while
// a breaker other than the database's is not closed (the node serves, on
// local rate limits for instance), with every breaker's state.
type readiness struct {
	Status   string            `json:"status"`
	Breakers map[string]string `json:"breakers"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := s.store.Ping(r.Context()); err != nil {
		s.log.Warn("readiness check failed", "request_id", rq.id, "err", err)
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable, "the database does not answer").
			WithHeader("Retry-After", "1")
	}
	if st := s.metrics.Breakers.State(observe.BreakerDatabase); st != observe.BreakerClosed {
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable, "the database's circuit breaker is "+st).
			WithHeader("Retry-After", "1")
	}
	status := "ready"
	if len(s.metrics.Breakers.NotClosed()) > 0 {
		status = "degraded"
	}
	return writeJSON(w, http.StatusOK, readiness{Status: status, Breakers: s.metrics.Breakers.All()})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request, rq *request) error {
	if why := access.Refusal(rq.principal, access.ReadMetrics); why != "" {
		return problem.New(http.StatusForbidden, problem.CodeForbidden, why)
	}
	promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	return nil
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request, rq *request) error {
	set, err := s.core.Tokens().JWKS()
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age=300") // the same for everyone
	h.Del("Vary")
	_, err = w.Write(set)
	return err
}

func (s *Server) createTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.CreateTenantParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	idem, err := idempotency(r, rq, rq.body)
	if err != nil {
		return err
	}
	t, err := rq.control.CreateTenant(r.Context(), p, idem)
	if err != nil {
		return err
	}
	replayed(w, idem)
	w.Header().Set("Location", "/v1/tenants/"+string(t.Slug))
	return writeJSON(w, http.StatusCreated, t)
}

func (s *Server) listTenants(w http.ResponseWriter, r *http.Request, rq *request) error {
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	page, err := rq.control.ListTenants(r.Context(), r.URL.Query().Get("cursor"), limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) getTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	t, err := rq.control.GetTenant(r.Context(), rq.scope)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) updateTenant(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.UpdateTenantParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	t, err := rq.control.UpdateTenant(r.Context(), rq.scope, p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, t)
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request, rq *request) error {
	plans, err := rq.control.ListPlans(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, plans)
}

func (s *Server) putPlan(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p tenant.Plan
	if err := decodeStrict(rq.body, &p, "name"); err != nil { // the name defaults to the path's
		return err
	}
	plan, err := rq.control.PutPlan(r.Context(), r.PathValue("plan"), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, plan)
}

func (s *Server) listPlatformAudit(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, limit, err := auditQuery(r)
	if err != nil {
		return err
	}
	page, err := rq.control.ListPlatformAudit(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) verifyPlatformAudit(w http.ResponseWriter, r *http.Request, rq *request) error {
	v, err := rq.control.VerifyPlatformAudit(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.CreateUserParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	idem, err := idempotency(r, rq, rq.body)
	if err != nil {
		return err
	}
	u, err := rq.scope.CreateUser(r.Context(), p, idem)
	if err != nil {
		return err
	}
	replayed(w, idem)
	return writeJSON(w, http.StatusCreated, u)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := rq.scope.ListUsers(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.UpdateUserParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	u, err := rq.scope.UpdateUser(r.Context(), store.UserID(r.PathValue("id")), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, u)
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.DeleteUser(r.Context(), store.UserID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.LoginParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	if err := s.admitLogin(r, p.Email); err != nil {
		return err
	}
	if err := s.admitUnknownSlug(r); err != nil {
		return err
	}
	pair, err := s.core.Login(r.Context(), tenant.Slug(r.PathValue("tenant")), p, rq.id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pair)
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.RefreshParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	pair, err := s.core.Refresh(r.Context(), tenant.Slug(r.PathValue("tenant")), p, rq.id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, pair)
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := noIdempotency(r); err != nil {
		return err
	}
	var p core.CreateAPIKeyParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	k, err := rq.scope.CreateAPIKey(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, k)
}

func (s *Server) listAPIKeys(w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := rq.scope.ListAPIKeys(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) revokeAPIKey(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.RevokeAPIKey(r.Context(), store.APIKeyID(r.PathValue("id"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) putCollection(w http.ResponseWriter, r *http.Request, rq *request) error {
	var p core.PutCollectionParams
	if err := decodeStrict(rq.body, &p); err != nil {
		return err
	}
	c, err := rq.scope.PutCollection(r.Context(), store.CollectionName(r.PathValue("collection")), p)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) getCollection(w http.ResponseWriter, r *http.Request, rq *request) error {
	c, err := rq.scope.GetCollection(r.Context(), store.CollectionName(r.PathValue("collection")))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteCollection(w http.ResponseWriter, r *http.Request, rq *request) error {
	if err := rq.scope.DeleteCollection(r.Context(), store.CollectionName(r.PathValue("collection"))); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listCollections(w http.ResponseWriter, r *http.Request, rq *request) error {
	page, err := rq.scope.ListCollections(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, rq *request) error {
	idem, err := idempotency(r, rq, rq.body)
	if err != nil {
		return err
	}
	col := store.CollectionName(r.PathValue("collection"))
	rec, err := rq.scope.CreateRecord(r.Context(), col, rq.body, idem)
	if err != nil {
		return err
	}
	replayed(w, idem)
	h := w.Header()
	h.Set("ETag", etag(rec.Version))
	h.Set("Location", r.URL.Path+"/"+string(rec.ID))
	return writeJSON(w, http.StatusCreated, rec)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, rq *request) error {
	rec, err := rq.scope.GetRecord(r.Context(),
		store.CollectionName(r.PathValue("collection")), store.RecordID(r.PathValue("id")))
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(rec.Version))
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) updateRecord(w http.ResponseWriter, r *http.Request, rq *request) error {
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	rec, err := rq.scope.UpdateRecord(r.Context(),
		store.CollectionName(r.PathValue("collection")), store.RecordID(r.PathValue("id")), rq.body, version)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", etag(rec.Version))
	return writeJSON(w, http.StatusOK, rec)
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request, rq *request) error {
	version, err := ifMatch(r)
	if err != nil {
		return err
	}
	err = rq.scope.DeleteRecord(r.Context(),
		store.CollectionName(r.PathValue("collection")), store.RecordID(r.PathValue("id")), version)
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, rq *request) error {
	q := r.URL.Query()
	limit, err := queryLimit(r)
	if err != nil {
		return err
	}
	count, err := queryBool(r, "count")
	if err != nil {
		return err
	}
	page, err := rq.scope.ListRecords(r.Context(), store.CollectionName(r.PathValue("collection")),
		core.ListQuery{Filter: q.Get("filter"), Order: q.Get("order"), Limit: limit, Cursor: q.Get("cursor"), Count: count})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func auditQuery(r *http.Request) (after int64, limit int, err error) {
	if after, err = queryInt(r, "after", 0, 0, math.MaxInt64); err != nil {
		return 0, 0, err
	}
	limit, err = queryLimit(r)
	return after, limit, err
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, rq *request) error {
	after, limit, err := auditQuery(r)
	if err != nil {
		return err
	}
	page, err := rq.scope.ListAudit(r.Context(), after, limit)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, page)
}

func (s *Server) verifyAudit(w http.ResponseWriter, r *http.Request, rq *request) error {
	v, err := rq.scope.VerifyAudit(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}
