package e2e

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/sipapp"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// SIP over TLS with SDES-SRTP, end to end: the keys travel in SDP over a
// real TLS listener or a real TLS dial-out, never over UDP.

// withSRTP sets [server] srtp.
func withSRTP(mode string) func(*conf.Config) {
	return func(c *conf.Config) { c.Server.SRTP = mode }
}

// cryptoLines are the a=crypto lines of an SDP body.
func cryptoLines(body []byte) []string {
	var out []string
	for _, l := range strings.Split(string(body), "\r\n") {
		if strings.HasPrefix(l, "a=crypto:") {
			out = append(out, l)
		}
	}
	return out
}

// secureLeg checks that the server's leg of the call with tag received
// media and dropped nothing as unauthenticated.
func secureLeg(t *testing.T, s *server, tag, who string) {
	t.Helper()
	st, ok := s.LegStats(tag)
	if !ok || st.RxPackets == 0 || st.RxUnauth != 0 {
		t.Fatalf("%s: leg %+v (found %v): want packets received and none unauthenticated", who, st, ok)
	}
}

// injectPlainRTP sends n plain RTP packets from p's own RTP socket (the
// address the server latched) to the server's port for p's call: what an
// attacker without the key, or a phone that forgot SRTP, would send.
func injectPlainRTP(t *testing.T, p *phone.Phone, n int) {
	t.Helper()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0 // RTP v2, PCMU
	pkt[8], pkt[9], pkt[10], pkt[11] = 0xde, 0xad, 0xbe, 0xef
	for i := 0; i < n; i++ {
		pkt[2], pkt[3] = byte(i>>8), byte(i)
		if _, err := p.RTPConn().WriteToUDP(pkt, p.ServerRTP()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDialoutOverTLSWithSRTP: a dial-out to a TLS callee that does SRTP,
// placed with callee_domain "sips:host:port" or "host:port;transport=tls",
// offers a=crypto for both suites (RTP/AVP "best effort" in optional mode,
// RTP/SAVP in mandatory), the callee answers with its own key, and the
// media is SRTP both ways: the callee hears the room (a UDP phone's tone),
// the UDP phone hears the callee, neither side drops a packet as
// unauthenticated. The same dial-out over UDP from the same server offers
// no key in optional mode (only TLS carries a=crypto) and is not placed at
// all in mandatory mode (no INVITE leaves).
func TestDialoutOverTLSWithSRTP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, domain, scheme, proto string
		suites                            []string // the callee accepts
		suite                             string   // the suite in use
	}{
		{"optional, transport=tls", sipapp.SRTPOptional, "%s;transport=tls", "sip", "RTP/AVP", nil, phone.SuiteAES80},
		{"optional, sips", sipapp.SRTPOptional, "sips:%s", "sips", "RTP/AVP", []string{phone.SuiteAES32}, phone.SuiteAES32},
		{"mandatory, transport=tls", sipapp.SRTPMandatory, "%s;transport=tls", "sip", "RTP/SAVP", []string{phone.SuiteAES32}, phone.SuiteAES32},
		{"mandatory, sips", sipapp.SRTPMandatory, "sips:%s", "sips", "RTP/SAVP", nil, phone.SuiteAES80},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ca, _ := startTLS(t, withSRTP(tc.mode))
			cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee")),
				SRTP: &phone.SRTP{Suites: tc.suites}})
			name := "srtp-out"
			// The room's phone is on UDP: plain RTP (in mandatory mode
			// it could not be, so it joins over TLS with SRTP).
			var b *phone.Phone
			if tc.mode == sipapp.SRTPMandatory {
				cfg := tlsPhone(ca, ca.Issue(t, "phone"), "room")
				cfg.SRTP = savp
				cfg.Headers = []sip.Header{appParam("room=" + name)}
				b = dialAt(t, s.TLSAddr(), cfg)
			} else {
				b = s.direct(t, name, phone.Config{FromUser: "plain"})
			}
			tag := s.dialout(t, sipapp.DialRequest{Room: name, Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
				CalleeDomain: replaceOnce(tc.domain, cal.Addr())})
			invites, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			inv := invites[0]
			body := inv.Body()
			if inv.Transport() != "TLS" || inv.Recipient.Scheme != tc.scheme {
				t.Fatalf("INVITE %s over %s, want scheme %s over TLS", inv.Recipient.String(), inv.Transport(), tc.scheme)
			}
			cl := cryptoLines(body)
			if !bytes.Contains(body, []byte(" "+tc.proto+" 0 8 101 13\r\n")) || len(cl) != 2 ||
				!strings.HasPrefix(cl[0], "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") ||
				!strings.HasPrefix(cl[1], "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:") {
				t.Fatalf("the dial-out's offer over TLS:\n%s", body)
			}
			c := accept(t, cal)
			s.waitStatus(t, name, tag, room.StatusConnected, "200 OK")
			if !c.Secure() || c.SRTPSuite() != tc.suite {
				t.Fatalf("the callee's media: secure %v with %q, want %s", c.Secure(), c.SRTPSuite(), tc.suite)
			}
			b.SetTone(800) // the room
			c.SetTone(600)
			hearsAllButSelf(t, c, 600, []float64{800}, 1500, 200)
			hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
			secureLeg(t, s, tag, "the dial-out")
			if n := c.Unauthenticated(); n != 0 {
				t.Fatalf("the callee dropped %d packets as unauthenticated", n)
			}
			// A plain RTP packet to the dial-out's port is not audio.
			injectPlainRTP(t, c, 10)
			testutil.WaitFor(t, 5*time.Second, "10 plain packets dropped", func() bool {
				st, _ := s.LegStats(tag)
				return st.RxUnauth >= 10
			})

			// The same dial-out over UDP.
			udp := testutil.ListenCallee(t, phone.CalleeConfig{SRTP: &phone.SRTP{}})
			req := sipapp.DialRequest{Room: name, Callee: "bob", FromUser: "conf", Domain: "127.0.0.1", CalleeDomain: udp.Addr()}
			if tc.mode == sipapp.SRTPMandatory {
				// Refused before anything is sent: the error is the
				// proof (a sent INVITE returns a call tag).
				_, err := s.Dialout(testutil.Ctx(t, 5*time.Second), req)
				if !errors.Is(err, sipapp.ErrDialoutFailed) || !strings.Contains(err.Error(), "srtp=mandatory") {
					t.Fatalf("mandatory dial-out over UDP: %v, want ErrDialoutFailed naming srtp=mandatory", err)
				}
				if n := len(udp.Invites()); n != 0 {
					t.Fatalf("%d INVITEs over UDP in mandatory mode", n)
				}
				return
			}
			s.dialout(t, req)
			uinv, err := udp.WaitInvites(testutil.Ctx(t, 5*time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			if ub := uinv[0].Body(); uinv[0].Transport() != "UDP" || len(cryptoLines(ub)) != 0 || !bytes.Contains(ub, []byte(" RTP/AVP 0 8 101 13\r\n")) {
				t.Fatalf("the dial-out's offer over %s:\n%s", uinv[0].Transport(), ub)
			}
			if u := accept(t, udp); u.Secure() {
				t.Fatal("the UDP callee does SRTP")
			}
		})
	}
}

