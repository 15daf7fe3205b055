// Package events is the node's event bus and its WebSocket stream
// (GET /api/v1/events, served by rpc/rest).
//
// One Bus per node. Publish takes an event name, a typed payload (a struct
// with json tags), the room the event concerns ("" for none) and the users
// who may see it. It numbers the event, marshals the whole message once,
//
//	{"name": "...", "origin_uuid": "<node uuid>", "seq": <n>, "data": {...}}
//
// keeps it in a bounded ring and hands the same bytes to every subscriber
// whose filter takes it. Publishers are call and mixer goroutines, so
// Publish never waits for a subscriber: each subscriber has a bounded
// queue, and one whose queue is full is cut off (its stream closes with
// 1008 "too slow: events dropped") while the bus and everyone else go on.
// Fan-out allocates nothing per subscriber: the queues carry pointers to
// the one shared message.
//
// Sequence numbers count up from the node's start time in microseconds
// since the epoch, so they keep increasing across restarts and a since
// handed back by a client of an earlier run is always older than the ring
// (ErrTooOld: the client must fetch the state again) rather than taken
// for a number of this run.
package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options.
const (
	DefaultRingSize    = 4096
	DefaultClientQueue = 256
)

// Errors a subscription ends or is refused with.
var (
	// ErrTooOld: since is older than the ring holds (or from another run
	// of the node); the client must resynchronise its state.
	ErrTooOld = errors.New("events: since is older than the events kept")
	// ErrTooSlow: the subscriber's queue was full; it is cut off.
	ErrTooSlow = errors.New("too slow: events dropped")
	// ErrClosed: the bus is closed (the node is stopping).
	ErrClosed = errors.New("events: bus closed")
)

// Options configure a Bus.
type Options struct {
	// Origin is the node's UUID, every message's origin_uuid.
	Origin string
	// RingSize is how many events are kept for resuming (0: DefaultRingSize).
	RingSize int
	// ClientQueue is each subscriber's queue (0: DefaultClientQueue).
	ClientQueue int
	// Now gives the start of the sequence numbers (nil: time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Event is one published event. Its fields are read-only once published.
type Event struct {
	Seq  uint64
	Name string
	Room string
	// Users who may see it (besides operators).
	Users []string
	// Msg is the whole JSON message, shared by every subscriber.
	Msg []byte
}

// Bus is the event bus. Safe for concurrent use.
type Bus struct {
	id     string
	origin []byte // JSON string of the origin uuid
	queue  int
	log    *slog.Logger

	mu     sync.Mutex
	ring   []*Event
	first  uint64 // seq of the first event ever published
	last   uint64 // seq of the last event published (first-1 when none)
	subs   map[*Sub]struct{}
	closed bool

	cut atomic.Uint64 // subscribers cut off for being slow
}

// New makes a bus.
func New(o Options) *Bus {
	if o.RingSize <= 0 {
		o.RingSize = DefaultRingSize
	}
	if o.ClientQueue <= 0 {
		o.ClientQueue = DefaultClientQueue
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	origin, _ := json.Marshal(o.Origin) // a string always marshals
	start := uint64(max(o.Now().UnixMicro(), 0))
	return &Bus{
		id: o.Origin, origin: origin, queue: o.ClientQueue, log: o.Log,
		ring: make([]*Event, o.RingSize), first: start + 1, last: start,
		subs: map[*Sub]struct{}{},
	}
}

// Publish numbers, marshals, keeps and fans out one event; it returns its
// sequence number (0 when data cannot be marshalled: a programming error,
// logged). users is kept as given: the caller must not change it after.
// It never blocks on a subscriber.
func (b *Bus) Publish(name string, data any, room string, users []string) uint64 {
	payload, err := json.Marshal(data)
	if err != nil {
		b.log.Error("event payload cannot be marshalled; event dropped", "event", name, "err", err)
		return 0
	}
	nameJSON, _ := json.Marshal(name)
	// One buffer for the whole message; the number is appended under the
	// lock, where it is assigned.
	msg := make([]byte, 0, len(`{"name":,"origin_uuid":,"seq":,"data":}`)+len(nameJSON)+len(b.origin)+20+len(payload))
	msg = append(msg, `{"name":`...)
	msg = append(msg, nameJSON...)
	msg = append(msg, `,"origin_uuid":`...)
	msg = append(msg, b.origin...)
	msg = append(msg, `,"seq":`...)
	ev := &Event{Name: name, Room: room, Users: users}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0
	}
	b.last++
	ev.Seq = b.last
	msg = strconv.AppendUint(msg, ev.Seq, 10)
	msg = append(msg, `,"data":`...)
	msg = append(msg, payload...)
	ev.Msg = append(msg, '}')
	b.ring[ev.Seq%uint64(len(b.ring))] = ev
	for s := range b.subs {
		if !s.f.Match(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			b.dropLocked(s, ErrTooSlow)
			b.cut.Add(1)
		}
	}
	return ev.Seq
}

// Origin is the node UUID the messages carry.
func (b *Bus) Origin() string { return b.id }

// Last is the sequence number of the last event published (a since that
// replays nothing).
func (b *Bus) Last() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last
}

