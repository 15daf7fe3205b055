package rest

import (
	"strings"

	"webconf/rpc/events"
)

// viewer admits the event stream's clients: the operator with HTTP Basic,
// a user with a bearer token in Authorization or, for browsers, which
// cannot set headers on a WebSocket, a ticket in ?ticket= (tickets.go) or
// the token in ?token=. Everything is checked
// before the upgrade, so a refusal is a plain HTTP answer (401, 429).
func (a *API) viewer(c *ctx) bool {
	h := c.r.Header.Get("Authorization")
	scheme, _, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic"):
		if !a.operator(c) {
			return false
		}
		c.operator = true
		return true
	case h != "":
		if !a.user(c) {
			return false
		}
		c.token = true
		return true
	}
	if a.banned(c) {
		return false
	}
	if tk := c.r.URL.Query().Get("ticket"); tk != "" {
		return a.redeemTicket(c, tk)
	}
	tok := c.r.URL.Query().Get("token")
	if tok == "" {
		a.failedAuth(c, `Bearer realm="webconf"`)
		return false
	}
	u, ok := a.book.Authenticate(tok)
	if !ok {
		a.failedAuth(c, `Bearer realm="webconf", error="invalid_token"`)
		return false
	}
	c.me, c.token = u, true
	return true
}

// streamEvents is GET /api/v1/events: the event stream over WebSocket.
// The filter and since are checked before the upgrade: a bad parameter
// is 400, a since older than the ring 410.
func (a *API) streamEvents(c *ctx) {
	bus := a.o.Events
	if bus == nil {
		c.fail(events.ErrClosed)
		return
	}
	f := events.Filter{Operator: c.operator, User: c.me.UUID}
	since, err := events.ParseQuery(c.r.URL.Query(), &f)
	if err != nil {
		c.fail(err)
		return
	}
	sub, replay, err := bus.Subscribe(f, since)
	if err != nil {
		c.fail(err)
		return
	}
	// Only token holders may come from another origin (see events.Serve).
	if err := events.Serve(c.w, c.r, sub, replay, c.token); err != nil {
		a.log.Debug("event stream ended", "err", err)
	}
}
