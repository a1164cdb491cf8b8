package filter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on what Parse and ParseOrder accept. They bound the work a client
// can make the parser and the store backends do for one request.
const (
	// MaxLength is the longest filter, in characters (Unicode code
	// points), that Parse accepts: at most 16 KiB of UTF-8.
	MaxLength = 4096
	// MaxTerms is the most comparisons one filter may hold.
	MaxTerms = 64
	// MaxDepth is the deepest that parentheses may nest in a filter.
	MaxDepth = 32
	// MaxFieldLength is the longest field name, in bytes, in a filter or
	// an order.
	MaxFieldLength = 64
)

// Parse parses src, a filter in the language described in the package
// documentation, and type-checks its comparisons. It returns nil and no
// error when src is empty or only whitespace, meaning "no filter".
//
// A filter of one comparison is returned as a *Cmp. Runs of && and of || are
// flattened, including across parentheses, so the result never holds an *And
// directly inside an *And, an *Or directly inside an *Or, or an *And or *Or
// with fewer than two terms. String literals compared with created_at or
// updated_at become Values of Kind Time, in UTC; -0 becomes 0.
//
// Every error is a *SyntaxError whose Pos is the byte offset of the
// offending token (for a type error, of the comparison) and whose message
// quotes at most a short excerpt of src. Parse runs in time linear in
// len(src) and is safe for concurrent use.
func Parse(src string) (Expr, error) {
	if len(src) > MaxLength {
		if pos := charOffset(src, MaxLength); pos < len(src) {
			return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf("filter is longer than %d characters", MaxLength)}
		}
	}
	p := &parser{lx: lexer{src: src}}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind == tokEOF {
		return nil, nil
	}
	e, err := p.parseOr(0)
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokEOF:
		return e, nil
	case tokRParen:
		return nil, p.errorf(p.tok.pos, `unmatched ")"`)
	}
	return nil, p.unexpected(`"&&", "||" or the end of the filter`)
}

// ParseOrder parses src, the order parameter of a listing: "field" or
// "+field" sorts ascending and "-field" descending, where field follows the
// same rule as in a filter. An empty src returns the zero Order (creation
// time, oldest first). Anything else, including surrounding whitespace, is
// reported as a *SyntaxError.
func ParseOrder(src string) (Order, error) {
	if src == "" {
		return Order{}, nil
	}
	var o Order
	start := 0
	switch src[0] {
	case '-':
		o.Desc = true
		start = 1
	case '+':
		start = 1
	}
	field := src[start:]
	if field == "" || !isIdentStart(field[0]) {
		return Order{}, &SyntaxError{Pos: start, Msg: "expected a field name"}
	}
	for i := 1; i < len(field); i++ {
		if !isIdentByte(field[i]) {
			return Order{}, &SyntaxError{Pos: start + i, Msg: "unexpected " + describeAt(src, start+i) + " in field name"}
		}
	}
	if len(field) > MaxFieldLength {
		return Order{}, &SyntaxError{Pos: start, Msg: fmt.Sprintf("field name is longer than %d bytes", MaxFieldLength)}
	}
	o.Field = field
	return o, nil
}

// charOffset returns the byte offset of the nth character of s (counting
// from 0), or len(s) if s has no more than n; a byte that is not UTF-8
// counts as one character.
func charOffset(s string, n int) int {
	off := 0
	for ; n > 0 && off < len(s); n-- {
		_, size := utf8.DecodeRuneInString(s[off:])
		off += size
	}
	return off
}

// Format returns the canonical text of e: comparisons as `field op literal`
// joined by " && " and " || ", with parentheses only around an *Or that is a
// term of an *And. Strings are JSON-quoted, numbers printed by
// strconv.FormatFloat(f, 'g', -1, 64) and times as RFC 3339 in UTC with the
// fewest fractional digits. Format(nil) is "".
//
// Format is deterministic, so two filters that Parse to equal trees (Cmp.Pos
// aside) have the same canonical text. For every e returned by Parse,
// Parse(Format(e)) returns a tree equal to e apart from Cmp.Pos, provided the
// text is at most MaxLength characters: Format adds spaces and can write a
// number longer than the source did (1e5 becomes 100000), so a filter near
// the limit can format to a longer one. Trees built by hand that Parse could
// not return, such as a NaN or an invalid field name, format to text that
// may not parse.
func Format(e Expr) string {
	var b strings.Builder
	format(&b, e)
	return b.String()
}

