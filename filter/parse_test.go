package filter

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func num(f float64) Value  { return Value{Kind: Number, Num: f} }
func str(s string) Value   { return Value{Kind: String, Str: s} }
func boolean(b bool) Value { return Value{Kind: Bool, Bool: b} }

var null = Value{Kind: Null}

func tm(t *testing.T, s string) Value {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return Value{Kind: Time, Time: v.UTC()}
}

func at(pos int, field string, op Op, v Value) *Cmp {
	return &Cmp{Field: field, Op: op, Value: v, Pos: pos}
}

func and(terms ...Expr) *And { return &And{Terms: terms} }
func or(terms ...Expr) *Or   { return &Or{Terms: terms} }

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want Expr
	}{
		// No filter.
		{"", nil},
		{" \t\r\n ", nil},

		// Every operator.
		{`a = 1`, at(0, "a", Eq, num(1))},
		{`a != 1`, at(0, "a", Ne, num(1))},
		{`a > 1`, at(0, "a", Gt, num(1))},
		{`a >= 1`, at(0, "a", Ge, num(1))},
		{`a < 1`, at(0, "a", Lt, num(1))},
		{`a <= 1`, at(0, "a", Le, num(1))},
		{`a ~ "x"`, at(0, "a", Contains, str("x"))},
		{`a ^= "x"`, at(0, "a", Prefix, str("x"))},
		{`a^=""`, at(0, "a", Prefix, str(""))},
		{`a>="m"`, at(0, "a", Ge, str("m"))},
		{`a<"m"`, at(0, "a", Lt, str("m"))},

		// Whitespace is optional and may be any of space, tab, CR, LF.
		{`a=1`, at(0, "a", Eq, num(1))},
		{"\n\ta\r=\t1 \n", at(2, "a", Eq, num(1))},
		{"a=1&&b!=2", and(at(0, "a", Eq, num(1)), at(5, "b", Ne, num(2)))},

		// Field names.
		{`_ = 1`, at(0, "_", Eq, num(1))},
		{`A_b9 = 1`, at(0, "A_b9", Eq, num(1))},
		{`true = false`, at(0, "true", Eq, boolean(false))},
		{strings.Repeat("f", MaxFieldLength) + ` = 1`, at(0, strings.Repeat("f", MaxFieldLength), Eq, num(1))},

		// Precedence, flattening and parentheses.
		{`a=1 && b=2 && c=3`, and(at(0, "a", Eq, num(1)), at(7, "b", Eq, num(2)), at(14, "c", Eq, num(3)))},
		{`a=1 || b=2 || c=3`, or(at(0, "a", Eq, num(1)), at(7, "b", Eq, num(2)), at(14, "c", Eq, num(3)))},
		{`a=1 || b=2 && c=3`, or(at(0, "a", Eq, num(1)), and(at(7, "b", Eq, num(2)), at(14, "c", Eq, num(3))))},
		{`a=1 && b=2 || c=3`, or(and(at(0, "a", Eq, num(1)), at(7, "b", Eq, num(2))), at(14, "c", Eq, num(3)))},
		{`(a=1 || b=2) && c=3`, and(or(at(1, "a", Eq, num(1)), at(8, "b", Eq, num(2))), at(16, "c", Eq, num(3)))},
		{`a=1 && (b=2 || c=3)`, and(at(0, "a", Eq, num(1)), or(at(8, "b", Eq, num(2)), at(15, "c", Eq, num(3))))},
		{`(a=1)`, at(1, "a", Eq, num(1))},
		{`((((a=1))))`, at(4, "a", Eq, num(1))},
		{`(a=1 && b=2) && c=3`, and(at(1, "a", Eq, num(1)), at(8, "b", Eq, num(2)), at(16, "c", Eq, num(3)))},
		{`a=1 && (b=2 && c=3)`, and(at(0, "a", Eq, num(1)), at(8, "b", Eq, num(2)), at(15, "c", Eq, num(3)))},
		{`(a=1 || b=2) || (c=3)`, or(at(1, "a", Eq, num(1)), at(8, "b", Eq, num(2)), at(17, "c", Eq, num(3)))},
		{`((a=1 && b=2)) || c=3`, or(and(at(2, "a", Eq, num(1)), at(9, "b", Eq, num(2))), at(18, "c", Eq, num(3)))},
		{`(a=1 || b=2) && (c=3 || d=4)`, and(
			or(at(1, "a", Eq, num(1)), at(8, "b", Eq, num(2))),
			or(at(17, "c", Eq, num(3)), at(24, "d", Eq, num(4))),
		)},

		// Literals: null and booleans.
		{`a = null`, at(0, "a", Eq, null)},
		{`a != null`, at(0, "a", Ne, null)},
		{`a = true`, at(0, "a", Eq, boolean(true))},
		{`a != false`, at(0, "a", Ne, boolean(false))},

		// Numbers.
		{`a = 0`, at(0, "a", Eq, num(0))},
		{`a = -0`, at(0, "a", Eq, num(0))},
		{`a = -0.0e5`, at(0, "a", Eq, num(0))},
		{`a = 12`, at(0, "a", Eq, num(12))},
		{`a = -12`, at(0, "a", Eq, num(-12))},
		{`a = 1.5`, at(0, "a", Eq, num(1.5))},
		{`a = 0.25`, at(0, "a", Eq, num(0.25))},
		{`a = 1e3`, at(0, "a", Eq, num(1000))},
		{`a = 1E3`, at(0, "a", Eq, num(1000))},
		{`a = 1e+3`, at(0, "a", Eq, num(1000))},
		{`a = 25e-2`, at(0, "a", Eq, num(0.25))},
		{`a = 1.5e300`, at(0, "a", Eq, num(1.5e300))},
		{`a = 1e-400`, at(0, "a", Eq, num(0))}, // underflow rounds to 0
		{`a = 1.7976931348623157e308`, at(0, "a", Eq, num(math.MaxFloat64))},
		{`a = 5e-324`, at(0, "a", Eq, num(5e-324))},
		{`a = 9007199254740993`, at(0, "a", Eq, num(9007199254740992))}, // rounds to nearest float64
		{`a = 1e05`, at(0, "a", Eq, num(1e5))},                          // JSON allows leading zeros in exponents
		{`a > -1.5 && a < 1e2`, and(at(0, "a", Gt, num(-1.5)), at(12, "a", Lt, num(100)))},

		// Strings and every escape.
		{`a = ""`, at(0, "a", Eq, str(""))},
		{`a = "hello world"`, at(0, "a", Eq, str("hello world"))},
		{`a = "\"\\\/\b\f\n\r\t"`, at(0, "a", Eq, str("\"\\/\b\f\n\r\t"))},
		{`a = "\u0041\u00e9\u00E9\u4e16"`, at(0, "a", Eq, str("Aéé世"))},
		{`a = "\u0001"`, at(0, "a", Eq, str("\x01"))},
		{`a = "\ud83d\ude00"`, at(0, "a", Eq, str("😀"))},
		{`a = "\uD83D\uDE00x"`, at(0, "a", Eq, str("😀x"))},
		{`a = "\ufffd"`, at(0, "a", Eq, str("\ufffd"))},
		{`a = "héllo 世界 😀"`, at(0, "a", Eq, str("héllo 世界 😀"))},
		{`a = "x\u0041y"`, at(0, "a", Eq, str("xAy"))},
		{`a = "&& || ( ) = \" ~"`, at(0, "a", Eq, str(`&& || ( ) = " ~`))},
		{"a = \"\x7f\"", at(0, "a", Eq, str("\x7f"))},
		{`a ~ "needle"`, at(0, "a", Contains, str("needle"))},

		// id takes strings with any operator.
		{`id = "rec_1"`, at(0, "id", Eq, str("rec_1"))},
		{`id != "rec_1"`, at(0, "id", Ne, str("rec_1"))},
		{`id > "rec_1"`, at(0, "id", Gt, str("rec_1"))},
		{`id <= "rec_1"`, at(0, "id", Le, str("rec_1"))},
		{`id ~ "rec"`, at(0, "id", Contains, str("rec"))},
		{`id ^= "rec_"`, at(0, "id", Prefix, str("rec_"))},

		// created_at and updated_at take RFC 3339 strings as UTC times.
		{`created_at = "2024-01-02T03:04:05Z"`, at(0, "created_at", Eq, tm(t, "2024-01-02T03:04:05Z"))},
		{`created_at != "2024-01-02T03:04:05Z"`, at(0, "created_at", Ne, tm(t, "2024-01-02T03:04:05Z"))},
		{`created_at >= "2024-01-02T03:04:05.123456+02:00"`, at(0, "created_at", Ge, tm(t, "2024-01-02T01:04:05.123456Z"))},
		{`updated_at < "2024-01-02T03:04:05-07:30"`, at(0, "updated_at", Lt, tm(t, "2024-01-02T10:34:05Z"))},
		{`updated_at > "0000-01-01T00:00:00Z"`, at(0, "updated_at", Gt, tm(t, "0000-01-01T00:00:00Z"))},
		{`updated_at <= "9999-12-31T23:59:59.999999Z"`, at(0, "updated_at", Le, tm(t, "9999-12-31T23:59:59.999999Z"))},
		{`created_at = "2024-01-02T03:04:05\u005a"`, at(0, "created_at", Eq, tm(t, "2024-01-02T03:04:05Z"))},

		// A realistic filter.
		{
			`status = "active" && (priority >= 3 || tags ~ "urgent") && created_at > "2024-01-01T00:00:00Z"`,
			and(
				at(0, "status", Eq, str("active")),
				or(at(22, "priority", Ge, num(3)), at(39, "tags", Contains, str("urgent"))),
				at(59, "created_at", Gt, tm(t, "2024-01-01T00:00:00Z")),
			),
		},
	}
	for _, tt := range tests {
		got, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.src, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Parse(%q) mismatch (-want +got):\n%s", tt.src, diff)
		}
	}
}

