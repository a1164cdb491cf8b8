// Package bulkhead is a multi-tenant backend for SaaS: tenant-isolated
// records, identities, audit and limits behind one HTTP API, usable as a
// server (bulkhead serve) or embedded as a library.
//
//	app, err := bulkhead.New(bulkhead.Config{DataDir: "./bulkhead-data"})
//	if err != nil { … }
//	defer app.Close()
//	err = app.Run(ctx) // serves until ctx is cancelled, then drains
//
// Every tenant's data is reached only through a transaction opened for that
// tenant; the tenant of a request comes only from its credential. See
// docs/architecture.md for the request path, docs/api.md and
// internal/httpapi/openapi.json (served at /openapi.json) for the HTTP
// contract, and docs/README.md for every document.
//
// Stability: the HTTP API (v1) is the stable surface. The Go API of this
// package and of store, tenant, problem and filter may still change.
package bulkhead
