package meeting

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"webconf/sipapp/store"
)

// Document kinds in the store.
const (
	kindUser          = "user"
	kindMeeting       = "meeting"
	kindAuthorization = "authorization"
	kindSetting       = "setting"
	kindPublicRoom    = "public_room"
	settingIngress    = "ingress_http"
)

// Config is the [meetings] configuration the Book needs.
type Config struct {
	TTL             time.Duration // meeting_ttl
	MaxParticipants int           // the server's cap and default
	Languages       []string      // languagesTemplates[]; the first is the default
	SIPDialin       bool          // sip_dialin
	MaxPublicRooms  int           // live public rooms; 0 = no cap
	// PublicRooms lets a caller's first call to c.<identifier> make a
	// public room; PublicRoomTTL is how long an empty one lives after
	// its last call (0 = 24 h).
	PublicRooms   bool
	PublicRoomTTL time.Duration
	// MaxAuthorizations caps the live (not expired, whatever their
	// status) guest authorizations of one meeting, and
	// MaxAuthorizationsPerGuest those of one guest uuid over all
	// meetings; 0 = no cap.
	MaxAuthorizations         int
	MaxAuthorizationsPerGuest int
	ExtenDigits               int // length of allocated room numbers; 0 = 8
	Now                       func() time.Time
	Log                       *slog.Logger

	// Outbox queues invitations and reminders with each meeting change
	// (nil: none).
	Outbox Outbox
}

// Hooks are how the Book acts on the SIP side. EndRoom and LobbyLifted are
// called without the Book's lock held, after the change is stored;
// OpenRoom and RoomTaken may be called with it held (so that a room
// exists before anyone learns its number) and must not call back into the
// Book.
type Hooks interface {
	// OpenRoom makes sure the conference room exists (stored). An error
	// means it does not: the room's write was refused and nothing
	// changed.
	OpenRoom(room string) error
	// EndRoom hangs up everyone in the room (and in its lobby); with
	// remove, the room is also deleted.
	EndRoom(room string, remove bool)
	// LobbyLifted lets the callers waiting in the room's lobby in.
	LobbyLifted(room string)
	// RoomTaken reports whether a room number is already in use.
	RoomTaken(room string) bool
}

// Book is the meetings state. Safe for concurrent use.
type Book struct {
	cfg   Config
	st    store.Store
	hooks Hooks
	log   *slog.Logger

	mu       sync.RWMutex
	users    map[string]*userRec                  // by uuid
	byToken  map[[32]byte]string                  // token hash -> user uuid
	meetings map[string]*Meeting                  // by uuid
	byExten  map[string]string                    // exten -> meeting uuid
	byGuest  map[string]string                    // guest SIP user -> meeting uuid
	auths    map[string]*Authorization            // by uuid
	authsOf  map[string]map[string]*Authorization // meeting uuid -> uuid -> request
	authsBy  map[string]map[string]*Authorization // guest uuid -> uuid -> request
	public   map[string]*PublicRoom               // by identifier
	byRoom   map[string]string                    // public room number -> identifier
	pubCalls map[string]int                       // public room identifier -> calls in it
	pubTimer *time.Timer                          // the next public room expiry
	ingress  string
	timers   map[string]*time.Timer // meeting uuid -> next event
	closed   bool
}

type userRec struct {
	User
	TokenHash string `json:"token_hash"` // hex SHA-256
	// SIPPassword is the digest password of the user's phone (in clear,
	// as the guests' are: the digest check needs it). Never logged.
	SIPPassword string `json:"sip_password,omitempty"`
	saved       time.Time
}

// New restores the Book from the store's documents and arms the timers.
// Meetings whose expiry passed while the server was down are deleted at
// once (and their rooms with them).
func New(cfg Config, st store.Store, docs []store.Doc, hooks Hooks) (*Book, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.ExtenDigits <= 0 {
		cfg.ExtenDigits = 8
	}
	if len(cfg.Languages) == 0 {
		cfg.Languages = []string{"en"}
	}
	b := &Book{
		cfg: cfg, st: st, hooks: hooks, log: cfg.Log,
		users: map[string]*userRec{}, byToken: map[[32]byte]string{},
		meetings: map[string]*Meeting{}, byExten: map[string]string{}, byGuest: map[string]string{},
		auths: map[string]*Authorization{}, authsOf: map[string]map[string]*Authorization{},
		authsBy: map[string]map[string]*Authorization{}, public: map[string]*PublicRoom{}, byRoom: map[string]string{},
		pubCalls: map[string]int{},
		timers:   map[string]*time.Timer{},
	}
	for _, d := range docs {
		if err := b.restore(d); err != nil {
			return nil, fmt.Errorf("meetings: restore %s %q: %w", d.Kind, d.ID, err)
		}
	}
	if cfg.PublicRoomTTL <= 0 {
		b.cfg.PublicRoomTTL = 24 * time.Hour
	}
	// Public rooms that fell due while the server was down go before
	// their rooms are opened (a store that refuses now leaves them to
	// the first timer).
	b.mu.Lock()
	if gone, err := b.expirePublicLocked(b.cfg.Now()); err == nil {
		for _, p := range gone {
			b.log.Info("public room expired while the server was down", "identifier", p.Identifier, "room", p.Room)
		}
	}
	b.mu.Unlock()
	// A room the store refuses now does not stop the server: the meeting
	// (or public room) is stored and keeps its number, and its first
	// caller opens the room, or is refused while the store still fails.
	for _, m := range b.meetings {
		if err := hooks.OpenRoom(m.Exten); err != nil {
			b.log.Warn("meeting room not opened at start-up; its first caller opens it", "meeting", m.UUID, "room", m.Exten, "err", err)
		}
	}
	for _, p := range b.public {
		if err := hooks.OpenRoom(p.Room); err != nil {
			b.log.Warn("public room not opened at start-up; its first caller opens it", "identifier", p.Identifier, "room", p.Room, "err", err)
		}
	}
	b.mu.Lock()
	for id := range b.meetings {
		b.armLocked(id)
	}
	b.armPublicLocked()
	b.mu.Unlock()
	return b, nil
}

