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
	// onRecord, if set, is told the new totals after every finished call
	// (to persist them); it runs outside the lock.
	onRecord func(total, failed, seconds uint64)
}

// OnRecord sets the persistence hook.
func (cs *CallStats) OnRecord(f func(total, failed, seconds uint64)) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.onRecord = f
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

func (cs *CallStats) record(joined time.Time) {
	cs.mu.Lock()
	cs.total++
	if joined.IsZero() {
		cs.failed++
	} else {
		cs.seconds += uint64(time.Since(joined) / time.Second)
	}
	t, f, sec, hook := cs.total, cs.failed, cs.seconds, cs.onRecord
	cs.mu.Unlock()
	if hook != nil {
		hook(t, f, sec)
	}
}
