package core

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/bulkheadhq/bulkhead/store"
)

// Reads open a record's sealed values on its stored bytes, without
// decoding the record into maps and encoding it again: a stored record is
// the compact, key-sorted form encodeCompact writes, so replacing the
// values of its encrypted fields and dropping its encKey member, in place
// in the byte stream, gives exactly what decoding, openDoc and
// encodeCompact would. Whatever does not have the expected shape is left
// to that slower path, which stays the reference.

// member is one member of a JSON object: its key (with its quotes) and
// its value, as they are written.
type member struct{ key, val []byte }

// splitObject appends the members of b, a compact JSON object, to dst.
// It reports false if b is not one: then nothing may be concluded from
// what it returned. It checks the structure it relies on, not all of
// JSON: b comes from the store, which holds what encodeCompact wrote.
func splitObject(b []byte, dst []member) ([]member, bool) {
	if len(b) < 2 || b[0] != '{' {
		return dst, false
	}
	if len(b) == 2 {
		return dst, b[1] == '}'
	}
	for i := 1; ; {
		if i >= len(b) || b[i] != '"' {
			return dst, false
		}
		j, ok := skipString(b, i)
		if !ok || j >= len(b) || b[j] != ':' {
			return dst, false
		}
		k, ok := skipValue(b, j+1)
		if !ok || k == j+1 || k >= len(b) {
			return dst, false
		}
		dst = append(dst, member{key: b[i:j], val: b[j+1 : k]})
		switch b[k] {
		case ',':
			i = k + 1
		case '}':
			return dst, k == len(b)-1
		default:
			return dst, false
		}
	}
}

// skipString returns the index just after the JSON string starting at
// b[i].
func skipString(b []byte, i int) (int, bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index of the ',' or '}' that ends the value
// starting at b[i], a member's value.
func skipValue(b []byte, i int) (int, bool) {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			e, ok := skipString(b, j)
			if !ok {
				return 0, false
			}
			j = e - 1
		case '{', '[':
			depth++
		case ']':
			if depth == 0 {
				return 0, false
			}
			depth--
		case '}':
			if depth == 0 {
				return j, true
			}
			depth--
		case ',':
			if depth == 0 {
				return j, true
			}
		case ' ', '\t', '\n', '\r':
			return 0, false // not compact
		}
	}
	return 0, false
}

// keyIs reports whether the written key k is the string s; keys compared
// this way (encrypted fields, encKey) never need escaping.
func keyIs(k []byte, s string) bool {
	return len(k) == len(s)+2 && string(k[1:len(k)-1]) == s
}

// htmlEscapes are the escapes json.Marshal writes, and encodeCompact does
// not: a sealed value holding one is left to the reference path, so that
// a read answers the same bytes either way.
var htmlEscapes = [][]byte{[]byte(`\u003c`), []byte(`\u003e`), []byte(`\u0026`)}

// openRaw returns data, a stored record's compact JSON, with its sealed
// values opened, as open would. It returns ok false, and no error, when
// data is not in the form it handles (then open's reference path
// decides), including when data holds a sealed value of a field fc does
// not encrypt.
func (fc *fieldCipher) openRaw(id store.RecordID, data []byte) (out []byte, ok bool, err error) {
	var top, sealed [24]member
	members, ok := splitObject(data, top[:0])
	if !ok {
		return nil, false, nil
	}
	var enc []member
	for _, m := range members {
		if keyIs(m.key, encKey) {
			if enc, ok = splitObject(m.val, sealed[:0]); !ok {
				return nil, false, nil
			}
		}
	}
	for _, s := range enc {
		if !slices.ContainsFunc(fc.fields, func(f string) bool { return keyIs(s.key, f) }) ||
			len(s.val) < 2 || s.val[0] != '"' || bytes.IndexByte(s.val, '\\') >= 0 {
			return nil, false, nil
		}
	}
	out = make([]byte, 0, len(data))
	out = append(out, '{')
	var scratch [160]byte
	var ct []byte
	n := 0 // sealed values opened
	for _, m := range members {
		if keyIs(m.key, encKey) {
			continue
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(out, m.key...), ':')
		f := ""
		for _, e := range fc.fields {
			if keyIs(m.key, e) {
				f = e
				break
			}
		}
		if f == "" {
			out = append(out, m.val...)
			continue
		}
		i := slices.IndexFunc(enc, func(s member) bool { return keyIs(s.key, f) })
		if i < 0 {
			if string(m.val) != "null" {
				return nil, false, fmt.Errorf("record %s field %q: stored without its sealed value: %w", id, f, ErrSealBroken)
			}
			out = append(out, m.val...)
			continue
		}
		b64 := enc[i].val[1 : len(enc[i].val)-1]
		ct = slices.Grow(ct[:0], base64.StdEncoding.DecodedLen(len(b64)))[:base64.StdEncoding.DecodedLen(len(b64))]
		k, err := base64.StdEncoding.Decode(ct, b64)
		if err != nil {
			return nil, false, fmt.Errorf("record %s field %q: %w", id, f, ErrSealBroken)
		}
		start := len(out)
		if out, err = fc.keys.openAD(out, fc.fieldAD(scratch[:0], id, f), ct[:k]); err != nil {
			return nil, false, fmt.Errorf("record %s field %q: %w", id, f, err)
		}
		for _, esc := range htmlEscapes {
			if bytes.Contains(out[start:], esc) {
				return nil, false, nil
			}
		}
		n++
	}
	if n != len(enc) {
		return nil, false, nil // a sealed value without its field
	}
	return append(out, '}'), true, nil
}