func (b *Book) restore(d store.Doc) error {
	if b.cfg.Outbox != nil && b.cfg.Outbox.Owns(d.Kind) {
		return b.cfg.Outbox.Restore(d)
	}
	switch d.Kind {
	case kindUser:
		var u userRec
		if err := json.Unmarshal(d.Body, &u); err != nil {
			return err
		}
		h, err := hex.DecodeString(u.TokenHash)
		if err != nil || len(h) != 32 {
			return fmt.Errorf("bad token hash")
		}
		b.users[u.UUID] = &u
		b.byToken[[32]byte(h)] = u.UUID
	case kindMeeting:
		var m Meeting
		if err := json.Unmarshal(d.Body, &m); err != nil {
			return err
		}
		b.meetings[m.UUID] = &m
		b.byExten[m.Exten] = m.UUID
		b.byGuest[m.GuestUser] = m.UUID
	case kindAuthorization:
		var a Authorization
		if err := json.Unmarshal(d.Body, &a); err != nil {
			return err
		}
		b.addAuthLocked(&a)
	case kindPublicRoom:
		var p PublicRoom
		if err := json.Unmarshal(d.Body, &p); err != nil {
			return err
		}
		if p.LastCall.IsZero() { // written before last_call existed
			p.LastCall = p.Created
		}
		b.public[p.Identifier] = &p
		b.byRoom[p.Room] = p.Identifier
	case kindSetting:
		if d.ID == settingIngress {
			b.ingress = string(d.Body)
		}
	default:
		// A newer build's document: keep it in the store, ignore it here.
		b.log.Warn("meetings: unknown document kind in the store", "kind", d.Kind)
	}
	return nil
}

// Close stops the timers.
func (b *Book) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	if b.pubTimer != nil {
		b.pubTimer.Stop()
		b.pubTimer = nil
	}
	for id, t := range b.timers {
		t.Stop()
		delete(b.timers, id)
	}
}

// Counts are the Book's sizes, for metrics.
type Counts struct {
	Users, Meetings, PendingAuthorizations, PublicRooms int
}

// Counts returns how many of each the Book holds.
func (b *Book) Counts() Counts {
	b.mu.RLock()
	defer b.mu.RUnlock()
	c := Counts{Users: len(b.users), Meetings: len(b.meetings), PublicRooms: len(b.public)}
	for _, a := range b.auths {
		if a.Status == StatusPending {
			c.PendingAuthorizations++
		}
	}
	return c
}

// ---------------------------------------------------------------------------
// Persistence.

func doc(kind, id string, v any) store.Doc {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("meetings: marshal %s: %v", kind, err)) // our own types always marshal
	}
	return store.Doc{Kind: kind, ID: id, Body: body}
}

// write stores the change; callers hold b.mu and apply the change to
// memory only when write succeeded, so memory never shows what the store
// does not have.
func (b *Book) write(put []store.Doc, del []store.DocKey) *Error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.st.WriteDocs(ctx, put, del); err != nil {
		b.log.Error("meetings: store write failed", "err", err)
		return storeFailed(err)
	}
	return nil
}

// openRoom opens the room of a meeting or public room (for a new one,
// with b.mu held, before the Book stores it); a refused room is the
// Book's Unavailable (503), and nothing has changed.
func (b *Book) openRoom(room string) *Error {
	if err := b.hooks.OpenRoom(room); err != nil {
		b.log.Error("meetings: room not opened", "room", room, "err", err)
		return &Error{Kind: Unavailable, Code: "store-unavailable", Message: "the room could not be stored", Err: err}
	}
	return nil
}

// ---------------------------------------------------------------------------
// Random identifiers and secrets.

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// secret returns n random characters from [a-z0-9] (5.17 bits each).
func secret(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, n)
	max := big.NewInt(int64(len(alphabet)))
	for i := range out {
		v, _ := rand.Int(rand.Reader, max)
		out[i] = alphabet[v.Int64()]
	}
	return string(out)
}

func hashToken(tok string) [32]byte { return sha256.Sum256([]byte(tok)) }

// newExten draws a room number that no meeting, public room or SEMS room
// uses. The first digit is never 0 so that the number reads the same to a
// person and to software that drops leading zeros.
func (b *Book) newExtenLocked() (string, *Error) {
	n := b.cfg.ExtenDigits
	lo := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n-1)), nil)
	span := new(big.Int).Sub(new(big.Int).Mul(lo, big.NewInt(10)), lo)
	for range 100 {
		v, _ := rand.Int(rand.Reader, span)
		s := v.Add(v, lo).String()
		if _, ok := b.byExten[s]; ok {
			continue
		}
		if _, ok := b.byRoom[s]; ok {
			continue
		}
		if b.hooks.RoomTaken(s) {
			continue
		}
		return s, nil
	}
	return "", &Error{Kind: Unavailable, Code: "no-room-number", Message: "no free room number"}
}

// ---------------------------------------------------------------------------
// Users.

// CreateUser adds a user and returns it with its bearer token, which is
// not kept (only its hash is).
func (b *Book) CreateUser(in UserInput) (User, string, error) {
	u, verr := newUser(in)
	if verr != nil {
		return User{}, "", verr
	}
	u.UUID = NewUUID()
	u.Created = b.cfg.Now().UTC().Truncate(time.Second)
	tok := secret(40)
	h := hashToken(tok)
	rec := &userRec{User: u, TokenHash: hex.EncodeToString(h[:]), SIPPassword: in.SIPPassword.Value}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, o := range b.users {
		if o.Username == u.Username {
			return User{}, "", &Error{Kind: Conflict, Code: "conflict", Field: "username", Message: "username: " + u.Username + " is taken"}
		}
	}
	if err := b.write([]store.Doc{doc(kindUser, u.UUID, rec)}, nil); err != nil {
		return User{}, "", err
	}
	b.users[u.UUID] = rec
	b.byToken[h] = u.UUID
	return cloneUser(u), tok, nil
}

