package rpc

import (
	"context"
	"errors"

	"webconf/sipapp/room"
)

// Room controls (ours, not SEMS's): lock / unlock, mute all / unmute all
// and the participants list with talking and muted, for every room. They
// take the room and its admin PIN first and follow the getRoom rule and
// reply shapes of SEMS's kickout and mute ([0,"OK"], [1,"wrong adminpin or
// inexisting room"], [2,"call does not exist"], then the server-info
// string). As SEMS has no such functions, they stay out of _list; di,
// the direct names (with direct_export) and JSON-RPC carry them.
var controls = []string{"roomLock", "roomUnlock", "roomMuteAll", "roomUnmuteAll", "roomParticipants"}

// controlArity is the argument signature of each control; roomMuteAll's
// optional third argument is the asker's call tag.
var controlArity = map[string]string{
	"roomLock": "ss", "roomUnlock": "ss", "roomMuteAll": "ss", "roomUnmuteAll": "ss", "roomParticipants": "ss",
}

// addControls puts the controls in the webconference function table.
func (s *Service) addControls() {
	s.wc["roomLock"] = s.lockOp(true)
	s.wc["roomUnlock"] = s.lockOp(false)
	s.wc["roomMuteAll"] = s.roomMuteAll
	s.wc["roomUnmuteAll"] = s.roomUnmuteAll
	s.wc["roomParticipants"] = s.roomParticipants
}

// controlFail is the reply to a control whose room went (or whose store
// write was refused) after the getRoom rule let it through.
func controlFail(err error) []any {
	if errors.Is(err, room.ErrStore) {
		return []any{1, msgInternal}
	}
	return []any{1, msgWrongPin}
}

// lockOp makes roomLock and roomUnlock: a locked room refuses new callers
// (the keypad caller hears room_locked, a direct dial gets 403); the calls
// in it stay. The lock is stored with the room.
func (s *Service) lockOp(locked bool) func(context.Context, []any) []any {
	return func(ctx context.Context, args []any) []any {
		name := str(args, 0)
		if err := s.authorize(ctx, name, str(args, 1)); err != nil {
			return []any{1, failMsg(err)}
		}
		if err := s.reg.SetLocked(name, locked); err != nil {
			return controlFail(err)
		}
		return []any{0, "OK"}
	}
}

// roomMuteAll mutes every call in the room but the asker's (the optional
// call tag; a non-string there is ignored, as SEMS ignores a mistyped
// optional argument) and, in a meeting's room, its owners' phones (as
// REST's mute-all: one rule per room, whoever asks). A call tag that
// names no call of the room is [2,"call does not exist"] and mutes
// nobody.
func (s *Service) roomMuteAll(ctx context.Context, args []any) []any {
	name := str(args, 0)
	if err := s.authorize(ctx, name, str(args, 1)); err != nil {
		return []any{1, failMsg(err)}
	}
	var except []string
	if tag := optStr(args, 2, ""); tag != "" {
		except = append(except, tag)
	}
	switch err := s.srv.MuteAll(name, except...); {
	case errors.Is(err, room.ErrNoCall):
		return []any{2, "call does not exist"}
	case err != nil:
		return controlFail(err)
	}
	return []any{0, "OK"}
}

func (s *Service) roomUnmuteAll(ctx context.Context, args []any) []any {
	name := str(args, 0)
	if err := s.authorize(ctx, name, str(args, 1)); err != nil {
		return []any{1, failMsg(err)}
	}
	if err := s.reg.UnmuteAll(name); err != nil {
		return controlFail(err)
	}
	return []any{0, "OK"}
}

// roomParticipants is roomInfo with objects: the records in roomInfo's
// order, each {call_tag, number, status, reason, muted, talking,
// participant_id}, and the room's lock: [0, "OK", {"locked": bool,
// "participants": [...]}]. roomInfo itself stays SEMS's arrays.
func (s *Service) roomParticipants(ctx context.Context, args []any) []any {
	name := str(args, 0)
	if err := s.authorize(ctx, name, str(args, 1)); err != nil {
		return []any{1, failMsg(err), map[string]any{}}
	}
	info, _ := s.reg.Room(name)
	talking := map[string]bool{}
	for _, lp := range s.srv.Participants(name) {
		talking[lp.CallTag] = lp.Talking
	}
	parts := make([]any, 0, len(info.Participants))
	for _, p := range info.Participants {
		parts = append(parts, map[string]any{
			"call_tag": p.CallTag, "number": p.Number, "status": int(p.Status), "reason": p.Reason,
			"muted": p.Muted, "talking": talking[p.CallTag], "participant_id": p.ID,
		})
	}
	return []any{0, "OK", map[string]any{"locked": s.reg.Locked(name), "participants": parts}}
}
