package core

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"

	"golang.org/x/crypto/chacha20poly1305"
)

// maxCursorLen bounds the work spent on a cursor before it is opened.
const maxCursorLen = 2048

// cursorLabel is the HKDF label of the cursor key and the start of every
// cursor's associated data; a new cursor format takes a new label.
const cursorLabel = "bulkhead/cursor/v2"

// cursorSealer holds the AEAD that seals cursors, made once from the
// node's cursor secret.
type cursorSealer struct {
	once sync.Once
	aead cipher.AEAD
}

// cursorAEAD returns XChaCha20-Poly1305 under a key derived with HKDF
// from the cursor secret, under a label of its own (the OIDC state key is
// derived from the same secret under another).
func (c *Core) cursorAEAD() cipher.AEAD {
	s := &c.cursors
	s.once.Do(func() {
		key, err := hkdf.Key(sha256.New, c.keys.CursorMAC, nil, cursorLabel, chacha20poly1305.KeySize)
		if err == nil {
			s.aead, err = chacha20poly1305.NewX(key)
		}
		if err != nil {
			panic("core: cursor key: " + err.Error()) // a 32-byte key cannot fail
		}
	})
	return s.aead
}

// sealCursor encrypts key into an opaque cursor that only opens for the
// same scope (a tenant id, or PlatformChain) and binding (what was listed,
// with which filter and order). The cursor is a random nonce and the
// sealed position, base64url, joined by a dot; scope and binding are the
// associated data, so the cursor carries neither and reveals nothing, not
// even the shape of the position.
func (c *Core) sealCursor(scope, binding string, key any) string {
	payload, err := json.Marshal(key)
	if err != nil {
		panic("core: cursor key does not marshal: " + err.Error()) // keys are plain structs
	}
	aead := c.cursorAEAD()
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	sealed := aead.Seal(nil, nonce, payload, cursorAD(scope, binding))
	enc := base64.RawURLEncoding
	return enc.EncodeToString(nonce) + "." + enc.EncodeToString(sealed)
}

// openCursor decrypts a cursor sealed for the same scope and binding into
// key. Any other cursor — forged, altered, truncated, over maxCursorLen,
// from another tenant, collection or query — is a 400 invalid_cursor.
func (c *Core) openCursor(cursor, scope, binding string, key any) error {
	bad := &Error{Kind: KindInvalidCursor, Field: "cursor", Detail: "the cursor is not valid for this listing; start again without it", Pos: -1}
	if len(cursor) > maxCursorLen {
		return bad
	}
	n, s, ok := strings.Cut(cursor, ".")
	if !ok {
		return bad
	}
	aead := c.cursorAEAD()
	enc := base64.RawURLEncoding.Strict() // one spelling per cursor
	nonce, err1 := enc.DecodeString(n)
	sealed, err2 := enc.DecodeString(s)
	if err1 != nil || err2 != nil || len(nonce) != aead.NonceSize() || len(sealed) < aead.Overhead() {
		return bad
	}
	payload, err := aead.Open(nil, nonce, sealed, cursorAD(scope, binding))
	if err != nil {
		return bad
	}
	if err := json.Unmarshal(payload, key); err != nil {
		return bad
	}
	return nil
}

// cursorAD is a cursor's associated data: the label, scope and binding,
// each ended by a NUL. Neither the label nor a scope contains one, so no
// two (scope, binding) pairs give the same bytes.
func cursorAD(scope, binding string) []byte {
	ad := make([]byte, 0, len(cursorLabel)+len(scope)+len(binding)+3)
	ad = append(ad, cursorLabel...)
	ad = append(ad, 0)
	ad = append(ad, scope...)
	ad = append(ad, 0)
	ad = append(ad, binding...)
	return append(ad, 0)
}

// platformCursor is the scope of the control plane's cursors.
const platformCursor = "platform"
