package auth

import (
	"crypto/rand"
	"encoding/base32"
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
