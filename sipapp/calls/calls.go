// Package calls is the model of the calls API: which call legs exist,
// which user owns each, which mix each leg is in (and so who talks to
// whom), and the operations on them (place a leg in a mix, move it to
// another, hold, mute, hang up). It is SIP-free: a leg's SIP side is an
// Endpoint, its audio a mixer.Member that the model moves between mixer
// groups, with no re-INVITE towards the phone.
//
// A two-party call is two legs in one TwoParty mix; when one of them ends,
// the mix's Rule hangs up the other. An ad hoc conference is a Conference
// mix of more legs with its own Rule (the host leaving hangs up all, the
// last one left is hung up): joining a participant is Move(participant's
// leg, conference mix) then Hangup(the user's leg that talked to it).
//
// Every change goes through a Switchboard, which reports it to Events (in
// order: changes are serialised, and their events are delivered before
// the next change starts).
package calls

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"webconf/sipapp/mixer"
)

// Status is a leg's state, with wazo-calld's names.
type Status string

// Leg states.
const (
	StatusDown    Status = "Down"    // placed, nothing heard from the other end yet
	StatusRinging Status = "Ringing" // the other end rings (180/183)
	StatusUp      Status = "Up"      // answered
)

// Endpoint is a leg's SIP side.
type Endpoint interface {
	// Member is the leg's audio in the mixer.
	Member() *mixer.Member
	// Hangup ends the leg (BYE, or CANCEL while it rings). It must not
	// block nor call back into the Switchboard: the leg reports Ended
	// from its own goroutine once it is over.
	Hangup(reason string)
}

// Group is a mixer group: every member hears all the others.
type Group interface {
	Add(*mixer.Member)
	Remove(*mixer.Member)
	Close()
}

// Mixer makes groups (the mixer's Scheduler, through an adapter).
type Mixer interface{ NewGroup() Group }

// Kind is what a mix is for.
type Kind int

// Mix kinds.
const (
	TwoParty   Kind = iota + 1 // a two-party call
	Conference                 // an ad hoc conference (conference_id is the mix's ID)
)

// Rule decides, when a leg has ended, which of the legs still in its mix
// are hung up. It runs with the Switchboard's state locked: it must only
// look at its arguments.
type Rule func(m *Mix, left string, remaining []string) (hangup []string)

// HangupLastOne is the two-party rule (and ad hoc's last-one-left rule):
// the leg left alone is hung up.
func HangupLastOne(_ *Mix, _ string, remaining []string) []string {
	if len(remaining) == 1 {
		return remaining
	}
	return nil
}

// Mix is a set of legs that hear each other.
type Mix struct {
	ID    string
	Kind  Kind
	Owner string // the user UUID that hosts it ("" for a two-party call)
	Host  string // the host's leg id (ad hoc), for its Rule
	rule  Rule

	group Group // nil until a leg is placed in it, and again once it is empty
	legs  []*leg
	gone  bool // emptied: nothing may be placed in it any more
}

type leg struct {
	id, user   string
	peerName   string
	peerNumber string
	status     Status
	hold       bool
	muted      bool
	created    time.Time
	ep         Endpoint
	mix        *Mix
	in         Group // the group its member is in now (the mix's, or its own while held)
	own        Group // its group of one while held
}

// Call is a leg as the API shows it (GET /users/me/calls items and the
// call events' payload).
type Call struct {
	CallID             string             `json:"call_id"`
	PeerCallerIDName   string             `json:"peer_caller_id_name"`
	PeerCallerIDNumber string             `json:"peer_caller_id_number"`
	Status             Status             `json:"status"`
	OnHold             bool               `json:"on_hold"`
	Muted              bool               `json:"muted"`
	TalkingTo          map[string]*string `json:"talking_to"`
	ConferenceID       *string            `json:"conference_id"`
	CreationTime       time.Time          `json:"creation_time"`
	UserUUID           *string            `json:"user_uuid"`
}

