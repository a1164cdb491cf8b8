package storetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// fixture is the collection the filter, order and pagination cases run
// against: record r<NN> holds fixture[NN-1]. Field n mixes every JSON type
// (numbers, numeric strings, booleans, null, objects, arrays, missing), s
// holds strings with accents, emoji, CJK, quotes and the empty string, b
// booleans, o and tags nested values.
var fixture = []string{
	/* r01 */ `{"n":5,"s":"apple","b":true,"tags":["x","y"]}`,
	/* r02 */ `{"n":"5","s":"Apple","b":false}`,
	/* r03 */ `{"n":5.5,"s":"banana","b":null}`,
	/* r04 */ `{"n":-3,"s":"café","o":{"n":5}}`,
	/* r05 */ `{"n":0,"s":"","b":true}`,
	/* r06 */ `{"n":true,"s":"😀 smile"}`,
	/* r07 */ `{"n":false,"s":"中文字符"}`,
	/* r08 */ `{"n":null,"s":"apple pie"}`,
	/* r09 */ `{"s":"zebra"}`,
	/* r10 */ `{"n":{"a":1},"s":"Ärger"}`,
	/* r11 */ `{"n":[1,2],"s":"ünïcödé"}`,
	/* r12 */ `{"n":"abc","s":"abc"}`,
	/* r13 */ `{"n":"","s":"5"}`,
	/* r14 */ `{"n":1e3,"s":"banana split"}`,
	/* r15 */ `{"n":-0.5,"s":"Banana"}`,
	/* r16 */ `{"n":"é","s":"e"}`,
	/* r17 */ `{"n":10,"s":"10"}`,
	/* r18 */ `{"n":"10","s":"9"}`,
	/* r19 */ `{"n":5,"s":"apple"}`,
	/* r20 */ `{"n":"😀","s":"😀"}`,
	/* r21 */ `{"n":1.5e-3,"s":"中"}`,
	/* r22 */ `{}`,
	/* r23 */ `{"n":2,"s":null,"b":false}`,
	/* r24 */ `{"n":"5 ","s":"x\"y"}`,
}

// Creation times come in pairs and update times in threes, so that the
// system-field orders have ties for the id to break.
func fixtureCreated(i int) time.Time { return at(time.Duration((i-1)/2) * time.Second) }
func fixtureUpdated(i int) time.Time {
	return at(time.Hour + time.Duration((len(fixture)-i)/3)*time.Minute)
}

const fixtureCollection = "items"

// loadFixture creates the fixture in tid, in reverse order and over several
// transactions, so that insertion order resembles no sort order.
func (e *env) loadFixture(tid tenant.ID) {
	e.t.Helper()
	e.collection(tid, fixtureCollection)
	for i := len(fixture); i > 0; i -= 5 {
		e.in(tid, func(tx store.Tx) error {
			for j := i; j > max(i-5, 0); j-- {
				r := &store.Record{Collection: fixtureCollection, ID: ids(j)[0], Version: 1,
					Data: json.RawMessage(fixture[j-1]), CreatedAt: fixtureCreated(j), UpdatedAt: fixtureUpdated(j)}
				if err := tx.CreateRecord(e.ctx, r); err != nil {
					return err
				}
			}
			return nil
		})
	}
}

func c(field string, op filter.Op, v filter.Value) *filter.Cmp {
	return &filter.Cmp{Field: field, Op: op, Value: v}
}
func num(f float64) filter.Value  { return filter.Value{Kind: filter.Number, Num: f} }
func str(s string) filter.Value   { return filter.Value{Kind: filter.String, Str: s} }
func boolean(b bool) filter.Value { return filter.Value{Kind: filter.Bool, Bool: b} }
func null() filter.Value          { return filter.Value{Kind: filter.Null} }
func tm(t time.Time) filter.Value { return filter.Value{Kind: filter.Time, Time: t} }
func and(es ...filter.Expr) filter.Expr {
	return &filter.And{Terms: es}
}
func or(es ...filter.Expr) filter.Expr {
	return &filter.Or{Terms: es}
}

