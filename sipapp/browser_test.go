package sipapp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"webconf/dsp"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/sipapp/meeting"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// fakeLeg stands for a browser's WebRTC leg (package sipapp/webrtc): it
// feeds a tone as the browser's microphone, one frame per mixer read, and
// keeps the last second of what the room sends it (PCMU, decoded).
type fakeLeg struct {
	sending atomic.Bool

	mu    sync.Mutex
	osc   *tone.Osc
	heard []int16 // ring of the last second
	pos   int
	got   int // frames received from the room

	done      chan struct{}
	closeOnce sync.Once
	closed    atomic.Bool
}

func newFakeLeg(freq float64) *fakeLeg {
	l := &fakeLeg{osc: tone.NewOsc(freq, 4000), heard: make([]int16, dsp.SampleRate), done: make(chan struct{})}
	l.sending.Store(true)
	return l
}

func (l *fakeLeg) ReadFrame(f *dsp.Frame) bool {
	if !l.sending.Load() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.osc.Fill(f[:])
	return true
}

func (l *fakeLeg) PT() uint8 { return 0 }

func (l *fakeLeg) WriteEncoded(p []byte) {
	var f dsp.Frame
	g711.Decode(0, f[:], p)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range f[:len(p)] {
		l.heard[l.pos] = v
		l.pos = (l.pos + 1) % len(l.heard)
	}
	l.got++
}

// lost is the media's end as the peer connection sees it (ICE failed).
func (l *fakeLeg) lost() { l.closeOnce.Do(func() { close(l.done) }) }

func (l *fakeLeg) Done() <-chan struct{} { return l.done }

func (l *fakeLeg) Close() {
	l.closed.Store(true)
	l.lost()
}

// level is the amplitude of freq in the last 200 ms the room sent.
func (l *fakeLeg) level(freq float64) float64 {
	const n = dsp.SampleRate / 5
	l.mu.Lock()
	a := make([]int16, n)
	for i := range a {
		a[i] = l.heard[(l.pos-n+i+len(l.heard))%len(l.heard)]
	}
	l.mu.Unlock()
	return tone.Level(a, freq)
}

func (l *fakeLeg) frames() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.got
}

// states records a browser participant's State calls.
type states struct {
	mu   sync.Mutex
	seen []BrowserState
}

func (s *states) add(st BrowserState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, st)
}

func (s *states) all() []BrowserState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]BrowserState(nil), s.seen...)
}

func (s *states) kinds() string {
	var k []string
	for _, st := range s.all() {
		k = append(k, st.Kind)
	}
	return strings.Join(k, ",")
}

// wait waits for a step of that kind and returns it.
func (s *states) wait(t *testing.T, kind string) BrowserState {
	t.Helper()
	var got BrowserState
	testutil.WaitFor(t, 10*time.Second, "browser state "+kind, func() bool {
		for _, st := range s.all() {
			if st.Kind == kind {
				got = st
				return true
			}
		}
		return false
	})
	return got
}

// eventLog is a room.Events sink that keeps "kind room tag" lines.
type eventLog struct {
	room.NopEvents
	mu    sync.Mutex
	lines []string
}

func (e *eventLog) add(kind, room, tag string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.lines = append(e.lines, kind+" "+room+" "+tag)
}

func (e *eventLog) Joined(r string, p room.Participant) { e.add("joined", r, p.CallTag) }
func (e *eventLog) Left(r, tag string)                  { e.add("left", r, tag) }
func (e *eventLog) Muted(r, tag string)                 { e.add("muted", r, tag) }
func (e *eventLog) Unmuted(r, tag string)               { e.add("unmuted", r, tag) }
func (e *eventLog) TalkingStarted(r, tag string)        { e.add("talk", r, tag) }

func (e *eventLog) has(line string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.lines {
		if l == line {
			return true
		}
	}
	return false
}

// browserEnv is a server with meetings and an owner.
type browserEnv struct {
	s     *Server
	owner meeting.User
	ev    *eventLog
}

