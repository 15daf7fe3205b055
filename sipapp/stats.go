package sipapp

import (
	"sync"
	"time"
)

// CallStats are SEMS's webconference call statistics (spec 7.2): every
// finished call counts in Total; one that joined a room and then left it
// adds its connected time, any other counts as Failed.
type CallStats struct {
	mu                     sync.Mutex
	total, failed, seconds uint64
}

// Snapshot returns total, failed and connected seconds.
func (cs *CallStats) Snapshot() (total, failed, seconds uint64) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return cs.total, cs.failed, cs.seconds
}

// Restore sets the counters (from the persisted stats file).
func (cs *CallStats) Restore(total, failed, seconds uint64) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.total, cs.failed, cs.seconds = total, failed, seconds
}

func (cs *CallStats) record(joined time.Time, why endReason) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.total++
	if joined.IsZero() {
		cs.failed++
		return
	}
	cs.seconds += uint64(time.Since(joined) / time.Second)
}
