package filter

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// testDialect spells SQL recognizably, so that tests can read what the
// compiler made of a filter.
type testDialect struct{}

func (testDialect) Placeholder(n int, v any) string { return "$" + strconv.Itoa(n) }
func (testDialect) Time(t time.Time) any            { return t.UnixMicro() }
func (testDialect) Bool(b bool) string              { return strings.ToUpper(strconv.FormatBool(b)) }
func (testDialect) Num(f float64) string            { return strconv.FormatFloat(f, 'f', 1, 64) }
func (testDialect) DataKey(field string) Key {
	return Key{Rank: "rank(" + Literal(field) + ")", Num: "num(" + Literal(field) + ")", Txt: "txt(" + Literal(field) + ")"}
}
func (testDialect) Contains(s, sub string) string     { return "contains(" + s + ", " + sub + ")" }
func (testDialect) HasPrefix(s, prefix string) string { return "has_prefix(" + s + ", " + prefix + ")" }

func compile(t *testing.T, e Expr) (string, []any) {
	t.Helper()
	q := NewQuery(testDialect{})
	if err := q.Where(e); err != nil {
		t.Fatalf("Where(%s) = %v", Format(e), err)
	}
	return q.String(), q.Args()
}

func TestWhereSQL(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 6000, time.UTC)
	tests := []struct {
		src  string
		sql  string
		args []any
	}{
		{``, `TRUE`, nil},
		{`a = null`, `(rank('a') = 0)`, nil},
		{`a != null`, `(NOT (rank('a') = 0))`, nil},
		{`a = true`, `(rank('a') = 1 AND num('a') = 1.0)`, nil},
		{`a = false`, `(rank('a') = 1 AND num('a') = 0.0)`, nil},
		{`a = 5`, `(num('a') = $1 AND rank('a') = 2)`, []any{5.0}},
		{`a = "x"`, `(txt('a') = $1 AND rank('a') = 3 AND num('a') = 0.0)`, []any{"x"}},
		{`a != "x"`, `(NOT (txt('a') = $1 AND rank('a') = 3 AND num('a') = 0.0))`, []any{"x"}},
		{`a > 5`, `(num('a') > $1 AND rank('a') = 2)`, []any{5.0}},
		{`a <= "m"`, `(txt('a') <= $1 AND rank('a') = 3 AND num('a') = 0.0)`, []any{"m"}},
		{`a ~ "x"`, `(contains(txt('a'), $1) AND rank('a') = 3)`, []any{"x"}},
		{`a ^= "ab"`, `(txt('a') >= $1 AND txt('a') < $2 AND has_prefix(txt('a'), $1) AND rank('a') = 3 AND num('a') = 0.0)`, []any{"ab", "ac"}},
		{`a ^= ""`, `(rank('a') = 3)`, nil},
		{`a ^= "\udbff\udfff"`, `(txt('a') >= $1 AND has_prefix(txt('a'), $1) AND rank('a') = 3 AND num('a') = 0.0)`, []any{"\U0010ffff"}},
		{`id = "r1"`, `(id = $1)`, []any{"r1"}},
		{`id != "r1"`, `(id <> $1)`, []any{"r1"}},
		{`id ~ "r"`, `(contains(id, $1))`, []any{"r"}},
		{`id ^= "r"`, `(id >= $1 AND id < $2 AND has_prefix(id, $1))`, []any{"r", "s"}},
		{`id ^= ""`, `TRUE`, nil},
		{`created_at = "2024-01-02T03:04:05.000006Z"`, `(created_at = $1)`, []any{ts.UnixMicro()}},
		{`updated_at >= "2024-01-02T03:04:05.000006Z"`, `(updated_at >= $1)`, []any{ts.UnixMicro()}},
		{`a = 1 && (b = 2 || c = 3)`, `((num('a') = $1 AND rank('a') = 2) AND ((num('b') = $2 AND rank('b') = 2) OR (num('c') = $3 AND rank('c') = 2)))`,
			[]any{1.0, 2.0, 3.0}},
	}
	for _, tt := range tests {
		e, err := Parse(tt.src)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tt.src, err)
		}
		sql, args := compile(t, e)
		if sql != tt.sql || !slices.Equal(args, tt.args) {
			t.Errorf("%s:\n got %s %v\nwant %s %v", tt.src, sql, args, tt.sql, tt.args)
		}
	}
}

