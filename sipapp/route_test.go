package sipapp

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func mustURI(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return u
}

// TestInDialogRouting: a request inside a dialog follows the route set
// (RFC 3261 12.2.1.1): loose (Request-URI the remote target, the set as
// Route, sent to the first route), strict (the first route is the
// Request-URI, the rest and then the remote target are Route), through the
// outbound proxy when a dial-out's set is empty, straight to the target
// otherwise (a dial-in's dialog never goes through the outbound proxy);
// a route without a port goes to the transport's default port.
func TestInDialogRouting(t *testing.T) {
	target := "sip:alice@192.0.2.10:5062"
	for _, tc := range []struct {
		name      string
		proxy     string
		routes    []string
		ruri      string
		route     []string
		dest      string
		transport string
	}{
		{"no route set, no proxy", "", nil, target, nil, "192.0.2.10:5062", "UDP"},
		{"a dial-out, no route set, outbound proxy", "sip:proxy.example.net;transport=tcp", nil, target,
			[]string{"<sip:proxy.example.net;transport=tcp;lr>"}, "proxy.example.net:5060", "TCP"},
		{"a dial-in, no route set, outbound proxy", "sip:proxy.example.net;transport=tcp", nil, target,
			nil, "192.0.2.10:5062", "UDP"},
		{"loose route set wins over the proxy", "sip:proxy.example.net", []string{"sip:198.51.100.1;lr;ftag=x", "sip:198.51.100.2:5070;lr"}, target,
			[]string{"<sip:198.51.100.1;lr;ftag=x>", "<sip:198.51.100.2:5070;lr>"}, "198.51.100.1:5060", "UDP"},
		{"strict router", "", []string{"sip:198.51.100.1:5080;method=INVITE", "sip:198.51.100.2;lr"}, "sip:198.51.100.1:5080",
			[]string{"<sip:198.51.100.2;lr>", "<" + target + ">"}, "198.51.100.1:5080", "UDP"},
		{"a TLS route", "", []string{"sips:[2001:db8::1];lr"}, target,
			[]string{"<sips:[2001:db8::1];lr>"}, "[2001:db8::1]:5061", "TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy, err := parseOutboundProxy(tc.proxy)
			if err != nil {
				t.Fatal(err)
			}
			c := &call{s: &Server{proxy: proxy}, proxy: proxy, uac: !strings.HasPrefix(tc.name, "a dial-in"),
				target: mustURI(t, target), dest: "192.0.2.10:5062", trans: "UDP"}
			for _, r := range tc.routes {
				c.routes = append(c.routes, mustURI(t, r))
			}
			rt := c.inDialogRoute()
			var route []string
			for _, u := range rt.routes {
				route = append(route, (&sip.RouteHeader{Address: u}).Value())
			}
			if rt.ruri.String() != tc.ruri || !slices.Equal(route, tc.route) || rt.dest != tc.dest || rt.trans != tc.transport {
				t.Fatalf("got R-URI %s, Route %q, to %s over %s\nwant R-URI %s, Route %q, to %s over %s",
					rt.ruri.String(), route, rt.dest, rt.trans, tc.ruri, tc.route, tc.dest, tc.transport)
			}
		})
	}
}

