package bulkhead

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn, and
// its key, to certFile and keyFile, and returns the certificate.
func writeCert(t *testing.T, certFile, keyFile, cn string) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// served connects to addr and returns the common name of the certificate
// the server presents, and the negotiated TLS version.
func served(t *testing.T, addr string) (string, uint16) {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // the test checks the certificate itself
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	st := conn.ConnectionState()
	return st.PeerCertificates[0].Subject.CommonName, st.Version
}

// serveTLS starts an App with TLS on a loopback listener.
func serveTLS(t *testing.T, logs io.Writer) (app *App, addr, certFile, keyFile string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	app, err := New(Config{DataDir: filepath.Join(dir, "data"), TLSCertFile: certFile, TLSKeyFile: keyFile,
		AdminToken: "bho_tls-test-operator-token-0123456789", Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		app.Close()
	})
	return app, ln.Addr().String(), certFile, keyFile
}

func TestTLSServesAndReloads(t *testing.T) {
	var logs syncBuffer
	app, addr, certFile, keyFile := serveTLS(t, &logs)

	cn, version := served(t, addr)
	if cn != "first" {
		t.Fatalf("served certificate %q, want first", cn)
	}
	if version < tls.VersionTLS12 {
		t.Errorf("negotiated TLS version %#x, want 1.2 or later", version)
	}
	// TLS 1.1 and below are refused.
	if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	// HTTPS answers, with HSTS.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	res, err := client.Get("https://" + addr + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Strict-Transport-Security") == "" {
		t.Errorf("GET /healthz over TLS = %d, HSTS %q", res.StatusCode, res.Header.Get("Strict-Transport-Security"))
	}
	// Plain HTTP on the TLS port gets nothing useful.
	if res, err := http.Get("http://" + addr + "/healthz"); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Error("plain HTTP was served on the TLS listener")
		}
	}

	// A renewed pair replaces it on reload (what SIGHUP does).
	writeCert(t, certFile, keyFile, "second")
	if err := app.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if cn, _ := served(t, addr); cn != "second" {
		t.Errorf("after reload, served %q, want second", cn)
	}

	// A broken pair (a key of another certificate) keeps the old one and
	// logs why.
	other := t.TempDir()
	writeCert(t, filepath.Join(other, "c.pem"), filepath.Join(other, "k.pem"), "third")
	newCert, _ := os.ReadFile(filepath.Join(other, "c.pem"))
	os.WriteFile(certFile, newCert, 0o600) // keyFile is still second's
	if err := app.Reload(); err == nil {
		t.Error("Reload of a mismatched pair succeeded")
	}
	if cn, _ := served(t, addr); cn != "second" {
		t.Errorf("after a failed reload, served %q, want second", cn)
	}
	if !strings.Contains(logs.String(), "TLS certificate not reloaded") {
		t.Errorf("the failed reload was not logged: %s", logs.String())
	}
	// A missing file likewise.
	os.Remove(certFile)
	if err := app.Reload(); err == nil {
		t.Error("Reload of a missing certificate succeeded")
	}
	if cn, _ := served(t, addr); cn != "second" {
		t.Errorf("after a failed reload, served %q, want second", cn)
	}
}

func TestTLSConfigRequiresBoth(t *testing.T) {
	if _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: "x.pem", Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "TLSKeyFile") {
		t.Errorf("New with a certificate and no key = %v, want an error naming TLSKeyFile", err)
	}
	if _, err := New(Config{DataDir: t.TempDir(), TLSCertFile: "missing.pem", TLSKeyFile: "missing.key",
		Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Error("New with missing TLS files succeeded")
	}
}

// No log line — the request log, the server's error log — ever holds a
// credential, whether it was sent in the Authorization header or (refused)
// in the query string.
func TestCredentialsNeverLogged(t *testing.T) {
	var logs syncBuffer
	_, addr, _, _ := serveTLS(t, &logs)
	const admin = "bho_tls-test-operator-token-0123456789"
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	_, apiKey, err := auth.NewAPIKey("live", tenant.NewID())
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{admin, apiKey, "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}
	send := func(method, target, auth string) int {
		req, _ := http.NewRequest(method, target, nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	base := "https://" + addr
	for _, s := range secrets {
		send("GET", base+"/v1/tenants", s)
		send("GET", base+"/v1/tenants/acme/collections", s)
		for _, q := range []string{"access_token", "api_key", "x"} {
			if got := send("GET", base+"/v1/tenants?"+q+"="+url.QueryEscape(s), ""); got != 400 {
				t.Errorf("credential in query %s: status %d, want 400", q, got)
			}
		}
	}
	// The server's own error log (bad handshakes, malformed requests).
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Write([]byte("GET /?access_token=" + admin + " HTTP/1.1\r\nHost: x\r\n\r\n"))
		io.ReadAll(c)
		c.Close()
	}
	if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
		c.Write([]byte("GET /?access_token=" + admin + " HTTP/9.9\r\nAuthorization: Bearer " + admin + "\r\n\r\n"))
		io.ReadAll(c)
		c.Close()
	}
	time.Sleep(100 * time.Millisecond) // the error log is written after the connection closes
	out := logs.String()
	if !strings.Contains(out, `"status":400`) {
		t.Fatalf("no request was logged: %s", out)
	}
	for _, s := range secrets {
		if strings.Contains(out, s) || strings.Contains(out, url.QueryEscape(s)) {
			t.Errorf("a credential appears in the logs:\n%s", out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
