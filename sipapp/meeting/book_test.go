package meeting

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"webconf/sipapp/store"
	"webconf/test/testutil"
)

// ---------------------------------------------------------------------------
// Test doubles.

// hookCall is one call the Book made to its Hooks.
type hookCall struct {
	op     string // open, end, lifted
	room   string
	remove bool
	at     time.Time // real time of the call
}

// fakeHooks records every call. RoomTaken answers with taken (nil: never
// taken) and remembers what it was asked.
type fakeHooks struct {
	mu    sync.Mutex
	calls []hookCall
	asked map[string]bool // room -> what RoomTaken answered
	taken func(room string) bool
	// book, when set, is checked to be unlocked in EndRoom and
	// LobbyLifted (the Hooks contract); only set where no other goroutine
	// can hold the lock at that moment.
	book   *Book
	locked []hookCall // EndRoom/LobbyLifted calls made with the lock held
	// openFail makes OpenRoom refuse (as a room store that fails does);
	// a refused open is recorded as "open-refused".
	openFail atomic.Bool
}

func newHooks() *fakeHooks { return &fakeHooks{asked: map[string]bool{}} }

func (h *fakeHooks) add(c hookCall) {
	c.at = time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls = append(h.calls, c)
	if b := h.book; b != nil && !strings.HasPrefix(c.op, "open") {
		if b.mu.TryLock() {
			b.mu.Unlock()
		} else {
			h.locked = append(h.locked, c)
		}
	}
}

// checkUnlocked makes EndRoom and LobbyLifted record whether the Book's
// lock is held when they are called.
func (h *fakeHooks) checkUnlocked(t *testing.T, b *Book) {
	h.mu.Lock()
	h.book = b
	h.mu.Unlock()
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.locked) > 0 {
			t.Errorf("hooks called with the Book's lock held: %+v", h.locked)
		}
	})
}

var errRoomRefused = errors.New("room store refused")

func (h *fakeHooks) OpenRoom(room string) error {
	if h.openFail.Load() {
		h.add(hookCall{op: "open-refused", room: room})
		return errRoomRefused
	}
	h.add(hookCall{op: "open", room: room})
	return nil
}
func (h *fakeHooks) EndRoom(room string, remove bool) {
	h.add(hookCall{op: "end", room: room, remove: remove})
}
func (h *fakeHooks) LobbyLifted(room string) { h.add(hookCall{op: "lifted", room: room}) }

func (h *fakeHooks) RoomTaken(room string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := h.taken != nil && h.taken(room)
	h.asked[room] = v
	return v
}

// find returns the matching calls.
func (h *fakeHooks) find(op, room string, remove bool) []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hookCall
	for _, c := range h.calls {
		if c.op == op && c.room == room && c.remove == remove {
			out = append(out, c)
		}
	}
	return out
}

func (h *fakeHooks) count(op, room string, remove bool) int { return len(h.find(op, room, remove)) }

func (h *fakeHooks) all() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

func (h *fakeHooks) reset() {
	h.mu.Lock()
	h.calls = nil
	h.mu.Unlock()
}

// failingStore is a Store whose WriteDocs fails while fail is set.
type failingStore struct {
	store.Store
	fail   atomic.Bool
	writes atomic.Int64 // failed attempts
}

var errDiskGone = errors.New("disk gone")

func (s *failingStore) WriteDocs(ctx context.Context, put []store.Doc, del []store.DocKey) error {
	if s.fail.Load() {
		s.writes.Add(1)
		return errDiskGone
	}
	return s.Store.WriteDocs(ctx, put, del)
}

// ---------------------------------------------------------------------------
// Helpers.

func testConfig() Config {
	return Config{TTL: time.Hour, MaxParticipants: 100, Languages: []string{"en", "fr"}, SIPDialin: true}
}

// newBook makes a Book on st (a fresh Memory when nil), closed at the end
// of the test.
func newBook(t *testing.T, cfg Config, st store.Store, h *fakeHooks) *Book {
	t.Helper()
	if st == nil {
		st = store.NewMemory()
	}
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, st, snap.Docs, h)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

func userIn(t *testing.T, js string) UserInput {
	t.Helper()
	var in UserInput
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		t.Fatalf("user body %s: %v", js, err)
	}
	return in
}

func meetingIn(t *testing.T, js string) MeetingInput {
	t.Helper()
	var in MeetingInput
	if err := json.Unmarshal([]byte(js), &in); err != nil {
		t.Fatalf("meeting body %s: %v", js, err)
	}
	return in
}

func lobbyIn(state int, timer *int64) LobbyInput {
	in := LobbyInput{State: Opt[int]{Set: true, Value: state}}
	if timer != nil {
		in.Timer = Opt[int64]{Set: true, Value: *timer}
	}
	return in
}

func mustUser(t *testing.T, b *Book, js string) (User, string) {
	t.Helper()
	u, tok, err := b.CreateUser(userIn(t, js))
	if err != nil {
		t.Fatalf("CreateUser(%s): %v", js, err)
	}
	return u, tok
}

func mustMeeting(t *testing.T, b *Book, owner User, js string) Meeting {
	t.Helper()
	m, err := b.CreateMeeting(owner, meetingIn(t, js))
	if err != nil {
		t.Fatalf("CreateMeeting(%s): %v", js, err)
	}
	return m
}

// wantKind checks that err is an *Error of that kind (and field, if given).
func wantKind(t *testing.T, err error, kind Kind, field string) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %d field %q", kind, field)
	}
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("got %T %v, want *Error", err, err)
	}
	if e.Kind != kind || (field != "" && e.Field != field) {
		t.Fatalf("got kind %d field %q (%q), want kind %d field %q", e.Kind, e.Field, e.Message, kind, field)
	}
	if e.Code == "" || e.Message == "" {
		t.Fatalf("error without code or message: %+v", e)
	}
	return e
}

// waitFor polls cond until it holds or the deadline passes.
var waitFor = testutil.WaitFor

// storedDoc returns a document's body from the store, if it is there.
func storedDoc(t *testing.T, st store.Store, kind, id string) ([]byte, bool) {
	t.Helper()
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range snap.Docs {
		if d.Kind == kind && d.ID == id {
			return d.Body, true
		}
	}
	return nil, false
}

func storedMeeting(t *testing.T, st store.Store, id string) (Meeting, bool) {
	t.Helper()
	body, ok := storedDoc(t, st, kindMeeting, id)
	if !ok {
		return Meeting{}, false
	}
	var m Meeting
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m, true
}

func hasTimer(b *Book, id string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.timers[id] != nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------
// Validation.

func TestUserValidation(t *testing.T) {
	long := strings.Repeat("a", 129)
	cases := []struct {
		name, body, field string
	}{
		{"username missing", `{"email":"a@example.com"}`, "username"},
		{"username null", `{"username":null}`, "username"},
		{"username empty", `{"username":""}`, "username"},
		{"username space", `{"username":"ann smith"}`, "username"},
		{"username too long", `{"username":"` + long + `"}`, "username"},
		{"capability unknown", `{"username":"ann","capabilities":["meetings","admin"]}`, "capabilities"},
		{"role unknown", `{"username":"ann","role":"root"}`, "role"},
		{"email not an address", `{"username":"ann","email":"not-an-email"}`, "email"},
		{"email with display name", `{"username":"ann","email":"Ann <ann@example.com>"}`, "email"},
		{"email too long", `{"username":"ann","email":"` + strings.Repeat("a", 250) + `@x.io"}`, "email"},
		{"mobile not E.164", `{"username":"ann","mobile_phone":"0612345678"}`, "mobile_phone"},
		{"mobile leading zero", `{"username":"ann","mobile_phone":"+0612345678"}`, "mobile_phone"},
		{"mobile too long", `{"username":"ann","mobile_phone":"+1234567890123456"}`, "mobile_phone"},
		{"landline too short", `{"username":"ann","landline":"+1"}`, "landline"},
		{"alias control char", `{"username":"ann","alias":"a\u0007b"}`, "alias"},
		{"alias too long", `{"username":"ann","alias":"` + long + `"}`, "alias"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, verr := newUser(userIn(t, c.body)); verr == nil {
				t.Fatal("newUser accepted it")
			} else {
				wantKind(t, verr, Invalid, c.field)
			}

			// Through the Book: nothing stored, nothing created.
			st := store.NewMemory()
			b := newBook(t, testConfig(), st, newHooks())
			_, tok, err := b.CreateUser(userIn(t, c.body))
			wantKind(t, err, Invalid, c.field)
			if tok != "" || len(b.Users()) != 0 {
				t.Fatalf("invalid user was created (token %q, users %v)", tok, b.Users())
			}
			if len(mustLoad(t, st).Docs) != 0 {
				t.Fatal("invalid user reached the store")
			}
		})
	}
}

