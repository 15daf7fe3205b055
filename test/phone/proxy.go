package phone

// A stateless SIP proxy over UDP (RFC 3261 section 16.11) for tests that
// need a hop between the server and a phone: it records every message it
// receives, forwards requests by their Route headers (or the Request-URI)
// and responses by their Via headers, and may record-route INVITEs like
// Kamailio's rr module does (loose, with the caller's tag as ftag) or as a
// strict router (RFC 2543, no lr).

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ProxyConfig describes a Proxy. The zero value listens on 127.0.0.1,
// forwards and record-routes nothing.
type ProxyConfig struct {
	// Host is the loopback address to listen on; default 127.0.0.1 (use
	// 127.0.0.2 to be another host than the test phones).
	Host string
	// Upstream (host:port) receives requests addressed to the proxy
	// itself (a phone's INVITE to sip:room@proxy), as Kamailio forwards
	// callers to the bridge.
	Upstream string
	// RecordRoute adds Record-Route: <sip:host:port;lr;ftag=...> to
	// dialog-creating INVITEs.
	RecordRoute bool
	// Strict record-routes without lr: the proxy is then a strict router
	// (RFC 3261 16.4 and 12.2.1.1): requests name it in the Request-URI
	// and carry the remote target as the last Route.
	Strict bool
	// Aliases are host names that mean this proxy too (a Route to
	// sip:localhost:port is ours when "localhost" is listed).
	Aliases []string
}

// Seen is a message the proxy received and where it came from.
type Seen struct {
	Msg  sip.Message
	From netip.AddrPort
}

// Proxy is a running stateless proxy. Always Close it.
type Proxy struct {
	cfg  ProxyConfig
	conn *net.UDPConn
	addr netip.AddrPort
	done chan struct{}

	watch
	seen []Seen
}

// ListenProxy starts a proxy on a free UDP port.
func ListenProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(cfg.Host)
	if err != nil {
		return nil, fmt.Errorf("%w: proxy host %q", ErrBadConfig, cfg.Host)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, fmt.Errorf("phone: proxy listen: %w", err)
	}
	p := &Proxy{cfg: cfg, conn: conn, addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		done: make(chan struct{}), watch: newWatch()}
	go p.serve()
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr.String() }

// URI is the proxy's SIP URI, as outbound_proxy names it.
func (p *Proxy) URI() string { return "sip:" + p.addr.String() }

// Close stops the proxy.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.shut() {
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.conn.Close()
	<-p.done
}

