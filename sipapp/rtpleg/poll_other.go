//go:build !linux

package rtpleg

import (
	"errors"
	"time"
)

// StartPolled is Linux-only; elsewhere the caller falls back to Start.
func (l *Leg) StartPolled() error { return errors.New("rtpleg: polled receive needs Linux") }

// Poll does nothing: legs receive with their own goroutine here.
func (l *Leg) Poll() {}

// Drain does nothing here.
func (l *Leg) Drain() {}

// discardQueued drops what the socket holds (up to maxDiscard datagrams),
// counting it as foreign; only the read goroutine calls it.
func (l *Leg) discardQueued() {
	_ = l.conn.SetReadDeadline(time.Now())
	defer l.conn.SetReadDeadline(time.Time{})
	for i := 0; i < maxDiscard; i++ {
		if _, _, err := l.conn.ReadFromUDPAddrPort(l.rx.buf[:]); err != nil {
			return
		}
		l.rxForeign.Add(1)
	}
}
