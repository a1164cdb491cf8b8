package core

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
)

type testCursorKey struct {
	CreatedAt time.Time
	SecretID  string
}

func cursorCore(secret byte) *Core {
	return &Core{keys: &keyring.Keyring{CursorMAC: bytes.Repeat([]byte{secret}, 32)}}
}

// A cursor is encrypted: decoded, it shows no JSON, no field name and no
// value of the position it holds; it opens to that position for the same
// scope and binding only.
func TestCursorOpaque(t *testing.T) {
	c := cursorCore(1)
	want := testCursorKey{CreatedAt: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), SecretID: "rec-visible-marker"}
	cur := c.sealCursor("tenant-a", "records\x00tasks\x00\x00", want)
	var decoded []byte
	for _, part := range strings.Split(cur, ".") {
		b, err := base64.RawURLEncoding.DecodeString(part)
		if err != nil {
			t.Fatalf("cursor %q: part %q is not base64url: %v", cur, part, err)
		}
		decoded = append(decoded, b...)
	}
	// No four bytes in a row of the position's JSON are in the cursor,
	// decoded or not (by chance, about one run in a million would find one).
	plain, _ := json.Marshal(want)
	for i := 0; i+4 <= len(plain); i++ {
		if w := plain[i : i+4]; bytes.Contains(decoded, w) || strings.Contains(cur, string(w)) {
			t.Errorf("cursor %q shows %q of the position's JSON %s", cur, w, plain)
		}
	}
	if strings.ContainsAny(cur, `{"`) || json.Valid(decoded) {
		t.Errorf("cursor %q is readable JSON", cur)
	}
	if again := c.sealCursor("tenant-a", "records\x00tasks\x00\x00", want); again == cur {
		t.Errorf("two cursors of the same position are equal (%q): a cursor must not show that positions repeat", cur)
	}
	var got testCursorKey
	if err := c.openCursor(cur, "tenant-a", "records\x00tasks\x00\x00", &got); err != nil || got != want {
		t.Fatalf("openCursor = %+v, %v; want %+v", got, err, want)
	}
}

// Every cursor that was not sealed by this node's secret for this scope
// and binding is refused as invalid_cursor: another tenant's, another
// query's, another node secret's, altered in any byte, truncated, extended
// or overlong.
func TestCursorRefusals(t *testing.T) {
	c := cursorCore(1)
	const scope, binding = "tenant-a", "records\x00tasks\x00n > 1\x00-n"
	cur := c.sealCursor(scope, binding, testCursorKey{SecretID: "x"})
	refused := func(name, cursor, scope, binding string, c *Core) {
		t.Helper()
		var k testCursorKey
		err := c.openCursor(cursor, scope, binding, &k)
		var e *Error
		if !errors.As(err, &e) || e.Kind != KindInvalidCursor {
			t.Errorf("%s: openCursor = %+v, %v; want invalid_cursor", name, k, err)
		}
	}
	refused("another tenant", cur, "tenant-b", binding, c)
	refused("another filter", cur, scope, "records\x00tasks\x00n > 2\x00-n", c)
	refused("another collection", cur, scope, "records\x00notes\x00n > 1\x00-n", c)
	refused("the platform scope", cur, platformCursor, binding, c)
	refused("another secret", cur, scope, binding, cursorCore(2))
	refused("truncated", cur[:len(cur)-1], scope, binding, c)
	refused("extended", cur+"A", scope, binding, c)
	refused("no dot", strings.Replace(cur, ".", "", 1), scope, binding, c)
	refused("overlong", strings.Repeat("A", maxCursorLen+1), scope, binding, c)
	refused("empty", "", scope, binding, c)
	nonce, _, _ := strings.Cut(cur, ".")
	refused("plain JSON", nonce+"."+base64.RawURLEncoding.EncodeToString([]byte(`{"SecretID":"x"}`)), scope, binding, c)
	for i := range cur {
		if cur[i] == '.' {
			continue
		}
		b := []byte(cur)
		// Change the byte to another base64url character of other low
		// bits, so that the decoded bytes change.
		b[i] = map[bool]byte{true: 'B', false: 'A'}[b[i] == 'A']
		if string(b) == cur {
			continue
		}
		refused(fmt.Sprintf("character %d altered", i), string(b), scope, binding, c)
	}
}

// BenchmarkCursor seals and opens a cursor of a record listing; its
// MACOnly sub-benchmark is the baseline of the same run: the payload
// base64-encoded and authenticated with HMAC-SHA-256, not encrypted.
func BenchmarkCursor(b *testing.B) {
	c := cursorCore(1)
	key := testCursorKey{CreatedAt: time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), SecretID: "01a24647-d08c-7923-a901-a68fc4f6ecd1"}
	const scope, binding = "01a24647-d08c-7923-a901-a68fc4f6ecd1", "records\x00tasks\x00points >= 5\x00-points"
	b.Run("Sealed", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var k testCursorKey
			if err := c.openCursor(c.sealCursor(scope, binding, key), scope, binding, &k); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("MACOnly", func(b *testing.B) {
		b.ReportAllocs()
		enc := base64.RawURLEncoding
		mac := func(payload []byte) []byte {
			h := hmac.New(sha256.New, c.keys.CursorMAC)
			h.Write(cursorAD(scope, binding))
			h.Write(payload)
			return h.Sum(nil)[:16]
		}
		for b.Loop() {
			payload, _ := json.Marshal(key)
			cur := enc.EncodeToString(payload) + "." + enc.EncodeToString(mac(payload))
			p, m, _ := strings.Cut(cur, ".")
			pb, _ := enc.DecodeString(p)
			mb, _ := enc.DecodeString(m)
			var k testCursorKey
			if !hmac.Equal(mb, mac(pb)) || json.Unmarshal(pb, &k) != nil {
				b.Fatal("baseline cursor does not open")
			}
		}
	})
}
