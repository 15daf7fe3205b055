package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	// Re-executed as the helper process of TestSQLiteSurvivesSIGKILL.
	if path := os.Getenv(killHelperEnv); path != "" {
		runKillHelper(path)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// implementation opens a fresh, empty Store of one kind for a test.
type implementation struct {
	name string
	open func(t testing.TB) Store
}

var implementations = []implementation{
	{"Memory", func(t testing.TB) Store { return NewMemory() }},
	{"SQLite", func(t testing.TB) Store { return openTestSQLite(t, filepath.Join(t.TempDir(), "data", "webconf.db")) }},
}

func openTestSQLite(t testing.TB, path string) *SQLite {
	t.Helper()
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatalf("OpenSQLite(%q): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func load(t *testing.T, s Store) Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return snap
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func roomNames(rs []Room) []string {
	var names []string
	for _, r := range rs {
		names = append(names, r.Name)
	}
	return names
}

// TestConformance is the behaviour every Store must have; a new
// implementation (PostgreSQL) is added to implementations and must pass it.
func TestConformance(t *testing.T) {
	for _, impl := range implementations {
		t.Run(impl.name, func(t *testing.T) {
			runConformance(t, impl)
		})
	}
}

func runConformance(t *testing.T, impl implementation) {
	ctx := context.Background()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("a new store is empty", func(t *testing.T) {
		snap := load(t, impl.open(t))
		if snap.Rooms == nil || snap.Invites == nil {
			t.Errorf("want empty, non-nil slices; got rooms %v invites %v", snap.Rooms, snap.Invites)
		}
		if len(snap.Rooms) != 0 || len(snap.Invites) != 0 || snap.Stats != (Stats{}) {
			t.Errorf("want empty snapshot, got %+v", snap)
		}
	})

	t.Run("rooms come back sorted by name with all their fields", func(t *testing.T) {
		s := impl.open(t)
		in := []Room{
			{Name: "b", AdminPin: "000123", Expiry: t0, LastAccess: t0.Add(time.Second)},
			{Name: "9", AdminPin: ""},
			{Name: "10", AdminPin: "999999", LastAccess: t0},
			{Name: "a", AdminPin: "p", Locked: true},
			{Name: "", AdminPin: "empty name is a name"},
		}
		for _, r := range in {
			must(t, s.PutRoom(ctx, r))
		}
		got := load(t, s).Rooms
		want := slices.Clone(in)
		slices.SortFunc(want, func(a, b Room) int {
			switch {
			case a.Name < b.Name:
				return -1
			case a.Name > b.Name:
				return 1
			}
			return 0
		})
		if !slices.Equal(roomNames(got), []string{"", "10", "9", "a", "b"}) {
			t.Fatalf("order: got %q", roomNames(got))
		}
		for i := range want {
			if !roomEqual(got[i], want[i]) {
				t.Errorf("room %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	})

	t.Run("putting a room with an existing name replaces it and keeps its invites", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "r", AdminPin: "111111", Expiry: t0}))
		must(t, s.AddInvite(ctx, Invite{Room: "r", ParticipantID: "p", Number: "sip:p@x"}))
		must(t, s.PutRoom(ctx, Room{Name: "r", AdminPin: "222222", LastAccess: t0}))
		snap := load(t, s)
		want := Room{Name: "r", AdminPin: "222222", LastAccess: t0}
		if len(snap.Rooms) != 1 || !roomEqual(snap.Rooms[0], want) {
			t.Errorf("rooms: got %+v, want [%+v]", snap.Rooms, want)
		}
		if len(snap.Invites) != 1 || snap.Invites[0] != (Invite{"r", "p", "sip:p@x"}) {
			t.Errorf("invites: got %+v, want the one invite kept", snap.Invites)
		}
	})

	t.Run("deleting a room removes it and its invites and nothing else", func(t *testing.T) {
		s := impl.open(t)
		for _, name := range []string{"keep", "gone"} {
			must(t, s.PutRoom(ctx, Room{Name: name, AdminPin: "1"}))
		}
		must(t, s.AddInvite(ctx, Invite{"gone", "p1", "n1"}))
		must(t, s.AddInvite(ctx, Invite{"keep", "p1", "n2"}))
		must(t, s.AddInvite(ctx, Invite{"gone", "p2", "n3"}))
		must(t, s.DeleteRoom(ctx, "gone"))
		snap := load(t, s)
		if !slices.Equal(roomNames(snap.Rooms), []string{"keep"}) {
			t.Errorf("rooms: got %q, want [keep]", roomNames(snap.Rooms))
		}
		if !slices.Equal(snap.Invites, []Invite{{"keep", "p1", "n2"}}) {
			t.Errorf("invites: got %+v", snap.Invites)
		}
		// A room re-created under the same name starts without invites.
		must(t, s.PutRoom(ctx, Room{Name: "gone"}))
		if got := load(t, s).Invites; len(got) != 1 {
			t.Errorf("re-created room brought invites back: %+v", got)
		}
	})

	t.Run("deleting an absent room is not an error", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.DeleteRoom(ctx, "never"))
		must(t, s.PutRoom(ctx, Room{Name: "r"}))
		must(t, s.DeleteRoom(ctx, "r"))
		must(t, s.DeleteRoom(ctx, "r"))
		if n := len(load(t, s).Rooms); n != 0 {
			t.Errorf("%d rooms left", n)
		}
	})

	t.Run("invites come back in insertion order across rooms with duplicates kept", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "b"}))
		must(t, s.PutRoom(ctx, Room{Name: "a"}))
		in := []Invite{{"b", "p2", "n1"}, {"a", "p9", "n2"}, {"b", "p1", "n3"}, {"b", "p2", "n1"}, {"a", "", ""}}
		for _, inv := range in {
			must(t, s.AddInvite(ctx, inv))
		}
		if got := load(t, s).Invites; !slices.Equal(got, in) {
			t.Errorf("got %+v, want %+v", got, in)
		}
	})

	t.Run("an invite for an absent room fails with ErrNoRoom", func(t *testing.T) {
		s := impl.open(t)
		err := s.AddInvite(ctx, Invite{"nope", "p", "n"})
		if !errors.Is(err, ErrNoRoom) {
			t.Fatalf("got %v, want ErrNoRoom", err)
		}
		if n := len(load(t, s).Invites); n != 0 {
			t.Errorf("failed AddInvite stored %d invites", n)
		}
	})

	t.Run("take invite removes only the first match of that room", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "r"}))
		must(t, s.PutRoom(ctx, Room{Name: "other"}))
		in := []Invite{
			{"other", "p1", "o1"},
			{"r", "p2", "n0"},
			{"r", "p1", "n1"},
			{"r", "p1", "n2"},
			{"other", "p1", "o2"},
		}
		for _, inv := range in {
			must(t, s.AddInvite(ctx, inv))
		}
		must(t, s.TakeInvite(ctx, "r", "p1"))
		want := []Invite{{"other", "p1", "o1"}, {"r", "p2", "n0"}, {"r", "p1", "n2"}, {"other", "p1", "o2"}}
		if got := load(t, s).Invites; !slices.Equal(got, want) {
			t.Fatalf("after first take: got %+v, want %+v", got, want)
		}
		must(t, s.TakeInvite(ctx, "r", "p1"))
		want = []Invite{{"other", "p1", "o1"}, {"r", "p2", "n0"}, {"other", "p1", "o2"}}
		if got := load(t, s).Invites; !slices.Equal(got, want) {
			t.Fatalf("after second take: got %+v, want %+v", got, want)
		}
		// No match left (and unknown rooms): no error, no change.
		must(t, s.TakeInvite(ctx, "r", "p1"))
		must(t, s.TakeInvite(ctx, "nope", "p1"))
		if got := load(t, s).Invites; !slices.Equal(got, want) {
			t.Fatalf("a take without match changed invites: %+v", got)
		}
	})

	t.Run("invites added after a take keep insertion order", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "r"}))
		must(t, s.AddInvite(ctx, Invite{"r", "a", "1"}))
		must(t, s.AddInvite(ctx, Invite{"r", "b", "2"}))
		must(t, s.TakeInvite(ctx, "r", "b"))
		must(t, s.AddInvite(ctx, Invite{"r", "c", "3"}))
		must(t, s.AddInvite(ctx, Invite{"r", "d", "4"}))
		want := []Invite{{"r", "a", "1"}, {"r", "c", "3"}, {"r", "d", "4"}}
		if got := load(t, s).Invites; !slices.Equal(got, want) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	})

	t.Run("stats round trip including the largest counters", func(t *testing.T) {
		s := impl.open(t)
		for _, want := range []Stats{
			{Total: 12, Failed: 3, Seconds: 600},
			{Total: math.MaxUint64, Failed: math.MaxInt64 + 1, Seconds: math.MaxInt64},
			{},
		} {
			must(t, s.PutStats(ctx, want))
			if got := load(t, s).Stats; got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		}
	})

	t.Run("times keep microsecond precision and zero stays zero", func(t *testing.T) {
		s := impl.open(t)
		exp := time.Date(2031, 5, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+1", 3600))
		now := time.Now() // carries a monotonic reading
		old := time.Date(1969, 12, 31, 23, 59, 59, 999999000, time.UTC)
		must(t, s.PutRoom(ctx, Room{Name: "a", Expiry: exp}))
		must(t, s.PutRoom(ctx, Room{Name: "b", LastAccess: now}))
		must(t, s.PutRoom(ctx, Room{Name: "c", Expiry: old, LastAccess: old}))
		rs := load(t, s).Rooms
		if len(rs) != 3 {
			t.Fatalf("got %d rooms", len(rs))
		}
		check := func(what string, got, want time.Time) {
			t.Helper()
			if want.IsZero() {
				if !got.IsZero() {
					t.Errorf("%s: zero time came back as %v", what, got)
				}
				return
			}
			if !got.Equal(want.Truncate(time.Microsecond)) {
				t.Errorf("%s: got %v, want %v", what, got, want)
			}
			if got.Location() != time.UTC {
				t.Errorf("%s: location %v, want UTC", what, got.Location())
			}
		}
		check("a expiry", rs[0].Expiry, exp)
		check("a last access", rs[0].LastAccess, time.Time{})
		check("b expiry", rs[1].Expiry, time.Time{})
		check("b last access", rs[1].LastAccess, now)
		check("c expiry", rs[2].Expiry, old)
		check("c last access", rs[2].LastAccess, old)
	})

	t.Run("a loaded snapshot is the caller's to change", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "r", AdminPin: "1"}))
		must(t, s.AddInvite(ctx, Invite{"r", "p", "n"}))
		snap := load(t, s)
		snap.Rooms[0].AdminPin = "changed"
		snap.Invites[0].Number = "changed"
		again := load(t, s)
		if again.Rooms[0].AdminPin != "1" || again.Invites[0].Number != "n" {
			t.Errorf("changing a snapshot changed the store: %+v", again)
		}
	})

	t.Run("concurrent writers all land", func(t *testing.T) {
		s := impl.open(t)
		const writers, perWriter = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				room := fmt.Sprintf("room-%d", w)
				if err := s.PutRoom(ctx, Room{Name: room}); err != nil {
					errs <- err
					return
				}
				for i := range perWriter {
					if err := s.AddInvite(ctx, Invite{room, "p", fmt.Sprint(i)}); err != nil {
						errs <- err
						return
					}
					if err := s.PutRoom(ctx, Room{Name: room, AdminPin: fmt.Sprint(i)}); err != nil {
						errs <- err
						return
					}
					if err := s.PutStats(ctx, Stats{Total: uint64(i)}); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		snap := load(t, s)
		if len(snap.Rooms) != writers {
			t.Fatalf("got %d rooms, want %d", len(snap.Rooms), writers)
		}
		for _, r := range snap.Rooms {
			if r.AdminPin != fmt.Sprint(perWriter-1) {
				t.Errorf("room %s: pin %q, want the last write %d", r.Name, r.AdminPin, perWriter-1)
			}
		}
		next := map[string]int{}
		for _, inv := range snap.Invites {
			if inv.Number != fmt.Sprint(next[inv.Room]) {
				t.Fatalf("room %s: invite %q out of order, want %d", inv.Room, inv.Number, next[inv.Room])
			}
			next[inv.Room]++
		}
		for room, n := range next {
			if n != perWriter {
				t.Errorf("room %s: %d invites, want %d", room, n, perWriter)
			}
		}
		if snap.Stats.Total != perWriter-1 {
			t.Errorf("stats total %d, want %d", snap.Stats.Total, perWriter-1)
		}
	})

	t.Run("a cancelled context fails the call and writes nothing", func(t *testing.T) {
		s := impl.open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.PutRoom(cctx, Room{Name: "r"}); !errors.Is(err, context.Canceled) {
			t.Errorf("PutRoom: got %v, want context.Canceled", err)
		}
		if _, err := s.Load(cctx); !errors.Is(err, context.Canceled) {
			t.Errorf("Load: got %v, want context.Canceled", err)
		}
		if n := len(load(t, s).Rooms); n != 0 {
			t.Errorf("cancelled PutRoom stored %d rooms", n)
		}
	})

	t.Run("documents are put, replaced and deleted together and come back sorted", func(t *testing.T) {
		s := impl.open(t)
		if d := load(t, s).Docs; d == nil || len(d) != 0 {
			t.Fatalf("a new store: docs %v, want empty and non-nil", d)
		}
		must(t, s.WriteDocs(ctx, []Doc{
			{"meeting", "b", []byte(`{"n":2}`)},
			{"meeting", "a", []byte(`{"n":1}`)},
			{"user", "a", []byte(`{}`)},
			{"ingress", "http", nil},
		}, nil))
		must(t, s.WriteDocs(ctx, []Doc{{"meeting", "a", []byte(`{"n":3}`)}},
			[]DocKey{{"user", "a"}, {"user", "absent"}, {"meeting", "a"}}))
		got := load(t, s).Docs
		want := []Doc{{"ingress", "http", []byte{}}, {"meeting", "a", []byte(`{"n":3}`)}, {"meeting", "b", []byte(`{"n":2}`)}}
		if len(got) != len(want) {
			t.Fatalf("got %d docs %+v, want %+v", len(got), got, want)
		}
		for i := range want {
			if got[i].Kind != want[i].Kind || got[i].ID != want[i].ID || string(got[i].Body) != string(want[i].Body) {
				t.Errorf("doc %d: got %s/%s %q, want %s/%s %q", i, got[i].Kind, got[i].ID, got[i].Body, want[i].Kind, want[i].ID, want[i].Body)
			}
		}
		// Documents are independent of rooms.
		must(t, s.PutRoom(ctx, Room{Name: "a"}))
		must(t, s.DeleteRoom(ctx, "a"))
		if n := len(load(t, s).Docs); n != 3 {
			t.Errorf("after room changes: %d docs, want 3", n)
		}
	})

	t.Run("after close every call fails with ErrClosed and close is idempotent", func(t *testing.T) {
		s := impl.open(t)
		must(t, s.PutRoom(ctx, Room{Name: "r"}))
		must(t, s.Close())
		must(t, s.Close())
		calls := map[string]error{
			"PutRoom":    s.PutRoom(ctx, Room{Name: "x"}),
			"DeleteRoom": s.DeleteRoom(ctx, "r"),
			"AddInvite":  s.AddInvite(ctx, Invite{"r", "p", "n"}),
			"TakeInvite": s.TakeInvite(ctx, "r", "p"),
			"PutStats":   s.PutStats(ctx, Stats{}),
		}
		calls["WriteDocs"] = s.WriteDocs(ctx, []Doc{{"k", "i", nil}}, nil)
		_, calls["Load"] = s.Load(ctx)
		for name, err := range calls {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s: got %v, want ErrClosed", name, err)
			}
		}
	})
}

func roomEqual(a, b Room) bool {
	return a.Name == b.Name && a.AdminPin == b.AdminPin && a.Locked == b.Locked &&
		a.Expiry.Equal(b.Expiry) && a.LastAccess.Equal(b.LastAccess) &&
		a.Expiry.IsZero() == b.Expiry.IsZero() && a.LastAccess.IsZero() == b.LastAccess.IsZero()
}
