// Package archive reads and writes a tenant's signed, encrypted export: a
// stream that holds the tenant's collections, records, users, API-key
// metadata and audit chain, written and read in constant memory whatever
// the number of records.
//
// An archive is, on the wire:
//
//	magic "BHARCv1\n"
//	uint32 n | header (JSON, n bytes) | Ed25519 signature of the header (64 bytes)
//	chunks: flag (1 byte: 0, or 1 for the last) | uint32 n | AES-256-GCM ciphertext (n bytes)
//
// The header names the tenant, the export and the archive key wrapped by
// the tenant's key in the KMS, and is signed by the platform's export key,
// so that the tenant an archive belongs to can be checked before anything
// is decrypted. Each chunk seals up to 64 KiB of the plaintext stream under
// the archive key, with the tenant id, the header's SHA-256, the chunk's
// index and whether it is the last as associated data: chunks cannot be
// reordered, dropped, cut off or moved to another tenant's archive.
//
// The plaintext stream is a sequence of frames, kind (1 byte) | uint32 n |
// payload: items of the parts in Parts order (each a JSON object), then the
// manifest (JSON: SHA-256 and count of every part) and its Ed25519
// signature. A Reader verifies the hashes, the counts and the signature
// before it reports the end of the stream; whoever acts on an archive reads
// it to the end once before acting.
package archive

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Magic starts every archive.
const Magic = "BHARCv1\n"

// Part names one section of an archive.
type Part string

// The parts of an archive, in the order they are written.
const (
	PartCollections Part = "collections"
	PartRecords     Part = "records"
	PartUsers       Part = "users"
	PartAPIKeys     Part = "api_keys"
	PartAuditStart  Part = "audit_start"
	PartCheckpoints Part = "checkpoints"
	PartAudit       Part = "audit"
)

// Parts lists the parts in stream order.
// The chain's signed start (where retention cut it, if it did) and its
// checkpoints come before its entries, so that a reader can hold those few
// and verify the chain while streaming its entries.
var Parts = []Part{PartCollections, PartRecords, PartUsers, PartAPIKeys, PartAuditStart, PartCheckpoints, PartAudit}

const (
	chunkSize     = 64 << 10
	maxHeader     = 64 << 10
	maxFrame      = 64 << 20
	frameManifest = 0xFE
	frameSig      = 0xFF
	flagLast      = 1
)

// ErrInvalid means an archive does not verify: it is malformed, cut off,
// altered, or signed by another key. Errors of Reader and ReadHeader that
// are not the underlying reader's wrap it.
var ErrInvalid = errors.New("archive does not verify")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Header is the signed, unencrypted start of an archive.
type Header struct {
	Version   int       `json:"version"`
	Tenant    tenant.ID `json:"tenant"`
	ExportID  string    `json:"export_id"`
	CreatedAt time.Time `json:"created_at"`
	// WrappedKey is the archive key, wrapped by the tenant's key in the
	// KMS: destroying that key makes the archive unreadable.
	WrappedKey []byte `json:"wrapped_key"`
	// SigningKey is the keyring.KeyID of the key that signed the archive.
	SigningKey string `json:"signing_key"`

	sum []byte // SHA-256 of the header's JSON, set by ReadHeader
}

// PartSum is what the manifest says of one part.
type PartSum struct {
	Part   Part   `json:"part"`
	Count  int64  `json:"count"`
	SHA256 string `json:"sha256"`
}

// Manifest is the signed end of an archive's plaintext.
type Manifest struct {
	Tenant    tenant.ID `json:"tenant"`
	ExportID  string    `json:"export_id"`
	CreatedAt time.Time `json:"created_at"`
	// Header is the SHA-256 of the header's JSON, in hex.
	Header string    `json:"header"`
	Parts  []PartSum `json:"parts"`
}

// Count returns the manifest's count of part p.
func (m *Manifest) Count(p Part) int64 {
	for _, s := range m.Parts {
		if s.Part == p {
			return s.Count
		}
	}
	return 0
}

func headerMessage(h []byte) []byte {
	return append([]byte("bulkhead archive header v1\x00"), h...)
}

