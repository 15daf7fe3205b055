package rpc

import (
	"context"
	"net/netip"
	"strings"
)

// UnknownClient is the budget key of requests from a trusted HTTP proxy
// that do not say who the client is: no X-Forwarded-For, or an entry that
// is not an IP address where the client should be. Such requests share
// this one budget: a misconfigured proxy's clients are charged together,
// the proxy's own address never is (a ban of it would stop every client
// behind it), and no client escapes its own budget by sending garbage
// (the proxy appends the address it saw, which is read first).
const UnknownClient = "x-forwarded-for:unknown"

// Trusted is a set of trusted HTTP proxies ([http] trusted_proxies).
type Trusted []netip.Prefix

// Contains reports whether a is a trusted proxy.
func (t Trusted) Contains(a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	a = a.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientOf is the address a control request is charged to: the peer's
// own, unless the peer is a trusted proxy; then the rightmost address of
// X-Forwarded-For (xff: the header's values in order) that is not a
// trusted proxy, or the leftmost when all are (a trusted host's own
// request). ok is false when the client is unknown (no X-Forwarded-For
// from a trusted proxy, or an unparsable entry reached): the key is then
// UnknownClient.
func (t Trusted) ClientOf(peer netip.Addr, xff []string) (key string, ok bool) {
	peer = peer.Unmap().WithZone("")
	if !t.Contains(peer) {
		return peer.String(), true
	}
	var last netip.Addr
	for i := len(xff) - 1; i >= 0; i-- {
		items := strings.Split(xff[i], ",")
		for j := len(items) - 1; j >= 0; j-- {
			item := strings.TrimSpace(items[j])
			if item == "" {
				continue
			}
			a, good := parseForwarded(item)
			if !good {
				return UnknownClient, false
			}
			if !t.Contains(a) {
				return a.String(), true
			}
			last = a
		}
	}
	if !last.IsValid() {
		return UnknownClient, false
	}
	return last.String(), true
}

// parseForwarded reads one X-Forwarded-For entry: an IP address, or
// address:port, or [IPv6]:port, as proxies write them.
func parseForwarded(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

type clientKey struct{}

// WithClient records the key of the client's budgets in ctx, when a codec
// knows better than the connection's address (behind a trusted proxy).
// It wins over WithPeer.
func WithClient(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, clientKey{}, key)
}
