package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"

	"github.com/bulkheadhq/bulkhead/store"
)

// RefreshTokenPrefix starts every refresh token.
const RefreshTokenPrefix = "bhr_"

const (
	refreshIDBytes     = 16
	refreshSecretBytes = 32
)

var (
	refreshIDLen     = b32.EncodedLen(refreshIDBytes)     // 26
	refreshSecretLen = b32.EncodedLen(refreshSecretBytes) // 52
	refreshTokenLen  = len(RefreshTokenPrefix) + refreshIDLen + 1 + refreshSecretLen
)

// NewRefreshToken creates a refresh token, bhr_<id>_<secret>. It returns the
// token's id, the token to hand the client, and the hash to store
// (HashRefreshToken of the token). The secret carries 256 random bits, so a
// plain SHA-256 suffices to store it.
func NewRefreshToken() (id store.RefreshTokenID, token string, hash []byte, err error) {
	var raw [refreshIDBytes + refreshSecretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", nil, fmt.Errorf("generate refresh token: %w", err)
	}
	idText := b32.EncodeToString(raw[:refreshIDBytes])
	token = RefreshTokenPrefix + idText + "_" + b32.EncodeToString(raw[refreshIDBytes:])
	return store.RefreshTokenID(idText), token, HashRefreshToken(token), nil
}

// ParseRefreshToken returns the id of token, or false if token is not in the
// exact form NewRefreshToken produces. It checks only the form; the caller
// compares HashRefreshToken(token) with the stored hash. It never panics.
func ParseRefreshToken(token string) (store.RefreshTokenID, bool) {
	rest, ok := strings.CutPrefix(token, RefreshTokenPrefix)
	if !ok || len(token) != refreshTokenLen || rest[refreshIDLen] != '_' {
		return "", false
	}
	idText, secret := rest[:refreshIDLen], rest[refreshIDLen+1:]
	var idb [refreshIDBytes]byte
	var sb [refreshSecretBytes]byte
	if !decodeB32(idb[:], idText) || !decodeB32(sb[:], secret) {
		return "", false
	}
	return store.RefreshTokenID(idText), true
}

// HashRefreshToken returns the SHA-256 of the whole token, the form in which
// refresh tokens are stored. Compare it with the stored hash in constant
// time (crypto/subtle).
func HashRefreshToken(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
