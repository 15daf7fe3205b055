package rest

import "sync"

// browserSeats bounds the signalling sockets open at once, in all and per
// client address ([webrtc] max_browsers, max_browsers_per_source; 0 = no
// bound). Each socket may hold a peer connection (pion's goroutines, a UDP
// port, DTLS state), so an address that opens sockets without end would
// otherwise spend the server's ports and CPU: the check comes before the
// upgrade, and a refusal is 429.
type browserSeats struct {
	max, perSource int

	mu    sync.Mutex
	total int
	by    map[string]int
}

func newBrowserSeats(max, perSource int) *browserSeats {
	return &browserSeats{max: max, perSource: perSource, by: map[string]int{}}
}

// take counts a socket of peer in; false (nothing counted): over a bound.
func (b *browserSeats) take(peer string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if (b.max > 0 && b.total >= b.max) || (b.perSource > 0 && b.by[peer] >= b.perSource) {
		return false
	}
	b.total++
	b.by[peer]++
	return true
}

// give counts a socket that take let in out again.
func (b *browserSeats) give(peer string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total--
	if b.by[peer] <= 1 {
		delete(b.by, peer)
		return
	}
	b.by[peer]--
}
