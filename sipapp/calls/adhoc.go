package calls

import (
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
)

// Ad hoc conferences (wazo-calld's /users/me/conferences/adhoc,
// meetings-anchors.md 1.9): a user merges calls they already have into
// one Conference mix. The host call is one of the user's legs; it and
// its peer move into the conference. Each participant call is the other
// leg of a two-party call of the user's: it moves in, and the user's own
// leg to it is hung up. Nothing moves unless every call named is valid.
//
// The conference's Rule: when the host leg ends, every leg left is hung
// up; when one leg is left alone, it is hung up; once empty, the
// conference is gone (conference_adhoc_deleted).

// Errors of the ad hoc conferences (wazo-calld's names in rpc/rest).
var (
	ErrHostCallNotFound               = errors.New("host call not found")
	ErrParticipantCallNotFound        = errors.New("participant call not found")
	ErrHostAlreadyInConference        = errors.New("host call already in a conference")
	ErrParticipantAlreadyInConference = errors.New("participant call already in a conference")
	ErrNoSuchAdhoc                    = errors.New("ad hoc conference not found")
)

// ReasonMerged is the hang-up reason of the user's leg to a participant
// that joined an ad hoc conference (call_ended's reason).
const ReasonMerged = "merged into an ad hoc conference"

// AdhocConference is the payload of conference_adhoc_created and
// conference_adhoc_deleted.
type AdhocConference struct {
	ConferenceID string `json:"conference_id"`
}

// AdhocParticipant is the payload of conference_adhoc_participant_joined
// and conference_adhoc_participant_left: the leg that joined or left.
type AdhocParticipant struct {
	ConferenceID string `json:"conference_id"`
	CallID       string `json:"call_id"`
}

// adhocRule: the host leaving hangs up all; the last one left is hung up.
func adhocRule(m *Mix, left string, remaining []string) []string {
	if left == m.Host || len(remaining) == 1 {
		return remaining
	}
	return nil
}

// newUUID is a random (version 4) UUID.
func newUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}

// confUsersLocked are the users who see a conference's events: its host
// user, the users of its legs, and l's (a leg that joins or leaves).
func confUsersLocked(m *Mix, l *leg) []string {
	var us []string
	add := func(u string) {
		if u != "" && !slices.Contains(us, u) {
			us = append(us, u)
		}
	}
	add(m.Owner)
	for _, o := range m.legs {
		add(o.user)
	}
	if l != nil {
		add(l.user)
	}
	return us
}

// joinedLocked is conference_adhoc_participant_joined when m is a
// conference that l has just joined.
func (b *Switchboard) joinedLocked(m *Mix, l *leg) []event {
	if m.Kind != Conference {
		return nil
	}
	return []event{{kind: evAdhocJoined, conf: m.ID, call: Call{CallID: l.id}, users: confUsersLocked(m, l)}}
}

// leftLocked is conference_adhoc_participant_left when m is a conference
// that l has just left.
func (b *Switchboard) leftLocked(m *Mix, l *leg) []event {
	if m.Kind != Conference {
		return nil
	}
	return []event{{kind: evAdhocLeft, conf: m.ID, call: Call{CallID: l.id}, users: confUsersLocked(m, l)}}
}

// deletedLocked is conference_adhoc_deleted when m is a conference that
// l's leaving has emptied; it forgets the conference.
func (b *Switchboard) deletedLocked(m *Mix, l *leg) []event {
	if m.Kind != Conference || !m.gone {
		return nil
	}
	if b.adhoc[m.ID] != m {
		return nil // deleted already, or never registered
	}
	delete(b.adhoc, m.ID)
	return []event{{kind: evAdhocDeleted, conf: m.ID, users: confUsersLocked(m, l)}}
}

// peerLocked is the one other leg in l's mix, or nil when l talks to
// nobody or to more than one leg.
func peerLocked(l *leg) *leg {
	if len(l.mix.legs) != 2 {
		return nil
	}
	for _, o := range l.mix.legs {
		if o != l {
			return o
		}
	}
	return nil
}

// participantLocked checks a participant call of user: the other leg of
// a two-party call whose first leg (returned as mine) is the user's.
func (b *Switchboard) participantLocked(user, id string) (p, mine *leg, err error) {
	p, ok := b.legs[id]
	if !ok {
		return nil, nil, fmt.Errorf("%w: no call %q", ErrParticipantCallNotFound, id)
	}
	if p.mix.Kind == Conference {
		return nil, nil, fmt.Errorf("%w: call %q is in conference %s", ErrParticipantAlreadyInConference, id, p.mix.ID)
	}
	mine = peerLocked(p)
	if mine == nil || mine.user != user {
		return nil, nil, fmt.Errorf("%w: call %q is not the other leg of a two-party call of the user's", ErrParticipantCallNotFound, id)
	}
	return p, mine, nil
}

// joinLocked moves l into the conference, taking it off hold (everyone in
// a conference hears everyone), and closes the mix it leaves if that is
// now empty.
func (b *Switchboard) joinLocked(l *leg, conf *Mix) []event {
	old := l.mix
	l.hold = false
	b.placeLocked(l, conf)
	if l.own != nil {
		l.own.Close()
		l.own = nil
	}
	closeIfEmptyLocked(old)
	return b.joinedLocked(conf, l)
}

