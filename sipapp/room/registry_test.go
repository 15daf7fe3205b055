package room

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }
func defaults() Config {
	return Config{RoomsExpire: true, RoomsExpireDelay: 7200 * time.Second,
		ParticipantsExpire: true, ParticipantsExpireDelay: 10 * time.Second}
}

type fakeCall struct {
	kicked bool
	muted  []bool
}

func (f *fakeCall) Kick()           { f.kicked = true }
func (f *fakeCall) SetMuted(v bool) { f.muted = append(f.muted, v) }

func TestRegistryGetRoomRule(t *testing.T) {
	t.Run("public mode creates an unknown room with the given pin", func(t *testing.T) {
		r := NewRegistry(defaults(), nil, newClock().now)
		if err := r.Authorize("1", "pin"); err != nil {
			t.Fatal(err)
		}
		if err := r.Authorize("1", "other"); !errors.Is(err, ErrWrongPin) {
			t.Fatalf("wrong pin: %v", err)
		}
		info, _ := r.Room("1")
		if info.AdminPin != "pin" {
			t.Fatalf("pin %q", info.AdminPin)
		}
	})
	t.Run("private mode never creates", func(t *testing.T) {
		cfg := defaults()
		cfg.Private = true
		r := NewRegistry(cfg, nil, newClock().now)
		if err := r.Authorize("1", "pin"); !errors.Is(err, ErrNoRoom) {
			t.Fatalf("got %v", err)
		}
		if err := r.Join("1", "T", "n", "", ReasonDirect, false, &fakeCall{}); !errors.Is(err, ErrNoRoom) {
			t.Fatalf("join: %v", err)
		}
	})
	t.Run("an empty pin is claimed by the first caller", func(t *testing.T) {
		r := NewRegistry(defaults(), nil, newClock().now)
		_ = r.Join("1", "T", "n", "", ReasonDirect, false, &fakeCall{})
		if err := r.Authorize("1", "mine"); err != nil {
			t.Fatal(err)
		}
		if err := r.Authorize("1", "yours"); !errors.Is(err, ErrWrongPin) {
			t.Fatalf("second claimer: %v", err)
		}
	})
	t.Run("ignore_pin skips the comparison", func(t *testing.T) {
		cfg := defaults()
		cfg.IgnorePin = true
		r := NewRegistry(cfg, nil, newClock().now)
		r.Open("1", "a")
		if err := r.Authorize("1", "b"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a soft-expired room fails once and is erased", func(t *testing.T) {
		c := newClock()
		r := NewRegistry(defaults(), nil, c.now)
		r.Open("1", "p")
		c.add(7200 * time.Second)
		if err := r.Authorize("1", "p"); err != nil {
			t.Fatalf("not yet expired (strictly greater): %v", err)
		}
		c.add(1 * time.Second)
		if got := r.Rooms(); len(got) != 0 {
			t.Fatalf("listing shows expired rooms: %v", got)
		}
		if err := r.Authorize("1", "p"); !errors.Is(err, ErrNoRoom) {
			t.Fatalf("expired: %v", err)
		}
		if _, ok := r.Room("1"); ok {
			t.Fatal("expired room not erased")
		}
	})
}

func TestRegistryParticipants(t *testing.T) {
	c := newClock()
	r := NewRegistry(defaults(), nil, c.now)
	a, b := &fakeCall{}, &fakeCall{}
	if err := r.AddParticipant("9", "p1", "sip:x@y"); err != nil {
		t.Fatal(err)
	}
	if err := r.Join("9", "TAG-A", "<sip:a@h>", "p1", ReasonEntered, false, a); err != nil {
		t.Fatal(err)
	}
	if err := r.Join("9", "TAG-B", "<sip:b@h>", "", ReasonDirect, false, b); err != nil {
		t.Fatal(err)
	}
	info, _ := r.Room("9")
	want := []Participant{
		{CallTag: "TAG-A", Number: "<sip:a@h>", Status: StatusConnected, Reason: ReasonEntered, ID: "p1"},
		{CallTag: "TAG-B", Number: "<sip:b@h>", Status: StatusConnected, Reason: ReasonDirect},
	}
	for i := range info.Participants {
		info.Participants[i].changed = time.Time{}
	}
	if !reflect.DeepEqual(info.Participants, want) {
		t.Fatalf("records\n got %+v\nwant %+v", info.Participants, want)
	}
	if err := r.Mute("9", "TAG-A"); err != nil || len(a.muted) != 1 || !a.muted[0] {
		t.Fatalf("mute: %v %v", err, a.muted)
	}
	if err := r.Kick("9", "nope"); !errors.Is(err, ErrNoCall) {
		t.Fatalf("kick unknown: %v", err)
	}
	if err := r.Kick("9", "TAG-B"); err != nil || !b.kicked {
		t.Fatalf("kick: %v", err)
	}
	r.SetStatus("9", "TAG-B", StatusDisconnecting, ReasonDisconnect)
	r.SetStatus("9", "TAG-B", StatusFinished, "")
	c.add(10 * time.Second)
	if info, _ := r.Room("9"); len(info.Participants) != 2 {
		t.Fatal("a Finished record went before participants_expire_delay")
	}
	c.add(time.Second)
	if info, _ := r.Room("9"); len(info.Participants) != 1 {
		t.Fatalf("a Finished record outlived participants_expire_delay: %+v", info.Participants)
	}
	if err := r.Delete("9", ""); err != nil || !a.kicked {
		t.Fatalf("delete must hang up live calls: %v", err)
	}
	r.SetStatus("9", "TAG-A", StatusFinished, "")
	if _, ok := r.Room("9"); ok {
		t.Fatal("a status update re-created a deleted room")
	}
}

// A bridge that is only dialled into never calls roomCreate, so nothing
// of SEMS's would ever sweep it: Sweep (which the node runs on a timer)
// must free the records and then the rooms, and a full registry must let
// dead rooms make way for a live one.
func TestRegistrySweep(t *testing.T) {
	t.Run("records go after their delay, then the empty room after its own", func(t *testing.T) {
		c := newClock()
		r := NewRegistry(defaults(), nil, c.now)
		if err := r.Join("1", "T", "n", "", ReasonDirect, false, &fakeCall{}); err != nil {
			t.Fatal(err)
		}
		r.Pin("meeting")
		r.SetStatus("1", "T", StatusFinished, "")
		c.add(10 * time.Second)
		r.Sweep()
		if n := len(r.rooms["1"].parts); n != 1 {
			t.Fatalf("swept a record before participants_expire_delay: %d left", n)
		}
		c.add(time.Second)
		r.Sweep()
		if n := len(r.rooms["1"].parts); n != 0 {
			t.Fatalf("%d Finished records outlived participants_expire_delay", n)
		}
		c.add(7200 * time.Second)
		r.Sweep()
		if r.Count() != 2 {
			t.Fatal("erased a room before rooms_expire_delay (counted from the purge)")
		}
		c.add(time.Second)
		r.Sweep()
		if _, ok := r.rooms["1"]; ok || r.Count() != 1 {
			t.Fatalf("a soft-expired room survived the sweep (%d rooms)", r.Count())
		}
		if _, ok := r.rooms["meeting"]; !ok {
			t.Fatal("the sweep erased a pinned room")
		}
	})
	t.Run("a full registry erases expired rooms before it refuses", func(t *testing.T) {
		c := newClock()
		cfg := defaults()
		cfg.MaxRooms, cfg.RoomsExpireDelay = 2, 5*time.Second
		r := NewRegistry(cfg, nil, c.now)
		r.Open("old", "")
		if err := r.Join("live", "L", "n", "", ReasonDirect, false, &fakeCall{}); err != nil {
			t.Fatal(err)
		}
		c.add(5500 * time.Millisecond)
		// "old" expires at 6 s (strictly greater, whole seconds): the
		// refusal's sweep at 5.5 s finds nothing to erase.
		if err := r.Join("new", "N", "n", "", ReasonDirect, false, &fakeCall{}); !errors.Is(err, ErrTooManyRooms) {
			t.Fatalf("full registry with no expired room: %v, want ErrTooManyRooms", err)
		}
		c.add(600 * time.Millisecond)
		if err := r.Join("new", "N", "n", "", ReasonDirect, false, &fakeCall{}); !errors.Is(err, ErrTooManyRooms) {
			t.Fatalf("second sweep within a second: %v, want ErrTooManyRooms (sweeps on refusal are rate-limited)", err)
		}
		c.add(400 * time.Millisecond)
		if err := r.Join("new", "N", "n", "", ReasonDirect, false, &fakeCall{}); err != nil {
			t.Fatalf("an expired room did not make way: %v", err)
		}
		if _, ok := r.rooms["old"]; ok {
			t.Fatal("the expired room is still there")
		}
		if _, ok := r.rooms["live"]; !ok {
			t.Fatal("the room with a live call went")
		}
	})
}
