package sipapp

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
)

// Participant is one record of a room, as roomInfo lists it.
type Participant struct {
	CallTag string
	Number  string
	Status  Status
	Reason  string
	Muted   bool
	ID      string // participant_id

	changed time.Time // last status change, for participants_expire_delay
}

// RoomInfo is a snapshot of a room for the control API.
type RoomInfo struct {
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

// RegistryConfig carries the SEMS room-lifetime settings.
type RegistryConfig struct {
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
}

// Registry is the room map of SEMS's WebConferenceFactory: room name to
// admin PIN, expiry and participant records. It is bookkeeping only; the
// audio lives in the mixer. One mutex guards it, as in SEMS, but no call
// into a live session is made while it is held.
type Registry struct {
	cfg   RegistryConfig
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
func NewRegistry(cfg RegistryConfig, sink Events, now func() time.Time) *Registry {
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
		return store.Stats{}, fmt.Errorf("sipapp: load rooms: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.store, r.log = st, log
	now := r.now()
	for _, sr := range snap.Rooms {
		r.rooms[sr.Name] = &room{name: sr.Name, adminPin: sr.AdminPin, expiry: sr.Expiry, lastAccess: now}
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

// persistLocked writes a room's durable fields through to the store. A
// failed write is logged and counted; the room stays as it is in memory.
func (r *Registry) persistLocked(rm *room) {
	err := r.store.PutRoom(context.Background(), store.Room{Name: rm.name, AdminPin: rm.adminPin, Expiry: rm.expiry, LastAccess: rm.lastAccess})
	if err != nil {
		r.log.Error("cannot store room", "room", rm.name, "err", err)
	}
}

// pinEqual compares secrets in constant time.
func pinEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (r *Registry) createLocked(name, pin string) *room {
	rm := &room{name: name, adminPin: pin, lastAccess: r.now()}
	r.rooms[name] = rm
	r.persistLocked(rm)
	r.sink.RoomCreated(name)
	return rm
}

// softExpiredLocked: empty and untouched for longer than rooms_expire_delay
// (whole seconds, strictly greater, as SEMS compares).
func (r *Registry) softExpiredLocked(rm *room, now time.Time) bool {
	if !r.cfg.RoomsExpire || len(rm.parts) > 0 || rm.pinned {
		return false
	}
	return int64(now.Sub(rm.lastAccess)/time.Second) > int64(r.cfg.RoomsExpireDelay/time.Second)
}

func (r *Registry) deleteLocked(name string) {
	delete(r.rooms, name)
	if err := r.store.DeleteRoom(context.Background(), name); err != nil {
		r.log.Error("cannot delete stored room", "room", name, "err", err)
	}
	r.sink.RoomDeleted(name)
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
	if !ok {
		rm = r.createLocked(name, pin)
		if timeout > 0 {
			rm.expiry = r.now().Add(time.Duration(timeout) * time.Second)
		}
	} else {
		rm.adminPin = pin
	}
	r.persistLocked(rm)
	return pin, nil
}

// ChangePin is changeRoomAdminpin after the getRoom rule.
func (r *Registry) ChangePin(name, pin, newPin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.authorizeLocked(name, pin); err != nil {
		return err
	}
	rm := r.rooms[name]
	rm.adminPin = newPin
	r.persistLocked(rm)
	return nil
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
// that participant ID ("" matches records without one, as in SEMS).
func (r *Registry) FindParticipant(pid string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var names []string
	for name, rm := range r.rooms {
		for _, p := range rm.parts {
			if p.ID == pid {
				names = append(names, name)
				break
			}
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
			r.deleteLocked(name)
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
		kick = append(kick, r.liveLocked(rm)...)
		r.deleteLocked(name)
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
// room keeps its PIN.
func (r *Registry) Open(name, pin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rooms[name]; !ok {
		r.createLocked(name, pin)
	}
}

// Predefine opens a predefined_rooms entry: created if missing, and its
// PIN set from the config (the config is the operator's word on it).
func (r *Registry) Predefine(name, pin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		r.createLocked(name, pin)
		return
	}
	if rm.adminPin != pin {
		rm.adminPin = pin
		r.persistLocked(rm)
	}
}

// Pin makes sure a meeting's (or public) room exists, with a random admin
// PIN when it is new, and exempts it from soft expiry. It ignores
// max_rooms: the meeting was admitted by the REST API, which has its own
// caps.
func (r *Registry) Pin(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		rm = r.createLocked(name, newPin())
	}
	rm.pinned = true
}

// Drop deletes a room whatever its PIN, hanging up its live calls (a
// meeting was deleted or expired).
func (r *Registry) Drop(name string) {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return
	}
	kick := r.liveLocked(rm)
	r.deleteLocked(name)
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
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
func (r *Registry) Authorize(name, pin string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.authorizeLocked(name, pin)
}

func (r *Registry) authorizeLocked(name, pin string) error {
	rm, ok := r.rooms[name]
	if !ok {
		if r.cfg.Private {
			return ErrNoRoom
		}
		if r.fullLocked() {
			return ErrTooManyRooms
		}
		r.createLocked(name, pin)
		return nil
	}
	if !r.cfg.IgnorePin && rm.adminPin != "" && !pinEqual(rm.adminPin, pin) {
		return ErrWrongPin
	}
	if rm.adminPin == "" && pin != "" {
		rm.adminPin = pin
		r.persistLocked(rm)
	}
	if r.softExpiredLocked(rm, r.now()) {
		r.deleteLocked(name)
		return ErrNoRoom
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
	for _, p := range rm.parts {
		if p.ID == pid && p.CallTag == "" {
			return true
		}
	}
	return false
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
	return r.createLocked(name, ""), nil
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
func (r *Registry) Join(name, tag, number, pid, reason string, checkPid bool, c Controller) error {
	r.mu.Lock()
	rm, err := r.openLocked(name)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	now := r.now()
	var rec *Participant
	if pid != "" {
		for _, p := range rm.parts {
			if p.ID == pid && p.CallTag == "" {
				rec = p
				break
			}
		}
	}
	if rec == nil {
		if r.cfg.Private && checkPid {
			r.mu.Unlock()
			return ErrNotInvited
		}
		rec = &Participant{ID: pid}
		rm.parts = append(rm.parts, rec)
	} else if err := r.store.TakeInvite(context.Background(), name, pid); err != nil {
		r.log.Error("cannot update stored invite", "room", name, "err", err)
	}
	rec.CallTag, rec.Number = tag, number
	rec.Status, rec.Reason, rec.changed = StatusConnected, reason, now
	rm.lastAccess = now
	r.live[tag] = c
	snap := *rec
	r.mu.Unlock()
	r.sink.Status(name, snap)
	r.sink.Joined(name, snap)
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
func (r *Registry) Room(name string) (RoomInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	if !ok {
		return RoomInfo{}, false
	}
	r.purgeLocked(rm, r.now())
	info := RoomInfo{Name: rm.name, AdminPin: rm.adminPin, Expiry: rm.expiry}
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
func (r *Registry) Delete(name, pin string) error {
	r.mu.Lock()
	if _, ok := r.rooms[name]; !ok {
		r.mu.Unlock()
		return ErrNoRoom
	}
	if err := r.authorizeLocked(name, pin); err != nil {
		r.mu.Unlock()
		if errors.Is(err, ErrNoRoom) {
			return ErrWrongPin // SEMS answers 1 for an expired room too
		}
		return err
	}
	kick := r.liveLocked(r.rooms[name])
	r.deleteLocked(name)
	r.mu.Unlock()
	for _, c := range kick {
		c.Kick()
	}
	return nil
}

// AddParticipant adds an invited record (SEMS addParticipant, spec 2.4):
// empty call tag, status 0, never expires. In private mode the room must
// exist; otherwise it is created with an empty admin PIN.
func (r *Registry) AddParticipant(name, pid, number string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, err := r.openLocked(name)
	if err != nil {
		return err
	}
	now := r.now()
	rm.parts = append(rm.parts, &Participant{ID: pid, Number: number, changed: now})
	rm.lastAccess = now
	if err := r.store.AddInvite(context.Background(), store.Invite{Room: name, ParticipantID: pid, Number: number}); err != nil {
		r.log.Error("cannot store invite", "room", name, "err", err)
	}
	return nil
}
