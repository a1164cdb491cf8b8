package auth

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNewRefreshToken(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		id, token, hash, err := NewRefreshToken()
		if err != nil {
			t.Fatalf("NewRefreshToken: %v", err)
		}
		if len(id) != 26 || len(token) != 4+26+1+52 || !strings.HasPrefix(token, "bhr_"+string(id)+"_") {
			t.Errorf("NewRefreshToken = %q, %q; want bhr_<26-char id>_<52-char secret>", id, token)
		}
		sum := sha256.Sum256([]byte(token))
		if !cmp.Equal(hash, sum[:]) || !cmp.Equal(HashRefreshToken(token), sum[:]) {
			t.Errorf("NewRefreshToken hash = %x, HashRefreshToken = %x; want SHA-256 %x", hash, HashRefreshToken(token), sum)
		}
		if got, ok := ParseRefreshToken(token); got != id || !ok {
			t.Errorf("ParseRefreshToken(%q) = %q, %v; want %q, true", token, got, ok, id)
		}
		if seen[string(id)] || seen[token] {
			t.Fatalf("NewRefreshToken repeated %q", token)
		}
		seen[string(id)], seen[token] = true, true
		if IsAPIKey(token) || LooksLikeJWT(token) {
			t.Errorf("refresh token %q is mistaken for an API key or JWT", token)
		}
	}
}

func TestParseRefreshTokenRejects(t *testing.T) {
	t.Parallel()
	id, token, _, err := NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimPrefix(token, "bhr_"+string(id)+"_")
	_, apiKey := newTestAPIKey(t)
	tests := []struct {
		name  string
		token string
	}{
		{"Empty", ""},
		{"PrefixOnly", "bhr_"},
		{"NoPrefix", strings.TrimPrefix(token, "bhr_")},
		{"UpperPrefix", "BHR_" + strings.TrimPrefix(token, "bhr_")},
		{"APIKey", apiKey},
		{"IDShort", "bhr_" + string(id[:25]) + "_" + secret + "a"},
		{"SecretShort", token[:len(token)-1]},
		{"SecretLong", token + "a"},
		{"MissingSeparator", "bhr_" + string(id) + "a" + secret},
		{"ExtraUnderscore", "bhr_" + string(id) + "__" + secret[1:]},
		{"Upper", "bhr_" + strings.ToUpper(string(id)) + "_" + secret},
		{"BadAlphabet", "bhr_" + string(id) + "_0" + secret[1:]},
		{"IDTrailingBits", "bhr_" + string(id[:25]) + "b_" + secret},
		{"SecretTrailingBits", token[:len(token)-1] + "b"},
		{"Newline", token[:20] + "\n" + token[21:]},
	}
	for _, tt := range tests {
		if got, ok := ParseRefreshToken(tt.token); ok || got != "" {
			t.Errorf("%s: ParseRefreshToken(%q) = %q, %v; want \"\", false", tt.name, tt.token, got, ok)
		}
	}
}