func format(b *strings.Builder, e Expr) {
	switch e := e.(type) {
	case *Cmp:
		b.WriteString(e.Field)
		b.WriteByte(' ')
		b.WriteString(string(e.Op))
		b.WriteByte(' ')
		formatValue(b, e.Value)
	case *And:
		for i, t := range e.Terms {
			if i > 0 {
				b.WriteString(" && ")
			}
			// && binds tighter than ||, so only a nested || needs
			// parentheses; a nested && (which Parse never returns) gets
			// them too, to keep the tree's shape visible.
			_, isCmp := t.(*Cmp)
			formatTerm(b, t, !isCmp)
		}
	case *Or:
		for i, t := range e.Terms {
			if i > 0 {
				b.WriteString(" || ")
			}
			_, isOr := t.(*Or)
			formatTerm(b, t, isOr)
		}
	}
}

func formatTerm(b *strings.Builder, e Expr, paren bool) {
	if paren {
		b.WriteByte('(')
	}
	format(b, e)
	if paren {
		b.WriteByte(')')
	}
}

func formatValue(b *strings.Builder, v Value) {
	switch v.Kind {
	case Null:
		b.WriteString("null")
	case Bool:
		b.WriteString(strconv.FormatBool(v.Bool))
	case Number:
		b.WriteString(strconv.FormatFloat(v.Num, 'g', -1, 64))
	case String:
		quote(b, v.Str)
	case Time:
		quote(b, v.Time.UTC().Format(time.RFC3339Nano))
	default:
		b.WriteString("null")
	}
}

// quote writes s as a JSON string. Unlike encoding/json it leaves <, > and &
// alone, since the text is not HTML; invalid UTF-8 becomes U+FFFD.
func quote(b *strings.Builder, s string) {
	const hex = "0123456789abcdef"
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == '\n':
				b.WriteString(`\n`)
			case c == '\r':
				b.WriteString(`\r`)
			case c == '\t':
				b.WriteString(`\t`)
			case c < 0x20:
				b.WriteString(`\u00`)
				b.WriteByte(hex[c>>4])
				b.WriteByte(hex[c&0xf])
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
}

type tokKind int

const (
	tokEOF tokKind = iota
	tokIdent
	tokString // a quoted string, escapes not yet checked
	tokNumber // a run of bytes that may form a number, not yet checked
	tokOp
	tokAnd
	tokOr
	tokLParen
	tokRParen
	tokIllegal // one rune, or one byte of invalid UTF-8
)

type token struct {
	kind     tokKind
	pos, end int
	op       Op
}

// lexer splits a filter into tokens. It only finds where tokens end; the
// parser checks string escapes and number syntax when a literal is used as
// a value, so that a misplaced literal is reported as misplaced.
type lexer struct {
	src string
	off int
}

