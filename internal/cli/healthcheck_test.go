package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestProbeURL(t *testing.T) {
	for _, c := range []struct {
		addr  string
		https bool
		want  string
	}{
		{"0.0.0.0:8080", false, "http://127.0.0.1:8080/healthz"},
		{":9000", true, "https://127.0.0.1:9000/healthz"},
		{"[::]:8080", false, "http://127.0.0.1:8080/healthz"},
		{"10.1.2.3:8443", true, "https://10.1.2.3:8443/healthz"},
		{"[::1]:8080", false, "http://[::1]:8080/healthz"},
		{"localhost:8080", false, "http://localhost:8080/healthz"},
	} {
		if got, err := probeURL(c.addr, c.https); err != nil || got != c.want {
			t.Errorf("probeURL(%q, %v) = %q, %v; want %q", c.addr, c.https, got, err, c.want)
		}
	}
	if _, err := probeURL("8080", false); err == nil {
		t.Error(`probeURL("8080") = no error`)
	}
}

// healthcheck exits 0 on a 200 only: a 503, a server that is down and a
// plain HTTP server probed over HTTPS all exit 1.
func TestHealthcheck(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	t.Setenv("BULKHEAD_ADDR", addr)
	t.Setenv("BULKHEAD_TLS_CERT", "")
	if code, out, errOut := run(t, t.TempDir(), "healthcheck"); code != 0 || out != "" {
		t.Errorf("healthcheck of a healthy server = exit %d, %q, %q", code, out, errOut)
	}
	mustRun(t, t.TempDir(), "healthcheck", "--url", srv.URL+"/healthz")
	failsWith(t, t.TempDir(), "404", "healthcheck", "--url", srv.URL+"/nothing")
	status.Store(http.StatusServiceUnavailable)
	failsWith(t, t.TempDir(), "503", "healthcheck")
	status.Store(http.StatusOK)
	t.Setenv("BULKHEAD_TLS_CERT", "cert.pem")
	failsWith(t, t.TempDir(), "unhealthy", "healthcheck")
	t.Setenv("BULKHEAD_TLS_CERT", "")
	srv.Close()
	failsWith(t, t.TempDir(), "unhealthy", "healthcheck")
}