func mustLoad(t *testing.T, st store.Store) store.Snapshot {
	t.Helper()
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestUserDefaultsAndConflict(t *testing.T) {
	b := newBook(t, testConfig(), nil, newHooks())
	u, tok, err := b.CreateUser(userIn(t, `{"username":"ann.b@x+1","email":"ann@example.com","mobile_phone":"+33612345678","landline":"+3312","alias":"Ann","capabilities":["sip","meetings","sip"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != "user" {
		t.Errorf("role = %q, want the default user", u.Role)
	}
	if !reflect.DeepEqual(u.Capabilities, []string{"sip", "meetings"}) {
		t.Errorf("capabilities = %v, want [sip meetings] (deduplicated, in order)", u.Capabilities)
	}
	if !ValidUUID(u.UUID) || len(tok) != 40 || u.Created.IsZero() || u.LastLogin != nil {
		t.Errorf("bad new user %+v token %q", u, tok)
	}
	// No capabilities: an empty list, not null.
	v, _ := mustUser(t, b, `{"username":"bob","role":"admin","capabilities":null}`)
	if v.Capabilities == nil || len(v.Capabilities) != 0 || v.Role != "admin" {
		t.Errorf("bob = %+v", v)
	}
	_, _, err = b.CreateUser(userIn(t, `{"username":"bob"}`))
	wantKind(t, err, Conflict, "username")

	got, ok := b.Authenticate(tok)
	if !ok || got.UUID != u.UUID || got.LastLogin == nil {
		t.Fatalf("Authenticate = %+v %v", got, ok)
	}
	for _, bad := range []string{"", tok[:39], tok + "x", strings.ToUpper(tok)} {
		if _, ok := b.Authenticate(bad); ok {
			t.Errorf("Authenticate(%q) succeeded", bad)
		}
	}
}

func TestMeetingValidation(t *testing.T) {
	long := strings.Repeat("n", 513)
	cases := []struct {
		name, body, field string
		createOnly        bool // an absent name is fine on update
	}{
		{"name missing", `{"language":"en"}`, "name", true},
		{"name null", `{"name":null}`, "name", false},
		{"name empty", `{"name":""}`, "name", false},
		{"name control char", `{"name":"a\nb"}`, "name", false},
		{"name too long", `{"name":"` + long + `"}`, "name", false},
		{"valid_until before valid_since", `{"name":"m","valid_since":"2030-01-01T10:00:00Z","valid_until":"2030-01-01T09:00:00Z"}`, "valid_until", false},
		{"valid_until equal valid_since", `{"name":"m","valid_since":"2030-01-01T10:00:00+01:00","valid_until":"2030-01-01T09:00:00Z"}`, "valid_until", false},
		{"participant phone", `{"name":"m","participants":[{"name":"A","phone":"0612345678"}]}`, "participants[0].phone", false},
		{"participant email", `{"name":"m","participants":[{"name":"A","email":"a@"}]}`, "participants[0].email", false},
		{"second participant email", `{"name":"m","participants":[{"name":"A"},{"email":"x y@example.com"}]}`, "participants[1].email", false},
		{"participant empty", `{"name":"m","participants":[{}]}`, "participants[0].name", false},
		{"language unknown", `{"name":"m","language":"de"}`, "language", false},
		{"language null", `{"name":"m","language":null}`, "language", false},
		{"max_participants zero", `{"name":"m","max_participants":0}`, "max_participants", false},
		{"max_participants over cap", `{"name":"m","max_participants":101}`, "max_participants", false},
		{"max_participants null", `{"name":"m","max_participants":null}`, "max_participants", false},
		{"lobby null", `{"name":"m","lobby":null}`, "lobby", false},
		{"lobby state missing", `{"name":"m","lobby":{}}`, "lobby.state", false},
		{"lobby state 2", `{"name":"m","lobby":{"state":2}}`, "lobby.state", false},
		{"lobby state -1", `{"name":"m","lobby":{"state":-1}}`, "lobby.state", false},
		{"lobby timer past", `{"name":"m","lobby":{"state":1,"timer":1000}}`, "lobby.timer", false},
		{"lobby timer too far", `{"name":"m","lobby":{"state":1,"timer":` + strconv.FormatInt(time.Now().Add(11*365*24*time.Hour).Unix(), 10) + `}}`, "lobby.timer", false},
		{"owner unknown", `{"name":"m","owner_uuids":["00000000-0000-4000-8000-000000000000"]}`, "owner_uuids", false},
		{"persistent null", `{"name":"m","persistent":null}`, "persistent", false},
		{"require_authorization null", `{"name":"m","require_authorization":null}`, "require_authorization", false},
		{"sip_dialin null", `{"name":"m","sip_dialin":null}`, "sip_dialin", false},
		{"too many participants", `{"name":"m","participants":[` + strings.TrimSuffix(strings.Repeat(`{"name":"p"},`, maxInvitees+1), ",") + `]}`, "participants", false},
	}
	st := store.NewMemory()
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	owner, _ := mustUser(t, b, `{"username":"owner","capabilities":["meetings","sip"]}`)
	base := mustMeeting(t, b, owner, `{"name":"base","valid_since":"2030-01-01T08:00:00Z"}`)
	h.reset()
	before := mustLoad(t, st).Docs

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := b.CreateMeeting(owner, meetingIn(t, c.body))
			wantKind(t, err, Invalid, c.field)
			if c.createOnly {
				return
			}
			_, err = b.UpdateMeeting(owner, base.UUID, meetingIn(t, c.body))
			wantKind(t, err, Invalid, c.field)
			if got, _ := b.Meeting(base.UUID); !reflect.DeepEqual(got, base) {
				t.Fatalf("a rejected update changed the meeting:\n got %+v\nwant %+v", got, base)
			}
		})
	}
	// valid_until against the stored valid_since (08:00).
	_, err := b.UpdateMeeting(owner, base.UUID, meetingIn(t, `{"valid_until":"2030-01-01T07:59:59Z"}`))
	wantKind(t, err, Invalid, "valid_until")

	if got := b.Meetings(owner.UUID); len(got) != 1 {
		t.Errorf("rejected creations left meetings: %d", len(got))
	}
	if after := mustLoad(t, st).Docs; !reflect.DeepEqual(before, after) {
		t.Error("rejected changes reached the store")
	}
	if c := h.all(); len(c) != 0 {
		t.Errorf("rejected changes called hooks: %+v", c)
	}
}

func TestCreateMeetingDefaultsAndFields(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	owner, _ := mustUser(t, b, `{"username":"owner","capabilities":["meetings"]}`)
	other, _ := mustUser(t, b, `{"username":"other"}`)

	_, err := b.CreateMeeting(other, meetingIn(t, `{"name":"m"}`))
	wantKind(t, err, Forbidden, "")

	start := time.Now().UTC().Truncate(time.Second)
	m := mustMeeting(t, b, owner, `{"name":"m","uuid":"ignored","exten":"1","expires_at":"ignored","owner_uuids":["`+other.UUID+`","`+other.UUID+`"]}`)
	if !ValidUUID(m.UUID) || m.UUID == "ignored" {
		t.Errorf("uuid %q", m.UUID)
	}
	if m.Language != "en" || m.MaxParticipants != 100 || !m.SIPDialin || m.Persistent || m.RequireAuthorization {
		t.Errorf("defaults wrong: %+v", m)
	}
	if !reflect.DeepEqual(m.OwnerUUIDs, []string{owner.UUID, other.UUID}) {
		t.Errorf("owners = %v, want the creator first then the others, deduplicated", m.OwnerUUIDs)
	}
	if m.CreationTime.Before(start) || m.CreationTime.Nanosecond() != 0 {
		t.Errorf("creation time %v", m.CreationTime)
	}
	if m.ExpiresAt == nil || !m.ExpiresAt.Equal(m.CreationTime.Add(time.Hour)) {
		t.Errorf("expires_at %v, want creation + TTL", m.ExpiresAt)
	}
	if len(m.Exten) != 8 || m.Exten[0] == '0' || !allDigits(m.Exten) {
		t.Errorf("exten %q", m.Exten)
	}
	if m.GuestUser != "meeting-"+m.UUID+"-guest" || len(m.GuestPassword) != 20 {
		t.Errorf("guest account %q %q", m.GuestUser, m.GuestPassword)
	}
	if m.Participants == nil || len(m.Participants) != 0 {
		t.Errorf("participants %#v, want empty list", m.Participants)
	}
	if h.count("open", m.Exten, false) != 1 {
		t.Errorf("OpenRoom(%s) not called once: %+v", m.Exten, h.all())
	}
	if room, pw, ok := b.GuestAccount(m.GuestUser); !ok || room != m.Exten || pw != m.GuestPassword {
		t.Errorf("GuestAccount = %q %q %v", room, pw, ok)
	}
	if !b.IsMeetingRoom(m.Exten) {
		t.Error("IsMeetingRoom false for the meeting's exten")
	}
	if sm, ok := storedMeeting(t, st, m.UUID); !ok || !reflect.DeepEqual(sm, m) {
		t.Errorf("stored meeting %+v, want %+v", sm, m)
	}
	// Both owners see it; an outsider's view is a 404.
	if len(b.Meetings(other.UUID)) != 1 {
		t.Error("co-owner does not see the meeting")
	}
	stranger, _ := mustUser(t, b, `{"username":"stranger","capabilities":["meetings"]}`)
	_, err = b.MyMeeting(stranger.UUID, m.UUID)
	wantKind(t, err, NotFound, "")
	_, err = b.UpdateMeeting(stranger, m.UUID, meetingIn(t, `{"name":"x"}`))
	wantKind(t, err, NotFound, "")
	wantKind(t, b.DeleteMeeting(stranger.UUID, m.UUID), NotFound, "")

	// Update keeps absent fields, times are truncated to seconds in UTC,
	// and the caller stays an owner.
	u, err := b.UpdateMeeting(other, m.UUID, meetingIn(t, `{"owner_uuids":[],"valid_since":"2030-05-01T10:00:00.9+02:00","participants":[{"name":"A","email":"a@example.com","phone":"+441234567"}],"language":"fr","max_participants":100}`))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(u.OwnerUUIDs, []string{other.UUID}) {
		t.Errorf("owners after update %v, want only the caller", u.OwnerUUIDs)
	}
	if u.ValidSince == nil || !u.ValidSince.Equal(time.Date(2030, 5, 1, 8, 0, 0, 0, time.UTC)) || u.ValidSince.Location() != time.UTC {
		t.Errorf("valid_since %v", u.ValidSince)
	}
	if u.Name != "m" || u.Language != "fr" || len(u.Participants) != 1 || u.Exten != m.Exten || u.GuestPassword != m.GuestPassword {
		t.Errorf("update result %+v", u)
	}
	if !reflect.DeepEqual(u.ExpiresAt, m.ExpiresAt) {
		t.Errorf("expires_at moved on update: %v -> %v", m.ExpiresAt, u.ExpiresAt)
	}
	// Clearing with null.
	u, err = b.UpdateMeeting(other, m.UUID, meetingIn(t, `{"valid_since":null,"participants":null}`))
	if err != nil || u.ValidSince != nil || len(u.Participants) != 0 {
		t.Errorf("null did not clear: %+v %v", u, err)
	}

	// Delete: gone from memory and store, room removed.
	h.reset()
	h.checkUnlocked(t, b)
	if err := b.DeleteMeeting(other.UUID, m.UUID); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Meeting(m.UUID); ok {
		t.Error("meeting still there")
	}
	if _, ok := storedMeeting(t, st, m.UUID); ok {
		t.Error("meeting still stored")
	}
	if h.count("end", m.Exten, true) != 1 {
		t.Errorf("EndRoom(%s, true) not called: %+v", m.Exten, h.all())
	}
	if _, _, ok := b.GuestAccount(m.GuestUser); ok || b.IsMeetingRoom(m.Exten) {
		t.Error("guest account or room still known")
	}
	wantKind(t, b.DeleteMeeting(other.UUID, m.UUID), NotFound, "")
}

// ---------------------------------------------------------------------------
// Persistence.

func TestPersistenceRoundTrip(t *testing.T) {
	st := store.NewMemory()
	cfg := testConfig()
	b1, err := New(cfg, st, nil, newHooks())
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	u1, tok1 := mustUser(t, b1, `{"username":"ann","email":"ann@example.com","mobile_phone":"+33612345678","landline":"+33123456789","alias":"Ann","role":"admin","capabilities":["meetings","sip"]}`)
	u2, tok2 := mustUser(t, b1, `{"username":"bob","capabilities":["meetings"]}`)
	if _, ok := b1.Authenticate(tok1); !ok { // sets last_login
		t.Fatal("token does not authenticate")
	}
	timer := time.Now().Add(30 * 24 * time.Hour).Unix()
	m1 := mustMeeting(t, b1, u1, `{"name":"Board","require_authorization":true,"valid_since":"2030-01-01T09:00:00Z","valid_until":"2030-01-01T10:00:00Z","language":"fr","participants":[{"name":"Zoé","email":"z@example.com","phone":"+4915112345678"}],"max_participants":10,"sip_dialin":false,"lobby":{"state":1,"timer":`+strconv.FormatInt(timer, 10)+`}}`)
	m2 := mustMeeting(t, b1, u2, `{"name":"Standup","persistent":true,"owner_uuids":["`+u1.UUID+`"]}`)
	a1, err := b1.RequestAuthorization(NewUUID(), m1.UUID, "Guest One")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := b1.RequestAuthorization(NewUUID(), m1.UUID, "Guest Two")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b1.Decide(u1.UUID, m1.UUID, a2.UUID, false); err != nil {
		t.Fatal(err)
	}
	a3, err := b1.RequestAuthorization(NewUUID(), m2.UUID, "Guest Three")
	if err != nil {
		t.Fatal(err)
	}
	if err := b1.SetIngress("https://meet.example.com/base"); err != nil {
		t.Fatal(err)
	}
	p1, err := b1.PublicRoom("town-hall_1")
	if err != nil {
		t.Fatal(err)
	}
	b1.Close()

	snap := mustLoad(t, st)
	for _, d := range snap.Docs {
		for _, secret := range []string{tok1, tok2} {
			if strings.Contains(string(d.Body), secret) {
				t.Fatalf("a bearer token is stored in clear in %s %s", d.Kind, d.ID)
			}
		}
	}
	h2 := newHooks()
	b2, err := New(cfg, st, snap.Docs, h2)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()

	// Every restored room is opened, once, and none is ended.
	for _, room := range []string{m1.Exten, m2.Exten, p1.Room} {
		if h2.count("open", room, false) != 1 {
			t.Errorf("OpenRoom(%s) not called once at restore: %+v", room, h2.all())
		}
	}
	if c := h2.all(); len(c) != 3 {
		t.Errorf("hooks at restore: %+v, want the three OpenRoom", c)
	}

	// Users, with last_login, and tokens by hash.
	wantUsers := b1.Users()
	if got := b2.Users(); !reflect.DeepEqual(got, wantUsers) {
		t.Errorf("users after restart:\n got %+v\nwant %+v", got, wantUsers)
	}
	if wantUsers[0].LastLogin == nil {
		t.Error("last_login was not kept")
	}
	for tok, want := range map[string]string{tok1: u1.UUID, tok2: u2.UUID} {
		if u, ok := b2.Authenticate(tok); !ok || u.UUID != want {
			t.Errorf("token of %s does not authenticate after restart", want)
		}
	}
	if _, ok := b2.Authenticate(strings.Repeat("a", 40)); ok {
		t.Error("a wrong token authenticates after restart")
	}

	// Meetings, every field.
	for _, id := range []string{m1.UUID, m2.UUID} {
		want, _ := b1.Meeting(id)
		got, ok := b2.Meeting(id)
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("meeting after restart:\n got %+v\nwant %+v", got, want)
		}
		if room, pw, ok := b2.GuestAccount(want.GuestUser); !ok || room != want.Exten || pw != want.GuestPassword {
			t.Errorf("guest credentials lost for %s", id)
		}
		if !b2.IsMeetingRoom(want.Exten) {
			t.Errorf("room %s not known after restart", want.Exten)
		}
	}
	if got, _ := b2.Meeting(m1.UUID); got.ExpiresAt == nil || !got.ExpiresAt.Equal(m1.ExpiresAt.UTC()) ||
		got.Lobby.Timer == nil || *got.Lobby.Timer != timer || got.Lobby.State != 1 {
		t.Errorf("expiry or lobby lost: %+v", got)
	}
	if g, ok := b2.GateFor(m1.Exten); !ok || g.SIPDialin || !g.LobbyOn || g.MaxParticipants != 10 || g.ValidSince.IsZero() || g.ValidUntil.IsZero() {
		t.Errorf("gate after restart %+v", g)
	}
	// A restored meeting's timers are armed (expiry of a non-persistent one).
	if !hasTimer(b2, m1.UUID) || hasTimer(b2, m2.UUID) {
		t.Errorf("timers after restart: m1 %v (want true), m2 %v (want false)", hasTimer(b2, m1.UUID), hasTimer(b2, m2.UUID))
	}

	// Authorizations.
	for _, mid := range []string{m1.UUID, m2.UUID} {
		want, err1 := b1.Authorizations(u1.UUID, mid)
		got, err2 := b2.Authorizations(u1.UUID, mid)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("authorizations of %s after restart:\n got %+v %v\nwant %+v %v", mid, got, err2, want, err1)
		}
	}
	if got, err := b2.GuestAuthorization(a1.GuestUUID, m1.UUID, a1.UUID); err != nil || got != a1 {
		t.Errorf("guest poll after restart: %+v %v", got, err)
	}
	if got, err := b2.GuestAuthorization(a3.GuestUUID, m2.UUID, a3.UUID); err != nil || got.Status != StatusAccepted {
		t.Errorf("accepted request after restart: %+v %v", got, err)
	}
	if got, _ := b2.Authorization(u1.UUID, m1.UUID, a2.UUID); got.Status != StatusRejected {
		t.Errorf("rejected request after restart: %+v", got)
	}

	// Ingress and public rooms.
	if uri, ok := b2.Ingress(); !ok || uri != "https://meet.example.com/base" {
		t.Errorf("ingress after restart %q %v", uri, ok)
	}
	if room, ok := b2.PublicRoomNumber(p1.Identifier); !ok || room != p1.Room {
		t.Errorf("public room after restart %q %v, want %q", room, ok, p1.Room)
	}
	if p, err := b2.PublicRoom(p1.Identifier); err != nil || p != p1 {
		t.Errorf("PublicRoom after restart %+v %v, want %+v", p, err, p1)
	}
}

func TestRestoreRejectsCorruptDocuments(t *testing.T) {
	for _, d := range []store.Doc{
		{Kind: kindUser, ID: "x", Body: []byte(`{"uuid":"x","token_hash":"zz"}`)},
		{Kind: kindMeeting, ID: "x", Body: []byte(`{`)},
	} {
		if _, err := New(testConfig(), store.NewMemory(), []store.Doc{d}, newHooks()); err == nil {
			t.Errorf("New accepted corrupt %s document", d.Kind)
		}
	}
	// A document of a newer build is kept aside, not an error.
	b, err := New(testConfig(), store.NewMemory(), []store.Doc{{Kind: "future", ID: "1", Body: []byte(`{}`)}}, newHooks())
	if err != nil {
		t.Fatalf("unknown kind: %v", err)
	}
	b.Close()
}

func TestStoreFailureLeavesMemoryUnchanged(t *testing.T) {
	st := &failingStore{Store: store.NewMemory()}
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	owner, _ := mustUser(t, b, `{"username":"owner","capabilities":["meetings","sip"]}`)
	co, coTok := mustUser(t, b, `{"username":"co","capabilities":["meetings"]}`)
	m := mustMeeting(t, b, owner, `{"name":"m","require_authorization":true,"owner_uuids":["`+co.UUID+`"]}`)
	solo := mustMeeting(t, b, co, `{"name":"solo"}`)
	guest := NewUUID()
	a, err := b.RequestAuthorization(guest, m.UUID, "G")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetIngress("https://a.example.com"); err != nil {
		t.Fatal(err)
	}
	p, err := b.PublicRoom("existing")
	if err != nil {
		t.Fatal(err)
	}

	type state struct {
		Users     []User
		Meetings  []Meeting
		SoloMeets []Meeting
		Auths     []Authorization
		Ingress   string
		Public    map[string]string
		Docs      []store.Doc
	}
	snapshot := func() state {
		auths, _ := b.Authorizations(owner.UUID, m.UUID)
		ing, _ := b.Ingress()
		pub := map[string]string{}
		b.mu.RLock()
		for id, pr := range b.public {
			pub[id] = pr.Room
		}
		b.mu.RUnlock()
		return state{b.Users(), b.Meetings(owner.UUID), b.Meetings(co.UUID), auths, ing, pub, mustLoad(t, st.Store).Docs}
	}
	before := snapshot()
	h.reset()
	st.fail.Store(true)

	ops := []struct {
		name string
		do   func() error
	}{
		{"CreateUser", func() error { _, _, err := b.CreateUser(userIn(t, `{"username":"new"}`)); return err }},
		{"CreateMeeting", func() error { _, err := b.CreateMeeting(owner, meetingIn(t, `{"name":"n"}`)); return err }},
		{"UpdateMeeting", func() error {
			_, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"name":"renamed","lobby":{"state":1}}`))
			return err
		}},
		{"DeleteMeeting", func() error { return b.DeleteMeeting(owner.UUID, m.UUID) }},
		{"SetLobby", func() error { _, err := b.SetLobby(owner.UUID, m.UUID, lobbyIn(1, nil)); return err }},
		{"SetSIP", func() error { _, err := b.SetSIP(owner, m.UUID, 0); return err }},
		{"DeleteUser", func() error { return b.DeleteUser(co.UUID) }},
		{"RequestAuthorization", func() error { _, err := b.RequestAuthorization(NewUUID(), m.UUID, "H"); return err }},
		{"Decide", func() error { _, err := b.Decide(owner.UUID, m.UUID, a.UUID, true); return err }},
		{"DeleteAuthorization", func() error { return b.DeleteAuthorization(owner.UUID, m.UUID, a.UUID) }},
		{"SetIngress", func() error { return b.SetIngress("https://b.example.com") }},
		{"PublicRoom", func() error { _, err := b.PublicRoom("new-room"); return err }},
	}
	for _, op := range ops {
		n := st.writes.Load()
		e := wantKind(t, op.do(), Unavailable, "")
		if !errors.Is(e, errDiskGone) {
			t.Errorf("%s: the store's error is not the cause: %v", op.name, e)
		}
		if st.writes.Load() == n {
			t.Errorf("%s: did not try to write", op.name)
		}
		if after := snapshot(); !reflect.DeepEqual(after, before) {
			t.Errorf("%s changed memory or store although the write failed:\n got %+v\nwant %+v", op.name, after, before)
		}
	}
	// A new meeting's or public room's room is opened before the Book's
	// write and ended (removed) again when that write fails; no other
	// hook is called.
	calls := h.all()
	if len(calls) != 4 {
		t.Errorf("failed writes called hooks %+v, want open and end of two rooms", calls)
	}
	for i := 0; i+1 < len(calls); i += 2 {
		o, e := calls[i], calls[i+1]
		if o.op != "open" || e.op != "end" || !e.remove || e.room != o.room {
			t.Errorf("hooks %+v, %+v: want an open room removed again", o, e)
		}
	}
	// Reading still works and the co-owner's token still authenticates.
	if _, ok := b.Authenticate(coTok); !ok {
		t.Error("token rejected while the store is down")
	}
	if _, ok := b.Meeting(solo.UUID); !ok {
		t.Error("solo meeting lost")
	}
	// The existing public room is still handed out (no write needed).
	if got, err := b.PublicRoom(p.Identifier); err != nil || got != p {
		t.Errorf("existing public room while the store is down: %+v %v", got, err)
	}

	// Back up: changes go through again.
	st.fail.Store(false)
	if _, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"name":"renamed"}`)); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// A new meeting or public room whose room the SIP side refuses (its
// store write failed) is not made: Unavailable (503 over REST), nothing
// in memory nor in the store, and the same call passes once rooms open
// again. A stored meeting whose room is refused at start-up is restored
// all the same: its first caller opens the room (issue 11, point 1).
func TestRefusedRoomChangesNothing(t *testing.T) {
	st := &failingStore{Store: store.NewMemory()}
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	h.checkUnlocked(t, b)
	owner, _ := mustUser(t, b, `{"username":"owner","capabilities":["meetings"]}`)
	m := mustMeeting(t, b, owner, `{"name":"kept"}`)
	p, err := b.PublicRoom("kept")
	if err != nil {
		t.Fatal(err)
	}
	type state struct {
		Meetings []Meeting
		Public   map[string]string
		Docs     []store.Doc
	}
	snapshot := func() state {
		pub := map[string]string{}
		b.mu.RLock()
		for id, pr := range b.public {
			pub[id] = pr.Room
		}
		b.mu.RUnlock()
		return state{b.Meetings(owner.UUID), pub, mustLoad(t, st.Store).Docs}
	}
	before := snapshot()
	h.reset()
	h.openFail.Store(true)
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"CreateMeeting", func() error { _, err := b.CreateMeeting(owner, meetingIn(t, `{"name":"new"}`)); return err }},
		{"MakePublicRoom (new)", func() error { _, _, err := b.MakePublicRoom("new"); return err }},
		{"MakePublicRoom (existing)", func() error { _, _, err := b.MakePublicRoom(p.Identifier); return err }},
	} {
		e := wantKind(t, op.do(), Unavailable, "")
		if !errors.Is(e, errRoomRefused) {
			t.Errorf("%s: the room's error is not the cause: %v", op.name, e)
		}
		if after := snapshot(); !reflect.DeepEqual(after, before) {
			t.Errorf("%s with its room refused changed memory or store:\n got %+v\nwant %+v", op.name, after, before)
		}
	}
	for _, c := range h.all() {
		if c.op != "open-refused" {
			t.Errorf("a refused room called %+v", c)
		}
	}

	// A restart while rooms are refused still restores everything.
	h2 := newHooks()
	h2.openFail.Store(true)
	b2 := newBook(t, testConfig(), st, h2)
	if got, ok := b2.Meeting(m.UUID); !ok || got.Exten != m.Exten || !b2.IsMeetingRoom(p.Room) {
		t.Fatalf("restore with rooms refused: meeting %v %q, public room %v", ok, got.Exten, b2.IsMeetingRoom(p.Room))
	}
	if n := h2.count("open-refused", m.Exten, false) + h2.count("open-refused", p.Room, false); n != 2 {
		t.Errorf("restore tried to open %d rooms, want 2: %+v", n, h2.all())
	}
	b2.Close()

	h.openFail.Store(false)
	n := mustMeeting(t, b, owner, `{"name":"new"}`)
	if h.count("open", n.Exten, false) != 1 {
		t.Errorf("the new meeting's room was not opened: %+v", h.all())
	}
	if got := b.Meetings(owner.UUID); len(got) != 2 {
		t.Errorf("meetings after the rooms came back: %d, want 2", len(got))
	}
}

// ---------------------------------------------------------------------------
// Timers.

func TestMeetingExpires(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	cfg := testConfig()
	cfg.TTL = 300 * time.Millisecond
	b := newBook(t, cfg, st, h)
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	m := mustMeeting(t, b, owner, `{"name":"short"}`)
	// creation_time is whole seconds and expires_at is creation_time +
	// TTL, so the meeting may be due as soon as it is made.
	if m.ExpiresAt == nil || !m.ExpiresAt.Equal(m.CreationTime.Add(300*time.Millisecond)) {
		t.Fatalf("expires_at %v, want creation_time + 300ms", m.ExpiresAt)
	}
	waitFor(t, 5*time.Second, "EndRoom(exten, true) at expiry", func() bool { return h.count("end", m.Exten, true) > 0 })
	c := h.find("end", m.Exten, true)
	if len(c) != 1 {
		t.Fatalf("EndRoom called %d times", len(c))
	}
	if c[0].at.Before(*m.ExpiresAt) {
		t.Errorf("ended at %v, before expires_at %v", c[0].at, *m.ExpiresAt)
	}
	if late := c[0].at.Sub(*m.ExpiresAt); late > 2*time.Second {
		t.Errorf("ended %v after expires_at", late)
	}
	if _, ok := b.Meeting(m.UUID); ok {
		t.Error("expired meeting still in memory")
	}
	if _, ok := storedMeeting(t, st, m.UUID); ok {
		t.Error("expired meeting still stored")
	}
	if b.IsMeetingRoom(m.Exten) {
		t.Error("expired room still known")
	}
}

func TestRestoredPastExpiryIsDeleted(t *testing.T) {
	st := store.NewMemory()
	cfg := testConfig()
	b1, err := New(cfg, st, nil, newHooks())
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := mustUser(t, b1, `{"username":"o","capabilities":["meetings"]}`)
	gone := mustMeeting(t, b1, owner, `{"name":"gone"}`)
	kept := mustMeeting(t, b1, owner, `{"name":"kept"}`)
	b1.Close()

	// The server was down while the expiry passed.
	sm, _ := storedMeeting(t, st, gone.UUID)
	past := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	sm.ExpiresAt = &past
	if err := st.WriteDocs(context.Background(), []store.Doc{doc(kindMeeting, sm.UUID, sm)}, nil); err != nil {
		t.Fatal(err)
	}

	h := newHooks()
	b2 := newBook(t, cfg, st, h)
	waitFor(t, 5*time.Second, "the restored, expired meeting to end", func() bool { return h.count("end", gone.Exten, true) > 0 })
	if _, ok := b2.Meeting(gone.UUID); ok {
		t.Error("expired meeting survived the restart")
	}
	waitFor(t, 5*time.Second, "the expired meeting to leave the store", func() bool {
		_, ok := storedMeeting(t, st, gone.UUID)
		return !ok
	})
	if _, ok := b2.Meeting(kept.UUID); !ok {
		t.Error("the other meeting was deleted")
	}
	if n := h.count("end", kept.Exten, true) + h.count("end", kept.Exten, false); n != 0 {
		t.Error("the other meeting's room was ended")
	}
	// Opened at restore, then ended: in that order.
	calls := h.all()
	open, end := -1, -1
	for i, c := range calls {
		if c.room == gone.Exten && c.op == "open" && open < 0 {
			open = i
		}
		if c.room == gone.Exten && c.op == "end" {
			end = i
		}
	}
	if open < 0 || end < open {
		t.Errorf("want OpenRoom then EndRoom for %s: %+v", gone.Exten, calls)
	}
}

func TestValidUntilEndsCallsOnce(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	// valid_until is whole seconds: 2 s ahead, at least 1 s away.
	until := time.Now().Add(2 * time.Second).UTC().Truncate(time.Second)
	m := mustMeeting(t, b, owner, `{"name":"m","persistent":true,"valid_until":"`+until.Format(time.RFC3339)+`"}`)
	waitFor(t, 6*time.Second, "EndRoom(exten, false) at valid_until", func() bool { return h.count("end", m.Exten, false) > 0 })
	// The timer that fired re-arms nothing: a persistent meeting past its
	// valid_until has no further event, so EndRoom cannot come again.
	waitFor(t, 2*time.Second, "the fired timer to be dropped", func() bool { return !hasTimer(b, m.UUID) })
	c := h.find("end", m.Exten, false)
	if len(c) != 1 {
		t.Fatalf("EndRoom(%s, false) called %d times", m.Exten, len(c))
	}
	if c[0].at.Before(until) {
		t.Errorf("ended at %v, before valid_until %v", c[0].at, until)
	}
	if h.count("end", m.Exten, true) != 0 {
		t.Error("valid_until removed the room")
	}
	got, ok := b.Meeting(m.UUID)
	if !ok || !reflect.DeepEqual(got, m) {
		t.Errorf("meeting changed or gone after valid_until: %+v %v", got, ok)
	}
	if _, ok := storedMeeting(t, st, m.UUID); !ok {
		t.Error("meeting left the store at valid_until")
	}
}

func TestLobbyTimerLifts(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	other, _ := mustUser(t, b, `{"username":"x","capabilities":["meetings"]}`)
	m := mustMeeting(t, b, owner, `{"name":"webinar","persistent":true}`)

	_, err := b.SetLobby(other.UUID, m.UUID, lobbyIn(1, nil))
	wantKind(t, err, Forbidden, "")
	_, err = b.SetLobby(owner.UUID, NewUUID(), lobbyIn(1, nil))
	wantKind(t, err, NotFound, "")
	_, err = b.SetLobby(owner.UUID, m.UUID, LobbyInput{})
	wantKind(t, err, Invalid, "state")
	_, err = b.SetLobby(owner.UUID, m.UUID, lobbyIn(3, nil))
	wantKind(t, err, Invalid, "state")
	past := time.Now().Unix()
	_, err = b.SetLobby(owner.UUID, m.UUID, lobbyIn(1, &past))
	wantKind(t, err, Invalid, "timer")

	// Timers are whole Unix seconds and must be after the current one;
	// +2 keeps the check from racing the second boundary.
	timer := time.Now().Unix() + 2
	got, err := b.SetLobby(owner.UUID, m.UUID, lobbyIn(1, &timer))
	if err != nil {
		t.Fatal(err)
	}
	if got.Lobby.State != 1 || got.Lobby.Timer == nil || *got.Lobby.Timer != timer || !b.LobbyOn(m.Exten) {
		t.Fatalf("lobby after SetLobby %+v", got.Lobby)
	}
	if sm, _ := storedMeeting(t, st, m.UUID); sm.Lobby.State != 1 {
		t.Fatal("lobby not stored")
	}
	waitFor(t, 5*time.Second, "LobbyLifted at the lobby timer", func() bool { return h.count("lifted", m.Exten, false) > 0 })
	c := h.find("lifted", m.Exten, false)
	if len(c) != 1 || c[0].at.Before(time.Unix(timer, 0)) {
		t.Errorf("LobbyLifted %+v, want once, not before %v", c, time.Unix(timer, 0))
	}
	got, _ = b.Meeting(m.UUID)
	if got.Lobby.State != 0 || got.Lobby.Timer != nil || b.LobbyOn(m.Exten) {
		t.Errorf("lobby after the timer %+v", got.Lobby)
	}
	if sm, _ := storedMeeting(t, st, m.UUID); sm.Lobby.State != 0 || sm.Lobby.Timer != nil {
		t.Errorf("stored lobby after the timer %+v", sm.Lobby)
	}

	// Lifting by hand calls LobbyLifted at once; state 0 drops a timer.
	h.reset()
	h.checkUnlocked(t, b) // no timer left to race the check
	if _, err := b.SetLobby(owner.UUID, m.UUID, lobbyIn(1, nil)); err != nil {
		t.Fatal(err)
	}
	if h.count("lifted", m.Exten, false) != 0 {
		t.Error("turning the lobby on lifted it")
	}
	far := time.Now().Unix() + 3600
	got, err = b.SetLobby(owner.UUID, m.UUID, lobbyIn(0, &far))
	if err != nil || got.Lobby.State != 0 || got.Lobby.Timer != nil {
		t.Fatalf("state 0 with timer: %+v %v", got.Lobby, err)
	}
	if h.count("lifted", m.Exten, false) != 1 {
		t.Errorf("SetLobby 1 -> 0 did not lift once: %+v", h.all())
	}
	// The same through a meeting update.
	if _, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"lobby":{"state":1}}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"lobby":{"state":0}}`)); err != nil {
		t.Fatal(err)
	}
	if h.count("lifted", m.Exten, false) != 2 {
		t.Errorf("UpdateMeeting lobby 1 -> 0 did not lift: %+v", h.all())
	}
}