// Events receives every change. The methods are called in the order of
// the changes, one at a time, outside the Switchboard's state lock (they
// may call its read methods) but while the next change waits: they must
// return quickly and never call a changing method. users are the user
// UUIDs that may see the event: the leg's owner and the owners of the
// legs in its mix.
type Events interface {
	CallCreated(c Call, users []string)
	CallUpdated(c Call, users []string)
	CallAnswered(c Call, users []string)
	CallEnded(c Call, reason string, users []string)
	// The ad hoc conferences' events (adhoc.go), for the host user and
	// the users whose legs are in the conference.
	AdhocCreated(a AdhocConference, users []string)
	AdhocDeleted(a AdhocConference, users []string)
	AdhocParticipantJoined(p AdhocParticipant, users []string)
	AdhocParticipantLeft(p AdhocParticipant, users []string)
}

// NopEvents ignores every event.
type NopEvents struct{}

func (NopEvents) CallCreated(Call, []string)       {}
func (NopEvents) CallUpdated(Call, []string)       {}
func (NopEvents) CallAnswered(Call, []string)      {}
func (NopEvents) CallEnded(Call, string, []string) {}

func (NopEvents) AdhocCreated(AdhocConference, []string)            {}
func (NopEvents) AdhocDeleted(AdhocConference, []string)            {}
func (NopEvents) AdhocParticipantJoined(AdhocParticipant, []string) {}
func (NopEvents) AdhocParticipantLeft(AdhocParticipant, []string)   {}

var _ Events = NopEvents{}

// Errors.
var (
	ErrNoSuchCall = errors.New("calls: no such call")
	ErrDuplicate  = errors.New("calls: a leg with that id exists")
	ErrMixGone    = errors.New("calls: the mix is over")
)

// Switchboard holds the legs and mixes. Safe for concurrent use.
type Switchboard struct {
	mixer Mixer
	ev    Events
	now   func() time.Time

	ops   sync.Mutex   // serialises changes and the delivery of their events
	mu    sync.RWMutex // guards the state below
	legs  map[string]*leg
	adhoc map[string]*Mix // the ad hoc conferences by conference_id, while they last
	seq   int
}

// New makes an empty Switchboard; ev nil is NopEvents.
func New(m Mixer, ev Events) *Switchboard {
	if ev == nil {
		ev = NopEvents{}
	}
	return &Switchboard{mixer: m, ev: ev, now: time.Now, legs: map[string]*leg{}, adhoc: map[string]*Mix{}}
}

// event is one change to report once the state lock is released.
type event struct {
	kind   int // evCreated ...
	call   Call
	reason string
	users  []string
	conf   string // the ad hoc events' conference_id (call.CallID: the participant)
}

const (
	evCreated = iota
	evUpdated
	evAnswered
	evEnded
	evAdhocCreated
	evAdhocDeleted
	evAdhocJoined
	evAdhocLeft
)

func (b *Switchboard) deliver(evs []event) {
	for _, e := range evs {
		switch e.kind {
		case evCreated:
			b.ev.CallCreated(e.call, e.users)
		case evUpdated:
			b.ev.CallUpdated(e.call, e.users)
		case evAnswered:
			b.ev.CallAnswered(e.call, e.users)
		case evEnded:
			b.ev.CallEnded(e.call, e.reason, e.users)
		case evAdhocCreated:
			b.ev.AdhocCreated(AdhocConference{ConferenceID: e.conf}, e.users)
		case evAdhocDeleted:
			b.ev.AdhocDeleted(AdhocConference{ConferenceID: e.conf}, e.users)
		case evAdhocJoined:
			b.ev.AdhocParticipantJoined(AdhocParticipant{ConferenceID: e.conf, CallID: e.call.CallID}, e.users)
		case evAdhocLeft:
			b.ev.AdhocParticipantLeft(AdhocParticipant{ConferenceID: e.conf, CallID: e.call.CallID}, e.users)
		}
	}
}

