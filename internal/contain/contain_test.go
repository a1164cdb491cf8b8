package contain

import (
	"strconv"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want Rules
	}{
		{"", Defaults},
		{"off", Rules{}},
		{"probes=5/30s", Rules{Probes: Rule{5, 30 * time.Second}, Logins: Defaults.Logins, LockFor: Defaults.LockFor, Addresses: Defaults.Addresses}},
		{"addresses=off,lock=1h", Rules{Probes: Defaults.Probes, Logins: Defaults.Logins, LockFor: time.Hour}},
	} {
		got, err := Parse(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v, want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"probes", "probes=0/1m", "probes=5", "probes=5/-1s", "lock=0s", "nope=1/1m"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", bad)
		}
	}
}

func TestCounterReachesOncePerCrossing(t *testing.T) {
	t.Parallel()
	c := NewCounter(Rule{Limit: 3, Window: time.Minute})
	t0 := time.Unix(1000, 0)
	var reached []int
	for i := range 6 {
		if _, r := c.Hit("k", t0.Add(time.Duration(i)*time.Second)); r {
			reached = append(reached, i)
		}
	}
	if len(reached) != 1 || reached[0] != 2 {
		t.Errorf("reached at %v, want [2]", reached)
	}
	// Spread out, the hits never fill the window.
	c2 := NewCounter(Rule{Limit: 3, Window: time.Minute})
	for i := range 10 {
		if n, r := c2.Hit("k", t0.Add(time.Duration(i)*40*time.Second)); r || n > 2 {
			t.Errorf("hit %d: n=%d reached=%v, want n <= 2 and not reached", i, n, r)
		}
	}
	if _, r := c.Hit("other", t0); r {
		t.Error("a key's first hit reached a limit of 3")
	}
	if n, _ := NewCounter(Rule{}).Hit("k", t0); n != 0 {
		t.Error("a rule that is off counted")
	}
}

func TestDistinctFlagsPastLimit(t *testing.T) {
	t.Parallel()
	d := NewDistinct[string, string](Rule{Limit: 3, Window: time.Hour})
	t0 := time.Unix(1000, 0)
	flags := 0
	for i := range 20 {
		if _, crossed, _ := d.See("key", "10.0.0."+strconv.Itoa(i%5), t0.Add(time.Duration(i)*time.Second)); crossed {
			flags++
			if i != 3 {
				t.Errorf("flagged at the %d-th use, want at the 4th address", i)
			}
		}
	}
	if flags != 1 {
		t.Errorf("flagged %d times within one window, want 1", flags)
	}
	for i := range 10 {
		if _, crossed, added := d.See("calm", "10.0.0.1", t0.Add(time.Duration(i)*time.Second)); crossed || added != (i == 0) {
			t.Errorf("use %d from one address: crossed=%v added=%v, want not crossed, added only the first time", i, crossed, added)
		}
	}
}
