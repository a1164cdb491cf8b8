package core

import (
	"bytes"
	"crypto/cipher"
	"errors"
	"maps"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
)

func testCipher(t *testing.T, fields ...string) *fieldCipher {
	t.Helper()
	g, err := keyring.AEAD(keyring.NewKey())
	if err != nil {
		t.Fatal(err)
	}
	ks := &keySet{tid: "t1", active: 1, data: map[int][]byte{}, aeads: map[int]cipher.AEAD{1: g}, index: keyring.NewKey()}
	return &fieldCipher{keys: ks, tid: "t1", col: "people", fields: fields}
}

// reference opens stored the way open did before openRaw: decode, openDoc,
// encode.
func reference(t *testing.T, fc *fieldCipher, id store.RecordID, stored []byte) ([]byte, error) {
	t.Helper()
	doc, err := decodeObject(stored)
	if err != nil {
		t.Fatal(err)
	}
	if err := fc.openDoc(id, doc); err != nil {
		return nil, err
	}
	return encodeCompact(doc)
}

func sealedCopy(t *testing.T, fc *fieldCipher, id store.RecordID, body string) []byte {
	t.Helper()
	doc, err := decodeObject([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	doc = maps.Clone(doc)
	if err := fc.seal(id, doc); err != nil {
		t.Fatal(err)
	}
	b, err := encodeCompact(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOpenRawMatchesReference: opening sealed fields on the stored bytes
// answers exactly what decoding, opening and encoding the record does.
func TestOpenRawMatchesReference(t *testing.T) {
	fc := testCipher(t, "ssn", "pin", "zz")
	const id = store.RecordID("0190a0e4-7f7e-7c8a-9d2b-3f1e5a6b7c8d")
	for _, body := range []string{
		`{}`,
		`{"name":"ada"}`,
		`{"name":"ada","ssn":"078-05-1120","pin":4711}`,
		`{"a":[1,{"b":"c,}]"}],"pin":1.50e3,"ssn":"quote \" and \\ and \n é 😀","zz":null}`,
		`{"ssn":{"nested":[true,false,null,"x"],"k":{"z":1,"a":2}},"pin":[1,2,3],"$other":"x"}`,
		`{"ssn":"line\u2028sep","pin":-0.0,"zz":"last"}`,
		`{"ssn":"<b>&amp;</b>","pin":2}`, // HTML escapes: the reference path answers
	} {
		stored := sealedCopy(t, fc, id, body)
		want, err := reference(t, fc, id, stored)
		if err != nil {
			t.Fatalf("%s: reference: %v", body, err)
		}
		got, ok, err := fc.openRaw(id, stored)
		if err != nil {
			t.Fatalf("%s: openRaw: %v", body, err)
		}
		if !ok {
			if !bytes.Contains([]byte(body), []byte("<")) {
				t.Errorf("%s: openRaw declined a record it should open (stored %s)", body, stored)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\nopenRaw   %s\nreference %s", body, got, want)
		}
		if r, err := fc.open(&store.Record{ID: id, Data: stored}); err != nil || !bytes.Equal(r.Data, want) {
			t.Errorf("%s: open = %s, %v; want %s", body, r.Data, err, want)
		}
	}
}

// TestOpenRawRefuses: what a fitting cipher cannot vouch for is declined or
// refused, never answered as if it were opened.
func TestOpenRawRefuses(t *testing.T) {
	const id = store.RecordID("0190a0e4-7f7e-7c8a-9d2b-3f1e5a6b7c8d")
	full := testCipher(t, "ssn", "pin")
	stored := sealedCopy(t, full, id, `{"name":"ada","ssn":"s","pin":1}`)

	// A cipher that knows fewer fields (a stale view) declines the record.
	fewer := &fieldCipher{keys: full.keys, tid: full.tid, col: full.col, fields: []string{"ssn"}}
	if _, ok, err := fewer.openRaw(id, stored); ok || err != nil {
		t.Fatalf("a sealed value of a field the cipher does not know: ok %v, err %v; want declined", ok, err)
	}
	// A field the cipher encrypts stored in clear is refused.
	more := &fieldCipher{keys: full.keys, tid: full.tid, col: full.col, fields: []string{"ssn", "pin", "name"}}
	if _, _, err := more.openRaw(id, stored); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("an encrypted field stored in clear: err %v, want ErrSealBroken", err)
	}
	// A sealed value moved to another record does not open.
	if _, _, err := full.openRaw("0190a0e4-7f7e-7c8a-9d2b-000000000000", stored); !errors.Is(err, ErrSealBroken) {
		t.Fatalf("sealed values of another record: err %v, want ErrSealBroken", err)
	}
	// Not the compact form the store holds: declined, for the reference path.
	for _, odd := range []string{`{"ssn": "x"}`, `[1]`, `{"ssn":"x"`, `{"$enc":5,"ssn":"x"}`, ``} {
		if _, ok, _ := full.openRaw(id, []byte(odd)); ok {
			t.Errorf("openRaw(%s) opened it", odd)
		}
	}
}