func TestPersistentToggling(t *testing.T) {
	clk := testutil.NewClock(time.Now())
	cfg := testConfig()
	cfg.Now = clk.Now
	st := store.NewMemory()
	b := newBook(t, cfg, st, newHooks())
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	m := mustMeeting(t, b, owner, `{"name":"m"}`)
	want := m.CreationTime.Add(time.Hour)
	if m.ExpiresAt == nil || !m.ExpiresAt.Equal(want) {
		t.Fatalf("expires_at %v, want %v", m.ExpiresAt, want)
	}
	// Later, the meeting is made persistent then not again: the expiry
	// is counted from creation, not from the change.
	clk.Add(20 * time.Minute)
	p, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"persistent":true}`))
	if err != nil || !p.Persistent || p.ExpiresAt != nil {
		t.Fatalf("persistent true: %+v %v", p, err)
	}
	if sm, _ := storedMeeting(t, st, m.UUID); sm.ExpiresAt != nil {
		t.Error("stored expires_at not cleared")
	}
	if hasTimer(b, m.UUID) {
		t.Error("a persistent meeting still has an expiry timer")
	}
	// Other updates leave a persistent meeting without expiry.
	if p, _ = b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"name":"renamed"}`)); p.ExpiresAt != nil {
		t.Error("update of a persistent meeting set expires_at")
	}
	clk.Add(20 * time.Minute)
	n, err := b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"persistent":false}`))
	if err != nil || n.Persistent || n.ExpiresAt == nil || !n.ExpiresAt.Equal(want) {
		t.Fatalf("persistent false: expires_at %v (err %v), want creation + TTL %v", n.ExpiresAt, err, want)
	}
	if sm, _ := storedMeeting(t, st, m.UUID); sm.ExpiresAt == nil || !sm.ExpiresAt.Equal(want) {
		t.Error("stored expires_at wrong")
	}
	// Non-persistent again, with a later update: the expiry stays put.
	clk.Add(10 * time.Minute)
	if n, _ = b.UpdateMeeting(owner, m.UUID, meetingIn(t, `{"persistent":false,"name":"again"}`)); n.ExpiresAt == nil || !n.ExpiresAt.Equal(want) {
		t.Errorf("expires_at moved to %v", n.ExpiresAt)
	}
	// Created persistent: no expiry.
	q := mustMeeting(t, b, owner, `{"name":"q","persistent":true}`)
	if q.ExpiresAt != nil {
		t.Errorf("persistent meeting created with expires_at %v", q.ExpiresAt)
	}
}

// ---------------------------------------------------------------------------
// Users and their meetings.

func TestDeleteUser(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	b := newBook(t, testConfig(), st, h)
	u1, tok1 := mustUser(t, b, `{"username":"u1","capabilities":["meetings"]}`)
	u2, tok2 := mustUser(t, b, `{"username":"u2","capabilities":["meetings"]}`)
	sole := mustMeeting(t, b, u1, `{"name":"sole","require_authorization":true}`)
	shared := mustMeeting(t, b, u1, `{"name":"shared","owner_uuids":["`+u2.UUID+`"]}`)
	theirs := mustMeeting(t, b, u2, `{"name":"theirs"}`)
	a, err := b.RequestAuthorization(NewUUID(), sole.UUID, "G")
	if err != nil {
		t.Fatal(err)
	}
	h.reset()
	h.checkUnlocked(t, b)

	if err := b.DeleteUser(u1.UUID); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.User(u1.UUID); ok {
		t.Error("user still there")
	}
	if _, ok := b.Authenticate(tok1); ok {
		t.Error("deleted user's token still authenticates")
	}
	if _, ok := b.Authenticate(tok2); !ok {
		t.Error("other user's token rejected")
	}
	if _, ok := b.Meeting(sole.UUID); ok {
		t.Error("solely owned meeting not deleted")
	}
	if h.count("end", sole.Exten, true) != 1 {
		t.Errorf("EndRoom(%s, true) not called once: %+v", sole.Exten, h.all())
	}
	if _, _, ok := b.GuestAccount(sole.GuestUser); ok {
		t.Error("deleted meeting's guest account still works")
	}
	if _, err := b.GuestAuthorization(a.GuestUUID, sole.UUID, a.UUID); err == nil {
		t.Error("deleted meeting's authorization still there")
	}
	got, ok := b.Meeting(shared.UUID)
	if !ok || !reflect.DeepEqual(got.OwnerUUIDs, []string{u2.UUID}) {
		t.Errorf("shared meeting after DeleteUser: %+v %v", got.OwnerUUIDs, ok)
	}
	if h.count("end", shared.Exten, true)+h.count("end", shared.Exten, false)+h.count("end", theirs.Exten, true) != 0 {
		t.Error("a meeting that survives had its room ended")
	}
	if got, _ := b.Meeting(theirs.UUID); !reflect.DeepEqual(got, theirs) {
		t.Error("unrelated meeting changed")
	}
	// The store agrees: a Book rebuilt from it sees the same.
	b2 := newBook(t, testConfig(), st, newHooks())
	if len(b2.Users()) != 1 || len(b2.Meetings(u2.UUID)) != 2 || len(mustLoad(t, st).Docs) != 3 {
		t.Errorf("store after DeleteUser: users %d, meetings %d, docs %d (want 1, 2, 3)",
			len(b2.Users()), len(b2.Meetings(u2.UUID)), len(mustLoad(t, st).Docs))
	}
	if sm, _ := storedMeeting(t, st, shared.UUID); !reflect.DeepEqual(sm.OwnerUUIDs, []string{u2.UUID}) {
		t.Errorf("stored owners %v", sm.OwnerUUIDs)
	}
	wantKind(t, b.DeleteUser(u1.UUID), NotFound, "")
}

// ---------------------------------------------------------------------------
// Guest authorizations.

func TestAuthorizations(t *testing.T) {
	clk := testutil.NewClock(time.Now())
	cfg := testConfig()
	cfg.Now = clk.Now
	st := store.NewMemory()
	b := newBook(t, cfg, st, newHooks())
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	other, _ := mustUser(t, b, `{"username":"x","capabilities":["meetings"]}`)
	open := mustMeeting(t, b, owner, `{"name":"open","persistent":true}`)
	gated := mustMeeting(t, b, owner, `{"name":"gated","persistent":true,"require_authorization":true}`)

	t.Run("input", func(t *testing.T) {
		_, err := b.RequestAuthorization("not-a-uuid", gated.UUID, "G")
		wantKind(t, err, Invalid, "guest_uuid")
		_, err = b.RequestAuthorization(NewUUID(), gated.UUID, "")
		wantKind(t, err, Invalid, "guest_name")
		_, err = b.RequestAuthorization(NewUUID(), gated.UUID, strings.Repeat("g", 129))
		wantKind(t, err, Invalid, "guest_name")
		_, err = b.RequestAuthorization(NewUUID(), NewUUID(), "G")
		wantKind(t, err, NotFound, "")
	})

	t.Run("auto accept", func(t *testing.T) {
		a, err := b.RequestAuthorization(NewUUID(), open.UUID, "G")
		if err != nil || a.Status != StatusAccepted {
			t.Fatalf("request on an open meeting: %+v %v", a, err)
		}
		p, err := b.RequestAuthorization(NewUUID(), gated.UUID, "G")
		if err != nil || p.Status != StatusPending {
			t.Fatalf("request on a gated meeting: %+v %v", p, err)
		}
		d, err := b.Decide(owner.UUID, gated.UUID, p.UUID, true)
		if err != nil || d.Status != StatusAccepted {
			t.Fatalf("accept: %+v %v", d, err)
		}
		if _, err := b.Decide(other.UUID, gated.UUID, p.UUID, false); err == nil {
			t.Error("a non-owner decided")
		}
		if err := b.DeleteAuthorization(owner.UUID, gated.UUID, p.UUID); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Authorization(owner.UUID, gated.UUID, p.UUID); err == nil {
			t.Error("deleted authorization still there")
		}
	})

	t.Run("guest sees only their own", func(t *testing.T) {
		ga, gb := NewUUID(), NewUUID()
		a, err := b.RequestAuthorization(ga, gated.UUID, "A")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := b.GuestAuthorization(ga, gated.UUID, a.UUID); err != nil || got != a {
			t.Fatalf("own request: %+v %v", got, err)
		}
		_, err = b.GuestAuthorization(gb, gated.UUID, a.UUID)
		wantKind(t, err, NotFound, "")
		_, err = b.GuestAuthorization(ga, open.UUID, a.UUID)
		wantKind(t, err, NotFound, "")
		_, err = b.Authorizations(other.UUID, gated.UUID)
		wantKind(t, err, NotFound, "")
		_, err = b.Authorization(owner.UUID, open.UUID, a.UUID)
		wantKind(t, err, NotFound, "")
	})

	t.Run("quota", func(t *testing.T) {
		m := mustMeeting(t, b, owner, `{"name":"busy","persistent":true,"require_authorization":true}`)
		var first Authorization
		for i := range MaxPendingAuthorizations {
			a, err := b.RequestAuthorization(NewUUID(), m.UUID, "G"+strconv.Itoa(i))
			if err != nil {
				t.Fatalf("request %d: %v", i+1, err)
			}
			if i == 0 {
				first = a
			}
		}
		_, err := b.RequestAuthorization(NewUUID(), m.UUID, "one too many")
		wantKind(t, err, Quota, "")
		if list, _ := b.Authorizations(owner.UUID, m.UUID); len(list) != MaxPendingAuthorizations {
			t.Errorf("%d requests listed, want %d", len(list), MaxPendingAuthorizations)
		}
		// Only pending requests count.
		if _, err := b.Decide(owner.UUID, m.UUID, first.UUID, false); err != nil {
			t.Fatal(err)
		}
		if _, err := b.RequestAuthorization(NewUUID(), m.UUID, "room again"); err != nil {
			t.Errorf("after a decision: %v", err)
		}
		_, err = b.RequestAuthorization(NewUUID(), m.UUID, "full again")
		wantKind(t, err, Quota, "")
		// Expired requests do not count either.
		clk.Add(AuthorizationTTL)
		if _, err := b.RequestAuthorization(NewUUID(), m.UUID, "next day"); err != nil {
			t.Errorf("after the requests expired: %v", err)
		}
	})

	t.Run("expiry", func(t *testing.T) {
		m := mustMeeting(t, b, owner, `{"name":"slow","persistent":true,"require_authorization":true}`)
		g := NewUUID()
		a, err := b.RequestAuthorization(g, m.UUID, "G")
		if err != nil {
			t.Fatal(err)
		}
		clk.Add(AuthorizationTTL - time.Second)
		if list, _ := b.Authorizations(owner.UUID, m.UUID); len(list) != 1 {
			t.Fatalf("just under 24 h: %d listed, want 1", len(list))
		}
		if _, err := b.GuestAuthorization(g, m.UUID, a.UUID); err != nil {
			t.Fatalf("just under 24 h: %v", err)
		}
		clk.Add(time.Second)
		if list, _ := b.Authorizations(owner.UUID, m.UUID); len(list) != 0 {
			t.Errorf("after 24 h: %d listed, want 0", len(list))
		}
		_, err = b.GuestAuthorization(g, m.UUID, a.UUID)
		wantKind(t, err, NotFound, "")
		_, err = b.Authorization(owner.UUID, m.UUID, a.UUID)
		wantKind(t, err, NotFound, "")
		_, err = b.Decide(owner.UUID, m.UUID, a.UUID, true)
		wantKind(t, err, NotFound, "")
		// The next request on the meeting purges it from the store.
		if _, ok := storedDoc(t, st, kindAuthorization, a.UUID); !ok {
			t.Fatal("expired request vanished from the store before the purge")
		}
		if _, err := b.RequestAuthorization(NewUUID(), m.UUID, "H"); err != nil {
			t.Fatal(err)
		}
		if _, ok := storedDoc(t, st, kindAuthorization, a.UUID); ok {
			t.Error("expired request still stored after the purge")
		}
	})
}

// TestAuthorizationCaps: every live request counts (accepted and rejected
// ones too: each is a stored row), per meeting and per guest; a refused
// request stores nothing; the indexes follow deletions and expiry.
func TestAuthorizationCaps(t *testing.T) {
	clk := testutil.NewClock(time.Now())
	cfg := testConfig()
	cfg.Now = clk.Now
	cfg.MaxAuthorizations = 4
	cfg.MaxAuthorizationsPerGuest = 2
	st := store.NewMemory()
	b := newBook(t, cfg, st, newHooks())
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	open := mustMeeting(t, b, owner, `{"name":"open","persistent":true}`)
	other := mustMeeting(t, b, owner, `{"name":"other","persistent":true}`)

	var first Authorization
	for i := range 4 {
		a, err := b.RequestAuthorization(NewUUID(), open.UUID, "G")
		if err != nil || a.Status != StatusAccepted {
			t.Fatalf("request %d: %+v %v", i+1, a, err)
		}
		if i == 0 {
			first = a
		}
	}
	docs := len(mustLoad(t, st).Docs)
	_, err := b.RequestAuthorization(NewUUID(), open.UUID, "one too many")
	wantKind(t, err, Limited, "")
	if n := len(mustLoad(t, st).Docs); n != docs {
		t.Fatalf("a refused request changed the store: %d documents, want %d", n, docs)
	}
	// Deleting one frees its place.
	if err := b.DeleteAuthorization(owner.UUID, open.UUID, first.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RequestAuthorization(NewUUID(), open.UUID, "G"); err != nil {
		t.Fatalf("after a deletion: %v", err)
	}

	// Per guest, over meetings.
	g := NewUUID()
	if _, err := b.RequestAuthorization(g, other.UUID, "G"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RequestAuthorization(g, other.UUID, "G"); err != nil {
		t.Fatal(err)
	}
	_, err = b.RequestAuthorization(g, other.UUID, "G")
	wantKind(t, err, Limited, "")

	// After 24 h none is live: room again, and the expired ones leave the
	// store and the indexes.
	clk.Add(AuthorizationTTL)
	if _, err := b.RequestAuthorization(g, open.UUID, "G"); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	b.mu.RLock()
	nOpen, nGuest, nAll := len(b.authsOf[open.UUID]), len(b.authsBy[g]), len(b.auths)
	b.mu.RUnlock()
	if nOpen != 1 || nGuest != 1 {
		t.Errorf("indexes after the purge: %d of the meeting, %d of the guest; want 1 and 1", nOpen, nGuest)
	}
	// The guest's expired requests on the other meeting went too.
	if nAll != 1 {
		t.Errorf("%d requests in memory, want 1", nAll)
	}
	if _, err := b.RequestAuthorization(NewUUID(), other.UUID, "G"); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteMeeting(owner.UUID, other.UUID); err != nil {
		t.Fatal(err)
	}
	b.mu.RLock()
	_, ofOther := b.authsOf[other.UUID]
	nAll = len(b.auths)
	b.mu.RUnlock()
	if ofOther || nAll != 1 {
		t.Errorf("a deleted meeting's requests are still indexed (%v) or kept (%d in memory, want 1)", ofOther, nAll)
	}
}

// ---------------------------------------------------------------------------
// SIP dial-in switch.

func TestSetSIP(t *testing.T) {
	b := newBook(t, testConfig(), nil, newHooks())
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings","sip"]}`)
	nosip, _ := mustUser(t, b, `{"username":"n","capabilities":["meetings"]}`)
	stranger, _ := mustUser(t, b, `{"username":"s","capabilities":["meetings","sip"]}`)
	m := mustMeeting(t, b, owner, `{"name":"m","persistent":true,"owner_uuids":["`+nosip.UUID+`"]}`)

	_, err := b.SetSIP(owner, NewUUID(), 0)
	wantKind(t, err, NotFound, "")
	_, err = b.SetSIP(stranger, m.UUID, 0)
	wantKind(t, err, Forbidden, "")
	_, err = b.SetSIP(nosip, m.UUID, 0)
	wantKind(t, err, Unauthorized, "")
	// The meeting routes do not bypass the capability: a sip_dialin in a
	// creation or an update that would change it (the default is on), or
	// a null, needs it too.
	for _, body := range []string{`{"name":"x","sip_dialin":false}`, `{"name":"x","sip_dialin":null}`} {
		_, err = b.CreateMeeting(nosip, meetingIn(t, body))
		wantKind(t, err, Unauthorized, "sip_dialin")
		_, err = b.UpdateMeeting(nosip, m.UUID, meetingIn(t, body))
		wantKind(t, err, Unauthorized, "sip_dialin")
	}
	// The value it already has may be sent back (a meeting read with GET
	// and PUT back whole).
	if _, err := b.UpdateMeeting(nosip, m.UUID, meetingIn(t, `{"sip_dialin":true}`)); err != nil {
		t.Errorf("an update repeating sip_dialin true: %v", err)
	}
	if len(b.Meetings(nosip.UUID)) != 1 {
		t.Error("a refused creation made a meeting")
	}
	if g, _ := b.Meeting(m.UUID); !g.SIPDialin || g.Name != "m" {
		t.Errorf("a refused update changed the meeting: %+v", g)
	}
	if _, err := b.UpdateMeeting(nosip, m.UUID, meetingIn(t, `{"name":"renamed"}`)); err != nil {
		t.Errorf("an update without sip_dialin: %v", err)
	}
	if _, err := b.CreateMeeting(owner, meetingIn(t, `{"name":"y","sip_dialin":false}`)); err != nil {
		t.Errorf("creation with sip_dialin by a user with the capability: %v", err)
	}
	for _, s := range []int{1, 2, -1} { // 1: already on
		_, err = b.SetSIP(owner, m.UUID, s)
		wantKind(t, err, Invalid, "state")
	}
	got, err := b.SetSIP(owner, m.UUID, 0)
	if err != nil || got.SIPDialin {
		t.Fatalf("state 0: %+v %v", got, err)
	}
	if g, _ := b.GateFor(m.Exten); g.SIPDialin {
		t.Error("gate still lets SIP in")
	}
	_, err = b.SetSIP(owner, m.UUID, 0)
	wantKind(t, err, Invalid, "state")
	if got, err = b.SetSIP(owner, m.UUID, 1); err != nil || !got.SIPDialin {
		t.Fatalf("state 1: %+v %v", got, err)
	}

	// The server's switch off: 412 whatever the meeting.
	cfg := testConfig()
	cfg.SIPDialin = false
	b2 := newBook(t, cfg, nil, newHooks())
	o2, _ := mustUser(t, b2, `{"username":"o","capabilities":["meetings","sip"]}`)
	m2 := mustMeeting(t, b2, o2, `{"name":"m","persistent":true}`)
	_, err = b2.SetSIP(o2, m2.UUID, 0)
	wantKind(t, err, Precondition, "")
	if g, _ := b2.GateFor(m2.Exten); g.SIPDialin {
		t.Error("gate lets SIP in although the server's sip_dialin is off")
	}
}

