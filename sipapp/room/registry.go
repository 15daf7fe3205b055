// Package room is the SIP-free room model of SEMS's webconference: the
// registry of rooms (admin PINs, expiry, participant records, the getRoom
// rule), its write-through to the store, and the Events the conference
// core reports. Package sipapp drives it from calls; package rpc answers
// the control functions from it. It imports nothing of ours but
// sipapp/store, and knows nothing of SIP or audio (test/deps_test.go).
package room

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"sync"
	"time"

	"webconf/sipapp/store"
)

// Status is a participant's state as SEMS reports it (spec section 4).
type Status int

// Participant states, numbered as SEMS numbers them on the wire.
const (
	StatusDisconnected  Status = 0
	StatusConnecting    Status = 1
	StatusRinging       Status = 2
	StatusConnected     Status = 3
	StatusDisconnecting Status = 4
	StatusFinished      Status = 5
)

// Reasons SEMS puts in participant records.
const (
	ReasonDirect     = "direct access: entered"
	ReasonEntered    = "entered"
	ReasonBye        = "BYE"
	ReasonDisconnect = "disconnect"
)

var (
	// ErrNoRoom means the room does not exist (or, in private mode, may not
	// be created by this request).
	ErrNoRoom = errors.New("room does not exist")
	// ErrWrongPin means the admin PIN does not match.
	ErrWrongPin = errors.New("wrong adminpin")
	// ErrNotInvited means private mode with a participant PIN that no
	// invited record carries.
	ErrNotInvited = errors.New("participant not invited")
	// ErrNoCall means no participant record has that call tag.
	ErrNoCall = errors.New("call does not exist")
	// ErrRoomOpen means roomCreate found the room with a PIN already.
	ErrRoomOpen = errors.New("room already opened")
	// ErrTooManyRooms means max_rooms is reached.
	ErrTooManyRooms = errors.New("too many rooms")
	// ErrStore means the store refused a write: nothing was changed (the
	// registry writes before a change becomes visible, as the meetings
	// Book does), and the caller answers an internal error.
	ErrStore = errors.New("room store write failed")
	// ErrLocked means the room is locked (SetLocked): it takes no new
	// caller.
	ErrLocked = errors.New("room is locked")
)

// Participant is one record of a room, as roomInfo lists it.
type Participant struct {
	CallTag string
	Number  string
	Status  Status
	Reason  string
	Muted   bool
	ID      string // participant_id
	// User is the UUID of the user whose phone this call is (it proved
	// the user's SIP credentials before the answer); "" for a guest. It
	// is not in roomInfo's record (SEMS's shape).
	User string

	changed time.Time // last status change, for participants_expire_delay
}

// Info is a snapshot of a room for the control API.
type Info struct {
	Name         string
	AdminPin     string
	Expiry       time.Time // hard expiry (roomCreate timeout); zero when none
	Participants []Participant
}

// Controller is what a live call offers the registry: kick and mute.
type Controller interface {
	Kick()
	SetMuted(bool)
}

// Config carries the SEMS room-lifetime settings.
type Config struct {
	Private                 bool
	IgnorePin               bool
	RoomsExpire             bool
	RoomsExpireDelay        time.Duration
	ParticipantsExpire      bool
	ParticipantsExpireDelay time.Duration
	SupportRoomsTimeout     bool
	MaxRooms                int // 0 = no limit
}

type room struct {
	name       string
	adminPin   string
	expiry     time.Time
	lastAccess time.Time
	parts      []*Participant
	// pinned rooms belong to a meeting or a public room (package meeting
	// owns their lifetime): SEMS's soft expiry leaves them alone.
	pinned bool
	// locked rooms take no new caller (Join); stored, so a restart keeps it.
	locked bool
}

