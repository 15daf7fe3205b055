package e2e

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/sipapp"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// proxy starts a test proxy, closed when the test ends.
func proxy(t *testing.T, cfg phone.ProxyConfig) *phone.Proxy {
	t.Helper()
	p, err := phone.ListenProxy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// withProxy sets [server] outbound_proxy.
func withProxy(uri string) func(*conf.Config) {
	return func(c *conf.Config) {
		c.Server.OutboundProxy = uri
		if err := c.Validate(); err != nil {
			panic(err)
		}
	}
}

// routeOf is the value of a request's first Route header, or "".
func routeOf(r *sip.Request) string {
	if h := r.GetHeader("Route"); h != nil {
		return h.Value()
	}
	return ""
}

// A provider dialled by IP address whose realm is a name, or Asterisk's
// default realm: the challenge comes from the host the INVITE went to, so
// it is answered whatever its realm.
func TestDialoutAnswersAnyRealmOfTheNextHop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		auth phone.Auth
	}{
		{"401 with realm asterisk", phone.Auth{Realm: "asterisk", User: "wcuser", Password: "s3cret"}},
		{"407 with realm sip.provider.example", phone.Auth{Realm: "sip.provider.example", User: "wcuser", Password: "s3cret", Proxy: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			cal := testutil.ListenCallee(t, phone.CalleeConfig{Auth: &tc.auth})
			if !strings.HasPrefix(cal.Addr(), "127.0.0.1:") {
				t.Fatalf("the callee is not dialled by IP address: %s", cal.Addr())
			}
			tag := srv.dialout(t, dialReq("realm", cal))
			accept(t, cal)
			srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
			invites := cal.Invites()
			hdr := "Authorization"
			if tc.auth.Proxy {
				hdr = "Proxy-Authorization"
			}
			if len(invites) != 2 || invites[1].GetHeader(hdr) == nil ||
				!strings.Contains(invites[1].GetHeader(hdr).Value(), `realm="`+tc.auth.Realm+`"`) {
				t.Fatalf("want the challenged INVITE again with %s for realm %q; got %d INVITEs", hdr, tc.auth.Realm, len(invites))
			}
		})
	}
}

// dialout_auth_realms restricts the realms answered.
func TestDialoutAuthRealms(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		realm    string
		answered bool
	}{
		{"asterisk", false},
		{"sip.provider.example", true},
	} {
		t.Run(tc.realm, func(t *testing.T) {
			t.Parallel()
			srv := start(t, func(c *conf.Config) {
				c.Webconference.DialoutAuthRealms = "sip.provider.example, other.example"
				if err := c.Validate(); err != nil {
					panic(err)
				}
			})
			cal := testutil.ListenCallee(t, phone.CalleeConfig{Auth: &phone.Auth{Realm: tc.realm, User: "wcuser", Password: "s3cret"}})
			tag := srv.dialout(t, dialReq("realms", cal))
			if tc.answered {
				accept(t, cal)
				srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
				return
			}
			srv.waitDialStatuses(t, tag, "1 INVITE", "5 401 Unauthorized")
			if n := len(cal.Invites()); n != 1 {
				t.Fatalf("%d INVITEs for a realm not in dialout_auth_realms, want 1 (never answered)", n)
			}
		})
	}
}

// fakeUAS is a UDP socket at 127.0.0.1 that records the requests it gets
// and answers every INVITE with a 401 (realm asterisk) sent from the
// socket "from": itself, or a socket on another host.
type fakeUAS struct {
	conn *net.UDPConn
	from *net.UDPConn
	mu   sync.Mutex
	reqs []*sip.Request
}

