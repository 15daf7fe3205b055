package sipapp

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/sipapp/sdp"
	"webconf/test/phone"
	"webconf/test/testutil"
)

const testKey = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"

func offerOf(t *testing.T, lines ...string) *sdp.Offer {
	t.Helper()
	body := "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" + strings.Join(lines, "\r\n") + "\r\n"
	o, err := sdp.ParseOffer([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestSRTPPolicy: every mode, transport and kind of offer.
func TestSRTPPolicy(t *testing.T) {
	crypto80 := "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:" + testKey
	crypto32 := "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:" + testKey
	mki := "a=crypto:5 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^20|1:4"
	offers := map[string]*sdp.Offer{
		"plain":       offerOf(t, "m=audio 6000 RTP/AVP 0"),
		"avp+crypto":  offerOf(t, "m=audio 6000 RTP/AVP 0", crypto32, crypto80),
		"avp+mki":     offerOf(t, "m=audio 6000 RTP/AVP 0", mki),
		"savp":        offerOf(t, "m=audio 6000 RTP/SAVP 0", crypto80),
		"savp+mki":    offerOf(t, "m=audio 6000 RTP/SAVP 0", mki),
		"savp+plain":  offerOf(t, "m=audio 6000 RTP/SAVP 0", crypto80, "m=audio 6002 RTP/AVP 0"),
		"savp-nokey":  offerOf(t, "m=audio 6000 RTP/SAVP 0"),
		"savpmki+avp": offerOf(t, "m=audio 6000 RTP/SAVP 0", mki, "m=audio 6002 RTP/AVP 0"),
	}
	// want: "488", "plain" (answer RTP/AVP without a=crypto, port of the
	// stream) or "srtp <tag> <proto>".
	cases := []struct{ mode, transport, offer, want string }{
		{SRTPOff, "TLS", "plain", "plain 6000"},
		{SRTPOff, "TLS", "avp+crypto", "plain 6000"},
		{SRTPOff, "TLS", "savp", "488"},
		{SRTPOff, "TLS", "savp+plain", "plain 6002"},
		{SRTPOff, "UDP", "avp+crypto", "plain 6000"},

		{SRTPOptional, "UDP", "plain", "plain 6000"},
		{SRTPOptional, "UDP", "avp+crypto", "plain 6000"},
		{SRTPOptional, "TCP", "avp+crypto", "plain 6000"},
		{SRTPOptional, "UDP", "savp", "488"},
		{SRTPOptional, "UDP", "savp+plain", "plain 6002"},
		{SRTPOptional, "TLS", "plain", "plain 6000"},
		{SRTPOptional, "TLS", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPOptional, "tls", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPOptional, "TLS", "avp+mki", "plain 6000"},
		{SRTPOptional, "TLS", "savp", "srtp 3 RTP/SAVP"},
		{SRTPOptional, "TLS", "savp+plain", "srtp 3 RTP/SAVP"},
		{SRTPOptional, "TLS", "savp+mki", "488"},
		{SRTPOptional, "TLS", "savp-nokey", "488"},
		{SRTPOptional, "TLS", "savpmki+avp", "plain 6002"},
		{"", "TLS", "savp", "srtp 3 RTP/SAVP"},
		{"", "UDP", "avp+crypto", "plain 6000"},

		{SRTPMandatory, "UDP", "plain", "488"},
		{SRTPMandatory, "UDP", "avp+crypto", "488"},
		{SRTPMandatory, "UDP", "savp", "488"},
		{SRTPMandatory, "TCP", "savp+plain", "488"},
		{SRTPMandatory, "TLS", "plain", "488"},
		{SRTPMandatory, "TLS", "avp+mki", "488"},
		{SRTPMandatory, "TLS", "savp+mki", "488"},
		{SRTPMandatory, "TLS", "savpmki+avp", "488"},
		{SRTPMandatory, "TLS", "avp+crypto", "srtp 4 RTP/AVP"},
		{SRTPMandatory, "TLS", "savp", "srtp 3 RTP/SAVP"},
		{SRTPMandatory, "TLS", "savp+plain", "srtp 3 RTP/SAVP"},
	}
	for _, tc := range cases {
		ch, err := srtpPolicy(tc.mode, tc.transport, offers[tc.offer])
		got := "488"
		switch {
		case err != nil:
			if !errors.Is(err, errSRTPRefused) {
				t.Errorf("%s over %s, %s: unclassified %v", tc.mode, tc.transport, tc.offer, err)
			}
		case ch.remote != nil:
			got = "srtp " + itoa(int(ch.remote.Tag)) + " " + ch.offer.Proto
		default:
			got = "plain " + itoa(ch.offer.Port)
			if ch.offer.Proto != sdp.ProtoRTP {
				got = "plain answer on " + ch.offer.Proto
			}
		}
		if got != tc.want {
			t.Errorf("srtp=%q over %s, %s offer: %s, want %s (%v)", tc.mode, tc.transport, tc.offer, got, tc.want, err)
		}
	}
	if _, err := srtpPolicy(SRTPOptional, "TLS", nil); err == nil {
		t.Error("no offer accepted")
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// startSecureServer starts a server whose calls all count as over a secure
// transport (the test hook standing in for TLS).
func startSecureServer(t *testing.T, mode string) *Server {
	t.Helper()
	return startServerWith(t, func(o *Options) { o.SRTP = mode }, func(s *Server) { s.testSecureTransport.Store(true) })
}

// dialRoomWith calls into room with cfg; the phone hangs up when the test
// ends.
func dialRoomWith(t *testing.T, s *Server, room string, cfg phone.Config) (*phone.Phone, error) {
	t.Helper()
	cfg.Server = s.Addr()
	cfg.Headers = append(cfg.Headers, sip.NewHeader("P-App-Param", "room="+room))
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), cfg)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_ = p.Hangup(ctx)
		p.Close()
	})
	return p, nil
}

// hears waits until p hears every one of freqs.
func hears(t *testing.T, p *phone.Phone, who string, freqs ...float64) {
	t.Helper()
	for _, f := range freqs {
		if err := p.WaitLevel(testutil.Ctx(t, 10*time.Second), f, 1000, 200*time.Millisecond); err != nil {
			t.Fatalf("%s does not hear %.0f Hz: %v", who, f, err)
		}
	}
}

// TestSRTPCallsOverASecureTransport: with the call's transport marked
// secure (TLS's stand-in), phones offering RTP/SAVP and RTP/AVP with
// a=crypto get SRTP with the suite they offered, a plain phone plain RTP
// (optional mode), and all three hear each other through the mix: the
// server decrypts each SRTP phone with the key of its offer and encrypts
// to it with the key of its answer (the phones drop anything that does
// not authenticate). In mandatory mode the plain phone gets 488.
func TestSRTPCallsOverASecureTransport(t *testing.T) {
	s := startSecureServer(t, SRTPOptional)
	a, err := dialRoomWith(t, s, "sec", phone.Config{SRTP: &phone.SRTP{SAVP: true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dialRoomWith(t, s, "sec", phone.Config{SRTP: &phone.SRTP{Suites: []string{phone.SuiteAES32, phone.SuiteAES80}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dialRoomWith(t, s, "sec", phone.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		p           *phone.Phone
		name, suite string
		m           string
		crypto      string
	}{
		{a, "the RTP/SAVP phone", phone.SuiteAES80, " RTP/SAVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"},
		{b, "the best-effort phone", phone.SuiteAES32, " RTP/AVP 0", "a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:"},
	} {
		ans := tc.p.AnswerSDP()
		if !tc.p.Secure() || tc.p.SRTPSuite() != tc.suite || !bytes.Contains(ans, []byte(tc.m)) ||
			!bytes.Contains(ans, []byte(tc.crypto)) || bytes.Count(ans, []byte("a=crypto")) != 1 {
			t.Fatalf("%s: secure %v with %q; answer:\n%s", tc.name, tc.p.Secure(), tc.p.SRTPSuite(), ans)
		}
	}
	if c.Secure() || bytes.Contains(c.AnswerSDP(), []byte("a=crypto")) {
		t.Fatalf("the plain phone got SRTP:\n%s", c.AnswerSDP())
	}
	a.SetTone(500)
	b.SetTone(700)
	c.SetTone(900)
	hears(t, a, "the RTP/SAVP phone", 700, 900)
	hears(t, b, "the best-effort phone", 500, 900)
	hears(t, c, "the plain phone", 500, 700)
	// A re-INVITE (hold, then resume) with the same key keeps ours: the
	// answer carries the same a=crypto and the audio goes on.
	first := cryptoLine(a.AnswerSDP())
	for _, dir := range []string{"sendonly", "sendrecv"} {
		ans, err := a.Reinvite(testutil.Ctx(t, 5*time.Second), dir)
		if err != nil || cryptoLine(ans) != first || first == "" {
			t.Fatalf("re-INVITE %s: %v; a=crypto %q, was %q", dir, err, cryptoLine(ans), first)
		}
	}
	hears(t, c, "the plain phone after the re-INVITEs", 500)
	for _, p := range []*phone.Phone{a, b} {
		st, ok := s.LegStats(p.RemoteTag())
		if !ok || st.RxPackets == 0 || st.RxUnauth != 0 || p.Unauthenticated() != 0 {
			t.Fatalf("leg %+v (found %v), the phone dropped %d", st, ok, p.Unauthenticated())
		}
	}

	m := startSecureServer(t, SRTPMandatory)
	if _, err := dialRoomWith(t, m, "sec", phone.Config{}); !isStatus(err, 488) {
		t.Fatalf("a plain offer in mandatory mode: %v, want 488", err)
	}
	if _, err := dialRoomWith(t, m, "sec", phone.Config{SRTP: &phone.SRTP{Lines: []string{"1 AES_CM_128_HMAC_SHA1_80 inline:" + testKey + "|2^20|1:4"}}}); !isStatus(err, 488) {
		t.Fatalf("an offer with an MKI in mandatory mode: %v, want 488", err)
	}
	d, err := dialRoomWith(t, m, "sec", phone.Config{SRTP: &phone.SRTP{Suites: []string{phone.SuiteAES80}}})
	if err != nil || !d.Secure() {
		t.Fatalf("an SRTP offer in mandatory mode: %v", err)
	}
}

// TestSRTPForgedPacketsInACall: packets with the right SSRC and sequence
// but without the key, sent to a secure call's RTP port from the phone's
// own address, are dropped and counted; the call goes on.
func TestSRTPForgedPacketsInACall(t *testing.T) {
	s := startSecureServer(t, SRTPOptional)
	a, err := dialRoomWith(t, s, "forge", phone.Config{SRTP: &phone.SRTP{}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := dialRoomWith(t, s, "forge", phone.Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.SetTone(500)
	hears(t, b, "the plain phone", 500)
	before, _ := s.LegStats(a.RemoteTag())
	// Plain RTP as a forger without the key would send it, from a's own
	// socket (the latched address).
	to := a.ServerRTP()
	pkt := make([]byte, 12+160)
	pkt[0], pkt[1] = 0x80, 0
	for i := 0; i < 20; i++ {
		pkt[3] = byte(i)
		if _, err := a.RTPConn().WriteToUDP(pkt, to); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "20 forged packets counted", func() bool {
		st, _ := s.LegStats(a.RemoteTag())
		return st.RxUnauth >= before.RxUnauth+20
	})
	hears(t, b, "the plain phone after the forgery", 500)
	if m := s.Metrics(); m.SRTPUnauth < 20 {
		t.Fatalf("metrics count %d unauthenticated packets", m.SRTPUnauth)
	}
}

// TestSRTPDialout: with the dial-out's transport marked secure, optional
// mode offers RTP/AVP with a=crypto for both suites, mandatory RTP/SAVP;
// the callee's answer is applied and the media is SRTP both ways. Over
// UDP, mandatory mode does not dial at all, and optional offers plain.
func TestSRTPDialout(t *testing.T) {
	for _, tc := range []struct {
		mode, m string
		suites  []string
	}{
		{SRTPOptional, "RTP/AVP", nil},
		{SRTPMandatory, "RTP/SAVP", []string{phone.SuiteAES32}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			s := startSecureServer(t, tc.mode)
			in, err := dialRoomWith(t, s, "out", phone.Config{SRTP: &phone.SRTP{}})
			if err != nil {
				t.Fatal(err)
			}
			cal := listenCallee(t, phone.CalleeConfig{SRTP: &phone.SRTP{Suites: tc.suites}})
			dialCallee(t, s, "out", cal)
			invites, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 1)
			if err != nil {
				t.Fatal(err)
			}
			body := string(invites[0].Body())
			if !strings.Contains(body, " "+tc.m+" 0 8 101\r\n") || !strings.Contains(body, "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") ||
				!strings.Contains(body, "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:") {
				t.Fatalf("the dial-out offer:\n%s", body)
			}
			callee, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(callee.Close)
			if !callee.Secure() {
				t.Fatal("the callee's media is not SRTP")
			}
			in.SetTone(500)
			callee.SetTone(700)
			hears(t, callee, "the callee", 500)
			hears(t, in, "the caller", 700)
			if callee.Unauthenticated() != 0 {
				t.Fatalf("the callee dropped %d packets", callee.Unauthenticated())
			}
		})
	}
	t.Run("optional: a callee without SRTP answers plain", func(t *testing.T) {
		s := startSecureServer(t, SRTPOptional)
		in, err := dialRoomWith(t, s, "out", phone.Config{})
		if err != nil {
			t.Fatal(err)
		}
		cal := listenCallee(t, phone.CalleeConfig{})
		dialCallee(t, s, "out", cal)
		callee, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(callee.Close)
		if callee.Secure() {
			t.Fatal("a callee without SRTP does SRTP")
		}
		in.SetTone(500)
		callee.SetTone(700)
		hears(t, callee, "the callee", 500)
		hears(t, in, "the caller", 700)
	})
	t.Run("mandatory over UDP does not dial", func(t *testing.T) {
		s := startServer(t, func(o *Options) { o.SRTP = SRTPMandatory })
		cal := listenCallee(t, phone.CalleeConfig{SRTP: &phone.SRTP{}})
		_, err := s.Dialout(context.Background(), DialRequest{Room: "out", Callee: "bob", FromUser: "conference", Domain: cal.Addr()})
		if !errors.Is(err, ErrDialoutFailed) || len(cal.Invites()) != 0 {
			t.Fatalf("dial-out: %v, %d INVITEs", err, len(cal.Invites()))
		}
	})
	t.Run("optional over UDP offers no key", func(t *testing.T) {
		s := startServer(t, nil)
		cal := listenCallee(t, phone.CalleeConfig{SRTP: &phone.SRTP{}})
		dialCallee(t, s, "out", cal)
		invites, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 1)
		if err != nil {
			t.Fatal(err)
		}
		if body := invites[0].Body(); bytes.Contains(body, []byte("a=crypto")) || !bytes.Contains(body, []byte(" RTP/AVP ")) {
			t.Fatalf("the dial-out offer over UDP:\n%s", body)
		}
	})
}

// cryptoLine is the a=crypto line of an SDP body.
func cryptoLine(body []byte) string {
	for _, l := range strings.Split(string(body), "\r\n") {
		if strings.HasPrefix(l, "a=crypto:") {
			return l
		}
	}
	return ""
}

func isStatus(err error, code int) bool {
	var se *phone.StatusError
	return errors.As(err, &se) && se.Code == code
}