// Registry is the room map of SEMS's WebConferenceFactory: room name to
// admin PIN, expiry and participant records. It is bookkeeping only; the
// audio lives in the mixer. One mutex guards it, as in SEMS, but no call
// into a live session is made while it is held.
type Registry struct {
	cfg   Config
	now   func() time.Time
	sink  Events
	store store.Store // write-through; never nil (store.NewMemory when not durable)
	log   *slog.Logger

	mu    sync.Mutex
	rooms map[string]*room
	live  map[string]Controller // call tag -> live call
	// lastSweep is when sweepLocked last ran.
	lastSweep time.Time
}

// NewRegistry makes an empty registry. now may be nil (time.Now).
func NewRegistry(cfg Config, sink Events, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	if sink == nil {
		sink = NopEvents{}
	}
	return &Registry{cfg: cfg, now: now, sink: sink, store: store.NewMemory(), log: slog.Default(),
		rooms: map[string]*room{}, live: map[string]Controller{}}
}

// Restore loads rooms and invited participants from st and writes every
// later change through to it. Live calls do not survive a restart; a
// restored room's last access is the restart, so soft expiry counts from
// there. The call statistics are returned for the caller to restore.
func (r *Registry) Restore(ctx context.Context, st store.Store, log *slog.Logger) (store.Stats, error) {
	snap, err := st.Load(ctx)
	if err != nil {
		return store.Stats{}, fmt.Errorf("room: load rooms: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store, r.log = st, log
	now := r.now()
	for _, sr := range snap.Rooms {
		r.rooms[sr.Name] = &room{name: sr.Name, adminPin: sr.AdminPin, expiry: sr.Expiry, lastAccess: now, locked: sr.Locked}
	}
	for _, inv := range snap.Invites {
		rm, ok := r.rooms[inv.Room]
		if !ok {
			continue
		}
		rm.parts = append(rm.parts, &Participant{ID: inv.ParticipantID, Number: inv.Number, changed: now})
	}
	return snap.Stats, nil
}

// storeTimeout bounds one store write, as the meetings Book bounds its own.
const storeTimeout = 10 * time.Second

// storeFailed logs a refused write and makes the error callers test with
// errors.Is(err, ErrStore). The admin PIN is never part of it.
func (r *Registry) storeFailed(what, room string, err error) error {
	r.log.Error("room store write failed; nothing changed", "op", what, "room", room, "err", err)
	return fmt.Errorf("%w: %s room %q: %w", ErrStore, what, room, err)
}

// putLocked writes a room's durable fields, as rm would have them, through
// to the store. Callers write first and change the room in memory only when
// the write succeeded, so that what a reply reports is what a restart finds.
func (r *Registry) putLocked(rm room) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	err := r.store.PutRoom(ctx, store.Room{Name: rm.name, AdminPin: rm.adminPin, Expiry: rm.expiry, LastAccess: rm.lastAccess, Locked: rm.locked})
	if err != nil {
		return r.storeFailed("put", rm.name, err)
	}
	return nil
}

// setPinLocked stores and then sets a room's admin PIN.
func (r *Registry) setPinLocked(rm *room, pin string) error {
	next := *rm
	next.adminPin = pin
	if err := r.putLocked(next); err != nil {
		return err
	}
	rm.adminPin = pin
	return nil
}

// pinEqual compares secrets in constant time.
func pinEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// createLocked stores a new room and then adds it; a refused write adds
// nothing and announces nothing.
func (r *Registry) createLocked(name, pin string, expiry time.Time) (*room, error) {
	rm := &room{name: name, adminPin: pin, expiry: expiry, lastAccess: r.now()}
	if err := r.putLocked(*rm); err != nil {
		return nil, err
	}
	r.rooms[name] = rm
	r.sink.RoomCreated(name)
	return rm, nil
}

// softExpiredLocked: empty and untouched for longer than rooms_expire_delay
// (whole seconds, strictly greater, as SEMS compares).
func (r *Registry) softExpiredLocked(rm *room, now time.Time) bool {
	if !r.cfg.RoomsExpire || len(rm.parts) > 0 || rm.pinned {
		return false
	}
	return int64(now.Sub(rm.lastAccess)/time.Second) > int64(r.cfg.RoomsExpireDelay/time.Second)
}

// deleteLocked removes a room from the store and then from memory; a
// refused delete keeps the room (a restart would bring it back).
func (r *Registry) deleteLocked(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.DeleteRoom(ctx, name); err != nil {
		return r.storeFailed("delete", name, err)
	}
	delete(r.rooms, name)
	r.sink.RoomDeleted(name)
	return nil
}

// newPin makes SEMS's admin PIN: 6 random decimal digits (leading zeros
// possible), from crypto/rand.
func newPin() string {
	var b [6]byte
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(10))
		if err != nil {
			panic(fmt.Sprintf("crypto/rand failed: %v", err)) // no entropy: nothing sane to do
		}
		b[i] = byte('0' + n.Int64())
	}
	return string(b[:])
}

