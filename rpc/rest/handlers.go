package rest

import (
	_ "embed"
	"net/http"
	"net/url"
	"strings"
	"time"

	"webconf/rpc/web"
	"webconf/sipapp"
	"webconf/sipapp/meeting"
)

//go:embed openapi.json
var openAPIDoc []byte

func (a *API) openAPI(c *ctx) {
	c.w.Header().Set("Content-Type", "application/json")
	_, _ = c.w.Write(openAPIDoc)
}

// ---------------------------------------------------------------------------
// Views.

type userView struct {
	meeting.User
	Token string `json:"token,omitempty"` // only in the create answer
}

type lobbyView struct {
	State int    `json:"state"`
	Timer *int64 `json:"timer"`
}

type meetingView struct {
	UUID                  string            `json:"uuid"`
	Name                  string            `json:"name"`
	OwnerUUIDs            []string          `json:"owner_uuids"`
	Exten                 string            `json:"exten"`
	IngressHTTPURI        *string           `json:"ingress_http_uri"`
	GuestSIPAuthorization *string           `json:"guest_sip_authorization"`
	Persistent            bool              `json:"persistent"`
	RequireAuthorization  bool              `json:"require_authorization"`
	CreationTime          time.Time         `json:"creation_time"`
	ValidSince            *time.Time        `json:"valid_since"`
	ValidUntil            *time.Time        `json:"valid_until"`
	ExpiresAt             *time.Time        `json:"expires_at"`
	Language              string            `json:"language"`
	Participants          []meeting.Invitee `json:"participants"`
	URL                   *string           `json:"url"`
	MaxParticipants       int               `json:"max_participants"`
	Lobby                 lobbyView         `json:"lobby"`
	SIPDialin             bool              `json:"sip_dialin"`
	DialinNumber          *string           `json:"dialin_number"`
	SIPURI                string            `json:"sip_uri"`
}

func strPtr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// guestCredentials is null when the meeting requires authorization
// (Wazo): an accepted authorization carries it instead.
func guestCredentials(m meeting.Meeting) *string {
	if m.RequireAuthorization {
		return nil
	}
	return strPtr(basicCredentials(m.GuestUser, m.GuestPassword))
}

func (a *API) sipURI(user string) string { return "sip:" + user + "@" + a.o.SIPHost }

func (a *API) meetingURL(m meeting.Meeting) *string {
	if a.o.LinkHost == "" {
		return nil
	}
	var owner *meeting.User
	if len(m.OwnerUUIDs) > 0 {
		if u, ok := a.book.User(m.OwnerUUIDs[0]); ok {
			owner = &u
		}
	}
	return strPtr(linkOf(a.o.LinkHost, a.o.LinkFormat, m, owner))
}

// linkOf is a meeting's link ([meetings] linkHost and linkFormat); owner
// is its first owner, nil when unknown.
func linkOf(host, format string, m meeting.Meeting, owner *meeting.User) string {
	if format == "user" && owner != nil {
		who := owner.Alias
		if who == "" {
			who = owner.Username
		}
		return host + "/u/" + url.PathEscape(who) + "/" + m.UUID
	}
	return host + "/m/" + m.UUID
}

func (a *API) view(m meeting.Meeting) meetingView {
	ingress, _ := a.book.Ingress()
	return meetingView{
		UUID: m.UUID, Name: m.Name, OwnerUUIDs: m.OwnerUUIDs, Exten: m.Exten,
		IngressHTTPURI: strPtr(ingress), GuestSIPAuthorization: guestCredentials(m),
		Persistent: m.Persistent, RequireAuthorization: m.RequireAuthorization,
		CreationTime: m.CreationTime, ValidSince: m.ValidSince, ValidUntil: m.ValidUntil,
		ExpiresAt: m.ExpiresAt, Language: m.Language, Participants: m.Participants,
		URL: a.meetingURL(m), MaxParticipants: m.MaxParticipants,
		Lobby: lobbyView(m.Lobby), SIPDialin: m.SIPDialin,
		DialinNumber: strPtr(a.o.PSTNExtension), SIPURI: a.sipURI(m.Exten),
	}
}

