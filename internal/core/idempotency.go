package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// IdempotencyTTL is how long a stored response answers retries.
const IdempotencyTTL = 24 * time.Hour

// Idempotency identifies a request made with an Idempotency-Key header.
type Idempotency struct {
	// Key is the client's Idempotency-Key.
	Key string
	// RequestHash identifies the request (method, path, body): the same key
	// with another request is refused.
	RequestHash []byte
	// Replayed is set by the operation when it answered from a stored
	// response instead of acting again.
	Replayed bool
}

// idempotencyStore is what both store.Tx and store.PlatformTx offer.
type idempotencyStore interface {
	GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error)
	PutIdempotency(ctx context.Context, rec *store.Idempotency) error
}

// replay returns the response stored for idem, or the zero T when there is
// none (or it expired). It must run in the same transaction as the write it
// guards, so that two retries cannot both act.
func replay[T any](ctx context.Context, s idempotencyStore, idem *Idempotency, now time.Time) (T, error) {
	return replaySealed[T](ctx, s, idem, now, nil, nil)
}

// sealedResponse starts a stored response that is sealed under the
// tenant's data key (it holds encrypted fields in clear).
var sealedResponse = []byte("\x00sealed\x00")

// replaySealed is replay for responses that rememberSealed stored: keys,
// when not nil, open them, bound to aad.
func replaySealed[T any](ctx context.Context, s idempotencyStore, idem *Idempotency, now time.Time, keys dataKeys, aad []byte) (T, error) {
	var zero T
	if idem == nil {
		return zero, nil
	}
	rec, err := s.GetIdempotency(ctx, idem.Key)
	if errors.Is(err, store.ErrNotFound) || err == nil && now.Sub(rec.CreatedAt) > IdempotencyTTL {
		return zero, nil
	}
	if err != nil {
		return zero, err
	}
	if !bytes.Equal(rec.RequestHash, idem.RequestHash) {
		return zero, &Error{Kind: KindIdempotencyKeyReused, Field: "Idempotency-Key", Detail: "this Idempotency-Key was used for a different request", Pos: -1}
	}
	resp := rec.Response
	if sealed, ok := bytes.CutPrefix(resp, sealedResponse); ok {
		if keys == nil {
			return zero, fmt.Errorf("decode stored response: it is sealed: %w", ErrSealBroken)
		}
		if resp, err = keys.Open(slices.Concat(aad, []byte(idem.Key)), sealed); err != nil {
			return zero, fmt.Errorf("open stored response: %w", err)
		}
	}
	var res T
	if err := json.Unmarshal(resp, &res); err != nil {
		return zero, fmt.Errorf("decode stored response: %w", err)
	}
	idem.Replayed = true
	return res, nil
}

// remember stores res as the response to idem, in the transaction that
// produced it.
func remember(ctx context.Context, s idempotencyStore, idem *Idempotency, now time.Time, res any) error {
	return rememberSealed(ctx, s, idem, now, res, nil, nil)
}

// rememberSealed is remember that seals the stored response under keys,
// bound to aad and the Idempotency-Key, when keys is not nil.
func rememberSealed(ctx context.Context, s idempotencyStore, idem *Idempotency, now time.Time, res any, keys dataKeys, aad []byte) error {
	if idem == nil {
		return nil
	}
	// Without HTML escaping, like the stored records, so that a replay
	// answers the same bytes.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if keys != nil {
		sealed, err := keys.Seal(slices.Concat(aad, []byte(idem.Key)), b)
		if err != nil {
			return err
		}
		b = append(append([]byte(nil), sealedResponse...), sealed...)
	}
	return s.PutIdempotency(ctx, &store.Idempotency{Key: idem.Key, RequestHash: idem.RequestHash, Response: b, CreatedAt: now})
}
