package e2e

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"webconf/conf"
	"webconf/test/phone"
)

// needIPv6 skips a test on a machine without ::1.
func needIPv6(t *testing.T) {
	t.Helper()
	c, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback (::1) on this machine: %v", err)
	}
	c.Close()
}

// TestIPv6CallBetweenTwoPhones: the server listens on [::1]; two phones
// call it over IPv6 (UDP and TCP) and hear each other. The SDP answer says
// c=IN IP6 ::1, the RTP legs are bound on ::1 (the phones' audio comes
// from there: strict RTP latches to the SDP address), and the Contact
// names [::1].
func TestIPv6CallBetweenTwoPhones(t *testing.T) {
	t.Parallel()
	needIPv6(t)
	s := start(t, func(c *conf.Config) {
		c.Server.SIPListen = "[::1]:0"
		c.Server.PublicIP = "::1"
	})
	if ap := netip.MustParseAddrPort(s.addr); !ap.Addr().Is6() {
		t.Fatalf("server listens on %s", s.addr)
	}
	a := s.direct(t, "v6", phone.Config{FromUser: "a"})
	b := s.direct(t, "v6", phone.Config{FromUser: "b", Transport: "tcp"})
	for _, p := range []*phone.Phone{a, b} {
		ans := p.Answer()
		if !strings.Contains(string(ans.Body()), "c=IN IP6 ::1\r\n") {
			t.Fatalf("SDP answer over IPv6:\n%s\nwant c=IN IP6 ::1", ans.Body())
		}
		if rtp := p.ServerRTP(); rtp == nil || !rtp.IP.Equal(net.IPv6loopback) {
			t.Fatalf("server RTP address %v, want ::1", rtp)
		}
		if ct := ans.Contact(); ct == nil || !strings.Contains(ct.Value(), "[::1]:") {
			t.Fatalf("Contact over IPv6: %v, want [::1]", ct)
		}
	}
	a.SetTone(500)
	b.SetTone(700)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
}

// TestIPv6OverTLS: a TLS call on [::1] gets a Contact at [::1] with
// ;transport=tls and joins a UDP caller.
func TestIPv6OverTLS(t *testing.T) {
	t.Parallel()
	needIPv6(t)
	s, ca, _ := startTLS(t, func(c *conf.Config) {
		c.Server.SIPListen = "[::1]:0"
		c.Server.PublicIP = "::1"
		c.Server.SIPTLSListen = "[::1]:0"
	})
	cfg := tlsPhone(ca, ca.Issue(t, "phone"), "v6tls")
	cfg.Headers = append(cfg.Headers, appParam("room=v6tls"))
	a := dialAt(t, s.TLSAddr(), cfg)
	b := s.direct(t, "v6tls", phone.Config{FromUser: "plain"})
	if ct := a.Remote(); ct.Host != "[::1]" || ct.Port != port(t, s.TLSAddr()) {
		t.Fatalf("Contact %s, want [::1] at the TLS port %s", ct.String(), s.TLSAddr())
	}
	a.SetTone(500)
	b.SetTone(700)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
}