// allBut returns every fixture id except those numbered.
func allBut(ns ...int) []store.RecordID {
	var out []int
	for i := 1; i <= len(fixture); i++ {
		if !slices.Contains(ns, i) {
			out = append(out, i)
		}
	}
	return ids(out...)
}

// filterCases pairs filters with the fixture records they select, worked
// out by hand from package filter's rules.
var filterCases = []struct {
	name string
	expr filter.Expr
	want []store.RecordID
}{
	// Equality is strict about types: 5 is not "5".
	{"NumberEq", c("n", filter.Eq, num(5)), ids(1, 19)},
	{"NumberEqFloat", c("n", filter.Eq, num(5.5)), ids(3)},
	{"NumberEqExponent", c("n", filter.Eq, num(1000)), ids(14)},
	{"NumberEqSmall", c("n", filter.Eq, num(0.0015)), ids(21)},
	{"NumberEqNegative", c("n", filter.Eq, num(-0.5)), ids(15)},
	{"NumberEqZero", c("n", filter.Eq, num(0)), ids(5)},
	{"NumericStringEq", c("n", filter.Eq, str("5")), ids(2)},
	{"NumberNe", c("n", filter.Ne, num(5)), allBut(1, 19)},
	{"NumericStringNe", c("n", filter.Ne, str("5")), allBut(2)},
	{"NullEq", c("n", filter.Eq, null()), ids(8, 9, 22)},
	{"NullNe", c("n", filter.Ne, null()), allBut(8, 9, 22)},
	{"TrueEq", c("n", filter.Eq, boolean(true)), ids(6)},
	{"FalseEq", c("n", filter.Eq, boolean(false)), ids(7)},
	{"TrueNe", c("n", filter.Ne, boolean(true)), allBut(6)},
	{"NumberGt", c("n", filter.Gt, num(5)), ids(3, 14, 17)},
	{"NumberGe", c("n", filter.Ge, num(5)), ids(1, 3, 14, 17, 19)},
	{"NumberLt", c("n", filter.Lt, num(0)), ids(4, 15)},
	{"NumberLe", c("n", filter.Le, num(0)), ids(4, 5, 15)},
	{"NumberRange", and(c("n", filter.Gt, num(-1)), c("n", filter.Lt, num(1))), ids(5, 15, 21)},
	{"NumberRangeSkipsStrings", and(c("n", filter.Gt, num(4)), c("n", filter.Lt, num(6))), ids(1, 3, 19)},
	{"StringGtOnMixed", c("n", filter.Gt, str("5")), ids(12, 16, 20, 24)},
	{"StringLtOnMixed", c("n", filter.Lt, str("5")), ids(13, 18)},
	{"StringGeOnMixed", c("n", filter.Ge, str("5")), ids(2, 12, 16, 20, 24)},
	{"ContainsOnMixed", c("n", filter.Contains, str("5")), ids(2, 24)},
	{"ContainsEmpty", c("n", filter.Contains, str("")), ids(2, 12, 13, 16, 18, 20, 24)},
	{"NumberOrNumericString", or(c("n", filter.Eq, num(10)), c("n", filter.Eq, str("10"))), ids(17, 18)},

	{"StringEq", c("s", filter.Eq, str("apple")), ids(1, 19)},
	{"StringEqEmpty", c("s", filter.Eq, str("")), ids(5)},
	{"StringNeEmpty", c("s", filter.Ne, str("")), allBut(5)},
	{"StringEqNumber", c("s", filter.Eq, num(5)), nil},
	{"StringEqNull", c("s", filter.Eq, null()), ids(22, 23)},
	{"ContainsCaseSensitive", c("s", filter.Contains, str("apple")), ids(1, 8, 19)},
	{"ContainsUpper", c("s", filter.Contains, str("Apple")), ids(2)},
	{"ContainsMiddle", c("s", filter.Contains, str("an")), ids(3, 14, 15)},
	{"ContainsEmoji", c("s", filter.Contains, str("😀")), ids(6, 20)},
	{"ContainsCJK", c("s", filter.Contains, str("中")), ids(7, 21)},
	{"ContainsAccent", c("s", filter.Contains, str("é")), ids(4, 11)},
	{"ContainsQuote", c("s", filter.Contains, str(`"`)), ids(24)},
	{"StringGtByCodePoint", c("s", filter.Gt, str("b")), ids(3, 4, 6, 7, 9, 10, 11, 14, 16, 20, 21, 24)},
	{"StringLtByCodePoint", c("s", filter.Lt, str("B")), ids(2, 5, 13, 17, 18)},
	{"StringLeUnicode", c("s", filter.Le, str("Ärger")), allBut(6, 7, 11, 20, 21, 22, 23)},
	{"Prefix", c("s", filter.Prefix, str("apple")), ids(1, 8, 19)},
	{"PrefixCaseSensitive", c("s", filter.Prefix, str("ban")), ids(3, 14)},
	{"PrefixWhole", c("s", filter.Prefix, str("zebra")), ids(9)},
	{"PrefixLonger", c("s", filter.Prefix, str("zebras")), nil},
	{"PrefixNotInMiddle", c("s", filter.Prefix, str("pie")), nil},
	{"PrefixEmptyIsAnyString", c("s", filter.Prefix, str("")), allBut(22, 23)},
	{"PrefixEmoji", c("s", filter.Prefix, str("😀")), ids(6, 20)},
	{"PrefixAccent", c("s", filter.Prefix, str("ü")), ids(11)},
	{"PrefixQuote", c("s", filter.Prefix, str(`x"`)), ids(24)},
	{"PrefixOnMixed", c("n", filter.Prefix, str("5")), ids(2, 24)},
	{"PrefixMissingField", c("zz", filter.Prefix, str("")), nil},
	{"PrefixMaxRune", c("s", filter.Prefix, str("\U0010ffff")), nil},

	{"BoolEqTrue", c("b", filter.Eq, boolean(true)), ids(1, 5)},
	{"BoolEqFalse", c("b", filter.Eq, boolean(false)), ids(2, 23)},
	{"BoolNeTrue", c("b", filter.Ne, boolean(true)), allBut(1, 5)},
	{"BoolEqNull", c("b", filter.Eq, null()), allBut(1, 2, 5, 23)},

	{"ObjectIsNotNull", c("o", filter.Ne, null()), ids(4)},
	{"ArrayIsNotNull", c("tags", filter.Ne, null()), ids(1)},
	{"ObjectNeNumber", c("o", filter.Ne, num(5)), allBut()},
	{"MissingFieldEqNull", c("zz", filter.Eq, null()), allBut()},
	{"MissingFieldNeString", c("zz", filter.Ne, str("x")), allBut()},
	{"MissingFieldGt", c("zz", filter.Gt, num(-1e300)), nil},

	{"IDEq", c(filter.FieldID, filter.Eq, str("r05")), ids(5)},
	{"IDNe", c(filter.FieldID, filter.Ne, str("r05")), allBut(5)},
	{"IDGt", c(filter.FieldID, filter.Gt, str("r20")), ids(21, 22, 23, 24)},
	{"IDContains", c(filter.FieldID, filter.Contains, str("1")), ids(1, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 21)},
	{"IDPrefix", c(filter.FieldID, filter.Prefix, str("r1")), ids(10, 11, 12, 13, 14, 15, 16, 17, 18, 19)},
	{"IDPrefixWhole", c(filter.FieldID, filter.Prefix, str("r05")), ids(5)},
	{"IDPrefixEmpty", c(filter.FieldID, filter.Prefix, str("")), allBut()},
	{"CreatedEq", c(filter.FieldCreatedAt, filter.Eq, tm(at(time.Second))), ids(3, 4)},
	{"CreatedNe", c(filter.FieldCreatedAt, filter.Ne, tm(base)), allBut(1, 2)},
	{"CreatedGt", c(filter.FieldCreatedAt, filter.Gt, tm(at(10*time.Second))), ids(23, 24)},
	{"CreatedGe", c(filter.FieldCreatedAt, filter.Ge, tm(at(10*time.Second))), ids(21, 22, 23, 24)},
	{"CreatedLt", c(filter.FieldCreatedAt, filter.Lt, tm(at(time.Second))), ids(1, 2)},
	{"CreatedLe", c(filter.FieldCreatedAt, filter.Le, tm(at(time.Second))), ids(1, 2, 3, 4)},
	{"CreatedLeInOtherZone", c(filter.FieldCreatedAt, filter.Le, tm(at(time.Second).In(time.FixedZone("Y", -7*3600)))), ids(1, 2, 3, 4)},
	// Times are stored in whole microseconds; a literal between two of
	// them compares as the real number it is.
	{"CreatedGeSubMicro", c(filter.FieldCreatedAt, filter.Ge, tm(at(time.Second+500*time.Nanosecond))), allBut(1, 2, 3, 4)},
	{"CreatedGtSubMicro", c(filter.FieldCreatedAt, filter.Gt, tm(at(time.Second-500*time.Nanosecond))), allBut(1, 2)},
	{"CreatedLeSubMicro", c(filter.FieldCreatedAt, filter.Le, tm(at(time.Second+500*time.Nanosecond))), ids(1, 2, 3, 4)},
	{"CreatedLtSubMicro", c(filter.FieldCreatedAt, filter.Lt, tm(at(time.Second-500*time.Nanosecond))), ids(1, 2)},
	{"CreatedEqSubMicro", c(filter.FieldCreatedAt, filter.Eq, tm(at(time.Second+500*time.Nanosecond))), nil},
	{"CreatedNeSubMicro", c(filter.FieldCreatedAt, filter.Ne, tm(at(time.Second+500*time.Nanosecond))), allBut()},
	{"UpdatedGt", c(filter.FieldUpdatedAt, filter.Gt, tm(at(time.Hour+5*time.Minute))), ids(1, 2, 3, 4, 5, 6)},
	{"UpdatedEq", c(filter.FieldUpdatedAt, filter.Eq, tm(at(time.Hour))), ids(22, 23, 24)},

	{"And", and(c("n", filter.Eq, num(5)), c("s", filter.Eq, str("apple"))), ids(1, 19)},
	{"Or", or(c("n", filter.Eq, num(5)), c("s", filter.Contains, str("banana"))), ids(1, 3, 14, 19)},
	{"AndOfOrs", and(or(c("n", filter.Eq, num(5)), c("n", filter.Eq, str("5"))),
		or(c("b", filter.Eq, boolean(true)), c("b", filter.Eq, boolean(false)))), ids(1, 2)},
	{"OrOfAnd", or(and(c("n", filter.Gt, num(0)), c("n", filter.Lt, num(10))), c("s", filter.Eq, str("zebra"))), ids(1, 3, 9, 19, 21, 23)},
	{"NestedNull", and(c("s", filter.Contains, str("a")), or(c("n", filter.Eq, null()), c("n", filter.Eq, boolean(true)))), ids(8, 9)},
	{"SystemAndData", and(c(filter.FieldID, filter.Lt, str("r05")), c(filter.FieldCreatedAt, filter.Ge, tm(at(time.Second)))), ids(3, 4)},
	{"PrefixOr", or(c("s", filter.Prefix, str("a")), c(filter.FieldID, filter.Prefix, str("r2"))), ids(1, 8, 12, 19, 20, 21, 22, 23, 24)},
	{"NegationsAnd", and(c("n", filter.Ne, num(5)), c("s", filter.Ne, str("apple")), c("b", filter.Ne, boolean(false))),
		allBut(1, 19, 2, 23)},
	{"SingleTermAnd", and(c("n", filter.Eq, num(2))), ids(23)},
	{"DeepNesting", or(and(or(and(c("n", filter.Eq, num(-3)))))), ids(4)},
}

