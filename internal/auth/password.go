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
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
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

// Passwords hashes and verifies passwords with argon2id. argon2id is
// memory-hard: each running hash holds Memory KiB, so Passwords lets at most
// a fixed number run at once and makes the rest wait. A Passwords is safe for
// concurrent use.
type Passwords struct {
	params PasswordParams
	sem    chan struct{}
	// keyFunc is argon2.IDKey; tests replace it to observe concurrency.
	keyFunc func(password, salt []byte, time, memory uint32, threads uint8, keyLen uint32) []byte
}

// NewPasswords returns a Passwords that hashes new passwords with params and
// runs at most maxConcurrent hashes at once. Zero fields of params take their
// value from DefaultPasswordParams; maxConcurrent < 1 means half of
// runtime.GOMAXPROCS(0), at least 1, so that a flood of logins (which need
// no credential) leaves the other processors to the rest of the API. The memory held by hashing is then bounded by
// maxConcurrent × Memory (for stored hashes with other parameters, by
// maxConcurrent × their Memory, at most MaxPasswordMemory). NewPasswords panics if params, after defaults, fail
// Validate; configuration should call Validate first.
func NewPasswords(params PasswordParams, maxConcurrent int) *Passwords {
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
	if maxConcurrent < 1 {
		maxConcurrent = max(1, runtime.GOMAXPROCS(0)/2)
	}
	return &Passwords{
		params:  params,
		sem:     make(chan struct{}, maxConcurrent),
		keyFunc: argon2.IDKey,
	}
}

// Params returns the parameters Hash uses.
func (p *Passwords) Params() PasswordParams { return p.params }

// acquire waits for a hashing slot. It fails with ctx's error if ctx is done
// first, and always if ctx is already done on entry.
func (p *Passwords) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case p.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// derive runs argon2id in a slot.
func (p *Passwords) derive(ctx context.Context, password string, salt []byte, params PasswordParams, keyLen int) ([]byte, error) {
	if err := p.acquire(ctx); err != nil {
		return nil, err
	}
	defer func() { <-p.sem }()
	return p.keyFunc([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(keyLen)), nil
}

// Hash returns password's argon2id hash as a PHC string,
// $argon2id$v=19$m=<Memory>,t=<Time>,p=<Threads>$<salt>$<key>, with a random
// 16-byte salt and a 32-byte key, both in unpadded standard base64. It
// returns ctx's error if ctx ends while waiting for a slot. Hash does not
// apply ValidatePassword.
func (p *Passwords) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, passwordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generate salt: %w", err)
	}
	key, err := p.derive(ctx, password, salt, p.params, passwordKeyLen)
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
// A wrong password is (false, nil). The error is non-nil only if encoded is
// malformed (wrapping ErrMalformedHash) or ctx ends while waiting for a slot
// (ctx's error).
func (p *Passwords) Verify(ctx context.Context, password, encoded string) (bool, error) {
	params, salt, want, err := decodePasswordHash(encoded)
	if err != nil {
		return false, err
	}
	got, err := p.derive(ctx, password, salt, params, len(want))
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
// does not reveal which emails exist. It returns ctx's error if ctx ends
// while waiting for a slot.
func (p *Passwords) VerifyDummy(ctx context.Context, password string) error {
	_, err := p.derive(ctx, password, dummySalt, p.params, passwordKeyLen)
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

// Password length bounds of ValidatePassword, in bytes.
const (
	// MinPasswordLen is the shortest password accepted.
	MinPasswordLen = 10
	// MaxPasswordLen is the longest password accepted. It bounds the work
	// and memory an attacker can make one login cost.
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
// MaxPasswordLen bytes of valid UTF-8. It returns nil or a
// *PasswordPolicyError. Length is counted in bytes, not characters, because
// the upper bound protects the hash and the lower one need not be exact.
func ValidatePassword(pw string) error {
	switch {
	case len(pw) < MinPasswordLen:
		return &PasswordPolicyError{Reason: fmt.Sprintf("password must be at least %d bytes long", MinPasswordLen)}
	case len(pw) > MaxPasswordLen:
		return &PasswordPolicyError{Reason: fmt.Sprintf("password must be at most %d bytes long", MaxPasswordLen)}
	case !utf8.ValidString(pw):
		return &PasswordPolicyError{Reason: "password must be valid UTF-8"}
	}
	return nil
}
