package core

import (
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/auth"
)

// LooksLikeCredential reports whether v is, by its form, a bearer
// credential this server issues or accepts: an API key, an access JWT (typ at+jwt), a
// refresh token or the operator token. It decides by form alone (and, for
// the operator token, a constant-time comparison), reads nothing and never
// panics. The HTTP layer uses it to refuse credentials sent where they
// would be logged or cached, such as in a URL's query.
func (c *Core) LooksLikeCredential(v string) bool {
	v = strings.TrimSpace(v)
	if len(v) < 16 {
		return false
	}
	if _, _, _, ok := auth.ParseAPIKey(v); ok {
		return true
	}
	if _, ok := auth.ParseRefreshToken(v); ok {
		return true
	}
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return true
	}
	return auth.LooksLikeAccessToken(v) || c.isOperatorToken(v)
}
