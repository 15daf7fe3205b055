package testutil

import (
	"sync"
	"time"
)

// Clock is a settable clock for a test (a Now to give the code under
// test): it moves only when told.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock is a Clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{t: start} }

// Now is the time the clock shows.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock on by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
