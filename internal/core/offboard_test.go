package core

import (
	"fmt"
	"testing"
	"time"
)

func TestParseGrace(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"366d", MaxDeletionGrace, true},
		{"8784h", MaxDeletionGrace, true},
		{"527040m", MaxDeletionGrace, true},
		{"1m", time.Minute, true},
		{"12h", 12 * time.Hour, true},
		{"367d", 0, false},
		{"8785h", 0, false},
		{"527041m", 0, false},
		{"00", 0, false},
		{"0d", 0, false},
		{"030d", 0, false},
		{"-1d", 0, false},
		{"1.5d", 0, false},
		{"1w", 0, false},
		{"1D", 0, false},
		{"", 0, false},
		{" 1d", 0, false},
		{"1d\n", 0, false},
		{"99999999999999999999d", 0, false},
	} {
		got, err := ParseGrace(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseGrace(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.ok)
		}
	}
	// Every number of each unit up to the bound is accepted, and the next
	// one refused: the pattern is the bound.
	for unit, d := range map[string]time.Duration{"d": 24 * time.Hour, "h": time.Hour, "m": time.Minute} {
		limit := int(MaxDeletionGrace / d)
		for n := 1; n <= limit+1; n++ {
			got, err := ParseGrace(fmt.Sprintf("%d%s", n, unit))
			if n <= limit && (err != nil || got != time.Duration(n)*d) || n > limit && err == nil {
				t.Fatalf("ParseGrace(%d%s) = %v, %v", n, unit, got, err)
			}
		}
	}
}

func TestParseUsageRange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		from, to         string
		wantFrom, wantTo time.Time
		field            string // refused naming it, if not empty
	}{
		{"2026-12-01", "2026-12-02", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), ""},
		{"2026-12-01T00:00:00+02:00", "", time.Date(2026, 11, 30, 22, 0, 0, 0, time.UTC), now, ""},
		{"", "2026-12-02", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC), ""},
		{"2025-12-04", "2026-12-05", time.Date(2025, 12, 4, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC), ""}, // 366 days
		{"2025-12-03", "2026-12-05", time.Time{}, time.Time{}, "to"},                                                                 // 367 days
		{"2026-12-02", "2026-12-02", time.Time{}, time.Time{}, "to"},
		{"2026-12-03", "2026-12-02", time.Time{}, time.Time{}, "to"},
		{"2026-12-32", "", time.Time{}, time.Time{}, "from"},
		{"yesterday", "", time.Time{}, time.Time{}, "from"},
		{"2026-12-01", "soon", time.Time{}, time.Time{}, "to"},
		{"1733011200", "", time.Time{}, time.Time{}, "from"},
	} {
		f, to, err := ParseUsageRange(c.from, c.to, now)
		if c.field != "" {
			if e, ok := err.(*Error); !ok || e.Field != c.field {
				t.Errorf("ParseUsageRange(%q, %q) = %v, want an invalid %s", c.from, c.to, err, c.field)
			}
			continue
		}
		if err != nil || !f.Equal(c.wantFrom) || !to.Equal(c.wantTo) {
			t.Errorf("ParseUsageRange(%q, %q) = %v, %v, %v; want %v, %v", c.from, c.to, f, to, err, c.wantFrom, c.wantTo)
		}
	}
}