func cloneUser(u User) User {
	u.Capabilities = slices.Clone(u.Capabilities)
	if u.LastLogin != nil {
		t := *u.LastLogin
		u.LastLogin = &t
	}
	return u
}

// UpdateUser changes a user's line, SIP password or capabilities (the
// fields given); null or "" clears a line or a password.
func (b *Book) UpdateUser(uuid string, in UserUpdate) (User, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur, ok := b.users[uuid]
	if !ok {
		return User{}, notFound("user")
	}
	rec := *cur
	rec.User = cloneUser(cur.User)
	if in.Capabilities.Set {
		caps, err := checkCaps(in.Capabilities.Value)
		if err != nil {
			return User{}, err
		}
		rec.Capabilities = caps
	}
	if in.Line.Set {
		if err := CheckLine("line", in.Line.Value); err != nil {
			return User{}, err
		}
		rec.Line = in.Line.Value
	}
	if in.SIPPassword.Set {
		if err := checkSIPPassword(in.SIPPassword.Value); err != nil {
			return User{}, err
		}
		rec.SIPPassword = in.SIPPassword.Value
	}
	if rec.SIPPassword != "" && !rec.Can(CapSIP) {
		return User{}, invalid("sip_password", "needs the sip capability")
	}
	rec.SIPAccount = rec.SIPPassword != ""
	if err := b.write([]store.Doc{doc(kindUser, uuid, &rec)}, nil); err != nil {
		return User{}, err
	}
	*cur = rec
	return cloneUser(rec.User), nil
}

// SIPAccount finds the user whose phone calls out as username, with the
// sip capability and a SIP password: the user and the password (for the
// digest check only; never logged).
func (b *Book) SIPAccount(username string) (User, string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, u := range b.users {
		if u.Username == username && u.SIPPassword != "" && u.Can(CapSIP) {
			return cloneUser(u.User), u.SIPPassword, true
		}
	}
	return User{}, "", false
}

// Users lists the users by username.
func (b *Book) Users() []User {
	b.mu.RLock()
	defer b.mu.RUnlock()
	out := make([]User, 0, len(b.users))
	for _, u := range b.users {
		out = append(out, cloneUser(u.User))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Username < out[j].Username })
	return out
}

// User returns one user.
func (b *Book) User(uuid string) (User, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	u, ok := b.users[uuid]
	if !ok {
		return User{}, false
	}
	return cloneUser(u.User), true
}

// loginSaveEvery bounds how often last_login is written: every request
// carries the token, and one store write per request would be waste.
const loginSaveEvery = time.Minute

