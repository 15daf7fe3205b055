package sipapp

import (
	"sync"
	"time"
)

// load keeps SEMS's session counters for the xmlrpc2di built-ins: the
// average and peak number of concurrent calls, and calls per second
// (average and peak), each since the last time it was read, plus the CPS
// limit and shutdown mode that refuse new calls with 503.
type load struct {
	mu sync.Mutex

	active     int
	since      time.Time // start of the current averaging period
	lastChange time.Time
	integral   float64 // call-seconds since `since`
	peak       int
	cpsSince   time.Time
	cpsCount   int // calls started since cpsSince
	secStart   time.Time
	secCount   int // calls started in the current second
	cpsPeak    int
	cpsLimit   int // 0 = none
	shutdown   bool
}

func newLoad(now time.Time) *load {
	return &load{since: now, lastChange: now, cpsSince: now, secStart: now}
}

func (l *load) accrue(now time.Time) {
	l.integral += float64(l.active) * now.Sub(l.lastChange).Seconds()
	l.lastChange = now
}

// admit counts a new call, or refuses it (shutdown mode or CPS limit).
func (l *load) admit(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.shutdown {
		return false
	}
	if now.Sub(l.secStart) >= time.Second {
		l.secStart, l.secCount = now, 0
	}
	if l.cpsLimit > 0 && l.secCount >= l.cpsLimit {
		return false
	}
	l.secCount++
	l.cpsCount++
	l.cpsPeak = max(l.cpsPeak, l.secCount)
	l.accrue(now)
	l.active++
	l.peak = max(l.peak, l.active)
	return true
}

func (l *load) done(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accrue(now)
	l.active--
}

// calls returns the average and peak concurrency since the last read.
func (l *load) calls(now time.Time) (avg, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.accrue(now)
	if el := now.Sub(l.since).Seconds(); el > 0 {
		avg = int(l.integral/el + 0.5)
	}
	peak = l.peak
	l.integral, l.since, l.peak = 0, now, l.active
	return avg, peak
}

// cps returns the average and peak calls per second since the last read.
func (l *load) cps(now time.Time) (avg, peak int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if el := now.Sub(l.cpsSince).Seconds(); el >= 1 {
		avg = int(float64(l.cpsCount)/el + 0.5)
	} else {
		avg = l.cpsCount
	}
	peak = l.cpsPeak
	l.cpsCount, l.cpsSince, l.cpsPeak = 0, now, 0
	return avg, peak
}

// SetShutdownMode makes the server refuse new calls (503) while on.
func (s *Server) SetShutdownMode(on bool) {
	s.load.mu.Lock()
	s.load.shutdown = on
	s.load.mu.Unlock()
}

// ShutdownMode reports it.
func (s *Server) ShutdownMode() bool {
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	return s.load.shutdown
}

// SetCPSLimit limits new calls per second (0 = none); beyond it, 503.
func (s *Server) SetCPSLimit(n int) {
	s.load.mu.Lock()
	s.load.cpsLimit = max(0, n)
	s.load.mu.Unlock()
}

// CPSLimit returns the hard and soft limits (the same here).
func (s *Server) CPSLimit() (hard, soft int) {
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	return s.load.cpsLimit, s.load.cpsLimit
}

// CallLoad is get_callsavg / get_callsmax: since the last call of it.
func (s *Server) CallLoad() (avg, peak int) { return s.load.calls(time.Now()) }

// CPS is get_cpsavg / get_cpsmax: since the last call of it.
func (s *Server) CPS() (avg, peak int) { return s.load.cps(time.Now()) }
