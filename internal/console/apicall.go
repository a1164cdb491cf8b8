package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an answer of the API that is not a success: its status and
// the problem+json document's code, title and detail. Pages show it as
// "code: detail".
type APIError struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	// RequestID is the API's id of the request, which its log lines carry.
	RequestID string `json:"request_id"`
}

// Error implements error.
func (e *APIError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Detail)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Title)
}

// NotFound says whether the API answered 404.
func (e *APIError) NotFound() bool { return e.Status == http.StatusNotFound }

// call calls the API in process as the session's credential: method and
// path (with its query) as a client would send them, body marshalled to
// JSON when not nil, the answer unmarshalled into out when not nil. An
// answer of status 400 or above is returned as *APIError.
func (c *Console) call(r *http.Request, s *session, method, path string, body, out any) error {
	cred := ""
	if s != nil {
		cred = s.Credential
	}
	return c.callWith(r, cred, method, path, body, out)
}

// callWith is call with a credential of the caller's ("" for none).
func (c *Console) callWith(r *http.Request, credential, method, path string, body, out any) error {
	rec := c.do(r, credential, method, path, body)
	if rec.status >= 400 {
		return rec.problem()
	}
	if out == nil || rec.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
		return fmt.Errorf("console: %s %s answered what does not decode: %w", method, path, err)
	}
	return nil
}

// do makes the in-process request and records the answer. The request
// carries the browser's context, address (and X-Forwarded-For, which the
// API trusts only from its trusted proxies), Host and TLS state, so the
// API sees the client it would see over the network.
func (c *Console) do(r *http.Request, credential, method, path string, body any) *recorder {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return failed(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, rd)
	if err != nil {
		return failed(err)
	}
	req.RemoteAddr = r.RemoteAddr
	req.Host = r.Host
	req.TLS = r.TLS
	req.RequestURI = path
	if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
		req.Header["X-Forwarded-For"] = xff
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

// recorder is the in-memory ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	err    error // the request could not be made
}

// failed is the recorder of a call that could not be made.
func failed(err error) *recorder {
	return &recorder{header: http.Header{}, status: http.StatusInternalServerError, err: err}
}

// Header implements http.ResponseWriter.
func (w *recorder) Header() http.Header { return w.header }

// WriteHeader implements http.ResponseWriter.
func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// Write implements http.ResponseWriter.
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// problem returns the recorded failure as *APIError.
func (w *recorder) problem() *APIError {
	e := &APIError{Status: w.status}
	if w.err != nil {
		e.Code, e.Detail = "console_error", w.err.Error()
		return e
	}
	if strings.Contains(w.header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(w.body.Bytes(), e)
		e.Status = w.status
	}
	if e.Code == "" {
		e.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(w.status), " ", "_"))
	}
	if e.Title == "" {
		e.Title = http.StatusText(w.status)
	}
	if e.RequestID == "" {
		e.RequestID = w.header.Get("X-Request-Id")
	}
	return e
}
