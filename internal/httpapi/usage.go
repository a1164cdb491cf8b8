package httpapi

import (
	"encoding/csv"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
)

// usage answers GET …/usage. Without from and to, and unless CSV is asked
// for, it is the tenant's current counters against its plan. With either,
// or with Accept: text/csv (which defaults the range to the last
// core.DefaultUsageRange), it is the tenant's usage per hour, as JSON or
// as CSV for billing.
func (s *Server) usage(w http.ResponseWriter, r *http.Request, rq *request) error {
	w.Header().Add("Vary", "Accept")
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	asCSV := wantsCSV(r.Header.Values("Accept"))
	if from == "" && to == "" && !asCSV {
		u, err := rq.scope.Usage(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, http.StatusOK, u)
	}
	h, err := rq.scope.UsageHistory(r.Context(), from, to)
	if err != nil {
		return err
	}
	if !asCSV {
		return writeJSON(w, http.StatusOK, h)
	}
	return writeUsageCSV(w, h)
}

// usageCSVHeader is the first line of a usage CSV: its columns.
var usageCSVHeader = []string{"hour", "records", "bytes", "requests", "job_ms"}

// writeUsageCSV writes h as CSV (RFC 4180): a header line, then one line
// per hour, the hour in RFC 3339 UTC.
func writeUsageCSV(w http.ResponseWriter, h *core.UsageHistory) error {
	hd := w.Header()
	hd.Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(usageCSVHeader); err != nil {
		return nil // the client is gone; the status is written
	}
	row := make([]string, len(usageCSVHeader))
	for _, u := range h.Items {
		row[0] = u.Hour.UTC().Format(time.RFC3339)
		row[1] = strconv.FormatInt(u.Records, 10)
		row[2] = strconv.FormatInt(u.Bytes, 10)
		row[3] = strconv.FormatInt(u.Requests, 10)
		row[4] = strconv.FormatInt(u.JobMS, 10)
		if err := cw.Write(row); err != nil {
			return nil
		}
	}
	cw.Flush()
	return nil
}

// wantsCSV reports whether the Accept header values prefer text/csv to
// application/json: text/csv has a higher quality than JSON (named, or
// matched by application/* or */*). Without an Accept header, or with
// neither, the answer is JSON.
func wantsCSV(accept []string) bool {
	csvQ, jsonQ := -1.0, -1.0
	for _, v := range accept {
		for _, part := range strings.Split(v, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if s, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(s, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			switch mt {
			case "text/csv", "text/*":
				csvQ = max(csvQ, q)
			case "application/json", "application/*", "*/*":
				jsonQ = max(jsonQ, q)
			}
		}
	}
	return csvQ > 0 && csvQ > jsonQ
}