// Create is roomCreate (spec 2.1): a new room gets a random 6-digit PIN
// and, with timeout > 0, a hard expiry; a room with an empty PIN (made by
// dial-in) gets a PIN and keeps its expiry; a room with a PIN is refused.
func (r *Registry) Create(name string, timeout int) (pin string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if ok && rm.adminPin != "" {
		return "", ErrRoomOpen
	}
	if !ok && r.fullLocked() {
		return "", ErrTooManyRooms
	}
	pin = newPin()
	if ok {
		if err := r.setPinLocked(rm, pin); err != nil {
			return "", err
		}
		return pin, nil
	}
	var expiry time.Time
	if timeout > 0 {
		expiry = r.now().Add(time.Duration(timeout) * time.Second)
	}
	if _, err := r.createLocked(name, pin, expiry); err != nil {
		return "", err
	}
	return pin, nil
}

// ChangePin is changeRoomAdminpin after the getRoom rule.
// A room the getRoom rule creates or claims on the way gets the new PIN in
// the same write, so a refused write leaves no trace.
func (r *Registry) ChangePin(name, pin, newPin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.authorizeLocked(name, pin, &newPin)
}

// Password returns a room's admin PIN for the master-password holder
// (getRoomPassword: no expiry check, as in SEMS).
func (r *Registry) Password(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		return "", false
	}
	return rm.adminPin, true
}

