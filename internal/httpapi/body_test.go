package httpapi

import "testing"

func TestWireInteger(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		lit  string
		bits int
		want int64
		why  bool // refused
	}{
		{"0", 64, 0, false},
		{"-0", 64, 0, false},
		{"0.000", 64, 0, false},
		{"0e999999999999999999999", 64, 0, false},
		{"1e3", 64, 1000, false},
		{"1E+3", 64, 1000, false},
		{"1000.0", 64, 1000, false},
		{"0.1e4", 64, 1000, false},
		{"12.5e1", 64, 125, false},
		{"-25e-1", 64, 0, true},
		{"1.5", 64, 0, true},
		{"1e-1", 64, 0, true},
		{"1e-999999999999999999999", 64, 0, true},
		{"9223372036854775807", 64, 9223372036854775807, false},
		{"-9223372036854775808", 64, -9223372036854775808, false},
		{"9223372036854775808", 64, 0, true},
		{"92233720368547758070e-1", 64, 9223372036854775807, false},
		{"1e19", 64, 0, true},
		{"1e999999999999999999999", 64, 0, true},
		{"2147483647", 32, 2147483647, false},
		{"2147483648", 32, 0, true},
		{"-2147483648", 32, -2147483648, false},
	} {
		got, why := wireInteger(tt.lit, tt.bits)
		if (why != "") != tt.why || got != tt.want {
			t.Errorf("wireInteger(%q, %d) = %d, %q; want %d, refused %v", tt.lit, tt.bits, got, why, tt.want, tt.why)
		}
	}
}