// Authenticate finds the user whose token this is. The lookup is by the
// token's SHA-256, so its timing says nothing about the token.
func (b *Book) Authenticate(token string) (User, bool) {
	if token == "" {
		return User{}, false
	}
	h := hashToken(token)
	now := b.cfg.Now().UTC().Truncate(time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	id, ok := b.byToken[h]
	if !ok {
		return User{}, false
	}
	u := b.users[id]
	u.LastLogin = &now
	if now.Sub(u.saved) >= loginSaveEvery {
		if err := b.write([]store.Doc{doc(kindUser, id, u)}, nil); err == nil {
			u.saved = now
		}
	}
	return cloneUser(u.User), true
}

// DeleteUser removes the user, takes them off their meetings' owners and
// deletes the meetings they alone owned (hanging up their callers).
func (b *Book) DeleteUser(uuid string) error {
	b.mu.Lock()
	u, ok := b.users[uuid]
	if !ok {
		b.mu.Unlock()
		return notFound("user")
	}
	var put []store.Doc
	del := []store.DocKey{{Kind: kindUser, ID: uuid}}
	var gone []*Meeting
	var cs []Change
	changed := map[string]Meeting{}
	for _, m := range b.meetings {
		if !m.OwnedBy(uuid) {
			continue
		}
		if len(m.OwnerUUIDs) == 1 {
			gone = append(gone, m)
			del = append(del, b.meetingKeysLocked(m.UUID)...)
			cs = append(cs, b.changeLocked(m, nil))
			continue
		}
		c := *m
		c.OwnerUUIDs = slices.DeleteFunc(slices.Clone(m.OwnerUUIDs), func(o string) bool { return o == uuid })
		changed[m.UUID] = c
		put = append(put, doc(kindMeeting, m.UUID, c))
	}
	if err := b.writeChanges(put, del, cs...); err != nil {
		b.mu.Unlock()
		return err
	}
	h, _ := hex.DecodeString(u.TokenHash)
	delete(b.byToken, [32]byte(h))
	delete(b.users, uuid)
	for id, c := range changed {
		*b.meetings[id] = c
	}
	var rooms []string
	for _, m := range gone {
		rooms = append(rooms, m.Exten)
		b.forgetLocked(m)
	}
	b.mu.Unlock()
	for _, r := range rooms {
		b.hooks.EndRoom(r, true)
	}
	return nil
}

// ---------------------------------------------------------------------------
// Meetings.

// meetingKeysLocked are the documents to delete with a meeting: itself and
// its authorizations.
func (b *Book) meetingKeysLocked(id string) []store.DocKey {
	keys := []store.DocKey{{Kind: kindMeeting, ID: id}}
	for aid := range b.authsOf[id] {
		keys = append(keys, store.DocKey{Kind: kindAuthorization, ID: aid})
	}
	return keys
}

// forgetLocked drops a deleted meeting from memory.
func (b *Book) forgetLocked(m *Meeting) {
	if t := b.timers[m.UUID]; t != nil {
		t.Stop()
		delete(b.timers, m.UUID)
	}
	for _, a := range b.authsOf[m.UUID] {
		b.dropAuthLocked(a)
	}
	delete(b.byExten, m.Exten)
	delete(b.byGuest, m.GuestUser)
	delete(b.meetings, m.UUID)
}

func cloneMeeting(m Meeting) Meeting {
	m.OwnerUUIDs = slices.Clone(m.OwnerUUIDs)
	m.Participants = slices.Clone(m.Participants)
	for _, p := range []**time.Time{&m.ValidSince, &m.ValidUntil, &m.ExpiresAt} {
		if *p != nil {
			t := **p
			*p = &t
		}
	}
	if m.Lobby.Timer != nil {
		t := *m.Lobby.Timer
		m.Lobby.Timer = &t
	}
	if m.OwnerUUIDs == nil {
		m.OwnerUUIDs = []string{}
	}
	if m.Participants == nil {
		m.Participants = []Invitee{}
	}
	return m
}

// CreateMeeting makes a meeting owned by the user (and the other owners
// given). When it returns, the room exists and can be dialled. The room is
// opened (stored) first, then the meeting is stored: when either write is
// refused nothing is added (a room opened for a meeting the store then
// refused is ended again) and the error is Unavailable.
func (b *Book) CreateMeeting(owner User, in MeetingInput) (Meeting, error) {
	if !owner.Can(CapMeetings) {
		return Meeting{}, &Error{Kind: Forbidden, Code: "forbidden", Message: "this user may not create meetings (no meetings capability)"}
	}
	now := b.cfg.Now().UTC().Truncate(time.Second)
	base := Meeting{
		UUID: NewUUID(), CreationTime: now, Language: b.cfg.Languages[0],
		MaxParticipants: b.cfg.MaxParticipants, SIPDialin: true, Participants: []Invitee{},
	}
	if err := sipCapability(owner, in, base.SIPDialin); err != nil {
		return Meeting{}, err
	}
	b.mu.Lock()
	m, verr := b.apply(base, in, now, true)
	if verr != nil {
		b.mu.Unlock()
		return Meeting{}, verr
	}
	if !slices.Contains(m.OwnerUUIDs, owner.UUID) {
		m.OwnerUUIDs = append([]string{owner.UUID}, m.OwnerUUIDs...)
	}
	exten, xerr := b.newExtenLocked()
	if xerr != nil {
		b.mu.Unlock()
		return Meeting{}, xerr
	}
	m.Exten = exten
	m.GuestUser = "meeting-" + m.UUID + "-guest"
	m.GuestPassword = secret(20)
	// The room first: a meeting is never stored (nor listed) without its
	// room. Its number is no meeting's yet, so no caller is routed to it.
	if err := b.openRoom(m.Exten); err != nil {
		b.mu.Unlock()
		return Meeting{}, err
	}
	if err := b.writeChanges([]store.Doc{doc(kindMeeting, m.UUID, m)}, nil, b.changeLocked(nil, &m)); err != nil {
		b.mu.Unlock()
		b.hooks.EndRoom(m.Exten, true) // the room goes again
		return Meeting{}, err
	}
	b.meetings[m.UUID] = &m
	b.byExten[m.Exten] = m.UUID
	b.byGuest[m.GuestUser] = m.UUID
	b.armLocked(m.UUID)
	out := cloneMeeting(m)
	b.mu.Unlock()
	return out, nil
}

// Meetings lists the meetings the user owns, oldest first.
func (b *Book) Meetings(ownerUUID string) []Meeting {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []Meeting
	for _, m := range b.meetings {
		if m.OwnedBy(ownerUUID) {
			out = append(out, cloneMeeting(*m))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreationTime.Equal(out[j].CreationTime) {
			return out[i].CreationTime.Before(out[j].CreationTime)
		}
		return out[i].UUID < out[j].UUID
	})
	if out == nil {
		out = []Meeting{}
	}
	return out
}

// Meeting returns a meeting by uuid, whoever owns it.
func (b *Book) Meeting(uuid string) (Meeting, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m, ok := b.meetings[uuid]
	if !ok {
		return Meeting{}, false
	}
	return cloneMeeting(*m), true
}

// owned returns the meeting when the user owns it; otherwise NotFound, so
// that someone else's meeting is indistinguishable from none.
func (b *Book) ownedLocked(user, uuid string) (*Meeting, *Error) {
	m, ok := b.meetings[uuid]
	if !ok || !m.OwnedBy(user) {
		return nil, notFound("meeting")
	}
	return m, nil
}

// MyMeeting returns the user's meeting.
func (b *Book) MyMeeting(user, uuid string) (Meeting, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m, err := b.ownedLocked(user, uuid)
	if err != nil {
		return Meeting{}, err
	}
	return cloneMeeting(*m), nil
}

// UpdateMeeting changes the fields given; absent fields keep their values.
// The caller stays an owner (Wazo re-adds them).
func (b *Book) UpdateMeeting(user User, uuid string, in MeetingInput) (Meeting, error) {
	now := b.cfg.Now().UTC().Truncate(time.Second)
	b.mu.Lock()
	cur, err := b.ownedLocked(user.UUID, uuid)
	if err != nil {
		b.mu.Unlock()
		return Meeting{}, err
	}
	if err := sipCapability(user, in, cur.SIPDialin); err != nil {
		b.mu.Unlock()
		return Meeting{}, err
	}
	m, verr := b.apply(*cur, in, now, false)
	if verr != nil {
		b.mu.Unlock()
		return Meeting{}, verr
	}
	if !slices.Contains(m.OwnerUUIDs, user.UUID) {
		m.OwnerUUIDs = append([]string{user.UUID}, m.OwnerUUIDs...)
	}
	lifted := cur.Lobby.State == 1 && m.Lobby.State == 0
	ch := b.changeLocked(cur, &m)
	ch.SendInvites = in.SendInvites.Set && in.SendInvites.Value
	if err := b.writeChanges([]store.Doc{doc(kindMeeting, m.UUID, m)}, nil, ch); err != nil {
		b.mu.Unlock()
		return Meeting{}, err
	}
	*cur = m
	b.armLocked(uuid)
	out := cloneMeeting(m)
	b.mu.Unlock()
	if lifted {
		b.hooks.LobbyLifted(m.Exten)
	}
	return out, nil
}

// DeleteMeeting deletes the user's meeting and hangs up its callers.
func (b *Book) DeleteMeeting(user, uuid string) error {
	b.mu.Lock()
	m, err := b.ownedLocked(user, uuid)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	return b.deleteAndUnlock(m, false)
}

// deleteAndUnlock deletes m (b.mu held) and releases the lock before
// calling the hooks. expired: by meeting_ttl (the Outbox sends nothing).
func (b *Book) deleteAndUnlock(m *Meeting, expired bool) error {
	ch := b.changeLocked(m, nil)
	ch.Expired = expired
	if err := b.writeChanges(nil, b.meetingKeysLocked(m.UUID), ch); err != nil {
		b.mu.Unlock()
		return err
	}
	room := m.Exten
	b.forgetLocked(m)
	b.mu.Unlock()
	b.hooks.EndRoom(room, true)
	return nil
}

// SetLobby is PUT .../webinar/lobby. Only an owner may.
func (b *Book) SetLobby(user, uuid string, in LobbyInput) (Meeting, error) {
	now := b.cfg.Now()
	b.mu.Lock()
	m, ok := b.meetings[uuid]
	if !ok {
		b.mu.Unlock()
		return Meeting{}, notFound("meeting")
	}
	if !m.OwnedBy(user) {
		b.mu.Unlock()
		return Meeting{}, &Error{Kind: Forbidden, Code: "forbidden", Message: "only an owner may change the lobby"}
	}
	l, verr := checkLobby("", in, now)
	if verr != nil {
		b.mu.Unlock()
		return Meeting{}, verr
	}
	c := cloneMeeting(*m)
	lifted := c.Lobby.State == 1 && l.State == 0
	c.Lobby = l
	if err := b.write([]store.Doc{doc(kindMeeting, uuid, c)}, nil); err != nil {
		b.mu.Unlock()
		return Meeting{}, err
	}
	*m = c
	b.armLocked(uuid)
	out := cloneMeeting(c)
	b.mu.Unlock()
	if lifted {
		b.hooks.LobbyLifted(c.Exten)
	}
	return out, nil
}

// sipCapability: a sip_dialin in a meeting's body that would change it
// (from cur, the meeting's value or a new meeting's default), or a null,
// needs the sip capability, as PUT .../webinar/sip does; otherwise the
// switch route's check is bypassed by the meeting routes. The value it
// already has is allowed, so that a meeting read with GET can be PUT back.
func sipCapability(u User, in MeetingInput, cur bool) *Error {
	o := in.SIPDialin
	if o.Set && (o.Null || o.Value != cur) && !u.Can(CapSIP) {
		return errNoSIPCapability("sip_dialin")
	}
	return nil
}

func errNoSIPCapability(field string) *Error {
	msg := "this user may not switch SIP dial-in (no sip capability)"
	if field != "" {
		msg = field + ": " + msg
	}
	return &Error{Kind: Unauthorized, Code: "no-sip-capability", Field: field, Message: msg}
}

// SetSIP is PUT .../webinar/sip (Nextcloud Talk's statuses).
func (b *Book) SetSIP(user User, uuid string, state int) (Meeting, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.meetings[uuid]
	if !ok {
		return Meeting{}, notFound("meeting")
	}
	if !m.OwnedBy(user.UUID) {
		return Meeting{}, &Error{Kind: Forbidden, Code: "forbidden", Message: "only an owner may switch SIP dial-in"}
	}
	if !user.Can(CapSIP) {
		return Meeting{}, errNoSIPCapability("")
	}
	if !b.cfg.SIPDialin {
		return Meeting{}, &Error{Kind: Precondition, Code: "sip-not-configured", Message: "SIP dial-in is off on this server"}
	}
	if state != 0 && state != 1 {
		return Meeting{}, invalid("state", "must be 0 (off) or 1 (on)")
	}
	if (state == 1) == m.SIPDialin {
		return Meeting{}, invalid("state", "SIP dial-in is already %s", map[bool]string{true: "on", false: "off"}[m.SIPDialin])
	}
	c := cloneMeeting(*m)
	c.SIPDialin = state == 1
	if err := b.write([]store.Doc{doc(kindMeeting, uuid, c)}, nil); err != nil {
		return Meeting{}, err
	}
	*m = c
	return cloneMeeting(c), nil
}

// ---------------------------------------------------------------------------
// What the call flow asks.

// GateFor returns the rules for a room, if it is a meeting's.
func (b *Book) GateFor(room string) (Gate, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	id, ok := b.byExten[room]
	if !ok {
		return Gate{}, false
	}
	m := b.meetings[id]
	g := Gate{
		MeetingUUID: m.UUID, SIPDialin: m.SIPDialin && b.cfg.SIPDialin,
		MaxParticipants: m.MaxParticipants, LobbyOn: m.Lobby.State == 1,
	}
	if m.ValidSince != nil {
		g.ValidSince = *m.ValidSince
	}
	if m.ValidUntil != nil {
		g.ValidUntil = *m.ValidUntil
	}
	return g, true
}

// LobbyOn reports whether the room's meeting holds callers in its lobby.
func (b *Book) LobbyOn(room string) bool {
	g, ok := b.GateFor(room)
	return ok && g.LobbyOn
}

// GuestAccount returns the meeting room and password of a guest SIP user.
func (b *Book) GuestAccount(user string) (room, password string, ok bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	id, ok := b.byGuest[user]
	if !ok {
		return "", "", false
	}
	m := b.meetings[id]
	return m.Exten, m.GuestPassword, true
}

// IsMeetingRoom reports whether the room belongs to a meeting or a public
// room (so that a phone may dial its number directly).
func (b *Book) IsMeetingRoom(room string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	_, m := b.byExten[room]
	_, p := b.byRoom[room]
	return m || p
}

// PublicRoomNumber returns the room of a public identifier.
func (b *Book) PublicRoomNumber(identifier string) (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.public[identifier]
	if !ok {
		return "", false
	}
	return p.Room, true
}

// ---------------------------------------------------------------------------
// Timers: expiry (meeting_ttl), valid_until, the lobby timer.

// next is the meeting's next timed event after now, or the zero time.
func next(m *Meeting, now time.Time) time.Time {
	var t time.Time
	consider := func(x time.Time) {
		if t.IsZero() || x.Before(t) {
			t = x
		}
	}
	if m.ExpiresAt != nil {
		consider(*m.ExpiresAt)
	}
	if m.ValidUntil != nil && m.ValidUntil.After(now) {
		consider(*m.ValidUntil)
	}
	if m.Lobby.State == 1 && m.Lobby.Timer != nil {
		consider(time.Unix(*m.Lobby.Timer, 0))
	}
	return t
}

// armLocked (re)schedules the meeting's timer.
func (b *Book) armLocked(id string) {
	if old := b.timers[id]; old != nil {
		old.Stop()
		delete(b.timers, id)
	}
	m, ok := b.meetings[id]
	if !ok || b.closed {
		return
	}
	at := next(m, b.cfg.Now())
	if at.IsZero() {
		return
	}
	b.timers[id] = time.AfterFunc(time.Until(at), func() { b.fire(id) })
}

// fire handles whatever is due for the meeting.
func (b *Book) fire(id string) {
	now := b.cfg.Now()
	b.mu.Lock()
	m, ok := b.meetings[id]
	if !ok || b.closed {
		b.mu.Unlock()
		return
	}
	delete(b.timers, id)
	if m.ExpiresAt != nil && !now.Before(*m.ExpiresAt) {
		b.log.Info("meeting expired", "meeting", id, "room", m.Exten)
		if err := b.deleteAndUnlock(m, true); err != nil {
			// The store refused: try again shortly rather than lose the
			// deletion.
			b.mu.Lock()
			if _, ok := b.meetings[id]; ok && !b.closed {
				b.timers[id] = time.AfterFunc(5*time.Second, func() { b.fire(id) })
			}
			b.mu.Unlock()
		}
		return
	}
	var end, lift bool
	if m.ValidUntil != nil && !now.Before(*m.ValidUntil) && now.Sub(*m.ValidUntil) < time.Minute {
		end = true
	}
	if m.Lobby.State == 1 && m.Lobby.Timer != nil && !now.Before(time.Unix(*m.Lobby.Timer, 0)) {
		c := cloneMeeting(*m)
		c.Lobby = Lobby{}
		if err := b.write([]store.Doc{doc(kindMeeting, id, c)}, nil); err == nil {
			*m = c
			lift = true
		}
	}
	room := m.Exten
	b.armLocked(id)
	b.mu.Unlock()
	if end {
		b.log.Info("meeting reached valid_until", "meeting", id, "room", room)
		b.hooks.EndRoom(room, false)
	}
	if lift {
		b.hooks.LobbyLifted(room)
	}
}

// ---------------------------------------------------------------------------
// Guest authorizations (Wazo 22.05).

func (b *Book) liveAuth(a *Authorization, now time.Time) bool {
	return now.Sub(a.CreationTime) < AuthorizationTTL
}

// addAuthLocked and dropAuthLocked keep the indexes by meeting and by
// guest with the map by uuid, so that no request scans every
// authorization under the lock the call flow also takes.
func (b *Book) addAuthLocked(a *Authorization) {
	b.auths[a.UUID] = a
	for _, ix := range []struct {
		m   map[string]map[string]*Authorization
		key string
	}{{b.authsOf, a.MeetingUUID}, {b.authsBy, a.GuestUUID}} {
		set := ix.m[ix.key]
		if set == nil {
			set = map[string]*Authorization{}
			ix.m[ix.key] = set
		}
		set[a.UUID] = a
	}
}

func (b *Book) dropAuthLocked(a *Authorization) {
	delete(b.auths, a.UUID)
	for _, ix := range []struct {
		m   map[string]map[string]*Authorization
		key string
	}{{b.authsOf, a.MeetingUUID}, {b.authsBy, a.GuestUUID}} {
		delete(ix.m[ix.key], a.UUID)
		if len(ix.m[ix.key]) == 0 {
			delete(ix.m, ix.key)
		}
	}
}

// purgeLocked deletes the expired requests of the meeting and of the
// guest (those of other meetings too).
func (b *Book) purgeLocked(meeting, guest string, now time.Time) {
	var del []store.DocKey
	var gone []*Authorization
	seen := map[string]bool{}
	for _, set := range []map[string]*Authorization{b.authsOf[meeting], b.authsBy[guest]} {
		for id, a := range set {
			if !seen[id] && !b.liveAuth(a, now) {
				seen[id] = true
				del = append(del, store.DocKey{Kind: kindAuthorization, ID: id})
				gone = append(gone, a)
			}
		}
	}
	if len(del) == 0 {
		return
	}
	if b.write(nil, del) == nil {
		for _, a := range gone {
			b.dropAuthLocked(a)
		}
	}
}

// liveCount counts the live requests of a set, and the pending ones.
func (b *Book) liveCount(set map[string]*Authorization, now time.Time) (live, pending int) {
	for _, a := range set {
		if b.liveAuth(a, now) {
			live++
			if a.Status == StatusPending {
				pending++
			}
		}
	}
	return live, pending
}

// RequestAuthorization is a guest asking to join. It is accepted at once
// when the meeting does not require authorization. Every request is a
// stored row kept AuthorizationTTL, whatever its status, so all live ones
// count against the meeting's and the guest's caps (the per-address
// budget is charged by the caller, rpc/rest).
func (b *Book) RequestAuthorization(guestUUID, meetingUUID, name string) (Authorization, error) {
	if !ValidUUID(guestUUID) {
		return Authorization{}, invalid("guest_uuid", "%q is not a UUID", guestUUID)
	}
	if err := checkText("guest_name", name, 1, 128); err != nil {
		return Authorization{}, err
	}
	now := b.cfg.Now().UTC().Truncate(time.Second)
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.meetings[meetingUUID]
	if !ok {
		return Authorization{}, notFound("meeting")
	}
	b.purgeLocked(meetingUUID, guestUUID, now)
	live, pending := b.liveCount(b.authsOf[meetingUUID], now)
	if pending >= MaxPendingAuthorizations {
		return Authorization{}, &Error{Kind: Quota, Code: "quota-exceeded",
			Message: fmt.Sprintf("the meeting has %d pending authorization requests", pending)}
	}
	if max := b.cfg.MaxAuthorizations; max > 0 && live >= max {
		return Authorization{}, &Error{Kind: Limited, Code: "too-many-authorizations",
			Message: fmt.Sprintf("the meeting has %d authorization requests of the last 24 hours, the most it may hold", live)}
	}
	if max := b.cfg.MaxAuthorizationsPerGuest; max > 0 {
		if n, _ := b.liveCount(b.authsBy[guestUUID], now); n >= max {
			return Authorization{}, &Error{Kind: Limited, Code: "too-many-authorizations",
				Message: fmt.Sprintf("this guest has %d authorization requests of the last 24 hours, the most one guest may hold", n)}
		}
	}
	a := Authorization{UUID: NewUUID(), MeetingUUID: meetingUUID, GuestUUID: guestUUID,
		GuestName: name, CreationTime: now, Status: StatusPending}
	if !m.RequireAuthorization {
		a.Status = StatusAccepted
	}
	if err := b.write([]store.Doc{doc(kindAuthorization, a.UUID, a)}, nil); err != nil {
		return Authorization{}, err
	}
	b.addAuthLocked(&a)
	return a, nil
}

// GuestAuthorization is a guest polling their request.
func (b *Book) GuestAuthorization(guestUUID, meetingUUID, authUUID string) (Authorization, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	a, ok := b.auths[authUUID]
	if !ok || a.GuestUUID != guestUUID || a.MeetingUUID != meetingUUID || !b.liveAuth(a, b.cfg.Now()) {
		return Authorization{}, notFound("authorization")
	}
	return *a, nil
}

// Authorizations lists the live requests of the user's meeting, oldest
// first.
func (b *Book) Authorizations(user, meetingUUID string) ([]Authorization, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if _, err := b.ownedLocked(user, meetingUUID); err != nil {
		return nil, err
	}
	now := b.cfg.Now()
	out := []Authorization{}
	for _, a := range b.authsOf[meetingUUID] {
		if b.liveAuth(a, now) {
			out = append(out, *a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreationTime.Equal(out[j].CreationTime) {
			return out[i].CreationTime.Before(out[j].CreationTime)
		}
		return out[i].UUID < out[j].UUID
	})
	return out, nil
}

func (b *Book) ownedAuthLocked(user, meetingUUID, authUUID string) (*Authorization, *Error) {
	if _, err := b.ownedLocked(user, meetingUUID); err != nil {
		return nil, err
	}
	a, ok := b.auths[authUUID]
	if !ok || a.MeetingUUID != meetingUUID || !b.liveAuth(a, b.cfg.Now()) {
		return nil, notFound("authorization")
	}
	return a, nil
}

// Authorization returns one request of the user's meeting.
func (b *Book) Authorization(user, meetingUUID, authUUID string) (Authorization, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	a, err := b.ownedAuthLocked(user, meetingUUID, authUUID)
	if err != nil {
		return Authorization{}, err
	}
	return *a, nil
}

// Decide accepts or rejects a request.
func (b *Book) Decide(user, meetingUUID, authUUID string, accept bool) (Authorization, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	a, err := b.ownedAuthLocked(user, meetingUUID, authUUID)
	if err != nil {
		return Authorization{}, err
	}
	c := *a
	c.Status = StatusRejected
	if accept {
		c.Status = StatusAccepted
	}
	if err := b.write([]store.Doc{doc(kindAuthorization, c.UUID, c)}, nil); err != nil {
		return Authorization{}, err
	}
	*a = c
	return c, nil
}

// DeleteAuthorization removes a request.
func (b *Book) DeleteAuthorization(user, meetingUUID, authUUID string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.ownedAuthLocked(user, meetingUUID, authUUID); err != nil {
		return err
	}
	a := b.auths[authUUID]
	if err := b.write(nil, []store.DocKey{{Kind: kindAuthorization, ID: authUUID}}); err != nil {
		return err
	}
	b.dropAuthLocked(a)
	return nil
}

// ---------------------------------------------------------------------------
// The HTTP ingress (Wazo 21.14): the public base URI meetings carry.

// Ingress returns the configured URI, if any.
func (b *Book) Ingress() (string, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.ingress, b.ingress != ""
}

// SetIngress replaces the URI.
func (b *Book) SetIngress(uri string) error {
	if err := checkText("uri", uri, 1, 1024); err != nil {
		return err
	}
	if !validHTTPURI(uri) {
		return invalid("uri", "%q is not an absolute http or https URI", uri)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.write([]store.Doc{{Kind: kindSetting, ID: settingIngress, Body: []byte(uri)}}, nil); err != nil {
		return err
	}
	b.ingress = uri
	return nil
}

// ---------------------------------------------------------------------------
// Public rooms.

var identifierRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// reservedIdentifier is the guest extension (sipapp.GuestExten): a public
// room of that name could never be dialled.
const reservedIdentifier = "meeting-guest"

// ValidIdentifier reports whether s has the form of a public room's name.
func ValidIdentifier(s string) bool { return identifierRe.MatchString(s) }

// ReservedIdentifier reports whether s may not name a public room although
// it has the form.
func ReservedIdentifier(s string) bool { return s == reservedIdentifier }

func checkIdentifier(identifier string) *Error {
	if !ValidIdentifier(identifier) {
		return invalid("identifier", "must be 1 to 64 letters, digits, - or _")
	}
	if identifier == reservedIdentifier {
		return invalid("identifier", "%q is reserved", identifier)
	}
	return nil
}

// PublicRoomInfo is GET /c/{identifier}: the public room if it is open.
// It stores nothing and makes nothing: anyone may ask about any
// identifier, so asking must cost the server nothing.
func (b *Book) PublicRoomInfo(identifier string) (PublicRoom, bool, error) {
	if err := checkIdentifier(identifier); err != nil {
		return PublicRoom{}, false, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	p, ok := b.public[identifier]
	if !ok {
		return PublicRoom{}, false, nil
	}
	return *p, true, nil
}

// CanMakePublicRoom reports whether a new public room would be under
// max_public_rooms now (a cheap check before a call is answered).
func (b *Book) CanMakePublicRoom() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.cfg.MaxPublicRooms <= 0 || len(b.public) < b.cfg.MaxPublicRooms
}

// PublicRoom returns the public room with that identifier, making it the
// first time (see MakePublicRoom).
func (b *Book) PublicRoom(identifier string) (PublicRoom, error) {
	p, _, err := b.MakePublicRoom(identifier)
	return p, err
}

// MakePublicRoom is a first caller's way into a public room: it returns
// the room with that identifier, making it (its room opened, then the
// public room stored; a refusal of either leaves neither, Unavailable)
// when there is none; created says which. The caller charges a creation to
// the source's budget. A new room's last call is now, so it lives at
// least public_room_ttl even if its maker hangs up at once.
func (b *Book) MakePublicRoom(identifier string) (PublicRoom, bool, error) {
	if err := checkIdentifier(identifier); err != nil {
		return PublicRoom{}, false, err
	}
	b.mu.Lock()
	if p, ok := b.public[identifier]; ok {
		out := *p
		b.mu.Unlock()
		// It may have been deleted over XML-RPC, or refused at start-up.
		if err := b.openRoom(out.Room); err != nil {
			return PublicRoom{}, false, err
		}
		return out, false, nil
	}
	if max := b.cfg.MaxPublicRooms; max > 0 && len(b.public) >= max {
		b.mu.Unlock()
		return PublicRoom{}, false, &Error{Kind: Unavailable, Code: "too-many-public-rooms", Message: "no more public rooms can be made on this server"}
	}
	room, xerr := b.newExtenLocked()
	if xerr != nil {
		b.mu.Unlock()
		return PublicRoom{}, false, xerr
	}
	now := b.cfg.Now().UTC().Truncate(time.Second)
	p := PublicRoom{Identifier: identifier, Room: room, Created: now, LastCall: now}
	// As for a meeting: the room, then the public room, undone together.
	if err := b.openRoom(room); err != nil {
		b.mu.Unlock()
		return PublicRoom{}, false, err
	}
	if err := b.write([]store.Doc{doc(kindPublicRoom, identifier, p)}, nil); err != nil {
		b.mu.Unlock()
		b.hooks.EndRoom(room, true)
		return PublicRoom{}, false, err
	}
	b.public[identifier] = &p
	b.byRoom[room] = identifier
	b.armPublicLocked()
	b.mu.Unlock()
	return p, true, nil
}

// EnterPublicRoom counts a call into a public room (false: the room is no
// public room's). While a call is in it a public room does not expire.
func (b *Book) EnterPublicRoom(room string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	id, ok := b.byRoom[room]
	if !ok {
		return false
	}
	b.pubCalls[id]++
	if b.pubCalls[id] == 1 {
		// Stored so that a restart during the call counts from here.
		b.touchPublicLocked(id)
	}
	return true
}

// LeavePublicRoom counts a call out of a public room; the last one out
// starts its public_room_ttl.
func (b *Book) LeavePublicRoom(room string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	id, ok := b.byRoom[room]
	if !ok || b.pubCalls[id] == 0 {
		return
	}
	if b.pubCalls[id]--; b.pubCalls[id] > 0 {
		return
	}
	delete(b.pubCalls, id)
	b.touchPublicLocked(id)
	b.armPublicLocked()
}

// touchPublicLocked stores now as the room's last call. A store that
// refuses leaves the older time (in memory too): the room may then go a
// little early, which is logged.
func (b *Book) touchPublicLocked(id string) {
	c := *b.public[id]
	c.LastCall = b.cfg.Now().UTC().Truncate(time.Second)
	if err := b.write([]store.Doc{doc(kindPublicRoom, id, c)}, nil); err != nil {
		b.log.Warn("public room: last call not stored", "identifier", id)
		return
	}
	*b.public[id] = c
}

// publicDue is when an empty public room expires.
func (b *Book) publicDue(p *PublicRoom) time.Time { return p.LastCall.Add(b.cfg.PublicRoomTTL) }

// expirePublicLocked deletes (store, then memory) the empty public rooms
// whose time is up and returns them; their rooms are the caller's to end.
func (b *Book) expirePublicLocked(now time.Time) ([]PublicRoom, error) {
	var gone []PublicRoom
	var del []store.DocKey
	for id, p := range b.public {
		if b.pubCalls[id] == 0 && !now.Before(b.publicDue(p)) {
			gone = append(gone, *p)
			del = append(del, store.DocKey{Kind: kindPublicRoom, ID: id})
		}
	}
	if len(del) == 0 {
		return nil, nil
	}
	if err := b.write(nil, del); err != nil {
		return nil, err
	}
	for _, p := range gone {
		delete(b.public, p.Identifier)
		delete(b.byRoom, p.Room)
	}
	return gone, nil
}

// expirePublic is the public rooms' timer: it deletes the rooms that are
// due and ends their rooms.
func (b *Book) expirePublic() {
	now := b.cfg.Now()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	gone, err := b.expirePublicLocked(now)
	if err != nil {
		// The store refused: try again shortly rather than keep them.
		b.pubTimer = time.AfterFunc(5*time.Second, b.expirePublic)
		b.mu.Unlock()
		return
	}
	b.armPublicLocked()
	b.mu.Unlock()
	for _, p := range gone {
		b.log.Info("public room expired", "identifier", p.Identifier, "room", p.Room)
		b.hooks.EndRoom(p.Room, true)
	}
}

// armPublicLocked sets the timer to the earliest expiry of an empty
// public room.
func (b *Book) armPublicLocked() {
	if b.pubTimer != nil {
		b.pubTimer.Stop()
		b.pubTimer = nil
	}
	if b.closed {
		return
	}
	var at time.Time
	for id, p := range b.public {
		if b.pubCalls[id] == 0 && (at.IsZero() || b.publicDue(p).Before(at)) {
			at = b.publicDue(p)
		}
	}
	if at.IsZero() {
		return
	}
	b.pubTimer = time.AfterFunc(max(0, at.Sub(b.cfg.Now())), b.expirePublic)
}

func validHTTPURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil
}