// TestRouteSetsFromRecordRoute: a UAS keeps Record-Route in order, a UAC
// reversed (RFC 3261 12.1.1, 12.1.2), and in-dialog requests carry them.
func TestRouteSetsFromRecordRoute(t *testing.T) {
	s := startServer(t, nil)
	rrs := []sip.Header{sip.NewHeader("Record-Route", "<sip:198.51.100.1;lr>"), sip.NewHeader("Record-Route", "<sip:198.51.100.2;lr>")}
	if got := routeURIs(rrs); len(got) != 2 || got[0].Host != "198.51.100.1" || got[1].Host != "198.51.100.2" {
		t.Fatalf("routeURIs %v", got)
	}
	c := &call{s: s, log: s.log, target: mustURI(t, "sip:bob@192.0.2.20"), trans: "UDP", dest: "192.0.2.20:5060"}
	res := sip.NewResponse(200, "OK")
	for _, h := range rrs {
		res.AppendHeader(h)
	}
	res.AppendHeader(sip.NewHeader("Contact", "<sip:bob@192.0.2.21>"))
	to := &sip.ToHeader{Address: mustURI(t, "sip:bob@192.0.2.20"), Params: sip.NewParams()}
	to.Params.Add("tag", "t1")
	res.AppendHeader(to)
	// confirm also sends the ACK: to an address nobody listens on.
	c.confirm(res)
	bye := c.inDialog(sip.BYE)
	var got []string
	for _, h := range bye.GetHeaders("Route") {
		got = append(got, h.Value())
	}
	if want := []string{"<sip:198.51.100.2;lr>", "<sip:198.51.100.1;lr>"}; !slices.Equal(got, want) {
		t.Fatalf("a UAC's route set %q, want Record-Route reversed %q", got, want)
	}
	if bye.Destination() != "198.51.100.2:5060" || bye.Recipient.String() != "sip:bob@192.0.2.21" {
		t.Fatalf("BYE to %s for %s", bye.Destination(), bye.Recipient.String())
	}
}

// TestOutboundProxyAtStartup: a bad outbound proxy stops New with a message
// naming the key, and TLS is refused without our TLS listener (the peer's
// requests come back to our Contact over TLS).
func TestOutboundProxyAtStartup(t *testing.T) {
	for _, tc := range []struct{ proxy, want string }{
		{"proxy.example.net", "[server] outbound_proxy"},
		{"sip:proxy.example.net;transport=tls", "needs [server] sip_tls_listen"},
		{"sips:proxy.example.net", "needs [server] sip_tls_listen"},
		{"sip:proxy.example.net;transport=sctp", "transport=sctp"},
	} {
		_, err := New(Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 44200, RTPHigh: 44300, OutboundProxy: tc.proxy})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "outbound_proxy") {
			t.Errorf("outbound_proxy %q: %v, want an error naming the key and %q", tc.proxy, err, tc.want)
		}
	}
}

// TestResolveHop: a name is resolved once to the address the INVITE goes
// to; a challenge is then answered only from that address.
func TestResolveHop(t *testing.T) {
	s := &Server{resolver: func(_ context.Context, host string) ([]netip.Addr, error) {
		if host == "sip.provider.example" {
			return []netip.Addr{netip.MustParseAddr("2001:db8::5"), netip.MustParseAddr("203.0.113.5")}, nil
		}
		return nil, &lookupError{}
	}}
	for _, tc := range []struct{ uri, want string }{
		{"sip:bob@sip.provider.example", "203.0.113.5:5060"},
		{"sip:bob@sip.provider.example:5070", "203.0.113.5:5070"},
		{"sip:bob@[2001:db8::9]", "[2001:db8::9]:5060"},
		{"sip:bob@198.51.100.3:5080", "198.51.100.3:5080"},
	} {
		got, err := s.resolveHop(context.Background(), mustURI(t, tc.uri))
		if err != nil || got != tc.want {
			t.Errorf("resolveHop(%s) = %q, %v; want %s", tc.uri, got, err, tc.want)
		}
	}
	if _, err := s.resolveHop(context.Background(), mustURI(t, "sip:bob@unknown.example:5060")); err == nil {
		t.Error("an unknown name resolved")
	}
	c := &call{s: s}
	req := sip.NewRequest(sip.BYE, mustURI(t, "sip:bob@sip.provider.example"))
	req.SetDestination("sip.provider.example:5060")
	for src, ok := range map[string]bool{"203.0.113.5:5060": true, "[2001:db8::5]:5062": true, "203.0.113.6:5060": false} {
		res := sip.NewResponse(401, "Unauthorized")
		res.SetSource(src)
		if err := c.fromNextHop(req, res); (err == nil) != ok {
			t.Errorf("challenge from %s to a request for sip.provider.example: %v, want accepted %v", src, err, ok)
		}
	}
}

type lookupError struct{}

func (*lookupError) Error() string { return "no such host" }
