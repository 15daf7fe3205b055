package sipapp

import (
	"testing"
	"time"
)

// clock is an injected clock for the rate and budget tests.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *clock               { return &clock{t: time.Unix(1_700_000_000, 0)} }

func TestCallTagFormat(t *testing.T) {
	tag := newCallTag(time.Unix(0x65000000, 123456000))
	if len(tag) != 34 || tag[8] != '-' || tag[25] != '-' || tag[9:17] != "65000000" || tag[17:25] != "0001E240" {
		t.Fatalf("tag %q is not SEMS's XXXXXXXX-XXXXXXXXXXXXXXXX-XXXXXXXX", tag)
	}
}

func TestDTMFRelayBodies(t *testing.T) {
	for body, want := range map[string]byte{
		"Signal=5\r\nDuration=160\r\n": '5',
		"Signal= *\r\n":                '*',
		"signal=#":                     '#',
		"Signal=11\r\n":                '#',
		"Signal=A\r\n":                 0,
		"Duration=100\r\n":             0,
		"":                             0,
	} {
		got, ok := parseDTMFRelay([]byte(body))
		if (want == 0) == ok || got != want {
			t.Errorf("%q: got %q %v, want %q", body, got, ok, want)
		}
	}
}
