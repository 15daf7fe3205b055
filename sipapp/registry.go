package sipapp

import (
	"crypto/subtle"
	"errors"
	"sort"
	"sync"
	"time"
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
}

type room struct {
	name       string
	adminPin   string
	expiry     time.Time
	lastAccess time.Time
	parts      []*Participant
}

// Registry is the room map of SEMS's WebConferenceFactory: room name to
// admin PIN, expiry and participant records. It is bookkeeping only; the
// audio lives in the mixer. One mutex guards it, as in SEMS, but no call
// into a live session is made while it is held.
type Registry struct {
	cfg  RegistryConfig
	now  func() time.Time
	sink Events

	mu    sync.Mutex
	rooms map[string]*room
	live  map[string]Controller // call tag -> live call
}

// NewRegistry makes an empty registry. now may be nil (time.Now).
func NewRegistry(cfg RegistryConfig, sink Events, now func() time.Time) *Registry {
	if now == nil {
		now = time.Now
	}
	if sink == nil {
		sink = NopEvents{}
	}
	return &Registry{cfg: cfg, now: now, sink: sink, rooms: map[string]*room{}, live: map[string]Controller{}}
}

// pinEqual compares secrets in constant time.
func pinEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

func (r *Registry) createLocked(name, pin string) *room {
	rm := &room{name: name, adminPin: pin, lastAccess: r.now()}
	r.rooms[name] = rm
	r.sink.RoomCreated(name)
	return rm
}

// softExpiredLocked: empty and untouched for longer than rooms_expire_delay
// (whole seconds, strictly greater, as SEMS compares).
func (r *Registry) softExpiredLocked(rm *room, now time.Time) bool {
	if !r.cfg.RoomsExpire || len(rm.parts) > 0 {
		return false
	}
	return int64(now.Sub(rm.lastAccess)/time.Second) > int64(r.cfg.RoomsExpireDelay/time.Second)
}

func (r *Registry) deleteLocked(name string) {
	delete(r.rooms, name)
	r.sink.RoomDeleted(name)
}

// Open creates a room with an admin PIN if it does not exist (predefined
// rooms); an existing room keeps its PIN.
func (r *Registry) Open(name, pin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.rooms[name]; !ok {
		r.createLocked(name, pin)
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
		r.createLocked(name, pin)
		return nil
	}
	if !r.cfg.IgnorePin && rm.adminPin != "" && !pinEqual(rm.adminPin, pin) {
		return ErrWrongPin
	}
	if rm.adminPin == "" {
		rm.adminPin = pin
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

// Join registers a live call in a room: record created at 0 "" and moved
// at once to 3 with reason (spec 4.2). An invited record (addParticipant)
// with the same participant ID and no call yet is taken over instead. In
// private mode the room must exist, and with checkPid the participant must
// have been invited.
func (r *Registry) Join(name, tag, number, pid, reason string, checkPid bool, c Controller) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		if r.cfg.Private {
			r.mu.Unlock()
			return ErrNoRoom
		}
		rm = r.createLocked(name, "")
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
	}
	rec.CallTag, rec.Number = tag, number
	rec.Status, rec.Reason, rec.changed = StatusConnected, reason, now
	rm.lastAccess = now
	r.live[tag] = c
	snap := *rec
	r.mu.Unlock()
	r.sink.Joined(name, snap)
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
	for _, p := range rm.parts {
		if p.CallTag == tag {
			p.Status, p.Reason, p.changed = st, reason, now
			break
		}
	}
	rm.lastAccess = now
	if st == StatusFinished {
		delete(r.live, tag)
	}
	r.mu.Unlock()
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

// Delete removes a room and hangs up its live calls.
func (r *Registry) Delete(name string) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return ErrNoRoom
	}
	var kick []Controller
	for _, p := range rm.parts {
		if c := r.live[p.CallTag]; p.CallTag != "" && c != nil {
			kick = append(kick, c)
		}
	}
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
	rm, ok := r.rooms[name]
	if !ok {
		if r.cfg.Private {
			return ErrNoRoom
		}
		rm = r.createLocked(name, "")
	}
	now := r.now()
	rm.parts = append(rm.parts, &Participant{ID: pid, Number: number, changed: now})
	rm.lastAccess = now
	return nil
}
