package phone

import "sync"

// watch is the lock of a test peer's recorded state and how its waiters
// learn that the state changed or the peer closed: they take changed
// under mu and, after looking, wait for it to be closed.
type watch struct {
	mu      sync.Mutex
	closed  bool
	changed chan struct{} // closed and replaced whenever the state grows
}

func newWatch() watch { return watch{changed: make(chan struct{})} }

// notify wakes the waiters; mu is held.
func (w *watch) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// shut marks the peer closed and wakes the waiters so that they see it,
// or reports false if it was closed already; mu is held.
func (w *watch) shut() bool {
	if w.closed {
		return false
	}
	w.closed = true
	w.notify()
	return true
}