// TestParseTimeUTC checks that times come back in UTC, not merely equal
// instants, since backends may format them.
func TestParseTimeUTC(t *testing.T) {
	t.Parallel()
	e, err := Parse(`created_at > "2024-01-02T03:04:05+05:00"`)
	if err != nil {
		t.Fatal(err)
	}
	got := e.(*Cmp).Value.Time
	if got.Location() != time.UTC {
		t.Errorf("Location() = %v, want UTC", got.Location())
	}
	if want := "2024-01-01T22:04:05Z"; got.Format(time.RFC3339Nano) != want {
		t.Errorf("time = %s, want %s", got.Format(time.RFC3339Nano), want)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("f", MaxFieldLength+1)
	tests := []struct {
		src     string
		pos     int
		wantMsg string // a substring of the message
	}{
		// NUL can never match a record.
		{`a = "x\u0000"`, 6, `\u0000 is not allowed`},
		// Timestamps finer than a microsecond.
		{`created_at > "2024-01-02T03:04:05.1234567Z"`, 0, `at most microsecond precision`},
		// Missing pieces.
		{`a`, 1, `unexpected end of filter, expected an operator`},
		{`a =`, 3, `unexpected end of filter, expected a value`},
		{`a = `, 4, `expected a value`},
		{`= 1`, 0, `unexpected "=", expected a field name or "("`},
		{`a 1`, 2, `unexpected "1", expected an operator`},
		{`a b`, 2, `expected an operator`},
		{`a = 1 &&`, 8, `unexpected end of filter, expected a field name`},
		{`a = 1 ||`, 8, `expected a field name`},
		{`&& a = 1`, 0, `unexpected "&&"`},
		{`a = 1 && && b = 2`, 9, `unexpected "&&"`},
		{`a = 1 || && b = 2`, 9, `unexpected "&&"`},
		{`a = 1 & b = 2`, 6, `unexpected "&", expected "&&", "||" or the end of the filter (did you mean "&&"?)`},
		{`a = 1 | b = 2`, 6, `(did you mean "||"?)`},
		{`a == 1`, 3, `unexpected "=", expected a value`},
		{`a =! 1`, 3, `unexpected "!"`},
		{`a ! 1`, 2, `unexpected "!", expected an operator`},
		{`a ^ "x"`, 2, `unexpected "^", expected an operator (=, !=, >, >=, <, <=, ~, ^=) (did you mean "^="?)`},
		{`a =^ "x"`, 3, `unexpected "^", expected a value`},
		{`a ^== "x"`, 4, `unexpected "=", expected a value`},
		{`a => 1`, 3, `unexpected ">", expected a value`},
		{`a <> 1`, 3, `expected a value`},
		{`a = 1 b = 2`, 6, `unexpected "b", expected "&&", "||" or the end of the filter`},
		{`a = 1 (b = 2)`, 6, `unexpected "("`},
		{`a = 1 2`, 6, `unexpected "2"`},
		{`a = 1 = 2`, 6, `unexpected "="`},
		{`a = "x" "y"`, 8, `unexpected string`},
		{`"a" = 1`, 0, `unexpected string, expected a field name`},
		{`1 = 1`, 0, `unexpected "1", expected a field name`},
		{`a = b`, 4, `unexpected "b", expected a value`},
		{`a = (1)`, 4, `unexpected "(", expected a value`},

		// Parentheses.
		{`(a = 1`, 6, `expected "&&", "||" or ")" to close "(" at position 0`},
		{`(a = 1 b = 2)`, 7, `unexpected "b"`},
		{`((a = 1)`, 8, `to close "(" at position 0`},
		{`a = 1)`, 5, `unmatched ")"`},
		{`(a = 1))`, 7, `unmatched ")"`},
		{`()`, 1, `unexpected ")", expected a field name`},
		{`(`, 1, `unexpected end of filter`},
		{`)`, 0, `unexpected ")"`},
		{`a = 1 && ()`, 10, `unexpected ")"`},

		// Bad field names.
		{long + ` = 1`, 0, `field name is longer than 64 bytes`},
		{`a.b = 1`, 1, `unexpected ".b", expected an operator`},
		{`a-b = 1`, 1, `unexpected "-b", expected an operator`},
		{`é = 1`, 0, `unexpected "é"`},
		{`a$ = 1`, 1, `unexpected "$"`},
		{"\xff = 1", 0, `unexpected "\xff"`},
		{"a\x00 = 1", 1, `unexpected "\x00"`},
		{"a\v= 1", 1, `unexpected "\v"`},
		{"a\u00a0= 1", 1, `unexpected "\u00a0"`},

		// Bad numbers.
		{`a = 01`, 4, `invalid number`},
		{`a = -01`, 4, `invalid number`},
		{`a = +1`, 4, `invalid number`},
		{`a = .5`, 4, `invalid number`},
		{`a = 5.`, 4, `invalid number`},
		{`a = 1.e5`, 4, `invalid number`},
		{`a = 1e`, 4, `invalid number`},
		{`a = 1e+`, 4, `invalid number`},
		{`a = 0x1f`, 4, `invalid number`},
		{`a = 1_000`, 4, `invalid number`},
		{`a = 1abc`, 4, `invalid number`},
		{`a = -`, 4, `invalid number`},
		{`a = --1`, 4, `invalid number`},
		{`a = 1-2`, 4, `invalid number`},
		{`a = -Infinity`, 4, `invalid number`},
		{`a = Infinity`, 4, `unexpected "Infinity", expected a value`},
		{`a = NaN`, 4, `expected a value`},
		{`a = 1e400`, 4, `number is out of range`},
		{`a = -1e400`, 4, `number is out of range`},
		{`a = 1.8e308`, 4, `number is out of range`},
		{`a = 1` + strings.Repeat("0", 400), 4, `number is out of range`},

		// Bad keywords.
		{`a = True`, 4, `expected a value`},
		{`a = nil`, 4, `expected a value`},
		{`a = nullx`, 4, `expected a value`},
		{`a = 'x'`, 4, `unexpected "'"`},

		// Bad strings.
		{`a = "abc`, 4, `unterminated string`},
		{`a = "abc\"`, 4, `unterminated string`},
		{`a = "\`, 4, `unterminated string`},
		{`"abc`, 0, `unterminated string`},
		{`a = "x\qy"`, 6, `invalid escape in string`},
		{`a = "\x41"`, 5, `invalid escape in string`},
		{`a = "\'"`, 5, `invalid escape in string`},
		{`a = "\u12"`, 5, `invalid \u escape`},
		{`a = "\u12g4"`, 5, `invalid \u escape`},
		{`a = "\U0041"`, 5, `invalid escape`},
		{`a = "ab\ud800"`, 7, `unpaired surrogate`},
		{`a = "\ud800x"`, 5, `unpaired surrogate`},
		{`a = "\ud800\u0041"`, 5, `unpaired surrogate`},
		{`a = "\ud800\ud800"`, 5, `unpaired surrogate`},
		{`a = "\ud800\n"`, 5, `unpaired surrogate`},
		{`a = "\udc00"`, 5, `unpaired surrogate`},
		{`a = "\udfff\ud800"`, 5, `unpaired surrogate`},
		{"a = \"x\ny\"", 6, `control character in string`},
		{"a = \"\t\"", 5, `control character in string`},
		{"a = \"\\n\x01\"", 7, `control character in string`},
		{"a = \"\xff\"", 5, `invalid UTF-8 in string`},
		{"a = \"ab\xc3\"", 7, `invalid UTF-8 in string`},
		{"a = \"\\n\xc3(\"", 7, `invalid UTF-8 in string`},
		{"a = \"\xed\xa0\x80\"", 5, `invalid UTF-8 in string`}, // UTF-8 encoded surrogate
		{"a = \"\xc0\xaf\"", 5, `invalid UTF-8 in string`},     // overlong encoding

		// Type checks on data fields, at the comparison.
		{`a > true`, 0, `> needs a number or string, not boolean`},
		{`a >= false`, 0, `>= needs a number or string, not boolean`},
		{`a < null`, 0, `< needs a number or string, not null`},
		{`a <= null`, 0, `<= needs a number or string, not null`},
		{`a ~ 1`, 0, `~ needs a string, not number`},
		{`a ~ true`, 0, `~ needs a string, not boolean`},
		{`a ~ null`, 0, `~ needs a string, not null`},
		{`x = 1 && (y ~ 2)`, 10, `~ needs a string`},
		{`a ^= 1`, 0, `^= needs a string, not number`},
		{`a ^= true`, 0, `^= needs a string, not boolean`},
		{`a ^= null`, 0, `^= needs a string, not null`},
		{`id ^= 5`, 0, `id takes a string, not number`},

		// Type checks on id.
		{`id = 1`, 0, `id takes a string, not number`},
		{`id != null`, 0, `id takes a string, not null`},
		{`id = true`, 0, `id takes a string, not boolean`},
		{`id > 5`, 0, `id takes a string`},

		// Type checks on created_at and updated_at.
		{`created_at ~ "2024"`, 0, `created_at does not take ~`},
		{`updated_at ^= "2024"`, 0, `updated_at does not take ^=`},
		{`created_at = null`, 0, `created_at takes an RFC 3339 timestamp string, not null`},
		{`updated_at != null`, 0, `updated_at takes an RFC 3339 timestamp string, not null`},
		{`created_at > 1700000000`, 0, `not number`},
		{`created_at = true`, 0, `not boolean`},
		{`created_at > "2024-01-01"`, 0, `created_at takes an RFC 3339 timestamp`},
		{`created_at > "2024-01-01 00:00:00Z"`, 0, `RFC 3339`},
		{`created_at > "2024-01-01T00:00:00"`, 0, `RFC 3339`},
		{`created_at > "2024-02-30T00:00:00Z"`, 0, `RFC 3339`},
		{`created_at > "2024-01-01T00:00:60Z"`, 0, `RFC 3339`},
		{`created_at > ""`, 0, `RFC 3339`},
		{`a = 1 || updated_at > "yesterday"`, 9, `updated_at takes an RFC 3339 timestamp`},
		{`created_at > "0000-01-01T00:00:00+01:00"`, 0, `timestamp is out of range`},
		{`created_at > "9999-12-31T23:59:59-01:00"`, 0, `timestamp is out of range`},
	}
	for _, tt := range tests {
		_, err := Parse(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("Parse(%q) error = %v, want a *SyntaxError", tt.src, err)
			continue
		}
		if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.wantMsg) {
			t.Errorf("Parse(%q) error = %d: %s, want %d: ...%s...", tt.src, se.Pos, se.Msg, tt.pos, tt.wantMsg)
		}
	}
}

// TestParseFirstError checks that Parse reports the leftmost problem.
func TestParseFirstError(t *testing.T) {
	t.Parallel()
	_, err := Parse(`a ~ 1 && b > true && c = "\q"`)
	var se *SyntaxError
	if !errors.As(err, &se) || se.Pos != 0 {
		t.Errorf("error = %v, want one at position 0", err)
	}
}

func TestParseLimits(t *testing.T) {
	t.Parallel()
	terms := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("f%d = %d", i, i)
		}
		return strings.Join(parts, " && ")
	}
	nest := func(n int) string { return strings.Repeat("(", n) + "a = 1" + strings.Repeat(")", n) }
	longString := func(n int) string {
		src := `a = ""`
		return src[:5] + strings.Repeat("x", n-len(src)) + src[5:]
	}

	tests := []struct {
		name    string
		src     string
		wantPos int // -1 means no error
		wantMsg string
	}{
		{"MaxLength", longString(MaxLength), -1, ""},
		{"OverMaxLength", longString(MaxLength + 1), MaxLength, "filter is longer than 4096 characters"},
		{"OverMaxLengthSpaces", strings.Repeat(" ", MaxLength+1), MaxLength, "filter is longer than 4096 characters"},
		{"MaxLengthInCharacters", `a = "` + strings.Repeat("é", MaxLength-6) + `"`, -1, ""},
		{"OverMaxLengthInCharacters", `a = "` + strings.Repeat("é", MaxLength-5) + `"`, 5 + 2*(MaxLength-5), "filter is longer than 4096 characters"},
		{"MaxTerms", terms(MaxTerms), -1, ""},
		{"OverMaxTerms", terms(MaxTerms + 1), len(terms(MaxTerms)) + len(" && "), "more than 64 comparisons"},
		{"MaxDepth", nest(MaxDepth), -1, ""},
		{"OverMaxDepth", nest(MaxDepth + 1), MaxDepth, "parentheses nest deeper than 32"},
		{"OverMaxDepthUnclosed", strings.Repeat("(", MaxLength), MaxDepth, "parentheses nest deeper than 32"},
		{"DepthResets", strings.Repeat(nest(MaxDepth)+" && ", 3) + "b = 2", -1, ""},
		{"ManyParensOneTerm", strings.Repeat("(", MaxDepth) + "a=1" + strings.Repeat(")", MaxDepth+1), len(nest(MaxDepth)) - 2, `unmatched ")"`},
		{"MaxFieldLength", strings.Repeat("x", MaxFieldLength) + " = 1", -1, ""},
		{"OverMaxFieldLength", "b = 1 || " + strings.Repeat("x", MaxFieldLength+1) + " = 1", 9, "field name is longer than 64 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.src)
			if tt.wantPos < 0 {
				if err != nil {
					t.Fatalf("Parse error: %v", err)
				}
				return
			}
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse error = %v, want a *SyntaxError", err)
			}
			if se.Pos != tt.wantPos || !strings.Contains(se.Msg, tt.wantMsg) {
				t.Errorf("Parse error = %d: %s, want %d: ...%s...", se.Pos, se.Msg, tt.wantPos, tt.wantMsg)
			}
		})
	}
}

