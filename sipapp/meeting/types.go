// Package meeting keeps the scheduled meetings of the REST API: users and
// their bearer tokens, meetings (the Wazo meeting resource with Quobis's
// scheduling fields and Nextcloud Talk's lobby and SIP switch), guest
// authorization requests, the HTTP ingress and public rooms. See
// ../shared/spec/meetings-anchors.md sections 1-3 and 6.
//
// A Book holds them in memory and writes every change through to the store
// (as store.Doc documents) before it is visible, so that nothing a client
// was told succeeded is lost by a restart or kill -9. Each meeting owns a
// conference room named by its exten; the Book tells the SIP application
// through Hooks when a room must exist, when its callers must be hung up
// (expiry, valid_until, deletion) and when its lobby lifts. Timers fire at
// the exact instants (meeting_ttl after creation, valid_until, the lobby's
// timer); they are re-armed from the store at start-up, and ones that fell
// due while the server was down fire at once.
//
// Secrets: bearer tokens are kept only as SHA-256 hashes; guest SIP
// passwords are kept in clear because the API hands them to guests and the
// SIP digest check needs them. Neither is logged or put in an error.
package meeting

import (
	"errors"
	"fmt"
	"time"
)

// Capabilities a user may have.
const (
	CapMeetings = "meetings" // may create meetings
	CapSIP      = "sip"      // may switch a meeting's SIP dial-in, and call out with a SIP password
)

// Authorization states (Wazo's meeting_authorization).
const (
	StatusPending  = "pending"
	StatusAccepted = "accepted"
	StatusRejected = "rejected"
)

// Limits from Wazo's authorization plugin.
const (
	MaxPendingAuthorizations = 128
	AuthorizationTTL         = 24 * time.Hour
)

// User is an API user. The token itself is never stored.
type User struct {
	UUID         string   `json:"uuid"`
	Username     string   `json:"username"`
	Email        string   `json:"email"`
	MobilePhone  string   `json:"mobile_phone"`
	Landline     string   `json:"landline"`
	Alias        string   `json:"alias"`
	Role         string   `json:"role"`
	Capabilities []string `json:"capabilities"`
	// Line is the user's phone (a sip: or sips: URI): the calls API rings
	// it first. "" = none.
	Line string `json:"line"`
	// SIPAccount says whether the user has a SIP password (their phone
	// may then call out through us); the password itself is never shown.
	SIPAccount bool       `json:"sip_account"`
	Created    time.Time  `json:"created"`
	LastLogin  *time.Time `json:"last_login"`
}

// Can reports whether the user has the capability.
func (u User) Can(c string) bool {
	for _, x := range u.Capabilities {
		if x == c {
			return true
		}
	}
	return false
}

// Invitee is someone invited to a meeting (Quobis participants).
type Invitee struct {
	Name  string `json:"name"`
	Email string `json:"email"`
	Phone string `json:"phone"`
}

// Lobby is Nextcloud Talk's webinar lobby: state 1 holds phone callers
// until an owner admits them; Timer (Unix seconds) lifts it by itself.
type Lobby struct {
	State int    `json:"state"`
	Timer *int64 `json:"timer"`
}

// Meeting is one scheduled meeting.
type Meeting struct {
	UUID                 string     `json:"uuid"`
	Name                 string     `json:"name"`
	OwnerUUIDs           []string   `json:"owner_uuids"`
	Exten                string     `json:"exten"`
	Persistent           bool       `json:"persistent"`
	RequireAuthorization bool       `json:"require_authorization"`
	CreationTime         time.Time  `json:"creation_time"`
	ValidSince           *time.Time `json:"valid_since"`
	ValidUntil           *time.Time `json:"valid_until"`
	Language             string     `json:"language"`
	Participants         []Invitee  `json:"participants"`
	MaxParticipants      int        `json:"max_participants"`
	Lobby                Lobby      `json:"lobby"`
	SIPDialin            bool       `json:"sip_dialin"`
	// ExpiresAt is CreationTime + meeting_ttl for a meeting that is not
	// persistent, fixed when it is created (or made non-persistent), so
	// that a restart or a config change does not move it; nil otherwise.
	ExpiresAt *time.Time `json:"expires_at"`
	// The guest SIP account shared by the meeting's guests (Wazo: one
	// endpoint per meeting).
	GuestUser     string `json:"guest_user"`
	GuestPassword string `json:"guest_password"`
}

// OwnedBy reports whether the user is one of the meeting's owners.
func (m Meeting) OwnedBy(uuid string) bool {
	for _, o := range m.OwnerUUIDs {
		if o == uuid {
			return true
		}
	}
	return false
}

// Authorization is a guest's request to join a meeting that requires one.
type Authorization struct {
	UUID         string    `json:"uuid"`
	MeetingUUID  string    `json:"meeting_uuid"`
	GuestUUID    string    `json:"guest_uuid"`
	GuestName    string    `json:"guest_name"`
	CreationTime time.Time `json:"creation_time"`
	Status       string    `json:"status"`
}

// PublicRoom is a room anyone may join by its identifier, made by its
// first caller and deleted public_room_ttl after its last call.
type PublicRoom struct {
	Identifier string    `json:"identifier"`
	Room       string    `json:"room"`
	Created    time.Time `json:"created"`
	// LastCall is when a call last entered the empty room or left it
	// empty (Created at first).
	LastCall time.Time `json:"last_call"`
}

// Gate is what the call flow needs to know about a meeting's room.
type Gate struct {
	MeetingUUID     string
	SIPDialin       bool // the meeting's switch and the server's
	ValidSince      time.Time
	ValidUntil      time.Time // zero: open-ended
	MaxParticipants int
	LobbyOn         bool
}

// Kind classifies errors for the wire (rpc/rest maps each to an HTTP
// status in one place).
type Kind int

// Error kinds.
const (
	Invalid      Kind = iota + 1 // a field is wrong: 400
	NotFound                     // 404
	Forbidden                    // not allowed for this user: 403
	Unauthorized                 // lacks a capability the route demands it be told about: 401
	Conflict                     // 409
	Quota                        // too many of something the caller made: 400 (Wazo)
	Precondition                 // the server's configuration forbids it: 412
	Unavailable                  // the store failed, or a server-wide cap: 503
	Limited                      // an unauthenticated caller's cap or budget is spent: 429
)

// Error is an error of this package. Message never contains a secret.
type Error struct {
	Kind    Kind
	Code    string // machine-readable, e.g. "invalid-field"
	Field   string // the offending field, when there is one
	Message string
	Err     error // the cause, for logs (store errors)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as an *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func invalid(field, format string, args ...any) *Error {
	return &Error{Kind: Invalid, Code: "invalid-field", Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func notFound(what string) *Error {
	return &Error{Kind: NotFound, Code: "not-found", Message: what + " not found"}
}

func storeFailed(err error) *Error {
	return &Error{Kind: Unavailable, Code: "store-unavailable", Message: "the change could not be stored", Err: err}
}
