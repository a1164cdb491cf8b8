package breaker

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// One tenant's failing identity provider opens its own host's breaker,
// never another's; the kind's reported state is the aggregate, and the
// host's breaker closes once the host answers again.
func TestHostsOneBreakerPerHost(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	var hitsA atomic.Int64
	a := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hitsA.Add(1)
		if broken.Load() {
			http.Error(w, "down", http.StatusBadGateway)
			return
		}
		w.Write([]byte("{}"))
	}))
	defer a.Close()
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	defer b.Close()
	var rep states
	hosts := NewHosts("oidc", Settings{Failures: 3, Timeout: 50 * time.Millisecond, Report: &rep, Logger: slog.New(slog.DiscardHandler)})
	client := &http.Client{Transport: hosts.Transport(nil)}
	get := func(u string) (int, error) {
		res, err := client.Get(u + "/.well-known/openid-configuration")
		if err != nil {
			return 0, err
		}
		res.Body.Close()
		return res.StatusCode, nil
	}
	hostOf := func(u string) string { p, _ := url.Parse(u); return p.Host }

	for range 3 {
		if st, err := get(a.URL); err != nil || st != 502 {
			t.Fatalf("broken host: %d, %v; want its 502", st, err)
		}
		if st, err := get(b.URL); err != nil || st != 200 {
			t.Fatalf("healthy host: %d, %v; want 200", st, err)
		}
	}
	if got := hosts.State(hostOf(a.URL)); got != Open {
		t.Fatalf("broken host's breaker %s after 3 failures, want open", got)
	}
	if got := hosts.State(hostOf(b.URL)); got != Closed {
		t.Errorf("healthy host's breaker %s, want closed", got)
	}
	before := hitsA.Load()
	_, err := get(a.URL)
	var open *OpenError
	if !errors.As(err, &open) || hitsA.Load() != before {
		t.Errorf("a call to the open host: %v (host hit %d more times), want an *OpenError without reaching it", err, hitsA.Load()-before)
	}
	if st, err := get(b.URL); err != nil || st != 200 {
		t.Errorf("the other host while the first is open: %d, %v; want 200", st, err)
	}
	broken.Store(false)
	waitFor(t, "the host's breaker to half-open", func() bool { return hosts.State(hostOf(a.URL)) == HalfOpen })
	if st, err := get(a.URL); err != nil || st != 200 {
		t.Fatalf("probe of the mended host: %d, %v; want 200", st, err)
	}
	if got := hosts.State(hostOf(a.URL)); got != Closed {
		t.Errorf("mended host's breaker %s after a good probe, want closed", got)
	}
	if got, want := rep.of("oidc"), []string{Closed, Open, HalfOpen, Closed}; len(got) != len(want) || got[1] != Open || got[len(got)-1] != Closed {
		t.Errorf("reported %v, want %v (the aggregate, under the kind's name only)", got, want)
	}
	if len(rep.got) != 1 {
		t.Errorf("reported names %v, want only oidc: no host is named", rep.got)
	}
}