// Hand-sorted orders of the fixture by data keys of mixed types: missing
// and null, then false before true, then numbers, then strings by code
// point, then objects and arrays, ties broken by id.
var (
	orderN = ids2(8, 9, 22, 7, 6, 4, 15, 5, 21, 23, 1, 19, 3, 17, 14, 13, 18, 2, 24, 12, 16, 20, 10, 11)
	orderS = ids2(22, 23, 5, 17, 13, 18, 2, 15, 12, 1, 19, 8, 3, 14, 4, 16, 24, 9, 10, 11, 21, 7, 20, 6)
)

// ids2 is ids without sorting.
func ids2(ns ...int) []store.RecordID {
	out := make([]store.RecordID, 0, len(ns))
	for _, n := range ns {
		out = append(out, store.RecordID(fmt.Sprintf("r%02d", n)))
	}
	return out
}

// refOrder sorts the fixture by order with an implementation of package
// filter's sort key independent of any backend.
func refOrder(order filter.Order) []store.RecordID {
	type row struct {
		id      store.RecordID
		rank    int
		num     float64
		txt     string
		created time.Time
		updated time.Time
	}
	var rows []row
	for i, data := range fixture {
		r := row{id: ids(i + 1)[0], created: fixtureCreated(i + 1), updated: fixtureUpdated(i + 1)}
		var m map[string]any
		if err := json.Unmarshal([]byte(data), &m); err != nil {
			panic(err)
		}
		switch v := m[order.Field].(type) {
		case nil:
		case bool:
			r.rank = 1
			if v {
				r.num = 1
			}
		case float64:
			r.rank, r.num = 2, v
		case string:
			r.rank, r.txt = 3, v
		default:
			r.rank = 4
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int {
		var k int
		switch order.Field {
		case "", filter.FieldCreatedAt:
			k = a.created.Compare(b.created)
		case filter.FieldUpdatedAt:
			k = a.updated.Compare(b.updated)
		case filter.FieldID:
		default:
			k = cmp.Or(cmp.Compare(a.rank, b.rank), cmp.Compare(a.num, b.num), cmp.Compare(a.txt, b.txt))
		}
		k = cmp.Or(k, cmp.Compare(a.id, b.id))
		if order.Desc {
			k = -k
		}
		return k
	})
	var out []store.RecordID
	for _, r := range rows {
		out = append(out, r.id)
	}
	return out
}

var fixtureOrders = []filter.Order{
	{}, {Desc: true},
	{Field: filter.FieldCreatedAt}, {Field: filter.FieldCreatedAt, Desc: true},
	{Field: filter.FieldUpdatedAt}, {Field: filter.FieldUpdatedAt, Desc: true},
	{Field: filter.FieldID}, {Field: filter.FieldID, Desc: true},
	{Field: "n"}, {Field: "n", Desc: true},
	{Field: "s"}, {Field: "s", Desc: true},
	{Field: "b"}, {Field: "b", Desc: true},
	{Field: "tags"}, {Field: "o", Desc: true},
	{Field: "zz"}, {Field: "zz", Desc: true}, // missing everywhere: id order
}

func orderName(o filter.Order) string {
	f := o.Field
	if f == "" {
		f = "default"
	}
	if o.Desc {
		return "Desc_" + f
	}
	return "Asc_" + f
}

func (h *harness) testFilters(t *testing.T, iso tenant.Isolation) {
	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tn := e.tenant(iso)
		e.loadFixture(tn.ID)
		e.read(tn.ID, func(tx store.Tx) error {
			for _, tc := range filterCases {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Filter: tc.expr, Order: orderByID})
				if err != nil {
					t.Errorf("%s: ListRecords = %v", tc.name, err)
					continue
				}
				got := recordIDs(rs)
				if len(got)+len(tc.want) > 0 {
					diff(t, tc.name, tc.want, got)
				}
			}
			// Listed records are whole.
			rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Filter: c(filter.FieldID, filter.Eq, str("r04"))})
			if errIs(t, "ListRecords", err, nil) {
				want := &store.Record{Collection: fixtureCollection, ID: "r04", Version: 1, Data: json.RawMessage(fixture[3]),
					CreatedAt: fixtureCreated(4), UpdatedAt: fixtureUpdated(4)}
				diff(t, "listed record", []*store.Record{want}, rs)
			}
			return nil
		})
	})

	// Numbers compare as 64-bit floats (filter/doc.go), on every backend:
	// an integer beyond 2^53 equals the float it rounds to.
	t.Run("BigIntegersCompareAsFloats", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tn := e.tenant(iso)
		e.collection(tn.ID, "big")
		e.in(tn.ID, func(tx store.Tx) error {
			for i, d := range []string{`{"n":9007199254740993}`, `{"n":9007199254740992}`, `{"n":9007199254740994}`} {
				id := ids(i + 1)[0]
				errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("big", id, d, at(time.Duration(i)))), nil)
			}
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			for _, tc := range []struct {
				expr filter.Expr
				want []store.RecordID
			}{
				{c("n", filter.Eq, num(9007199254740992)), ids(1, 2)},
				{c("n", filter.Gt, num(9007199254740992)), ids(3)},
				{c("n", filter.Le, num(9007199254740992)), ids(1, 2)},
			} {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: "big", Filter: tc.expr, Order: orderByID})
				if errIs(t, "ListRecords", err, nil) {
					diff(t, filter.Format(tc.expr), tc.want, recordIDs(rs))
				}
			}
			return nil
		})
	})

	t.Run("Order", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tn := e.tenant(iso)
		e.loadFixture(tn.ID)
		e.read(tn.ID, func(tx store.Tx) error {
			for _, tc := range []struct {
				order filter.Order
				want  []store.RecordID
			}{
				{filter.Order{Field: "n"}, orderN},
				{filter.Order{Field: "n", Desc: true}, reversed(orderN)},
				{filter.Order{Field: "s"}, orderS},
				{filter.Order{Field: "s", Desc: true}, reversed(orderS)},
			} {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Order: tc.order})
				if errIs(t, orderName(tc.order), err, nil) {
					diff(t, orderName(tc.order), tc.want, recordIDs(rs))
				}
			}
			for _, o := range fixtureOrders {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Order: o})
				if errIs(t, orderName(o), err, nil) {
					diff(t, orderName(o), refOrder(o), recordIDs(rs))
				}
			}
			return nil
		})
	})

	// Paging through a listing with any limit yields exactly the one-page
	// listing: no record twice, none skipped, ties included.
	t.Run("Pagination", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tn := e.tenant(iso)
		e.loadFixture(tn.ID)
		filters := []filter.Expr{
			nil,
			or(c("n", filter.Ne, null()), c("s", filter.Contains, str("a"))),
			c("b", filter.Ne, boolean(true)),
		}
		e.read(tn.ID, func(tx store.Tx) error {
			for _, o := range fixtureOrders {
				for fi, f := range filters {
					full, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: fixtureCollection, Filter: f, Order: o})
					if !errIs(t, "ListRecords", err, nil) {
						continue
					}
					want := recordIDs(full)
					for _, limit := range []int{1, 2, 3, 7} {
						name := fmt.Sprintf("%s/filter%d/limit%d", orderName(o), fi, limit)
						got := paginate(t, e, tx, name, store.ListRecordsParams{Collection: fixtureCollection, Filter: f, Order: o, Limit: limit}, len(want))
						diff(t, name, want, got)
					}
				}
			}
			return nil
		})
	})
}

