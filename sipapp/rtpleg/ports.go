// Package rtpleg is one call's media leg: an RTP socket from the configured
// port range, symmetric RTP latching, depacketising and decoding into a
// jitter buffer, RFC 4733 event extraction, and packetising what the mixer
// produces. It knows nothing about SIP dialogs or rooms.
package rtpleg

import (
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"sync"
)

// ErrNoPorts means every even port of the range is in use.
var ErrNoPorts = errors.New("rtpleg: no free RTP port")

// Pool hands out even UDP ports from [low, high]. RTP uses even ports and
// leaves the odd one above for RTCP (RFC 3550 section 11), so only even
// ports are allocated; a port another process holds is skipped.
//
// Each port is picked at random among the free ones (ChaCha8 seeded from
// crypto/rand): a port in use cannot be guessed from the one given to the
// previous call, which RTP bleed scans rely on (spec/reliability.md 1.4),
// and the port a call just left is rarely the next one given out (its late
// packets would land in the next call).
type Pool struct {
	ip   netip.Addr
	mu   sync.Mutex
	free []uint16 // in no particular order
	used map[uint16]bool
	rnd  *mrand.Rand
}

// NewPool prepares the even ports of [low, high] on ip.
func NewPool(ip netip.Addr, low, high int) (*Pool, error) {
	if low%2 != 0 {
		low++
	}
	if low <= 0 || high > 65535 || low >= high {
		return nil, fmt.Errorf("rtpleg: bad port range %d-%d", low, high)
	}
	var seed [32]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("rtpleg: seed for port choice: %w", err)
	}
	p := &Pool{ip: ip, used: make(map[uint16]bool), rnd: mrand.New(mrand.NewChaCha8(seed))}
	for port := low; port <= high; port += 2 {
		p.free = append(p.free, uint16(port))
	}
	return p, nil
}

// Free reports how many ports are not in use.
func (p *Pool) Free() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}

// take binds a free port chosen at random with bind. A port that cannot
// be bound (another process holds it) stays free and another is tried,
// each free port at most once.
func (p *Pool) take(bind func(netip.AddrPort) error) (uint16, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// p.free[:untried] are the ports not tried yet: a partial
	// Fisher-Yates shuffle moves each pick behind them.
	for untried := len(p.free); untried > 0; untried-- {
		j := p.rnd.IntN(untried)
		p.free[j], p.free[untried-1] = p.free[untried-1], p.free[j]
		port := p.free[untried-1]
		if bind(netip.AddrPortFrom(p.ip, port)) != nil {
			continue
		}
		last := len(p.free) - 1
		p.free[untried-1] = p.free[last]
		p.free = p.free[:last]
		p.used[port] = true
		return port, nil
	}
	return 0, ErrNoPorts
}

func (p *Pool) release(port uint16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.used[port] {
		return
	}
	delete(p.used, port)
	p.free = append(p.free, port)
}
