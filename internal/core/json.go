package core

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// decodeObject parses a record body or merge patch: one JSON object, valid
// UTF-8, numbers kept exact (json.Number) under checkNumber's rule, keys and
// strings under the text rule (see CheckText): no NUL characters, which
// PostgreSQL's jsonb cannot hold, so that both stores accept the same
// documents.
func decodeObject(body []byte) (map[string]any, error) {
	if !utf8.Valid(body) {
		return nil, refuse(KindInvalidJSON, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, refuse(KindInvalidJSON, "the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, refuse(KindInvalidJSON, "the body holds more than one JSON value")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, refuse(KindInvalid, "the body must be a JSON object")
	}
	if err := checkValue(obj, ""); err != nil {
		return nil, err
	}
	return obj, nil
}

func checkValue(v any, path string) error {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if err := CheckText(path+"/"+k, k); err != nil {
				return err
			}
			if err := checkValue(e, path+"/"+k); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range v {
			if err := checkValue(e, path+"/"+strconv.Itoa(i)); err != nil {
				return err
			}
		}
	case string:
		if err := CheckText(path, v); err != nil {
			return err
		}
	case json.Number:
		if msg := checkNumber(string(v)); msg != "" {
			return invalid(path, msg)
		}
	}
	return nil
}

// MaxNumberScale is the most digits a number may have after the decimal
// point once its exponent is applied (1.25e-2 has 4), and the largest
// exponent it may be written with: PostgreSQL's numeric, through which the
// PostgreSQL store's filters read records, holds no more.
const MaxNumberScale = 16383

// MaxNumberLen is the longest a number may be written, in bytes: room for
// every double and for integers and decimals far beyond, while the three
// parsers a number meets (Go's, SQLite's and PostgreSQL's) agree on it.
const MaxNumberLen = 100

// checkNumber applies the one number rule of records, the same on every
// store (RFC 7493, I-JSON): a number must be a finite IEEE-754 double — at
// most 1.7976931348623157e308 in magnitude, and not so close to zero that
// it rounds to 0 unless it is 0 — written in at most MaxNumberLen bytes, with
// an exponent of at most MaxNumberScale in magnitude and at most
// MaxNumberScale digits after the decimal point once the exponent is
// applied. Its text is kept as written, so integers beyond 2^53 keep every
// digit; filters and orders compare numbers as doubles. It returns why lit
// breaks the rule, or "".
func checkNumber(lit string) string {
	if len(lit) > MaxNumberLen {
		return "numbers may be written in at most 100 characters"
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return "numbers must be finite 64-bit floats, at most 1.7976931348623157e308 in magnitude"
	}
	mant, exp, _ := strings.Cut(strings.ToLower(strings.TrimPrefix(lit, "-")), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	if f == 0 && strings.Trim(whole+frac, "0") != "" {
		return "numbers must be 0 or at least 4.9e-324 in magnitude: this one rounds to 0 as a 64-bit float"
	}
	scale := len(frac)
	if exp != "" {
		e, err := strconv.Atoi(exp)
		if err != nil || e < -MaxNumberScale || e > MaxNumberScale {
			return "numbers may be written with an exponent of at most 16383 in magnitude"
		}
		scale -= e
	}
	if scale > MaxNumberScale {
		return "numbers may have at most 16383 digits after the decimal point, counting the exponent"
	}
	return ""
}

// encodeCompact renders a document in compact form with sorted keys, the
// form records are stored in.
func encodeCompact(doc map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// mergePatch applies an RFC 7386 JSON merge patch to target in place.
func mergePatch(target, patch map[string]any) {
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(target, k)
		case map[string]any:
			sub, ok := target[k].(map[string]any)
			if !ok {
				sub = map[string]any{}
			}
			mergePatch(sub, v)
			target[k] = sub
		default:
			target[k] = v
		}
	}
}

// maxSchemaBytes bounds a collection's JSON Schema.
const maxSchemaBytes = 64 << 10

// compactSchema returns nil for an absent or null schema and the schema's
// compact form otherwise. Its keys and strings obey the text rule, as a
// record's do: no record could match a NUL the schema names.
func compactSchema(raw []byte) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	if len(raw) > maxSchemaBytes {
		return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema exceeds 64 KiB", Pos: -1}
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema is not valid JSON", Pos: -1}
	}
	if !utf8.Valid(raw) {
		return nil, invalid("schema", "schema must be valid UTF-8")
	}
	// JSON text can hold NUL only escaped; an escaped backslash before
	// "u0000" is no NUL, so a match is checked on the decoded schema.
	if bytes.Contains(raw, []byte(`\u0000`)) {
		var doc any
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema is not valid JSON", Pos: -1}
		}
		if at := textFault(doc, ""); at != "" {
			return nil, invalid("schema", "schema must not contain the NUL character (U+0000), as at "+strconv.Quote(at))
		}
	}
	return buf.Bytes(), nil
}

