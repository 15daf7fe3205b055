package sipapp

import (
	"errors"
	"net/netip"

	"webconf/sipapp/mixer"
)

// This file is the contract of browser participants (issue 16): a WebRTC
// leg (package sipapp/webrtc) is one more member of a room's mix, through
// the same gates as a SIP caller (lock, valid_since / valid_until, seats,
// lobby), with the same mute, kick, participants list and events.

// BrowserLeg is a browser participant's media: what the mixer reads and
// writes (G.711 frames), and its end.
type BrowserLeg interface {
	mixer.Input
	mixer.Output
	// Done is closed when the media has ended (ICE failed or closed, the
	// peer connection closed).
	Done() <-chan struct{}
	// Close ends the media; it may be called more than once.
	Close()
}

// BrowserJoin is a browser participant on its way into a room.
type BrowserJoin struct {
	// Room is the room's name: a meeting's exten, or an existing room
	// (an XML-RPC room, an open public room). Empty when PublicID is set.
	Room string
	// PublicID is the identifier of a public room (/c/<identifier>): the
	// room is made if none is open, charged to Peer's budget of public
	// rooms, as for sip:c.<identifier>.
	PublicID string
	// Name is the display name typed on the join page (caller_id_name).
	Name string
	// User is the uuid of a signed-in user (a meeting owner joining with
	// a token); "" for a guest.
	User string
	// Peer is the browser's address (after trusted proxies), for logs
	// and budgets.
	Peer netip.Addr
	Leg  BrowserLeg
	// State is told how the participant moves along: lobby, joined,
	// muted, unmuted, ended (with a reason). It is called on the
	// participant's own goroutine, in order, never with a lock held, and
	// must not block for long.
	State func(BrowserState)
}

// BrowserState is one step of a browser participant.
type BrowserState struct {
	Kind    string // BrowserLobby, BrowserJoined, BrowserMuted, BrowserUnmuted, BrowserEnded
	Reason  string // for BrowserEnded: a Reason* code
	CallTag string // the participant's call tag (its id in lists, events, kick)
	Room    string // the room's name
}

// Browser participant steps.
const (
	BrowserLobby   = "lobby"
	BrowserJoined  = "joined"
	BrowserMuted   = "muted"
	BrowserUnmuted = "unmuted"
	BrowserEnded   = "ended"
)

// Why a browser participant is refused or ended: the signalling's error
// codes, shown by the join page.
const (
	ReasonNotStarted  = "meeting-not-started"
	ReasonOver        = "meeting-ended"
	ReasonFull        = "meeting-full"
	ReasonLocked      = "room-locked"
	ReasonNoRoom      = "room-not-found"
	ReasonBudget      = "too-many-rooms" // the source made its budget of public rooms
	ReasonUnavailable = "unavailable"    // the store refused the room
	ReasonKicked      = "kicked"
	ReasonLeft        = "left"       // the browser left
	ReasonMediaLost   = "media-lost" // the leg ended, or sent nothing for dead_rtp_time
	ReasonAlone       = "alone"      // max_participant_alone_time
	ReasonShutdown    = "shutdown"
)

// BrowserRefused is JoinBrowser's error when the participant may not go
// in; Reason is a Reason* code.
type BrowserRefused struct{ Reason string }

func (e *BrowserRefused) Error() string { return "browser participant refused: " + e.Reason }

// ErrBrowserUnimplemented is the stub's answer until the feature lands.
var ErrBrowserUnimplemented = errors.New("browser participants are not built yet")

// Browser is a browser participant's handle.
type Browser struct {
	tag string
}

// CheckBrowserRoom applies, without a leg, the checks that need no
// waiting (the room exists or may be made, not locked, the meeting's
// valid_since / valid_until, seats left): the signalling refuses with the
// reason before any media is set up. A *BrowserRefused says why.
func (s *Server) CheckBrowserRoom(room, publicID string) error {
	return ErrBrowserUnimplemented
}

// JoinBrowser starts a browser participant: it goes through the room's
// gates (again: things change), waits in the lobby if the meeting has
// one, joins the mix, and stays until Leave, a kick, the leg's end, the
// meeting's end or shutdown; j.State learns each step. An error (a
// *BrowserRefused) means it never started; the leg is not closed.
func (s *Server) JoinBrowser(j BrowserJoin) (*Browser, error) {
	return nil, ErrBrowserUnimplemented
}

// CallTag is the participant's call tag.
func (b *Browser) CallTag() string { return b.tag }

// SetMuted mutes or unmutes the participant (the browser's own button),
// as a moderator's mute does: the room hears it, lists and events show it.
func (b *Browser) SetMuted(v bool) {}

// Leave ends the participant (the browser hung up or went away).
func (b *Browser) Leave() {}

// Done is closed once the participant has left its room (after its last
// State call).
func (b *Browser) Done() <-chan struct{} { return nil }