func manifestMessage(m []byte) []byte {
	return append([]byte("bulkhead archive manifest v1\x00"), m...)
}

func chunkAD(tid tenant.ID, headerSum []byte, index uint64, last bool) []byte {
	ad := append([]byte("bulkhead archive chunk\x00"), tid...)
	ad = append(append(ad, 0), headerSum...)
	ad = binary.BigEndian.AppendUint64(ad, index)
	if last {
		return append(ad, flagLast)
	}
	return append(ad, 0)
}

func chunkNonce(index uint64) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[4:], index)
	return n
}

func partIndex(p Part) int {
	for i, q := range Parts {
		if q == p {
			return i
		}
	}
	return -1
}

// Writer writes an archive. It is not safe for concurrent use.
type Writer struct {
	w         io.Writer
	aead      cipher.AEAD
	tid       tenant.ID
	headerSum []byte
	signer    ed25519.PrivateKey
	man       Manifest

	buf   []byte // plaintext not yet sealed
	index uint64
	part  int // index of the part being written, -1 before the first
	sum   hash.Hash
	count int64
	err   error
}

// NewWriter writes h, signed by signer, to w and returns a Writer that
// seals what follows under key (keyring.KeySize bytes, used for this
// archive only). h.Version and h.SigningKey are filled in.
func NewWriter(w io.Writer, h *Header, key []byte, signer ed25519.PrivateKey) (*Writer, error) {
	if h.Tenant == "" || len(signer) != ed25519.PrivateKeySize {
		return nil, errors.New("archive: a tenant and a signing key are required")
	}
	aead, err := keyring.AEAD(key)
	if err != nil {
		return nil, err
	}
	h.Version = 1
	h.SigningKey = keyring.KeyID(signer.Public().(ed25519.PublicKey))
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(hj)
	var head bytes.Buffer
	head.WriteString(Magic)
	_ = binary.Write(&head, binary.BigEndian, uint32(len(hj)))
	head.Write(hj)
	head.Write(ed25519.Sign(signer, headerMessage(hj)))
	if _, err := w.Write(head.Bytes()); err != nil {
		return nil, err
	}
	return &Writer{w: w, aead: aead, tid: h.Tenant, headerSum: sum[:], signer: signer, part: -1,
		man: Manifest{Tenant: h.Tenant, ExportID: h.ExportID, CreatedAt: h.CreatedAt, Header: hex.EncodeToString(sum[:])}}, nil
}

// Add appends v, marshalled to JSON, to part p. Parts must be added in
// Parts order; a part may be empty.
func (w *Writer) Add(p Part, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return w.AddRaw(p, b)
}

// AddRaw is Add for an item already in JSON.
func (w *Writer) AddRaw(p Part, item []byte) error {
	if w.err != nil {
		return w.err
	}
	i := partIndex(p)
	if i < 0 || i < w.part {
		return fmt.Errorf("archive: part %q out of order", p)
	}
	for w.part < i {
		w.endPart()
		w.part++
		w.sum, w.count = sha256.New(), 0
	}
	w.sum.Write(item)
	w.sum.Write([]byte{'\n'})
	w.count++
	return w.frame(byte(i), item)
}

func (w *Writer) endPart() {
	if w.part >= 0 {
		w.man.Parts = append(w.man.Parts, PartSum{Part: Parts[w.part], Count: w.count, SHA256: hex.EncodeToString(w.sum.Sum(nil))})
	}
}

func (w *Writer) frame(kind byte, payload []byte) error {
	if len(payload) > maxFrame {
		return fmt.Errorf("archive: an item of %d bytes is too large", len(payload))
	}
	w.buf = append(w.buf, kind)
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(payload)))
	w.buf = append(w.buf, payload...)
	for len(w.buf) > chunkSize && w.err == nil {
		w.err = w.seal(w.buf[:chunkSize], false)
		w.buf = append(w.buf[:0], w.buf[chunkSize:]...)
	}
	return w.err
}

