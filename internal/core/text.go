package core

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The text rule. Every string a client sends that core stores or looks up —
// names, emails, plan references, API-key names, the strings and keys of
// records and collection schemas — is valid UTF-8 without U+0000 (NUL).
// PostgreSQL's text and jsonb cannot hold NUL while SQLite can, so the rule
// is decided here, before the database, and both stores give the same 400.
// Lengths are counted in characters (Unicode code points), as JSON Schema's
// minLength and maxLength count them, never in bytes.

// CheckText returns an invalid Error naming field unless s obeys the text
// rule: valid UTF-8 without U+0000.
func CheckText(field, s string) error {
	switch {
	case strings.IndexByte(s, 0) >= 0:
		return invalid(field, field+" must not contain the NUL character (U+0000)")
	case !utf8.ValidString(s):
		return invalid(field, field+" must be valid UTF-8")
	}
	return nil
}

// TextLen is the length of s as the API counts it: in characters (Unicode
// code points).
func TextLen(s string) int { return utf8.RuneCountInString(s) }

// checkText applies the text rule to s and requires min to max characters.
func checkText(field, s string, min, max int) error {
	if err := CheckText(field, s); err != nil {
		return err
	}
	if n := TextLen(s); n < min || n > max {
		return invalid(field, fmt.Sprintf("%s must be %d to %d characters long", field, min, max))
	}
	return nil
}
