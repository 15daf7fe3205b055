package sipapp

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func parseReq(t *testing.T, src string, vias ...string) *sip.Request {
	t.Helper()
	var b strings.Builder
	b.WriteString("INVITE sip:123@127.0.0.1:5060 SIP/2.0\r\n")
	for _, v := range vias {
		b.WriteString("Via: " + v + "\r\n")
	}
	b.WriteString("From: <sip:a@example.com>;tag=1\r\nTo: <sip:123@127.0.0.1>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
	msg, err := sip.NewParser().ParseSIP([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	req.SetSource(src)
	return req
}

func TestCallerOf(t *testing.T) {
	s := &Server{opt: Options{Limits: Limits{TrustedProxies: []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("2001:db8:1::/48"),
	}}}}
	cases := []struct {
		name    string
		src     string
		vias    []string
		addr    string
		port    int
		trusted bool
	}{
		{"a direct caller is its source, whatever its Vias say", "192.0.2.5:5070",
			[]string{"SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bK1;received=198.51.100.9"}, "192.0.2.5", 5070, false},
		{"a direct caller writing a trusted proxy's Via is still its source", "192.0.2.5:5070",
			[]string{"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK0"}, "192.0.2.5", 5070, false},
		{"behind a proxy: the caller's Via, its received and rport", "127.0.0.1:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/UDP 127.0.0.1:5999;rport=40001;received=127.0.0.2;branch=z9hG4bK1"},
			"127.0.0.2", 40001, false},
		{"behind a proxy: sent-by when the proxy added no received", "127.0.0.1:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/TCP 192.0.2.44:5080;branch=z9hG4bK1"}, "192.0.2.44", 5080, false},
		{"two trusted hops, one Via header with a comma", "10.0.0.7:5060",
			[]string{"SIP/2.0/UDP 10.0.0.7;branch=z9hG4bK3, SIP/2.0/UDP 10.0.0.8:5060;branch=z9hG4bK2;received=10.0.0.9",
				"SIP/2.0/UDP phone.invalid;branch=z9hG4bK1;received=203.0.113.3;rport=7000", "SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK0"},
			"203.0.113.3", 7000, false},
		{"a received the caller forged before the proxy's own: the proxy's counts", "127.0.0.1:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/UDP 127.0.0.1;received=127.0.0.1;branch=z9hG4bK1;received=192.0.2.8"},
			"192.0.2.8", 0, false},
		{"a host name behind a proxy is the key as written", "127.0.0.1:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/UDP Phone.Example.com;branch=z9hG4bK1"}, "phone.example.com", 0, false},
		{"every Via a trusted proxy: the proxy's own request", "127.0.0.1:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2"}, "127.0.0.1", 5062, true},
		{"IPv6 behind an IPv6 proxy", "[2001:db8:1::5]:5060",
			[]string{"SIP/2.0/UDP [2001:db8:1::5]:5060;branch=z9hG4bK2", "SIP/2.0/UDP [2001:db8:2::7]:5062;branch=z9hG4bK1;rport=5099"},
			"2001:db8:2::7", 5099, false},
		{"an IPv4-mapped source is IPv4", "[::ffff:127.0.0.1]:5062",
			[]string{"SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/UDP 127.0.0.3:5062;branch=z9hG4bK1"}, "127.0.0.3", 5062, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := s.callerOf(parseReq(t, tc.src, tc.vias...))
			if got.addr != tc.addr || got.port != tc.port || got.trusted != tc.trusted {
				t.Fatalf("caller %+v, want %s port %d trusted %v", got, tc.addr, tc.port, tc.trusted)
			}
		})
	}
	t.Run("no trusted proxies: the source, always", func(t *testing.T) {
		s := &Server{}
		got := s.callerOf(parseReq(t, "127.0.0.1:5062", "SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK2", "SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1"))
		if got.addr != "127.0.0.1" || got.trusted {
			t.Fatalf("caller %+v, want the source", got)
		}
	})
	t.Run("a trusted caller is never limited, banned or charged", func(t *testing.T) {
		b := NewBudget(1, 60e9, 60e9, nil)
		r := NewRate(1, 1, nil)
		c := caller{addr: "127.0.0.1", trusted: true}
		for range 5 {
			if c.Fail(b) || c.Banned(b) || !c.Allow(r) {
				t.Fatal("a trusted proxy was charged")
			}
		}
		if b.Banned("127.0.0.1") {
			t.Fatal("the proxy's address was banned")
		}
	})
}
