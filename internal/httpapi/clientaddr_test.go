package httpapi

import (
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "203.0.113.7:4000", nil, "203.0.113.7"},
		{"untrusted peer's header is ignored", "203.0.113.7:4000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"trusted peer", "10.1.2.3:4000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"spoofed left part", "10.1.2.3:4000", []string{"1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of proxies", "10.1.2.3:4000", []string{"198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"several headers", "10.1.2.3:4000", []string{"1.2.3.4", "198.51.100.1"}, "198.51.100.1"},
		{"malformed hop", "10.1.2.3:4000", []string{"1.2.3.4, junk, 10.2.2.2"}, "10.2.2.2"},
		{"trusted peer without header", "10.1.2.3:4000", nil, "10.1.2.3"},
		{"ipv6 peer", "[::1]:4000", []string{"2001:db8::5"}, "2001:db8::5"},
		{"mapped ipv4", "10.1.2.3:4000", []string{"::ffff:198.51.100.9"}, "198.51.100.9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, proxies); got.String() != tc.want {
				t.Errorf("clientAddr = %v, want %s", got, tc.want)
			}
		})
	}
}
