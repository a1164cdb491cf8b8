package core

import (
	"testing"
	"time"
)

func TestParseRetention(t *testing.T) {
	t.Parallel()
	day := 24 * time.Hour
	for _, c := range []struct {
		in     string
		want   time.Duration
		canon  string
		wantOK bool
	}{
		{"1d", day, "1d", true},
		{"90d", 90 * day, "90d", true},
		{"99999d", 99999 * day, "99999d", true},
		{"48h", 48 * time.Hour, "2d", true},
		{"999999h", 999999 * time.Hour, "999999h", true},
		{"90m", 90 * time.Minute, "90m", true},
		{"120m", 2 * time.Hour, "2h", true},
		{"99999999m", 99999999 * time.Minute, "99999999m", true},
		{"0d", 0, "", false},
		{"01d", 0, "", false},
		{"100000d", 0, "", false},
		{"1000000h", 0, "", false},
		{"100000000m", 0, "", false},
		{"1w", 0, "", false},
		{"1.5d", 0, "", false},
		{"-1d", 0, "", false},
		{"90", 0, "", false},
		{"d", 0, "", false},
		{"", 0, "", false},
		{" 1d", 0, "", false},
	} {
		got, err := parseRetention("retention", c.in)
		if (err == nil) != c.wantOK || got != c.want {
			t.Errorf("parseRetention(%q) = %v, %v; want %v, ok %v", c.in, got, err, c.want, c.wantOK)
			continue
		}
		if !c.wantOK {
			continue
		}
		if s := formatRetention(got); s != c.canon {
			t.Errorf("formatRetention(%v) = %q, want %q", got, s, c.canon)
		} else if back, err := parseRetention("retention", s); err != nil || back != got {
			t.Errorf("parseRetention(formatRetention(%v)) = %v, %v; want it back", got, back, err)
		}
	}
}
