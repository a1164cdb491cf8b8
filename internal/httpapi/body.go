package httpapi

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
)

// errClientGone means the client closed the connection or stopped sending
// before its body was complete: there is nobody to answer.
var errClientGone = errors.New("the client went away before its body was complete")

// readBody reads a JSON request body within the size and depth limits and
// within BodyTimeout. A declared Content-Length over the limit is refused at
// once, before a byte of the body is read.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !(mt == "application/json" || strings.HasSuffix(mt, "+json")) {
			return nil, problem.New(http.StatusUnsupportedMediaType, problem.CodeUnsupportedMediaType, "send JSON with Content-Type: application/json")
		}
	}
	tooLarge := problem.New(http.StatusRequestEntityTooLarge, problem.CodePayloadTooLarge,
		fmt.Sprintf("the body exceeds %d bytes", s.maxBody))
	if r.ContentLength > s.maxBody {
		// The body is never read: the connection cannot be reused.
		w.Header().Set("Connection", "close")
		return nil, tooLarge
	}
	rc := http.NewResponseController(w)
	// Not every ResponseWriter has deadlines (httptest's recorder has none).
	deadline := rc.SetReadDeadline(time.Now().Add(s.bodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxBody))
	if deadline {
		// Lift the body's deadline again: left in place, it would end the
		// connection's watch for a client that goes away mid-request.
		_ = rc.SetReadDeadline(time.Time{})
	}
	var maxBytes *http.MaxBytesError
	var netErr net.Error
	switch {
	case errors.As(err, &maxBytes):
		return nil, tooLarge
	case errors.As(err, &netErr) && netErr.Timeout():
		w.Header().Set("Connection", "close")
		return nil, problem.New(http.StatusRequestTimeout, problem.CodeRequestTimeout,
			fmt.Sprintf("the body did not arrive within %s", s.bodyTimeout))
	case err != nil:
		return nil, fmt.Errorf("%w: %w", errClientGone, err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "a JSON body is required")
	}
	if depth := jsonDepth(body); depth > s.maxDepth {
		return nil, problem.New(http.StatusBadRequest, problem.CodeJSONTooDeep,
			fmt.Sprintf("JSON may nest at most %d levels", s.maxDepth))
	}
	return body, nil
}

// jsonDepth returns how deeply arrays and objects nest in b, without
// parsing it; strings (and escapes within them) are skipped.
func jsonDepth(b []byte) int {
	depth, max := 0, 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > max {
				max = depth
			}
		case '}', ']':
			depth--
		}
	}
	return max
}

// decodeStrict decodes a control-plane body into v, a pointer to a struct,
// under the rules every such body shares (openapi.json states them, and its
// constraint test sends their boundaries):
//
//   - the body is one JSON object, in UTF-8;
//   - its members are v's JSON fields, spelled exactly; any other is 400
//     unknown_field;
//   - every field without omitempty is required, but those named in
//     optional;
//   - null is no field's value, but a json.RawMessage's (which takes any
//     JSON): a field is given or left out, never null;
//   - a string is never empty and obeys the text rule (core.CheckText);
//   - an integer field takes any JSON number that denotes an integer its Go
//     type holds: 1e3 and 1000.0 are 1000, while 1.5 and 1e19 are refused;
//   - a number field takes any JSON number a float64 holds.
//
// Each refusal is a 400 invalid_request (or unknown_field) naming the field
// by its path, such as name or indexes[0].fields[1]. What a field's value
// must be beyond its type — lengths, patterns, enums, ranges — core decides.
func decodeStrict(body []byte, v any, optional ...string) error {
	if !utf8.Valid(body) {
		return problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "the body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "the body holds more than one JSON value")
	}
	tree, err := checkWire(tree, reflect.TypeOf(v).Elem(), "", optional)
	if err != nil {
		return err
	}
	// The checked tree holds only v's fields, with integers spelled as
	// encoding/json reads them.
	checked, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("re-encode a checked body: %w", err)
	}
	if err := json.Unmarshal(checked, v); err != nil {
		return fmt.Errorf("decode a checked body: %w", err)
	}
	return nil
}

var rawMessageType = reflect.TypeFor[json.RawMessage]()