func startBrowserEnv(t *testing.T, edit func(*Options)) *browserEnv {
	t.Helper()
	ev := &eventLog{}
	s := startServer(t, func(o *Options) {
		o.Events = ev
		o.Meetings.SIPDialin = true
		o.Meetings.PublicRooms = true
		if edit != nil {
			edit(o)
		}
	})
	u, _, err := s.Meetings().CreateUser(meeting.UserInput{
		Username:     meeting.Opt[string]{Set: true, Value: "owner"},
		Capabilities: meeting.Opt[[]string]{Set: true, Value: []string{meeting.CapMeetings}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &browserEnv{s: s, owner: u, ev: ev}
}

func (e *browserEnv) meeting(t *testing.T, in meeting.MeetingInput) meeting.Meeting {
	t.Helper()
	in.Name = meeting.Opt[string]{Set: true, Value: t.Name()}
	m, err := e.s.Meetings().CreateMeeting(e.owner, in)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// join starts a browser participant in room with a leg sending freq.
func (e *browserEnv) join(t *testing.T, j BrowserJoin, freq float64) (*Browser, *fakeLeg, *states) {
	t.Helper()
	leg := newFakeLeg(freq)
	st := &states{}
	j.Leg, j.State = leg, st.add
	if j.Name == "" {
		j.Name = "Ann"
	}
	j.Peer = netip.MustParseAddr("192.0.2.7")
	b, err := e.s.JoinBrowser(j)
	if err != nil {
		t.Fatalf("JoinBrowser %+v: %v", j, err)
	}
	t.Cleanup(func() {
		b.Leave()
		<-b.Done()
	})
	return b, leg, st
}

// dialExten calls a meeting's number directly with a phone sending freq.
func dialExten(t *testing.T, s *Server, exten string, freq float64) *phone.Phone {
	t.Helper()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: s.Addr(), User: exten})
	if err != nil {
		t.Fatalf("dial %s: %v", exten, err)
	}
	testutil.HangUpAtEnd(t, p)
	p.SetTone(freq)
	return p
}

func refusal(err error) string {
	var r *BrowserRefused
	if errors.As(err, &r) {
		return r.Reason
	}
	return fmt.Sprintf("not a refusal: %v", err)
}

func findParticipant(ps []LiveParticipant, tag string) (LiveParticipant, bool) {
	for _, p := range ps {
		if p.CallTag == tag {
			return p, true
		}
	}
	return LiveParticipant{}, false
}

// A browser and two SIP tone callers in a meeting hear each other with
// mix-minus; the browser is listed, counted and announced like a caller.
func TestBrowserMixMinusWithSIPCallers(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{})
	p1 := dialExten(t, e.s, m.Exten, 500)
	p2 := dialExten(t, e.s, m.Exten, 900)
	testutil.WaitFor(t, 5*time.Second, "both callers in the mix", func() bool { return e.s.liveCount(m.Exten) == 2 })

	if err := e.s.CheckBrowserRoom(m.Exten, ""); err != nil {
		t.Fatalf("CheckBrowserRoom: %v", err)
	}
	b, leg, st := e.join(t, BrowserJoin{Room: m.Exten, Name: "Ann Web"}, 700)
	joined := st.wait(t, BrowserJoined)
	if joined.CallTag != b.CallTag() || joined.Room != m.Exten {
		t.Fatalf("joined %+v, want tag %s room %s", joined, b.CallTag(), m.Exten)
	}

	ctx := testutil.Ctx(t, 10*time.Second)
	if err := p1.HearsAllButSelf(ctx, 500, []float64{900, 700}, 2000, 200); err != nil {
		t.Fatalf("caller 1: %v", err)
	}
	if err := p2.HearsAllButSelf(ctx, 900, []float64{500, 700}, 2000, 200); err != nil {
		t.Fatalf("caller 2: %v", err)
	}
	testutil.WaitFor(t, 10*time.Second, "the browser hearing both callers and not itself", func() bool {
		return leg.level(500) > 2000 && leg.level(900) > 2000 && leg.level(700) < 200
	})

	ps := e.s.Participants(m.Exten)
	bp, ok := findParticipant(ps, b.CallTag())
	if len(ps) != 3 || !ok || bp.CallerIDName != "Ann Web" || bp.CallerIDNumber != "browser" || bp.Lobby || bp.JoinedAt.IsZero() {
		t.Fatalf("participants %+v: want the two callers and the browser (Ann Web, browser)", ps)
	}
	info, _ := e.s.Registry().Room(m.Exten)
	var rec *room.Participant
	for i := range info.Participants {
		if info.Participants[i].CallTag == b.CallTag() {
			rec = &info.Participants[i]
		}
	}
	if rec == nil || rec.Status != room.StatusConnected || rec.Number != `"Ann Web" <webrtc:browser@127.0.0.1>` {
		t.Fatalf("registry record %+v, want connected with the browser's number", rec)
	}
	if n := e.s.Metrics().Participants; n != 3 {
		t.Fatalf("metrics participants %d, want 3", n)
	}
	if !e.ev.has("joined "+m.Exten+" "+b.CallTag()) || !e.ev.has("talk "+m.Exten+" "+b.CallTag()) {
		t.Fatalf("events %v: want the browser's joined and talk", e.ev.lines)
	}

	b.Leave()
	<-b.Done()
	if got := st.all(); got[len(got)-1].Kind != BrowserEnded || got[len(got)-1].Reason != ReasonLeft {
		t.Fatalf("states %s, last %+v: want ended, left", st.kinds(), got[len(got)-1])
	}
	if !leg.closed.Load() {
		t.Fatal("the leg was not closed when the participant left")
	}
	testutil.WaitFor(t, 5*time.Second, "the browser out of the mix", func() bool { return e.s.liveCount(m.Exten) == 2 })
	if !e.ev.has("left " + m.Exten + " " + b.CallTag()) {
		t.Fatalf("events %v: want the browser's left", e.ev.lines)
	}
	if err := p1.WaitQuiet(ctx, 700, 200, 200*time.Millisecond); err != nil {
		t.Fatalf("caller 1 still hears the browser: %v", err)
	}
}

// A browser waits in a meeting's lobby (hearing the lobby prompt, listed
// as in the lobby) until an owner admits it; a lifted lobby lets the next
// one in; the meeting's SIP dial-in switch does not keep browsers out.
func TestBrowserLobbyThenAdmit(t *testing.T) {
	e := startBrowserEnv(t, func(o *Options) { o.Meetings.SIPDialin = false })
	m := e.meeting(t, meeting.MeetingInput{Lobby: meeting.Opt[meeting.LobbyInput]{Set: true, Value: meeting.LobbyInput{State: meeting.Opt[int]{Set: true, Value: 1}}}})

	b, leg, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	lobby := st.wait(t, BrowserLobby)
	if lobby.CallTag != b.CallTag() || lobby.Room != m.Exten {
		t.Fatalf("lobby step %+v", lobby)
	}
	ps := e.s.Participants(m.Exten)
	if p, ok := findParticipant(ps, b.CallTag()); len(ps) != 1 || !ok || !p.Lobby || p.CallerIDName != "Ann" {
		t.Fatalf("participants %+v: want the browser in the lobby", ps)
	}
	testutil.WaitFor(t, 5*time.Second, "the lobby prompt heard by the browser", func() bool { return leg.frames() > 10 && maxAbs(leg) > 500 })
	if e.s.liveCount(m.Exten) != 0 {
		t.Fatal("a browser in the lobby is in the room's mix")
	}
	if !e.s.Admit(m.Exten, b.CallTag()) {
		t.Fatal("Admit found no browser in the lobby")
	}
	st.wait(t, BrowserJoined)
	testutil.WaitFor(t, 5*time.Second, "the admitted browser in the mix", func() bool { return e.s.liveCount(m.Exten) == 1 })

	b2, _, st2 := e.join(t, BrowserJoin{Room: m.Exten, Name: "Bob"}, 900)
	st2.wait(t, BrowserLobby)
	if _, err := e.s.Meetings().SetLobby(e.owner.UUID, m.UUID, meeting.LobbyInput{State: meeting.Opt[int]{Set: true, Value: 0}}); err != nil {
		t.Fatal(err)
	}
	st2.wait(t, BrowserJoined)
	testutil.WaitFor(t, 5*time.Second, "both browsers in the mix", func() bool { return e.s.liveCount(m.Exten) == 2 })
	if k := st2.kinds(); k != "lobby,joined" {
		t.Fatalf("second browser's states %s, want lobby,joined", k)
	}
	_ = b2
}

// maxAbs is the peak of the last 200 ms the leg heard.
func maxAbs(l *fakeLeg) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	peak := 0
	for i := 1; i <= dsp.SampleRate/5; i++ {
		v := int(l.heard[(l.pos-i+len(l.heard))%len(l.heard)])
		peak = max(peak, v, -v)
	}
	return peak
}