// TestDialoutOverTLSToACalleeWithoutSRTP: in optional mode the offer over
// TLS is best effort, so a TLS callee without SRTP answers plain RTP/AVP
// and the call works in the clear; in mandatory mode (RTP/SAVP) the same
// callee refuses the offer with 488 and the dial-out ends with it.
func TestDialoutOverTLSToACalleeWithoutSRTP(t *testing.T) {
	t.Parallel()
	t.Run("optional", func(t *testing.T) {
		t.Parallel()
		s, ca, _ := startTLS(t, nil)
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee"))})
		b := s.direct(t, "plain-out", phone.Config{})
		tag := s.dialout(t, sipapp.DialRequest{Room: "plain-out", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
			CalleeDomain: cal.Addr() + ";transport=tls"})
		c := accept(t, cal)
		s.waitStatus(t, "plain-out", tag, room.StatusConnected, "200 OK")
		if c.Secure() || len(cryptoLines(cal.Invites()[0].Body())) != 2 {
			t.Fatalf("secure %v; offer:\n%s", c.Secure(), cal.Invites()[0].Body())
		}
		b.SetTone(800)
		c.SetTone(600)
		hearsAllButSelf(t, c, 600, []float64{800}, 1500, 200)
		hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
	})
	t.Run("mandatory", func(t *testing.T) {
		t.Parallel()
		s, ca, _ := startTLS(t, withSRTP(sipapp.SRTPMandatory))
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee"))})
		if _, err := s.Registry().Create("savp-out", 0); err != nil {
			t.Fatal(err)
		}
		tag := s.dialout(t, sipapp.DialRequest{Room: "savp-out", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
			CalleeDomain: "sips:" + cal.Addr()})
		s.waitDialStatuses(t, tag, "1 INVITE", "5 488 Not Acceptable Here")
	})
}