type list[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

func listOf[T any](items []T) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items, Total: len(items)}
}

// ---------------------------------------------------------------------------
// Operators: users and the HTTP ingress.

func (a *API) createUser(c *ctx) {
	var in meeting.UserInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	u, tok, err := a.book.CreateUser(in)
	if err != nil {
		c.fail(err)
		return
	}
	c.w.Header().Set("Location", "/api/v1/users/"+u.UUID)
	c.ok(http.StatusCreated, userView{User: u, Token: tok})
}

func (a *API) listUsers(c *ctx) { c.ok(http.StatusOK, listOf(a.book.Users())) }

func (a *API) getUser(c *ctx) {
	u, ok := a.book.User(c.r.PathValue("uuid"))
	if !ok {
		c.fail(&apiError{http.StatusNotFound, "not-found", "user not found"})
		return
	}
	c.ok(http.StatusOK, u)
}

func (a *API) deleteUser(c *ctx) {
	if err := a.book.DeleteUser(c.r.PathValue("uuid")); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

type ingressView struct {
	URI string `json:"uri"`
}

type ingressInput struct {
	URI meeting.Opt[string] `json:"uri"`
}

func (a *API) getIngress(c *ctx) {
	uri, ok := a.book.Ingress()
	if !ok {
		c.fail(&apiError{http.StatusNotFound, "not-configured", "no HTTP ingress is configured"})
		return
	}
	c.ok(http.StatusOK, ingressView{uri})
}

func (a *API) putIngress(c *ctx) {
	var in ingressInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	if !in.URI.Set || in.URI.Null {
		c.fail(&apiError{http.StatusBadRequest, "invalid-field", "uri: is required"})
		return
	}
	if err := a.book.SetIngress(in.URI.Value); err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, ingressView{in.URI.Value})
}

// ---------------------------------------------------------------------------
// Users: their meetings.

func (a *API) getMe(c *ctx) { c.ok(http.StatusOK, c.me) }

func (a *API) createMeeting(c *ctx) {
	var in meeting.MeetingInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	m, err := a.book.CreateMeeting(c.me, in)
	if err != nil {
		c.fail(err)
		return
	}
	c.w.Header().Set("Location", "/api/v1/users/me/meetings/"+m.UUID)
	c.ok(http.StatusCreated, a.view(m))
}

func (a *API) listMeetings(c *ctx) {
	ms := a.book.Meetings(c.me.UUID)
	out := make([]meetingView, 0, len(ms))
	for _, m := range ms {
		out = append(out, a.view(m))
	}
	c.ok(http.StatusOK, listOf(out))
}

func (a *API) getMeeting(c *ctx) {
	m, err := a.book.MyMeeting(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.view(m))
}

func (a *API) updateMeeting(c *ctx) {
	var in meeting.MeetingInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	m, err := a.book.UpdateMeeting(c.me, c.r.PathValue("uuid"), in)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.view(m))
}

