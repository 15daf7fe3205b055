package events

import "webconf/sipapp/calls"

// The calls API's events (wazo-calld's names).
const (
	CallCreated  = "call_created"
	CallUpdated  = "call_updated"
	CallAnswered = "call_answered"
	CallEnded    = "call_ended"

	AdhocCreated           = "conference_adhoc_created"
	AdhocDeleted           = "conference_adhoc_deleted"
	AdhocParticipantJoined = "conference_adhoc_participant_joined"
	AdhocParticipantLeft   = "conference_adhoc_participant_left"
)

// CallEnd is the payload of call_ended: the call as GET
// /users/me/calls listed it, and why it ended.
type CallEnd struct {
	calls.Call
	Reason string `json:"reason"`
}

// CallEvents publishes the calls Switchboard's events (calls.Events) on a
// Bus. The Switchboard calls it outside its state lock, one change at a
// time, so it publishes at once: Publish only marshals and hands the
// bytes to the subscribers' queues, never waiting for one. A call's
// events carry no room: ?rooms= filters them out.
type CallEvents struct{ bus *Bus }

// NewCallEvents makes the adapter.
func NewCallEvents(bus *Bus) *CallEvents { return &CallEvents{bus: bus} }

// CallCreated publishes call_created.
func (e *CallEvents) CallCreated(c calls.Call, users []string) {
	e.bus.Publish(CallCreated, c, "", users)
}

// CallUpdated publishes call_updated (status, on hold, muted, talking_to).
func (e *CallEvents) CallUpdated(c calls.Call, users []string) {
	e.bus.Publish(CallUpdated, c, "", users)
}

// CallAnswered publishes call_answered.
func (e *CallEvents) CallAnswered(c calls.Call, users []string) {
	e.bus.Publish(CallAnswered, c, "", users)
}

// CallEnded publishes call_ended with the reason.
func (e *CallEvents) CallEnded(c calls.Call, reason string, users []string) {
	e.bus.Publish(CallEnded, CallEnd{Call: c, Reason: reason}, "", users)
}

// AdhocCreated publishes conference_adhoc_created {conference_id}.
func (e *CallEvents) AdhocCreated(a calls.AdhocConference, users []string) {
	e.bus.Publish(AdhocCreated, a, "", users)
}

// AdhocDeleted publishes conference_adhoc_deleted {conference_id}.
func (e *CallEvents) AdhocDeleted(a calls.AdhocConference, users []string) {
	e.bus.Publish(AdhocDeleted, a, "", users)
}

// AdhocParticipantJoined publishes conference_adhoc_participant_joined
// {conference_id, call_id}.
func (e *CallEvents) AdhocParticipantJoined(p calls.AdhocParticipant, users []string) {
	e.bus.Publish(AdhocParticipantJoined, p, "", users)
}

// AdhocParticipantLeft publishes conference_adhoc_participant_left
// {conference_id, call_id}.
func (e *CallEvents) AdhocParticipantLeft(p calls.AdhocParticipant, users []string) {
	e.bus.Publish(AdhocParticipantLeft, p, "", users)
}

var _ calls.Events = (*CallEvents)(nil)
