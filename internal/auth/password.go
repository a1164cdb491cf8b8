package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// PasswordParams are argon2id's cost parameters.
type PasswordParams struct {
	// Memory is the memory cost in KiB. It must be between 8*Threads and
	// MaxPasswordMemory.
	Memory uint32
	// Time is the number of passes over the memory, 1 to MaxPasswordTime.
	Time uint32
	// Threads is the degree of parallelism (lanes), at least 1.
	Threads uint8
}

// DefaultPasswordParams is OWASP's recommended argon2id configuration:
// 19 MiB of memory, 2 passes, 1 lane.
var DefaultPasswordParams = PasswordParams{Memory: 19 * 1024, Time: 2, Threads: 1}

// Bounds on PasswordParams. They keep a corrupt or hostile stored hash from
// making one verification take the machine.
const (
	// MaxPasswordMemory is 2 GiB, RFC 9106's largest recommendation.
	MaxPasswordMemory = 2 * 1024 * 1024
	// MaxPasswordTime bounds the number of passes.
	MaxPasswordTime = 64
)

const (
	passwordSaltLen = 16
	passwordKeyLen  = 32
	// Accepted lengths in stored hashes, for hashes made elsewhere.
	minSaltLen, maxSaltLen = 8, 64
	minKeyLen, maxKeyLen   = 16, 64
)

// Validate reports whether p can be used: every field within its bounds.
// The error names the field that is wrong.
func (p PasswordParams) Validate() error {
	switch {
	case p.Threads < 1:
		//lint:ignore ST1005 the error starts with the name of the field that is wrong
		return fmt.Errorf("Threads must be >= 1, got %d", p.Threads)
	case p.Time < 1 || p.Time > MaxPasswordTime:
		//lint:ignore ST1005 the error starts with the name of the field that is wrong
		return fmt.Errorf("Time must be in [1, %d], got %d", MaxPasswordTime, p.Time)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxPasswordMemory:
		//lint:ignore ST1005 the error starts with the name of the field that is wrong
		return fmt.Errorf("Memory must be in [8*Threads, %d] KiB, got %d", MaxPasswordMemory, p.Memory)
	}
	return nil
}

// ErrMalformedHash is returned (wrapped) by Passwords.Verify for a stored
// hash that is not a well-formed argon2id PHC string within the bounds of
// PasswordParams.
var ErrMalformedHash = errors.New("malformed password hash")

// HashLimits bounds the work of password hashing. Its zero value means all
// defaults.
type HashLimits struct {
	// Concurrent is how many hashes run at once. Defaults to half of
	// runtime.GOMAXPROCS(0), at least 1, so that a flood of logins (which
	// need no credential) leaves the other processors to the rest of the
	// API.
	Concurrent int
	// MaxQueue is how many hashes may wait for their turn at once, over all
	// tenants. Defaults to 32 × Concurrent.
	MaxQueue int
	// MaxWait is how long a hash may wait for its turn before it is shed.
	// Defaults to 2s.
	MaxWait time.Duration
}

