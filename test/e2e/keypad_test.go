package e2e

import (
	"testing"
	"time"

	"webconf/conf"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// hear waits until p hears freq.
func hear(t *testing.T, p *phone.Phone, freq float64, what string) {
	t.Helper()
	if err := p.WaitLevel(testutil.Ctx(t, 8*time.Second), freq, 2000, 100*time.Millisecond); err != nil {
		t.Fatalf("waiting to hear %s (%.0f Hz): %v", what, freq, err)
	}
}

// quiet waits until p no longer hears freq, so that hearing it again
// proves a new playback.
func quiet(t *testing.T, p *phone.Phone, freq float64) {
	t.Helper()
	if err := p.WaitQuiet(testutil.Ctx(t, 8*time.Second), freq, 300, 100*time.Millisecond); err != nil {
		t.Fatalf("waiting for %.0f Hz to stop: %v", freq, err)
	}
}

// keypadCall dials the server without a room, so the caller must type one.
func (s *server) keypadCall(t *testing.T, cfg phone.Config) *phone.Phone {
	t.Helper()
	if cfg.User == "" {
		cfg.User = "conference"
	}
	p := s.dial(t, cfg)
	hear(t, p, fEnterPin, "enter_pin")
	return p
}

func typeDigits(t *testing.T, p *phone.Phone, digits string, mode phone.DTMFMode) {
	t.Helper()
	if err := p.SendDTMF(testutil.Ctx(t, 10*time.Second), digits, mode); err != nil {
		t.Fatalf("typing %q: %v", digits, err)
	}
}

// inRoom waits until the call with p's tag is connected in room with reason.
func (s *server) inRoom(t *testing.T, p *phone.Phone, name, reason string) {
	t.Helper()
	s.waitStatus(t, name, p.RemoteTag(), room.StatusConnected, reason)
}

func TestKeypadEntryEndsInTheRoom(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	cases := []struct {
		name   string
		digits string
		mode   phone.DTMFMode
	}{
		{"RFC 4733 events ended by star", "2468*", phone.RFC4733},
		{"RFC 4733 events ended by pound", "2468#", phone.RFC4733},
		{"SIP INFO dtmf-relay", "2468#", phone.INFO},
		{"in-band tones", "2468#", phone.Inband},
	}
	// The phones must outlive each case, so the cases are not subtests
	// (a subtest's cleanup would hang them up).
	phones := make([]*phone.Phone, len(cases))
	for i, tc := range cases {
		t.Logf("case: %s", tc.name)
		p := srv.keypadCall(t, phone.Config{})
		typeDigits(t, p, tc.digits, tc.mode)
		srv.inRoom(t, p, "2468", room.ReasonEntered)
		phones[i] = p
	}
	// All four are now in one room and hear each other.
	for i, p := range phones {
		p.SetTone(callerTone(i))
	}
	eachHearsAllButSelf(t, phones, 1500, 200)
}

func TestTypedDigitsAreReadBackBeforeJoining(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	p := srv.keypadCall(t, phone.Config{})
	typeDigits(t, p, "47#", phone.RFC4733)
	hear(t, p, fDigit(4), "digit 4")
	hear(t, p, fDigit(7), "digit 7")
	hear(t, p, fEntering, "entering_conference")
	srv.inRoom(t, p, "47", room.ReasonEntered)
	hear(t, p, fFirst, "first_participant")
}

func TestWrongEntryIsRefusedAndMayBeRetried(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.PrivateRooms = true
		c.Webconference.PredefinedRooms = []conf.PredefinedRoom{{Room: "555", AdminPin: "secret"}}
	})
	p := srv.keypadCall(t, phone.Config{})
	typeDigits(t, p, "999#", phone.RFC4733)
	hear(t, p, fWrongPin, "wrong_pin")
	quiet(t, p, fWrongPin)
	typeDigits(t, p, "#", phone.RFC4733) // empty entry
	hear(t, p, fWrongPin, "wrong_pin after an empty entry")
	typeDigits(t, p, "555#", phone.RFC4733)
	srv.inRoom(t, p, "555", room.ReasonEntered)
	if got := len(srv.participants("999")); got != 0 {
		t.Fatalf("room 999 has %d records; a refused entry must leave none", got)
	}
}

func TestMaxPinAttemptsEndsTheCall(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.PrivateRooms = true
		c.Webconference.MaxPinAttempts = 2
	})
	p := srv.keypadCall(t, phone.Config{})
	typeDigits(t, p, "1#", phone.RFC4733)
	hear(t, p, fWrongPin, "wrong_pin")
	typeDigits(t, p, "2#", phone.RFC4733)
	hear(t, p, fWrongPinBye, "wrong_pin_bye")
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE after the last allowed attempt")
	}
}

func TestPinTimeoutEndsTheCall(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) { c.Webconference.PinTimeout = time.Second })
	p := srv.keypadCall(t, phone.Config{})
	hear(t, p, fWrongPinBye, "wrong_pin_bye after pin_timeout")
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE after pin_timeout")
	}
}

func TestPrivateRooms(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.PrivateRooms = true
		c.Webconference.PredefinedRooms = []conf.PredefinedRoom{{Room: "700", AdminPin: "1"}}
	})
	t.Run("direct entry to an unknown room says goodbye", func(t *testing.T) {
		p := srv.direct(t, "701", phone.Config{})
		hear(t, p, fWrongPinBye, "wrong_pin_bye")
		select {
		case <-p.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("no BYE")
		}
		if _, ok := srv.Registry().Room("701"); ok {
			t.Fatal("a dial-in created a room in private mode")
		}
	})
	t.Run("direct entry to a predefined room joins", func(t *testing.T) {
		p := srv.direct(t, "700", phone.Config{})
		srv.inRoom(t, p, "700", room.ReasonDirect)
	})
}

func TestRoomPinSplit(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.PrivateRooms = true
		c.Webconference.RoomPinSplit = 3
		c.Webconference.PredefinedRooms = []conf.PredefinedRoom{{Room: "100", AdminPin: "1"}}
	})
	if err := srv.Registry().AddParticipant("100", "77", "sip:alice@example.com"); err != nil {
		t.Fatal(err)
	}
	p := srv.keypadCall(t, phone.Config{})
	typeDigits(t, p, "10#", phone.RFC4733) // too short to split
	hear(t, p, fWrongPin, "wrong_pin for a too short entry")
	quiet(t, p, fWrongPin)
	typeDigits(t, p, "10088#", phone.RFC4733) // not invited
	hear(t, p, fWrongPin, "wrong_pin for an uninvited participant")
	typeDigits(t, p, "10077#", phone.RFC4733)
	srv.inRoom(t, p, "100", room.ReasonEntered)
	parts := srv.participants("100")
	if len(parts) != 1 || parts[0].ID != "77" || parts[0].CallTag != p.RemoteTag() {
		t.Fatalf("records %+v: the invited record must be taken over by the call", parts)
	}
}
