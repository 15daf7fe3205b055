package sipapp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// A dial-out's next hop over TLS given by name (sips:bob@provider.example,
// callee_domain provider.example;transport=tls, outbound_proxy
// sip:sbc.example.net;transport=tls) must present a certificate for that
// name (RFC 5922 section 7: the domain or host the client meant to reach),
// and is told that name in SNI. But the INVITE goes to the address
// resolveHop pinned (so that only a challenge from there gets credentials,
// authHop), and sipgo checks a TLS peer against the destination it is
// given, the address: a real certificate, which names host names only,
// would fail. sipgo v1.7.2 has no per-request TLS server name (its dialer
// sets ServerName to the destination's host for every connection, and no
// tls.Config callback sees which address a handshake is for), so the
// connection to a dial-out's TLS hop is made here instead: TCP to the
// pinned address, TLS with ServerName the hop as it was given, a name or
// an address (Go's own verification against the roots and tls_ca_file, or
// none with tls_verify=no; SNI for a name), and the connection is handed
// to sipgo's TLS transport through a listener of its own (tlsHandoff).
// sipgo then pools it under the peer's address, where the INVITE's
// destination finds it, and reads it as any other.

// tlsDialTimeout bounds connecting to a dial-out's TLS hop: the TCP
// connect and the handshake.
const tlsDialTimeout = 20 * time.Second

// dialedTLS is a TLS connection opened for a dial-out's hop, whose
// certificate was verified for name (a host name or an address).
type dialedTLS struct {
	*tls.Conn
	name   string
	pooled chan struct{} // closed on sipgo's first read: it is in sipgo's pool
	once   sync.Once
	dead   atomic.Bool // a read failed: sipgo is dropping it
}

func (c *dialedTLS) Read(b []byte) (int, error) {
	c.once.Do(func() { close(c.pooled) })
	n, err := c.Conn.Read(b)
	if err != nil {
		c.dead.Store(true)
	}
	return n, err
}

// tlsHandoff is the listener sipgo's TLS transport "accepts" dial-outs'
// connections from: sipgo's Serve pools each under its remote address and
// reads it. Its address is the TLS listener's, so that sipgo's notion of
// our TLS port does not change.
type tlsHandoff struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newTLSHandoff(addr net.Addr) *tlsHandoff {
	return &tlsHandoff{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *tlsHandoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *tlsHandoff) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *tlsHandoff) Addr() net.Addr { return h.addr }

// tlsHopName is what a TLS next hop's certificate must name: u's host as
// it was given, a name (without a final dot) or an address; "" when the
// hop is not TLS. With SRV (RFC 3263) it is still u's host, never the SRV
// target (RFC 5922 7.2).
func tlsHopName(u sip.Uri, trans string) string {
	if trans != TransportTLS {
		return ""
	}
	host := strings.TrimSuffix(strings.TrimPrefix(u.Host, "["), "]")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap().String()
	}
	return strings.TrimSuffix(host, ".")
}

// secureHop makes sure that req, when it goes to the dial-out's TLS hop,
// finds in sipgo's pool a connection to the hop's address verified for
// the hop's name (or address); other requests are sipgo's.
func (c *call) secureHop(ctx context.Context, req *sip.Request) error {
	if c.tlsName == "" || req.Transport() != TransportTLS || req.Destination() != c.tlsAddr {
		return nil
	}
	return c.s.tlsToName(ctx, c.tlsAddr, c.tlsName)
}

// tlsToName connects to addr over TLS, verifying the certificate for name
// (a host name, sent as SNI too, or an address) and hands the connection
// to sipgo, unless sipgo's pool already holds one to addr that is good for
// name (verifiedFor). Any other connection there (one whose certificate
// does not name name, or one the peer opened to us) is not used: the new
// one takes its place in the pool for new requests, and whoever holds the
// old one keeps it.
func (s *Server) tlsToName(ctx context.Context, addr, name string) error {
	if s.handoff == nil {
		return errors.New("no TLS listener")
	}
	if pool := s.ua.TransportLayer().Pool("tls"); pool != nil {
		if pc := pool.Get(addr); pc != nil {
			tc, isTCP := pc.(*sip.TCPConnection)
			ok := isTCP && verifiedFor(tc.Conn, name)
			_, _ = pc.TryClose() // drops the reference Get took
			if ok {
				return nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, tlsDialTimeout)
	defer cancel()
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("tls to %s at %s: %w", name, addr, err)
	}
	cfg := s.tlsClient.Clone()
	cfg.ServerName = name
	tc := tls.Client(raw, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = raw.Close()
		return fmt.Errorf("tls to %s at %s: handshake: %w", name, addr, err)
	}
	conn := &dialedTLS{Conn: tc, name: name, pooled: make(chan struct{})}
	select {
	case s.handoff.ch <- conn:
	case <-s.handoff.done:
		_ = tc.Close()
		return fmt.Errorf("tls to %s at %s: server stopping", name, addr)
	case <-ctx.Done():
		_ = tc.Close()
		return fmt.Errorf("tls to %s at %s: %w", name, addr, ctx.Err())
	}
	select {
	case <-conn.pooled:
		return nil
	case <-ctx.Done():
		// sipgo has it and will read and close it.
		return fmt.Errorf("tls to %s at %s: not taken: %w", name, addr, ctx.Err())
	}
}

// verifiedFor reports whether a connection in sipgo's TLS pool may carry a
// request to the hop name (a host name or an address): one we dialled for
// that name and not yet seen fail, or any connection we (or sipgo) dialled
// whose certificate chain was verified and names name. With tls_verify=no
// nothing is verified, and only a connection dialled for name will do. A
// connection the peer opened to us never does: we saw no certificate.
func verifiedFor(conn net.Conn, name string) bool {
	var tc *tls.Conn
	switch c := conn.(type) {
	case *dialedTLS:
		if c.dead.Load() {
			return false
		}
		if strings.EqualFold(c.name, name) {
			return true
		}
		tc = c.Conn
	case *tls.Conn: // sipgo dialled it (accepted ones are tlsServerConn)
		tc = c
	default:
		return false
	}
	cs := tc.ConnectionState()
	return len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 && cs.PeerCertificates[0].VerifyHostname(name) == nil
}
