package rest

import (
	"net/http"

	"webconf/sipapp/meeting"
)

// Ad hoc conferences (wazo-calld's /users/me/conferences/adhoc,
// meetings-anchors.md 1.9): the rules are package calls'.

// mayAdhoc: a user may use ad hoc conferences when they may have calls to
// merge: they have a line (POST /users/me/calls) or a SIP account (their
// phone calls out through us). Others get 403 adhoc-not-allowed.
func mayAdhoc(u meeting.User) bool { return u.Line != "" || u.SIPAccount }

// adhocAllowed answers 403 for a user who may not use ad hoc conferences.
func (a *API) adhocAllowed(c *ctx) bool {
	if !mayAdhoc(c.me) {
		c.fail(errAdhocNotAllowed)
		return false
	}
	return true
}

// probeAdhoc is HEAD .../conferences/adhoc (the JS SDK's probe).
func (a *API) probeAdhoc(c *ctx) {
	if a.adhocAllowed(c) {
		c.w.WriteHeader(http.StatusOK)
	}
}

type adhocInput struct {
	HostCallID         string   `json:"host_call_id"`
	ParticipantCallIDs []string `json:"participant_call_ids"`
}

func (a *API) createAdhoc(c *ctx) {
	if !a.adhocAllowed(c) {
		return
	}
	var in adhocInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	id, err := a.sip.Calls().StartAdhoc(c.me.UUID, in.HostCallID, in.ParticipantCallIDs)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusCreated, map[string]string{"conference_id": id})
}

type adhocOp int

const (
	adhocAdd adhocOp = iota
	adhocRemove
	adhocDelete
)

func (a *API) adhocControl(op adhocOp) func(*ctx) {
	return func(c *ctx) {
		if !a.adhocAllowed(c) {
			return
		}
		b := a.sip.Calls()
		conf, call := c.r.PathValue("conference_id"), c.r.PathValue("call_id")
		var err error
		switch op {
		case adhocAdd:
			err = b.AddAdhocParticipant(c.me.UUID, conf, call)
		case adhocRemove:
			err = b.RemoveAdhocParticipant(c.me.UUID, conf, call)
		case adhocDelete:
			err = b.DeleteAdhoc(c.me.UUID, conf)
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.noContent()
	}
}
