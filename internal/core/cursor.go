package core

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"strings"
)

// maxCursorLen bounds the work spent on a cursor before its MAC is checked.
const maxCursorLen = 2048

// sealCursor encodes key as an opaque cursor that only opens for the same
// scope (a tenant id, or PlatformChain) and binding (what was listed, with
// which filter and order). The MAC covers scope and binding without the
// cursor carrying them, so a cursor reveals nothing but its position.
func (c *Core) sealCursor(scope, binding string, key any) string {
	payload, err := json.Marshal(key)
	if err != nil {
		panic("core: cursor key does not marshal: " + err.Error()) // keys are plain structs
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(payload) + "." + enc.EncodeToString(c.cursorMAC(scope, binding, payload))
}

// openCursor decodes a cursor sealed for the same scope and binding into key.
// Any other cursor — forged, truncated, from another tenant, collection or
// query — is a 400 invalid_cursor.
func (c *Core) openCursor(cursor, scope, binding string, key any) error {
	bad := &Error{Kind: KindInvalidCursor, Field: "cursor", Detail: "the cursor is not valid for this listing; start again without it", Pos: -1}
	if len(cursor) > maxCursorLen {
		return bad
	}
	p, m, ok := strings.Cut(cursor, ".")
	if !ok {
		return bad
	}
	enc := base64.RawURLEncoding
	payload, err1 := enc.DecodeString(p)
	mac, err2 := enc.DecodeString(m)
	if err1 != nil || err2 != nil || !hmac.Equal(mac, c.cursorMAC(scope, binding, payload)) {
		return bad
	}
	if err := json.Unmarshal(payload, key); err != nil {
		return bad
	}
	return nil
}

func (c *Core) cursorMAC(scope, binding string, payload []byte) []byte {
	h := hmac.New(sha256.New, c.keys.CursorMAC)
	h.Write([]byte("bulkhead/cursor/v1\x00"))
	h.Write([]byte(scope))
	h.Write([]byte{0})
	h.Write([]byte(binding))
	h.Write([]byte{0})
	h.Write(payload)
	return h.Sum(nil)[:16]
}

// platformCursor is the scope of the control plane's cursors.
const platformCursor = "platform"
