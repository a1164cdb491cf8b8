package recsql

import (
	"time"
)

// RetentionDateBound is the last date (YYYY-MM-DD) an RFC 3339 timestamp
// before cut can start with, whatever its offset (offsets are less than a
// day): a data field's text greater than it is not expired, and stores
// skip it without parsing it.
func RetentionDateBound(cut time.Time) string {
	return cut.UTC().Add(24 * time.Hour).Format(time.DateOnly)
}

// ParseRetentionTime reads a data field's text as an RFC 3339 timestamp
// with a time zone (Z or an offset), as every store does for retention. It
// reports false for anything else, which never expires.
func ParseRetentionTime(s string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