// TestParseTermsCountedAcrossParens checks that MaxTerms counts every
// comparison, not only those at one level.
func TestParseTermsCountedAcrossParens(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for i := 0; i <= MaxTerms; i++ {
		if i > 0 {
			b.WriteString(" || ")
		}
		fmt.Fprintf(&b, "(a = %d && (b = 1))", i%10)
	}
	_, err := Parse(b.String())
	var se *SyntaxError
	if !errors.As(err, &se) || !strings.Contains(se.Msg, "comparisons") {
		t.Errorf("Parse error = %v, want too many comparisons", err)
	}
}

// TestParseErrorExcerpt checks that error messages never echo much of the
// input, since they are shown to API clients.
func TestParseErrorExcerpt(t *testing.T) {
	t.Parallel()
	secret := strings.Repeat("s3cr3t", 20)
	for _, src := range []string{
		`a = ` + secret,
		`a = 1 ` + secret + ` = 2`,
		`a = "x" ` + `"` + secret + `"`,
		`a = "` + secret + `\q"`,
		`a = 1` + secret,
		secret + ` = 1`,
		`a = 1 ` + `-` + secret,
	} {
		_, err := Parse(src)
		if err == nil {
			t.Errorf("Parse(%.20q...) succeeded, want an error", src)
			continue
		}
		if msg := err.Error(); len(msg) > 120 || strings.Contains(msg, secret[:24]) {
			t.Errorf("Parse(%.20q...) error = %q, which echoes too much input", src, msg)
		}
	}
}