// TestTLSPhonesWithSRTP: phones calling over the TLS listener, one offering
// RTP/SAVP, one best-effort RTP/AVP with a=crypto (suites AES_32 then
// AES_80), meet a plain phone on UDP: each SRTP phone gets one a=crypto
// answer with the suite it offered first and its profile, the plain phone
// none, and all three hear each other. The SRTP phones' media is SRTP on
// the wire: plain RTP sent from the phone's own address to the server's
// port for its call is dropped as unauthenticated (leg stats and
// webconf_srtp_unauthenticated_drops_total) and is not heard. A re-INVITE
// (hold, resume) over TLS keeps our key.
func TestTLSPhonesWithSRTP(t *testing.T) {
	t.Parallel()
	s, ca, _ := startTLS(t, nil)
	leaf := ca.Issue(t, "phone")
	tlsCfg := func(user string, srtp *phone.SRTP) phone.Config {
		cfg := tlsPhone(ca, leaf, user)
		cfg.SRTP = srtp
		cfg.Headers = []sip.Header{appParam("room=tls-srtp")}
		return cfg
	}
	a := dialAt(t, s.TLSAddr(), tlsCfg("savp", savp))
	b := dialAt(t, s.TLSAddr(), tlsCfg("besteffort", &phone.SRTP{Suites: []string{phone.SuiteAES32, phone.SuiteAES80}}))
	c := s.direct(t, "tls-srtp", phone.Config{FromUser: "plain"})
	for _, tc := range []struct {
		p           *phone.Phone
		name, suite string
		m, crypto   string
	}{
		{a, "the RTP/SAVP phone", phone.SuiteAES80, " RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"},
		{b, "the best-effort phone", phone.SuiteAES32, " RTP/AVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"},
	} {
		ans := tc.p.AnswerSDP()
		cl := cryptoLines(ans)
		if !tc.p.Secure() || tc.p.SRTPSuite() != tc.suite || !bytes.Contains(ans, []byte(tc.m)) ||
			len(cl) != 1 || !strings.HasPrefix(cl[0], tc.crypto) {
			t.Fatalf("%s: secure %v with %q; answer:\n%s", tc.name, tc.p.Secure(), tc.p.SRTPSuite(), ans)
		}
	}
	if c.Secure() || len(cryptoLines(c.AnswerSDP())) != 0 {
		t.Fatalf("the UDP phone got SRTP:\n%s", c.AnswerSDP())
	}
	a.SetTone(500)
	b.SetTone(700)
	c.SetTone(900)
	hearsAllButSelf(t, a, 500, []float64{700, 900}, 1000, 200)
	hearsAllButSelf(t, b, 700, []float64{500, 900}, 1000, 200)
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1000, 200)
	for name, p := range map[string]*phone.Phone{"the RTP/SAVP phone": a, "the best-effort phone": b} {
		secureLeg(t, s, p.RemoteTag(), name)
		if n := p.Unauthenticated(); n != 0 {
			t.Fatalf("%s dropped %d packets", name, n)
		}
	}

	// Plain RTP from the RTP/SAVP phone's own address is dropped, and the
	// room goes on as before.
	before := s.Metrics().SRTPUnauth
	injectPlainRTP(t, a, 50)
	testutil.WaitFor(t, 5*time.Second, "50 plain packets dropped as unauthenticated", func() bool {
		st, _ := s.LegStats(a.RemoteTag())
		return st.RxUnauth >= 50
	})
	if m := s.Metrics().SRTPUnauth; m < before+50 {
		t.Fatalf("webconf_srtp_unauthenticated_drops_total went from %d to %d, want +50", before, m)
	}
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1000, 200)

	// Hold and resume over TLS keep our key: the same a=crypto each time.
	first := cryptoLines(a.AnswerSDP())[0]
	for _, dir := range []string{"sendonly", "sendrecv"} {
		ans, err := a.Reinvite(testutil.Ctx(t, 5*time.Second), dir)
		if err != nil || len(cryptoLines(ans)) != 1 || cryptoLines(ans)[0] != first {
			t.Fatalf("re-INVITE %s: %v; a=crypto %q, was %q", dir, err, cryptoLines(ans), first)
		}
	}
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1000, 200)
	if n := a.Unauthenticated(); n != 0 {
		t.Fatalf("the RTP/SAVP phone dropped %d packets after the re-INVITEs", n)
	}
}

