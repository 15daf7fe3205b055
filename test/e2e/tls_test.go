package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"webconf/conf"
	"webconf/sipapp"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// startTLS runs a server with a SIP TLS listener on a free loopback port,
// serving a certificate of a fresh test CA, and trusting that CA when it
// dials out over TLS.
func startTLS(t *testing.T, edit func(*conf.Config)) (*server, *testutil.CA, *testutil.Leaf) {
	t.Helper()
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "server")
	s := start(t, func(c *conf.Config) {
		c.Server.SIPTLSListen = "127.0.0.1:0"
		c.Server.TLSCert, c.Server.TLSKey = leaf.CertFile, leaf.KeyFile
		c.Server.TLSCAFile = ca.File
		if edit != nil {
			edit(c)
		}
	})
	if s.TLSAddr() == "" {
		t.Fatal("no TLS listener")
	}
	return s, ca, leaf
}

// dialAt calls addr and hangs up and closes the phone when the test ends.
func dialAt(t *testing.T, addr string, cfg phone.Config) *phone.Phone {
	t.Helper()
	cfg.Server = addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	testutil.HangUpAtEnd(t, p)
	return p
}

// tlsPhone is a test phone over TLS that trusts ca and serves its own
// listener with a certificate of it.
func tlsPhone(ca *testutil.CA, leaf *testutil.Leaf, user string) phone.Config {
	return phone.Config{Transport: "tls", TLS: ca.ServerConfig(leaf), FromUser: user}
}

