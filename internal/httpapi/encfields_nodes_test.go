package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestEncryptedFieldsStaleNode: node b remembers a collection's encrypted
// fields, and a deletes the collection and makes it again with others,
// which no change event tells b. b's writes still seal exactly the new
// fields (never plaintext for one of them), and its reads answer the new
// collection's records in clear, and a plain record's own "$enc" member
// as it was written.
func TestEncryptedFieldsStaleNode(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	a.tenant("acme", tenant.Pooled)
	key := a.apiKey("acme", tenant.Admin)
	col := tpath("acme", "collections", "people")
	get := func(n *testBundle, id string) record {
		t.Helper()
		var r record
		n.must(200, "GET", tpath("acme", "collections", "people", "records", id), key, nil).JSON(t, &r)
		if _, ok := r.Data["$enc"]; ok {
			t.Fatalf("GET on a node shows sealed values: %v", r.Data)
		}
		return r
	}
	remake := func(fields ...any) {
		t.Helper()
		a.must(204, "DELETE", col, key, nil)
		if fields == nil {
			fields = []any{}
		}
		a.must(200, "PUT", col, key, map[string]any{"encrypted_fields": fields})
	}
	a.must(200, "PUT", col, key, map[string]any{"encrypted_fields": []any{"ssn"}})
	old := b.createRecord("acme", key, "people", map[string]any{"ssn": "old-ssn", "pin": 1})
	get(b, old.ID) // b now knows ssn as the encrypted field

	// Made again with pin encrypted instead: b's write seals pin.
	remake("pin")
	secret := marker(t)
	rb := b.createRecord("acme", key, "people", map[string]any{"ssn": "clear-ssn", "pin": secret})
	raw := b.rawRecord(rb.ID)
	if strings.Contains(fmt.Sprint(raw), secret) || raw["ssn"] != "clear-ssn" {
		t.Fatalf("stored by the stale node: %v, want pin sealed and ssn as is", raw)
	}
	if got := get(b, rb.ID); got.Data["pin"] != secret || got.Data["ssn"] != "clear-ssn" {
		t.Fatalf("GET on the writing node = %v", got.Data)
	}

	// Made again with both: a's record read on b, which knows pin only.
	remake("ssn", "pin")
	b.createRecord("acme", key, "people", map[string]any{"pin": 1}) // b learns ssn, pin
	ra := a.createRecord("acme", key, "people", map[string]any{"ssn": "s2", "pin": 2})
	remake("ssn", "pin", "name")
	ra = a.createRecord("acme", key, "people", map[string]any{"ssn": "s3", "pin": 3, "name": "n3"})
	if got := get(b, ra.ID); got.Data["ssn"] != "s3" || got.Data["pin"] != 3.0 || got.Data["name"] != "n3" {
		t.Fatalf("GET on the stale node = %v", got.Data)
	}

	// Made again without encrypted fields, while b remembers three: a plain
	// record keeps its own "$enc" member.
	b.createRecord("acme", key, "people", map[string]any{"pin": 1}) // b learns ssn, pin, name
	remake()
	own := map[string]any{"pin": "AAAA"}
	rp := a.createRecord("acme", key, "people", map[string]any{"pin": "x", "$enc": own})
	var got record
	b.must(200, "GET", tpath("acme", "collections", "people", "records", rp.ID), key, nil).JSON(t, &got)
	if fmt.Sprint(got.Data["$enc"]) != fmt.Sprint(own) || got.Data["pin"] != "x" {
		t.Fatalf("GET on the stale node of a plain record = %v", got.Data)
	}
	// And b's write into it stores what it was given.
	rq := b.createRecord("acme", key, "people", map[string]any{"ssn": "plain", "pin": 9})
	if raw := b.rawRecord(rq.ID); raw["ssn"] != "plain" || raw["$enc"] != nil {
		t.Fatalf("stored by the stale node in a plain collection: %v", raw)
	}
}
