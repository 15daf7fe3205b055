package rpc

import (
	"net/netip"
	"testing"
)

func TestClientOf(t *testing.T) {
	tr := Trusted{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	cases := []struct {
		name, peer string
		xff        []string
		key        string
		ok         bool
	}{
		{"an untrusted peer is itself, whatever it sends", "192.0.2.1", []string{"198.51.100.1"}, "192.0.2.1", true},
		{"the rightmost untrusted entry", "10.0.0.1", []string{"203.0.113.9, 198.51.100.1, 10.1.1.1"}, "198.51.100.1", true},
		{"several headers, in order", "10.0.0.1", []string{"203.0.113.9", "198.51.100.2"}, "198.51.100.2", true},
		{"with ports and IPv6", "::1", []string{"[2001:db8::7]:4711"}, "2001:db8::7", true},
		{"IPv4 with a port", "::1", []string{"192.0.2.9:80"}, "192.0.2.9", true},
		{"IPv4-mapped peer", "::ffff:10.0.0.1", []string{"192.0.2.9"}, "192.0.2.9", true},
		{"all trusted: the leftmost", "10.0.0.1", []string{"10.2.2.2, 10.3.3.3"}, "10.2.2.2", true},
		{"none from a trusted proxy", "10.0.0.1", nil, UnknownClient, false},
		{"garbage where the client should be", "10.0.0.1", []string{"198.51.100.1, unknown"}, UnknownClient, false},
		{"garbage the client sent, left of what the proxy saw", "10.0.0.1", []string{"evil, 198.51.100.1"}, "198.51.100.1", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, ok := tr.ClientOf(netip.MustParseAddr(tc.peer), tc.xff)
			if key != tc.key || ok != tc.ok {
				t.Fatalf("ClientOf(%s, %q) = %q, %v; want %q, %v", tc.peer, tc.xff, key, ok, tc.key, tc.ok)
			}
		})
	}
}