// Times between two microseconds compare as the real numbers they are:
// never equal to a stored time, and strictly between its neighbours.
func TestWhereSubMicrosecond(t *testing.T) {
	t.Parallel()
	ts := time.Date(2024, 1, 2, 3, 4, 5, 1500, time.UTC) // 1.5µs
	floor := time.Date(2024, 1, 2, 3, 4, 5, 1000, time.UTC).UnixMicro()
	for op, want := range map[Op]string{
		Eq: `FALSE`, Ne: `TRUE`,
		Gt: `(created_at > $1)`, Ge: `(created_at > $1)`,
		Lt: `(created_at <= $1)`, Le: `(created_at <= $1)`,
	} {
		sql, args := compile(t, &Cmp{Field: FieldCreatedAt, Op: op, Value: Value{Kind: Time, Time: ts}})
		if sql != want {
			t.Errorf("created_at %s 1.5µs: %s, want %s", op, sql, want)
		}
		if strings.Contains(sql, "$1") && !slices.Equal(args, []any{floor}) {
			t.Errorf("created_at %s 1.5µs: args %v, want [%d]", op, args, floor)
		}
	}
}

// Trees that Parse could not return are refused with a *SyntaxError, and
// never turn into SQL text.
func TestWhereRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		e    Expr
		want string
	}{
		{&Cmp{Field: "a'b", Op: Eq, Value: Value{Kind: Number, Num: 1}}, `invalid field name`},
		{&Cmp{Field: "", Op: Eq, Value: Value{Kind: Number, Num: 1}}, `invalid field name`},
		{&Cmp{Field: strings.Repeat("a", 65), Op: Eq, Value: Value{Kind: Null}}, `invalid field name`},
		{&Cmp{Field: "a", Op: Eq, Value: Value{Kind: Number, Num: math.NaN()}}, `NaN`},
		{&Cmp{Field: "a", Op: Eq, Value: Value{Kind: Time}}, `takes no time literal`},
		{&Cmp{Field: "a", Op: Gt, Value: Value{Kind: Bool}}, `needs a number or string`},
		{&Cmp{Field: "a", Op: Contains, Value: Value{Kind: Number}}, `~ needs a string`},
		{&Cmp{Field: "a", Op: Prefix, Value: Value{Kind: Null}}, `^= needs a string`},
		{&Cmp{Field: "a", Op: "<>", Value: Value{Kind: Number}}, `unknown operator`},
		{&Cmp{Field: FieldID, Op: Eq, Value: Value{Kind: Number}}, `id takes string literals only`},
		{&Cmp{Field: FieldID, Op: "?", Value: Value{Kind: String}}, `unknown operator`},
		{&Cmp{Field: FieldCreatedAt, Op: Eq, Value: Value{Kind: String, Str: "2024"}}, `RFC 3339 time literals only`},
		{&Cmp{Field: FieldUpdatedAt, Op: Prefix, Value: Value{Kind: Time}}, `does not take ^=`},
		{&And{Terms: []Expr{&Or{Terms: []Expr{(*Cmp)(nil)}}}}, `empty comparison`},
	}
	for _, tt := range tests {
		q := NewQuery(testDialect{})
		err := q.Where(tt.e)
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(se.Msg, tt.want) {
			t.Errorf("Where(%#v) = %v, want a *SyntaxError saying %q", tt.e, err, tt.want)
		}
	}
	type other struct{ Expr }
	if err := NewQuery(testDialect{}).Where(other{}); err == nil {
		t.Error("Where(unknown Expr) = nil")
	}
	// Empty and nil terms, as a tree built by hand may have.
	for _, tc := range []struct {
		e    Expr
		want string
	}{
		{&And{}, "TRUE"}, {&Or{}, "FALSE"}, {(*And)(nil), "TRUE"}, {(*Or)(nil), "FALSE"}, {nil, "TRUE"},
	} {
		if sql, _ := compile(t, tc.e); sql != tc.want {
			t.Errorf("Where(%#v) = %s, want %s", tc.e, sql, tc.want)
		}
	}
}