func (l *lexer) next() (token, error) {
	src := l.src
	for l.off < len(src) && isSpace(src[l.off]) {
		l.off++
	}
	start := l.off
	if start >= len(src) {
		return token{kind: tokEOF, pos: start, end: start}, nil
	}
	tok := token{pos: start}
	c := src[start]
	end := start + 1
	switch {
	case isIdentStart(c):
		for end < len(src) && isIdentByte(src[end]) {
			end++
		}
		tok.kind = tokIdent
	case isNumberStart(c):
		// Take everything that could belong to a number, and to a word
		// glued to it, so that 01, 1e, 0x1f and 1abc are each one bad
		// number rather than a number followed by something else.
		for end < len(src) && (isIdentByte(src[end]) || isNumberStart(src[end])) {
			end++
		}
		tok.kind = tokNumber
	case c == '"':
		for {
			if end >= len(src) {
				return token{}, &SyntaxError{Pos: start, Msg: "unterminated string"}
			}
			b := src[end]
			end++
			if b == '"' {
				break
			}
			if b == '\\' && end < len(src) {
				end++ // the escaped byte can't end the string
			}
		}
		tok.kind = tokString
	case c == '(':
		tok.kind = tokLParen
	case c == ')':
		tok.kind = tokRParen
	case c == '&' && strings.HasPrefix(src[start:], "&&"):
		tok.kind, end = tokAnd, start+2
	case c == '|' && strings.HasPrefix(src[start:], "||"):
		tok.kind, end = tokOr, start+2
	case c == '=':
		tok.kind, tok.op = tokOp, Eq
	case c == '~':
		tok.kind, tok.op = tokOp, Contains
	case c == '^' && strings.HasPrefix(src[start:], "^="):
		tok.kind, tok.op, end = tokOp, Prefix, start+2
	case c == '!' && strings.HasPrefix(src[start:], "!="):
		tok.kind, tok.op, end = tokOp, Ne, start+2
	case c == '>' || c == '<':
		orEq := end < len(src) && src[end] == '='
		tok.kind = tokOp
		switch {
		case c == '>' && orEq:
			tok.op = Ge
		case c == '>':
			tok.op = Gt
		case orEq:
			tok.op = Le
		default:
			tok.op = Lt
		}
		if orEq {
			end++
		}
	default:
		_, size := utf8.DecodeRuneInString(src[start:])
		tok.kind, end = tokIllegal, start+size
	}
	tok.end = end
	l.off = end
	return tok, nil
}

