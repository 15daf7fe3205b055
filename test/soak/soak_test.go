// Package soak runs a server for minutes with callers joining and leaving
// all the time, then checks that goroutines, heap, file descriptors, RTP
// ports and dialogs are back to where they started.
//
// In `make test` it runs for 2 minutes with 40 participants in 8 rooms and
// 5 joins and 5 leaves a second; `make soak` runs the long version
// (SOAK_DURATION=10m SOAK_PARTICIPANTS=500 SOAK_ROOMS=50).
package soak

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/prompts"
	"webconf/sipapp"
	"webconf/test/phone"
)

func env(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

type snapshot struct {
	goroutines int
	heap       uint64 // live heap: bytes of reachable objects after a full GC
	inuse      uint64 // heap spans in use, live objects plus their free slots
	fds        int
	freePorts  int
	calls      int
}

func (s snapshot) String() string {
	return fmt.Sprintf("goroutines %d, live heap %.2f MiB (spans in use %.1f MiB), fds %d, free RTP ports %d, calls %d",
		s.goroutines, float64(s.heap)/(1<<20), float64(s.inuse)/(1<<20), s.fds, s.freePorts, s.calls)
}

func take(srv *sipapp.Server) snapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	// HeapAlloc after a full GC is what is still reachable: a leak shows
	// there. HeapInuse also counts the free slots of partly used spans,
	// which after a load peak is fragmentation the allocator reuses, not
	// memory anyone holds; it is logged, not checked.
	return snapshot{runtime.NumGoroutine(), ms.HeapAlloc, ms.HeapInuse, len(fds), srv.FreeRTPPorts(), srv.ActiveCalls()}
}

// heapLimit is the baseline plus 2 % and 4 MiB of slack for pools and the
// garbage collector's granularity.
func heapLimit(base uint64) uint64 { return base + base/50 + 4<<20 }

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test skipped in -short mode")
	}
	if os.Getenv("SOAK_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1 // every allocation, so the profile accounts for all of the heap
	}
	dur := time.Duration(env("SOAK_SECONDS", 120)) * time.Second
	if d, err := time.ParseDuration(os.Getenv("SOAK_DURATION")); err == nil && d > 0 {
		dur = d
	}
	participants, rooms, churn := env("SOAK_PARTICIPANTS", 40), env("SOAK_ROOMS", 8), env("SOAK_CHURN", 5)

	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 52000, 59998
	cfg.Limits.InviteRate, cfg.Limits.MaxCalls = 0, 0
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	srv, err := sipapp.New(sipapp.OptionsFromConfig(&cfg, prompts.Builtin(), log))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()

	dial := func(i int) (*phone.Phone, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, err := phone.Dial(ctx, phone.Config{Server: srv.Addr(), User: "conference",
			Headers: []sip.Header{sip.NewHeader("P-App-Param", fmt.Sprintf("room=soak%d", i%rooms))}})
		if err == nil && i%3 == 0 {
			p.SetTone(300 + float64(i%20)*50)
		}
		return p, err
	}
	hangup := func(p *phone.Phone) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Hangup(ctx)
		p.Close()
	}
	// Warm up once (sipgo, the mixer and the pools allocate on first use),
	// then take the baseline.
	if p, err := dial(0); err == nil {
		hangup(p)
	}
	time.Sleep(time.Second) // let the warm-up call's transactions finish their timers
	base := take(srv)
	t.Logf("baseline: %v", base)

	var mu sync.Mutex
	live := make([]*phone.Phone, 0, participants)
	for i := 0; i < participants; i++ {
		p, err := dial(i)
		if err != nil {
			t.Fatalf("ramp: call %d: %v", i, err)
		}
		live = append(live, p)
	}
	start := time.Now()
	joins, failures := 0, 0
	tick := time.NewTicker(time.Second / time.Duration(churn))
	for time.Since(start) < dur {
		<-tick.C
		mu.Lock()
		k := rand.IntN(len(live))
		old := live[k]
		mu.Unlock()
		hangup(old)
		p, err := dial(joins)
		joins++
		if err != nil {
			failures++
			continue
		}
		mu.Lock()
		live[k] = p
		mu.Unlock()
	}
	tick.Stop()
	mid := take(srv)
	t.Logf("after %v with %d joins and leaves: %v", dur, joins, mid)
	if failures > 0 {
		t.Errorf("%d of %d joins failed", failures, joins)
	}
	for _, p := range live {
		hangup(p)
	}
	live = nil // the test's own phones must not count as the server's heap
	// Transactions linger for their timers (RFC 3261 Timer J: 32 s over
	// UDP) before their goroutines end: wait for the counts to settle.
	deadline := time.Now().Add(45 * time.Second)
	var end snapshot
	for {
		end = take(srv)
		if end.calls == 0 && end.freePorts == base.freePorts &&
			end.goroutines <= base.goroutines+base.goroutines/50+2 && end.fds <= base.fds+2 &&
			end.heap <= heapLimit(base.heap) {
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("end: %v", end)
	if f := os.Getenv("SOAK_HEAPPROFILE"); f != "" {
		if out, err := os.Create(f); err == nil {
			_ = pprof.WriteHeapProfile(out)
			out.Close()
		}
	}
	if end.calls != 0 || end.freePorts != base.freePorts {
		t.Errorf("calls or RTP ports not released: %v (baseline %v)", end, base)
	}
	if end.goroutines > base.goroutines+base.goroutines/50+2 {
		t.Errorf("goroutines %d, baseline %d (2%% allowed)", end.goroutines, base.goroutines)
	}
	if end.fds > base.fds+2 {
		t.Errorf("file descriptors %d, baseline %d", end.fds, base.fds)
	}
	if end.heap > heapLimit(base.heap) {
		t.Errorf("heap %.1f MiB, baseline %.1f MiB", float64(end.heap)/(1<<20), float64(base.heap)/(1<<20))
	}
}
