package tenant

import "testing"

func TestParseID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d90", true},
		{"0192F0A4-6C1E-7B3A-9D2F-4E8A1C5B7D90", false}, // another spelling of the same UUID
		{"0192f0a46c1e7b3a9d2f4e8a1c5b7d90", false},
		{"{0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d90}", false},
		{"00000000-0000-0000-0000-000000000000", false}, // the nil UUID
		{"../../../../etc/passwd-0000-0000-0000", false},
		{"auth/acme", false},
		{"", false},
		{"0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d9g", false},
	} {
		_, err := ParseID(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseID(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
		if got := ID(tc.in).Valid(); got != tc.ok {
			t.Errorf("ID(%q).Valid() = %v, want %v", tc.in, got, tc.ok)
		}
	}
}

func TestIDBytesRoundTrip(t *testing.T) {
	t.Parallel()
	for range 100 {
		id := NewID()
		b, ok := id.Bytes()
		if !ok {
			t.Fatalf("NewID() = %q, not valid", id)
		}
		if got := IDFromBytes(b); got != id {
			t.Fatalf("IDFromBytes(%q.Bytes()) = %q", id, got)
		}
	}
	if got := IDFromBytes([16]byte{}); got != "" {
		t.Errorf("IDFromBytes(nil UUID) = %q, want the zero ID", got)
	}
}