// FindParticipant lists, in byte order, the rooms with a record carrying
// that participant ID ("" matches records without one, as in SEMS). The ID
// may be a participant PIN (room_pin_split): every record is compared, in
// constant time.
func (r *Registry) FindParticipant(pid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for name, rm := range r.rooms {
		found := false
		for _, p := range rm.parts {
			if pinEqual(p.ID, pid) {
				found = true
			}
		}
		if found {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// Sweep drops the Finished records older than participants_expire_delay
// and then erases every soft-expired room. SEMS runs its sweep only from
// every n-th roomCreate or dialout and purges records only when a room is
// read or a status changes, so a bridge that is only dialled into keeps
// every room it ever saw (and, with max_rooms, ends up refusing new ones
// for good). The node also sweeps on a timer. The control functions read
// the same either way, since each applies the same rules first; a caller
// who dials into a soft-expired room gets a fresh one sooner than in SEMS.
func (r *Registry) Sweep() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(r.now())
}

func (r *Registry) sweepLocked(now time.Time) {
	r.lastSweep = now
	for name, rm := range r.rooms {
		r.purgeLocked(rm, now)
		if r.softExpiredLocked(rm, now) {
			_ = r.deleteLocked(name) // logged; the room stays for the next sweep
		}
	}
}

// ExpireHard deletes rooms past their roomCreate timeout, hanging up their
// calls, when support_rooms_timeout is on. SEMS's cleaner thread can crash
// on a room that is also soft-expired (spec 3.3); here both just go.
func (r *Registry) ExpireHard() []string {
	if !r.cfg.SupportRoomsTimeout {
		return nil
	}
	r.mu.Lock()
	now := r.now()
	var gone []string
	var kick []Controller
	for name, rm := range r.rooms {
		if rm.expiry.IsZero() || !now.After(rm.expiry) {
			continue
		}
		if r.deleteLocked(name) != nil {
			continue // logged; the room and its calls stay until a delete succeeds
		}
		kick = append(kick, r.liveLocked(rm)...)
		gone = append(gone, name)
	}
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
	sort.Strings(gone)
	return gone
}

// Open creates a room with an admin PIN if it does not exist; an existing
// room keeps its PIN. An error (ErrStore) means nothing changed.
func (r *Registry) Open(name, pin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rooms[name]; !ok {
		_, err := r.createLocked(name, pin, time.Time{})
		return err
	}
	return nil
}

// Predefine opens a predefined_rooms entry: created if missing, and its
// PIN set from the config (the config is the operator's word on it).
func (r *Registry) Predefine(name, pin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		_, err := r.createLocked(name, pin, time.Time{})
		return err
	}
	if rm.adminPin != pin {
		return r.setPinLocked(rm, pin)
	}
	return nil
}

// Pin makes sure a meeting's (or public) room exists, with a random admin
// PIN when it is new, and exempts it from soft expiry. It ignores
// max_rooms: the meeting was admitted by the REST API, which has its own
// caps. An error (ErrStore) means the room could not be stored and was
// not made.
func (r *Registry) Pin(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		var err error
		if rm, err = r.createLocked(name, newPin(), time.Time{}); err != nil {
			return err
		}
	}
	rm.pinned = true
	return nil
}

// Drop deletes a room whatever its PIN, hanging up its live calls (a
// meeting was deleted or expired: the calls end with it even when the
// room's delete is refused). A room whose delete is refused stays, no
// longer exempt from soft expiry, so that a later sweep deletes it; the
// error (ErrStore) says so.
func (r *Registry) Drop(name string) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return nil
	}
	kick := r.liveLocked(rm)
	err := r.deleteLocked(name)
	if err != nil {
		rm.pinned = false
	}
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
	return err
}

// KickAll hangs up every live call of the room; the room stays.
func (r *Registry) KickAll(name string) {
	r.mu.Lock()
	var kick []Controller
	if rm, ok := r.rooms[name]; ok {
		kick = r.liveLocked(rm)
	}
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
}

// Authorize is SEMS's getRoom: the shared admin-PIN rule of the control
// functions (spec section 2). In public mode an unknown room is created
// with the given PIN; an empty-PIN room is claimed by the first caller; a
// soft-expired room is erased and the call fails.
//
// Every write it implies (a creation, a claim, an erasure) is made before
// the change is visible; a refused one changes nothing and is ErrStore.
func (r *Registry) Authorize(name, pin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.authorizeLocked(name, pin, nil)
}

// authorizeLocked is getRoom; setPin, when not nil, is the admin PIN the
// room is to have afterwards (changeRoomAdminpin), written together with a
// creation or claim in one store write.
func (r *Registry) authorizeLocked(name, pin string, setPin *string) error {
	rm, ok := r.rooms[name]
	if !ok {
		if r.cfg.Private {
			return ErrNoRoom
		}
		if r.fullLocked() {
			return ErrTooManyRooms
		}
		if setPin != nil {
			pin = *setPin
		}
		_, err := r.createLocked(name, pin, time.Time{})
		return err
	}
	if !r.cfg.IgnorePin && rm.adminPin != "" && !pinEqual(rm.adminPin, pin) {
		return ErrWrongPin
	}
	if r.softExpiredLocked(rm, r.now()) {
		// SEMS claims the PIN and then erases the room: only the erasure
		// is left to write.
		if err := r.deleteLocked(name); err != nil {
			return err
		}
		return ErrNoRoom
	}
	next := rm.adminPin
	if next == "" && pin != "" {
		next = pin // first claimer wins
	}
	if setPin != nil {
		next = *setPin
	}
	if next != rm.adminPin {
		return r.setPinLocked(rm, next)
	}
	return nil
}