func listenFakeUAS(t *testing.T, otherHost bool) *fakeUAS {
	t.Helper()
	u := &fakeUAS{}
	u.conn, u.from = listenHosts(t, otherHost)
	serveSIP(t, func(_ *net.UDPConn, req *sip.Request, src netip.AddrPort) {
		u.mu.Lock()
		u.reqs = append(u.reqs, req)
		u.mu.Unlock()
		if req.Method != sip.INVITE {
			return
		}
		res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="asterisk", nonce="6f1c0e2a", algorithm=MD5`))
		_, _ = u.from.WriteToUDPAddrPort([]byte(res.String()), src)
	}, u.conn)
	return u
}

func (u *fakeUAS) addr() string { return u.conn.LocalAddr().String() }

func (u *fakeUAS) requests(method sip.RequestMethod) []*sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []*sip.Request
	for _, r := range u.reqs {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// A challenge that does not come from the host the INVITE went to gets no
// credentials: a 401 sent from 127.0.0.2 to an INVITE sent to 127.0.0.1
// ends the call as 5 "401 Unauthorized" and the INVITE is never sent
// again. The same 401 from 127.0.0.1 is answered (the check sees resends).
func TestDialoutChallengeFromAnotherHost(t *testing.T) {
	t.Parallel()
	t.Run("from 127.0.0.2", func(t *testing.T) {
		t.Parallel()
		srv := start(t, nil)
		uas := listenFakeUAS(t, true)
		req := sipapp.DialRequest{Room: "elsewhere", Callee: "bob", FromUser: "conference", Domain: uas.addr(),
			AuthUser: "wcuser", AuthPwd: "s3cret"}
		tag := srv.dialout(t, req)
		srv.waitDialStatuses(t, tag, "1 INVITE", "5 401 Unauthorized")
		// The final status is set where the flow gives up; a resend
		// would have come before it.
		for _, inv := range uas.requests(sip.INVITE) {
			if inv.GetHeader("Authorization") != nil || inv.GetHeader("Proxy-Authorization") != nil {
				t.Fatalf("credentials sent after a challenge from another host:\n%s", inv)
			}
		}
	})
	t.Run("from 127.0.0.1", func(t *testing.T) {
		t.Parallel()
		srv := start(t, nil)
		uas := listenFakeUAS(t, false)
		req := sipapp.DialRequest{Room: "here", Callee: "bob", FromUser: "conference", Domain: uas.addr(),
			AuthUser: "wcuser", AuthPwd: "s3cret"}
		tag := srv.dialout(t, req)
		srv.waitDialStatuses(t, tag, "1 INVITE", "5 401 Unauthorized")
		authorized := 0
		for _, inv := range uas.requests(sip.INVITE) {
			if inv.GetHeader("Authorization") != nil {
				authorized++
			}
		}
		if authorized == 0 {
			t.Fatal("the next hop's own challenge was not answered")
		}
	})
}

// A dial-out through the outbound proxy: the INVITE goes to the proxy
// (on another host than the callee) with Route: <proxy;lr> and the
// callee in the Request-URI; the 407 of the provider's realm arrives
// from the proxy and is answered; the proxy record-routes, so the ACK
// and the BYE of a kick carry the route set it recorded (with its ftag).
func TestDialoutThroughOutboundProxy(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2", RecordRoute: true})
	srv := start(t, withProxy(px.URI()))
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Auth: &phone.Auth{Realm: "sip.provider.example", User: "wcuser", Password: "s3cret", Proxy: true}})
	tag := srv.dialout(t, dialReq("viaproxy", cal))
	b := accept(t, cal)
	srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")

	invites := px.Requests(sip.INVITE)
	if len(invites) != 2 {
		t.Fatalf("the proxy got %d INVITEs, want 2 (challenged, then with credentials)", len(invites))
	}
	for _, inv := range invites {
		if got, want := routeOf(inv), "<"+px.URI()+";lr>"; got != want {
			t.Fatalf("INVITE Route %q, want %q", got, want)
		}
		if got, want := inv.Recipient.Addr(), "sip:bob@"+cal.Addr(); got != want {
			t.Fatalf("INVITE Request-URI %s, want the callee %s", got, want)
		}
	}
	if h := invites[1].GetHeader("Proxy-Authorization"); h == nil || !strings.Contains(h.Value(), `realm="sip.provider.example"`) {
		t.Fatalf("the second INVITE has no Proxy-Authorization for the provider's realm:\n%s", invites[1])
	}
	calInv := cal.Invites()
	if len(calInv) != 2 || calInv[1].GetHeader("Proxy-Authorization") == nil {
		t.Fatalf("the callee got %d INVITEs, want 2, the second authorized", len(calInv))
	}
	if via := calInv[0].Via(); via == nil || via.Host != "127.0.0.2" {
		t.Fatalf("the callee's INVITE did not come through the proxy: top Via %v", via)
	}

	wantRoute := "<" + px.URI() + ";lr;ftag=" + tag + ">"
	// The ACK of the 200 (the 407's ACK is the transaction's, on the
	// INVITE's route).
	seen, err := px.WaitFor(testutil.Ctx(t, 5*time.Second), "the ACK of the 200", func(s phone.Seen) bool {
		r, ok := s.Msg.(*sip.Request)
		return ok && r.Method == sip.ACK && r.CSeq().SeqNo == invites[1].CSeq().SeqNo
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := routeOf(seen.Msg.(*sip.Request)); got != wantRoute {
		t.Fatalf("ACK Route %q, want the recorded route %q", got, wantRoute)
	}
	if err := srv.Registry().Kick("viaproxy", tag); err != nil {
		t.Fatal(err)
	}
	waitDone(t, b, 5*time.Second, "BYE through the proxy")
	bye, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.BYE)
	if err != nil {
		t.Fatal(err)
	}
	if got := routeOf(bye); got != wantRoute || len(bye.GetHeaders("Route")) != 1 {
		t.Fatalf("BYE Route %q (%d), want the recorded route %q alone", got, len(bye.GetHeaders("Route")), wantRoute)
	}
	if !strings.HasPrefix(bye.Recipient.String(), "sip:callee@"+cal.Addr()) {
		t.Fatalf("BYE Request-URI %s, want the callee's Contact", bye.Recipient.String())
	}
}

// With an empty route set (the proxy does not record-route), our
// in-dialog requests still go through the outbound proxy.
func TestDialoutInDialogThroughOutboundProxyWithoutRecordRoute(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2"})
	srv := start(t, withProxy(px.URI()+";transport=udp"))
	cal := testutil.ListenCallee(t, phone.CalleeConfig{})
	tag := srv.dialout(t, dialReq("norr", cal))
	b := accept(t, cal)
	srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
	if err := srv.Registry().Kick("norr", tag); err != nil {
		t.Fatal(err)
	}
	waitDone(t, b, 5*time.Second, "BYE through the proxy")
	bye, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.BYE)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := routeOf(bye), "<"+px.URI()+";transport=udp;lr>"; got != want {
		t.Fatalf("BYE Route %q, want the outbound proxy %q", got, want)
	}
}

// A strict router (Record-Route without lr, RFC 2543): our BYE names it in
// the Request-URI and carries the callee's Contact as the last Route
// (RFC 3261 12.2.1.1); the proxy restores it and the callee gets the BYE.
func TestDialoutByeThroughAStrictRouter(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2", RecordRoute: true, Strict: true})
	srv := start(t, withProxy(px.URI()))
	cal := testutil.ListenCallee(t, phone.CalleeConfig{})
	tag := srv.dialout(t, dialReq("strict", cal))
	b := accept(t, cal)
	srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
	if err := srv.Registry().Kick("strict", tag); err != nil {
		t.Fatal(err)
	}
	waitDone(t, b, 5*time.Second, "BYE through the strict router")
	bye, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.BYE)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := bye.Recipient.String(), px.URI()+";ftag="+tag; got != want {
		t.Fatalf("BYE Request-URI %s, want the strict router %s", got, want)
	}
	routes := bye.GetHeaders("Route")
	if len(routes) != 1 || !strings.HasPrefix(routes[0].Value(), "<sip:callee@"+cal.Addr()) {
		t.Fatalf("BYE Routes %v, want the callee's Contact alone", routes)
	}
}

// An outbound proxy that is a name is resolved, and a challenge from its
// address is answered.
func TestDialoutOutboundProxyByName(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.1", Aliases: []string{"localhost"}})
	port := netip.MustParseAddrPort(px.Addr()).Port()
	srv := start(t, withProxy("sip:localhost:"+strconv.Itoa(int(port))))
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Auth: &phone.Auth{Realm: "asterisk", User: "wcuser", Password: "s3cret"}})
	tag := srv.dialout(t, dialReq("byname", cal))
	accept(t, cal)
	srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
	if n := len(px.Requests(sip.INVITE)); n != 2 {
		t.Fatalf("the proxy got %d INVITEs, want 2", n)
	}
}

// A dial-out cancelled while it rings: the CANCEL goes where the INVITE
// went, the outbound proxy, with the INVITE's Route (RFC 3261 9.1).
func TestDialoutCancelThroughOutboundProxy(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2", RecordRoute: true})
	srv := start(t, withProxy(px.URI()))
	cal := testutil.ListenCallee(t, phone.CalleeConfig{NoAnswer: true})
	tag := srv.dialout(t, dialReq("cancel", cal))
	srv.waitDialStatuses(t, tag, "1 INVITE", "2 180 Ringing")
	if err := srv.Registry().Kick("cancel", tag); err != nil {
		t.Fatal(err)
	}
	if err := cal.WaitCancel(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("the callee got no CANCEL: %v", err)
	}
	cancel, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.CANCEL)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := routeOf(cancel), "<"+px.URI()+";lr>"; got != want || cancel.Recipient.Addr() != "sip:bob@"+cal.Addr() {
		t.Fatalf("CANCEL %s with Route %q, want the callee's URI with Route %q", cancel.Recipient.Addr(), got, want)
	}
	srv.waitDialStatuses(t, tag, "1 INVITE", "2 180 Ringing", "4 disconnect", "5 ")
}

// A dial-in's dialog never goes through the outbound proxy (it is for
// dialogs we start, as SEMS's): the kick's BYE goes straight to the caller.
func TestDialinByeDoesNotUseTheOutboundProxy(t *testing.T) {
	t.Parallel()
	px := proxy(t, phone.ProxyConfig{Host: "127.0.0.2"})
	srv := start(t, withProxy(px.URI()))
	a := srv.direct(t, "dialin", phone.Config{})
	testutil.WaitFor(t, 5*time.Second, "the caller in the room", func() bool { return srv.connected("dialin") == 1 })
	if err := srv.Registry().Kick("dialin", a.RemoteTag()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, a, 5*time.Second, "BYE of the kick")
	// Had the BYE gone through the proxy, the proxy would have recorded
	// it before the caller could see it.
	if byes := px.Requests(sip.BYE); len(byes) != 0 {
		t.Fatalf("a dial-in's BYE went through the outbound proxy:\n%s", byes[0])
	}
}
