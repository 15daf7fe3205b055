package sipapp

import (
	"sync"
	"time"
)

// CallStats are SEMS's webconference call statistics (spec 7.2): every
// finished call counts in Total; one that joined a room and then left it
// adds its connected time, any other counts as Failed.
type CallStats struct {
	// rec serializes record: the totals are persisted in the order they
	// are made, so a slower earlier write cannot overwrite a later one.
	rec                    sync.Mutex
	mu                     sync.Mutex
	total, failed, seconds uint64
	// onRecord, if set, is told the new totals after every finished call
	// (to persist them); it runs outside mu, so readers are not held up.
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

// record counts a finished call. The new totals are persisted first and
// shown after: whatever a client has read survives a crash.
func (cs *CallStats) record(joined time.Time) {
	cs.rec.Lock()
	defer cs.rec.Unlock()
	cs.mu.Lock()
	t, f, sec, hook := cs.total+1, cs.failed, cs.seconds, cs.onRecord
	cs.mu.Unlock()
	if joined.IsZero() {
		f++
	} else {
		sec += uint64(time.Since(joined) / time.Second)
	}
	if hook != nil {
		hook(t, f, sec)
	}
	cs.mu.Lock()
	cs.total, cs.failed, cs.seconds = t, f, sec
	cs.mu.Unlock()
}