// CanEnter tells a keypad caller whether the typed room (and, with
// room_pin_split, participant PIN) may be entered: always in public mode;
// in private mode the room must exist and, with a participant PIN, an
// invited record must carry it.
func (r *Registry) CanEnter(name, pid string, checkPid bool) bool {
	if !r.cfg.Private {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		return false
	}
	if !checkPid {
		return true
	}
	return invitedLocked(rm, pid) != nil
}

// invitedLocked finds the first invited record (no call yet) whose
// participant ID is pid. The participant ID is a PIN when room_pin_split
// is on, so every record is compared, in constant time.
func invitedLocked(rm *room, pid string) *Participant {
	var found *Participant
	for _, p := range rm.parts {
		if p.CallTag == "" && pinEqual(p.ID, pid) && found == nil {
			found = p
		}
	}
	return found
}

// openLocked finds a room for a call or invite: in public mode a missing
// room is created with an empty admin PIN; in private mode it must exist.
func (r *Registry) openLocked(name string) (*room, error) {
	if rm, ok := r.rooms[name]; ok {
		return rm, nil
	}
	if r.cfg.Private {
		return nil, ErrNoRoom
	}
	if r.fullLocked() {
		return nil, ErrTooManyRooms
	}
	return r.createLocked(name, "", time.Time{})
}

// fullLocked: max_rooms reached (a cap against room-creation floods).
// When the cap is reached, expired rooms make way first; that sweep runs
// at most once a second, so a flood against a full registry does not cost
// a pass over every room per attempt.
func (r *Registry) fullLocked() bool {
	if r.cfg.MaxRooms <= 0 || len(r.rooms) < r.cfg.MaxRooms {
		return false
	}
	if now := r.now(); now.Sub(r.lastSweep) >= time.Second || now.Before(r.lastSweep) {
		r.sweepLocked(now)
	}
	return len(r.rooms) >= r.cfg.MaxRooms
}

// liveLocked lists the live calls of a room, to be hung up after the lock
// is released.
func (r *Registry) liveLocked(rm *room) []Controller {
	var out []Controller
	for _, p := range rm.parts {
		if c := r.live[p.CallTag]; p.CallTag != "" && c != nil {
			out = append(out, c)
		}
	}
	return out
}

// Join registers a live call in a room: record created at 0 "" and moved
// at once to 3 with reason (spec 4.2). An invited record (addParticipant)
// with the same participant ID and no call yet is taken over instead. In
// private mode the room must exist, and with checkPid the participant must
// have been invited.
//
// A locked room refuses the call with ErrLocked (JoinAdmitted does not).
func (r *Registry) Join(name, tag, number, pid, reason string, checkPid bool, c Controller) error {
	return r.join(name, tag, number, pid, reason, "", checkPid, c, false)
}

// JoinAdmitted is Join for a caller an owner let in (from a meeting's
// lobby, where it waited since before the room was locked): a lock does
// not keep it out, as it does not keep out an operator's dial-out.
func (r *Registry) JoinAdmitted(name, tag, number, pid, reason string, checkPid bool, c Controller) error {
	return r.join(name, tag, number, pid, reason, "", checkPid, c, true)
}

// JoinAs is Join (JoinAdmitted when admitted) for a call known to be the
// phone of user (a user UUID; "" for a guest): the record carries it.
func (r *Registry) JoinAs(user string, admitted bool, name, tag, number, pid, reason string, checkPid bool, c Controller) error {
	return r.join(name, tag, number, pid, reason, user, checkPid, c, admitted)
}