// change runs f with the state locked, then reports its events, all
// before the next change.
func (b *Switchboard) change(f func() []event) {
	b.ops.Lock()
	defer b.ops.Unlock()
	b.mu.Lock()
	evs := f()
	b.mu.Unlock()
	b.deliver(evs)
}

// NewMix makes an empty mix; rule nil is HangupLastOne.
func (b *Switchboard) NewMix(kind Kind, owner string, rule Rule) *Mix {
	if rule == nil {
		rule = HangupLastOne
	}
	b.mu.Lock()
	b.seq++
	id := fmt.Sprintf("mix-%d", b.seq)
	b.mu.Unlock()
	return &Mix{ID: id, Kind: kind, Owner: owner, rule: rule}
}

// SetID names a mix before any leg is in it (an ad hoc conference's UUID).
func (m *Mix) SetID(id string) { m.ID = id }

// LegSpec describes a new leg.
type LegSpec struct {
	ID         string // the call_id
	User       string // the owner's UUID; "" for a party that is no user of ours
	PeerName   string // caller id of the other end, as the owner sees it
	PeerNumber string
	Status     Status // "" is StatusDown
	Endpoint   Endpoint
}

// Add places a new leg in m (its audio joins m's group at once).
func (b *Switchboard) Add(spec LegSpec, m *Mix) error {
	var err error
	b.change(func() []event {
		if _, dup := b.legs[spec.ID]; dup {
			err = ErrDuplicate
			return nil
		}
		if m.gone {
			err = ErrMixGone
			return nil
		}
		st := spec.Status
		if st == "" {
			st = StatusDown
		}
		l := &leg{id: spec.ID, user: spec.User, peerName: spec.PeerName, peerNumber: spec.PeerNumber,
			status: st, created: b.now(), ep: spec.Endpoint}
		b.legs[l.id] = l
		b.placeLocked(l, m)
		// The legs already in m now talk to l too (call_updated, after
		// l's call_created: its talking_to names them).
		evs := []event{b.eventLocked(evCreated, l, "")}
		for _, o := range m.legs {
			if o != l {
				evs = append(evs, b.eventLocked(evUpdated, o, ""))
			}
		}
		return evs
	})
	return err
}

// placeLocked puts l in m: in m's group, unless l is held (it then stays
// in its own group).
func (b *Switchboard) placeLocked(l *leg, m *Mix) {
	if l.mix != nil {
		l.mix.legs = slices.DeleteFunc(l.mix.legs, func(x *leg) bool { return x == l })
	}
	l.mix = m
	m.legs = append(m.legs, l)
	if m.group == nil {
		m.group = b.mixer.NewGroup()
	}
	if !l.hold {
		b.audioTo(l, m.group)
	}
}

// audioTo moves l's member into g.
func (b *Switchboard) audioTo(l *leg, g Group) {
	if l.in == g {
		return
	}
	mem := l.ep.Member()
	if l.in != nil {
		l.in.Remove(mem)
	}
	g.Add(mem)
	l.in = g
}

// closeIfEmptyLocked closes the group of a mix that has no legs left.
func closeIfEmptyLocked(m *Mix) {
	if len(m.legs) == 0 && m.group != nil {
		m.group.Close()
		m.group = nil
		m.gone = true
	}
}

