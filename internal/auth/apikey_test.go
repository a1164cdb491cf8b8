package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	testTenant  tenant.ID = "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5a6"
	otherTenant tenant.ID = "0192f3a4-5b6c-7d8e-9fa0-000000000001"
)

// newTestAPIKey returns a fresh key for testTenant in env "live".
func newTestAPIKey(t testing.TB) (store.APIKeyID, string) {
	t.Helper()
	id, key, err := NewAPIKey("live", testTenant)
	if err != nil {
		t.Fatalf("NewAPIKey: %v", err)
	}
	return id, key
}

// apiKeyParts splits a well-formed key into env, id and secret.
func apiKeyParts(t testing.TB, key string) (env, id, secret string) {
	t.Helper()
	parts := strings.Split(key, "_")
	if len(parts) != 4 || parts[0] != "bh" {
		t.Fatalf("key %q: want bh_<env>_<id>_<secret>", key)
	}
	return parts[1], parts[2], parts[3]
}

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     string
		tid     tenant.ID
		wantErr bool
	}{
		{"Live", "live", testTenant, false},
		{"Test", "test", otherTenant, false},
		{"LongestEnv", strings.Repeat("e", MaxAPIKeyEnvLen), testTenant, false},
		{"EmptyEnv", "", testTenant, true},
		{"EnvTooLong", strings.Repeat("e", MaxAPIKeyEnvLen+1), testTenant, true},
		{"EnvUpper", "Live", testTenant, true},
		{"EnvDigit", "live2", testTenant, true},
		{"EnvUnderscore", "li_ve", testTenant, true},
		{"EmptyTenant", "live", "", true},
		{"UpperTenant", "live", tenant.ID(strings.ToUpper(string(testTenant))), true},
		{"BracedTenant", "live", "{" + testTenant + "}", true},
		{"TenantNoDashes", "live", tenant.ID(strings.ReplaceAll(string(testTenant), "-", "")), true},
		{"NilTenant", "live", "00000000-0000-0000-0000-000000000000", true},
		{"TenantDashMoved", "live", "0192f3a45-b6c-7d8e-9fa0-b1c2d3e4f5a6", true},
		{"TenantNotHex", "live", "0192f3a4-5b6c-7d8e-9fa0-b1c2d3e4f5ag", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, key, err := NewAPIKey(tt.env, tt.tid)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewAPIKey(%q, %q) = %q, %q, nil; want error", tt.env, tt.tid, id, key)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewAPIKey(%q, %q): %v", tt.env, tt.tid, err)
			}
			env, idText, secret := apiKeyParts(t, key)
			if env != tt.env || idText != string(id) || len(idText) != 39 || len(secret) != 52 {
				t.Errorf("NewAPIKey(%q, %q) = %q, %q; want env %q, the id inside, 39-char id and 52-char secret",
					tt.env, tt.tid, id, key, tt.env)
			}
			gotEnv, gotTid, gotID, ok := ParseAPIKey(key)
			got := []any{gotEnv, gotTid, gotID, ok}
			want := []any{tt.env, tt.tid, id, true}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("ParseAPIKey(NewAPIKey(%q, %q)) mismatch (-want +got):\n%s", tt.env, tt.tid, diff)
			}
		})
	}
}

func TestNewAPIKeyUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		id, key := newTestAPIKey(t)
		if seen[string(id)] || seen[key] {
			t.Fatalf("NewAPIKey repeated id %q or key %q", id, key)
		}
		seen[string(id)], seen[key] = true, true
	}
}