// TestTLSMandatorySRTP: with srtp=mandatory a plain offer over TLS gets
// 488, and so does an offer whose only a=crypto has an MKI (which we do
// not do); an SRTP offer over TLS is served.
func TestTLSMandatorySRTP(t *testing.T) {
	t.Parallel()
	s, ca, _ := startTLS(t, withSRTP(sipapp.SRTPMandatory))
	leaf := ca.Issue(t, "phone")
	cfg := func(srtp *phone.SRTP) phone.Config {
		c := tlsPhone(ca, leaf, "m")
		c.SRTP = srtp
		c.Headers = []sip.Header{appParam("room=mandatory")}
		return c
	}
	if code := dialStatusAt(t, s.TLSAddr(), cfg(nil)); code != 488 {
		t.Fatalf("a plain offer over TLS in mandatory mode: %d, want 488", code)
	}
	mki := &phone.SRTP{Lines: []string{"1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4"}}
	if code := dialStatusAt(t, s.TLSAddr(), cfg(mki)); code != 488 {
		t.Fatalf("an offer with an MKI in mandatory mode: %d, want 488", code)
	}
	p := dialAt(t, s.TLSAddr(), cfg(bestEffort))
	if !p.Secure() {
		t.Fatalf("an SRTP offer over TLS in mandatory mode is not SRTP:\n%s", p.AnswerSDP())
	}
	if n := s.ActiveCalls(); n != 1 {
		t.Fatalf("%d calls, want the SRTP one alone", n)
	}
}

// TestDialoutThroughATLSOutboundProxyWithSRTP: with outbound_proxy
// sip:host:port;transport=tls, a dial-out to a plain sip: callee (whose
// host is a name nobody resolves: the proxy does) goes over TLS to the
// proxy (here an SBC that answers itself), with Route: <proxy;lr>, the
// callee in the Request-URI and a Contact at our TLS port with
// ;transport=tls; the SRTP policy judges the call by its first hop, so in
// mandatory mode the offer is RTP/SAVP with keys, the media is SRTP both
// ways, and the kick's BYE goes to the proxy over TLS with its Route.
func TestDialoutThroughATLSOutboundProxyWithSRTP(t *testing.T) {
	t.Parallel()
	sbcCA := testutil.NewCA(t)
	sbc := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: sbcCA.ServerConfig(sbcCA.Issue(t, "sbc")), SRTP: &phone.SRTP{}})
	proxyURI := "sip:" + sbc.Addr() + ";transport=tls"
	s, ca, _ := startTLS(t, func(c *conf.Config) {
		c.Server.SRTP = sipapp.SRTPMandatory
		c.Server.TLSCAFile = sbcCA.File // the proxy's CA
		withProxy(proxyURI)(c)
	})
	cfg := tlsPhone(ca, ca.Issue(t, "phone"), "room")
	cfg.SRTP = savp
	cfg.Headers = []sip.Header{appParam("room=tls-proxy")}
	b := dialAt(t, s.TLSAddr(), cfg)
	tag := s.dialout(t, sipapp.DialRequest{Room: "tls-proxy", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
		CalleeDomain: "provider.invalid"})
	c := accept(t, sbc)
	s.waitStatus(t, "tls-proxy", tag, room.StatusConnected, "200 OK")
	inv := sbc.Invites()[0]
	ct := inv.Contact().Address
	tp, _ := ct.UriParams.Get("transport")
	switch {
	case inv.Transport() != "TLS":
		t.Fatalf("INVITE to the proxy over %s", inv.Transport())
	case routeOf(inv) != "<"+proxyURI+";lr>":
		t.Fatalf("INVITE Route %q, want <%s;lr>", routeOf(inv), proxyURI)
	case inv.Recipient.String() != "sip:bob@provider.invalid":
		t.Fatalf("INVITE Request-URI %s, want the callee", inv.Recipient.String())
	case ct.Scheme != "sip" || tp != "tls" || ct.Port != port(t, s.TLSAddr()):
		t.Fatalf("INVITE Contact %s, want sip: at the TLS port %s with transport=tls", ct.String(), s.TLSAddr())
	case !bytes.Contains(inv.Body(), []byte(" RTP/SAVP 0 8 101 13\r\n")) || len(cryptoLines(inv.Body())) != 2:
		t.Fatalf("the offer through a TLS proxy in mandatory mode:\n%s", inv.Body())
	}
	if !c.Secure() {
		t.Fatal("the media through the TLS proxy is not SRTP")
	}
	b.SetTone(800)
	c.SetTone(600)
	hearsAllButSelf(t, c, 600, []float64{800}, 1500, 200)
	hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
	secureLeg(t, s, tag, "the dial-out through the proxy")
	if err := s.Registry().Kick("tls-proxy", tag); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c, 5*time.Second, "the kick's BYE through the TLS proxy")
	for _, r := range c.Requests() {
		if r.Method == sip.BYE && (r.Transport() != "TLS" || routeOf(r) != "<"+proxyURI+";lr>") {
			t.Fatalf("BYE over %s with Route %q, want TLS and <%s;lr>", r.Transport(), routeOf(r), proxyURI)
		}
	}
}