// Values from a filter are bound, never written into the SQL: a value
// that would break out of a string literal shows up in Args only.
func TestWhereBindsValues(t *testing.T) {
	t.Parallel()
	evil := `x' OR 1=1 --`
	for _, op := range []Op{Eq, Ne, Gt, Ge, Lt, Le, Contains, Prefix} {
		for _, field := range []string{"a", FieldID} {
			sql, args := compile(t, &Cmp{Field: field, Op: op, Value: Value{Kind: String, Str: evil}})
			if strings.Contains(sql, "OR 1=1") || !slices.Contains(args, any(evil)) {
				t.Errorf("%s %s: SQL %s, args %v", field, op, sql, args)
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, end string
		ok     bool
	}{
		{"", "", false},
		{"a", "b", true},
		{"ab", "ac", true},
		{"a\x7f", "a\u0080", true},
		{"é", "ê", true},
		{"\ud7ff", "\ue000", true}, // skips the surrogates
		{"\uffff", "\U00010000", true},
		{"a\U0010ffff", "b", true},
		{"a\U0010ffff\U0010ffff", "b", true},
		{"\U0010ffff", "", false},
		{"a\xff", "", false}, // invalid UTF-8
	}
	for _, tt := range tests {
		end, ok := PrefixEnd(tt.p)
		if end != tt.end || ok != tt.ok {
			t.Errorf("PrefixEnd(%q) = %q, %v, want %q, %v", tt.p, end, ok, tt.end, tt.ok)
		}
	}
}

// The range PrefixEnd gives holds exactly the strings with the prefix, in
// Go's string order, which is the code point order of the stores.
func TestPrefixEndRange(t *testing.T) {
	t.Parallel()
	alphabet := []rune{'a', 'b', 'z', 0x7f, 0x80, 'é', 0xd7ff, 0xe000, 0xffff, 0x10000, utf8.MaxRune}
	r := rand.New(rand.NewPCG(1, 2))
	word := func(n int) string {
		var b strings.Builder
		for range r.IntN(n + 1) {
			b.WriteRune(alphabet[r.IntN(len(alphabet))])
		}
		return b.String()
	}
	for range 20000 {
		p, s := word(3), word(4)
		if r.IntN(3) == 0 {
			s = p + s
		}
		end, ok := PrefixEnd(p)
		inRange := p <= s && (!ok || s < end)
		if has := strings.HasPrefix(s, p); has != inRange && (ok || p == "") {
			t.Fatalf("prefix %q, string %q: HasPrefix %v, in [p, %q) %v", p, s, has, end, inRange)
		}
	}
}

func TestSortKey(t *testing.T) {
	t.Parallel()
	q := NewQuery(testDialect{})
	for _, tc := range []struct {
		o     Order
		exprs []string
	}{
		{Order{}, []string{"created_at", "id"}},
		{Order{Field: FieldUpdatedAt, Desc: true}, []string{"updated_at", "id"}},
		{Order{Field: FieldID}, []string{"id"}},
		{Order{Field: "n"}, []string{"rank('n')", "num('n')", "txt('n')", "id"}},
	} {
		k, err := q.SortKey(tc.o, nil)
		if err != nil || !slices.Equal(k.Exprs, tc.exprs) {
			t.Errorf("SortKey(%+v) = %+v, %v, want %v", tc.o, k, err, tc.exprs)
		}
	}
	var se *SyntaxError
	if _, err := q.SortKey(Order{Field: "a b"}, nil); !errors.As(err, &se) {
		t.Errorf("SortKey(invalid field) = %v, want a *SyntaxError", err)
	}

	k, _ := q.SortKey(Order{Field: "n", Desc: true}, nil)
	q.After(k, &Cursor{Rank: 3, Num: 0, Str: "s", ID: "r1"})
	q.OrderBy(k)
	want := `rank('n') <= $1 AND (rank('n'), num('n'), txt('n'), id) < ($1, $2, $3, $4) ORDER BY rank('n') DESC, num('n') DESC, txt('n') DESC, id DESC`
	if q.String() != want || !slices.Equal(q.Args(), []any{int32(3), 0.0, "s", "r1"}) {
		t.Errorf("After and OrderBy:\n got %s %v\nwant %s", q.String(), q.Args(), want)
	}
}

// A comparison on the order's field that the filter requires pins the
// leading parts of the key it holds constant, and only then.
func TestSortKeyPinned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		filter string
		pinned int
	}{
		{``, 0},
		{`n = "x"`, 3},
		{`n = 5`, 2},
		{`n = true`, 2},
		{`n = null`, 1},
		{`n != "x"`, 0},
		{`n > "x"`, 2},
		{`n <= 5`, 1},
		{`n ~ "x"`, 1},
		{`n ^= "x"`, 2},
		{`n ^= ""`, 1},
		{`m = "x"`, 0},
		{`m = 1 && n > 5 && n = "x"`, 3},
		{`n = "x" || n = "y"`, 0},
		{`(n = "x" || m = 1) && n > 2`, 1},
	} {
		e, err := Parse(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		q := NewQuery(testDialect{})
		k, err := q.SortKey(Order{Field: "n"}, e)
		if err != nil || k.Pinned != tc.pinned {
			t.Errorf("SortKey(n, %s).Pinned = %d, %v, want %d", tc.filter, k.Pinned, err, tc.pinned)
			continue
		}
		q.OrderBy(k)
		if want := " ORDER BY " + strings.Join(k.Exprs[tc.pinned:], ", "); q.String() != want {
			t.Errorf("OrderBy after %s = %q, want %q", tc.filter, q.String(), want)
		}
	}
	k, _ := NewQuery(testDialect{}).SortKey(Order{Field: FieldID}, &Cmp{Field: FieldID, Op: Eq, Value: Value{Kind: String, Str: "x"}})
	if k.Pinned != 0 {
		t.Errorf("a system field's key is pinned: %d", k.Pinned)
	}
}

func TestIndexFields(t *testing.T) {
	t.Parallel()
	orders, err := ParseIndexFields([]string{"owner", "-n", "created_at"})
	if err != nil || !slices.Equal(orders, []Order{{Field: "owner"}, {Field: "n", Desc: true}, {Field: FieldCreatedAt}}) {
		t.Fatalf("ParseIndexFields = %v, %v", orders, err)
	}
	cols := IndexColumns(testDialect{}, orders, false)
	want := []string{"(rank('owner'))", "(num('owner'))", "(txt('owner'))", "(rank('n')) DESC", "(num('n')) DESC", "(txt('n')) DESC", "created_at", "id"}
	if !slices.Equal(cols, want) {
		t.Errorf("IndexColumns = %v, want %v", cols, want)
	}
	cols = IndexColumns(testDialect{}, []Order{{Field: "a", Desc: true}}, false)
	if want := []string{"(rank('a')) DESC", "(num('a')) DESC", "(txt('a')) DESC", "id DESC"}; !slices.Equal(cols, want) {
		t.Errorf("IndexColumns(-a) = %v, want %v", cols, want)
	}
	if cols := IndexColumns(testDialect{}, []Order{{Field: FieldID}}, false); !slices.Equal(cols, []string{"id"}) {
		t.Errorf("IndexColumns(id) = %v", cols)
	}
	if cols := IndexColumns(testDialect{}, orders[:2], true); len(cols) != 6 {
		t.Errorf("IndexColumns(unique) = %v, want the fields' 6 expressions only", cols)
	}
	if conds := UniqueConditions(testDialect{}, orders); !slices.Equal(conds, []string{"rank('owner') BETWEEN 1 AND 3", "rank('n') BETWEEN 1 AND 3"}) {
		t.Errorf("UniqueConditions = %v", conds)
	}
	for _, bad := range [][]string{
		nil, {}, {""}, {"-"}, {"+a"}, {"--a"}, {"a", "a"}, {"a", "-a"}, {"a.b"}, {"a'"}, {strings.Repeat("f", 65)},
		{"a", "b", "c", "d", "e", "f", "g", "h", "i"},
	} {
		if _, err := ParseIndexFields(bad); err == nil {
			t.Errorf("ParseIndexFields(%q) = nil error", bad)
		}
	}
}