func (r *Registry) join(name, tag, number, pid, reason, user string, checkPid bool, c Controller, pastLock bool) error {
	r.mu.Lock()
	rm, err := r.openLocked(name)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	if rm.locked && !pastLock {
		r.mu.Unlock()
		return ErrLocked
	}
	now := r.now()
	var rec *Participant
	if pid != "" {
		rec = invitedLocked(rm, pid)
	}
	if rec == nil {
		if r.cfg.Private && checkPid {
			r.mu.Unlock()
			return ErrNotInvited
		}
		rec = &Participant{ID: pid}
		rm.parts = append(rm.parts, rec)
	} else if err := r.takeInviteLocked(name, pid); err != nil {
		// The invite stays as it was; the caller is not admitted.
		r.mu.Unlock()
		return err
	}
	rec.CallTag, rec.Number, rec.User = tag, number, user
	rec.Status, rec.Reason, rec.changed = StatusConnected, reason, now
	rm.lastAccess = now
	r.live[tag] = c
	snap := *rec
	r.mu.Unlock()
	r.sink.Status(name, snap)
	r.sink.Joined(name, snap)
	return nil
}

func (r *Registry) takeInviteLocked(name, pid string) error {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.TakeInvite(ctx, name, pid); err != nil {
		return r.storeFailed("take invite of", name, err)
	}
	return nil
}

// AddDialout registers an outgoing call before its INVITE leaves (SEMS
// registers it after and can lose the first replies, spec 10.18): status
// 1 "INVITE", number sip:callee@domain.
func (r *Registry) AddDialout(name, tag, number, pid string, c Controller) error {
	r.mu.Lock()
	rm, err := r.openLocked(name)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	now := r.now()
	rec := &Participant{CallTag: tag, Number: number, ID: pid, Status: StatusConnecting, Reason: "INVITE", changed: now}
	rm.parts = append(rm.parts, rec)
	rm.lastAccess = now
	r.live[tag] = c
	snap := *rec
	r.mu.Unlock()
	r.sink.Status(name, snap)
	return nil
}

// SetStatus records a status change of a call. Unlike SEMS, an update for
// a room that was deleted meanwhile does not re-create it: a deleted room
// stays deleted.
func (r *Registry) SetStatus(name, tag string, st Status, reason string) {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return
	}
	now := r.now()
	r.purgeLocked(rm, now)
	var snap *Participant
	for _, p := range rm.parts {
		if p.CallTag == tag {
			p.Status, p.Reason, p.changed = st, reason, now
			cp := *p
			snap = &cp
			break
		}
	}
	rm.lastAccess = now
	if st == StatusFinished {
		delete(r.live, tag)
	}
	r.mu.Unlock()
	if snap != nil {
		r.sink.Status(name, *snap)
	}
	if st == StatusFinished {
		r.sink.Left(name, tag)
	}
}

// purgeLocked drops Finished records older than participants_expire_delay.
func (r *Registry) purgeLocked(rm *room, now time.Time) {
	if !r.cfg.ParticipantsExpire {
		return
	}
	kept := rm.parts[:0]
	purged := false
	for _, p := range rm.parts {
		if p.Status == StatusFinished &&
			int64(now.Sub(p.changed)/time.Second) > int64(r.cfg.ParticipantsExpireDelay/time.Second) {
			purged = true
			continue
		}
		kept = append(kept, p)
	}
	clear(rm.parts[len(kept):])
	rm.parts = kept
	if purged {
		rm.lastAccess = now
	}
}

// Room returns a snapshot of a room after purging expired records.
func (r *Registry) Room(name string) (Info, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		return Info{}, false
	}
	r.purgeLocked(rm, r.now())
	info := Info{Name: rm.name, AdminPin: rm.adminPin, Expiry: rm.expiry}
	for _, p := range rm.parts {
		info.Participants = append(info.Participants, *p)
	}
	return info, true
}