// A meeting before valid_since or after valid_until, a full one and a
// locked room refuse a browser with the reason, from CheckBrowserRoom and
// from JoinBrowser, which leaves the leg alone and calls no State.
func TestBrowserRefusals(t *testing.T) {
	e := startBrowserEnv(t, nil)
	now := time.Now()
	over := e.meeting(t, meeting.MeetingInput{ValidUntil: meeting.Opt[time.Time]{Set: true, Value: now.Add(-time.Hour)}})
	early := e.meeting(t, meeting.MeetingInput{ValidSince: meeting.Opt[time.Time]{Set: true, Value: now.Add(time.Hour)}})
	full := e.meeting(t, meeting.MeetingInput{MaxParticipants: meeting.Opt[int]{Set: true, Value: 1}})
	locked := e.meeting(t, meeting.MeetingInput{})
	dialExten(t, e.s, full.Exten, 500)
	testutil.WaitFor(t, 5*time.Second, "a caller in the full meeting", func() bool { return e.s.liveCount(full.Exten) == 1 })
	if err := e.s.Registry().SetLocked(locked.Exten, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ room, id, want string }{
		{over.Exten, "", ReasonOver},
		{early.Exten, "", ReasonNotStarted},
		{full.Exten, "", ReasonFull},
		{locked.Exten, "", ReasonLocked},
		{"no-such-room", "", ReasonNoRoom},
		{"", "Not An Identifier", ReasonNoRoom},
	} {
		if got := refusal(e.s.CheckBrowserRoom(c.room, c.id)); got != c.want {
			t.Errorf("CheckBrowserRoom(%q, %q): %s, want %s", c.room, c.id, got, c.want)
		}
		leg, st := newFakeLeg(700), &states{}
		b, err := e.s.JoinBrowser(BrowserJoin{Room: c.room, PublicID: c.id, Name: "Ann", Leg: leg, State: st.add})
		if got := refusal(err); b != nil || got != c.want {
			t.Errorf("JoinBrowser(%q, %q): %v %s, want %s", c.room, c.id, b, got, c.want)
		}
		if leg.closed.Load() || len(st.all()) != 0 {
			t.Errorf("JoinBrowser(%q) refused but closed the leg (%v) or told states %s", c.room, leg.closed.Load(), st.kinds())
		}
	}
	if n := e.s.Seats(full.Exten); n != 1 {
		t.Fatalf("seats of the full meeting %d, want 1 (a refused browser took none)", n)
	}
}