func port(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestCallOverTLSMeetsAUDPCaller: a phone calls over TLS into a room with a
// phone on UDP; each hears the other. Our 200's Contact names the TLS
// listener with ;transport=tls (RFC 3261 19.1.1), and the TLS caller hangs
// up with a BYE over its TLS connection.
func TestCallOverTLSMeetsAUDPCaller(t *testing.T) {
	t.Parallel()
	s, ca, _ := startTLS(t, nil)
	cfg := tlsPhone(ca, ca.Issue(t, "phone"), "secure")
	cfg.Headers = append(cfg.Headers, appParam("room=tls1"))
	a := dialAt(t, s.TLSAddr(), cfg)
	b := s.direct(t, "tls1", phone.Config{FromUser: "plain"})

	ct := a.Remote()
	if ct.Scheme != "sip" || ct.Port != port(t, s.TLSAddr()) {
		t.Fatalf("Contact of the 200 over TLS is %s, want sip: at the TLS port %s", ct.String(), s.TLSAddr())
	}
	if tp, _ := ct.UriParams.Get("transport"); tp != "tls" {
		t.Fatalf("Contact of the 200 over TLS is %s, want ;transport=tls", ct.String())
	}
	if bc := b.Remote(); bc.Port != port(t, s.addr) {
		t.Fatalf("Contact of the 200 over UDP is %s, want the SIP port %s", bc.String(), s.addr)
	}
	a.SetTone(500)
	b.SetTone(700)
	hearsAllButSelf(t, a, 500, []float64{700}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500}, 1500, 200)

	ctx := testutil.Ctx(t, 5*time.Second)
	if err := a.Hangup(ctx); err != nil {
		t.Fatalf("BYE over TLS: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "one call left", func() bool { return s.ActiveCalls() == 1 })
}

// TestSIPSCallGetsASIPSContact: a sips: Request-URI over TLS gets a sips:
// Contact (RFC 3261 12.1.1) without the transport parameter RFC 5630
// 3.1.3 deprecates; the call works and a kick's BYE reaches the phone.
func TestSIPSCallGetsASIPSContact(t *testing.T) {
	t.Parallel()
	s, ca, _ := startTLS(t, nil)
	cfg := tlsPhone(ca, ca.Issue(t, "phone"), "sips")
	cfg.SIPS = true
	cfg.Headers = append(cfg.Headers, appParam("room=sips1"))
	a := dialAt(t, s.TLSAddr(), cfg)
	ct := a.Remote()
	if ct.Scheme != "sips" || ct.Port != port(t, s.TLSAddr()) || ct.UriParams.Has("transport") {
		t.Fatalf("Contact of the 200 to a sips: INVITE is %s, want sips: at %s without transport", ct.String(), s.TLSAddr())
	}
	testutil.WaitFor(t, 5*time.Second, "the caller in sips1", func() bool { return s.connected("sips1") == 1 })
	tag := s.participants("sips1")[0].CallTag
	if err := s.Registry().Kick("sips1", tag); err != nil {
		t.Fatalf("kick: %v", err)
	}
	waitDone(t, a, 5*time.Second, "the kick's BYE over TLS")
}

// TestTLSCallerMustTrustTheServer: a phone that does not trust our CA
// cannot call (the handshake fails), and the server goes on serving.
func TestTLSCallerMustTrustTheServer(t *testing.T) {
	t.Parallel()
	s, _, _ := startTLS(t, nil)
	other := testutil.NewCA(t)
	cfg := tlsPhone(other, other.Issue(t, "phone"), "stranger")
	cfg.Server = s.TLSAddr()
	ctx := testutil.Ctx(t, 5*time.Second)
	if p, err := phone.Dial(ctx, cfg); err == nil {
		p.Close()
		t.Fatal("a phone that does not trust the server's CA got through")
	}
	raw, err := tls.Dial("tcp", s.TLSAddr(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS listener gone after a failed handshake: %v", err)
	}
	raw.Close()
}

// TestDialoutOverTLS: dialout to a callee whose domain says ;transport=tls
// goes over TLS, verified against tls_ca_file; the callee and a UDP
// caller hear each other; the callee hangs up over TLS. A sips: domain
// does the same with sips: URIs.
func TestDialoutOverTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, domain, scheme string }{
		{"transport=tls", "%s;transport=tls", "sip"},
		{"sips", "sips:%s", "sips"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ca, _ := startTLS(t, nil)
			cal, err := phone.Listen(testutil.Ctx(t, 5*time.Second), phone.CalleeConfig{
				Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee"))})
			if err != nil {
				t.Fatal(err)
			}
			defer cal.Close()
			name := "out-" + tc.name
			b := s.direct(t, name, phone.Config{FromUser: "plain"})
			domain := tc.domain
			domain = replaceOnce(domain, cal.Addr())
			tag, err := s.Dialout(testutil.Ctx(t, 5*time.Second), sipapp.DialRequest{
				Room: name, Callee: "bob", FromUser: "conf", Domain: "127.0.0.1", CalleeDomain: domain})
			if err != nil {
				t.Fatalf("dialout: %v", err)
			}
			callee, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			inv := cal.Invites()[0]
			if inv.Transport() != "TLS" {
				t.Fatalf("INVITE came over %s", inv.Transport())
			}
			if inv.Recipient.Scheme != tc.scheme {
				t.Fatalf("Request-URI %s, want scheme %s", inv.Recipient.String(), tc.scheme)
			}
			ct := inv.Contact().Address
			tp, _ := ct.UriParams.Get("transport")
			if ct.Port != port(t, s.TLSAddr()) || ct.Scheme != tc.scheme || (tc.scheme == "sip") != (tp == "tls") {
				t.Fatalf("INVITE's Contact %s: want scheme %s at the TLS port %s", ct.String(), tc.scheme, s.TLSAddr())
			}
			s.waitStatus(t, name, tag, room.StatusConnected, "200 OK")
			callee.SetTone(600)
			b.SetTone(800)
			hearsAllButSelf(t, callee, 600, []float64{800}, 1500, 200)
			hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
			if err := callee.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
				t.Fatalf("callee's BYE over TLS: %v", err)
			}
			testutil.WaitFor(t, 5*time.Second, "the dial-out to end", func() bool { return s.ActiveCalls() == 1 })
		})
	}
}

func replaceOnce(format, addr string) string {
	for i := 0; i+1 < len(format); i++ {
		if format[i] == '%' && format[i+1] == 's' {
			return format[:i] + addr + format[i+2:]
		}
	}
	return format
}

// TestDialoutOverTLSVerifiesTheCallee: without tls_ca_file the callee's
// certificate (of a private CA) is checked against the system roots and
// refused: no INVITE reaches it. tls_verify=no (tests only) lets it in.
func TestDialoutOverTLSVerifiesTheCallee(t *testing.T) {
	t.Parallel()
	for _, verify := range []bool{true, false} {
		t.Run("verify="+strconv.FormatBool(verify), func(t *testing.T) {
			t.Parallel()
			s, ca, _ := startTLS(t, func(c *conf.Config) { c.Server.TLSCAFile = ""; c.Server.TLSVerify = verify })
			cal, err := phone.Listen(testutil.Ctx(t, 5*time.Second), phone.CalleeConfig{
				Transport: "tls", TLS: ca.ServerConfig(ca.Issue(t, "callee"))})
			if err != nil {
				t.Fatal(err)
			}
			defer cal.Close()
			if _, err := s.Registry().Create("v", 0); err != nil {
				t.Fatal(err)
			}
			_, err = s.Dialout(testutil.Ctx(t, 5*time.Second), sipapp.DialRequest{
				Room: "v", Callee: "bob", FromUser: "conf", Domain: "127.0.0.1", CalleeDomain: cal.Addr() + ";transport=tls"})
			if verify {
				// The handshake is part of sending the INVITE: the
				// dial-out cannot be placed.
				if !errors.Is(err, sipapp.ErrDialoutFailed) {
					t.Fatalf("dialout to an untrusted callee: %v, want ErrDialoutFailed", err)
				}
				if n := len(cal.Invites()); n != 0 {
					t.Fatalf("%d INVITEs reached a callee whose certificate no trusted CA signed", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("dialout with tls_verify=no: %v", err)
			}
			p, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			_ = p.Hangup(testutil.Ctx(t, 3*time.Second))
		})
	}
}
