package sipapp

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// connLimiter wraps the SIP TCP listener: at most max connections in all
// and perSource from one address (more are closed at once), and a
// connection that stays silent for idle is closed (slowloris, spec
// reliability 1.8). sipgo reads each connection in its own goroutine, so
// these bounds are also bounds on goroutines and buffers.
type connLimiter struct {
	net.Listener
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

func newConnLimiter(ln net.Listener, max, perSource int, idle time.Duration) *connLimiter {
	return &connLimiter{Listener: ln, max: max, perSource: perSource, idle: idle, sources: map[string]int{}}
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		perSource := l.perSource
		if a, err := netip.ParseAddr(host); err == nil && l.exempt != nil && l.exempt(a) {
			perSource = 0
		}
		l.mu.Lock()
		over := (l.max > 0 && l.total >= l.max) || (perSource > 0 && l.sources[host] >= perSource)
		if !over {
			l.total++
			l.sources[host]++
		}
		l.mu.Unlock()
		if over {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *connLimiter) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.sources[host]--; l.sources[host] <= 0 {
		delete(l.sources, host)
	}
}

func (l *connLimiter) stats() (open int, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total, l.refused.Load()
}

type limitedConn struct {
	net.Conn
	l    *connLimiter
	host string
	once sync.Once
}

// Read extends the idle deadline before every read: a peer that sends
// nothing for idle loses its connection.
func (c *limitedConn) Read(b []byte) (int, error) {
	if c.l.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.l.idle))
	}
	return c.Conn.Read(b)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}