// CutOff is how many subscribers were cut off for being slow.
func (b *Bus) CutOff() uint64 { return b.cut.Load() }

// Subscribers is how many subscriptions are live.
func (b *Bus) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Subscribe starts a subscription. With since (resume), the events after
// it that the filter takes are returned to be sent first; every later one
// goes to the subscription's queue, with neither gap nor repeat. A since
// older than the ring holds, or later than the last event, is ErrTooOld.
func (b *Bus) Subscribe(f Filter, since *uint64) (*Sub, []*Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, nil, ErrClosed
	}
	var replay []*Event
	if since != nil {
		oldest := b.first
		if n := uint64(len(b.ring)); b.last-b.first+1 > n {
			oldest = b.last - n + 1
		}
		if *since+1 < oldest || *since > b.last {
			return nil, nil, fmt.Errorf("%w: since %d, the events kept are %d to %d", ErrTooOld, *since, oldest, b.last)
		}
		for seq := *since + 1; seq <= b.last; seq++ {
			if ev := b.ring[seq%uint64(len(b.ring))]; f.Match(ev) {
				replay = append(replay, ev)
			}
		}
	}
	s := &Sub{f: f, ch: make(chan *Event, b.queue), done: make(chan struct{}), bus: b}
	b.subs[s] = struct{}{}
	return s, replay, nil
}

// Close ends every subscription (ErrClosed) and refuses new ones and new
// events.
func (b *Bus) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.dropLocked(s, ErrClosed)
	}
}

func (b *Bus) dropLocked(s *Sub, why error) {
	delete(b.subs, s)
	s.err = why
	close(s.done)
}

// Sub is one subscription.
type Sub struct {
	f    Filter
	ch   chan *Event
	done chan struct{}
	bus  *Bus
	err  error // set before done is closed
}

// Events is the subscription's queue.
func (s *Sub) Events() <-chan *Event { return s.ch }

// Done is closed when the bus ends the subscription (Err says why).
func (s *Sub) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended: ErrTooSlow, ErrClosed, or nil (the
// subscriber closed it, or it has not ended).
func (s *Sub) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Close ends the subscription from the subscriber's side.
func (s *Sub) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[s]; ok {
		b.dropLocked(s, nil)
	}
}

// Filter is who a subscriber is and what it asked for.
type Filter struct {
	// Operator sees every event; otherwise User must be in its users.
	Operator bool
	User     string
	// Rooms and Names narrow further when not empty.
	Rooms map[string]bool
	Names map[string]bool
}

// Match reports whether the subscriber may see and wants ev.
func (f Filter) Match(ev *Event) bool {
	if len(f.Rooms) > 0 && !f.Rooms[ev.Room] {
		return false
	}
	if len(f.Names) > 0 && !f.Names[ev.Name] {
		return false
	}
	if f.Operator {
		return true
	}
	for _, u := range ev.Users {
		if u == f.User && u != "" {
			return true
		}
	}
	return false
}

// QueryError is a bad query parameter of the stream's request.
type QueryError struct{ Param, Problem string }

func (e *QueryError) Error() string { return e.Param + ": " + e.Problem }

// ParseQuery reads the stream's parameters into f: rooms and names
// (comma-separated; names must be event names) and since (the last
// sequence number the client saw; nil when absent).
func ParseQuery(q url.Values, f *Filter) (since *uint64, err error) {
	list := func(param string) []string {
		var out []string
		for _, v := range q[param] {
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					out = append(out, s)
				}
			}
		}
		return out
	}
	for _, room := range list("rooms") {
		if f.Rooms == nil {
			f.Rooms = map[string]bool{}
		}
		f.Rooms[room] = true
	}
	for _, name := range list("names") {
		if !Known(name) {
			return nil, &QueryError{"names", fmt.Sprintf("%q is not an event name", name)}
		}
		if f.Names == nil {
			f.Names = map[string]bool{}
		}
		f.Names[name] = true
	}
	if vs, ok := q["since"]; ok {
		if len(vs) != 1 {
			return nil, &QueryError{"since", "give it once"}
		}
		n, err := strconv.ParseUint(vs[0], 10, 64)
		if err != nil {
			return nil, &QueryError{"since", fmt.Sprintf("%q is not a sequence number", vs[0])}
		}
		since = &n
	}
	return since, nil
}
