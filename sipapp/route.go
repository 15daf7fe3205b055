package sipapp

// Where the requests we send go: the outbound proxy, route sets (RFC 3261
// 12.2.1.1, 16.12), the transport a URI asks for, and the next hop's
// address that a digest challenge must come from.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
)

// resolveTimeout bounds the DNS look-up of a dial-out's next hop, and of an
// in-dialog request's when a challenge to it is checked.
const resolveTimeout = 5 * time.Second

// parseOutboundProxy reads [server] outbound_proxy into the URI our Route
// headers carry: always with lr (we route loosely through it, RFC 3261
// 16.12). nil for "".
func parseOutboundProxy(s string) (*sip.Uri, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	p, err := conf.ParseProxyURI(s)
	if err != nil {
		return nil, fmt.Errorf("sipapp: [server] outbound_proxy %q: %w", s, err)
	}
	u := &sip.Uri{Scheme: p.Scheme, Host: p.Host, Port: p.Port, UriParams: sip.NewParams()}
	if a, err := netip.ParseAddr(p.Host); err == nil && a.Is6() {
		u.Host = "[" + a.String() + "]"
	}
	if p.Transport != "" {
		u.UriParams.Add("transport", p.Transport)
	}
	u.UriParams.Add("lr", "")
	return u, nil
}

// transportOf is the transport of a next hop (a route, a Contact): what
// TransportForURI says, and UDP, RFC 3263's default, for a transport we do
// not know (a peer's Record-Route is not ours to refuse).
func transportOf(u sip.Uri) string {
	t, err := TransportForURI(u)
	if err != nil {
		return TransportUDP
	}
	return t
}

// checkTransport refuses a transport we cannot send a request on: TLS
// needs our TLS listener, since the peer's requests come back to our
// Contact over TLS (RFC 3261 8.1.1.8).
func checkTransport(t string, tlsListen string) error {
	if t == TransportTLS && tlsListen == "" {
		return errors.New("transport tls needs [server] sip_tls_listen")
	}
	return nil
}

// uriParam reads a URI parameter, its name case-insensitively.
func uriParam(u sip.Uri, name string) (string, bool) {
	for _, kv := range u.UriParams {
		if strings.EqualFold(kv.K, name) {
			return kv.V, true
		}
	}
	return "", false
}

// looseRouter: the URI of a loose router carries lr (RFC 3261 19.1.1).
func looseRouter(u sip.Uri) bool {
	_, ok := uriParam(u, "lr")
	return ok
}

// defaultPort is the port of a URI without one (RFC 3261 19.1.2).
func defaultPort(transport string) int {
	if transport == "TLS" {
		return 5061
	}
	return 5060
}