// TestDialoutThroughAUDPOutboundProxy: the first hop decides. Through a
// UDP outbound proxy a callee_domain with ;transport=tls gets no keys in
// optional mode (they would cross the first hop in the clear) and no
// INVITE in mandatory mode; a sips: callee gets no INVITE at all, since
// SIPS asks for TLS on every hop (RFC 3261 26.2.2, RFC 5630 3.1.1) and the
// first one would not be.
func TestDialoutThroughAUDPOutboundProxy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, mode, domain string
		placed             bool
	}{
		{"optional, transport=tls", sipapp.SRTPOptional, "bob.invalid;transport=tls", true},
		{"mandatory, transport=tls", sipapp.SRTPMandatory, "bob.invalid;transport=tls", false},
		{"optional, sips", sipapp.SRTPOptional, "sips:bob.invalid", false},
		{"off, sips", sipapp.SRTPOff, "sips:bob.invalid", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2"})
			s, _, _ := startTLS(t, func(c *conf.Config) {
				c.Server.SRTP = tc.mode
				withProxy(px.URI())(c)
			})
			if _, err := s.Registry().Create("udp-proxy", 0); err != nil {
				t.Fatal(err)
			}
			req := sipapp.DialRequest{Room: "udp-proxy", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1", CalleeDomain: tc.domain}
			_, err := s.Dialout(testutil.Ctx(t, 5*time.Second), req)
			if !tc.placed {
				if !errors.Is(err, sipapp.ErrDialoutFailed) {
					t.Fatalf("dial-out %s through a UDP proxy: %v, want ErrDialoutFailed", tc.domain, err)
				}
				if n := len(px.Requests(sip.INVITE)); n != 0 {
					t.Fatalf("%d INVITEs reached the UDP proxy", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			inv, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.INVITE)
			if err != nil {
				t.Fatal(err)
			}
			if len(cryptoLines(inv.Body())) != 0 || !bytes.Contains(inv.Body(), []byte(" RTP/AVP ")) {
				t.Fatalf("the offer through a UDP proxy:\n%s", inv.Body())
			}
		})
	}
}

// TestSessionRefreshOverTLSKeepsTheSRTPKey: session-timer refreshes by
// re-INVITE over TLS (a dial-in phone that refuses UPDATE, and a dial-out
// refreshed by INVITE) offer the SRTP key of the call's answer again, with
// its tag, suite and profile, never a new one and never without it; after
// two refreshes the media is still SRTP both ways with nothing dropped.
func TestSessionRefreshOverTLSKeepsTheSRTPKey(t *testing.T) {
	t.Parallel()
	refreshes := func(p *phone.Phone) []*sip.Request {
		var out []*sip.Request
		for _, r := range p.Requests() {
			if r.Method == sip.INVITE {
				out = append(out, r)
			}
		}
		return out
	}
	check := func(t *testing.T, s *server, p, room *phone.Phone, tag, key, proto string) {
		t.Helper()
		testutil.WaitFor(t, 8*time.Second, "two re-INVITE refreshes", func() bool { return len(refreshes(p)) >= 2 })
		for _, r := range refreshes(p) {
			cl := cryptoLines(r.Body())
			if r.Transport() != "TLS" || len(cl) != 1 || cl[0] != key || !bytes.Contains(r.Body(), []byte(" "+proto+" ")) {
				t.Fatalf("refresh over %s, want the call's key %q on %s:\n%s", r.Transport(), key, proto, r.Body())
			}
		}
		p.SetTone(600)
		room.SetTone(800)
		hearsAllButSelf(t, p, 600, []float64{800}, 1500, 200)
		hearsAllButSelf(t, room, 800, []float64{600}, 1500, 200)
		secureLeg(t, s, tag, "after the refreshes")
		if n := p.Unauthenticated(); n != 0 {
			t.Fatalf("the TLS party dropped %d packets", n)
		}
	}
	t.Run("dial-in", func(t *testing.T) {
		t.Parallel()
		s, ca, _ := startTLS(t, shortTimers)
		cfg := tlsPhone(ca, ca.Issue(t, "phone"), "refresh")
		cfg.SRTP, cfg.RefuseUpdate = savp, true
		cfg.Headers = []sip.Header{appParam("room=st-tls")}
		p := dialAt(t, s.TLSAddr(), cfg)
		room := s.direct(t, "st-tls", phone.Config{})
		check(t, s, p, room, p.RemoteTag(), cryptoLines(p.AnswerSDP())[0], "RTP/SAVP")
	})
	t.Run("dial-out", func(t *testing.T) {
		t.Parallel()
		s, ca, _ := startTLS(t, func(c *conf.Config) {
			shortTimers(c)
			c.Webconference.SessionRefreshMethod = "INVITE"
		})
		// The callee asks us to refresh (refresher=uac: we are the UAC).
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee")), SRTP: &phone.SRTP{},
			OKHeaders: []sip.Header{sip.NewHeader("Session-Expires", "2;refresher=uac"), sip.NewHeader("Require", "timer")}})
		room := s.direct(t, "st-tls-out", phone.Config{})
		tag := s.dialout(t, sipapp.DialRequest{Room: "st-tls-out", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
			CalleeDomain: "sips:" + cal.Addr()})
		c := accept(t, cal)
		// Our key is the offered line the callee took (tag 1, AES_80).
		key := cryptoLines(cal.Invites()[0].Body())[0]
		check(t, s, c, room, tag, key, "RTP/AVP")
	})
}

