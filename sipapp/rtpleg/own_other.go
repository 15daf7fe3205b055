//go:build !linux

package rtpleg

import (
	"net"
	"net/netip"
)

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

// listen binds a free port chosen at random with net.ListenUDP.
func (p *Pool) listen() (*net.UDPConn, uint16, error) {
	var conn *net.UDPConn
	port, err := p.take(func(ap netip.AddrPort) error {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		conn = c
		return err
	})
	return conn, port, err
}
