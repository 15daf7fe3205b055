package room

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sort"
	"testing"
	"time"

	"webconf/sipapp/store"
	"webconf/sipapp/store/storetest"
)

// storedRegistry is a registry writing through to a store that refuses
// writes on demand, over a Memory store that a "restart" reloads.
type storedRegistry struct {
	t     *testing.T
	clk   *clock
	cfg   Config
	mem   *store.Memory
	fault *storetest.Faulty
	r     *Registry
}

func newStoredRegistry(t *testing.T, cfg Config) *storedRegistry {
	t.Helper()
	sr := &storedRegistry{t: t, clk: newClock(), cfg: cfg, mem: store.NewMemory()}
	sr.fault = storetest.NewFaulty(sr.mem)
	sr.r = NewRegistry(cfg, nil, sr.clk.now)
	if _, err := sr.r.Restore(context.Background(), sr.fault, quietLog()); err != nil {
		t.Fatal(err)
	}
	return sr
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// reloaded is what a restart would find: a new registry over the store.
func (sr *storedRegistry) reloaded() *Registry {
	sr.t.Helper()
	r := NewRegistry(sr.cfg, nil, sr.clk.now)
	if _, err := r.Restore(context.Background(), sr.mem, quietLog()); err != nil {
		sr.t.Fatal(err)
	}
	return r
}

// dumpRegistry is every room with its PIN, hard expiry and records (the
// durable part: invited records and calls' tags), as the control API would
// list them.
func dumpRegistry(r *Registry) []string {
	r.mu.Lock()
	names := make([]string, 0, len(r.rooms))
	for n := range r.rooms {
		names = append(names, n)
	}
	r.mu.Unlock()
	sort.Strings(names)
	var out []string
	for _, n := range names {
		info, ok := r.Room(n)
		if !ok {
			continue
		}
		line := fmt.Sprintf("%s pin=%q expiry=%d", n, info.AdminPin, info.Expiry.Unix())
		for _, p := range info.Participants {
			line += fmt.Sprintf(" [%q %q %q %d]", p.ID, p.Number, p.CallTag, p.Status)
		}
		out = append(out, line)
	}
	return out
}

// refused runs op with the given writes failing and checks that it is
// ErrStore and that nothing changed, in memory nor in what a restart
// loads (the durable state is compared without live records).
func (sr *storedRegistry) refused(what string, op func() error, fail ...storetest.Op) {
	sr.t.Helper()
	before := dumpRegistry(sr.r)
	durable := dumpRegistry(sr.reloaded())
	sr.fault.Fail(true, fail...)
	err := op()
	sr.fault.Fail(false, fail...)
	if !errors.Is(err, ErrStore) {
		sr.t.Fatalf("%s with the store refusing: %v, want ErrStore", what, err)
	}
	if got := dumpRegistry(sr.r); !reflect.DeepEqual(got, before) {
		sr.t.Fatalf("%s: a refused write changed the registry\n got %q\nwant %q", what, got, before)
	}
	if got := dumpRegistry(sr.reloaded()); !reflect.DeepEqual(got, durable) {
		sr.t.Fatalf("%s: a refused write changed what a restart finds\n got %q\nwant %q", what, got, durable)
	}
}

// Every kind of room write the store refuses answers an error and changes
// nothing: a reply never reports a room, PIN or invite a restart would not
// have (issue 11, point 1).
func TestRegistryRefusedWritesChangeNothing(t *testing.T) {
	sr := newStoredRegistry(t, defaults())
	r := sr.r
	all := []storetest.Op{storetest.PutRoom, storetest.DeleteRoom, storetest.AddInvite, storetest.TakeInvite}

	// Room creation (roomCreate, getRoom's creation in public mode, a
	// dial-in creating its room, addParticipant creating its room).
	sr.refused("roomCreate", func() error { _, err := r.Create("new", 60); return err }, storetest.PutRoom)
	sr.refused("getRoom creating", func() error { return r.Authorize("new", "1") }, storetest.PutRoom)
	sr.refused("changeRoomAdminpin creating", func() error { return r.ChangePin("new", "1", "2") }, storetest.PutRoom)
	sr.refused("dial-in creating", func() error {
		return r.Join("new", "T0", "n", "", ReasonDirect, false, &fakeCall{})
	}, storetest.PutRoom)
	sr.refused("addParticipant creating (room)", func() error { return r.AddParticipant("new", "p", "sip:p@x") }, storetest.PutRoom)
	sr.refused("addParticipant creating (invite)", func() error { return r.AddParticipant("new", "p", "sip:p@x") }, storetest.AddInvite)

	// A room with an invite and no PIN yet, then a PIN.
	if err := r.AddParticipant("r", "inv", "sip:inv@x"); err != nil {
		t.Fatal(err)
	}
	sr.refused("roomCreate on an empty-PIN room", func() error { _, err := r.Create("r", 0); return err }, storetest.PutRoom)
	sr.refused("first claimer", func() error { return r.Authorize("r", "claim") }, storetest.PutRoom)
	pin, err := r.Create("r", 0)
	if err != nil {
		t.Fatal(err)
	}
	sr.refused("changeRoomAdminpin", func() error { return r.ChangePin("r", pin, "other") }, storetest.PutRoom)
	sr.refused("addParticipant", func() error { return r.AddParticipant("r", "p2", "sip:p2@x") }, storetest.AddInvite)
	call := &fakeCall{}
	sr.refused("dial-in taking an invite", func() error {
		return r.Join("r", "T1", "n", "inv", ReasonEntered, false, call)
	}, storetest.TakeInvite)
	if err := r.Kick("r", "T1"); !errors.Is(err, ErrNoCall) {
		t.Fatalf("a refused join left its call in the room: %v", err)
	}
	sr.refused("roomDelete", func() error { return r.Delete("r", pin) }, storetest.DeleteRoom)
	// Everything refused at once, for every function that writes.
	sr.refused("roomDelete, all refused", func() error { return r.Delete("r", pin) }, all...)

	// Nothing was lost on the way: the same calls pass once the store does.
	if err := r.Join("r", "T1", "n", "inv", ReasonEntered, false, call); err != nil {
		t.Fatal(err)
	}
	if err := r.ChangePin("r", pin, "other"); err != nil {
		t.Fatal(err)
	}
	got := dumpRegistry(sr.reloaded())
	want := []string{`r pin="other" expiry=-62135596800`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after the writes passed, a restart finds %q, want %q", got, want)
	}

	// Soft expiry: a sweep whose delete is refused keeps the room (and
	// the store its copy); the next sweep deletes it.
	if err := r.Delete("r", "other"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create("idle", 0); err != nil {
		t.Fatal(err)
	}
	sr.clk.add(7201 * time.Second)
	sr.fault.Fail(true, storetest.DeleteRoom)
	r.Sweep()
	if !r.Exists("idle") || !sr.reloaded().Exists("idle") {
		t.Fatal("a sweep whose delete was refused dropped the room from memory")
	}
	sr.fault.Fail(false, storetest.DeleteRoom)
	r.Sweep()
	if r.Exists("idle") || sr.reloaded().Exists("idle") {
		t.Fatal("the next sweep did not delete the expired room")
	}
}

// Meeting rooms: a refused Pin makes no room; a refused Drop keeps the
// room (as the store has it) but no longer exempt from soft expiry, and
// still hangs up its calls (the meeting ended); a predefined room the
// store refuses stops start-up.
func TestRegistryRefusedMeetingRoomWrites(t *testing.T) {
	sr := newStoredRegistry(t, defaults())
	r := sr.r
	sr.refused("Pin", func() error { return r.Pin("m") }, storetest.PutRoom)
	sr.refused("Predefine", func() error { return r.Predefine("m", "1") }, storetest.PutRoom)
	sr.refused("Open", func() error { return r.Open("m", "1") }, storetest.PutRoom)
	if err := r.Pin("m"); err != nil {
		t.Fatal(err)
	}
	c := &fakeCall{}
	if err := r.Join("m", "T", "n", "", ReasonDirect, false, c); err != nil {
		t.Fatal(err)
	}
	sr.fault.Fail(true, storetest.DeleteRoom)
	if err := r.Drop("m"); !errors.Is(err, ErrStore) {
		t.Fatalf("Drop with the store refusing: %v", err)
	}
	sr.fault.Fail(false, storetest.DeleteRoom)
	if !c.kicked || !r.Exists("m") || !sr.reloaded().Exists("m") || r.rooms["m"].pinned {
		t.Fatalf("refused Drop: kicked %v, in memory %v, stored %v, pinned %v", c.kicked, r.Exists("m"), sr.reloaded().Exists("m"), r.rooms["m"].pinned)
	}
}
