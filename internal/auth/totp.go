package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters: RFC 6238 as every authenticator app reads it — 30 s
// steps, 6 digits, HMAC-SHA-1, a 160-bit seed — and a skew of one step
// either way for clocks that drift.
const (
	TOTPPeriod   = 30
	TOTPDigits   = 6
	TOTPSkew     = 1
	totpSeedSize = 20
)

// totpB32 is the base32 of authenticator apps: RFC 4648, upper case.
var totpB32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSeed returns a fresh random TOTP seed.
func NewTOTPSeed() ([]byte, error) {
	seed := make([]byte, totpSeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("totp seed: %w", err)
	}
	return seed, nil
}

// TOTPKey returns seed as an authenticator app takes it: the base32
// secret, and the otpauth:// URI (for a QR code) naming issuer and
// account.
func TOTPKey(issuer, account string, seed []byte) (secret, uri string, err error) {
	k, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: TOTPPeriod,
		Secret: seed, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", "", fmt.Errorf("totp key: %w", err)
	}
	return k.Secret(), k.URL(), nil
}

// TOTPStep is the time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// TOTPCode returns seed's code for the step of t.
func TOTPCode(seed []byte, t time.Time) (string, error) {
	return hotp.GenerateCodeCustom(totpB32.EncodeToString(seed), uint64(TOTPStep(t)),
		hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
}

// CheckTOTP reports whether code is seed's code for a step within TOTPSkew
// of now's that is later than after (the last step accepted before: a code
// is good once), and returns the earliest such step. Every candidate step
// is checked, whatever matched, and each comparison is the library's
// constant-time one.
func CheckTOTP(seed []byte, code string, now time.Time, after int64) (step int64, ok bool) {
	if !IsTOTPCode(code) {
		return 0, false
	}
	secret := totpB32.EncodeToString(seed)
	cur := TOTPStep(now)
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		match, err := hotp.ValidateCustom(code, uint64(s), secret,
			hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err == nil && match && s > after && !ok {
			step, ok = s, true
		}
	}
	return step, ok
}

// IsTOTPCode reports whether s has the form of a TOTP code: six digits.
func IsTOTPCode(s string) bool {
	if len(s) != TOTPDigits {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// NewRecoveryCodes returns n recovery codes of 80 random bits each,
// written xxxx-xxxx-xxxx-xxxx.
func NewRecoveryCodes(n int) ([]string, error) {
	codes := make([]string, n)
	buf := make([]byte, 16)
	for i := range codes {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("recovery codes: %w", err)
		}
		var b strings.Builder
		for j, c := range buf {
			if j > 0 && j%4 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(b32Alphabet[c&31])
		}
		codes[i] = b.String()
	}
	return codes, nil
}

// NormalizeRecoveryCode returns code as it is hashed: lower case, without
// the dashes and spaces people type.
func NormalizeRecoveryCode(code string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case r >= 'A' && r <= 'Z':
			return r + ('a' - 'A')
		}
		return r
	}, code)
}

// HashRecoveryCode hashes a recovery code bound to its tenant and user, so
// that a code of one user is worth nothing for another. The codes carry 80
// random bits: a fast hash is as safe as a slow one.
func HashRecoveryCode(tenant, user, code string) []byte {
	h := sha256.New()
	h.Write([]byte("bulkhead recovery code\x00" + tenant + "\x00" + user + "\x00"))
	h.Write([]byte(NormalizeRecoveryCode(code)))
	return h.Sum(nil)
}

// MatchRecoveryCode returns the index of the hash in hashes equal to hash,
// or -1, comparing each in constant time and all of them whatever matched.
func MatchRecoveryCode(hashes [][]byte, hash []byte) int {
	found := -1
	for i, h := range hashes {
		if subtle.ConstantTimeCompare(h, hash) == 1 && found < 0 {
			found = i
		}
	}
	return found
}
