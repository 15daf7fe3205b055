package sipapp

import (
	"sync"
	"testing"
	"time"
)

// The totals reach the persistence hook before anyone can read them, and
// in the order they were made, however the calls' goroutines interleave.
func TestCallStatsPersistBeforeShown(t *testing.T) {
	var cs CallStats
	var mu sync.Mutex
	var seen []uint64
	cs.OnRecord(func(total, failed, seconds uint64) {
		if shown, _, _ := cs.Snapshot(); shown != total-1 {
			t.Errorf("total %d already shown (%d) before it was persisted", total, shown)
		}
		mu.Lock()
		seen = append(seen, total)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var joined time.Time
			if i%2 == 0 {
				joined = time.Now().Add(-2 * time.Second)
			}
			cs.record(joined)
		}()
	}
	wg.Wait()
	if total, failed, secs := cs.Snapshot(); total != 50 || failed != 25 || secs < 50 {
		t.Fatalf("totals %d/%d/%d, want 50 calls, 25 failed, >= 50 s", total, failed, secs)
	}
	for i, v := range seen {
		if v != uint64(i+1) {
			t.Fatalf("persisted out of order: %v", seen)
		}
	}
}