func TestParseAPIKeyRejects(t *testing.T) {
	t.Parallel()
	_, key := newTestAPIKey(t)
	env, id, secret := apiKeyParts(t, key)
	// setLast replaces the last character of s.
	setLast := func(s string, c byte) string { return s[:len(s)-1] + string(c) }
	nilTenantID := b32.EncodeToString(make([]byte, 24))
	tests := []struct {
		name string
		key  string
	}{
		{"Empty", ""},
		{"PrefixOnly", "bh_"},
		{"NoPrefix", strings.TrimPrefix(key, "bh_")},
		{"UpperPrefix", "BH_" + strings.TrimPrefix(key, "bh_")},
		{"RefreshPrefix", "bhr_" + strings.TrimPrefix(key, "bh_")},
		{"EmptyEnv", "bh__" + id + "_" + secret},
		{"UpperEnv", "bh_LIVE_" + id + "_" + secret},
		{"DigitEnv", "bh_live1_" + id + "_" + secret},
		{"EnvTooLong", "bh_" + strings.Repeat("e", MaxAPIKeyEnvLen+1) + "_" + id + "_" + secret},
		{"IDShort", "bh_" + env + "_" + id[:38] + "_" + secret},
		{"IDLong", "bh_" + env + "_" + id + "a_" + secret},
		{"SecretShort", "bh_" + env + "_" + id + "_" + secret[:51]},
		{"SecretLong", "bh_" + env + "_" + id + "_" + secret + "a"},
		{"SecretMissing", "bh_" + env + "_" + id + "_"},
		{"SecretMovedToID", "bh_" + env + "_" + id + secret[:1] + "_" + secret[1:]},
		{"UpperID", "bh_" + env + "_" + strings.ToUpper(id) + "_" + secret},
		{"UpperSecret", "bh_" + env + "_" + id + "_" + strings.ToUpper(secret)},
		{"DigitOneInSecret", "bh_" + env + "_" + id + "_1" + secret[1:]},
		{"DigitEightInID", "bh_" + env + "_8" + id[1:] + "_" + secret},
		{"PaddingInSecret", "bh_" + env + "_" + id + "_" + setLast(secret, '=')},
		{"NewlineInSecret", "bh_" + env + "_" + id + "_" + secret[:26] + "\n" + secret[27:]},
		{"NonASCII", "bh_" + env + "_" + id + "_" + secret[:50] + "é"},
		{"IDTrailingBits", "bh_" + env + "_" + setLast(id, 'b') + "_" + secret},
		{"SecretTrailingBits", "bh_" + env + "_" + id + "_" + setLast(secret, 'b')},
		{"ExtraUnderscoreInEnv", "bh_li_ve_" + id + "_" + secret},
		{"DoubleUnderscore", "bh_" + env + "__" + id + "_" + secret[1:]},
		{"TrailingUnderscore", key + "_"},
		{"LeadingSpace", " " + key},
		{"TrailingNewline", key + "\n"},
		{"NilTenant", "bh_" + env + "_" + nilTenantID + "_" + secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, tid, id, ok := ParseAPIKey(tt.key)
			if ok || env != "" || tid != "" || id != "" {
				t.Errorf("ParseAPIKey(%q) = %q, %q, %q, %v; want zero values and false", tt.key, env, tid, id, ok)
			}
		})
	}
}

// A key whose tenant part was changed is still well formed, but names another
// tenant and another id, and its hash no longer matches what was stored: the
// tenant part cannot be moved without the secret being refused.
func TestAPIKeyModifiedTenant(t *testing.T) {
	t.Parallel()
	kh := NewKeyHasher([]byte("0123456789abcdef0123456789abcdef"))
	id, key := newTestAPIKey(t)
	stored := kh.Hash(key)

	env, idText, secret := apiKeyParts(t, key)
	var raw [24]byte
	if !decodeB32(raw[:], idText) {
		t.Fatalf("decode id %q", idText)
	}
	other, _ := otherTenant.Bytes()
	copy(raw[:16], other[:])
	forged := "bh_" + env + "_" + b32.EncodeToString(raw[:]) + "_" + secret

	_, gotTid, gotID, ok := ParseAPIKey(forged)
	if !ok || gotTid != otherTenant || gotID == id {
		t.Errorf("ParseAPIKey(forged) = _, %q, %q, %v; want %q, an id other than %q, true", gotTid, gotID, ok, otherTenant, id)
	}
	if kh.Verify(forged, stored) {
		t.Errorf("KeyHasher.Verify(forged, hash of original) = true, want false")
	}
}

