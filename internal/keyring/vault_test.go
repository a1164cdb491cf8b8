package keyring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestVaultTransit runs against a real Vault with the Transit engine
// mounted at "transit" (vault secrets enable transit), given by
// BULKHEAD_TEST_VAULT_ADDR and BULKHEAD_TEST_VAULT_TOKEN.
func TestVaultTransit(t *testing.T) {
	addr, token := os.Getenv("BULKHEAD_TEST_VAULT_ADDR"), os.Getenv("BULKHEAD_TEST_VAULT_TOKEN")
	if addr == "" || token == "" {
		t.Skip("set BULKHEAD_TEST_VAULT_ADDR and BULKHEAD_TEST_VAULT_TOKEN (a Vault with transit mounted) to run the Vault KMS test")
	}
	ctx := context.Background()
	v, err := OpenVault(VaultConfig{Address: addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	tid, other := tenant.ID(uuid.NewString()), tenant.ID(uuid.NewString())
	for _, id := range []tenant.ID{tid, other} {
		if err := v.CreateKey(ctx, id); err != nil {
			t.Fatalf("CreateKey = %v", err)
		}
	}
	t.Cleanup(func() { v.DestroyKey(ctx, tid); v.DestroyKey(ctx, other) })
	dek := NewKey()
	w, err := v.Wrap(ctx, tid, dek, []byte("data/1"))
	if err != nil {
		t.Fatalf("Wrap = %v", err)
	}
	if got, err := v.Unwrap(ctx, tid, w, []byte("data/1")); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	if _, err := v.Unwrap(ctx, tid, w, []byte("data/2")); err == nil {
		t.Error("Unwrap with other associated data succeeded")
	}
	if _, err := v.Unwrap(ctx, other, w, []byte("data/1")); err == nil {
		t.Error("Unwrap under another tenant's key succeeded")
	}
	if err := v.RotateKEK(ctx, []tenant.ID{tid}); err != nil {
		t.Fatalf("RotateKEK = %v", err)
	}
	w2, err := v.Rewrap(ctx, tid, w, []byte("data/1"))
	if err != nil || !strings.HasPrefix(string(w2), "vault:v2:") {
		t.Fatalf("Rewrap = %q, %v; want a v2 ciphertext", w2, err)
	}
	if got, err := v.Unwrap(ctx, tid, w2, []byte("data/1")); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap after rewrap = %x, %v", got, err)
	}
	if err := v.DestroyKey(ctx, tid); err != nil {
		t.Fatalf("DestroyKey = %v", err)
	}
	if _, err := v.Unwrap(ctx, tid, w2, []byte("data/1")); err == nil {
		t.Fatal("Unwrap after DestroyKey succeeded")
	}
}

// TestVaultRequests checks the requests the Vault KMS sends and how it
// reads answers, against a stand-in server. It is no substitute for
// TestVaultTransit: it proves the shapes, not that Vault accepts them.
func TestVaultRequests(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	keys := map[string]bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Vault-Token") != "tok" {
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"errors":["permission denied"]}`))
			return
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		seen = append(seen, r.Method+" "+r.URL.Path)
		name := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		reply := func(data map[string]any) { json.NewEncoder(w).Encode(map[string]any{"data": data}) }
		switch {
		case r.URL.Path == "/v1/transit/keys/"+name && r.Method != http.MethodDelete:
			if body["type"] != "aes256-gcm96" {
				t.Errorf("create key type = %v", body["type"])
			}
			keys[name] = true
			w.WriteHeader(http.StatusNoContent)
		case strings.HasPrefix(r.URL.Path, "/v1/transit/encrypt/"):
			if body["associated_data"] == nil || body["plaintext"] == nil {
				t.Errorf("encrypt body = %v, want plaintext and associated_data", body)
			}
			reply(map[string]any{"ciphertext": "vault:v1:" + body["plaintext"].(string) + "|" + body["associated_data"].(string)})
		case strings.HasPrefix(r.URL.Path, "/v1/transit/decrypt/"):
			ct, _ := body["ciphertext"].(string)
			pt, aad, _ := strings.Cut(strings.TrimPrefix(ct, "vault:v1:"), "|")
			if aad != body["associated_data"] || !keys[name] {
				w.WriteHeader(http.StatusBadRequest)
				w.Write([]byte(`{"errors":["cipher: message authentication failed; could not decrypt"]}`))
				return
			}
			reply(map[string]any{"plaintext": pt})
		case strings.HasSuffix(r.URL.Path, "/config"):
			if body["deletion_allowed"] != true {
				t.Errorf("config body = %v, want deletion_allowed", body)
			}
			w.WriteHeader(http.StatusNoContent)
		case r.Method == http.MethodDelete:
			delete(keys, name)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.WriteHeader(http.StatusInternalServerError)
			w.Write([]byte(`{"errors":["unexpected"]}`))
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	v, err := OpenVault(VaultConfig{Address: srv.URL, Token: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CreateKey(ctx, tidA); err != nil {
		t.Fatalf("CreateKey = %v", err)
	}
	dek := NewKey()
	w, err := v.Wrap(ctx, tidA, dek, []byte("x"))
	if err != nil {
		t.Fatalf("Wrap = %v", err)
	}
	got, err := v.Unwrap(ctx, tidA, w, []byte("x"))
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v", got, err)
	}
	if _, err := v.Unwrap(ctx, tidA, w, []byte("y")); !errors.Is(err, ErrOpen) {
		t.Errorf("Unwrap with other aad = %v, want ErrOpen", err)
	}
	if err := v.DestroyKey(ctx, tidA); err != nil {
		t.Fatalf("DestroyKey = %v", err)
	}
	want := "PUT /v1/transit/keys/bulkhead-" + string(tidA)
	if len(seen) == 0 || seen[0] != want {
		t.Errorf("first request = %v, want %s", seen, want)
	}
	if last := seen[len(seen)-1]; last != "DELETE /v1/transit/keys/bulkhead-"+string(tidA) {
		t.Errorf("last request = %s, want the key's DELETE", last)
	}
	// Unreachable Vault: ErrUnavailable.
	srv.Close()
	if _, err := v.Wrap(ctx, tidA, dek, nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Wrap with Vault down = %v, want ErrUnavailable", err)
	}
	bad, _ := OpenVault(VaultConfig{Address: "http://127.0.0.1:1", Token: "tok"})
	if err := bad.CreateKey(ctx, tidA); !errors.Is(err, ErrUnavailable) {
		t.Errorf("CreateKey with nothing listening = %v, want ErrUnavailable", err)
	}
}
