package sipapp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connBudget bounds SIP's stream connections: at most max in all and
// perSource from one address (more are closed at once), and a connection
// that stays silent for idle is closed (slowloris, spec reliability 1.8).
// sipgo reads each connection in its own goroutine, so these bounds are
// also bounds on goroutines and buffers. One budget covers the TCP and the
// TLS listener: max_tcp_conns and max_tcp_conns_per_source count both, so
// a second listener gives an attacker no second allowance.
type connBudget struct {
	max, perSource int
	idle           time.Duration
	// exempt says whether a source is a trusted proxy: its connections
	// count towards max, never against perSource.
	exempt func(netip.Addr) bool

	mu      sync.Mutex
	total   int
	sources map[string]int
	refused atomic.Uint64
}

// connLimiter is a listener that takes its connections from a budget.
type connLimiter struct {
	net.Listener
	b *connBudget
}

func newConnBudget(max, perSource int, idle time.Duration) *connBudget {
	return &connBudget{max: max, perSource: perSource, idle: idle, sources: map[string]int{}}
}

// limit wraps ln so that its connections count against b.
func (b *connBudget) limit(ln net.Listener) *connLimiter {
	return &connLimiter{Listener: ln, b: b}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	b := l.b
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		perSource := b.perSource
		if a, err := netip.ParseAddr(host); err == nil && b.exempt != nil && b.exempt(a) {
			perSource = 0
		}
		b.mu.Lock()
		over := (b.max > 0 && b.total >= b.max) || (perSource > 0 && b.sources[host] >= perSource)
		if !over {
			b.total++
			b.sources[host]++
		}
		b.mu.Unlock()
		if over {
			b.refused.Add(1)
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, b: b, host: host}, nil
	}
}

func (b *connBudget) release(host string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total--
	if b.sources[host]--; b.sources[host] <= 0 {
		delete(b.sources, host)
	}
}

func (b *connBudget) stats() (open int, refused uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total, b.refused.Load()
}

type limitedConn struct {
	net.Conn
	b    *connBudget
	host string
	once sync.Once
}

// Read extends the idle deadline before every read: a peer that sends
// nothing for idle loses its connection.
func (c *limitedConn) Read(b []byte) (int, error) {
	if c.b.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.b.idle))
	}
	return c.Conn.Read(b)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.b.release(c.host) })
	return err
}