// ---------------------------------------------------------------------------
// Room numbers.

func TestExtenAvoidsTakenRooms(t *testing.T) {
	for _, digits := range []int{0, 4} { // 0: the default, 8
		t.Run("digits="+strconv.Itoa(digits), func(t *testing.T) {
			h := newHooks()
			// Four numbers in five are taken by SEMS rooms (100 draws
			// then all fail with probability 0.8^100).
			h.taken = func(room string) bool { d := room[len(room)-1]; return d != '0' && d != '1' }
			cfg := testConfig()
			cfg.ExtenDigits = digits
			want := digits
			if want == 0 {
				want = 8
			}
			b := newBook(t, cfg, nil, h)
			owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
			seen := map[string]bool{}
			check := func(n string) {
				t.Helper()
				if len(n) != want || n[0] == '0' || !allDigits(n) {
					t.Errorf("room number %q: want %d digits, first not 0", n, want)
				}
				h.mu.Lock()
				taken, asked := h.asked[n]
				h.mu.Unlock()
				if !asked || taken {
					t.Errorf("room number %q handed out (asked %v, taken %v)", n, asked, taken)
				}
				if seen[n] {
					t.Errorf("room number %q handed out twice", n)
				}
				seen[n] = true
			}
			for i := range 30 {
				check(mustMeeting(t, b, owner, `{"name":"m`+strconv.Itoa(i)+`","persistent":true}`).Exten)
				p, err := b.PublicRoom("p" + strconv.Itoa(i))
				if err != nil {
					t.Fatal(err)
				}
				check(p.Room)
			}
			h.mu.Lock()
			n := len(h.asked)
			h.mu.Unlock()
			if n <= len(seen) {
				t.Errorf("RoomTaken asked about %d numbers for %d rooms: the taken ones were not drawn", n, len(seen))
			}
		})
	}
}

