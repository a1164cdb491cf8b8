package filter

import (
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// ignorePos compares trees apart from where their comparisons were in the
// source, which Format does not preserve.
var ignorePos = cmpopts.IgnoreFields(Cmp{}, "Pos")

var fuzzSeeds = []string{
	``,
	` `,
	`a = 1`,
	`a != -1.5e-3`,
	`a > 1 && a < 10`,
	`a >= "m" || a <= "c"`,
	`a ~ "x"`,
	`a ^= "x" || id ^= "r" || b ^= ""`,
	`a ^= 1`,
	`created_at ^= "2024"`,
	`a ^ "x"`,
	`a = null || b != true || c = false`,
	`a=1&&b=2||c=3&&(d=4||e=5)`,
	`(a = 1 || b = 2) && (c = 3 || (d = 4 && e = 5))`,
	`((((a = 1))))`,
	`status = "active" && (priority >= 3 || tags ~ "urgent") && created_at > "2024-01-01T00:00:00Z"`,
	`id = "rec_01HZ" || id ~ "01"`,
	`created_at >= "2024-01-02T03:04:05.123456+02:00" && updated_at < "2024-01-02T03:04:05Z"`,
	`created_at > "0000-01-01T00:00:00+01:00"`,
	`updated_at < "9999-12-31T23:59:59-01:00"`,
	`created_at = "2024-01-01T00:00:00,5Z"`,
	`created_at ~ "2024"`,
	`created_at = null`,
	`id = 1`,
	`a > true`,
	`a ~ 1`,
	`a = "\"\\\/\b\f\n\r\t\u0001\u001f\u007f"`,
	`a = "\ud83d\ude00\u00e9\u4E16"`,
	`a = "\ud800"`,
	`a = "\udc00\ud800"`,
	`a = "\u12"`,
	"a = \"\xff\"",
	"a = \"\xed\xa0\x80\"",
	"a = \"x\ny\"",
	`a = "héllo 世界 😀"`,
	`a = "unterminated`,
	`a = "\`,
	`a = 0`,
	`a = -0`,
	`a = 1e400`,
	`a = 1e-400`,
	`a = 5e-324`,
	`a = 1.7976931348623157e308`,
	`a = 9007199254740993`,
	`a = 01`,
	`a = +1`,
	`a = .5`,
	`a = 1.`,
	`a = 0x1f`,
	`a = NaN`,
	`a = -Infinity`,
	`a = 1e5 && b = 1e21 && c = 123456789`,
	`a`,
	`a =`,
	`= 1`,
	`a = 1 &&`,
	`&& a = 1`,
	`a = 1 & b = 2`,
	`a = 1 | b = 2`,
	`a == 1`,
	`a => 1`,
	`a = 1 b = 2`,
	`(a = 1`,
	`a = 1)`,
	`()`,
	`a.b = 1`,
	`é = 1`,
	"\xff",
	"a\x00= 1",
	"\ta\r\n=\n1\t",
	strings.Repeat("f", MaxFieldLength) + ` = 1`,
	strings.Repeat("f", MaxFieldLength+1) + ` = 1`,
	strings.Repeat("(", MaxDepth) + `a = 1` + strings.Repeat(")", MaxDepth),
	strings.Repeat("(", MaxDepth+1) + `a = 1` + strings.Repeat(")", MaxDepth+1),
	strings.Repeat("a = 1 && ", MaxTerms-1) + `a = 1`,
	strings.Repeat("a = 1 || ", MaxTerms) + `a = 1`,
	`a = "` + strings.Repeat("x", MaxLength-6) + `"`,
	`-name`,
	`+created_at`,
	`name`,
}

// FuzzParse checks that Parse never panics, that it fails only with a
// *SyntaxError inside the input, that what it returns obeys the limits and
// type rules, and that Format round-trips. It also fuzzes ParseOrder.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		checkOrder(t, src)

		e, err := Parse(src)
		if err != nil {
			checkSyntaxError(t, src, err)
			return
		}
		if n := utf8.RuneCountInString(src); n > MaxLength {
			t.Fatalf("Parse accepted %d characters", n)
		}
		if e == nil {
			if strings.Trim(src, " \t\r\n") != "" {
				t.Fatalf("Parse(%q) = nil for a non-blank filter", src)
			}
			return
		}
		if n := checkTree(t, src, e, 0); n > MaxTerms {
			t.Fatalf("Parse(%q) returned %d comparisons", src, n)
		}

		text := Format(e)
		if Format(e) != text {
			t.Fatalf("Format is not deterministic for %q", src)
		}
		if utf8.RuneCountInString(text) > MaxLength {
			return // Format may lengthen a filter past the limit; see its doc.
		}
		e2, err := Parse(text)
		if err != nil {
			t.Fatalf("Parse(Format(Parse(%q))) = Parse(%q): %v", src, text, err)
		}
		if diff := cmp.Diff(e, e2, ignorePos); diff != "" {
			t.Fatalf("Parse(Format(Parse(%q))) mismatch (-want +got):\n%s", src, diff)
		}
		if text2 := Format(e2); text2 != text {
			t.Fatalf("Format is not canonical for %q: %q then %q", src, text, text2)
		}
	})
}

func checkSyntaxError(t *testing.T, src string, err error) {
	t.Helper()
	se, ok := err.(*SyntaxError)
	if !ok {
		t.Fatalf("Parse(%q) error is %T, want *SyntaxError: %v", src, err, err)
	}
	if se.Pos < 0 || se.Pos > len(src) {
		t.Fatalf("Parse(%q) error at %d, outside [0, %d]: %s", src, se.Pos, len(src), se.Msg)
	}
	if se.Msg == "" || len(se.Msg) > 160 || !utf8.ValidString(se.Msg) {
		t.Fatalf("Parse(%q) error message %q is empty, long or invalid UTF-8", src, se.Msg)
	}
}

// checkTree checks e, a tree Parse returned for src at the given nesting of
// And and Or, and returns its number of comparisons.
func checkTree(t *testing.T, src string, e Expr, depth int) int {
	t.Helper()
	if depth > MaxDepth+1 {
		t.Fatalf("Parse(%q) returned a tree deeper than %d", src, MaxDepth+1)
	}
	n := 0
	switch e := e.(type) {
	case *And:
		if len(e.Terms) < 2 {
			t.Fatalf("Parse(%q) returned an And of %d terms", src, len(e.Terms))
		}
		for _, term := range e.Terms {
			if _, ok := term.(*And); ok {
				t.Fatalf("Parse(%q) returned an And inside an And", src)
			}
			n += checkTree(t, src, term, depth+1)
		}
	case *Or:
		if len(e.Terms) < 2 {
			t.Fatalf("Parse(%q) returned an Or of %d terms", src, len(e.Terms))
		}
		for _, term := range e.Terms {
			if _, ok := term.(*Or); ok {
				t.Fatalf("Parse(%q) returned an Or inside an Or", src)
			}
			n += checkTree(t, src, term, depth+1)
		}
	case *Cmp:
		checkCmp(t, src, e)
		n = 1
	default:
		t.Fatalf("Parse(%q) returned %T", src, e)
	}
	return n
}

func checkCmp(t *testing.T, src string, c *Cmp) {
	t.Helper()
	if c.Pos < 0 || c.Pos >= len(src) || !strings.HasPrefix(src[c.Pos:], c.Field) {
		t.Fatalf("Parse(%q): comparison of %q at %d is not there", src, c.Field, c.Pos)
	}
	if !validField(c.Field) {
		t.Fatalf("Parse(%q): invalid field %q", src, c.Field)
	}
	switch c.Op {
	case Eq, Ne, Gt, Ge, Lt, Le, Contains, Prefix:
	default:
		t.Fatalf("Parse(%q): invalid op %q", src, c.Op)
	}
	v := c.Value
	switch v.Kind {
	case Number:
		if math.IsInf(v.Num, 0) || math.IsNaN(v.Num) || v.Num == 0 && math.Signbit(v.Num) {
			t.Fatalf("Parse(%q): number %v", src, v.Num)
		}
	case String:
		if !utf8.ValidString(v.Str) {
			t.Fatalf("Parse(%q): string %q is not UTF-8", src, v.Str)
		}
	case Time:
		if v.Time.Location() != time.UTC || v.Time.Year() < 0 || v.Time.Year() > 9999 {
			t.Fatalf("Parse(%q): time %v", src, v.Time)
		}
	}
	ordering := c.Op == Gt || c.Op == Ge || c.Op == Lt || c.Op == Le
	var ok bool
	switch c.Field {
	case FieldID:
		ok = v.Kind == String
	case FieldCreatedAt, FieldUpdatedAt:
		ok = v.Kind == Time && c.Op != Contains && c.Op != Prefix
	default:
		switch v.Kind {
		case Null, Bool:
			ok = c.Op == Eq || c.Op == Ne
		case Number:
			ok = c.Op != Contains && c.Op != Prefix
		case String:
			ok = true
		}
	}
	if !ok || v.Kind == Time && !IsSystem(c.Field) || ordering && v.Kind == Bool {
		t.Fatalf("Parse(%q): %s %s %s should not type-check", src, c.Field, c.Op, v.Kind)
	}
}

func checkOrder(t *testing.T, src string) {
	t.Helper()
	o, err := ParseOrder(src)
	if err != nil {
		se, ok := err.(*SyntaxError)
		if !ok || se.Pos < 0 || se.Pos > len(src) || se.Msg == "" || len(se.Msg) > 160 {
			t.Fatalf("ParseOrder(%q) error = %#v", src, err)
		}
		if o != (Order{}) {
			t.Fatalf("ParseOrder(%q) = %+v with an error", src, o)
		}
		return
	}
	want := o.Field
	switch {
	case o.Desc:
		want = "-" + o.Field
	case strings.HasPrefix(src, "+"):
		want = "+" + o.Field
	}
	if want != src || src != "" && !validField(o.Field) {
		t.Fatalf("ParseOrder(%q) = %+v", src, o)
	}
}

func validField(s string) bool {
	if s == "" || len(s) > MaxFieldLength {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
