package auth

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestCheckTOTP(t *testing.T) {
	seed, err := NewTOTPSeed()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	step := TOTPStep(now)
	code := func(at time.Time) string {
		c, err := TOTPCode(seed, at)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	other, _ := NewTOTPSeed()
	otherCode, _ := TOTPCode(other, now)
	tests := []struct {
		name     string
		code     string
		after    int64
		wantStep int64
		wantOK   bool
	}{
		{"Current", code(now), 0, step, true},
		{"OneStepBehind", code(now.Add(-TOTPPeriod * time.Second)), 0, step - 1, true},
		{"OneStepAhead", code(now.Add(TOTPPeriod * time.Second)), 0, step + 1, true},
		{"TwoStepsBehind", code(now.Add(-2 * TOTPPeriod * time.Second)), 0, 0, false},
		{"Replayed", code(now), step, 0, false},
		{"EarlierStepAfterALaterOne", code(now.Add(-TOTPPeriod * time.Second)), step, 0, false},
		{"AnotherSeed", otherCode, 0, 0, otherCode == code(now)},
		{"NotDigits", "12a456", 0, 0, false},
		{"TooLong", code(now) + "0", 0, 0, false},
	}
	for _, tt := range tests {
		gotStep, gotOK := CheckTOTP(seed, tt.code, now, tt.after)
		if gotOK != tt.wantOK || gotOK && gotStep != tt.wantStep {
			t.Errorf("%s: CheckTOTP = %d, %v, want %d, %v", tt.name, gotStep, gotOK, tt.wantStep, tt.wantOK)
		}
	}
}

func TestTOTPKey(t *testing.T) {
	seed, _ := NewTOTPSeed()
	secret, uri, err := TOTPKey("bulkhead acme", "ada@example.com", seed)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("TOTPKey uri = %q, want an otpauth://totp/ URI", uri)
	}
	if got := u.Query().Get("secret"); got != secret || got != totpB32.EncodeToString(seed) {
		t.Errorf("TOTPKey secret = %q (in the URI %q), want %q", secret, got, totpB32.EncodeToString(seed))
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes(10)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var hashes [][]byte
	for _, c := range codes {
		if len(c) != 19 || strings.Count(c, "-") != 3 || seen[c] {
			t.Errorf("recovery code %q: want 16 characters in 4 groups, unique", c)
		}
		seen[c] = true
		hashes = append(hashes, HashRecoveryCode("t", "u", c))
	}
	if got := MatchRecoveryCode(hashes, HashRecoveryCode("t", "u", strings.ToUpper(codes[3]))); got != 3 {
		t.Errorf("MatchRecoveryCode(code 3, upper case) = %d, want 3", got)
	}
	if got := MatchRecoveryCode(hashes, HashRecoveryCode("t", "other-user", codes[3])); got != -1 {
		t.Errorf("MatchRecoveryCode(code 3 of another user) = %d, want -1", got)
	}
	if got := MatchRecoveryCode(hashes, HashRecoveryCode("other-tenant", "u", codes[3])); got != -1 {
		t.Errorf("MatchRecoveryCode(code 3 in another tenant) = %d, want -1", got)
	}
}
