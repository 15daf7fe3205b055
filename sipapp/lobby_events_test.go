package sipapp

import (
	"strings"
	"testing"
	"time"

	"webconf/sipapp/meeting"
	"webconf/sipapp/room"
	"webconf/test/testutil"
)

func (e *eventLog) LobbyJoined(r string, p room.Participant) {
	e.add("lobby-in", r, p.CallTag+" "+p.Number)
}

func (e *eventLog) LobbyLeft(r, tag string, admitted bool) {
	kind := "lobby-out"
	if admitted {
		kind = "lobby-admitted"
	}
	e.add(kind, r, tag)
}

// lineOf is the index of the first event line that starts with prefix, or -1.
func (e *eventLog) lineOf(prefix string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, l := range e.lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return -1
}

// A SIP caller and a browser entering a meeting's lobby are told to the
// events sink (LobbyJoined, with the caller's number), and so is their
// leaving it: admitted (before the room's Joined), removed, or hung up.
func TestLobbyEvents(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{Lobby: meeting.Opt[meeting.LobbyInput]{Set: true, Value: meeting.LobbyInput{State: meeting.Opt[int]{Set: true, Value: 1}}}})
	ev := e.ev
	wait := func(what, prefix string) int {
		t.Helper()
		i := -1
		testutil.WaitFor(t, 10*time.Second, what, func() bool { i = ev.lineOf(prefix); return i >= 0 })
		return i
	}

	// A SIP caller: in the lobby, then admitted, then in the room.
	p := dialExten(t, e.s, m.Exten, 500)
	tag := p.RemoteTag()
	in := wait("the SIP caller's lobby-in", "lobby-in "+m.Exten+" "+tag+" ")
	if !e.s.Admit(m.Exten, tag) {
		t.Fatal("Admit found no SIP caller in the lobby")
	}
	out := wait("the SIP caller admitted", "lobby-admitted "+m.Exten+" "+tag)
	joined := wait("the SIP caller joined", "joined "+m.Exten+" "+tag)
	if !(in < out && out < joined) {
		t.Fatalf("lobby-in at %d, lobby-admitted at %d, joined at %d: want them in that order", in, out, joined)
	}

	// A browser: in the lobby (its number shows its name), then removed.
	b, _, st := e.join(t, BrowserJoin{Room: m.Exten, Name: "Ann"}, 700)
	st.wait(t, BrowserLobby)
	wait("the browser's lobby-in", "lobby-in "+m.Exten+" "+b.CallTag()+" Ann <webrtc:browser@")
	if !e.s.KickParticipant(m.Exten, b.CallTag()) {
		t.Fatal("no browser to remove from the lobby")
	}
	wait("the removed browser's lobby-out", "lobby-out "+m.Exten+" "+b.CallTag())

	// A SIP caller that hangs up in the lobby.
	p2 := dialExten(t, e.s, m.Exten, 900)
	wait("the second caller's lobby-in", "lobby-in "+m.Exten+" "+p2.RemoteTag()+" ")
	if err := p2.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	wait("the second caller's lobby-out", "lobby-out "+m.Exten+" "+p2.RemoteTag())
	if ev.lineOf("joined "+m.Exten+" "+b.CallTag()) >= 0 || ev.lineOf("joined "+m.Exten+" "+p2.RemoteTag()) >= 0 {
		t.Fatal("a caller that never went in joined")
	}
}