// Seen returns every message received so far, in order.
func (p *Proxy) Seen() []Seen {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// Requests returns the requests of one method received so far.
func (p *Proxy) Requests(method sip.RequestMethod) []*sip.Request {
	var out []*sip.Request
	for _, s := range p.Seen() {
		if r, ok := s.Msg.(*sip.Request); ok && r.Method == method {
			out = append(out, r)
		}
	}
	return out
}

// WaitFor waits until cond holds for one received message and returns it.
func (p *Proxy) WaitFor(ctx context.Context, what string, cond func(Seen) bool) (Seen, error) {
	for {
		p.mu.Lock()
		seen, closed, ch := slices.Clone(p.seen), p.closed, p.changed
		p.mu.Unlock()
		for _, s := range seen {
			if cond(s) {
				return s, nil
			}
		}
		if closed {
			return Seen{}, fmt.Errorf("phone: proxy waiting for %s: %w", what, ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Seen{}, fmt.Errorf("phone: proxy waiting for %s: %w", what, ctx.Err())
		}
	}
}

// WaitRequest waits for a request of that method.
func (p *Proxy) WaitRequest(ctx context.Context, method sip.RequestMethod) (*sip.Request, error) {
	s, err := p.WaitFor(ctx, string(method), func(s Seen) bool {
		r, ok := s.Msg.(*sip.Request)
		return ok && r.Method == method
	})
	if err != nil {
		return nil, err
	}
	return s.Msg.(*sip.Request), nil
}

func (p *Proxy) serve() {
	defer close(p.done)
	buf := make([]byte, 65535)
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		msg, err := sip.ParseMessage(slices.Clone(buf[:n]))
		if err != nil {
			continue
		}
		p.mu.Lock()
		p.seen = append(p.seen, Seen{Msg: cloneMsg(msg), From: from})
		p.notify()
		p.mu.Unlock()
		var next netip.AddrPort
		switch m := msg.(type) {
		case *sip.Request:
			next, err = p.forwardRequest(m, from)
		case *sip.Response:
			next, err = p.forwardResponse(m)
		}
		if err != nil {
			continue
		}
		_, _ = p.conn.WriteToUDPAddrPort([]byte(msg.String()), next)
	}
}

func cloneMsg(m sip.Message) sip.Message {
	switch v := m.(type) {
	case *sip.Request:
		return v.Clone()
	case *sip.Response:
		return v.Clone()
	}
	return m
}

// ours: the URI names this proxy.
func (p *Proxy) ours(u sip.Uri) bool {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	if port != int(p.addr.Port()) {
		return false
	}
	if slices.ContainsFunc(p.cfg.Aliases, func(a string) bool { return strings.EqualFold(a, u.Host) }) {
		return true
	}
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	return err == nil && a == p.addr.Addr()
}

func uriAddr(u sip.Uri) (netip.AddrPort, error) {
	port := u.Port
	if port == 0 {
		port = 5060
	}
	a, err := netip.ParseAddr(strings.Trim(u.Host, "[]"))
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("phone: proxy: host %q is not an address", u.Host)
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// forwardRequest rewrites a request for its next hop (RFC 3261 16.4-16.6)
// and returns that hop.
func (p *Proxy) forwardRequest(req *sip.Request, from netip.AddrPort) (netip.AddrPort, error) {
	if mf := req.MaxForwards(); mf != nil {
		if mf.Val() <= 1 {
			return netip.AddrPort{}, errors.New("too many hops")
		}
		mf.Dec()
	}
	routes := req.GetHeaders("Route")
	if p.ours(req.Recipient) && len(routes) > 0 {
		// A strict-routed request (16.4): the last Route is the real
		// Request-URI.
		var last sip.Uri
		if _, err := sip.ParseAddressValue(routes[len(routes)-1].Value(), &last, nil); err != nil {
			return netip.AddrPort{}, err
		}
		req.Recipient = last
		all := routes[:len(routes)-1]
		for range routes {
			req.RemoveHeader("Route")
		}
		for _, h := range all {
			req.AppendHeader(sip.NewHeader("Route", h.Value()))
		}
	} else if rt := req.Route(); rt != nil && p.ours(rt.Address) {
		req.RemoveHeader("Route") // our own, loose (16.4)
	}
	var next netip.AddrPort
	var err error
	switch rt := req.Route(); {
	case rt != nil && len(req.GetHeaders("Route")) > 0:
		next, err = uriAddr(rt.Address)
	case p.ours(req.Recipient):
		if p.cfg.Upstream == "" {
			return netip.AddrPort{}, errors.New("no upstream")
		}
		next, err = netip.ParseAddrPort(p.cfg.Upstream)
	default:
		next, err = uriAddr(req.Recipient)
	}
	if err != nil {
		return netip.AddrPort{}, err
	}
	if via := req.Via(); via != nil {
		// RFC 3581: where the request really came from.
		via.Params.Add("received", from.Addr().String())
		if via.Params.Has("rport") {
			via.Params.Add("rport", strconv.Itoa(int(from.Port())))
		}
		branch, _ := via.Params.Get("branch")
		top := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP",
			Host: p.addr.Addr().String(), Port: int(p.addr.Port()), Params: sip.NewParams()}
		// Stateless: a branch derived from the incoming one, so that a
		// retransmission, the CANCEL and the ACK of a non-2xx map to the
		// same downstream transaction (16.11).
		top.Params.Add("branch", sip.RFC3261BranchMagicCookie+"px"+strings.TrimPrefix(branch, sip.RFC3261BranchMagicCookie))
		req.PrependHeader(top)
	}
	if p.cfg.RecordRoute && req.Method == sip.INVITE {
		if to := req.To(); to != nil && !to.Params.Has("tag") {
			rr := sip.Uri{Scheme: "sip", Host: p.addr.Addr().String(), Port: int(p.addr.Port()), UriParams: sip.NewParams()}
			if !p.cfg.Strict {
				rr.UriParams.Add("lr", "")
			}
			if f := req.From(); f != nil {
				if tag, ok := f.Params.Get("tag"); ok {
					rr.UriParams.Add("ftag", tag)
				}
			}
			req.PrependHeader(&sip.RecordRouteHeader{Address: rr})
		}
	}
	return next, nil
}

// forwardResponse takes our Via off a response and returns where the next
// Via says to send it (its received/rport when present).
func (p *Proxy) forwardResponse(res *sip.Response) (netip.AddrPort, error) {
	if via := res.Via(); via == nil || via.Host != p.addr.Addr().String() || via.Port != int(p.addr.Port()) {
		return netip.AddrPort{}, errors.New("not our Via")
	}
	res.RemoveHeader("Via")
	via := res.Via()
	if via == nil {
		return netip.AddrPort{}, errors.New("no Via left")
	}
	host := via.Host
	if r, ok := via.Params.Get("received"); ok && r != "" {
		host = r
	}
	port := via.Port
	if r, ok := via.Params.Get("rport"); ok && r != "" {
		if n, err := strconv.Atoi(r); err == nil {
			port = n
		}
	}
	if port == 0 {
		port = 5060
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, uint16(port)), nil
}