func (w *Writer) seal(pt []byte, last bool) error {
	ct := w.aead.Seal(nil, chunkNonce(w.index), pt, chunkAD(w.tid, w.headerSum, w.index, last))
	w.index++
	var head [5]byte
	if last {
		head[0] = flagLast
	}
	binary.BigEndian.PutUint32(head[1:], uint32(len(ct)))
	if _, err := w.w.Write(head[:]); err != nil {
		return err
	}
	_, err := w.w.Write(ct)
	return err
}

// Close ends the parts not yet written, writes the signed manifest and
// seals the last chunk. It does not close the underlying writer.
func (w *Writer) Close() (*Manifest, error) {
	if w.err != nil {
		return nil, w.err
	}
	for w.part < len(Parts)-1 {
		w.endPart()
		w.part++
		w.sum, w.count = sha256.New(), 0
	}
	w.endPart()
	mj, err := json.Marshal(&w.man)
	if err != nil {
		return nil, err
	}
	if err := w.frame(frameManifest, mj); err != nil {
		return nil, err
	}
	if err := w.frame(frameSig, ed25519.Sign(w.signer, manifestMessage(mj))); err != nil {
		return nil, err
	}
	if err := w.seal(w.buf, true); err != nil {
		return nil, err
	}
	w.err = errors.New("archive: writer closed")
	return &w.man, nil
}

