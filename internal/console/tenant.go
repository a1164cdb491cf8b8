package console

import "net/http"

// tenantRoutes registers the tenant admin's pages, under /ui/t/{slug}/.
func (c *Console) tenantRoutes(mux *http.ServeMux) {}
