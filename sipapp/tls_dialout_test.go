package sipapp

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// sniRecorder notes the server names (SNI) a TLS listener was asked for.
type sniRecorder struct {
	mu    sync.Mutex
	names []string
}

func (r *sniRecorder) serve(ca *testutil.CA, leaf *testutil.Leaf) *tls.Config {
	cfg := ca.ServerConfig(leaf)
	cfg.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		r.mu.Lock()
		r.names = append(r.names, h.ServerName)
		r.mu.Unlock()
		return nil, nil
	}
	return cfg
}

func (r *sniRecorder) got() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.names...)
}

// startTLSDialer runs a server with a TLS listener that trusts ca when it
// dials out and resolves the names in hosts (to 127.0.0.1) and no others.
func startTLSDialer(t *testing.T, ca *testutil.CA, proxy string, hosts ...string) *Server {
	t.Helper()
	leaf := ca.Issue(t, "server")
	return startServerWith(t, func(o *Options) {
		o.SIPTLSListen = "127.0.0.1:0"
		o.TLSCert, o.TLSKey, o.TLSCAFile = leaf.CertFile, leaf.KeyFile, ca.File
		o.OutboundProxy = proxy
	}, func(s *Server) {
		s.resolver = func(_ context.Context, host string) ([]netip.Addr, error) {
			for _, h := range hosts {
				if h == host {
					return []netip.Addr{netip.MustParseAddr("127.0.0.1")}, nil
				}
			}
			return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
		}
	})
}

func calleePort(t *testing.T, c *phone.Callee) string {
	t.Helper()
	_, p, err := net.SplitHostPort(c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// acceptConnected has cal answer the dial-out tag of room, closed when
// the test ends, and waits until the server has it connected.
func acceptConnected(t *testing.T, s *Server, cal *phone.Callee, name, tag string) {
	t.Helper()
	b, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	testutil.WaitFor(t, 5*time.Second, "the dial-out connected", func() bool {
		p, ok := record(s, name, tag)
		return ok && p.Status == room.StatusConnected
	})
}

// TestDialoutOverTLSVerifiesTheHopName: a TLS next hop given by name is
// reached at the address that name resolved to (where the INVITE and any
// answer to a challenge go), and its certificate is verified against the
// name, with the name as SNI (RFC 5922 section 7), not against the
// address: a callee whose certificate names callee.test only (no IP
// address, as real certificates are) answers a dial-out to
// sips:bob@callee.test:PORT, also after a digest challenge (to
// callee.test:PORT;transport=tls), and an outbound proxy
// sip:sbc.test:PORT;transport=tls whose certificate names sbc.test takes
// the INVITE.
func TestDialoutOverTLSVerifiesTheHopName(t *testing.T) {
	t.Run("callee", func(t *testing.T) {
		ca := testutil.NewCA(t)
		var sni sniRecorder
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: sni.serve(ca, ca.IssueFor(t, "callee", "callee.test"))})
		s := startTLSDialer(t, ca, "", "callee.test")
		tag, err := s.Dialout(context.Background(), DialRequest{Room: "named", Callee: "bob", FromUser: "conf",
			Domain: "127.0.0.1", CalleeDomain: "sips:callee.test:" + calleePort(t, cal)})
		if err != nil {
			t.Fatalf("dialout to a callee whose certificate names callee.test: %v", err)
		}
		acceptConnected(t, s, cal, "named", tag)
		inv := cal.Invites()[0]
		if inv.Transport() != "TLS" || inv.Recipient.String() != "sips:bob@callee.test:"+calleePort(t, cal) {
			t.Fatalf("INVITE %s over %s, want sips:bob@callee.test over TLS", inv.Recipient.String(), inv.Transport())
		}
		if got := sni.got(); len(got) != 1 || got[0] != "callee.test" {
			t.Fatalf("SNI of the dial-out's handshakes %q, want one, callee.test", got)
		}

		// A second dial-out to callee.test goes over the same connection.
		if _, err := s.Dialout(context.Background(), DialRequest{Room: "named", Callee: "carol", FromUser: "conf",
			Domain: "127.0.0.1", CalleeDomain: "sips:callee.test:" + calleePort(t, cal)}); err != nil {
			t.Fatalf("second dialout to callee.test: %v", err)
		}
		if _, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 2); err != nil {
			t.Fatal(err)
		}
		if got := sni.got(); len(got) != 1 {
			t.Fatalf("handshakes %q: the second dial-out to callee.test did not reuse the connection", got)
		}
		// A dial-out to the callee's address is checked against the
		// address, which its certificate does not name: the connection
		// verified for callee.test at that address does not let it in.
		_, err = s.Dialout(context.Background(), DialRequest{Room: "named", Callee: "dave", FromUser: "conf",
			Domain: "127.0.0.1", CalleeDomain: "sips:" + cal.Addr()})
		if !errors.Is(err, ErrDialoutFailed) {
			t.Fatalf("dialout to %s, whose certificate names callee.test only: %v, want ErrDialoutFailed", cal.Addr(), err)
		}
		if n := len(cal.Invites()); n != 2 {
			t.Fatalf("%d INVITEs, want 2: one reached the callee dialled by an address its certificate does not name", n)
		}
	})
	t.Run("alias", func(t *testing.T) {
		// A certificate naming both callee.test and alias.test: a
		// dial-out to alias.test at the same address goes over the
		// connection verified for callee.test, which names it too.
		ca := testutil.NewCA(t)
		var sni sniRecorder
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: sni.serve(ca, ca.IssueFor(t, "callee", "callee.test", "alias.test"))})
		s := startTLSDialer(t, ca, "", "callee.test", "alias.test")
		for _, host := range []string{"callee.test", "alias.test"} {
			if _, err := s.Dialout(context.Background(), DialRequest{Room: "alias", Callee: "bob", FromUser: "conf",
				Domain: "127.0.0.1", CalleeDomain: "sips:" + host + ":" + calleePort(t, cal)}); err != nil {
				t.Fatalf("dialout to %s: %v", host, err)
			}
		}
		if _, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 2); err != nil {
			t.Fatal(err)
		}
		if got := sni.got(); len(got) != 1 || got[0] != "callee.test" {
			t.Fatalf("SNI of the dial-outs' handshakes %q, want one, callee.test", got)
		}
	})
	t.Run("challenged", func(t *testing.T) {
		// The challenge comes from the address callee.test resolved to
		// (authHop); the INVITE with credentials goes there over the
		// connection verified for callee.test.
		ca := testutil.NewCA(t)
		var sni sniRecorder
		cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: sni.serve(ca, ca.IssueFor(t, "callee", "callee.test")),
			Auth: &phone.Auth{Realm: "callee.test", User: "conf", Password: "secret"}})
		s := startTLSDialer(t, ca, "", "callee.test")
		tag, err := s.Dialout(context.Background(), DialRequest{Room: "challenged", Callee: "bob", FromUser: "conf",
			Domain: "127.0.0.1", CalleeDomain: "callee.test:" + calleePort(t, cal) + ";transport=tls",
			AuthUser: "conf", AuthPwd: "secret"})
		if err != nil {
			t.Fatalf("dialout: %v", err)
		}
		acceptConnected(t, s, cal, "challenged", tag)
		if n := len(cal.Invites()); n != 2 {
			t.Fatalf("%d INVITEs, want 2 (challenged, then with credentials)", n)
		}
		if got := sni.got(); len(got) != 1 || got[0] != "callee.test" {
			t.Fatalf("SNI of the dial-out's handshakes %q, want one, callee.test", got)
		}
	})
	t.Run("outbound proxy", func(t *testing.T) {
		// The proxy (an SBC playing the callee) turns the call down: what
		// is proved is that the INVITE reached it over TLS. (Once a dialog
		// exists, requests through the proxy go to its name, which sipgo
		// resolves itself, and the test's names exist for our resolver
		// only.)
		ca := testutil.NewCA(t)
		var sni sniRecorder
		sbc := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: sni.serve(ca, ca.IssueFor(t, "sbc", "sbc.test")), Reject: 486})
		s := startTLSDialer(t, ca, "sip:sbc.test:"+calleePort(t, sbc)+";transport=tls", "sbc.test")
		tag, err := s.Dialout(context.Background(), DialRequest{Room: "proxied", Callee: "bob", FromUser: "conf",
			Domain: "127.0.0.1", CalleeDomain: "provider.invalid"})
		if err != nil {
			t.Fatalf("dialout through a proxy whose certificate names sbc.test: %v", err)
		}
		invites, err := sbc.WaitInvites(testutil.Ctx(t, 10*time.Second), 1)
		if err != nil {
			t.Fatal(err)
		}
		if inv := invites[0]; inv.Transport() != "TLS" || inv.Recipient.String() != "sip:bob@provider.invalid" {
			t.Fatalf("INVITE %s over %s, want sip:bob@provider.invalid over TLS", inv.Recipient.String(), inv.Transport())
		}
		if got := sni.got(); len(got) == 0 || got[0] != "sbc.test" {
			t.Fatalf("SNI of the dial-out's handshakes %q, want sbc.test", got)
		}
		testutil.WaitFor(t, 5*time.Second, "the dial-out turned down", func() bool {
			p, ok := record(s, "proxied", tag)
			return ok && p.Status == room.StatusFinished
		})
	})
}