// updatesLocked are call_updated for the legs still there, once each.
func (b *Switchboard) updatesLocked(ls []*leg) []event {
	var evs []event
	for _, o := range ls {
		if _, live := b.legs[o.id]; live {
			evs = append(evs, b.eventLocked(evUpdated, o, ""))
		}
	}
	return dedupe(evs)
}

// StartAdhoc is POST /users/me/conferences/adhoc: it makes a conference
// of user's host call and its peer, then joins each participant call (and
// hangs up the user's leg to it). It returns the conference_id.
func (b *Switchboard) StartAdhoc(user, hostID string, participantIDs []string) (string, error) {
	id, err := newUUID()
	if err != nil {
		return "", fmt.Errorf("calls: conference id: %w", err)
	}
	var hang []*leg
	b.change(func() []event {
		host, ok := b.legs[hostID]
		if !ok || user == "" || host.user != user {
			err = fmt.Errorf("%w: %q is not a call of the user's", ErrHostCallNotFound, hostID)
			return nil
		}
		if host.mix.Kind == Conference || len(host.mix.legs) > 2 {
			err = fmt.Errorf("%w: call %q talks to %d calls", ErrHostAlreadyInConference, hostID, len(host.mix.legs)-1)
			return nil
		}
		hostPeer := peerLocked(host)
		if hostPeer == nil {
			err = fmt.Errorf("%w: call %q talks to nobody yet", ErrHostCallNotFound, hostID)
			return nil
		}
		seen := map[string]bool{}
		var ps []*leg
		for _, pid := range participantIDs {
			if pid == hostID || pid == hostPeer.id || seen[pid] {
				err = fmt.Errorf("%w: call %q is the host call, its peer, or listed twice", ErrParticipantCallNotFound, pid)
				return nil
			}
			seen[pid] = true
			p, mine, perr := b.participantLocked(user, pid)
			if perr != nil {
				err = perr
				return nil
			}
			ps = append(ps, p)
			hang = append(hang, mine)
		}
		conf := &Mix{ID: id, Kind: Conference, Owner: user, Host: hostID, rule: adhocRule}
		b.adhoc[id] = conf
		evs := []event{{kind: evAdhocCreated, conf: id, users: confUsersLocked(conf, host)}}
		for _, l := range append([]*leg{host, hostPeer}, ps...) {
			evs = append(evs, b.joinLocked(l, conf)...)
		}
		return append(evs, b.updatesLocked(append(slices.Clone(conf.legs), hang...))...)
	})
	if err != nil {
		return "", err
	}
	for _, l := range hang {
		l.ep.Hangup(ReasonMerged)
	}
	return id, nil
}

// adhocLocked is user's conference id (ErrNoSuchAdhoc otherwise).
func (b *Switchboard) adhocLocked(user, id string) (*Mix, error) {
	m, ok := b.adhoc[id]
	if !ok || m.gone || user == "" || m.Owner != user {
		return nil, fmt.Errorf("%w: %q is not an ad hoc conference of the user's", ErrNoSuchAdhoc, id)
	}
	return m, nil
}

// AddAdhocParticipant is PUT .../adhoc/{conference_id}/participants/{call_id}:
// the participant call joins, the user's leg to it is hung up.
func (b *Switchboard) AddAdhocParticipant(user, confID, callID string) error {
	var err error
	var mine *leg
	b.change(func() []event {
		conf, cerr := b.adhocLocked(user, confID)
		if cerr != nil {
			err = cerr
			return nil
		}
		var p *leg
		if p, mine, err = b.participantLocked(user, callID); err != nil {
			return nil
		}
		evs := b.joinLocked(p, conf)
		return append(evs, b.updatesLocked(append(slices.Clone(conf.legs), mine))...)
	})
	if err != nil {
		return err
	}
	mine.ep.Hangup(ReasonMerged)
	return nil
}

// RemoveAdhocParticipant is DELETE .../participants/{call_id}: that call
// is hung up (the conference's rule then applies).
func (b *Switchboard) RemoveAdhocParticipant(user, confID, callID string) error {
	return b.hangupIn(user, confID, func(conf *Mix) ([]*leg, error) {
		for _, l := range conf.legs {
			if l.id == callID {
				return []*leg{l}, nil
			}
		}
		return nil, fmt.Errorf("%w: call %q is not in conference %s", ErrParticipantCallNotFound, callID, confID)
	})
}

// DeleteAdhoc is DELETE .../adhoc/{conference_id}: every call in it is
// hung up.
func (b *Switchboard) DeleteAdhoc(user, confID string) error {
	return b.hangupIn(user, confID, func(conf *Mix) ([]*leg, error) {
		return slices.Clone(conf.legs), nil
	})
}

// hangupIn hangs up the legs pick names in user's conference.
func (b *Switchboard) hangupIn(user, confID string, pick func(*Mix) ([]*leg, error)) error {
	var err error
	var hang []*leg
	b.change(func() []event {
		conf, cerr := b.adhocLocked(user, confID)
		if cerr != nil {
			err = cerr
			return nil
		}
		hang, err = pick(conf)
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range hang {
		l.ep.Hangup("hangup")
	}
	return nil
}
