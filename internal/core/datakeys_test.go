package core

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

func TestTenantKeysSealOpen(t *testing.T) {
	b := setupScopes(t)
	ctx := context.Background()
	acme, globex := b.acme.tenant.ID, b.globexAdmin.tenant.ID
	ka, err := b.c.tenantKeys(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	kg, err := b.c.tenantKeys(ctx, globex)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("totp seed 1234")
	sealed, err := ka.Seal([]byte("totp:user-1"), secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("the sealed value holds the plaintext")
	}
	if v, _ := sealedVersion(sealed); v != 1 {
		t.Errorf("sealed under version %d, want 1", v)
	}
	if got, err := ka.Open([]byte("totp:user-1"), sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	for name, open := range map[string]func() ([]byte, error){
		"OtherAAD":    func() ([]byte, error) { return ka.Open([]byte("totp:user-2"), sealed) },
		"OtherTenant": func() ([]byte, error) { return kg.Open([]byte("totp:user-1"), sealed) },
		"Tampered": func() ([]byte, error) {
			bad := bytes.Clone(sealed)
			bad[len(bad)-1] ^= 1
			return ka.Open([]byte("totp:user-1"), bad)
		},
		"OtherVersion": func() ([]byte, error) {
			bad := bytes.Clone(sealed)
			bad[4] = 9
			return ka.Open([]byte("totp:user-1"), bad)
		},
		"Truncated": func() ([]byte, error) { return ka.Open([]byte("totp:user-1"), sealed[:4]) },
	} {
		if got, err := open(); !errors.Is(err, ErrSealBroken) {
			t.Errorf("%s: Open = %q, %v; want ErrSealBroken", name, got, err)
		}
	}

	// After a rotation, new values are sealed under version 2 and the old
	// ones still open, before and after the old version retires.
	if _, err := b.ctl.RotateKeys(ctx, b.acme); err != nil {
		t.Fatal(err)
	}
	k2, err := b.c.tenantKeys(ctx, acme)
	if err != nil {
		t.Fatal(err)
	}
	sealed2, _ := k2.Seal(nil, secret)
	if v, _ := sealedVersion(sealed2); v != 2 {
		t.Errorf("sealed after rotation under version %d, want 2", v)
	}
	if err := b.c.WaitBackground(ctx); err != nil {
		t.Fatal(err)
	}
	k3, _ := b.c.tenantKeys(ctx, acme)
	if got, err := k3.Open([]byte("totp:user-1"), sealed); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("a value sealed under the retired version = %q, %v; want it to open while its material is kept", got, err)
	}

	// Once retired for longer than retiredKeyLife, the next load erases
	// the old version's material: nothing sealed under it opens any more.
	real := b.c.now
	b.c.now = func() time.Time { return real().Add(retiredKeyLife + time.Hour) }
	b.c.forgetKeys(acme)
	if _, err := b.c.tenantKeys(ctx, acme); err != nil {
		t.Fatal(err)
	}
	if err := b.c.WaitBackground(ctx); err != nil {
		t.Fatal(err)
	}
	var rows []*store.DataKey
	b.c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		rows, err = tx.ListDataKeys(ctx, acme)
		return err
	})
	for _, r := range rows {
		if r.Purpose == store.PurposeData && r.Version == 1 && (r.State != store.KeyRetired || r.Wrapped != nil) {
			t.Errorf("version 1 after retiredKeyLife: %s, wrapped %d bytes; want retired and erased", r.State, len(r.Wrapped))
		}
	}
	k4, _ := b.c.tenantKeys(ctx, acme)
	if _, err := k4.Open([]byte("totp:user-1"), sealed); !errors.Is(err, ErrSealBroken) {
		t.Errorf("a value sealed under an erased version: %v, want ErrSealBroken", err)
	}
	if got, err := k4.Open(nil, sealed2); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("a value sealed under the active version = %q, %v", got, err)
	}
}

func TestTenantKeysWithoutKMS(t *testing.T) {
	b := setupOracle(t)
	b.c.kms = nil
	b.c.forgetKeys("")
	if _, err := b.c.tenantKeys(context.Background(), b.acme.tenant.ID); !errors.Is(err, ErrKeysUnavailable) {
		t.Fatalf("tenantKeys without a KMS = %v, want ErrKeysUnavailable", err)
	}
}

func TestBlindIndexKeepsTypes(t *testing.T) {
	b := setupOracle(t)
	ks, err := b.c.keySet(context.Background(), b.acme.tenant.ID)
	if err != nil {
		t.Fatal(err)
	}
	fc := &fieldCipher{keys: ks, tid: b.acme.tenant.ID, col: "people", fields: []string{"ssn", "pin"}}
	a, _ := fc.blindIndex("pin", 5.0)
	c, _ := fc.blindIndex("pin", "5")
	d, _ := fc.blindIndex("ssn", 5.0)
	if a == c || a == d {
		t.Errorf("blind indexes of 5 in pin, \"5\" in pin and 5 in ssn: %q %q %q, want all different", a, c, d)
	}
}