// ReadHeader reads and verifies an archive's header against the platform's
// export key pub. It returns the header and the reader positioned at the
// first chunk, for NewReader.
func ReadHeader(r io.Reader, pub ed25519.PublicKey) (*Header, *bufio.Reader, error) {
	br := bufio.NewReaderSize(r, chunkSize+64)
	magic := make([]byte, len(Magic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != Magic {
		return nil, nil, invalid("not a bulkhead archive")
	}
	var n uint32
	if err := binary.Read(br, binary.BigEndian, &n); err != nil || n > maxHeader {
		return nil, nil, invalid("malformed header")
	}
	hj := make([]byte, n)
	sig := make([]byte, ed25519.SignatureSize)
	if _, err := io.ReadFull(br, hj); err != nil {
		return nil, nil, invalid("cut off in the header")
	}
	if _, err := io.ReadFull(br, sig); err != nil {
		return nil, nil, invalid("cut off in the header")
	}
	if !ed25519.Verify(pub, headerMessage(hj), sig) {
		return nil, nil, invalid("the header's signature does not verify")
	}
	var h Header
	if err := json.Unmarshal(hj, &h); err != nil || h.Version != 1 || h.Tenant == "" {
		return nil, nil, invalid("malformed header")
	}
	sum := sha256.Sum256(hj)
	h.sum = sum[:]
	return &h, br, nil
}

// Reader reads the items of an archive after its header, verifying as it
// goes. It is not safe for concurrent use.
type Reader struct {
	r         *bufio.Reader
	aead      cipher.AEAD
	h         *Header
	pub       ed25519.PublicKey
	index     uint64
	last      bool
	plain     []byte // opened, not yet consumed
	part      int
	sums      []PartSum
	sum       hash.Hash
	count     int64
	manifest  *Manifest
	manifestJ []byte
	err       error
}

// NewReader returns a Reader of the chunks r holds (as ReadHeader left it),
// opened with the archive key. pub verifies the manifest's signature.
func NewReader(r *bufio.Reader, h *Header, key []byte, pub ed25519.PublicKey) (*Reader, error) {
	aead, err := keyring.AEAD(key)
	if err != nil {
		return nil, err
	}
	return &Reader{r: r, aead: aead, h: h, pub: pub, part: -1}, nil
}

// Next returns the next item and its part. At the end of a verified
// archive it returns io.EOF; an archive that does not verify gives an error
// wrapping ErrInvalid, possibly after items were returned — act on an
// archive only after reading it to io.EOF once.
func (r *Reader) Next() (Part, []byte, error) {
	if r.err != nil {
		return "", nil, r.err
	}
	p, item, err := r.next()
	if err != nil {
		r.err = err
	}
	return p, item, err
}

// Manifest returns the verified manifest once Next returned io.EOF, else nil.
func (r *Reader) Manifest() *Manifest {
	if r.err == io.EOF {
		return r.manifest
	}
	return nil
}

func (r *Reader) next() (Part, []byte, error) {
	kind, payload, err := r.frame()
	if err != nil {
		return "", nil, err
	}
	switch {
	case r.manifestJ != nil:
		if kind != frameSig || !ed25519.Verify(r.pub, manifestMessage(r.manifestJ), payload) {
			return "", nil, invalid("the manifest's signature does not verify")
		}
		if _, _, err := r.frame(); err != io.EOF {
			return "", nil, invalid("data after the manifest's signature")
		}
		return "", nil, r.checkManifest()
	case kind == frameManifest:
		r.manifestJ = payload
		var m Manifest
		if err := json.Unmarshal(payload, &m); err != nil {
			return "", nil, invalid("malformed manifest")
		}
		r.manifest = &m
		for r.part < len(Parts) {
			r.endPart()
		}
		return r.next()
	case int(kind) < len(Parts):
		if int(kind) < r.part {
			return "", nil, invalid("parts out of order")
		}
		for r.part < int(kind) {
			r.endPart()
		}
		r.sum.Write(payload)
		r.sum.Write([]byte{'\n'})
		r.count++
		return Parts[kind], payload, nil
	}
	return "", nil, invalid("unknown frame kind %d", kind)
}

func (r *Reader) endPart() {
	if r.part >= 0 && r.part < len(Parts) {
		r.sums = append(r.sums, PartSum{Part: Parts[r.part], Count: r.count, SHA256: hex.EncodeToString(r.sum.Sum(nil))})
	}
	r.part++
	r.sum, r.count = sha256.New(), 0
}

func (r *Reader) checkManifest() error {
	m := r.manifest
	if m.Tenant != r.h.Tenant || m.ExportID != r.h.ExportID || m.Header != hex.EncodeToString(r.h.sum) {
		return invalid("the manifest does not match the header")
	}
	if len(m.Parts) != len(r.sums) {
		return invalid("the manifest lists %d parts, the archive holds %d", len(m.Parts), len(r.sums))
	}
	for i, s := range r.sums {
		if m.Parts[i] != s {
			return invalid("part %q does not match the manifest", s.Part)
		}
	}
	return io.EOF
}

// frame returns the next frame of the plaintext, or io.EOF after the last
// chunk.
func (r *Reader) frame() (byte, []byte, error) {
	head, err := r.take(5)
	if err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > maxFrame {
		return 0, nil, invalid("a frame of %d bytes", n)
	}
	kind := head[0]
	payload, err := r.take(int(n))
	if err == io.EOF {
		return 0, nil, invalid("cut off in a frame")
	}
	return kind, payload, err
}

// take returns the next n bytes of plaintext, opening chunks as needed;
// io.EOF if the last chunk was consumed exactly.
func (r *Reader) take(n int) ([]byte, error) {
	for len(r.plain) < n {
		if r.last {
			if len(r.plain) == 0 {
				return nil, io.EOF
			}
			return nil, invalid("cut off in a frame")
		}
		if err := r.chunk(); err != nil {
			return nil, err
		}
	}
	out := bytes.Clone(r.plain[:n])
	r.plain = r.plain[n:]
	return out, nil
}

func (r *Reader) chunk() error {
	var head [5]byte
	if _, err := io.ReadFull(r.r, head[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalid("cut off before its last chunk")
		}
		return err
	}
	n := binary.BigEndian.Uint32(head[1:])
	if n > chunkSize+uint32(r.aead.Overhead()) || head[0] > flagLast {
		return invalid("malformed chunk")
	}
	ct := make([]byte, n)
	if _, err := io.ReadFull(r.r, ct); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return invalid("cut off in a chunk")
		}
		return err
	}
	last := head[0] == flagLast
	pt, err := r.aead.Open(nil, chunkNonce(r.index), ct, chunkAD(r.h.Tenant, r.h.sum, r.index, last))
	if err != nil {
		return invalid("chunk %d does not open", r.index)
	}
	r.index++
	r.last = last
	if last {
		if _, err := r.r.ReadByte(); err != io.EOF {
			return invalid("data after the last chunk")
		}
	}
	r.plain = append(r.plain, pt...)
	return nil
}