// hopAddr is where a request for u goes: host:port, the port defaulted
// from the transport (sip.Uri.HostPort would give ":0").
func hopAddr(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = defaultPort(transportOf(u))
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// routeURIs reads Route or Record-Route headers, one URI per value, in
// order; unreadable values are left out.
func routeURIs(hs []sip.Header) []sip.Uri {
	out := make([]sip.Uri, 0, len(hs))
	for _, h := range hs {
		switch v := h.(type) {
		case *sip.RecordRouteHeader:
			out = append(out, *v.Address.Clone())
		case *sip.RouteHeader:
			out = append(out, *v.Address.Clone())
		default:
			var u sip.Uri
			if _, err := sip.ParseAddressValue(h.Value(), &u, nil); err == nil {
				out = append(out, u)
			}
		}
	}
	return out
}

// route is how a request inside a dialog is addressed (RFC 3261
// 12.2.1.1): its Request-URI, Route headers, destination and transport.
type route struct {
	ruri   sip.Uri
	routes []sip.Uri
	dest   string
	trans  string
}

// inDialogRoute addresses a request inside the dialog: by the route set
// when it is not empty (loose or strict routing), else, in a dialog we
// started (a dial-out), through the outbound proxy when one is set, else
// straight to the remote target. A dial-in's dialog never goes through
// the outbound proxy: as in SEMS (outbound_proxy is for "dialogs initiated
// by SEMS"), the proxy (a provider's, typically) never saw that dialog,
// and a caller that can only be reached through its proxy is reached by
// the route set that proxy recorded. Called with c.dlg held.
func (c *call) inDialogRoute() route {
	set := c.routes
	if len(set) == 0 && c.uac && c.proxy != nil {
		set = []sip.Uri{*c.proxy}
	}
	if len(set) == 0 {
		return route{ruri: *c.target.Clone(), dest: c.dest, trans: c.trans}
	}
	first := set[0]
	r := route{dest: hopAddr(first), trans: transportOf(first)}
	if looseRouter(first) {
		r.ruri = *c.target.Clone()
		for _, u := range set {
			r.routes = append(r.routes, *u.Clone())
		}
		return r
	}
	// A strict router: its URI is the Request-URI (without what a
	// Request-URI may not carry), the rest of the set and then the
	// remote target are the Route headers.
	r.ruri = *first.Clone()
	r.ruri.Headers = nil
	r.ruri.UriParams.Remove("method")
	for _, u := range set[1:] {
		r.routes = append(r.routes, *u.Clone())
	}
	r.routes = append(r.routes, *c.target.Clone())
	return r
}

// lookupHost resolves a name to addresses (tests replace it).
func (s *Server) lookupHost(ctx context.Context, host string) ([]netip.Addr, error) {
	if s != nil && s.resolver != nil {
		return s.resolver(ctx, host)
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// resolveHop is the address a dial-out's INVITE is sent to: the next hop's
// IP and port. A name is resolved here (A/AAAA, then SRV when the URI has
// no port, RFC 3263), once, so that the request, its retransmissions, an
// answer to a challenge and the CANCEL all go to one address, and so that
// a challenge is answered only when it comes from that address.
func (s *Server) resolveHop(ctx context.Context, u sip.Uri) (string, error) {
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	trans := transportOf(u)
	port := u.Port
	if port == 0 {
		port = defaultPort(trans)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return netip.AddrPortFrom(a.Unmap(), uint16(port)).String(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	addrs, err := s.lookupHost(ctx, host)
	if err == nil && len(addrs) > 0 {
		return netip.AddrPortFrom(pickAddr(addrs), uint16(port)).String(), nil
	}
	if u.Port == 0 && s.resolver == nil {
		service, proto := "sip", strings.ToLower(trans)
		if trans == "TLS" {
			service, proto = "sips", "tcp"
		}
		if _, srvs, serr := net.DefaultResolver.LookupSRV(ctx, service, proto, host); serr == nil && len(srvs) > 0 {
			target := strings.TrimSuffix(srvs[0].Target, ".")
			if addrs, aerr := s.lookupHost(ctx, target); aerr == nil && len(addrs) > 0 {
				return netip.AddrPortFrom(pickAddr(addrs), srvs[0].Port).String(), nil
			}
		}
	}
	if err == nil {
		err = errors.New("no address")
	}
	return "", fmt.Errorf("resolve %s: %w", host, err)
}

// pickAddr prefers IPv4, as sipgo's resolver does by default.
func pickAddr(addrs []netip.Addr) netip.Addr {
	for _, a := range addrs {
		if a.Unmap().Is4() {
			return a.Unmap()
		}
	}
	return addrs[0]
}

// fromNextHop checks that a challenge to req came from the host req was
// sent to (its destination: the outbound proxy, the first route, or the
// callee), comparing addresses; a destination that is a name is resolved
// and any of its addresses will do. Ports are not compared: a proxy may
// answer from another socket than the one it listens on. That host must
// also be the one the dial-out's INVITE went to (authHop): a BYE or
// re-INVITE sent to whatever Contact the answering party gave is not a
// request to the provider, and its challenge gets nothing (the digest
// leak, spec/reliability.md 1.2 and R7).
func (c *call) fromNextHop(req *sip.Request, res *sip.Response) error {
	src, dest := res.Source(), req.Destination()
	srcHost, _, err := splitHostPortLoose(src)
	if err != nil {
		return fmt.Errorf("challenge from unreadable source %q", src)
	}
	srcIP, err := netip.ParseAddr(srcHost)
	if err != nil {
		return fmt.Errorf("challenge from unreadable source %q", src)
	}
	if c.authHop.IsValid() && srcIP.Unmap() != c.authHop {
		return fmt.Errorf("challenge came from %s, not from the dial-out's next hop %s", src, c.authHop)
	}
	destHost, _, err := splitHostPortLoose(dest)
	if err != nil {
		return fmt.Errorf("request sent to unreadable destination %q", dest)
	}
	if ip, err := netip.ParseAddr(destHost); err == nil {
		if ip.Unmap() == srcIP.Unmap() {
			return nil
		}
		return fmt.Errorf("challenge came from %s, not from the next hop %s", src, dest)
	}
	if c.s == nil {
		return fmt.Errorf("challenge for %s cannot be checked (no resolver)", dest)
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := c.s.lookupHost(ctx, destHost)
	if err != nil {
		return fmt.Errorf("challenge for %s not answered: %w", dest, err)
	}
	for _, a := range addrs {
		if a.Unmap() == srcIP.Unmap() {
			return nil
		}
	}
	return fmt.Errorf("challenge came from %s, not from the next hop %s", src, dest)
}

// realmAllowed applies [webconference] dialout_auth_realms: empty = any.
func (s *Server) realmAllowed(realm string) bool {
	if s == nil || len(s.opt.DialoutAuthRealms) == 0 {
		return true
	}
	for _, r := range s.opt.DialoutAuthRealms {
		if strings.EqualFold(r, realm) {
			return true
		}
	}
	return false
}