func TestExtenUniqueAndExhausted(t *testing.T) {
	// One digit: nine numbers. Meetings and public rooms never share one.
	h := newHooks()
	cfg := testConfig()
	cfg.ExtenDigits = 1
	b := newBook(t, cfg, nil, h)
	owner, _ := mustUser(t, b, `{"username":"o","capabilities":["meetings"]}`)
	seen := map[string]bool{}
	for i := range 4 {
		m := mustMeeting(t, b, owner, `{"name":"m","persistent":true}`)
		p, err := b.PublicRoom("p" + strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []string{m.Exten, p.Room} {
			if seen[n] || n == "0" || len(n) != 1 {
				t.Fatalf("room number %q reused or wrong", n)
			}
			seen[n] = true
		}
	}

	// Every number taken: no room, nothing stored, no hook.
	st := store.NewMemory()
	h2 := newHooks()
	h2.taken = func(string) bool { return true }
	b2 := newBook(t, cfg, st, h2)
	o2, _ := mustUser(t, b2, `{"username":"o","capabilities":["meetings"]}`)
	docs := len(mustLoad(t, st).Docs)
	_, err := b2.CreateMeeting(o2, meetingIn(t, `{"name":"m"}`))
	wantKind(t, err, Unavailable, "")
	_, err = b2.PublicRoom("p")
	wantKind(t, err, Unavailable, "")
	if len(mustLoad(t, st).Docs) != docs || len(b2.Meetings(o2.UUID)) != 0 {
		t.Error("a failed allocation left something behind")
	}
	for _, c := range h2.all() {
		if c.op == "open" {
			t.Errorf("OpenRoom called without a room number: %+v", c)
		}
	}
}

// ---------------------------------------------------------------------------
// Public rooms.

func TestPublicRooms(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	cfg := testConfig()
	cfg.MaxPublicRooms = 2
	b := newBook(t, cfg, st, h)

	for _, bad := range []string{"", "a b", "a/b", "é", "a.b", strings.Repeat("x", 65), "x\n"} {
		_, err := b.PublicRoom(bad)
		wantKind(t, err, Invalid, "identifier")
	}
	if len(h.all()) != 0 || len(mustLoad(t, st).Docs) != 0 {
		t.Fatal("bad identifiers made rooms")
	}

	id := strings.Repeat("A", 63) + "_"
	p1, err := b.PublicRoom(id)
	if err != nil {
		t.Fatal(err)
	}
	if p1.Identifier != id || len(p1.Room) != 8 || !allDigits(p1.Room) || p1.Created.IsZero() {
		t.Fatalf("public room %+v", p1)
	}
	again, err := b.PublicRoom(id)
	if err != nil || again != p1 {
		t.Fatalf("same identifier gave %+v %v, want %+v", again, err, p1)
	}
	// Opened both times: SEMS may have dropped it in between.
	if h.count("open", p1.Room, false) != 2 {
		t.Errorf("OpenRoom(%s) calls: %+v", p1.Room, h.all())
	}
	if room, ok := b.PublicRoomNumber(id); !ok || room != p1.Room || !b.IsMeetingRoom(p1.Room) {
		t.Error("public room not known by number")
	}
	p2, err := b.PublicRoom("second-room")
	if err != nil || p2.Room == p1.Room {
		t.Fatalf("second room %+v %v", p2, err)
	}
	_, err = b.PublicRoom("third")
	wantKind(t, err, Unavailable, "")
	if _, ok := b.PublicRoomNumber("third"); ok {
		t.Error("the refused room exists")
	}
	// The cap does not stop existing rooms.
	if got, err := b.PublicRoom("second-room"); err != nil || got != p2 {
		t.Errorf("existing room at the cap: %+v %v", got, err)
	}
	if _, ok := storedDoc(t, st, kindPublicRoom, id); !ok {
		t.Error("public room not stored")
	}
}

// TestPublicRoomInfoStoresNothing: asking about an identifier makes no
// room, however many are asked for.
func TestPublicRoomInfoStoresNothing(t *testing.T) {
	st := store.NewMemory()
	h := newHooks()
	cfg := testConfig()
	cfg.MaxPublicRooms = 2
	b := newBook(t, cfg, st, h)
	for i := range 10 {
		if _, open, err := b.PublicRoomInfo("id-" + strconv.Itoa(i)); err != nil || open {
			t.Fatalf("PublicRoomInfo %d: open %v err %v", i, open, err)
		}
	}
	_, _, err := b.PublicRoomInfo("a.b")
	wantKind(t, err, Invalid, "identifier")
	if len(h.all()) != 0 || len(mustLoad(t, st).Docs) != 0 || b.Counts().PublicRooms != 0 {
		t.Fatal("asking made rooms")
	}
	p, created, err := b.MakePublicRoom("id-1")
	if err != nil || !created {
		t.Fatalf("MakePublicRoom: %+v %v %v", p, created, err)
	}
	if got, open, err := b.PublicRoomInfo("id-1"); err != nil || !open || got != p {
		t.Fatalf("PublicRoomInfo of the open room: %+v %v %v, want %+v", got, open, err, p)
	}
	if _, created, err := b.MakePublicRoom("id-1"); err != nil || created {
		t.Fatalf("second MakePublicRoom: created %v err %v", created, err)
	}
}

// TestPublicRoomExpiry: an empty public room goes public_room_ttl after
// its last call (not while a call is in it), from memory, the store and
// the SIP side; after a restart too. The clock is the Book's.
func TestPublicRoomExpiry(t *testing.T) {
	const ttl = time.Hour
	clk := testutil.NewClock(time.Now())
	st := store.NewMemory()
	h := newHooks()
	cfg := testConfig()
	cfg.Now = clk.Now
	cfg.PublicRoomTTL = ttl
	b := newBook(t, cfg, st, h)
	h.checkUnlocked(t, b)

	p, created, err := b.MakePublicRoom("team")
	if err != nil || !created {
		t.Fatal(created, err)
	}
	gone := func(b *Book, p PublicRoom) bool {
		_, ok := b.PublicRoomNumber(p.Identifier)
		_, stored := storedDoc(t, st, kindPublicRoom, p.Identifier)
		return !ok && !stored && !b.IsMeetingRoom(p.Room)
	}

	// A call in the room keeps it past the TTL.
	if !b.EnterPublicRoom(p.Room) {
		t.Fatal("EnterPublicRoom: not a public room")
	}
	clk.Add(3 * ttl)
	b.expirePublic()
	if gone(b, p) {
		t.Fatal("a public room with a call in it expired")
	}
	// The TTL runs from the last call's end.
	b.LeavePublicRoom(p.Room)
	clk.Add(ttl - time.Second)
	b.expirePublic()
	if gone(b, p) || h.count("end", p.Room, true) != 0 {
		t.Fatal("the room expired before public_room_ttl after its last call")
	}
	clk.Add(time.Second)
	b.expirePublic()
	if !gone(b, p) {
		t.Fatal("the room outlived public_room_ttl after its last call")
	}
	if h.count("end", p.Room, true) != 1 {
		t.Errorf("EndRoom(%s, true) calls: %+v", p.Room, h.all())
	}
	if b.EnterPublicRoom(p.Room) {
		t.Error("the expired room still counts calls")
	}

	// The timer is armed for it: with a short TTL it fires by itself.
	cfg2 := testConfig()
	cfg2.PublicRoomTTL = 50 * time.Millisecond
	h2 := newHooks()
	st2 := store.NewMemory()
	b2 := newBook(t, cfg2, st2, h2)
	q, _, err := b2.MakePublicRoom("quick")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the public room timer", func() bool { return h2.count("end", q.Room, true) == 1 })
	if _, ok := storedDoc(t, st2, kindPublicRoom, "quick"); ok {
		t.Error("the timer's expiry left the room stored")
	}

	// Across a restart: what is stored goes when due, before its room is
	// opened again.
	r, _, err := b.MakePublicRoom("kept")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	clk.Add(ttl)
	h3 := newHooks()
	b3 := newBook(t, cfg, st, h3)
	if _, ok := b3.PublicRoomNumber("kept"); ok {
		t.Error("a public room past its TTL was restored")
	}
	if _, ok := storedDoc(t, st, kindPublicRoom, "kept"); ok {
		t.Error("a public room past its TTL is still stored after the restart")
	}
	if h3.count("open", r.Room, false) != 0 {
		t.Errorf("the expired room was opened at start-up: %+v", h3.all())
	}
	// One not yet due is restored with its last call.
	s, _, err := b3.MakePublicRoom("young")
	if err != nil {
		t.Fatal(err)
	}
	b3.Close()
	clk.Add(ttl - time.Second)
	b4 := newBook(t, cfg, st, newHooks())
	if got, open, _ := b4.PublicRoomInfo("young"); !open || !got.LastCall.Equal(s.LastCall) {
		t.Fatalf("restored young room: %+v open %v, want last call %v", got, open, s.LastCall)
	}
}

func TestIngress(t *testing.T) {
	b := newBook(t, testConfig(), nil, newHooks())
	if _, ok := b.Ingress(); ok {
		t.Error("ingress set at start")
	}
	for _, bad := range []string{"", "ftp://x", "https://", "http://a b", "meet.example.com"} {
		wantKind(t, b.SetIngress(bad), Invalid, "uri")
	}
	if err := b.SetIngress("http://meet.example.com:8080/x"); err != nil {
		t.Fatal(err)
	}
	if uri, ok := b.Ingress(); !ok || uri != "http://meet.example.com:8080/x" {
		t.Errorf("ingress %q %v", uri, ok)
	}
}
