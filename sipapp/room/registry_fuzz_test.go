package room

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// fuzzClock is the registry's injected clock.
type fuzzClock struct{ t time.Time }

func (c *fuzzClock) now() time.Time { return c.t }

// fuzzCall is a live call as the registry sees it.
type fuzzCall struct{ kicks, mutes int }

func (f *fuzzCall) Kick()         { f.kicks++ }
func (f *fuzzCall) SetMuted(bool) { f.mutes++ }

// Registry operations the fuzz input chooses from.
const (
	opCreate = iota
	opAuthorize
	opJoin
	opSetStatus
	opAddParticipant
	opAddDialout
	opKick
	opMute
	opUnmute
	opDelete
	opChangePin
	opSweep
	opExpireHard
	opRoom
	opRooms
	opFindParticipant
	opPredefine
	opTick
	opCount
)

var (
	fuzzRoomNames = []string{"r0", "r1", "r2"}
	fuzzPins      = []string{"", "1111", "2222"}
	fuzzPids      = []string{"", "p1", "p2"}
)

// fuzzLive is the shadow model's view of one call handed to the registry.
type fuzzLive struct {
	room     string
	ctl      *fuzzCall
	finished bool
}

// FuzzRegistry is a model-based test of the room registry (SEMS's
// WebConferenceFactory room map, spec sections 2-4): the fuzz bytes are a
// configuration byte and then 3-byte operations (opcode, two arguments)
// over a few room names, PINs, participant IDs and call tags, with a fake
// clock moved by the input. Call tags are fresh per Join/AddDialout, as
// real calls' are.
//
// The rooms and PINs before and after each operation are compared under
// rules that say which operation may change what, and a shadow model keeps
// which calls are live in which room. After every operation:
//   - a room appears only through an operation that may create it (never
//     through SetStatus, Kick, Mute, Sweep... and in private mode only
//     through Create and Predefine), and vanishes only through Delete,
//     Sweep, ExpireHard or the getRoom rule's soft expiry;
//   - a PIN changes only through Create, ChangePin, the first claimer of an
//     empty PIN (Authorize) or Predefine, and to the value they set;
//   - Rooms() and FindParticipant() are sorted, without duplicates, and
//     every room they name exists (Room() returns it);
//   - call tags are unique within a room, except the invited records' "";
//   - after Room(), no Finished record is older than the expire delay;
//   - Kick/Mute/Unmute answer ErrNoRoom for a missing room and ErrNoCall
//     for an unknown tag; Delete and ExpireHard hang up the room's live
//     calls.
func FuzzRegistry(f *testing.F) {
	f.Add([]byte{0x1c, // public, expiry on, support_rooms_timeout
		opCreate, 0, 1, opJoin, 0, 0, opJoin, 0, 1, opMute, 0, 1, opRoom, 0, 0, opSetStatus, 0, 5 + 6*0,
		opTick, 200, 0, opRoom, 0, 0, opRooms, 0, 0, opDelete, 0, 1, opRooms, 0, 0})
	f.Add([]byte{0x01, // private mode
		opJoin, 1, 0, opAuthorize, 1, 1, opPredefine, 1, 1, opAddParticipant, 1, 1, opJoin, 1, 1,
		opFindParticipant, 1, 0, opChangePin, 1, 1, opKick, 1, 9, opDelete, 1, 2, opDelete, 1, 1})
	f.Add([]byte{0x0c, // public, both expiries
		opJoin, 2, 0, opAuthorize, 2, 2, opAuthorize, 2, 1, opSetStatus, 2, 5, opTick, 255, 0, opSweep, 0, 0,
		opSetStatus, 2, 3, opAddDialout, 2, 1, opCreate, 2, 2, opTick, 255, 255, opExpireHard, 0, 0, opRooms, 0, 0})
	f.Add([]byte{0x12, // ignore_pin, support_rooms_timeout
		opCreate, 0, 2, opTick, 20, 0, opExpireHard, 0, 0, opKick, 0, 0, opUnmute, 0, 0, opCreate, 0, 0, opCreate, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		cfg := Config{
			Private: in[0]&1 != 0, IgnorePin: in[0]&2 != 0,
			RoomsExpire: in[0]&4 != 0, RoomsExpireDelay: 10 * time.Second,
			ParticipantsExpire: in[0]&8 != 0, ParticipantsExpireDelay: 5 * time.Second,
			SupportRoomsTimeout: in[0]&16 != 0,
		}
		in = in[1:min(len(in), 1+3*200)]
		clk := &fuzzClock{t: time.Unix(1_700_000_000, 0)}
		r := NewRegistry(cfg, nil, clk.now)
		var tags []string // issued call tags, in order
		live := map[string]*fuzzLive{}
		for step := 0; len(in) >= 3; step++ {
			op, a, b := int(in[0])%opCount, int(in[1]), int(in[2])
			in = in[3:]
			name := fuzzRoomNames[a%len(fuzzRoomNames)]
			pin := fuzzPins[b%len(fuzzPins)]
			pid := fuzzPids[(a/4)%len(fuzzPids)]
			tag := "unknown"
			if len(tags) > 0 && b%8 != 7 {
				tag = tags[b%len(tags)]
			}
			before := exists(r)
			fail := func(format string, args ...any) {
				t.Helper()
				t.Fatalf("step %d op %d(%q): %s", step, op, name, fmt.Sprintf(format, args...))
			}
			var (
				mayCreate, mayDelete bool
				newPin               *string // the PIN the operation sets, if it does
				gone                 []string
			)
			switch op {
			case opCreate:
				p, err := r.Create(name, b%3*5)
				old, had := before[name]
				switch {
				case err == nil:
					if len(p) != 6 || (had && old != "") {
						fail("Create gave %q over PIN %q", p, old)
					}
					mayCreate, newPin = true, &p
				case errors.Is(err, ErrRoomOpen):
					if !had || old == "" {
						fail("ErrRoomOpen for a room without PIN")
					}
				default:
					fail("Create: %v", err)
				}
			case opAuthorize:
				err := r.Authorize(name, pin)
				old, had := before[name]
				switch {
				case err == nil:
					if had && old != "" && old != pin && !cfg.IgnorePin {
						fail("wrong PIN %q accepted for %q", pin, old)
					}
					mayCreate = !cfg.Private
					if !had || (old == "" && pin != "") {
						newPin = &pin
					}
				case errors.Is(err, ErrWrongPin):
					if !had || old == "" || old == pin || cfg.IgnorePin {
						fail("right PIN %q refused (room PIN %q, present %v)", pin, old, had)
					}
				case errors.Is(err, ErrNoRoom):
					mayDelete = true // soft-expired (or private and absent)
					if !had && !cfg.Private {
						fail("public Authorize did not create")
					}
				default:
					fail("Authorize: %v", err)
				}
			case opJoin, opAddDialout:
				tg := fmt.Sprintf("c%d", len(tags))
				ctl := &fuzzCall{}
				var err error
				if op == opJoin {
					err = r.Join(name, tg, "sip:a@b", pid, ReasonEntered, b&1 != 0, ctl)
				} else {
					err = r.AddDialout(name, tg, "sip:a@b", pid, ctl)
				}
				if err == nil {
					tags = append(tags, tg)
					live[tg] = &fuzzLive{room: name, ctl: ctl}
				} else if !cfg.Private {
					fail("public Join/AddDialout: %v", err)
				}
				mayCreate = !cfg.Private
			case opSetStatus:
				st := Status(b % 6)
				r.SetStatus(name, tag, st, "fuzz")
				if l := live[tag]; l != nil && st == StatusFinished {
					if _, ok := before[name]; ok {
						l.finished = true
					}
				}
			case opAddParticipant:
				if err := r.AddParticipant(name, pid, "sip:c@d"); err != nil && !cfg.Private {
					fail("public AddParticipant: %v", err)
				}
				mayCreate = !cfg.Private
			case opKick, opMute, opUnmute:
				var err error
				switch op {
				case opKick:
					err = r.Kick(name, tag)
				case opMute:
					err = r.Mute(name, tag)
				default:
					err = r.Unmute(name, tag)
				}
				_, had := before[name]
				switch {
				case !had && !errors.Is(err, ErrNoRoom):
					fail("Kick/Mute %q in a missing room: %v", tag, err)
				case had && tag == "unknown" && !errors.Is(err, ErrNoCall):
					fail("Kick/Mute of an unknown tag: %v", err)
				case had && err != nil && !errors.Is(err, ErrNoCall):
					fail("Kick/Mute: %v", err)
				}
			case opDelete:
				err := r.Delete(name, pin)
				old, had := before[name]
				switch {
				case err == nil:
					if !had || (old != "" && old != pin && !cfg.IgnorePin) {
						fail("Delete with PIN %q of room with PIN %q (present %v)", pin, old, had)
					}
					gone = append(gone, name)
				case errors.Is(err, ErrNoRoom):
					if had {
						fail("Delete of an existing room: ErrNoRoom")
					}
				case errors.Is(err, ErrWrongPin):
					mayDelete = true // SEMS answers wrong PIN for an expired room too
				default:
					fail("Delete: %v", err)
				}
				if err == nil || errors.Is(err, ErrWrongPin) {
					if had && old == "" && pin != "" {
						newPin = &pin // the first claimer, before the delete
					}
				}
			case opChangePin:
				np := fuzzPins[(a/4)%len(fuzzPins)]
				err := r.ChangePin(name, pin, np)
				_, had := before[name]
				switch {
				case err == nil:
					newPin = &np
					mayCreate = !had && !cfg.Private // getRoom creates in public mode
				case errors.Is(err, ErrNoRoom), errors.Is(err, ErrWrongPin):
					mayDelete = true
				default:
					fail("ChangePin: %v", err)
				}
			case opSweep:
				r.Sweep()
				mayDelete = true
				// What survives a sweep is exactly what Rooms() lists.
				var left []string
				for n := range exists(r) {
					left = append(left, n)
				}
				slices.Sort(left)
				if names := r.Rooms(); !slices.Equal(names, left) {
					fail("after Sweep, Rooms() = %v but %v exist", names, left)
				}
			case opExpireHard:
				gone = r.ExpireHard()
				if !slices.IsSorted(gone) {
					fail("ExpireHard list not sorted: %v", gone)
				}
				if !cfg.SupportRoomsTimeout && len(gone) > 0 {
					fail("rooms expired without support_rooms_timeout: %v", gone)
				}
			case opRoom:
				info, ok := r.Room(name)
				_, had := before[name]
				if ok != had || (ok && info.Name != name) {
					fail("Room: %v %q, model says present %v", ok, info.Name, had)
				}
				if cfg.ParticipantsExpire {
					for _, p := range info.Participants {
						if p.Status == StatusFinished && clk.t.Sub(p.changed)/time.Second > cfg.ParticipantsExpireDelay/time.Second {
							fail("Finished record %q from %v kept at %v", p.CallTag, p.changed, clk.t)
						}
					}
				}
			case opRooms:
				names := r.Rooms()
				if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
					fail("Rooms() = %v", names)
				}
				for _, n := range names {
					if _, ok := r.Room(n); !ok {
						fail("Rooms() lists %q, Room() does not find it", n)
					}
				}
			case opFindParticipant:
				names := r.FindParticipant(pid)
				if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
					fail("FindParticipant(%q) = %v", pid, names)
				}
				for _, n := range names {
					if _, ok := before[n]; !ok {
						fail("FindParticipant names missing room %q", n)
					}
				}
			case opPredefine:
				r.Predefine(name, pin)
				mayCreate, newPin = true, &pin
			case opTick:
				clk.t = clk.t.Add(time.Duration(a) * time.Second * time.Duration(1+b%4) / 4)
			}

			after := exists(r)
			for n, p := range after {
				old, had := before[n]
				switch {
				case !had && (n != name || !mayCreate):
					fail("room %q appeared", n)
				case n == name && newPin != nil:
					if p != *newPin {
						fail("PIN of %q is %q, want %q", n, p, *newPin)
					}
				case had && p != old:
					fail("PIN of %q changed from %q to %q", n, old, p)
				case !had && p != "":
					fail("new room %q has PIN %q", n, p)
				}
			}
			for n := range before {
				if _, ok := after[n]; ok {
					continue
				}
				if !slices.Contains(gone, n) && !(mayDelete && (op == opSweep || n == name)) {
					fail("room %q vanished", n)
				}
				for tg, l := range live {
					if l.room != n {
						continue
					}
					if slices.Contains(gone, n) && !l.finished && l.ctl.kicks == 0 {
						fail("call %q of deleted room %q not hung up", tg, n)
					}
					delete(live, tg)
				}
			}
			checkTags(t, r)
		}
	})
}

// exists reads every room's presence and PIN without the side effects of
// Room() (purging, which moves last access).
func exists(r *Registry) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]string, len(r.rooms))
	for n, rm := range r.rooms {
		m[n] = rm.adminPin
	}
	return m
}

// checkTags: a call tag names at most one record of a room; only invited
// records (addParticipant) have none.
func checkTags(t *testing.T, r *Registry) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for n, rm := range r.rooms {
		seen := map[string]bool{}
		for _, p := range rm.parts {
			if p.CallTag == "" {
				continue
			}
			if seen[p.CallTag] {
				t.Fatalf("room %q has two records for call %q", n, p.CallTag)
			}
			seen[p.CallTag] = true
		}
	}
}
