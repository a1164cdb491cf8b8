package auth

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// b32Alphabet is RFC 4648's base32 alphabet in lower case. It contains no
// '_', which is what lets credentials use '_' as their separator.
const b32Alphabet = "abcdefghijklmnopqrstuvwxyz234567"

// b32 encodes every random or binary part of a credential.
var b32 = base32.NewEncoding(b32Alphabet).WithPadding(base32.NoPadding)

// b32Values maps a byte to its value in b32Alphabet, or 0xff if it is not in
// the alphabet.
var b32Values = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := range len(b32Alphabet) {
		t[b32Alphabet[i]] = byte(i)
	}
	return t
}()

// decodeB32 decodes s into dst, which it must fill exactly. It accepts only
// what b32 would produce for dst: the exact length, the lower-case alphabet
// and zero trailing bits. encoding/base32 is not used because it skips line
// breaks and ignores trailing bits, so it would accept several spellings of
// one credential.
func decodeB32(dst []byte, s string) bool {
	if len(s) != b32.EncodedLen(len(dst)) {
		return false
	}
	var acc uint64
	var nbits uint
	n := 0
	for i := 0; i < len(s); i++ {
		v := b32Values[s[i]]
		if v == 0xff {
			return false
		}
		acc = acc<<5 | uint64(v)
		nbits += 5
		if nbits >= 8 {
			nbits -= 8
			dst[n] = byte(acc >> nbits)
			n++
		}
	}
	return acc&(1<<nbits-1) == 0
}

// randomB32 returns n random bytes encoded with b32.
func randomB32(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return b32.EncodeToString(b), nil
}

// parseTenantID decodes tid, which must be a UUID in canonical form: 36
// characters, lower-case hex, dashes at 8, 13, 18 and 23. The nil UUID is
// refused: no tenant has it.
func parseTenantID(tid tenant.ID) (u [16]byte, ok bool) {
	s := string(tid)
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++ // skip the dash checked above
		}
		hi, lo := unhex(s[i]), unhex(s[i+1])
		if hi > 0xf || lo > 0xf {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, u != [16]byte{}
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}

// formatTenantID renders u as a canonical UUID. It returns "" for the nil
// UUID, which is never a tenant.
func formatTenantID(u [16]byte) tenant.ID {
	if u == [16]byte{} {
		return ""
	}
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:36], u[10:16])
	return tenant.ID(b[:])
}

// validTenantID reports whether tid is a canonical, non-nil UUID.
func validTenantID(tid tenant.ID) bool {
	_, ok := parseTenantID(tid)
	return ok
}
