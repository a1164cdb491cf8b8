package core

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// How a record of a collection with encrypted fields is stored (see
// docs/records.md): each encrypted field that holds a value other than
// null holds instead its blind index, the string blindPrefix + base64url
// of HMAC-SHA-256(tenant index key, collection NUL field NUL canonical
// value), so that equality filters compare it like any string; the sealed
// value (AES-256-GCM under the tenant's data key, bound to tenant,
// collection, record id and field) goes under the reserved top-level key
// encKey, an object from field name to base64 of the sealed value. null
// is stored as null: it holds no secret, and `f = null` keeps its meaning.
const (
	encKey      = "$enc"
	blindPrefix = "bi:"
	// MaxEncryptedFields is how many fields a collection may encrypt.
	MaxEncryptedFields = 16
)

// sealedMark is in the compact stored form of every record holding a
// sealed value (and, rarely, of a record of a collection without
// encrypted fields that has a key "$enc"): reads of records without it
// need not look up their collection's encrypted fields.
var sealedMark = []byte(`"` + encKey + `":`)

// errFieldsChanged says a collection's encrypted fields changed between
// the read that prepared an operation and its transaction: the operation
// is prepared again.
var errFieldsChanged = errors.New("the collection's encrypted fields changed")

type encFieldsKey struct {
	tid tenant.ID
	col store.CollectionName
}

// forgetEncFields drops what this node remembers of the encrypted fields
// of tid's collections (every tenant's when tid is "").
func (c *Core) forgetEncFields(tid tenant.ID) {
	c.encFields.Range(func(k, _ any) bool {
		if tid == "" || k.(encFieldsKey).tid == tid {
			c.encFields.Delete(k)
		}
		return true
	})
}

// encryptedFieldsOf returns the encrypted fields of tid's collection col as
// this node last saw them, reading the collection on a miss. A collection
// that does not exist has none (the operation then fails on its own). The
// answer may be stale: operations check it in their transaction
// (fieldCipher.check) and start again if it changed.
func (c *Core) encryptedFieldsOf(ctx context.Context, tid tenant.ID, col store.CollectionName) ([]string, error) {
	key := encFieldsKey{tid, col}
	if v, ok := c.encFields.Load(key); ok {
		return v.([]string), nil
	}
	var fields []string
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) error {
		sc, err := tx.GetCollection(ctx, col)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		fields = sc.EncryptedFields
		return nil
	})
	if err != nil {
		return nil, err
	}
	c.encFields.Store(key, fields)
	return fields, nil
}

// fieldCipher seals and opens the encrypted fields of one collection.
// A nil *fieldCipher is a collection without encrypted fields.
type fieldCipher struct {
	keys   *keySet
	tid    tenant.ID
	col    store.CollectionName
	fields []string
}

// cipherFor returns the cipher of tid's collection col with the given
// encrypted fields, or nil when there are none.
func (c *Core) cipherFor(ctx context.Context, tid tenant.ID, col store.CollectionName, fields []string) (*fieldCipher, error) {
	if len(fields) == 0 {
		return nil, nil
	}
	ks, err := c.keySet(ctx, tid)
	if err != nil {
		return nil, err
	}
	return &fieldCipher{keys: ks, tid: tid, col: col, fields: fields}, nil
}

// withCipher runs fn with the cipher of the scope's collection col as last
// seen; fn checks it against the collection in its transaction
// (fieldCipher.check), and if the collection's encrypted fields changed
// meanwhile, fn runs again with the new ones.
func (s *Scope) withCipher(ctx context.Context, col store.CollectionName, fn func(fc *fieldCipher) error) error {
	c := s.core
	for attempt := 0; ; attempt++ {
		fields, err := c.encryptedFieldsOf(ctx, s.tenant.ID, col)
		if err != nil {
			return err
		}
		fc, err := c.cipherFor(ctx, s.tenant.ID, col, fields)
		if err != nil {
			return err
		}
		err = fn(fc)
		if !errors.Is(err, errFieldsChanged) || attempt == 2 {
			return err
		}
		c.encFields.Delete(encFieldsKey{s.tenant.ID, col})
	}
}

// check returns errFieldsChanged unless fc was made for the encrypted
// fields col has.
func (fc *fieldCipher) check(col *store.Collection) error {
	var fields []string
	if fc != nil {
		fields = fc.fields
	}
	if !slices.Equal(fields, col.EncryptedFields) {
		return errFieldsChanged
	}
	return nil
}

func (fc *fieldCipher) holds(field string) bool {
	return fc != nil && slices.Contains(fc.fields, field)
}

