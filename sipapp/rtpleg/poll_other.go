//go:build !linux

package rtpleg

import "errors"

// StartPolled is Linux-only; elsewhere the caller falls back to Start.
func (l *Leg) StartPolled() error { return errors.New("rtpleg: polled receive needs Linux") }

// Poll does nothing: legs receive with their own goroutine here.
func (l *Leg) Poll() {}

// Drain does nothing here.
func (l *Leg) Drain() {}
