// Package auth holds bulkhead's credential primitives: password hashing
// (argon2id), API keys, access tokens (EdDSA JWTs) and refresh tokens. It
// knows nothing of HTTP or the database: callers parse a credential here,
// load what the store keeps for it, and compare.
//
// Every credential names its tenant. An API key carries the tenant's UUID in
// its public id, and an access token carries it in its signed "tid" claim, so
// the tenant a request acts for comes from the credential alone.
//
// Credentials share one text encoding for random and binary parts: unpadded
// base32 with the RFC 4648 alphabet in lower case. Parsers accept only the
// canonical form, so each credential has exactly one spelling.
//
// Formats:
//
//	API key        bh_<env>_<id>_<secret>   id = base32(tenant UUID ‖ 8 random bytes), 39 chars
//	                                        secret = base32(32 random bytes), 52 chars
//	refresh token  bhr_<id>_<secret>        id = base32(16 random bytes), 26 chars
//	                                        secret = base32(32 random bytes), 52 chars
//	access token   JWS compact, alg EdDSA, typ at+jwt, kid = hex(SHA-256(public key)[:8])
//	password hash  $argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<key>  (PHC, raw std base64)
//
//	OIDC state     base64url(1 ‖ nonce ‖ AES-256-GCM(state JSON)), bound to its tenant (see oidc.go)
//
// The formats are stored in databases and handed to clients, so they are
// stable. TOTP will be added here later.
package auth