// checkWire checks val, decoded with UseNumber, against Go type t under
// decodeStrict's rules, and returns it with integers in plain form. path
// names val in refusals; "" is the body.
func checkWire(val any, t reflect.Type, path string, optional []string) (any, error) {
	if t == rawMessageType {
		return val, nil
	}
	name := cmp.Or(path, "body")
	for t.Kind() == reflect.Pointer {
		t = t.Elem() // a pointer marks a field that may be left out, not one that may be null
	}
	want := wireType(t)
	if val == nil {
		return nil, fieldProblem(name, name+" must not be null", "expected "+want)
	}
	wrongType := fieldProblem(name, name+" has the wrong type", "expected "+want)
	switch t.Kind() {
	case reflect.String:
		s, ok := val.(string)
		if !ok {
			return nil, wrongType
		}
		if s == "" {
			return nil, fieldProblem(name, name+" must not be empty", "must not be empty")
		}
		return s, core.CheckText(name, s)
	case reflect.Bool:
		if _, ok := val.(bool); !ok {
			return nil, wrongType
		}
		return val, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		lit, ok := val.(json.Number)
		if !ok {
			return nil, wrongType
		}
		n, why := wireInteger(string(lit), t.Bits())
		if why != "" {
			return nil, fieldProblem(name, name+" "+why, why)
		}
		return json.Number(strconv.FormatInt(n, 10)), nil
	case reflect.Float32, reflect.Float64:
		lit, ok := val.(json.Number)
		if !ok {
			return nil, wrongType
		}
		if _, err := strconv.ParseFloat(string(lit), t.Bits()); err != nil {
			const why = "must be a finite number a 64-bit float holds"
			return nil, fieldProblem(name, name+" "+why, why)
		}
		return val, nil
	case reflect.Slice:
		items, ok := val.([]any)
		if !ok {
			return nil, wrongType
		}
		for i, item := range items {
			var err error
			if items[i], err = checkWire(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), nil); err != nil {
				return nil, err
			}
		}
		return items, nil
	case reflect.Struct:
		obj, ok := val.(map[string]any)
		if !ok {
			return nil, wrongType
		}
		fields := wireFieldsOf(t)
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			at := k
			if path != "" {
				at = path + "." + k
			}
			f, ok := fields[k]
			if !ok {
				return nil, problem.New(http.StatusBadRequest, problem.CodeUnknownField, "unknown field "+strconv.Quote(at)).
					WithErrors(problem.FieldError{Field: at, Message: "unknown field"})
			}
			var err error
			if obj[k], err = checkWire(obj[k], f.typ, at, nil); err != nil {
				return nil, err
			}
		}
		for _, k := range slices.Sorted(maps.Keys(fields)) {
			if _, ok := obj[k]; !ok && fields[k].required && !slices.Contains(optional, k) {
				at := k
				if path != "" {
					at = path + "." + k
				}
				return nil, fieldProblem(at, at+" is required", "is required")
			}
		}
		return obj, nil
	}
	return nil, fmt.Errorf("decodeStrict: no wire rule for %s at %s", t, name)
}

// wireInteger returns the integer the JSON number lit denotes, if it denotes
// one that a signed integer of bits bits holds, or why not. It works on the
// digits, so that no exponent, however large, costs more than its text.
func wireInteger(lit string, bits int) (int64, string) {
	outOfRange := fmt.Sprintf("must be an integer from %d to %d", int64(-1)<<(bits-1), int64(1)<<(bits-1)-1)
	sign, unsigned := "", lit
	if rest, ok := strings.CutPrefix(lit, "-"); ok {
		sign, unsigned = "-", rest
	}
	mant, exp, _ := strings.Cut(strings.ToLower(unsigned), "e")
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return 0, ""
	}
	// The value is digits × 10^shift.
	shift := -len(frac)
	if exp != "" {
		e, err := strconv.Atoi(exp)
		switch {
		case (err != nil || e < -1<<40) && strings.HasPrefix(exp, "-"):
			return 0, "must be an integer"
		case err != nil || e > 1<<40:
			return 0, outOfRange
		}
		shift += e
	}
	trimmed := strings.TrimRight(digits, "0")
	shift += len(digits) - len(trimmed)
	if shift < 0 {
		return 0, "must be an integer"
	}
	if len(trimmed)+shift > 19 {
		return 0, outOfRange
	}
	n, err := strconv.ParseInt(sign+trimmed+strings.Repeat("0", shift), 10, bits)
	if err != nil {
		return 0, outOfRange
	}
	return n, ""
}

// wireField is a JSON field of a body struct.
type wireField struct {
	typ      reflect.Type
	required bool // no omitempty
}

var wireFields sync.Map // reflect.Type -> map[string]wireField

