package sipapp

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/dsp"
	"webconf/sipapp/mixer"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// startServer runs a server on loopback (RTP ports from 47000) that logs
// warnings only; edit may change the options first. It is stopped when
// the test ends.
func startServer(t *testing.T, edit func(*Options)) *Server {
	t.Helper()
	return startServerWith(t, edit, nil)
}

// startServerWith is startServer with setup run on the server before it
// starts (test hooks read by its goroutines).
func startServerWith(t *testing.T, edit func(*Options), setup func(*Server)) *Server {
	t.Helper()
	opt := Options{
		SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: 47000, RTPHigh: 47998,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if edit != nil {
		edit(&opt)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return s
}

// dialRoom calls the server straight into room (P-App-Param room=); the
// phone hangs up when the test ends.
func dialRoom(t *testing.T, s *Server, room string) *phone.Phone {
	t.Helper()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{
		Server: s.Addr(), Headers: []sip.Header{sip.NewHeader("P-App-Param", "room="+room)},
	})
	if err != nil {
		t.Fatalf("dial %s: %v", room, err)
	}
	testutil.HangUpAtEnd(t, p)
	testutil.WaitFor(t, 5*time.Second, "the caller in the room's mix", func() bool { return s.liveCount(room) == 1 })
	return p
}

// stallingInput is a member's Input whose ReadFrame holds its group's
// tick, and so the group's lock, until released: a tick slowed by its
// socket reads and writes, stretched without limit.
type stallingInput struct {
	entered chan struct{}
	release chan struct{}
}

func (b *stallingInput) ReadFrame(*dsp.Frame) bool {
	select {
	case <-b.entered:
	default:
		close(b.entered)
	}
	<-b.release
	return false
}

type discardOutput struct{}

func (discardOutput) PT() uint8             { return 0 }
func (discardOutput) WriteEncoded(p []byte) {}

// stallTick makes the next tick of room's mix wait until the test ends
// (or release is called) and returns once a tick is stalled.
func stallTick(t *testing.T, s *Server, room string) (release func()) {
	t.Helper()
	s.mu.Lock()
	lr := s.rooms[room]
	s.mu.Unlock()
	if lr == nil {
		t.Fatalf("room %s has no mix", room)
	}
	in := &stallingInput{entered: make(chan struct{}), release: make(chan struct{})}
	m := mixer.NewMember(in, discardOutput{})
	lr.group.Add(m)
	var once bool
	release = func() {
		if !once {
			once = true
			close(in.release)
			lr.group.Remove(m)
		}
	}
	t.Cleanup(release)
	select {
	case <-in.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("the room's mix never ticked")
	}
	return release
}

// TestRoomListingAndInDialogRequestsDoNotWaitForATick: a room's tick
// holds its group's lock across the members' socket reads and writes.
// Listing the room's participants (REST, under the server's lock) must
// not wait for it, and neither may an in-dialog request (its lookup takes
// the server's lock).
func TestRoomListingAndInDialogRequestsDoNotWaitForATick(t *testing.T) {
	s := startServer(t, nil)
	p := dialRoom(t, s, "slow")
	stallTick(t, s, "slow")

	listed := make(chan []LiveParticipant, 1)
	go func() { listed <- s.Participants("slow") }()
	// An INFO from the caller while the listing runs and the tick is
	// stalled: answered.
	res, err := p.SendRaw(testutil.Ctx(t, 5*time.Second), sip.NewRequest(sip.INFO, sip.Uri{}))
	if err != nil {
		t.Fatalf("INFO during a stalled tick and a listing: %v", err)
	}
	if res.StatusCode != 200 {
		t.Fatalf("INFO answered %d, want 200", res.StatusCode)
	}
	select {
	case ps := <-listed:
		if len(ps) != 1 || ps[0].CallTag == "" || ps[0].Muted || ps[0].JoinedAt.IsZero() {
			t.Fatalf("participants %+v, want the one caller, unmuted, with its join time", ps)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("listing the room's participants waited for its tick")
	}
}
