package sipapp

import (
	"net"
	"sync"
)

// sipgo's UDP read loop (sip/transport_udp.go, readListenerConnection)
// remembers every source address it has read from, in its connection pool
// and in a map of the loop's own, and forgets them only when the loop
// ends: about 290 bytes for each distinct address, for good. Over UDP the
// source is whatever the sender writes, so a flood from spoofed addresses
// grows that without bound (spec/reliability.md 1.7).
//
// We never need those entries: responses go out on the server transaction's
// connection, and every request we send over UDP names our SIP socket as
// its local address (fromSIPPort), which sipgo finds under the listener's
// own key. So after udpSourceLimit distinct sources a reader hands over to
// a fresh sipgo loop on the same socket and ends, and sipgo's cleanup of
// the ended loop drops what it remembered. The socket stays open (sipgo
// never closes a listener connection it did not open), transactions still
// running keep writing through the old connection object, and no datagram
// is lost: the old loop returns the one it read before it stops, and it
// stops only once its successor is reading, so that the pool always holds
// the listener.

// defaultUDPSourceLimit bounds sipgo's per-source memory to about 1.2 MB
// per generation (two generations overlap briefly).
const defaultUDPSourceLimit = 4096

// udpReader is the net.PacketConn one sipgo UDP read loop reads from.
type udpReader struct {
	net.PacketConn
	s     *Server
	limit int
	seen  map[string]struct{} // the read goroutine's alone

	ready     chan struct{} // closed at the first ReadFrom: sipgo has put the listener in its pool
	readyOnce sync.Once
	next      *udpReader // set when this reader retires (read goroutine only)
	retired   bool       // its successor is reading: every read ends the loop
}

// serveUDP starts a sipgo read loop on the SIP socket and returns its
// reader.
func (s *Server) serveUDP() *udpReader {
	r := &udpReader{PacketConn: s.udp, s: s, limit: s.udpSourceLimit,
		seen: make(map[string]struct{}), ready: make(chan struct{})}
	s.udpGenerations.Add(1)
	s.udpLoops.Add(1)
	go func() {
		defer s.udpLoops.Add(-1)
		_ = s.srv.ServeUDP(r)
	}()
	return r
}

// ReadFrom reads the next datagram, or ends this read loop once it has
// seen limit distinct sources and its successor is running.
func (r *udpReader) ReadFrom(b []byte) (int, net.Addr, error) {
	r.readyOnce.Do(func() { close(r.ready) })
	if r.next != nil {
		<-r.next.ready
		// sipgo may keep this reader reachable for a while (transactions
		// hold their connection): let it keep nothing.
		r.next = nil
		r.retired = true
	}
	if r.retired {
		return 0, nil, net.ErrClosed // sipgo ends the loop quietly on this error
	}
	n, addr, err := r.PacketConn.ReadFrom(b)
	if err != nil || r.limit <= 0 {
		return n, addr, err
	}
	key := addr.String()
	if _, ok := r.seen[key]; !ok {
		r.seen[key] = struct{}{}
		if len(r.seen) >= r.limit && r.s.ctx.Err() == nil {
			r.seen = nil
			r.next = r.s.serveUDP()
		}
	}
	return n, addr, nil
}

// Close leaves the socket open: it is the server's, closed by Shutdown.
func (r *udpReader) Close() error { return nil }
