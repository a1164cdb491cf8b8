package httpapi

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

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

// decodeStrict decodes a control-plane body into v: unknown fields and
// trailing data are errors.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			field := cmp.Or(typeErr.Field, "body") // "" when the body itself has the wrong type
			return problem.New(http.StatusBadRequest, problem.CodeInvalidRequest, field+" has the wrong type").
				WithErrors(problem.FieldError{Field: field, Message: "expected " + jsonType(typeErr.Type.Kind().String())})
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			field, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return problem.New(http.StatusBadRequest, problem.CodeUnknownField, "unknown field "+strconv.Quote(field)).
				WithErrors(problem.FieldError{Field: field, Message: "unknown field"})
		}
		return problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "the body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return problem.New(http.StatusBadRequest, problem.CodeInvalidJSON, "the body holds more than one JSON value")
	}
	return nil
}

func jsonType(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "a number"
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
// path and body.
func idempotency(r *http.Request, rq *request, body []byte) (*core.Idempotency, error) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		return nil, nil
	}
	if len(key) > 255 || strings.IndexFunc(key, func(c rune) bool { return c < 0x21 || c > 0x7e }) >= 0 {
		return nil, problem.New(http.StatusBadRequest, problem.CodeInvalidRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters")
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

// noIdempotency refuses Idempotency-Key where a replay cannot be offered
// (responses carrying secrets are never stored).
func noIdempotency(r *http.Request) error {
	if r.Header.Get("Idempotency-Key") != "" {
		return problem.New(http.StatusBadRequest, problem.CodeUnsupported, "Idempotency-Key is not supported on this route")
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

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, problem.New(http.StatusBadRequest, problem.CodeInvalidRequest, name+" must be an integer").
			WithErrors(problem.FieldError{Field: name, Message: "must be an integer"})
	}
	return n, nil
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