func TestParseOrder(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", MaxFieldLength)
	tests := []struct {
		src  string
		want Order
	}{
		{"", Order{}},
		{"name", Order{Field: "name"}},
		{"+name", Order{Field: "name"}},
		{"-name", Order{Field: "name", Desc: true}},
		{"created_at", Order{Field: FieldCreatedAt}},
		{"-updated_at", Order{Field: FieldUpdatedAt, Desc: true}},
		{"id", Order{Field: FieldID}},
		{"_A9", Order{Field: "_A9"}},
		{long, Order{Field: long}},
		{"-" + long, Order{Field: long, Desc: true}},
	}
	for _, tt := range tests {
		got, err := ParseOrder(tt.src)
		if err != nil {
			t.Errorf("ParseOrder(%q) error: %v", tt.src, err)
			continue
		}
		if got != tt.want {
			t.Errorf("ParseOrder(%q) = %+v, want %+v", tt.src, got, tt.want)
		}
	}
}

func TestParseOrderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src     string
		pos     int
		wantMsg string
	}{
		{"-", 1, "expected a field name"},
		{"+", 1, "expected a field name"},
		{"--name", 1, "expected a field name"},
		{"+-name", 1, "expected a field name"},
		{" name", 0, "expected a field name"},
		{"name ", 4, `unexpected " " in field name`},
		{"- name", 1, "expected a field name"},
		{"9name", 0, "expected a field name"},
		{"na-me", 2, `unexpected "-"`},
		{"a.b", 1, `unexpected "."`},
		{"name,id", 4, `unexpected ","`},
		{"nämе", 1, `unexpected "ä"`},
		{"a\xff", 1, `unexpected "\xff"`},
		{"name desc", 4, `unexpected " "`},
		{strings.Repeat("x", MaxFieldLength+1), 0, "field name is longer than 64 bytes"},
		{"-" + strings.Repeat("x", MaxFieldLength+1), 1, "field name is longer than 64 bytes"},
	}
	for _, tt := range tests {
		_, err := ParseOrder(tt.src)
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseOrder(%q) error = %v, want a *SyntaxError", tt.src, err)
			continue
		}
		if se.Pos != tt.pos || !strings.Contains(se.Msg, tt.wantMsg) {
			t.Errorf("ParseOrder(%q) error = %d: %s, want %d: ...%s...", tt.src, se.Pos, se.Msg, tt.pos, tt.wantMsg)
		}
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	tests := []struct {
		src  string
		want string
	}{
		{``, ``},
		{`a=1`, `a = 1`},
		{`a!=1`, `a != 1`},
		{`a>1`, `a > 1`},
		{`a>=1`, `a >= 1`},
		{`a<1`, `a < 1`},
		{`a<=1`, `a <= 1`},
		{`a~"x"`, `a ~ "x"`},
		{`a^="x"`, `a ^= "x"`},
		{`id^=""`, `id ^= ""`},
		{`a = null`, `a = null`},
		{`a = true`, `a = true`},
		{`a = false`, `a = false`},
		{`a = -0`, `a = 0`},
		{`a = 1.50`, `a = 1.5`},
		{`a = 1e5`, `a = 100000`},
		{`a = 1e21`, `a = 1e+21`},
		{`a = 123456789`, `a = 1.23456789e+08`},
		{`a = 0.00001`, `a = 1e-05`},
		{`a = -2.5E-3`, `a = -0.0025`},
		{`a = "\u0041\/\"\\"`, `a = "A/\"\\"`},
		{`a = "\b\f\n\r\t\u0001\u001f\u007f"`, "a = \"\\u0008\\u000c\\n\\r\\t\\u0001\\u001f\x7f\""},
		{`a = "<&>"`, `a = "<&>"`},
		{`a = "\ud83d\ude00 é"`, `a = "😀 é"`},
		{`a = "\u2028"`, "a = \"\u2028\""},
		{`created_at >= "2024-01-02T03:04:05.100+01:00"`, `created_at >= "2024-01-02T02:04:05.1Z"`},
		{`updated_at < "2024-01-02T03:04:05Z"`, `updated_at < "2024-01-02T03:04:05Z"`},
		{`id = "x"`, `id = "x"`},
		{`a=1&&b=2&&c=3`, `a = 1 && b = 2 && c = 3`},
		{`a=1||b=2||c=3`, `a = 1 || b = 2 || c = 3`},
		{`a=1||b=2&&c=3`, `a = 1 || b = 2 && c = 3`},
		{`(a=1||b=2)&&c=3`, `(a = 1 || b = 2) && c = 3`},
		{`((a=1&&b=2))||(c=3)`, `a = 1 && b = 2 || c = 3`},
		{`(a=1||(b=2||c=3))&&(d=4&&(e=5||f=6))`, `(a = 1 || b = 2 || c = 3) && d = 4 && (e = 5 || f = 6)`},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Errorf("Parse(%q) error: %v", tt.src, err)
			continue
		}
		got := Format(e)
		if got != tt.want {
			t.Errorf("Format(Parse(%q)) = %q, want %q", tt.src, got, tt.want)
		}
		e2, err := Parse(got)
		if err != nil {
			t.Errorf("Parse(Format(Parse(%q))) error: %v", tt.src, err)
			continue
		}
		if diff := cmp.Diff(e, e2, ignorePos); diff != "" {
			t.Errorf("Parse(Format(Parse(%q))) mismatch (-want +got):\n%s", tt.src, diff)
		}
	}
}

