package tenant

import (
	"encoding/hex"
	"fmt"

	"github.com/google/uuid"
)

// NewID returns a new tenant ID: a version 7 UUID, whose time-ordered bits
// keep new tenants' rows together in indexes.
func NewID() ID { return ID(uuid.Must(uuid.NewV7()).String()) }

// ParseID returns s as an ID if it is one: a UUID in canonical form — 36
// characters, lower-case hex, dashes at 8, 13, 18 and 23 — and not the nil
// UUID. Any other spelling of the same UUID would be another ID to every
// map and database key, so it is refused, as is anything that could be
// path or SQL syntax. This is the one place tenant IDs are checked.
func ParseID(s string) (ID, error) {
	if _, ok := ID(s).Bytes(); !ok {
		return "", fmt.Errorf("tenant id %q is not a canonical UUID", s)
	}
	return ID(s), nil
}

// Valid reports whether id is a canonical, non-nil UUID: what ParseID
// accepts.
func (id ID) Valid() bool {
	_, ok := id.Bytes()
	return ok
}

// Bytes returns the 16 bytes of the UUID id, and false if id is not valid.
func (id ID) Bytes() (u [16]byte, ok bool) {
	s := string(id)
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

// IDFromBytes renders u as a canonical ID. It returns the zero ID for the
// nil UUID, which is never a tenant.
func IDFromBytes(u [16]byte) ID {
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
	return ID(b[:])
}

// unhex returns the value of a lower-case hex digit, or 0xff.
func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return 0xff
}