func (a *API) deleteMeeting(c *ctx) {
	if err := a.book.DeleteMeeting(c.me.UUID, c.r.PathValue("uuid")); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

func (a *API) listParticipants(c *ctx) {
	m, err := a.book.MyMeeting(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, listOf(a.sip.Participants(m.Exten)))
}

var errNoParticipant = &apiError{http.StatusNotFound, "no-such-participant", "no such participant in this meeting"}

func (a *API) kickParticipant(c *ctx) {
	m, err := a.book.MyMeeting(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	if !a.sip.KickParticipant(m.Exten, c.r.PathValue("participant_id")) {
		c.fail(errNoParticipant)
		return
	}
	c.noContent()
}

// ---------------------------------------------------------------------------
// Authorizations, owner side.

type authorizationView struct {
	meeting.Authorization
	GuestSIPAuthorization *string `json:"guest_sip_authorization"`
}

func (a *API) authView(au meeting.Authorization) authorizationView {
	v := authorizationView{Authorization: au}
	if au.Status == meeting.StatusAccepted {
		if m, ok := a.book.Meeting(au.MeetingUUID); ok {
			v.GuestSIPAuthorization = strPtr(basicCredentials(m.GuestUser, m.GuestPassword))
		}
	}
	return v
}

func (a *API) listAuthorizations(c *ctx) {
	as, err := a.book.Authorizations(c.me.UUID, c.r.PathValue("uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	out := make([]authorizationView, 0, len(as))
	for _, au := range as {
		out = append(out, a.authView(au))
	}
	c.ok(http.StatusOK, listOf(out))
}

func (a *API) getAuthorization(c *ctx) {
	au, err := a.book.Authorization(c.me.UUID, c.r.PathValue("uuid"), c.r.PathValue("authorization_uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.authView(au))
}

func (a *API) deleteAuthorization(c *ctx) {
	if err := a.book.DeleteAuthorization(c.me.UUID, c.r.PathValue("uuid"), c.r.PathValue("authorization_uuid")); err != nil {
		c.fail(err)
		return
	}
	c.noContent()
}

func (a *API) decide(c *ctx, accept bool) {
	au, err := a.book.Decide(c.me.UUID, c.r.PathValue("uuid"), c.r.PathValue("authorization_uuid"), accept)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.authView(au))
}

func (a *API) acceptAuthorization(c *ctx) { a.decide(c, true) }
func (a *API) rejectAuthorization(c *ctx) { a.decide(c, false) }

// ---------------------------------------------------------------------------
// Webinar controls (Nextcloud Talk).

func (a *API) putLobby(c *ctx) {
	var in meeting.LobbyInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	m, err := a.book.SetLobby(c.me.UUID, c.r.PathValue("uuid"), in)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.view(m))
}

func (a *API) admit(c *ctx) {
	m, ok := a.book.Meeting(c.r.PathValue("uuid"))
	if !ok {
		c.fail(&apiError{http.StatusNotFound, "not-found", "meeting not found"})
		return
	}
	if !m.OwnedBy(c.me.UUID) {
		c.fail(&apiError{http.StatusForbidden, "forbidden", "only an owner may admit callers"})
		return
	}
	if !a.sip.Admit(m.Exten, c.r.PathValue("participant_id")) {
		c.fail(&apiError{http.StatusNotFound, "no-such-participant", "no such caller is waiting in the lobby"})
		return
	}
	c.noContent()
}

type sipInput struct {
	State meeting.Opt[int] `json:"state"`
}

func (a *API) putSIP(c *ctx) {
	var in sipInput
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	state := -1
	if in.State.Set && !in.State.Null {
		state = in.State.Value
	}
	m, err := a.book.SetSIP(c.me, c.r.PathValue("uuid"), state)
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.view(m))
}

// ---------------------------------------------------------------------------
// Guests.

type guestView struct {
	UUID                  string  `json:"uuid"`
	Name                  string  `json:"name"`
	Exten                 string  `json:"exten"`
	IngressHTTPURI        *string `json:"ingress_http_uri"`
	GuestSIPAuthorization *string `json:"guest_sip_authorization"`
	RequireAuthorization  bool    `json:"require_authorization"`
	SIPURI                string  `json:"sip_uri"`
	GuestSIPURI           string  `json:"guest_sip_uri"`
	DialinNumber          *string `json:"dialin_number"`
}

func (a *API) guestMeetingOf(c *ctx) (meeting.Meeting, bool) {
	m, ok := a.book.Meeting(c.r.PathValue("uuid"))
	if !ok {
		c.fail(&apiError{http.StatusNotFound, "not-found", "meeting not found"})
	}
	return m, ok
}

func (a *API) guestMeeting(c *ctx) {
	m, ok := a.guestMeetingOf(c)
	if !ok {
		return
	}
	ingress, _ := a.book.Ingress()
	c.ok(http.StatusOK, guestView{
		UUID: m.UUID, Name: m.Name, Exten: m.Exten, IngressHTTPURI: strPtr(ingress),
		GuestSIPAuthorization: guestCredentials(m), RequireAuthorization: m.RequireAuthorization,
		SIPURI: a.sipURI(m.Exten), GuestSIPURI: a.sipURI(sipapp.GuestExten),
		DialinNumber: strPtr(a.o.PSTNExtension),
	})
}

func (a *API) guestStatus(c *ctx) {
	m, ok := a.guestMeetingOf(c)
	if !ok {
		return
	}
	c.ok(http.StatusOK, map[string]bool{"full": a.sip.Seats(m.Exten) >= m.MaxParticipants})
}

type guestRequest struct {
	GuestName meeting.Opt[string] `json:"guest_name"`
}

func (a *API) guestRequest(c *ctx) {
	var in guestRequest
	if err := decode(c.r, &in); err != nil {
		c.fail(err)
		return
	}
	// Nobody is asked for credentials here, and every request is a row
	// kept 24 h: each one made is charged to the client address's budget
	// ([meetings] guest_requests_per_source), and a spent budget stores
	// nothing more until its ban ends.
	budget := a.sip.Guards().GuestRequests
	src := a.peer(c.r)
	if d := budget.BannedFor(src); d > 0 {
		c.w.Header().Set("Retry-After", retryAfter(d))
		c.fail(errGuestBudget)
		return
	}
	au, err := a.book.RequestAuthorization(c.r.PathValue("guest_uuid"), c.r.PathValue("uuid"), in.GuestName.Value)
	if err != nil {
		c.fail(err)
		return
	}
	if budget.Fail(src) {
		a.log.Warn("guest requests refused from this address for a while: its budget is spent", "peer", src)
	}
	c.ok(http.StatusCreated, a.authView(au))
}

func (a *API) guestPoll(c *ctx) {
	au, err := a.book.GuestAuthorization(c.r.PathValue("guest_uuid"), c.r.PathValue("uuid"), c.r.PathValue("authorization_uuid"))
	if err != nil {
		c.fail(err)
		return
	}
	c.ok(http.StatusOK, a.authView(au))
}

// ---------------------------------------------------------------------------
// Public rooms.

type publicView struct {
	Identifier string `json:"identifier"`
	// Open: the room exists (someone called it within public_room_ttl).
	Open bool `json:"open"`
	// Room and RoomSIPURI are null until the room is open: its number is
	// drawn when its first caller makes it.
	Room         *string `json:"room"`
	SIPURI       string  `json:"sip_uri"`
	RoomSIPURI   *string `json:"room_sip_uri"`
	DialinNumber *string `json:"dialin_number"`
}

// publicRoom is GET /c/{identifier}: how to join (JSON with Accept:
// application/json, else the join page). It makes and stores
// nothing (a scanner or a link previewer costs nothing); the room comes
// into being with its first caller (sipapp, charged to the caller's
// address).
func (a *API) publicRoom(c *ctx) {
	if !a.o.PublicRooms {
		c.fail(errNoRoute)
		return
	}
	id := c.r.PathValue("identifier")
	p, open, err := a.book.PublicRoomInfo(id)
	if err != nil {
		c.fail(err)
		return
	}
	v := publicView{Identifier: id, Open: open, SIPURI: a.sipURI(sipapp.PublicRoomPrefix + id),
		DialinNumber: strPtr(a.o.PSTNExtension)}
	if open {
		v.Room, v.RoomSIPURI = strPtr(p.Room), strPtr(a.sipURI(p.Room))
	}
	if wantsJSON(c.r) {
		c.ok(http.StatusOK, v)
		return
	}
	// The join page (pages.go), which also tells how to call.
	web.Join(c.w, c.r, http.StatusOK, publicJoinInfo(v))
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
			return true
		}
	}
	return false
}