// A browser that waited in the lobby since before the room was locked is
// let in when admitted, as a SIP caller is.
func TestBrowserAdmittedPastTheLock(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{Lobby: meeting.Opt[meeting.LobbyInput]{Set: true, Value: meeting.LobbyInput{State: meeting.Opt[int]{Set: true, Value: 1}}}})
	b, _, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	st.wait(t, BrowserLobby)
	if err := e.s.Registry().SetLocked(m.Exten, true); err != nil {
		t.Fatal(err)
	}
	if got := refusal(e.s.CheckBrowserRoom(m.Exten, "")); got != ReasonLocked {
		t.Fatalf("a new browser: %s, want %s", got, ReasonLocked)
	}
	e.s.Admit(m.Exten, b.CallTag())
	st.wait(t, BrowserJoined)
	testutil.WaitFor(t, 5*time.Second, "the admitted browser in the mix", func() bool { return e.s.liveCount(m.Exten) == 1 })
}

// Kicked over XML-RPC (the registry's kick) or REST (KickParticipant),
// in the room or in the lobby: the browser ends with ReasonKicked.
func TestBrowserKick(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{})
	p := dialExten(t, e.s, m.Exten, 500)
	b1, leg1, st1 := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	st1.wait(t, BrowserJoined)
	b2, _, st2 := e.join(t, BrowserJoin{Room: m.Exten}, 900)
	st2.wait(t, BrowserJoined)

	if err := e.s.Registry().Kick(m.Exten, b1.CallTag()); err != nil {
		t.Fatal(err)
	}
	if got := st1.wait(t, BrowserEnded); got.Reason != ReasonKicked {
		t.Fatalf("kicked over XML-RPC: %+v", got)
	}
	<-b1.Done()
	if !leg1.closed.Load() {
		t.Fatal("a kicked browser's leg was not closed")
	}
	if !e.s.KickParticipant(m.Exten, b2.CallTag()) {
		t.Fatal("KickParticipant found no browser")
	}
	if got := st2.wait(t, BrowserEnded); got.Reason != ReasonKicked {
		t.Fatalf("kicked over REST: %+v", got)
	}
	testutil.WaitFor(t, 5*time.Second, "only the caller left in the mix", func() bool { return e.s.liveCount(m.Exten) == 1 })
	info, _ := e.s.Registry().Room(m.Exten)
	for _, r := range info.Participants {
		if r.CallTag == b1.CallTag() && (r.Status != room.StatusFinished) {
			t.Fatalf("kicked browser's record %+v, want finished", r)
		}
	}
	if err := p.WaitQuiet(testutil.Ctx(t, 5*time.Second), 700, 200, 200*time.Millisecond); err != nil {
		t.Fatalf("the caller still hears the kicked browser: %v", err)
	}
}

