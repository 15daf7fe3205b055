package room

import "slices"

// Room controls: lock / unlock and mute all / unmute all, for every room
// (XML-RPC rooms, meetings' rooms, public rooms). The control plane checks
// who may ask (an admin PIN, a meeting owner) before it calls these.

// SetLocked locks or unlocks a room. A locked room refuses new callers
// (Join answers ErrLocked); the calls in it stay, and an operator's
// dial-out (AddDialout) still goes in. The lock is stored with the room,
// so a restart keeps it; a refused write (ErrStore) changes nothing. The
// sink hears RoomLocked / RoomUnlocked when the state changes.
func (r *Registry) SetLocked(name string, locked bool) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return ErrNoRoom
	}
	if rm.locked == locked {
		r.mu.Unlock()
		return nil
	}
	next := *rm
	next.locked = locked
	if err := r.putLocked(next); err != nil {
		r.mu.Unlock()
		return err
	}
	rm.locked = locked
	rm.lastAccess = r.now()
	r.mu.Unlock()
	if locked {
		r.sink.RoomLocked(name)
	} else {
		r.sink.RoomUnlocked(name)
	}
	return nil
}

// Locked reports whether a room exists and is locked.
func (r *Registry) Locked(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm, ok := r.rooms[name]
	return ok && rm.locked
}

// MuteAll mutes every call of the room (ringing dial-outs included, so
// that they join muted) except the calls tagged in except: the one who
// asks. A tag in except that names no call of the room is ErrNoCall and
// nothing changes. The sink hears Muted for each call whose state
// changed. Callers who join later are not muted (as Asterisk's
// ConfbridgeMute on "participants" is a one-off).
func (r *Registry) MuteAll(name string, except ...string) error {
	return r.setAllMuted(name, true, nil, except)
}

// MuteAllBut is MuteAll that also spares the calls of the users named
// (user UUIDs, Participant.User): a meeting's owners' phones. A user
// with no call in the room is no error.
func (r *Registry) MuteAllBut(name string, users []string, except ...string) error {
	return r.setAllMuted(name, true, users, except)
}

// UnmuteAll unmutes every call of the room; the sink hears Unmuted for
// each call whose state changed.
func (r *Registry) UnmuteAll(name string) error { return r.setAllMuted(name, false, nil, nil) }

func (r *Registry) setAllMuted(name string, v bool, users, except []string) error {
	r.mu.Lock()
	rm, ok := r.rooms[name]
	if !ok {
		r.mu.Unlock()
		return ErrNoRoom
	}
	for _, tag := range except {
		if _, _, err := r.findLocked(name, tag); tag == "" || err != nil {
			r.mu.Unlock()
			return ErrNoCall
		}
	}
	type change struct {
		tag string
		c   Controller
	}
	var changed []change
outer:
	for _, p := range rm.parts {
		if p.CallTag == "" || p.Status >= StatusDisconnecting || p.Muted == v ||
			(p.User != "" && slices.Contains(users, p.User)) {
			continue
		}
		for _, tag := range except {
			if p.CallTag == tag {
				continue outer
			}
		}
		p.Muted = v
		changed = append(changed, change{p.CallTag, r.live[p.CallTag]})
	}
	rm.lastAccess = r.now()
	r.mu.Unlock()
	for _, ch := range changed {
		if ch.c != nil {
			ch.c.SetMuted(v)
		}
		if v {
			r.sink.Muted(name, ch.tag)
		} else {
			r.sink.Unmuted(name, ch.tag)
		}
	}
	return nil
}