// TestSRTPReofferOverUDPForATLSCall: the SRTP policy judges each offer by
// the transport it came over, not by the dialog's: a re-INVITE for a
// TLS call with SRTP that arrives over UDP (right Call-ID and tags, an
// a=crypto offer) gets 488 and no key of ours, since our answer would send
// the call's key in the clear; the call goes on over TLS.
func TestSRTPReofferOverUDPForATLSCall(t *testing.T) {
	t.Parallel()
	s, ca, _ := startTLS(t, nil)
	cfg := tlsPhone(ca, ca.Issue(t, "phone"), "tls")
	cfg.SRTP = savp
	cfg.Headers = []sip.Header{appParam("room=reoffer")}
	a := dialAt(t, s.TLSAddr(), cfg)
	b := s.direct(t, "reoffer", phone.Config{})
	key := cryptoLines(a.AnswerSDP())[0]

	conn := loopbackUDP(t)
	local := conn.LocalAddr().String()
	var ruri sip.Uri
	if err := sip.ParseUri("sip:conference@"+s.addr, &ruri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(sip.INVITE, ruri)
	req.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP "+local+";branch=z9hG4bK-reoffer-udp;rport"))
	req.AppendHeader(sip.NewHeader("From", "<sip:tls@127.0.0.1>;tag="+a.LocalTag()))
	req.AppendHeader(sip.NewHeader("To", "<sip:conference@127.0.0.1>;tag="+a.RemoteTag()))
	req.AppendHeader(sip.NewHeader("Call-ID", a.CallID()))
	req.AppendHeader(sip.NewHeader("CSeq", "100 INVITE"))
	req.AppendHeader(sip.NewHeader("Max-Forwards", "70"))
	req.AppendHeader(sip.NewHeader("Contact", "<sip:tls@"+local+">"))
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody([]byte("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
		"m=audio " + strings.Split(local, ":")[1] + " RTP/SAVP 0\r\n" +
		"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\na=sendrecv\r\n"))
	if _, err := conn.WriteTo([]byte(req.String()), net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s.addr))); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no final answer to the re-INVITE over UDP: %v", err)
		}
		msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
		res, ok := msg.(*sip.Response)
		if err != nil || !ok || res.StatusCode < 200 {
			continue
		}
		if res.StatusCode != 488 || bytes.Contains(res.Body(), []byte("a=crypto")) {
			t.Fatalf("re-INVITE with a=crypto over UDP for a TLS call: %d, want 488 without a key:\n%s", res.StatusCode, res.Body())
		}
		break
	}
	// The call goes on, over TLS, with its key.
	ans, err := a.Reinvite(testutil.Ctx(t, 5*time.Second), "sendrecv")
	if err != nil || len(cryptoLines(ans)) != 1 || cryptoLines(ans)[0] != key {
		t.Fatalf("re-INVITE over TLS after the UDP one: %v, a=crypto %q, want %q", err, cryptoLines(ans), key)
	}
	a.SetTone(500)
	b.SetTone(700)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
}