// A moderator's mute reaches the browser's State and silences it in the
// room; the browser's own mute shows in lists and events as a
// moderator's does.
func TestBrowserMute(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{})
	p := dialExten(t, e.s, m.Exten, 500)
	b, _, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	st.wait(t, BrowserJoined)
	ctx := testutil.Ctx(t, 10*time.Second)
	if err := p.WaitLevel(ctx, 700, 2000, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	if err := e.s.Registry().Mute(m.Exten, b.CallTag()); err != nil {
		t.Fatal(err)
	}
	st.wait(t, BrowserMuted)
	if err := p.WaitQuiet(ctx, 700, 200, 200*time.Millisecond); err != nil {
		t.Fatalf("moderator-muted browser still heard: %v", err)
	}
	if err := e.s.Registry().Unmute(m.Exten, b.CallTag()); err != nil {
		t.Fatal(err)
	}
	st.wait(t, BrowserUnmuted)
	if err := p.WaitLevel(ctx, 700, 2000, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}

	b.SetMuted(true)
	testutil.WaitFor(t, 5*time.Second, "the self-muted browser listed as muted", func() bool {
		bp, _ := findParticipant(e.s.Participants(m.Exten), b.CallTag())
		return bp.Muted
	})
	info, _ := e.s.Registry().Room(m.Exten)
	for _, r := range info.Participants {
		if r.CallTag == b.CallTag() && !r.Muted {
			t.Fatalf("registry record %+v, want muted", r)
		}
	}
	if !e.ev.has("muted " + m.Exten + " " + b.CallTag()) {
		t.Fatalf("events %v: want muted for the browser", e.ev.lines)
	}
	if err := p.WaitQuiet(ctx, 700, 200, 200*time.Millisecond); err != nil {
		t.Fatalf("self-muted browser still heard: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "muted told again", func() bool { return strings.HasSuffix(st.kinds(), ",unmuted,muted") })
	if k := st.kinds(); k != "joined,muted,unmuted,muted" {
		t.Fatalf("states %s", k)
	}
}

// The leg's end, or no media for dead_rtp_time, ends the participant with
// ReasonMediaLost.
func TestBrowserMediaLost(t *testing.T) {
	e := startBrowserEnv(t, func(o *Options) { o.DeadRTPTime = 500 * time.Millisecond })
	m := e.meeting(t, meeting.MeetingInput{})
	b, leg, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	st.wait(t, BrowserJoined)
	leg.lost()
	if got := st.wait(t, BrowserEnded); got.Reason != ReasonMediaLost {
		t.Fatalf("leg ended: %+v", got)
	}
	<-b.Done()

	// Two more: the silent one ends after dead_rtp_time, the one sending
	// (joined first) stays.
	_, _, talking := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	talking.wait(t, BrowserJoined)
	b2, leg2, st2 := e.join(t, BrowserJoin{Room: m.Exten}, 900)
	leg2.sending.Store(false)
	if got := st2.wait(t, BrowserEnded); got.Reason != ReasonMediaLost {
		t.Fatalf("silent leg: %+v", got)
	}
	<-b2.Done()
	if k := talking.kinds(); k != "joined" {
		t.Fatalf("the browser sending media: %s, want still joined", k)
	}
}

// Deleting the meeting (EndRoom) ends a browser in its room and one in
// its lobby with ReasonOver.
func TestBrowserMeetingDeleted(t *testing.T) {
	e := startBrowserEnv(t, nil)
	m := e.meeting(t, meeting.MeetingInput{})
	_, _, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	st.wait(t, BrowserJoined)
	if _, err := e.s.Meetings().SetLobby(e.owner.UUID, m.UUID, meeting.LobbyInput{State: meeting.Opt[int]{Set: true, Value: 1}}); err != nil {
		t.Fatal(err)
	}
	_, _, st2 := e.join(t, BrowserJoin{Room: m.Exten}, 900)
	st2.wait(t, BrowserLobby)
	if err := e.s.Meetings().DeleteMeeting(e.owner.UUID, m.UUID); err != nil {
		t.Fatal(err)
	}
	if got := st.wait(t, BrowserEnded); got.Reason != ReasonOver {
		t.Fatalf("in the room: %+v", got)
	}
	if got := st2.wait(t, BrowserEnded); got.Reason != ReasonOver {
		t.Fatalf("in the lobby: %+v", got)
	}
}

// The lonely-user timer ends a browser alone in its room (ReasonAlone).
func TestBrowserAlone(t *testing.T) {
	e := startBrowserEnv(t, func(o *Options) { o.LonelyUserTimer = 300 * time.Millisecond })
	m := e.meeting(t, meeting.MeetingInput{})
	_, _, st := e.join(t, BrowserJoin{Room: m.Exten}, 700)
	if got := st.wait(t, BrowserEnded); got.Reason != ReasonAlone {
		t.Fatalf("alone: %+v", got)
	}
}

// A public room by identifier is made for a browser and charged to its
// address's budget of public rooms.
func TestBrowserPublicRoom(t *testing.T) {
	e := startBrowserEnv(t, func(o *Options) {
		o.PublicRoomsPerSource = 1
		o.Limits.FailureWindow, o.Limits.BanTime = time.Minute, time.Minute
	})
	if err := e.s.CheckBrowserRoom("", "team-sync"); err != nil {
		t.Fatalf("CheckBrowserRoom of a public room to make: %v", err)
	}
	b, _, st := e.join(t, BrowserJoin{PublicID: "team-sync"}, 700)
	joined := st.wait(t, BrowserJoined)
	r, ok := e.s.Meetings().PublicRoomNumber("team-sync")
	if !ok || joined.Room != r {
		t.Fatalf("joined %+v, public room %q %v", joined, r, ok)
	}
	// The same room again is no new room; a second one is over budget.
	_, _, st2 := e.join(t, BrowserJoin{PublicID: "team-sync"}, 900)
	st2.wait(t, BrowserJoined)
	_, err := e.s.JoinBrowser(BrowserJoin{PublicID: "other-room", Name: "Ann", Peer: netip.MustParseAddr("192.0.2.7"), Leg: newFakeLeg(700)})
	if got := refusal(err); got != ReasonBudget {
		t.Fatalf("a second public room from the same address: %s, want %s", got, ReasonBudget)
	}
	_ = b
}

// Shutdown ends a browser participant (ReasonShutdown) and waits for it:
// its last State call is made before Shutdown returns.
func TestBrowserShutdown(t *testing.T) {
	s, err := New(Options{
		SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 47000, RTPHigh: 47998,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Registry().Create("plain", 0); err != nil {
		t.Fatal(err)
	}
	leg := newFakeLeg(700)
	var mu sync.Mutex
	var last BrowserState
	b, err := s.JoinBrowser(BrowserJoin{Room: "plain", Name: "Ann", Leg: leg, State: func(st BrowserState) {
		if st.Kind == BrowserEnded {
			time.Sleep(100 * time.Millisecond) // a slow last step is still waited for
		}
		mu.Lock()
		last = st
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the browser in the mix", func() bool { return s.liveCount("plain") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if last.Kind != BrowserEnded || last.Reason != ReasonShutdown {
		t.Fatalf("after Shutdown the last state is %+v, want ended, shutdown", last)
	}
	select {
	case <-b.Done():
	default:
		t.Fatal("Shutdown returned before the browser participant was done")
	}
	if !leg.closed.Load() {
		t.Fatal("the leg was not closed at shutdown")
	}
	if _, err := s.JoinBrowser(BrowserJoin{Room: "plain", Name: "Ann", Leg: newFakeLeg(700)}); refusal(err) != ReasonShutdown {
		t.Fatalf("JoinBrowser after Shutdown: %v", err)
	}
}
