package archive

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/tenant"
)

type bundle struct {
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
	key  []byte
	tid  tenant.ID
}

func setup(t *testing.T) *bundle {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{pub: pub, priv: priv, key: keyring.NewKey(), tid: "0190b1a2-0000-7000-8000-000000000001"}
}

// write makes an archive of n records (big enough for many chunks).
func (b *bundle) write(t *testing.T, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Header{Tenant: b.tid, ExportID: "e1", CreatedAt: time.Unix(0, 0).UTC()}, b.key, b.priv)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(PartCollections, map[string]string{"name": "c"}); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.Add(PartRecords, map[string]any{"id": fmt.Sprint(i), "pad": string(bytes.Repeat([]byte("x"), 100))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Add(PartAudit, map[string]int{"seq": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// read reads an archive to its end and returns the records part's count.
func (b *bundle) read(data []byte) (int, error) {
	h, br, err := ReadHeader(bytes.NewReader(data), b.pub)
	if err != nil {
		return 0, err
	}
	r, err := NewReader(br, h, b.key, b.pub)
	if err != nil {
		return 0, err
	}
	n := 0
	for {
		p, _, err := r.Next()
		if err == io.EOF {
			if got := r.Manifest().Count(PartRecords); got != int64(n) {
				return n, fmt.Errorf("manifest counts %d records, read %d", got, n)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		if p == PartRecords {
			n++
		}
	}
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := b.write(t, 3000)
	n, err := b.read(data)
	if err != nil || n != 3000 {
		t.Fatalf("read = %d, %v; want 3000, nil", n, err)
	}
}

func TestTampered(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := b.write(t, 2000)
	headerEnd := len(Magic) + 4 + int(binary.BigEndian.Uint32(data[len(Magic):])) + ed25519.SignatureSize
	other := setup(t)

	cases := map[string]func() []byte{
		"FlipHeaderByte": func() []byte { d := bytes.Clone(data); d[len(Magic)+10] ^= 1; return d },
		"FlipChunkByte":  func() []byte { d := bytes.Clone(data); d[headerEnd+5000] ^= 1; return d },
		"FlipLastByte":   func() []byte { d := bytes.Clone(data); d[len(d)-1] ^= 1; return d },
		"CutOff":         func() []byte { return data[:len(data)-100] },
		"CutAtChunk":     func() []byte { return data[:headerEnd+5+chunkSize+16] },
		"Appended":       func() []byte { return append(bytes.Clone(data), 0) },
		"OtherSigner": func() []byte { // the same content re-signed with another key
			o := &bundle{pub: other.pub, priv: other.priv, key: b.key, tid: b.tid}
			return o.write(t, 2000)
		},
	}
	for name, make := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := b.read(make())
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("read = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestManifestEdited re-signs the header validly but writes a manifest
// that does not match the content: the reader refuses it.
func TestManifestEdited(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, &Header{Tenant: b.tid, ExportID: "e1"}, b.key, b.priv)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Add(PartRecords, map[string]string{"id": "1"})
	w.count = 5 // the manifest will claim 5 records
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.read(buf.Bytes()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("read = %v, want ErrInvalid", err)
	}
}

func TestOtherTenantKeyOrBinding(t *testing.T) {
	t.Parallel()
	b := setup(t)
	data := b.write(t, 10)
	// A reader told the archive belongs to another tenant cannot open it:
	// the tenant id is the chunks' associated data.
	h, br, err := ReadHeader(bytes.NewReader(data), b.pub)
	if err != nil {
		t.Fatal(err)
	}
	h.Tenant = "0190b1a2-0000-7000-8000-000000000002"
	r, _ := NewReader(br, h, b.key, b.pub)
	if _, _, err := r.Next(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Next with another tenant = %v, want ErrInvalid", err)
	}
	// Another key opens nothing.
	h, br, _ = ReadHeader(bytes.NewReader(data), b.pub)
	r, _ = NewReader(br, h, keyring.NewKey(), b.pub)
	if _, _, err := r.Next(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Next with another key = %v, want ErrInvalid", err)
	}
}
