package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestValidateIssuer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		issuer string
		ok     bool
	}{
		{"https://idp.example.com", true},
		{"https://idp.example.com/realms/acme", true},
		{"https://idp.example.com:8443/", true},
		{"http://127.0.0.1:5556", true},
		{"http://127.9.9.9", true},
		{"http://[::1]:8080/x", true},
		{"http://localhost:8080", true},
		{"http://idp.example.com", false},
		{"http://10.0.0.1", false},
		{"http://localhost.example.com", false},
		{"ftp://idp.example.com", false},
		{"idp.example.com", false},
		{"/realms/acme", false},
		{"https://", false},
		{"https://user:pw@idp.example.com", false},
		{"https://idp.example.com/?a=b", false},
		{"https://idp.example.com/?", false},
		{"https://idp.example.com/#frag", false},
		{"https://idp.example.com/#", false},
		{"https://idp example.com", false},
		{"https://idp.example.com/" + strings.Repeat("a", MaxIssuer), false},
	} {
		if err := ValidateIssuer(tc.issuer); (err == nil) != tc.ok {
			t.Errorf("ValidateIssuer(%q) = %v, want ok %v", tc.issuer, err, tc.ok)
		}
	}
}

func TestStateSealer(t *testing.T) {
	t.Parallel()
	secret := []byte(strings.Repeat("k", 32))
	s, err := NewStateSealer(secret)
	if err != nil {
		t.Fatal(err)
	}
	const a, b = tenant.ID("01a24503-b23e-7753-a5fb-249cc8cb377a"), tenant.ID("01a24503-b23e-7753-a5fb-249cc8cb377b")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cookie, hash := NewOIDCBinding()
	st := &OIDCState{ID: RandomToken(), Tenant: a, Nonce: RandomToken(), Verifier: "verifier-" + RandomToken(), Binding: hash,
		RedirectURI: "https://api.example.com/v1/tenants/acme/auth/oidc/callback", Expires: now.Add(OIDCStateTTL)}
	sealed, err := s.Seal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, secretPart := range []string{st.Nonce, st.Verifier, string(a), "acme"} {
		if strings.Contains(sealed, secretPart) {
			t.Errorf("sealed state shows %q", secretPart)
		}
	}
	got, err := s.Open(a, sealed, cookie, now)
	if err != nil || got.Nonce != st.Nonce || got.Verifier != st.Verifier || got.ID != st.ID || got.RedirectURI != st.RedirectURI {
		t.Fatalf("Open = %+v, %v; want the state sealed", got, err)
	}
	other, _ := NewStateSealer([]byte(strings.Repeat("x", 32)))
	otherCookie, _ := NewOIDCBinding()
	flipped := []byte(sealed)
	flipped[len(flipped)/2] ^= 1
	for name, open := range map[string]func() (*OIDCState, error){
		"other tenant":     func() (*OIDCState, error) { return s.Open(b, sealed, cookie, now) },
		"expired":          func() (*OIDCState, error) { return s.Open(a, sealed, cookie, now.Add(OIDCStateTTL)) },
		"other browser":    func() (*OIDCState, error) { return s.Open(a, sealed, otherCookie, now) },
		"no cookie":        func() (*OIDCState, error) { return s.Open(a, sealed, "", now) },
		"altered":          func() (*OIDCState, error) { return s.Open(a, string(flipped), cookie, now) },
		"other key":        func() (*OIDCState, error) { return other.Open(a, sealed, cookie, now) },
		"empty":            func() (*OIDCState, error) { return s.Open(a, "", cookie, now) },
		"not base64":       func() (*OIDCState, error) { return s.Open(a, sealed+"!", cookie, now) },
		"too long":         func() (*OIDCState, error) { return s.Open(a, strings.Repeat("A", MaxOIDCState+1), cookie, now) },
		"truncated":        func() (*OIDCState, error) { return s.Open(a, sealed[:len(sealed)-4], cookie, now) },
		"version replaced": func() (*OIDCState, error) { return s.Open(a, "Ag"+sealed[2:], cookie, now) },
	} {
		if got, err := open(); err != ErrOIDCState || got != nil {
			t.Errorf("Open(%s) = %+v, %v; want ErrOIDCState", name, got, err)
		}
	}
	if _, err := NewStateSealer(secret[:31]); err == nil {
		t.Error("NewStateSealer accepted a 31-byte secret")
	}
}

func TestUnusablePasswordHash(t *testing.T) {
	t.Parallel()
	params := PasswordParams{Memory: 64, Time: 1, Threads: 1}
	p := NewPasswords(params, HashLimits{})
	h1, h2 := UnusablePasswordHash(params), UnusablePasswordHash(params)
	if h1 == h2 {
		t.Error("two unusable hashes are equal")
	}
	for _, pw := range []string{"", "password", "correct horse battery"} {
		ok, err := p.Verify(t.Context(), "", pw, h1)
		if err != nil || ok {
			t.Errorf("Verify(%q, unusable hash) = %v, %v; want false, nil", pw, ok, err)
		}
	}
}