// Move takes a leg out of its mix and into m (ad hoc: a participant's leg
// into the conference). The mix it leaves applies no rule: nobody ended.
func (b *Switchboard) Move(id string, m *Mix) error {
	var err error
	b.change(func() []event {
		l, ok := b.legs[id]
		switch {
		case !ok:
			err = ErrNoSuchCall
			return nil
		case m.gone:
			err = ErrMixGone
			return nil
		case l.mix == m:
			return nil
		}
		old := l.mix
		touched := append(slices.Clone(old.legs), m.legs...)
		b.placeLocked(l, m)
		closeIfEmptyLocked(old)
		evs := b.leftLocked(old, l)
		evs = append(evs, b.joinedLocked(m, l)...)
		// Everyone whose talking_to changed.
		var upd []event
		for _, o := range append(touched, l) {
			if _, live := b.legs[o.id]; live {
				upd = append(upd, b.eventLocked(evUpdated, o, ""))
			}
		}
		evs = append(evs, dedupe(upd)...)
		return append(evs, b.deletedLocked(old, l)...)
	})
	return err
}

func dedupe(evs []event) []event {
	seen := map[string]bool{}
	out := evs[:0]
	for _, e := range evs {
		if !seen[e.call.CallID] {
			seen[e.call.CallID] = true
			out = append(out, e)
		}
	}
	return out
}

// Hangup asks a leg's SIP side to end it; the leg is gone once it reports
// Ended.
func (b *Switchboard) Hangup(id, reason string) error {
	b.ops.Lock()
	defer b.ops.Unlock()
	b.mu.RLock()
	l, ok := b.legs[id]
	b.mu.RUnlock()
	if !ok {
		return ErrNoSuchCall
	}
	l.ep.Hangup(reason)
	return nil
}

// SetStatus records a leg's progress; Up reports call_answered too.
func (b *Switchboard) SetStatus(id string, st Status) {
	b.change(func() []event {
		l, ok := b.legs[id]
		if !ok || l.status == st {
			return nil
		}
		l.status = st
		evs := []event{b.eventLocked(evUpdated, l, "")}
		if st == StatusUp {
			evs = append(evs, b.eventLocked(evAnswered, l, ""))
		}
		return evs
	})
}

// SetPeer changes the caller id a leg's owner sees.
func (b *Switchboard) SetPeer(id, name, number string) {
	b.change(func() []event {
		l, ok := b.legs[id]
		if !ok {
			return nil
		}
		l.peerName, l.peerNumber = name, number
		return []event{b.eventLocked(evUpdated, l, "")}
	})
}

// Hold puts a leg on hold (on) or takes it off: a held leg is neither
// heard in its mix nor hears it (its audio goes to a group of its own).
func (b *Switchboard) Hold(id string, on bool) error {
	return b.setFlag(id, on, func(l *leg) *bool { return &l.hold }, func(l *leg) {
		if on {
			if l.own == nil {
				l.own = b.mixer.NewGroup()
			}
			b.audioTo(l, l.own)
		} else {
			if l.mix.group != nil {
				b.audioTo(l, l.mix.group)
			}
			if l.own != nil {
				l.own.Close()
				l.own = nil
			}
		}
	})
}

// Mute stops (on) or restarts feeding a leg's audio to its mix; it still
// hears the others.
func (b *Switchboard) Mute(id string, on bool) error {
	return b.setFlag(id, on, func(l *leg) *bool { return &l.muted }, func(l *leg) {
		l.ep.Member().SetMuted(on)
	})
}

// setFlag sets a leg's flag (hold, muted) to on and applies the change
// (apply, then call_updated); nothing when it is already so.
// ErrNoSuchCall: no such leg.
func (b *Switchboard) setFlag(id string, on bool, flag func(*leg) *bool, apply func(*leg)) error {
	var err error
	b.change(func() []event {
		l, ok := b.legs[id]
		if !ok {
			err = ErrNoSuchCall
			return nil
		}
		f := flag(l)
		if *f == on {
			return nil
		}
		*f = on
		apply(l)
		return []event{b.eventLocked(evUpdated, l, "")}
	})
	return err
}