// wireFieldsOf returns the JSON fields of struct type t, embedded structs
// flattened as encoding/json does.
func wireFieldsOf(t reflect.Type) map[string]wireField {
	if m, ok := wireFields.Load(t); ok {
		return m.(map[string]wireField)
	}
	m := map[string]wireField{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		m[cmp.Or(name, f.Name)] = wireField{typ: f.Type, required: !slices.Contains(strings.Split(opts, ","), "omitempty")}
	}
	wireFields.Store(t, m)
	return m
}

// wireType names the JSON type of Go type t, as refusals say it.
func wireType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "an array"
	}
	return "an object"
}

// fieldProblem is a 400 invalid_request about one field.
func fieldProblem(field, detail, message string) *problem.Details {
	return problem.New(http.StatusBadRequest, problem.CodeInvalidRequest, detail).
		WithErrors(problem.FieldError{Field: field, Message: message})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var body []byte
	var err error
	switch v := v.(type) {
	case *core.Record:
		body = v.AppendJSON(make([]byte, 0, 160+len(v.Data)))
	case *core.RecordList:
		body = core.AppendRecordList(make([]byte, 0, 1024), v)
	default:
		if body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
	}
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
	return nil
}

// idempotency reads the Idempotency-Key header of a POST. The key is
// scoped to the credential that sent it, and bound to the request's method,
// path and body. A header that is present is checked even when empty: an
// empty key is no key, and a 400.
func idempotency(r *http.Request, rq *request, body []byte) (*core.Idempotency, error) {
	vals, given := r.Header["Idempotency-Key"]
	if !given {
		return nil, nil
	}
	key := vals[0]
	if key == "" || len(key) > 255 || strings.IndexFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		const msg = "must be 1 to 255 visible ASCII characters"
		return nil, fieldProblem("Idempotency-Key", "Idempotency-Key "+msg, msg)
	}
	h := sha256.New()
	for _, part := range []string{r.Method, r.URL.Path} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(body)
	actor := ""
	if rq.principal != nil {
		actor = rq.principal.Actor()
	}
	return &core.Idempotency{Key: actor + " " + key, RequestHash: h.Sum(nil)}, nil
}

// noIdempotency refuses Idempotency-Key, even empty, where a replay cannot
// be offered (responses carrying secrets are never stored).
func noIdempotency(r *http.Request) error {
	if _, given := r.Header["Idempotency-Key"]; given {
		return problem.New(http.StatusBadRequest, problem.CodeUnsupported, "Idempotency-Key is not supported on this route").
			WithErrors(problem.FieldError{Field: "Idempotency-Key", Message: "not supported on this route"})
	}
	return nil
}

func replayed(w http.ResponseWriter, idem *core.Idempotency) {
	if idem != nil && idem.Replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
}

// etag is a record version as a strong entity tag.
func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch returns the version an If-Match header requires: 0 when the
// header is absent or "*", which require only that the record exists. A
// value that cannot be one of our ETags can never match.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" || v == "*" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(strings.Trim(v, `"`), 10, 64); err == nil && n > 0 && strings.HasPrefix(v, `"`) && strings.HasSuffix(v, `"`) {
		return n, nil
	}
	return 0, problem.New(http.StatusPreconditionFailed, problem.CodePreconditionFailed, "If-Match does not match the resource's ETag")
}

// Query parameters that are empty (limit=) are taken as absent, as
// openapi.json says of each.

// queryInt reads an optional integer query parameter: a decimal integer
// from min to max. Absent or empty, it is def.
func queryInt(r *http.Request, name string, def, min, max int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < min || n > max {
		msg := fmt.Sprintf("must be an integer from %d to %d", min, max)
		return 0, fieldProblem(name, name+" "+msg, msg)
	}
	return n, nil
}

// queryLimit reads a listing's page size: 1 to core.MaxLimit, and
// core.DefaultLimit when absent or empty. 0 is refused like any other
// number out of range.
func queryLimit(r *http.Request) (int, error) {
	n, err := queryInt(r, "limit", core.DefaultLimit, 1, core.MaxLimit)
	return int(n), err
}

// queryBool reads a boolean query parameter: "true" or "false"; absent is
// false.
func queryBool(r *http.Request, name string) (bool, error) {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	}
	return false, problem.New(http.StatusBadRequest, problem.CodeInvalidRequest, name+` must be "true" or "false"`).
		WithErrors(problem.FieldError{Field: name, Message: `must be "true" or "false"`})
}
