package rest

import (
	"net/http"

	"webconf/sipapp"
	"webconf/sipapp/calls"
	"webconf/sipapp/meeting"
)

// The calls API (wazo-calld's /users/me/calls) and the operator's user
// update that sets a user's line and SIP password.

func (a *API) updateUser(c *ctx) {
	var in meeting.UserUpdate
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	u, err := a.book.UpdateUser(c.r.PathValue("uuid"), in)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, userView{User: u})
}

type callInput struct {
	Destination string `json:"destination"`
}

func (a *API) placeCall(c *ctx) {
	var in callInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	id, err := a.sip.PlaceCall(c.me, in.Destination)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusCreated, map[string]string{"call_id": id})
}

type callList struct {
	Items []calls.Call `json:"items"`
}

func (a *API) listCalls(c *ctx) {
	c.ok(http.StatusOK, callList{Items: a.sip.Calls().List(c.me.UUID)})
}

// myCall is the call_id of the path when the user may act on it: one of
// their legs or a peer of one (404 no-such-call otherwise).
func (a *API) myCall(c *ctx) (string, bool) {
	id := c.r.PathValue("call_id")
	if !a.sip.Calls().Visible(c.me.UUID, id) {
		c.fail(sipapp.ErrNoSuchCall)
		return "", false
	}
	return id, true
}

func (a *API) hangupCall(c *ctx) {
	id, ok := a.myCall(c)
	if !ok {
		return
	}
	if err := a.sip.Calls().Hangup(id, "hangup"); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

type callOp int

const (
	callHold callOp = iota
	callMute
)

func (a *API) callControl(op callOp, on bool) func(*ctx) {
	return func(c *ctx) {
		id, ok := a.myCall(c)
		if !ok {
			return
		}
		var err error
		switch op {
		case callHold:
			err = a.sip.Calls().Hold(id, on)
		case callMute:
			err = a.sip.Calls().Mute(id, on)
		}
		if err != nil {
			c.fail(err)
			return
		}
		c.noContent()
	}
}
