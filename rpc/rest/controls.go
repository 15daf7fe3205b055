package rest

import "webconf/sipapp/meeting"

// Room controls of a meeting, for its owners: lock / unlock its room, mute
// / unmute all its callers. Each answers 204; a meeting that is not the
// user's is 404, as for the participants routes.

// muteInput is PUT .../participants/mute's optional body: a participant
// (its id, the call tag) who stays unmuted besides the meeting's owners'
// phones (calls whose user_uuid is an owner's: they answered the direct
// dial's challenge with the owner's SIP credentials), which are always
// spared.
type muteInput struct {
	ExceptParticipantID string `json:"except_participant_id"`
}

// myMeetingRoom is the room of the user's meeting, opened if an operator
// deleted it over XML-RPC (as the meeting's next caller would).
func (a *API) myMeetingRoom(c *ctx) (meeting.Meeting, bool) {
	m, err := a.book.MyMeeting(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return m, false
	}
	if err := a.sip.OpenRoom(m.Exten); err != nil {
		c.fail(err)
		return m, false
	}
	return m, true
}

func (a *API) lockMeeting(c *ctx)   { a.setLocked(c, true) }
func (a *API) unlockMeeting(c *ctx) { a.setLocked(c, false) }

func (a *API) setLocked(c *ctx, locked bool) {
	m, ok := a.myMeetingRoom(c)
	if !ok {
		return
	}
	if err := a.sip.Registry().SetLocked(m.Exten, locked); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

func (a *API) muteAll(c *ctx) {
	var in muteInput
	if c.r.ContentLength != 0 || c.r.Header.Get("Content-Type") != "" {
		if err := decode(c.r, &in); err != nil {
			c.fail(err)
			return
		}
	}
	m, ok := a.myMeetingRoom(c)
	if !ok {
		return
	}
	var except []string
	if in.ExceptParticipantID != "" {
		except = append(except, in.ExceptParticipantID)
	}
	if err := a.sip.MuteAll(m.Exten, except...); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

// muteOne mutes or unmutes one participant of the user's meeting (the
// console's per-participant button): the registry's mute, as XML-RPC
// mute/unmute with the room's admin PIN.
func (a *API) muteOne(v bool) func(*ctx) {
	return func(c *ctx) {
		m, ok := a.myMeetingRoom(c)
		if !ok {
			return
		}
		set := a.sip.Registry().Unmute
		if v {
			set = a.sip.Registry().Mute
		}
		// A call that is not there is 404 no-such-participant (errors.go).
		if err := set(m.Exten, c.r.PathValue("participant_id")); err != nil {
			c.fail(err)
			return
		}
		c.noContent()
	}
}

func (a *API) unmuteAll(c *ctx) {
	m, ok := a.myMeetingRoom(c)
	if !ok {
		return
	}
	if err := a.sip.Registry().UnmuteAll(m.Exten); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}
