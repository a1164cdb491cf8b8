package core

import (
	"bytes"
	"encoding/json"
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
	for _, l := range []*List[*Record]{{Items: []*Record{}}, {Items: recs, NextCursor: "eyJrIjoxfQ.AbC-_x"}} {
		want := marshal(t, l)
		if diff := cmp.Diff(string(want), string(AppendRecordList(nil, l))); diff != "" {
			t.Errorf("AppendRecordList mismatch (-json.Marshal +got):\n%s", diff)
		}
	}
}