// Exists reports whether a room is in the registry.
func (r *Registry) Exists(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.rooms[name]
	return ok
}

// Count is the number of rooms (soft-expired ones included until erased).
func (r *Registry) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.rooms)
}

// Rooms lists the room names in byte order, without soft-expired ones.
func (r *Registry) Rooms() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	names := make([]string, 0, len(r.rooms))
	for name, rm := range r.rooms {
		if !r.softExpiredLocked(rm, now) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

func (r *Registry) findLocked(name, tag string) (*room, *Participant, error) {
	rm, ok := r.rooms[name]
	if !ok {
		return nil, nil, ErrNoRoom
	}
	for _, p := range rm.parts {
		if p.CallTag == tag {
			return rm, p, nil
		}
	}
	return rm, nil, ErrNoCall
}

// Kick hangs up the call with that tag (BYE, status 4 "disconnect").
func (r *Registry) Kick(name, tag string) error {
	r.mu.Lock()
	_, _, err := r.findLocked(name, tag)
	c := r.live[tag]
	r.mu.Unlock()
	if err != nil {
		return err
	}
	if c != nil {
		c.Kick()
	}
	return nil
}

// Mute makes the call inaudible to the room; it still hears the room.
func (r *Registry) Mute(name, tag string) error { return r.setMuted(name, tag, true) }

// Unmute makes the call audible again.
func (r *Registry) Unmute(name, tag string) error { return r.setMuted(name, tag, false) }

func (r *Registry) setMuted(name, tag string, v bool) error {
	r.mu.Lock()
	rm, p, err := r.findLocked(name, tag)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	p.Muted = v
	rm.lastAccess = r.now()
	c := r.live[tag]
	r.mu.Unlock()
	if c != nil {
		c.SetMuted(v)
	}
	if v {
		r.sink.Muted(name, tag)
	} else {
		r.sink.Unmuted(name, tag)
	}
	return nil
}

// Delete is roomDelete: a room that is not there is ErrNoRoom; otherwise
// the getRoom rule applies (ErrWrongPin, or ErrNoRoom for a soft-expired
// room); then the room goes and its live calls are hung up.
//
// A claim of an empty PIN on the way (getRoom's first-claimer rule) is not
// written: the room is about to go. A refused delete (ErrStore) keeps the
// room and its calls.
func (r *Registry) Delete(name, pin string) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return ErrNoRoom
	}
	if !r.cfg.IgnorePin && rm.adminPin != "" && !pinEqual(rm.adminPin, pin) {
		r.mu.Unlock()
		return ErrWrongPin
	}
	if r.softExpiredLocked(rm, r.now()) {
		err := r.deleteLocked(name)
		r.mu.Unlock()
		if err != nil {
			return err
		}
		return ErrWrongPin // SEMS answers 1 for an expired room too
	}
	kick := r.liveLocked(rm)
	if err := r.deleteLocked(name); err != nil {
		r.mu.Unlock()
		return err
	}
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
	return nil
}

// AddParticipant adds an invited record (SEMS addParticipant, spec 2.4):
// empty call tag, status 0, never expires. In private mode the room must
// exist; otherwise it is created with an empty admin PIN. The invite is
// stored before it is listed; when its write is refused (ErrStore), a room
// made for it is taken out again and nothing is listed.
func (r *Registry) AddParticipant(name, pid, number string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, existed := r.rooms[name]
	rm, err := r.openLocked(name)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	if err := r.store.AddInvite(ctx, store.Invite{Room: name, ParticipantID: pid, Number: number}); err != nil {
		err = r.storeFailed("add invite to", name, err)
		if !existed {
			// Undo the room made on the way. Should that delete be
			// refused too, the room stays, as the store has it.
			_ = r.deleteLocked(name)
		}
		return err
	}
	now := r.now()
	rm.parts = append(rm.parts, &Participant{ID: pid, Number: number, changed: now})
	rm.lastAccess = now
	return nil
}