func TestTenantOfAPIKeyID(t *testing.T) {
	t.Parallel()
	id, _ := newTestAPIKey(t)
	tests := []struct {
		name string
		id   store.APIKeyID
		want tenant.ID
		ok   bool
	}{
		{"Valid", id, testTenant, true},
		{"Empty", "", "", false},
		{"Short", id[:38], "", false},
		{"Long", id + "a", "", false},
		{"Upper", store.APIKeyID(strings.ToUpper(string(id))), "", false},
		{"TrailingBits", id[:38] + "b", "", false},
		{"NilTenant", store.APIKeyID(b32.EncodeToString(make([]byte, 24))), "", false},
		{"WholeKey", store.APIKeyID("bh_live_" + id), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := TenantOfAPIKeyID(tt.id)
			if got != tt.want || ok != tt.ok {
				t.Errorf("TenantOfAPIKeyID(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestIsAPIKey(t *testing.T) {
	t.Parallel()
	_, key := newTestAPIKey(t)
	tests := []struct {
		token string
		want  bool
	}{
		{key, true},
		{"bh_", true},
		{"bh_anything", true},
		{"", false},
		{"bh", false},
		{"BH_live", false},
		{"bhr_abc_def", false},
		{"eyJhbGciOiJFZERTQSJ9.e30.sig", false},
	}
	for _, tt := range tests {
		if got := IsAPIKey(tt.token); got != tt.want {
			t.Errorf("IsAPIKey(%q) = %v, want %v", tt.token, got, tt.want)
		}
	}
}

func TestKeyHasher(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	kh := NewKeyHasher(secret)
	_, key := newTestAPIKey(t)
	_, key2 := newTestAPIKey(t)

	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(key))
	if got, want := kh.Hash(key), mac.Sum(nil); !cmp.Equal(got, want) {
		t.Errorf("Hash(key) = %x, want HMAC-SHA-256 %x", got, want)
	}
	if got, want := kh.Hash(key), kh.Hash(key); !cmp.Equal(got, want) {
		t.Errorf("Hash(key) = %x then %x, want equal", got, want)
	}
	if cmp.Equal(kh.Hash(key), kh.Hash(key2)) {
		t.Errorf("Hash of two keys are equal")
	}
	other := NewKeyHasher([]byte("fedcba9876543210fedcba9876543210"))
	if cmp.Equal(kh.Hash(key), other.Hash(key)) {
		t.Errorf("Hash under two secrets are equal")
	}
	long := strings.Repeat("x", 4096) // exercises the oversized-buffer path
	mac.Reset()
	mac.Write([]byte(long))
	if got, want := kh.Hash(long), mac.Sum(nil); !cmp.Equal(got, want) {
		t.Errorf("Hash(long) = %x, want %x", got, want)
	}

	verifyTests := []struct {
		name string
		key  string
		hash []byte
		want bool
	}{
		{"Match", key, kh.Hash(key), true},
		{"OtherKey", key2, kh.Hash(key), false},
		{"OtherSecret", key, other.Hash(key), false},
		{"Truncated", key, kh.Hash(key)[:16], false},
		{"Nil", key, nil, false},
	}
	for _, tt := range verifyTests {
		if got := kh.Verify(tt.key, tt.hash); got != tt.want {
			t.Errorf("%s: Verify = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestKeyHasherCopiesSecret(t *testing.T) {
	t.Parallel()
	secret := []byte("0123456789abcdef0123456789abcdef")
	kh := NewKeyHasher(secret)
	before := kh.Hash("k")
	secret[0] ^= 1
	if after := kh.Hash("k"); !cmp.Equal(before, after) {
		t.Errorf("Hash changed after the caller modified secret: %x, then %x", before, after)
	}
}

func TestNewKeyHasherShortSecret(t *testing.T) {
	t.Parallel()
	defer func() {
		if recover() == nil {
			t.Errorf("NewKeyHasher(15 bytes) did not panic")
		}
	}()
	NewKeyHasher(make([]byte, 15))
}

func TestDecodeB32(t *testing.T) {
	t.Parallel()
	for n := range 40 {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(i*37 + n)
		}
		s := b32.EncodeToString(b)
		got := make([]byte, n)
		if !decodeB32(got, s) || !cmp.Equal(got, b) {
			t.Errorf("decodeB32(%d bytes, %q) = %x, want %x", n, s, got, b)
		}
	}
}

func FuzzParseAPIKey(f *testing.F) {
	_, key := newTestAPIKey(f)
	f.Add(key)
	f.Add("bh_test_" + strings.TrimPrefix(key, "bh_live_"))
	f.Add("bh_" + strings.Repeat("z", MaxAPIKeyEnvLen) + key[7:])
	f.Add(key[:len(key)-1] + "b")
	f.Add("bh_live__" + key[8:])
	f.Add("")
	f.Add("bh_")
	f.Fuzz(func(t *testing.T, key string) {
		env, tid, id, ok := ParseAPIKey(key)
		if !ok {
			if env != "" || tid != "" || id != "" {
				t.Fatalf("ParseAPIKey(%q) = %q, %q, %q, false; want zero values", key, env, tid, id)
			}
			return
		}
		if !IsAPIKey(key) || !validEnv(env) || !tid.Valid() {
			t.Fatalf("ParseAPIKey(%q) accepted env %q, tenant %q", key, env, tid)
		}
		secret, found := strings.CutPrefix(key, "bh_"+env+"_"+string(id)+"_")
		if !found {
			t.Fatalf("ParseAPIKey(%q): key is not bh_%s_%s_<secret>", key, env, id)
		}
		// Canonical: re-encoding what was decoded gives the input back.
		var sb [apiKeySecretBytes]byte
		var ib [24]byte
		if !decodeB32(sb[:], secret) || b32.EncodeToString(sb[:]) != secret ||
			!decodeB32(ib[:], string(id)) || b32.EncodeToString(ib[:]) != string(id) {
			t.Fatalf("ParseAPIKey(%q) accepted a non-canonical encoding", key)
		}
		if got, ok := TenantOfAPIKeyID(id); got != tid || !ok {
			t.Fatalf("TenantOfAPIKeyID(%q) = %q, %v; want %q, true", id, got, ok, tid)
		}
		// Round trip: a new key for what was parsed parses back to it.
		id2, key2, err := NewAPIKey(env, tid)
		if err != nil {
			t.Fatalf("NewAPIKey(%q, %q): %v", env, tid, err)
		}
		env2, tid2, id3, ok := ParseAPIKey(key2)
		if env2 != env || tid2 != tid || id3 != id2 || !ok {
			t.Fatalf("ParseAPIKey(NewAPIKey(%q, %q)) = %q, %q, %q, %v", env, tid, env2, tid2, id3, ok)
		}
	})
}

// FuzzDecodeB32 checks decodeB32 against encoding/base32: it must accept
// exactly the strings the standard encoder produces.
func FuzzDecodeB32(f *testing.F) {
	f.Add("mzxw6ytboi", 6)
	f.Add("mzxw6ytboj", 6)
	f.Add("MZXW6YTBOI", 6)
	f.Add("mzxw6\nytboi", 6)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 64 {
			return
		}
		dst := make([]byte, n)
		ok := decodeB32(dst, s)
		std := base32.NewEncoding(b32Alphabet).WithPadding(base32.NoPadding)
		ref, err := std.DecodeString(s)
		canonical := err == nil && len(ref) == n && std.EncodeToString(ref) == s
		if ok != canonical {
			t.Fatalf("decodeB32(%d, %q) = %v, want %v", n, s, ok, canonical)
		}
		if ok && !cmp.Equal(dst, ref) {
			t.Fatalf("decodeB32(%d, %q) = %x, want %x", n, s, dst, ref)
		}
	})
}

func BenchmarkParseAPIKey(b *testing.B) {
	_, key := newTestAPIKey(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, ok := ParseAPIKey(key); !ok {
			b.Fatal("ParseAPIKey failed")
		}
	}
}

func BenchmarkKeyHasherHash(b *testing.B) {
	kh := NewKeyHasher([]byte("0123456789abcdef0123456789abcdef"))
	_, key := newTestAPIKey(b)
	b.ReportAllocs()
	for b.Loop() {
		kh.Hash(key)
	}
}

func BenchmarkKeyHasherHashParallel(b *testing.B) {
	kh := NewKeyHasher([]byte("0123456789abcdef0123456789abcdef"))
	_, key := newTestAPIKey(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			kh.Hash(key)
		}
	})
}