// appendFieldAAD appends to dst what binds a sealed field value to its
// place: tenant, collection, record and field.
func appendFieldAAD(dst []byte, tid tenant.ID, col store.CollectionName, id store.RecordID, field string) []byte {
	dst = append(dst, "bulkhead record field\x00"...)
	dst = append(append(dst, tid...), 0)
	dst = append(append(dst, col...), 0)
	dst = append(append(dst, id...), 0)
	return append(dst, field...)
}

// fieldAD returns the associated data of field of record id as sealAD and
// openAD take it, assembled in scratch.
func (fc *fieldCipher) fieldAD(scratch []byte, id store.RecordID, field string) []byte {
	return appendFieldAAD(append(scratch[:0], make([]byte, sealHead)...), fc.tid, fc.col, id, field)
}

// canonical is the form of a value the blind index is computed over:
// equal values under the filter language's rules (5 equals 5.0; a string
// never equals a number) have equal forms.
func canonical(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return append([]byte{'s'}, v...), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, invalid("", "a number is out of range")
		}
		return []byte("n" + strconv.FormatFloat(f, 'g', -1, 64)), nil
	case float64:
		return []byte("n" + strconv.FormatFloat(v, 'g', -1, 64)), nil
	case bool:
		if v {
			return []byte("b1"), nil
		}
		return []byte("b0"), nil
	}
	b, err := json.Marshal(v) // objects and arrays: no filter compares them
	return append([]byte{'j'}, b...), err
}

// blindIndex returns the stored stand-in of a value of field.
func (fc *fieldCipher) blindIndex(field string, v any) (string, error) {
	canon, err := canonical(v)
	if err != nil {
		return "", err
	}
	var buf [160]byte
	msg := append(append(append(append(buf[:0], fc.col...), 0), field...), 0)
	msg = append(msg, canon...)
	var mac [sha256.Size]byte
	sum := fc.keys.blindTo(mac[:0], msg)
	out := make([]byte, len(blindPrefix)+base64.RawURLEncoding.EncodedLen(len(sum)))
	copy(out, blindPrefix)
	base64.RawURLEncoding.Encode(out[len(blindPrefix):], sum)
	return string(out), nil
}

// seal replaces the encrypted fields of doc, a record's plaintext data
// that passed the schema, with their blind indexes and adds the sealed
// values under encKey. doc is changed in place.
func (fc *fieldCipher) seal(id store.RecordID, doc map[string]any) error {
	if fc == nil {
		return nil
	}
	if _, ok := doc[encKey]; ok {
		return invalid(encKey, fmt.Sprintf("%q is reserved in a collection with encrypted fields", encKey))
	}
	sealed := map[string]any{}
	var scratch [160]byte
	for _, f := range fc.fields {
		v, ok := doc[f]
		if !ok || v == nil {
			continue
		}
		pt, err := json.Marshal(v)
		if err != nil {
			return err
		}
		ct, err := fc.keys.sealAD(fc.fieldAD(scratch[:0], id, f), pt)
		if err != nil {
			return err
		}
		bi, err := fc.blindIndex(f, v)
		if err != nil {
			return err
		}
		doc[f] = bi
		sealed[f] = base64.StdEncoding.EncodeToString(ct)
	}
	if len(sealed) > 0 {
		doc[encKey] = sealed
	}
	return nil
}

// openDoc reverses seal on a stored document, in place.
func (fc *fieldCipher) openDoc(id store.RecordID, doc map[string]any) error {
	if fc == nil {
		return nil
	}
	sealed, _ := doc[encKey].(map[string]any)
	delete(doc, encKey)
	for _, f := range fc.fields {
		s, ok := sealed[f].(string)
		if !ok {
			if v, present := doc[f]; present && v != nil {
				return fmt.Errorf("record %s field %q: stored without its sealed value: %w", id, f, ErrSealBroken)
			}
			continue
		}
		ct, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("record %s field %q: %w", id, f, ErrSealBroken)
		}
		pt, err := fc.keys.openAD(nil, fc.fieldAD(nil, id, f), ct)
		if err != nil {
			return fmt.Errorf("record %s field %q: %w", id, f, err)
		}
		v, err := decodeValue(pt)
		if err != nil {
			return fmt.Errorf("record %s field %q: %w", id, f, ErrSealBroken)
		}
		doc[f] = v
	}
	return nil
}

// decodeValue parses one JSON value, numbers kept exact.
func decodeValue(b []byte) (any, error) {
	doc, err := decodeObject(append(append([]byte(`{"v":`), b...), '}'))
	if err != nil {
		return nil, err
	}
	return doc["v"], nil
}

