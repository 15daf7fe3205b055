package rest

import (
	"net/http"

	"webconf/sipapp/meeting"
)

type authKind int

const (
	authNone authKind = iota
	authOperator
	authUser
	// authViewer: an operator (HTTP Basic) or a user (bearer token in
	// Authorization or ?token=); the event stream.
	authViewer
	// authCaller: an operator (HTTP Basic) or a user (bearer token), in
	// the Authorization header only; event tickets.
	authCaller
)

// route is one method on one path pattern (net/http ServeMux syntax).
type route struct {
	method string
	path   string
	auth   authKind
	h      func(*ctx)
}

// ctx is one request.
type ctx struct {
	w   http.ResponseWriter
	r   *http.Request
	api *API
	me  meeting.User // with authUser, and authViewer for a user
	// with authViewer: operator credentials; token: a user's token (a
	// page may hold it, so it may open the stream from another origin)
	operator, token bool
}

func (c *ctx) fail(err error) {
	e := wire(err)
	if e.Status == http.StatusInternalServerError || e.Status == http.StatusServiceUnavailable {
		c.api.log.Error("http request failed", "method", c.r.Method, "path", c.r.URL.Path, "err", err)
	}
	if e.Status == http.StatusUnauthorized && c.w.Header().Get("WWW-Authenticate") == "" {
		// Every 401 names a scheme (RFC 9110 section 15.5.2); this one is
		// a valid token that lacks a capability (Nextcloud Talk's 401).
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="webconf", error="insufficient_scope"`)
	}
	writeError(c.w, err)
}

func (c *ctx) ok(status int, v any) { writeJSON(c.w, status, v) }

func (c *ctx) noContent() { c.w.WriteHeader(http.StatusNoContent) }

// Route is a method and path pattern, for the OpenAPI check.
type Route struct{ Method, Path string }

// Routes lists every route the API serves.
func (a *API) Routes() []Route {
	var out []Route
	for _, r := range a.routes() {
		out = append(out, Route{r.method, r.path})
	}
	return out
}

func (a *API) routes() []route {
	const (
		me      = "/api/v1/users/me"
		myMeet  = me + "/meetings/{uuid}"
		webinar = "/api/v1/meetings/{uuid}/webinar"
		guest   = "/api/v1/guests/{guest_uuid}/meetings/{uuid}/authorizations"
		myAuth  = myMeet + "/authorizations/{authorization_uuid}"
	)
	return []route{
		{"GET", "/api/v1/openapi.json", authNone, a.openAPI},

		{"POST", "/api/v1/users", authOperator, a.createUser},
		{"GET", "/api/v1/users", authOperator, a.listUsers},
		{"GET", "/api/v1/users/{uuid}", authOperator, a.getUser},
		{"PUT", "/api/v1/users/{uuid}", authOperator, a.updateUser},
		{"DELETE", "/api/v1/users/{uuid}", authOperator, a.deleteUser},
		{"GET", "/api/v1/ingresses/http", authOperator, a.getIngress},
		{"PUT", "/api/v1/ingresses/http", authOperator, a.putIngress},

		{"GET", me, authUser, a.getMe},
		{"POST", me + "/calls", authUser, a.placeCall},
		{"GET", me + "/calls", authUser, a.listCalls},
		{"DELETE", me + "/calls/{call_id}", authUser, a.hangupCall},
		{"PUT", me + "/calls/{call_id}/hold", authUser, a.callControl(callHold, true)},
		{"PUT", me + "/calls/{call_id}/unhold", authUser, a.callControl(callHold, false)},
		{"PUT", me + "/calls/{call_id}/mute", authUser, a.callControl(callMute, true)},
		{"PUT", me + "/calls/{call_id}/unmute", authUser, a.callControl(callMute, false)},
		{"HEAD", me + "/conferences/adhoc", authUser, a.probeAdhoc},
		{"POST", me + "/conferences/adhoc", authUser, a.createAdhoc},
		{"DELETE", me + "/conferences/adhoc/{conference_id}", authUser, a.adhocControl(adhocDelete)},
		{"PUT", me + "/conferences/adhoc/{conference_id}/participants/{call_id}", authUser, a.adhocControl(adhocAdd)},
		{"DELETE", me + "/conferences/adhoc/{conference_id}/participants/{call_id}", authUser, a.adhocControl(adhocRemove)},
		{"POST", me + "/meetings", authUser, a.createMeeting},
		{"GET", me + "/meetings", authUser, a.listMeetings},
		{"GET", myMeet, authUser, a.getMeeting},
		{"PUT", myMeet, authUser, a.updateMeeting},
		{"DELETE", myMeet, authUser, a.deleteMeeting},
		{"GET", myMeet + "/participants", authUser, a.listParticipants},
		{"DELETE", myMeet + "/participants/{participant_id}", authUser, a.kickParticipant},
		{"PUT", myMeet + "/participants/mute", authUser, a.muteAll},
		{"PUT", myMeet + "/participants/unmute", authUser, a.unmuteAll},
		{"PUT", myMeet + "/participants/{participant_id}/mute", authUser, a.muteOne(true)},
		{"PUT", myMeet + "/participants/{participant_id}/unmute", authUser, a.muteOne(false)},
		{"PUT", myMeet + "/lock", authUser, a.lockMeeting},
		{"PUT", myMeet + "/unlock", authUser, a.unlockMeeting},
		{"GET", myMeet + "/invitations", authUser, a.listInvitations},
		{"POST", myMeet + "/invitations/resend", authUser, a.resendInvitations},
		{"GET", myMeet + "/authorizations", authUser, a.listAuthorizations},
		{"GET", myAuth, authUser, a.getAuthorization},
		{"DELETE", myAuth, authUser, a.deleteAuthorization},
		{"PUT", myAuth + "/accept", authUser, a.acceptAuthorization},
		{"PUT", myAuth + "/reject", authUser, a.rejectAuthorization},

		{"PUT", webinar + "/lobby", authUser, a.putLobby},
		{"POST", webinar + "/lobby/admit/{participant_id}", authUser, a.admit},
		{"PUT", webinar + "/sip", authUser, a.putSIP},

		{"GET", "/api/v1/guests/me/meetings/{uuid}", authNone, a.guestMeeting},
		{"GET", "/api/v1/guests/me/meetings/{uuid}/status", authNone, a.guestStatus},
		{"POST", guest, authNone, a.guestRequest},
		{"GET", guest + "/{authorization_uuid}", authNone, a.guestPoll},

		{"GET", "/c/{identifier}", authNone, a.publicRoom},

		{"GET", "/api/v1/events", authViewer, a.streamEvents},
		{"POST", "/api/v1/events/tickets", authCaller, a.createTicket},

		{"POST", "/api/v1/jsonrpc", authNone, a.jsonRPC},

		// Browsers joining a room: auth is in the join message (webrtc.go).
		{"GET", "/api/v1/rooms/{room}/webrtc", authNone, a.webrtcSignal},
	}
}