func isSpace(c byte) bool      { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
func isIdentStart(c byte) bool { return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isIdentByte(c byte) bool  { return isIdentStart(c) || '0' <= c && c <= '9' }
func isNumberStart(c byte) bool {
	return '0' <= c && c <= '9' || c == '-' || c == '+' || c == '.'
}

type parser struct {
	lx    lexer
	tok   token
	terms int
}

func (p *parser) next() error {
	tok, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = tok
	return nil
}

func (p *parser) errorf(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the current token where want was expected.
func (p *parser) unexpected(want string) error {
	msg := "unexpected " + p.describe(p.tok) + ", expected " + want
	if p.tok.kind == tokIllegal {
		switch p.lx.src[p.tok.pos] {
		case '&':
			msg += ` (did you mean "&&"?)`
		case '|':
			msg += ` (did you mean "||"?)`
		case '^':
			msg += ` (did you mean "^="?)`
		}
	}
	return &SyntaxError{Pos: p.tok.pos, Msg: msg}
}

// describe names tok for an error message, quoting at most a short excerpt
// of the source.
func (p *parser) describe(tok token) string {
	switch tok.kind {
	case tokEOF:
		return "end of filter"
	case tokString:
		return "string"
	}
	return excerpt(p.lx.src[tok.pos:tok.end])
}

// describeAt names the rune at src[i] for an error message.
func describeAt(src string, i int) string {
	_, size := utf8.DecodeRuneInString(src[i:])
	return excerpt(src[i : i+size])
}

// excerpt quotes s, cut to a few bytes so that an error never echoes much of
// a client's input.
func excerpt(s string) string {
	const max = 16
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

// parseOr parses `and ( "||" and )*` at paren depth depth. The recursion
// through parsePrimary is bounded by MaxDepth.
func (p *parser) parseOr(depth int) (Expr, error) {
	first, err := p.parseAnd(depth)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokOr {
		return first, nil
	}
	or := &Or{}
	or.Terms = appendOr(or.Terms, first)
	for p.tok.kind == tokOr {
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.parseAnd(depth)
		if err != nil {
			return nil, err
		}
		or.Terms = appendOr(or.Terms, e)
	}
	return or, nil
}

// parseAnd parses `primary ( "&&" primary )*`.
func (p *parser) parseAnd(depth int) (Expr, error) {
	first, err := p.parsePrimary(depth)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokAnd {
		return first, nil
	}
	and := &And{}
	and.Terms = appendAnd(and.Terms, first)
	for p.tok.kind == tokAnd {
		if err := p.next(); err != nil {
			return nil, err
		}
		e, err := p.parsePrimary(depth)
		if err != nil {
			return nil, err
		}
		and.Terms = appendAnd(and.Terms, e)
	}
	return and, nil
}

// appendAnd appends e to the terms of an And, or e's own terms if e is
// itself an And, which can only come from parentheses.
func appendAnd(terms []Expr, e Expr) []Expr {
	if a, ok := e.(*And); ok {
		return append(terms, a.Terms...)
	}
	return append(terms, e)
}

// appendOr is appendAnd for Or.
func appendOr(terms []Expr, e Expr) []Expr {
	if o, ok := e.(*Or); ok {
		return append(terms, o.Terms...)
	}
	return append(terms, e)
}

// parsePrimary parses `"(" or ")" | field op literal`.
func (p *parser) parsePrimary(depth int) (Expr, error) {
	if p.tok.kind != tokLParen {
		return p.parseCmp()
	}
	open := p.tok.pos
	if depth >= MaxDepth {
		return nil, p.errorf(open, "parentheses nest deeper than %d", MaxDepth)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	e, err := p.parseOr(depth + 1)
	if err != nil {
		return nil, err
	}
	if p.tok.kind != tokRParen {
		return nil, p.unexpected(fmt.Sprintf(`"&&", "||" or ")" to close "(" at position %d`, open))
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	return e, nil
}

// parseCmp parses `field op literal` and type-checks it.
func (p *parser) parseCmp() (Expr, error) {
	if p.tok.kind != tokIdent {
		return nil, p.unexpected(`a field name or "("`)
	}
	c := &Cmp{Pos: p.tok.pos, Field: p.lx.src[p.tok.pos:p.tok.end]}
	if len(c.Field) > MaxFieldLength {
		return nil, p.errorf(c.Pos, "field name is longer than %d bytes", MaxFieldLength)
	}
	p.terms++
	if p.terms > MaxTerms {
		return nil, p.errorf(c.Pos, "filter has more than %d comparisons", MaxTerms)
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	if p.tok.kind != tokOp {
		return nil, p.unexpected("an operator (=, !=, >, >=, <, <=, ~, ^=)")
	}
	c.Op = p.tok.op
	if err := p.next(); err != nil {
		return nil, err
	}
	v, err := p.literal(p.tok)
	if err != nil {
		return nil, err
	}
	c.Value = v
	if err := check(c); err != nil {
		return nil, err
	}
	if err := p.next(); err != nil {
		return nil, err
	}
	return c, nil
}

// literal returns the value of tok, a JSON literal.
func (p *parser) literal(tok token) (Value, error) {
	text := p.lx.src[tok.pos:tok.end]
	switch tok.kind {
	case tokString:
		s, err := unquote(text, tok.pos)
		if err != nil {
			return Value{}, err
		}
		return Value{Kind: String, Str: s}, nil
	case tokNumber:
		f, err := parseNumber(text)
		if err != nil {
			return Value{}, &SyntaxError{Pos: tok.pos, Msg: err.Error()}
		}
		return Value{Kind: Number, Num: f}, nil
	case tokIdent:
		switch text {
		case "true":
			return Value{Kind: Bool, Bool: true}, nil
		case "false":
			return Value{Kind: Bool}, nil
		case "null":
			return Value{Kind: Null}, nil
		}
	}
	return Value{}, p.unexpected("a value (string, number, true, false or null)")
}

// parseNumber parses s, which must be a JSON number with a finite float64
// value. It normalizes -0 to 0 so that equal numbers format alike.
func parseNumber(s string) (float64, error) {
	if !isJSONNumber(s) {
		return 0, errors.New("invalid number")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		// ParseFloat rejects nothing that isJSONNumber accepts except by
		// range: underflow rounds to 0 without error, overflow is ±Inf.
		return 0, errors.New("number is out of range")
	}
	if f == 0 {
		f = 0
	}
	return f, nil
}

// isJSONNumber reports whether s matches
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func isJSONNumber(s string) bool {
	i := 0
	digits := func() int {
		n := 0
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case digits() == 0:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

// unquote decodes q, a JSON string starting at byte pos of the source,
// including its quotes. It rejects control characters, invalid UTF-8, bad
// escapes and unpaired surrogates, reporting the offending byte's position.
func unquote(q string, pos int) (string, error) {
	s := q[1 : len(q)-1]
	pos++
	bad := func(i int, msg string) error { return &SyntaxError{Pos: pos + i, Msg: msg} }

	// Most strings have no escapes: check them and return a substring.
	i := 0
	for i < len(s) {
		c := s[i]
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", bad(i, "control character in string; use a \\u escape")
		}
		if c < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "", bad(i, "invalid UTF-8 in string")
		}
		i += size
	}
	if i == len(s) {
		return s, nil
	}

	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		switch {
		case c < 0x20:
			return "", bad(i, "control character in string; use a \\u escape")
		case c == '\\':
			if i+1 >= len(s) {
				return "", bad(i, "invalid escape in string") // unreachable: the lexer pairs \ with a byte
			}
			switch e := s[i+1]; e {
			case '"', '\\', '/':
				b.WriteByte(e)
			case 'b':
				b.WriteByte('\b')
			case 'f':
				b.WriteByte('\f')
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case 't':
				b.WriteByte('\t')
			case 'u':
				r, ok := hex4(s[i+2:])
				if !ok {
					return "", bad(i, `invalid \u escape in string`)
				}
				if r == 0 {
					// Records cannot hold NUL (PostgreSQL's jsonb cannot), so
					// no string could match it; refuse it rather than let
					// the backends disagree.
					return "", bad(i, `\u0000 is not allowed in strings`)
				}
				if utf16IsLow(r) {
					return "", bad(i, `unpaired surrogate \u escape in string`)
				}
				if utf16IsHigh(r) {
					lo, ok := rune(0), false
					if strings.HasPrefix(s[i+6:], `\u`) {
						lo, ok = hex4(s[i+8:])
					}
					if !ok || !utf16IsLow(lo) {
						return "", bad(i, `unpaired surrogate \u escape in string`)
					}
					r = 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00)
					i += 6
				}
				b.WriteRune(r)
				i += 6
				continue
			default:
				return "", bad(i, "invalid escape in string")
			}
			i += 2
		case c < utf8.RuneSelf:
			b.WriteByte(c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return "", bad(i, "invalid UTF-8 in string")
			}
			b.WriteString(s[i : i+size])
			i += size
		}
	}
	return b.String(), nil
}

// hex4 decodes the four hex digits that start s.
func hex4(s string) (rune, bool) {
	if len(s) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(s[:4]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, true
}

func utf16IsHigh(r rune) bool { return 0xd800 <= r && r < 0xdc00 }
func utf16IsLow(r rune) bool  { return 0xdc00 <= r && r < 0xe000 }

// check type-checks c as the package documentation describes, converting
// timestamps for created_at and updated_at. Errors point at the comparison.
func check(c *Cmp) error {
	bad := func(format string, args ...any) error {
		return &SyntaxError{Pos: c.Pos, Msg: fmt.Sprintf(format, args...)}
	}
	kind := c.Value.Kind
	switch c.Field {
	case FieldID:
		if kind != String {
			return bad("%s takes a string, not %s", c.Field, kind)
		}
		return nil
	case FieldCreatedAt, FieldUpdatedAt:
		if c.Op == Contains || c.Op == Prefix {
			return bad("%s does not take %s", c.Field, c.Op)
		}
		if kind != String {
			return bad("%s takes an RFC 3339 timestamp string, not %s", c.Field, kind)
		}
		t, err := time.Parse(time.RFC3339Nano, c.Value.Str)
		if err != nil {
			return bad("%s takes an RFC 3339 timestamp such as \"2006-01-02T15:04:05Z\"", c.Field)
		}
		t = t.UTC()
		// Format must be able to write it back as RFC 3339, which has
		// four-digit years; an offset can push a year 0 or 9999 out.
		if y := t.Year(); y < 0 || y > 9999 {
			return bad("timestamp is out of range")
		}
		// Records keep microseconds; a finer literal would compare
		// differently depending on how a backend rounds it.
		if t.Nanosecond()%1000 != 0 {
			return bad("timestamps have at most microsecond precision")
		}
		c.Value = Value{Kind: Time, Time: t}
		return nil
	}
	switch c.Op {
	case Gt, Ge, Lt, Le:
		if kind != Number && kind != String {
			return bad("%s needs a number or string, not %s", c.Op, kind)
		}
	case Contains, Prefix:
		if kind != String {
			return bad("%s needs a string, not %s", c.Op, kind)
		}
	}
	return nil
}