// open returns r with its encrypted fields opened.
func (fc *fieldCipher) open(r *store.Record) (*store.Record, error) {
	if fc == nil {
		return r, nil
	}
	if data, ok, err := fc.openRaw(r.ID, r.Data); err != nil || ok {
		if err != nil {
			return nil, err
		}
		out := *r
		out.Data = data
		return &out, nil
	}
	doc, err := decodeObject(r.Data)
	if err != nil {
		return nil, err
	}
	if err := fc.openDoc(r.ID, doc); err != nil {
		return nil, err
	}
	data, err := encodeCompact(doc)
	if err != nil {
		return nil, err
	}
	out := *r
	out.Data = data
	return &out, nil
}

// versions returns the data key versions that seal the values of a stored
// document.
func sealedVersions(doc map[string]any) []int {
	sealed, _ := doc[encKey].(map[string]any)
	var vs []int
	for _, s := range sealed {
		str, _ := s.(string)
		ct, err := base64.StdEncoding.DecodeString(str)
		if err != nil {
			continue
		}
		if v, ok := sealedVersion(ct); ok && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	return vs
}

// encryptedFieldError refuses an operation an encrypted field cannot
// serve.
func encryptedFieldError(field string, pos int, detail string) *Error {
	return &Error{Kind: KindEncryptedField, Field: field, Pos: pos, Detail: detail}
}

// rewriteFilter replaces, in a filter, each equality comparison of an
// encrypted field with a value by a comparison of its blind index; any
// other comparison of an encrypted field is refused. null comparisons stay
// as they are: null is stored as null.
func (fc *fieldCipher) rewriteFilter(e filter.Expr) (filter.Expr, error) {
	if fc == nil || e == nil {
		return e, nil
	}
	switch e := e.(type) {
	case *filter.And:
		out := &filter.And{Terms: make([]filter.Expr, len(e.Terms))}
		for i, t := range e.Terms {
			var err error
			if out.Terms[i], err = fc.rewriteFilter(t); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *filter.Or:
		out := &filter.Or{Terms: make([]filter.Expr, len(e.Terms))}
		for i, t := range e.Terms {
			var err error
			if out.Terms[i], err = fc.rewriteFilter(t); err != nil {
				return nil, err
			}
		}
		return out, nil
	case *filter.Cmp:
		if !fc.holds(e.Field) {
			return e, nil
		}
		if e.Op != filter.Eq && e.Op != filter.Ne {
			return nil, encryptedFieldError("filter", e.Pos,
				fmt.Sprintf("%q is an encrypted field: filters compare it with = and != only", e.Field))
		}
		var v any
		switch e.Value.Kind {
		case filter.Null:
			return e, nil
		case filter.String:
			v = e.Value.Str
		case filter.Number:
			v = e.Value.Num
		case filter.Bool:
			v = e.Value.Bool
		default:
			return nil, encryptedFieldError("filter", e.Pos, fmt.Sprintf("%q is an encrypted field: compare it with a JSON literal", e.Field))
		}
		bi, err := fc.blindIndex(e.Field, v)
		if err != nil {
			return nil, err
		}
		out := *e
		out.Value = filter.Value{Kind: filter.String, Str: bi}
		return &out, nil
	}
	return e, nil
}

// validEncryptedFields checks a collection's encrypted_fields against the
// fields its schema can hold and its indexes, which may not name one.
func validEncryptedFields(names []string, fields fieldSet, indexes []IndexSpec) ([]string, error) {
	if names != nil && len(names) == 0 {
		return nil, nil
	}
	if len(names) > MaxEncryptedFields {
		return nil, invalid("encrypted_fields", fmt.Sprintf("a collection has at most %d encrypted fields", MaxEncryptedFields))
	}
	for i, f := range names {
		at := fmt.Sprintf("encrypted_fields[%d]", i)
		switch {
		case !filter.DataField.MatchString(f) || filter.IsSystem(f):
			return nil, invalid(at, "an encrypted field is a top-level data key matching ^[A-Za-z_][A-Za-z0-9_]{0,63}$, not id, created_at or updated_at")
		case slices.Contains(names[:i], f):
			return nil, invalid(at, "an encrypted field is named once")
		case !fields.holds(f):
			return nil, &Error{Kind: KindUnknownField, Field: at, Pos: -1, Detail: fmt.Sprintf("the collection's schema has no field %q", f)}
		}
	}
	for i, ix := range indexes {
		for j, f := range ix.Fields {
			o, err := filter.ParseOrder(f)
			if err == nil && slices.Contains(names, o.Field) {
				return nil, encryptedFieldError(fmt.Sprintf("indexes[%d].fields[%d]", i, j), -1,
					fmt.Sprintf("%q is an encrypted field: it cannot be indexed (equality filters on it use its blind index)", o.Field))
			}
		}
	}
	return slices.Clone(names), nil
}

// responseKeys returns the keys that seal stored idempotent responses of
// the collection, or nil for a collection without encrypted fields.
func (fc *fieldCipher) responseKeys() dataKeys {
	if fc == nil {
		return nil
	}
	return fc.keys
}
