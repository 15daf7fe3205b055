//go:build !linux

package rtpleg

import "net/netip"

// ownSock: elsewhere a per-call leg's socket is its net.UDPConn.
type ownSock struct{}

func (*ownSock) init() {}

func (l *Leg) openOwn(pool *Pool) error {
	conn, port, err := pool.listen()
	if err != nil {
		return err
	}
	l.conn, l.port = conn, port
	return nil
}

func (l *Leg) closeOwn() {
	l.conn.Close()
	l.pool.release(l.port)
}

func (l *Leg) sendOwn(pkt []byte, dst netip.AddrPort) bool {
	_, err := l.conn.WriteToUDPAddrPort(pkt, dst)
	return err == nil
}

func (l *Leg) startConn() error { return nil }
