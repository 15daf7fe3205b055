package sipapp

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

func dialCallee(t *testing.T, s *Server, room string, c *phone.Callee) string {
	t.Helper()
	tag, err := s.Dialout(context.Background(), DialRequest{
		Room: room, Callee: "bob", FromUser: "conference", Domain: c.Addr(),
	})
	if err != nil {
		t.Fatalf("dialout: %v", err)
	}
	return tag
}

// record returns the participant record with tag in room.
func record(s *Server, name, tag string) (room.Participant, bool) {
	info, ok := s.Registry().Room(name)
	if !ok {
		return room.Participant{}, false
	}
	for _, p := range info.Participants {
		if p.CallTag == tag {
			return p, true
		}
	}
	return room.Participant{}, false
}

// TestDialoutAnswerRacesNoReader: while a dialled callee rings (in the
// room's mix, hearing no one, the room hearing the ringback) and answers,
// the room is listed (Server.Participants, as REST does) and in-dialog
// requests for the call are looked up (as sipgo's goroutines do). Run with
// -race: the answer's writes (the join time, the callee's tag) must not
// race those reads.
func TestDialoutAnswerRacesNoReader(t *testing.T) {
	s := startServer(t, nil) // the default ringback puts the ringing callee in the mix
	cal := testutil.ListenCallee(t, phone.CalleeConfig{Ring: 300 * time.Millisecond})
	tag := dialCallee(t, s, "race", cal)
	invites, err := cal.WaitInvites(testutil.Ctx(t, 5*time.Second), 1)
	if err != nil {
		t.Fatal(err)
	}
	inDialog := func(theirTag string) *sip.Request {
		// What the callee would send inside the dialog: our tag in To.
		req := invites[0].Clone()
		req.Method = sip.INFO
		req.From().Params.Add("tag", theirTag)
		req.To().Params.Add("tag", tag)
		return req
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				s.Participants("race")
			}
		}
	}()
	go func() {
		defer wg.Done()
		req := inDialog("not-yet-known")
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				s.lookup(req)
			}
		}
	}()
	b, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
	if err != nil {
		t.Fatalf("callee never answered: %v", err)
	}
	t.Cleanup(b.Close)
	testutil.WaitFor(t, 5*time.Second, "the callee listed with its join time", func() bool {
		ps := s.Participants("race")
		return len(ps) == 1 && !ps[0].JoinedAt.IsZero()
	})
	close(stop)
	wg.Wait()
	if s.lookup(inDialog(b.LocalTag())) == nil {
		t.Fatal("an in-dialog request with the callee's tag does not find the call")
	}
}

// TestAPanickingDialoutLeavesAndHangsUp: a dial-out flow that panics ends
// as a dial-in's does: counted, out of the room's mix, the record
// finished, and the callee told on the wire: CANCEL while it rings, BYE
// once it answered.
func TestAPanickingDialoutLeavesAndHangsUp(t *testing.T) {
	for _, tc := range []struct {
		stage string
		cfg   phone.CalleeConfig
	}{
		{"ringing", phone.CalleeConfig{NoAnswer: true}},
		{"answered", phone.CalleeConfig{}},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			// The hook is set before the server starts: set after, it
			// raced with any INVITE that reached the server first.
			s := startServerWith(t, nil, func(s *Server) {
				s.dialHook = func(stage string) {
					if stage == tc.stage {
						panic("boom at " + stage)
					}
				}
			})
			dialRoom(t, s, "boom") // someone in the room, who stays
			cal := testutil.ListenCallee(t, tc.cfg)
			tag := dialCallee(t, s, "boom", cal)
			if tc.stage == "ringing" {
				if err := cal.WaitCancel(testutil.Ctx(t, 10*time.Second)); err != nil {
					t.Fatalf("no CANCEL to the ringing callee: %v", err)
				}
			} else {
				b, err := cal.Accept(testutil.Ctx(t, 10*time.Second))
				if err != nil {
					t.Fatalf("callee never answered: %v", err)
				}
				t.Cleanup(b.Close)
				select {
				case <-b.Done():
				case <-time.After(10 * time.Second):
					t.Fatal("no BYE to the answered callee")
				}
			}
			testutil.WaitFor(t, 10*time.Second, "the dial-out's call to end", func() bool { return s.ActiveCalls() == 1 })
			if n := s.liveCount("boom"); n != 1 {
				t.Fatalf("%d calls in the room's mix, want the dial-in alone", n)
			}
			if p, ok := record(s, "boom", tag); !ok || p.Status != room.StatusFinished {
				t.Fatalf("record %+v (found %v), want finished", p, ok)
			}
			if n := s.Metrics().Panics; n != 1 {
				t.Fatalf("panics counted: %d, want 1", n)
			}
		})
	}
}

// TestAPanickingDialinLeavesTheMix: a dial-in whose flow panics after it
// joined its room (in the mix, its record connected) and before it stays
// there is taken out of the mix and its record finished, as a dial-out's
// is; it is hung up and counted, and the room goes on for the others.
func TestAPanickingDialinLeavesTheMix(t *testing.T) {
	var joined atomic.Int32
	s := startServerWith(t, nil, func(s *Server) {
		s.dialHook = func(stage string) {
			if stage == "joined" && joined.Add(1) == 2 {
				panic("boom after the join")
			}
		}
	})
	dialRoom(t, s, "boom") // the first caller, who stays
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{
		Server: s.Addr(), Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=boom")},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer p.Close()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("no BYE to the caller whose flow panicked")
	}
	testutil.WaitFor(t, 10*time.Second, "the panicked call to end", func() bool { return s.ActiveCalls() == 1 })
	if n := s.liveCount("boom"); n != 1 {
		t.Fatalf("%d calls in the room's mix, want the first caller alone", n)
	}
	p2, ok := record(s, "boom", p.RemoteTag())
	if !ok || p2.Status != room.StatusFinished {
		t.Fatalf("record of the panicked call %+v (found %v), want finished", p2, ok)
	}
	if n := s.Metrics().Panics; n != 1 {
		t.Fatalf("panics counted: %d, want 1", n)
	}
}