// paginate lists p page by page and returns the ids in the order listed.
func paginate(t *testing.T, e *env, tx store.Tx, name string, p store.ListRecordsParams, total int) []store.RecordID {
	t.Helper()
	var got []store.RecordID
	for pages := 0; ; pages++ {
		if pages > total+1 {
			t.Errorf("%s: more than %d pages", name, total+1)
			return got
		}
		page, err := tx.ListRecords(e.ctx, &p)
		if err != nil {
			t.Errorf("%s: ListRecords = %v", name, err)
			return got
		}
		if len(page.Records) > p.Limit {
			t.Errorf("%s: page of %d records, limit %d", name, len(page.Records), p.Limit)
		}
		if len(page.Records) == 0 && pages > 0 {
			t.Errorf("%s: empty page after a page with Next set", name)
		}
		got = append(got, recordIDs(page.Records)...)
		if page.Next == nil {
			return got
		}
		if len(page.Records) != p.Limit {
			t.Errorf("%s: page of %d records has Next, limit %d", name, len(page.Records), p.Limit)
		}
		if last := page.Records[len(page.Records)-1]; page.Next.ID != last.ID {
			t.Errorf("%s: Next.ID = %s, want the last record's id %s", name, page.Next.ID, last.ID)
		}
		p.After = page.Next
	}
}

func reversed[S ~[]E, E any](s S) S {
	r := slices.Clone(s)
	slices.Reverse(r)
	return r
}