// TestFormatHandBuilt checks that Format is deterministic and keeps the
// shape of trees Parse would not return.
func TestFormatHandBuilt(t *testing.T) {
	t.Parallel()
	a := at(0, "a", Eq, num(1))
	b := at(0, "b", Eq, str("x\xffy"))
	tests := []struct {
		e    Expr
		want string
	}{
		{nil, ``},
		{and(a, and(a, b)), `a = 1 && (a = 1 && b = "x\ufffdy")`},
		{or(a, or(a, a)), `a = 1 || (a = 1 || a = 1)`},
		{or(and(a, a), a), `a = 1 && a = 1 || a = 1`},
		{and(a), `a = 1`},
		{and(), ``},
		{at(0, "t", Eq, Value{Kind: Time, Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))}), `t = "2024-01-02T02:04:05Z"`},
	}
	for _, tt := range tests {
		if got := Format(tt.e); got != tt.want {
			t.Errorf("Format(%#v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestSyntaxErrorError(t *testing.T) {
	t.Parallel()
	_, err := Parse(`a = `)
	if got, want := err.Error(), `at position 4: unexpected end of filter, expected a value (string, number, true, false or null)`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleParse() {
	e, err := Parse(`status = "open" && (priority >= 3 || tags ~ "urgent")`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(Format(e))

	_, err = Parse(`status = "open" priority >= 3`)
	fmt.Println(err)
	// Output:
	// status = "open" && (priority >= 3 || tags ~ "urgent")
	// at position 16: unexpected "priority", expected "&&", "||" or the end of the filter
}

func ExampleParseOrder() {
	o, err := ParseOrder("-updated_at")
	fmt.Printf("%+v %v\n", o, err)
	// Output:
	// {Field:updated_at Desc:true} <nil>
}

func BenchmarkParse(b *testing.B) {
	const src = `status = "active" && (priority >= 3 || tags ~ "urgent") && created_at > "2024-01-01T00:00:00Z"`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFormat(b *testing.B) {
	e, err := Parse(`status = "active" && (priority >= 3 || tags ~ "urgent") && created_at > "2024-01-01T00:00:00Z"`)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		Format(e)
	}
}
