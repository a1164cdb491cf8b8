package core

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// marshal is json.Marshal without HTML escaping, which the store's compact
// data does not use either.
func marshal(t *testing.T, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// The hand-written encoders must produce exactly what encoding/json would.
func TestRecordAppendJSON(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 3, 4, 5, 123456000, time.UTC)
	recs := []*Record{
		{ID: "0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d90", Version: 1, CreatedAt: t0, UpdatedAt: t0, Data: json.RawMessage(`{"a":1}`)},
		{ID: "0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d91", Version: 42, CreatedAt: t0.Add(-time.Hour), UpdatedAt: t0.Truncate(time.Second),
			Data: json.RawMessage(`{"s":"é \"q\" <tag>","n":[1.5,null,true],"o":{}}`)},
	}
	for _, r := range recs {
		want := marshal(t, r)
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("AppendJSON = %s, want %s", got, want)
		}
	}
	total := int64(7)
	for _, l := range []*RecordList{{Items: []*Record{}}, {Items: recs, NextCursor: "eyJrIjoxfQ.AbC-_x"}, {Items: recs, Total: &total}} {
		want := marshal(t, l)
		if diff := cmp.Diff(string(want), string(AppendRecordList(nil, l))); diff != "" {
			t.Errorf("AppendRecordList mismatch (-json.Marshal +got):\n%s", diff)
		}
	}
}

// TestCheckNumber: the number rule of records, at its edges. Every number
// accepted here is one that both stores hold (PostgreSQL's numeric refuses
// the refused ones that are doubles); the HTTP tests store them on both.
func TestCheckNumber(t *testing.T) {
	zeros := func(n int) string { return strings.Repeat("0", n) }
	for _, tc := range []struct {
		lit string
		ok  bool
	}{
		{"0", true}, {"-0", true}, {"1.5", true}, {"-2E+3", true}, {"9007199254740993", true},
		{"1.7976931348623157e308", true}, {"-1.7976931348623157e308", true},
		{"1.7976931348623158e308", true}, // rounds down to the largest double
		{"1.7976931348623159e308", false}, {"1.8e308", false}, {"1e309", false}, {"-1e400", false},
		{"5e-324", true}, {"4.9e-324", true}, {"2.4703282292062328e-324", true}, // round to the smallest double
		{"2.4703282292062327e-324", false}, {"2e-324", false}, {"1e-400", false}, {"1e-16384", false}, // round to 0
		{"0e-16383", true}, {"0e-16384", false}, {"-0.0e-16383", false}, {"0E16383", true}, {"0e16384", false},
		{"0e1000000", false}, {"0e-99999999999999999999", false},
		{"0.0e-16382", true}, {"0.00e-16382", false},
		{"1." + zeros(98), true}, {"1." + zeros(99), false}, {"1" + zeros(800) + "e-790", false},
		{"0." + zeros(97) + "1", true}, {"0." + zeros(98) + "1", false}, {"12345678901234567890123456789012345678901234567890", true},
	} {
		got := checkNumber(tc.lit)
		if (got == "") != tc.ok {
			name := tc.lit
			if len(name) > 40 {
				name = name[:20] + "…" + name[len(name)-15:]
			}
			t.Errorf("checkNumber(%s) = %q, want ok %v", name, got, tc.ok)
		}
	}
}