// textFault returns the JSON pointer of the first key or string in v that
// holds a NUL, or "" if none does; the root itself is "/".
func textFault(v any, path string) string {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.IndexByte(k, 0) >= 0 {
				return path + "/" + k
			}
			if at := textFault(e, path+"/"+k); at != "" {
				return at
			}
		}
	case []any:
		for i, e := range v {
			if at := textFault(e, path+"/"+strconv.Itoa(i)); at != "" {
				return at
			}
		}
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return cmp.Or(path, "/")
		}
	}
	return ""
}

// noLoader refuses every external reference, so a schema can neither read
// the server's files nor make it fetch URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, errors.New("external references are not allowed")
}

const schemaURL = "urn:bulkhead:collection-schema"

// compileSchema compiles a collection schema; errors are 400 invalid_schema.
func compileSchema(schema []byte) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema is not valid JSON", Pos: -1}
	}
	comp := jsonschema.NewCompiler()
	comp.UseLoader(noLoader{})
	comp.DefaultDraft(jsonschema.Draft2020)
	if err := comp.AddResource(schemaURL, doc); err != nil {
		return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema is not valid", Pos: -1}
	}
	sch, err := comp.Compile(schemaURL)
	if err != nil {
		msg := err.Error()
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
		return nil, &Error{Kind: KindInvalidSchema, Field: "schema", Detail: "the schema does not compile: " + msg, Pos: -1}
	}
	return sch, nil
}

// validateAgainst returns a 422 schema_violation listing up to 20 failures.
func validateAgainst(sch *jsonschema.Schema, doc map[string]any) error {
	err := sch.Validate(doc)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("validate record: %w", err)
	}
	e := refuse(KindSchemaViolation, "the record does not match the collection's schema")
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil || len(e.Violations) == 20 {
			continue
		}
		field := u.InstanceLocation
		if field == "" {
			field = "/"
		}
		e.Violations = append(e.Violations, Violation{Field: field, Message: u.Error.String()})
	}
	return e
}

// schemaCache keeps compiled schemas per tenant and collection, keyed by the
// collection's UpdatedAt so that a replaced schema is recompiled.
type schemaCache struct {
	mu sync.Mutex
	m  map[schemaKey]cachedSchema
}

type schemaKey struct {
	tenant     tenant.ID
	collection store.CollectionName
}

type cachedSchema struct {
	updatedAt time.Time
	schema    *jsonschema.Schema
	fields    fieldSet
}

// get returns the compiled schema of col, which must have one.
func (sc *schemaCache) get(tid tenant.ID, col *store.Collection) (*jsonschema.Schema, error) {
	cs, err := sc.lookup(tid, col)
	return cs.schema, err
}

// fields returns the fields col's records can hold.
func (sc *schemaCache) fields(tid tenant.ID, col *store.Collection) (fieldSet, error) {
	if col.Schema == nil {
		return openFields, nil
	}
	cs, err := sc.lookup(tid, col)
	return cs.fields, err
}

func (sc *schemaCache) lookup(tid tenant.ID, col *store.Collection) (cachedSchema, error) {
	key := schemaKey{tid, col.Name}
	sc.mu.Lock()
	cs, ok := sc.m[key]
	sc.mu.Unlock()
	if ok && cs.updatedAt.Equal(col.UpdatedAt) {
		return cs, nil
	}
	sch, err := compileSchema(col.Schema)
	if err != nil {
		return cachedSchema{}, fmt.Errorf("stored schema of %s: %w", col.Name, err)
	}
	cs = cachedSchema{updatedAt: col.UpdatedAt, schema: sch, fields: fieldsOf(col.Schema)}
	sc.mu.Lock()
	if sc.m == nil || len(sc.m) > 10_000 {
		sc.m = map[schemaKey]cachedSchema{}
	}
	sc.m[key] = cs
	sc.mu.Unlock()
	return cs, nil
}
