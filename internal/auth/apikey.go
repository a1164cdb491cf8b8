package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"hash"
	"strings"
	"sync"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// APIKeyPrefix starts every API key.
const APIKeyPrefix = "bh_"

// MaxAPIKeyEnvLen is the longest environment name an API key may carry.
const MaxAPIKeyEnvLen = 16

const (
	apiKeyRandomBytes = 8  // after the tenant UUID in the id
	apiKeySecretBytes = 32 // 256 bits: a fast hash of it cannot be brute-forced
)

var (
	apiKeyIDLen     = b32.EncodedLen(16 + apiKeyRandomBytes) // 39
	apiKeySecretLen = b32.EncodedLen(apiKeySecretBytes)      // 52
	// apiKeyTailLen is the length of "_<id>_<secret>".
	apiKeyTailLen = 1 + apiKeyIDLen + 1 + apiKeySecretLen
)

// validEnv reports whether env is 1 to MaxAPIKeyEnvLen lower-case ASCII
// letters.
func validEnv(env string) bool {
	if len(env) == 0 || len(env) > MaxAPIKeyEnvLen {
		return false
	}
	for i := 0; i < len(env); i++ {
		if env[i] < 'a' || env[i] > 'z' {
			return false
		}
	}
	return true
}

// NewAPIKey creates an API key for tenant tid in environment env, such as
// "live" or "test". It returns the key's public id and the key itself, which
// is shown to its owner once and never stored (store its KeyHasher hash). env
// must be 1 to MaxAPIKeyEnvLen lower-case ASCII letters and tid a canonical
// UUID; otherwise NewAPIKey returns an error.
func NewAPIKey(env string, tid tenant.ID) (id store.APIKeyID, key string, err error) {
	if !validEnv(env) {
		return "", "", fmt.Errorf("api key environment %q must be 1 to %d lower-case letters", env, MaxAPIKeyEnvLen)
	}
	u, ok := tid.Bytes()
	if !ok {
		return "", "", fmt.Errorf("tenant id %q is not a canonical uuid", tid)
	}
	var raw [16 + apiKeyRandomBytes + apiKeySecretBytes]byte
	copy(raw[:16], u[:])
	if _, err := rand.Read(raw[16:]); err != nil {
		return "", "", fmt.Errorf("generate api key: %w", err)
	}
	idText := b32.EncodeToString(raw[:16+apiKeyRandomBytes])
	secret := b32.EncodeToString(raw[16+apiKeyRandomBytes:])
	return store.APIKeyID(idText), APIKeyPrefix + env + "_" + idText + "_" + secret, nil
}

// ParseAPIKey splits key into its environment, tenant and public id. It
// reports ok only for a key NewAPIKey could have produced: the exact lengths,
// the lower-case base32 alphabet with zero trailing bits, a single '_'
// between parts, and a tenant part that is not the nil UUID. It checks only
// the form; whether the key exists and its secret matches is for the caller,
// through KeyHasher. ParseAPIKey never panics.
func ParseAPIKey(key string) (env string, tid tenant.ID, id store.APIKeyID, ok bool) {
	rest, found := strings.CutPrefix(key, APIKeyPrefix)
	if !found || len(rest) <= apiKeyTailLen || len(rest) > MaxAPIKeyEnvLen+apiKeyTailLen {
		return "", "", "", false
	}
	env, tail := rest[:len(rest)-apiKeyTailLen], rest[len(rest)-apiKeyTailLen:]
	if !validEnv(env) || tail[0] != '_' || tail[1+apiKeyIDLen] != '_' {
		return "", "", "", false
	}
	idText, secret := tail[1:1+apiKeyIDLen], tail[2+apiKeyIDLen:]
	var sb [apiKeySecretBytes]byte
	if !decodeB32(sb[:], secret) {
		return "", "", "", false
	}
	tid, ok = TenantOfAPIKeyID(store.APIKeyID(idText))
	if !ok {
		return "", "", "", false
	}
	return env, tid, store.APIKeyID(idText), true
}

// TenantOfAPIKeyID returns the tenant an API key id belongs to, for routes
// that receive only the id. It reports false if id is not in the form
// NewAPIKey produces. Like ParseAPIKey, it checks only the form.
func TenantOfAPIKeyID(id store.APIKeyID) (tenant.ID, bool) {
	var b [16 + apiKeyRandomBytes]byte
	if !decodeB32(b[:], string(id)) {
		return "", false
	}
	tid := tenant.IDFromBytes([16]byte(b[:16]))
	return tid, tid != ""
}

// IsAPIKey reports whether token is meant as an API key, that is, whether it
// starts with APIKeyPrefix. It does not check the rest; ParseAPIKey does.
func IsAPIKey(token string) bool {
	return strings.HasPrefix(token, APIKeyPrefix)
}

// KeyHasher computes the keyed hash under which API keys are stored:
// HMAC-SHA-256 under a platform secret. API keys carry 256 random bits, so a
// fast hash is as strong as a slow one, and a leaked table of hashes is
// useless without the secret. A KeyHasher is safe for concurrent use.
type KeyHasher struct {
	pool sync.Pool // of *keyMAC
}

type keyMAC struct {
	h   hash.Hash
	buf []byte
}

// NewKeyHasher returns a KeyHasher keyed with secret, which should be 32
// random bytes (keyring.Keyring.APIKeyMAC). NewKeyHasher copies secret. It
// panics if secret is shorter than 16 bytes: that is a configuration bug, not
// a runtime condition.
func NewKeyHasher(secret []byte) *KeyHasher {
	if len(secret) < 16 {
		panic(fmt.Sprintf("auth: NewKeyHasher: secret is %d bytes, want at least 16", len(secret)))
	}
	secret = append([]byte(nil), secret...)
	kh := &KeyHasher{}
	kh.pool.New = func() any {
		return &keyMAC{h: hmac.New(sha256.New, secret)}
	}
	return kh
}

// Hash returns the 32-byte HMAC-SHA-256 of key. It runs on every request, so
// it reuses HMAC states and allocates only its result.
func (kh *KeyHasher) Hash(key string) []byte {
	m := kh.pool.Get().(*keyMAC)
	m.h.Reset()
	// hash.Hash has no WriteString; copying into a reused buffer avoids
	// allocating a []byte of key on every call.
	m.buf = append(m.buf[:0], key...)
	m.h.Write(m.buf)
	clear(m.buf)
	if cap(m.buf) > 1024 { // an oversized key should not pin memory in the pool
		m.buf = nil
	}
	sum := m.h.Sum(make([]byte, 0, sha256.Size))
	kh.pool.Put(m)
	return sum
}

// Verify reports, in constant time, whether hash is the Hash of key.
func (kh *KeyHasher) Verify(key string, hash []byte) bool {
	return hmac.Equal(kh.Hash(key), hash)
}
