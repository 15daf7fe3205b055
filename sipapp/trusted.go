package sipapp

import (
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Who is the caller: the one place that decides whose address a SIP
// request is charged to (the INVITE rate, the bans and failure budgets,
// the meeting-guest nonces, public rooms per source).
//
// A request whose source (the last hop) is not a trusted proxy is the
// source's: whatever its Via headers say, they are the sender's to write.
// A request from a trusted proxy ([limits] trusted_proxies) stands for the
// caller the proxy received it from: walking the Via list from the top
// (the proxy's own Via), every Via that resolves to a trusted proxy is a
// hop of ours and is skipped; the first one that does not is the caller.
// A Via resolves to its received parameter when there is one (the address
// the next hop saw it come from, RFC 3261 18.2.1), else its sent-by host;
// its port is rport when set. A request whose Vias all resolve to trusted
// proxies was made by one of them (a keep-alive OPTIONS, a PBX's own
// call): it is charged to nobody, and neither limited nor banned, as the
// proxy itself never is.

// caller is whom a request is charged to.
type caller struct {
	addr string // the key of per-source budgets: an IP address (or, behind a proxy, the Via host as written)
	port int    // for logs only: the source port, or the Via's rport/port
	// trusted: the request was made by a trusted proxy itself, so it is
	// not rate-limited, banned or charged.
	trusted bool
	// proxy is the trusted proxy it came through ("" when direct).
	proxy string
}

// String is the caller's address for logs.
func (c caller) String() string {
	if c.port == 0 {
		return c.addr
	}
	return net.JoinHostPort(c.addr, strconv.Itoa(c.port))
}

// Banned reports whether b bans the caller.
func (c caller) Banned(b *Budget) bool { return !c.trusted && b.Banned(c.addr) }

// Fail charges a failure to the caller and reports whether it is banned.
func (c caller) Fail(b *Budget) bool { return !c.trusted && b.Fail(c.addr) }

// Allow takes a token of r for the caller.
func (c caller) Allow(r *Rate) bool { return c.trusted || r.Allow(c.addr) }

// trustedSet holds the CIDR prefixes of trusted proxies.
type trustedSet []netip.Prefix

func (t trustedSet) contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap()
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// parseHost reads an IP address as SIP writes it (IPv6 in brackets or
// not, with a zone or not).
func parseHost(h string) (netip.Addr, bool) {
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	a, err := netip.ParseAddr(h)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// callerOf decides whom req is charged to (see above).
func (s *Server) callerOf(req *sip.Request) caller {
	host, portStr, err := net.SplitHostPort(req.Source())
	if err != nil {
		host = req.Source()
	}
	port, _ := strconv.Atoi(portStr)
	src, ok := parseHost(host)
	if !ok {
		return caller{addr: host, port: port}
	}
	direct := caller{addr: src.String(), port: port}
	trusted := trustedSet(s.opt.Limits.TrustedProxies)
	if !trusted.contains(src) {
		return direct
	}
	for _, h := range req.GetHeaders("Via") {
		via, ok := h.(*sip.ViaHeader)
		if !ok {
			continue
		}
		addr, port := viaAddress(via)
		if a, ok := parseHost(addr); ok {
			if trusted.contains(a) {
				continue // a hop of ours
			}
			addr = a.String()
		} else {
			// A host name the proxy did not mark with received: it is
			// still the caller's (Kamailio and OpenSIPS add received
			// whenever the sent-by host is not the address they saw).
			addr = strings.ToLower(addr)
		}
		return caller{addr: addr, port: port, proxy: direct.addr}
	}
	return caller{addr: direct.addr, port: port, trusted: true, proxy: direct.addr}
}

// viaAddress is where a Via says its hop is: received, else the sent-by
// host; rport, else the sent-by port. Where a parameter is given twice the
// last one counts: a proxy appends its own after any the caller forged.
func viaAddress(v *sip.ViaHeader) (string, int) {
	host, port := v.Host, v.Port
	for _, kv := range v.Params {
		switch {
		case strings.EqualFold(kv.K, "received") && kv.V != "":
			host = kv.V
		case strings.EqualFold(kv.K, "rport") && kv.V != "":
			if n, err := strconv.Atoi(kv.V); err == nil && n > 0 && n < 65536 {
				port = n
			}
		}
	}
	return host, port
}

// trustedSource reports whether a connection's remote address is a
// trusted proxy (the per-source TCP connection cap does not apply).
func (s *Server) trustedSource(a netip.Addr) bool {
	return trustedSet(s.opt.Limits.TrustedProxies).contains(a)
}
