package rest

import (
	"encoding/json"
	"fmt"
	"unicode"
	"unicode/utf8"

	"webconf/sipapp"
	"webconf/sipapp/webrtc"
)

// The signalling messages of GET /api/v1/rooms/{room}/webrtc: JSON
// objects with a type, one per text frame.

// maxSignal bounds one message from the browser (an SDP offer is a few KiB).
const maxSignal = 64 << 10

// Client -> server types.
const (
	sigJoin      = "join"
	sigOffer     = "offer"
	sigCandidate = "candidate"
	sigMute      = "mute"
	sigLeave     = "leave"
)

// signalIn is a message from the browser, checked by parseSignal.
type signalIn struct {
	Type string `json:"type"`
	// join
	Name  string  `json:"name,omitempty"`
	Auth  *string `json:"auth,omitempty"`
	Token *string `json:"token,omitempty"`
	// offer
	SDP string `json:"sdp,omitempty"`
	// candidate
	Candidate *webrtc.Candidate `json:"candidate,omitempty"`
	// mute
	Muted *bool `json:"muted,omitempty"`
}

// Signalling error codes besides the sipapp.Reason* ones.
const (
	codeBadMessage      = "bad-message"
	codeUnauthorized    = "unauthorized"
	codeNotFound        = "not-found"
	codeForbiddenOrigin = "forbidden-origin"
)

// signalError is a message the browser sent wrong: it gets a bad-message
// error and nothing changes.
type signalError struct{ msg string }

func (e *signalError) Error() string { return e.msg }

func badSignal(format string, args ...any) error {
	return &signalError{fmt.Sprintf(format, args...)}
}

// parseSignal reads and checks one message from the browser.
func parseSignal(data []byte) (signalIn, error) {
	var m signalIn
	if len(data) > maxSignal {
		return m, badSignal("the message is larger than %d bytes", maxSignal)
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return signalIn{}, badSignal("not a JSON object with a type: %v", err)
	}
	switch m.Type {
	case sigJoin:
		n := utf8.RuneCountInString(m.Name)
		if !utf8.ValidString(m.Name) || n < 1 || n > 64 {
			return signalIn{}, badSignal("join: name must be 1 to 64 characters")
		}
		for _, r := range m.Name {
			if unicode.IsControl(r) {
				return signalIn{}, badSignal("join: name must not hold control characters")
			}
		}
		if m.Auth != nil && m.Token != nil {
			return signalIn{}, badSignal("join: auth or token, not both")
		}
	case sigOffer:
		if m.SDP == "" {
			return signalIn{}, badSignal("offer: sdp is missing")
		}
	case sigCandidate:
		if m.Candidate == nil {
			return signalIn{}, badSignal("candidate: candidate is missing")
		}
	case sigMute:
		if m.Muted == nil {
			return signalIn{}, badSignal("mute: muted must be true or false")
		}
	case sigLeave:
	case "":
		return signalIn{}, badSignal("type is missing")
	default:
		return signalIn{}, badSignal("unknown type %q", m.Type)
	}
	return m, nil
}

// Server -> client messages.

type sigReady struct {
	Type        string   `json:"type"` // ready
	Room        string   `json:"room"`
	MeetingUUID *string  `json:"meeting_uuid"`
	Name        *string  `json:"name"`
	ICEServers  []string `json:"ice_servers"`
}

type sigAnswer struct {
	Type string `json:"type"` // answer
	SDP  string `json:"sdp"`
}

type sigJoined struct {
	Type   string `json:"type"` // joined
	CallID string `json:"call_id"`
	Room   string `json:"room"`
}

type sigParticipants struct {
	Type         string                   `json:"type"` // participants
	Participants []sipapp.LiveParticipant `json:"participants"`
}

type sigEvent struct {
	Type  string          `json:"type"` // event
	Event json.RawMessage `json:"event"`
}

type sigMuted struct {
	Type  string `json:"type"` // muted
	Muted bool   `json:"muted"`
}

type sigBye struct {
	Type   string `json:"type"` // bye
	Reason string `json:"reason"`
}

type sigError struct {
	Type    string `json:"type"` // error
	Code    string `json:"code"`
	Message string `json:"message"`
}

type sigType struct {
	Type string `json:"type"` // lobby
}