// Passwords hashes and verifies passwords with argon2id. argon2id is
// memory-hard and costs each hash tens of milliseconds of a processor, and a
// login needs no credential: hashing is scheduled like database work. At most
// HashLimits.Concurrent hashes run at once; the turns go to tenants fairly
// (a fairq.Scheduler, one queue per tenant, by deficit round robin), so a
// flood of logins at one tenant, or at slugs that name no tenant (which
// share the queue of the zero tenant.ID), delays another tenant's logins by
// a turn or two, not by the flood. The queue is bounded and every hash has
// a deadline: a hash that cannot start in time fails with a
// *fairq.ShedError. The memory held by hashing is bounded by Concurrent ×
// Memory (for stored hashes with other parameters, by Concurrent × their
// Memory, at most MaxPasswordMemory). A Passwords is safe for concurrent use.
type Passwords struct {
	params PasswordParams
	turns  *fairq.Scheduler
	// keyFunc is argon2.IDKey; tests replace it to observe concurrency.
	keyFunc func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// NewPasswords returns a Passwords that hashes new passwords with params,
// within limits. Zero fields of params take their value from
// DefaultPasswordParams, zero fields of limits their defaults. NewPasswords
// panics if params, after defaults, fail Validate, or limits has a negative
// field; configuration should check both first.
func NewPasswords(params PasswordParams, limits HashLimits) *Passwords {
	if params.Memory == 0 {
		params.Memory = DefaultPasswordParams.Memory
	}
	if params.Time == 0 {
		params.Time = DefaultPasswordParams.Time
	}
	if params.Threads == 0 {
		params.Threads = DefaultPasswordParams.Threads
	}
	if err := params.Validate(); err != nil {
		panic("auth: NewPasswords: " + err.Error())
	}
	if limits.Concurrent < 1 {
		limits.Concurrent = max(1, runtime.GOMAXPROCS(0)/2)
	}
	if limits.MaxQueue < 1 {
		limits.MaxQueue = 32 * limits.Concurrent
	}
	if limits.MaxWait <= 0 {
		limits.MaxWait = 2 * time.Second
	}
	turns, err := fairq.New(fairq.Config{
		Slots: limits.Concurrent,
		// A hash holds its turn briefly: a lone tenant may take them all,
		// and gives them up within one hash when others wait.
		MaxTenantSlots:   limits.Concurrent,
		MaxQueue:         limits.MaxQueue,
		MaxWait:          limits.MaxWait,
		BreakerThreshold: -1, // a hash's cost does not depend on the tenant
	})
	if err != nil {
		panic("auth: NewPasswords: " + err.Error())
	}
	return &Passwords{params: params, turns: turns, keyFunc: argon2.IDKey}
}

// Params returns the parameters Hash uses.
func (p *Passwords) Params() PasswordParams { return p.params }

// derive runs argon2id in a turn of tid's. The zero tid is the turn of
// work that names no tenant.
func (p *Passwords) derive(ctx context.Context, tid tenant.ID, password string, salt []byte, params PasswordParams, keyLen int) ([]byte, error) {
	turn, err := p.Turn(ctx, tid)
	if err != nil {
		return nil, err
	}
	defer turn.End()
	return turn.derive(password, salt, params, keyLen), nil
}

// Turn is the right to run one hash now, granted by Passwords.Turn. Its
// holder calls Verify, or End to give it back unused; a Turn is not safe for
// concurrent use.
type Turn struct {
	p    *Passwords
	slot fairq.Slot
	done bool
}

// Turn waits for a hashing turn of tenant tid's (the zero tid: of work that
// names no tenant), for a caller that has more to do before it hashes, such
// as reading the stored hash: what it does not do when the turn does not
// come. It fails as Verify does when the turn does not come in time.
func (p *Passwords) Turn(ctx context.Context, tid tenant.ID) (*Turn, error) {
	slot, err := p.turns.Acquire(ctx, tid, 1, fairq.Interactive, time.Time{})
	if err != nil {
		return nil, err
	}
	return &Turn{p: p, slot: slot}, nil
}

// End gives the turn back. It may be called more than once.
func (t *Turn) End() {
	if !t.done {
		t.done = true
		t.slot.Release(fairq.OutcomeOK)
	}
}

// Verify is Passwords.Verify in the turn, which it ends.
func (t *Turn) Verify(password, encoded string) (bool, error) {
	defer t.End()
	params, salt, want, err := decodePasswordHash(encoded)
	if err != nil {
		return false, err
	}
	got := t.derive(password, salt, params, len(want))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func (t *Turn) derive(password string, salt []byte, params PasswordParams, keyLen int) []byte {
	return t.p.keyFunc([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(keyLen))
}

// Stats returns the hashing scheduler's figures, for metrics and tests.
func (p *Passwords) Stats() fairq.Stats { return p.turns.Stats() }

// Hash returns password's argon2id hash as a PHC string,
// $argon2id$v=19$m=<Memory>,t=<Time>,p=<Threads>$<salt>$<key>, with a random
// 16-byte salt and a 32-byte key, both in unpadded standard base64, in a turn
// of tenant tid's. It returns a *fairq.ShedError if the turn does not come in
// time, and ctx's error if ctx ends first. Hash does not apply
// ValidatePassword.
func (p *Passwords) Hash(ctx context.Context, tid tenant.ID, password string) (string, error) {
	salt := make([]byte, passwordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	key, err := p.derive(ctx, tid, password, salt, p.params, passwordKeyLen)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.params.Memory, p.params.Time, p.params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// Verify reports whether password matches encoded, a hash from Hash. It
// reads the cost parameters from encoded, so hashes made before a change of
// parameters keep working (see NeedsRehash), and compares in constant time.
// A wrong password is (false, nil). The hash runs in a turn of tenant
// tid's. The error is non-nil only if encoded is malformed (wrapping
// ErrMalformedHash), the turn does not come in time (a *fairq.ShedError) or
// ctx ends first (ctx's error).
func (p *Passwords) Verify(ctx context.Context, tid tenant.ID, password, encoded string) (bool, error) {
	params, salt, want, err := decodePasswordHash(encoded)
	if err != nil {
		return false, err
	}
	got, err := p.derive(ctx, tid, password, salt, params, len(want))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummySalt salts VerifyDummy's hash. Its value does not matter.
var dummySalt = make([]byte, passwordSaltLen)

// VerifyDummy costs what Verify costs for a hash made with the current
// parameters, and its result means nothing. Call it when a login names an
// unknown user, so that the response takes as long as for a known one and
// does not reveal which emails exist. It fails as Verify does when the turn
// does not come.
func (p *Passwords) VerifyDummy(ctx context.Context, tid tenant.ID, password string) error {
	_, err := p.derive(ctx, tid, password, dummySalt, p.params, passwordKeyLen)
	return err
}

// NeedsRehash reports whether encoded was made with parameters or lengths
// other than the ones Hash uses now, or cannot be read. After a successful
// Verify, callers may store a new Hash of the password when it reports true.
func (p *Passwords) NeedsRehash(encoded string) bool {
	params, salt, key, err := decodePasswordHash(encoded)
	return err != nil || params != p.params || len(salt) != passwordSaltLen || len(key) != passwordKeyLen
}

// decodePasswordHash parses $argon2id$v=19$m=M,t=T,p=P$salt$key strictly:
// decimal numbers without sign or leading zeros, parameters within the
// bounds of PasswordParams, canonical unpadded base64 without line breaks.
func decodePasswordHash(encoded string) (params PasswordParams, salt, key []byte, err error) {
	malformed := func(what string) (PasswordParams, []byte, []byte, error) {
		return PasswordParams{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, what)
	}
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return malformed("want 5 fields separated by '$'")
	}
	if parts[1] != "argon2id" {
		return malformed("algorithm is not argon2id")
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return malformed("unsupported version")
	}
	m, rest, ok1 := strings.Cut(parts[3], ",")
	t, pp, ok2 := strings.Cut(rest, ",")
	if !ok1 || !ok2 {
		return malformed("parameters are not m=,t=,p=")
	}
	mem, okM := decimalParam(m, "m=", 32)
	tim, okT := decimalParam(t, "t=", 32)
	thr, okP := decimalParam(pp, "p=", 8)
	if !okM || !okT || !okP {
		return malformed("parameters are not m=,t=,p=")
	}
	params = PasswordParams{Memory: uint32(mem), Time: uint32(tim), Threads: uint8(thr)}
	if err := params.Validate(); err != nil {
		return malformed(err.Error())
	}
	if strings.ContainsAny(parts[4], "\r\n") || strings.ContainsAny(parts[5], "\r\n") {
		return malformed("line break in base64")
	}
	salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4])
	if err != nil || len(salt) < minSaltLen || len(salt) > maxSaltLen {
		return malformed("bad salt")
	}
	key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5])
	if err != nil || len(key) < minKeyLen || len(key) > maxKeyLen {
		return malformed("bad key")
	}
	return params, salt, key, nil
}

// decimalParam parses name followed by a canonical unsigned decimal of at
// most bits bits.
func decimalParam(s, name string, bits int) (uint64, bool) {
	digits, ok := strings.CutPrefix(s, name)
	if !ok || digits == "" || (digits[0] == '0' && len(digits) > 1) || digits[0] == '+' {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, bits)
	return n, err == nil
}

// Password length bounds of ValidatePassword, in characters (Unicode code
// points), as the API documents them.
const (
	// MinPasswordLen is the shortest password accepted.
	MinPasswordLen = 10
	// MaxPasswordLen is the longest password accepted. It bounds the work
	// and memory a password costs: at most 4 KiB of UTF-8.
	MaxPasswordLen = 1024
)

// PasswordPolicyError is why ValidatePassword refused a password. Its text
// is safe to show a client.
type PasswordPolicyError struct {
	// Reason is the rule the password broke, as a sentence fragment.
	Reason string
}

// Error returns e.Reason.
func (e *PasswordPolicyError) Error() string { return e.Reason }

// ValidatePassword checks pw against the password policy: MinPasswordLen to
// MaxPasswordLen characters of valid UTF-8. It returns nil or a
// *PasswordPolicyError. Length is counted in characters (Unicode code
// points), as the API's documents count lengths; the upper bound still
// bounds the bytes, at four per character.
func ValidatePassword(pw string) error {
	switch n := utf8.RuneCountInString(pw); {
	case !utf8.ValidString(pw):
		return &PasswordPolicyError{Reason: "password must be valid UTF-8"}
	case n < MinPasswordLen:
		return &PasswordPolicyError{Reason: fmt.Sprintf("password must be at least %d characters long", MinPasswordLen)}
	case n > MaxPasswordLen:
		return &PasswordPolicyError{Reason: fmt.Sprintf("password must be at most %d characters long", MaxPasswordLen)}
	}
	return nil
}
