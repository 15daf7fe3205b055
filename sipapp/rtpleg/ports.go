// Package rtpleg is one call's media leg: an RTP socket from the configured
// port range, symmetric RTP latching, depacketising and decoding into a
// jitter buffer, RFC 4733 event extraction, and packetising what the mixer
// produces. It knows nothing about SIP dialogs or rooms.
package rtpleg

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// ErrNoPorts means every even port of the range is in use.
var ErrNoPorts = errors.New("rtpleg: no free RTP port")

// Pool hands out even UDP ports from [low, high]. RTP uses even ports and
// leaves the odd one above for RTCP (RFC 3550 section 11), so only even
// ports are allocated; a port another process holds is skipped.
type Pool struct {
	ip netip.Addr
	mu sync.Mutex
	// free is a FIFO: reusing the port a call just left (LIFO) would let its
	// late packets land in the next call.
	free []uint16
	head int
	used map[uint16]bool
}

// NewPool prepares the even ports of [low, high] on ip.
func NewPool(ip netip.Addr, low, high int) (*Pool, error) {
	if low%2 != 0 {
		low++
	}
	if low <= 0 || high > 65535 || low >= high {
		return nil, fmt.Errorf("rtpleg: bad port range %d-%d", low, high)
	}
	p := &Pool{ip: ip, used: make(map[uint16]bool)}
	for port := low; port <= high; port += 2 {
		p.free = append(p.free, uint16(port))
	}
	return p, nil
}

// Free reports how many ports are not in use.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free) - p.head
}

// listen binds the next free port. A port that cannot be bound (another
// process holds it) goes to the back of the queue and the next is tried.
func (p *Pool) listen() (*net.UDPConn, uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free) - p.head
	for i := 0; i < n; i++ {
		port := p.free[p.head]
		p.head++
		conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.ip, port)))
		if err != nil {
			p.pushLocked(port)
			continue
		}
		p.used[port] = true
		p.compactLocked()
		return conn, port, nil
	}
	p.compactLocked()
	return nil, 0, ErrNoPorts
}

func (p *Pool) release(port uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.used[port] {
		return
	}
	delete(p.used, port)
	p.pushLocked(port)
}

func (p *Pool) pushLocked(port uint16) { p.free = append(p.free, port) }

// compactLocked keeps the FIFO's backing array from growing without bound.
func (p *Pool) compactLocked() {
	if p.head > 1024 && p.head*2 > len(p.free) {
		p.free = append(p.free[:0], p.free[p.head:]...)
		p.head = 0
	}
}