// TestSessionRefreshNeverSendsTheKeyOutsideTLS: a dial-out over TLS with
// SRTP whose callee record-routes through a hop over UDP (a Record-Route
// without transport=tls) is refreshed by an UPDATE without a body, even
// with session_refresh_method=INVITE: a re-INVITE would carry our SRTP key
// in the clear to that hop. A peer that refuses the UPDATE is not refreshed
// rather than sent the key.
func TestSessionRefreshNeverSendsTheKeyOutsideTLS(t *testing.T) {
	t.Parallel()
	hop := loopbackUDP(t)
	got := make(chan *sip.Request, 16)
	serveSIP(t, func(_ *net.UDPConn, req *sip.Request, from netip.AddrPort) {
		select {
		case got <- req:
		default:
		}
		if req.Method != sip.ACK {
			res := sip.NewResponseFromRequest(req, 501, "Not Implemented", nil)
			_, _ = hop.WriteToUDPAddrPort([]byte(res.String()), from)
		}
	}, hop)
	s, ca, _ := startTLS(t, func(c *conf.Config) {
		shortTimers(c)
		c.Webconference.SessionRefreshMethod = "INVITE"
	})
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee")), SRTP: &phone.SRTP{},
		OKHeaders: []sip.Header{
			sip.NewHeader("Session-Expires", "2;refresher=uac"), sip.NewHeader("Require", "timer"),
			sip.NewHeader("Record-Route", "<sip:"+hop.LocalAddr().String()+";lr>"),
		}})
	if _, err := s.Registry().Create("rr-udp", 0); err != nil {
		t.Fatal(err)
	}
	tag := s.dialout(t, sipapp.DialRequest{Room: "rr-udp", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1",
		CalleeDomain: cal.Addr() + ";transport=tls"})
	s.waitStatus(t, "rr-udp", tag, room.StatusConnected, "200 OK")
	if len(cryptoLines(cal.Invites()[0].Body())) != 2 {
		t.Fatalf("the dial-out over TLS offered no keys:\n%s", cal.Invites()[0].Body())
	}
	ctx := testutil.Ctx(t, 5*time.Second)
	for {
		var req *sip.Request
		select {
		case req = <-got:
		case <-ctx.Done():
			t.Fatal("no refresh reached the record-routed hop")
		}
		if bytes.Contains(req.Body(), []byte("a=crypto")) {
			t.Fatalf("%s over UDP carries the SRTP key:\n%s", req.Method, req.Body())
		}
		if req.Method == sip.ACK {
			continue
		}
		if req.Method != sip.UPDATE || len(req.Body()) != 0 {
			t.Fatalf("refresh through the UDP hop: %s with a %d-byte body, want UPDATE without one", req.Method, len(req.Body()))
		}
		break
	}
	// Refused (501), the refresh is not retried as a re-INVITE with the key.
	testutil.WaitFor(t, 5*time.Second, "a second refresh attempt", func() bool {
		for {
			select {
			case req := <-got:
				if bytes.Contains(req.Body(), []byte("a=crypto")) || req.Method != sip.UPDATE {
					t.Fatalf("after the 501: %s\n%s", req.Method, req.Body())
				}
				return true
			default:
				return false
			}
		}
	})
}
