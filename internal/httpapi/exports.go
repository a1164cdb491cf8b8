package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
)

// archiveTimeout bounds how long an archive may take to upload or download
// in full: far past the server's usual read and write timeouts, which
// would cut a big archive off.
const archiveTimeout = 2 * time.Hour

// jobAccepted is the answer of the routes that start a job.
type jobAccepted struct {
	Job *core.Job `json:"job"`
}

func (s *Server) startExport(w http.ResponseWriter, r *http.Request, rq *request) error {
	j, err := rq.scope.StartExport(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, jobAccepted{Job: j})
}

func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request, rq *request) error {
	d, err := rq.scope.OpenExport(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer d.Close()
	h := w.Header()
	h.Set("ETag", d.ETag)
	if inm := r.Header.Get("If-None-Match"); inm != "" && inm == d.ETag {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(d.Size, 10))
	h.Set("Content-Disposition", `attachment; filename="`+r.PathValue("id")+`.bhar"`)
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(archiveTimeout))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, d); err != nil {
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	return nil
}

func (s *Server) startRestore(w http.ResponseWriter, r *http.Request, rq *request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			return problem.New(http.StatusUnsupportedMediaType, problem.CodeUnsupportedMediaType,
				"send the archive with Content-Type: application/octet-stream")
		}
	}
	tooLarge := problem.New(http.StatusRequestEntityTooLarge, problem.CodePayloadTooLarge,
		fmt.Sprintf("the archive exceeds %d bytes", s.maxArchive))
	if r.ContentLength > s.maxArchive {
		w.Header().Set("Connection", "close")
		return tooLarge
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(archiveTimeout))
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, s.maxArchive)}
	j, err := rq.scope.StartRestore(r.Context(), r.URL.Query().Get("confirm"), body)
	var maxBytes *http.MaxBytesError
	switch {
	case errors.As(body.err, &maxBytes):
		return tooLarge
	case body.err != nil:
		return fmt.Errorf("%w: %w", errClientGone, body.err)
	case err != nil:
		return err
	}
	return writeJSON(w, http.StatusAccepted, jobAccepted{Job: j})
}

// bodyReader remembers the error reading a request body failed with, so
// that a failed upload can be told from a failed store.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
