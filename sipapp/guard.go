package sipapp

import (
	"net/netip"
	"sync"
	"time"
)

// Budget counts failures per key (a source address, a room, an RPC
// client) in a sliding window; a key that spends its budget is banned for
// a while. It is the defence against guessing room numbers, participant
// PINs, admin PINs and the master password (spec/reliability.md 1.3):
// per-call limits alone let a scanner place the next call.
type Budget struct {
	limit  int
	window time.Duration
	ban    time.Duration
	now    func() time.Time

	mu     sync.Mutex
	keys   map[string]*budgetEntry
	sweep  time.Time
	banned uint64 // bans handed out, for metrics
}

type budgetEntry struct {
	fails       []time.Time // within the window, oldest first
	bannedUntil time.Time
}

// maxBudgetKeys bounds the table: a flood of spoofed keys cannot grow it
// without limit (the oldest idle entries go first when it is full).
const maxBudgetKeys = 100_000

// NewBudget allows limit failures per window, then bans for ban. limit <= 0
// disables it (never bans).
func NewBudget(limit int, window, ban time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{limit: limit, window: window, ban: ban, now: now, keys: map[string]*budgetEntry{}}
}

// Banned reports whether key is banned now.
func (b *Budget) Banned(key string) bool {
	if b == nil || b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.keys[key]
	return e != nil && b.now().Before(e.bannedUntil)
}

// BannedFor is how long key stays banned (0: it is not).
func (b *Budget) BannedFor(key string) time.Duration {
	if b == nil || b.limit <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.keys[key]; e != nil {
		if d := e.bannedUntil.Sub(b.now()); d > 0 {
			return d
		}
	}
	return 0
}

// Fail records a failure for key and reports whether it is now banned
// (newly or still).
func (b *Budget) Fail(key string) bool {
	if b == nil || b.limit <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.sweepLocked(now)
	e := b.keys[key]
	if e == nil {
		if len(b.keys) >= maxBudgetKeys {
			b.evictLocked()
		}
		e = &budgetEntry{}
		b.keys[key] = e
	}
	if now.Before(e.bannedUntil) {
		return true
	}
	e.fails = trimBefore(append(e.fails, now), now.Add(-b.window))
	if len(e.fails) >= b.limit {
		e.bannedUntil = now.Add(b.ban)
		e.fails = e.fails[:0]
		b.banned++
		return true
	}
	return false
}

// Bans is how many bans were handed out.
func (b *Budget) Bans() uint64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.banned
}

func trimBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return append(ts[:0], ts[i:]...)
}

// sweepLocked drops idle entries once per window.
func (b *Budget) sweepLocked(now time.Time) {
	if now.Sub(b.sweep) < b.window {
		return
	}
	b.sweep = now
	for k, e := range b.keys {
		e.fails = trimBefore(e.fails, now.Add(-b.window))
		if len(e.fails) == 0 && !now.Before(e.bannedUntil) {
			delete(b.keys, k)
		}
	}
}

func (b *Budget) evictLocked() {
	now := b.now()
	for k, e := range b.keys {
		if !now.Before(e.bannedUntil) {
			delete(b.keys, k)
			if len(b.keys) < maxBudgetKeys {
				return
			}
		}
	}
}

// Limits are the budgets and caps of [limits] (0 = off).
type Limits struct {
	PinFailures, RPCFailures, RoomFailures int
	FailureWindow, BanTime, RoomTarpit     time.Duration
	InviteRate, InviteBurst                int
	MaxCalls, MaxRooms, MaxPendingInvites  int
	MaxTCPConns, MaxTCPConnsPerSource      int
	TCPIdleTimeout                         time.Duration
	// TrustedProxies are SIP proxies whose callers are charged by their
	// Via (trusted.go), never the proxy.
	TrustedProxies []netip.Prefix
}

// Guards are the failure budgets shared by the SIP flows and the control
// plane.
type Guards struct {
	Sources *Budget // wrong room numbers / participant PINs per source address
	Rooms   *Budget // failed claims per room
	RPC     *Budget // wrong admin PINs / master passwords per control client
	// What unauthenticated callers make, charged per source address on
	// success (the same sliding window and ban): guest authorization
	// requests over REST, public rooms made by a first call.
	GuestRequests *Budget
	PublicRooms   *Budget
	Tarpit        time.Duration
}

func newGuards(o Options) *Guards {
	l := o.Limits
	return &Guards{
		Sources:       NewBudget(l.PinFailures, l.FailureWindow, l.BanTime, nil),
		Rooms:         NewBudget(l.RoomFailures, l.FailureWindow, l.BanTime, nil),
		RPC:           NewBudget(l.RPCFailures, l.FailureWindow, l.BanTime, nil),
		GuestRequests: NewBudget(o.GuestRequestsPerSource, l.FailureWindow, l.BanTime, nil),
		PublicRooms:   NewBudget(o.PublicRoomsPerSource, l.FailureWindow, l.BanTime, nil),
		Tarpit:        l.RoomTarpit,
	}
}

// Rate is a per-key token bucket (INVITEs per source per second).
type Rate struct {
	perSec float64
	burst  float64
	now    func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
	dropped uint64
}

type bucket struct {
	tokens float64
	last   time.Time
}

// NewRate allows perSec events per key with bursts of burst; perSec <= 0
// disables it.
func NewRate(perSec, burst float64, now func() time.Time) *Rate {
	if now == nil {
		now = time.Now
	}
	if burst < 1 {
		burst = 1
	}
	return &Rate{perSec: perSec, burst: burst, now: now, buckets: map[string]*bucket{}}
}

// Allow takes a token for key.
func (r *Rate) Allow(key string) bool {
	if r == nil || r.perSec <= 0 {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.sweep) > 10*time.Second {
		r.sweep = now
		for k, b := range r.buckets {
			if now.Sub(b.last).Seconds()*r.perSec >= r.burst {
				delete(r.buckets, k)
			}
		}
	}
	b := r.buckets[key]
	if b == nil {
		if len(r.buckets) >= maxBudgetKeys {
			r.dropped++
			return false
		}
		b = &bucket{tokens: r.burst, last: now}
		r.buckets[key] = b
	}
	b.tokens = min(r.burst, b.tokens+now.Sub(b.last).Seconds()*r.perSec)
	b.last = now
	if b.tokens < 1 {
		r.dropped++
		return false
	}
	b.tokens--
	return true
}

// Dropped is how many events were refused.
func (r *Rate) Dropped() uint64 {
	if r == nil {
		return 0
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped
}