// TestDialoutOverTLSRefusesACertificateForAnotherName: the hop's
// certificate must name the hop as it was given. A callee at the address
// callee.test resolves to, whose certificate (of a trusted CA) names
// other.test, gets no INVITE; nor does a callee dialled by its IP address
// whose certificate names callee.test only (an address is checked against
// the certificate's IP addresses).
func TestDialoutOverTLSRefusesACertificateForAnotherName(t *testing.T) {
	for _, tc := range []struct{ name, certFor, host string }{
		{"other name", "other.test", "callee.test"},
		{"by address", "callee.test", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ca := testutil.NewCA(t)
			cal := testutil.ListenCallee(t, phone.CalleeConfig{Transport: "tls", TLS: ca.ServerConfig(ca.IssueFor(t, "callee", tc.certFor))})
			s := startTLSDialer(t, ca, "", "callee.test", "other.test")
			_, err := s.Dialout(context.Background(), DialRequest{Room: "wrong", Callee: "bob", FromUser: "conf",
				Domain: "127.0.0.1", CalleeDomain: "sips:" + tc.host + ":" + calleePort(t, cal)})
			if !errors.Is(err, ErrDialoutFailed) {
				t.Fatalf("dialout to %s whose certificate names %s: %v, want ErrDialoutFailed", tc.host, tc.certFor, err)
			}
			if n := len(cal.Invites()); n != 0 {
				t.Fatalf("%d INVITEs reached a callee whose certificate names %s, dialled as %s", n, tc.certFor, tc.host)
			}
			if n := s.ActiveCalls(); n != 0 {
				t.Fatalf("%d calls after a refused dial-out", n)
			}
		})
	}
}
