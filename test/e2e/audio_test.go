package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/dsp/tone"
	"webconf/test/phone"
	"webconf/test/testutil"
)

func appParam(v string) sip.Header { return sip.NewHeader("P-App-Param", v) }

// callerTone is caller i's tone: 100 Hz apart from 350 Hz, far from the
// test prompts' tones.
func callerTone(i int) float64 { return 350 + 100*float64(i) }

// eachHearsAllButSelf checks that caller i (sending callerTone(i)) hears
// every other caller's tone and not its own.
func eachHearsAllButSelf(t *testing.T, phones []*phone.Phone, min, max float64) {
	t.Helper()
	for i, p := range phones {
		var others []float64
		for j := range phones {
			if j != i {
				others = append(others, callerTone(j))
			}
		}
		hearsAllButSelf(t, p, callerTone(i), others, min, max)
	}
}

// hearsAllButSelf waits until p hears every tone in others at >= min and
// its own below max, in the same window of audio.
func hearsAllButSelf(t *testing.T, p *phone.Phone, own float64, others []float64, min, max float64) {
	t.Helper()
	if err := p.HearsAllButSelf(testutil.Ctx(t, 10*time.Second), own, others, min, max); err != nil {
		t.Fatalf("caller with %.0f Hz: %v", own, err)
	}
}

func TestEveryCallerHearsEveryoneButThemselves(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 3, 10} {
		t.Run(fmt.Sprintf("%d callers in one room", n), func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			// Quiet enough that ten tones never clip: clipping would add
			// intermodulation products on the caller's own frequency.
			amp := 1500.0
			phones := make([]*phone.Phone, n)
			for i := range phones {
				phones[i] = srv.direct(t, "4711", phone.Config{FromUser: fmt.Sprintf("caller%d", i), ToneAmplitude: amp})
				phones[i].SetTone(callerTone(i))
			}
			testutil.WaitFor(t, 5*time.Second, "all callers connected", func() bool { return srv.connected("4711") == n })
			eachHearsAllButSelf(t, phones, amp*0.5, amp*0.05)
		})
	}
}

func TestCodecsMixTogether(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "codecs", phone.Config{Codecs: []uint8{0}})
	b := srv.direct(t, "codecs", phone.Config{Codecs: []uint8{8}})
	c := srv.direct(t, "codecs", phone.Config{Codecs: []uint8{8, 0}, Ptime: 30})
	if a.Codec() != 0 || b.Codec() != 8 || c.Codec() != 8 {
		t.Fatalf("codecs chosen: %d %d %d, want 0 8 8 (the offerer's first)", a.Codec(), b.Codec(), c.Codec())
	}
	a.SetTone(500)
	b.SetTone(700)
	c.SetTone(900)
	hearsAllButSelf(t, a, 500, []float64{700, 900}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500, 900}, 1500, 200)
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1500, 200)
	// c asked for 30 ms packets and must get them; the others 20 ms.
	testutil.WaitFor(t, 3*time.Second, "30 ms packets to c", func() bool { return c.ReceivedPtimes()[30] > 20 })
	if pt := a.ReceivedPtimes(); pt[30] != 0 || pt[20] == 0 {
		t.Fatalf("a got ptimes %v, want only 20 ms", pt)
	}
}

func levelOf(s []int16, f float64) float64 { return tone.Level(s, f) }

// talkingPair dials a and b into room, a sending fa and b sending fb, and
// waits until b hears a (so both are in the mix).
func (s *server) talkingPair(t *testing.T, room string, fa, fb float64) (a, b *phone.Phone) {
	t.Helper()
	a = s.direct(t, room, phone.Config{})
	b = s.direct(t, room, phone.Config{})
	a.SetTone(fa)
	b.SetTone(fb)
	hearsAllButSelf(t, b, fb, []float64{fa}, 1500, 200)
	return a, b
}