// Ended removes a leg that is over (its SIP side calls it once, whatever
// ended it) and applies its mix's rule to the legs left: those the rule
// names are hung up with "peer: <reason>" (the peer hung up, or failed).
func (b *Switchboard) Ended(id, reason string) {
	var hang []*leg
	b.change(func() []event {
		l, ok := b.legs[id]
		if !ok {
			return nil
		}
		users := ownerOf(l)
		final := b.viewLocked(l)
		delete(b.legs, id)
		if l.in != nil {
			l.in.Remove(l.ep.Member())
			l.in = nil
		}
		if l.own != nil {
			l.own.Close()
			l.own = nil
		}
		m := l.mix
		m.legs = slices.DeleteFunc(m.legs, func(x *leg) bool { return x == l })
		var rest []string
		for _, o := range m.legs {
			rest = append(rest, o.id)
		}
		for _, hid := range m.rule(m, id, rest) {
			if o, ok := b.legs[hid]; ok {
				hang = append(hang, o)
			}
		}
		closeIfEmptyLocked(m)
		evs := b.leftLocked(m, l)
		evs = append(evs, event{kind: evEnded, call: final, reason: reason, users: users})
		for _, o := range m.legs {
			evs = append(evs, b.eventLocked(evUpdated, o, ""))
		}
		return append(evs, b.deletedLocked(m, l)...)
	})
	for _, o := range hang {
		o.ep.Hangup("peer: " + reason)
	}
}

// ownerOf is who sees a leg's call events: its owner alone, as
// wazo-calld sends a channel's events to its user only (a client such as
// the Wazo SDK takes every call_created it gets for a call of its own).
// An outside party's leg has no owner: only the operator sees it.
func ownerOf(l *leg) []string {
	if l.user == "" {
		return nil
	}
	return []string{l.user}
}

func (b *Switchboard) eventLocked(kind int, l *leg, reason string) event {
	return event{kind: kind, call: b.viewLocked(l), reason: reason, users: ownerOf(l)}
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (b *Switchboard) viewLocked(l *leg) Call {
	c := Call{
		CallID: l.id, PeerCallerIDName: l.peerName, PeerCallerIDNumber: l.peerNumber,
		Status: l.status, OnHold: l.hold, Muted: l.muted, CreationTime: l.created,
		UserUUID: strp(l.user), TalkingTo: map[string]*string{},
	}
	if m := l.mix; m != nil {
		for _, o := range m.legs {
			if o != l {
				c.TalkingTo[o.id] = strp(o.user)
			}
		}
		if m.Kind == Conference {
			c.ConferenceID = strp(m.ID)
		}
	}
	return c
}

// List is what a user sees: their own legs, oldest first (the peers
// their legs talk to are named in talking_to).
func (b *Switchboard) List(user string) []Call {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []*leg
	for _, l := range b.legs {
		if l.user == user {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	calls := make([]Call, 0, len(out))
	for _, l := range out {
		calls = append(calls, b.viewLocked(l))
	}
	return calls
}

// Visible reports whether a user may see and act on a leg: only their
// own, as wazo-calld's /users/me/calls (a peer's leg is named in
// talking_to, and ad hoc conferences take it as a participant).
func (b *Switchboard) Visible(user, id string) bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l, ok := b.legs[id]
	return ok && user != "" && l.user == user
}

// Get is one leg's view.
func (b *Switchboard) Get(id string) (Call, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	l, ok := b.legs[id]
	if !ok {
		return Call{}, false
	}
	return b.viewLocked(l), true
}

// MixOf is the mix a leg is in (nil: no such leg).
func (b *Switchboard) MixOf(id string) *Mix {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if l, ok := b.legs[id]; ok {
		return l.mix
	}
	return nil
}

// Legs are the ids of the legs in a mix, in the order they joined it.
func (b *Switchboard) Legs(m *Mix) []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ids := make([]string, 0, len(m.legs))
	for _, l := range m.legs {
		ids = append(ids, l.id)
	}
	return ids
}

// Len is how many legs there are.
func (b *Switchboard) Len() int {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return len(b.legs)
}
