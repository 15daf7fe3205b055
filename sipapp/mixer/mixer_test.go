package mixer

import (
	"testing"
	"time"

	"webconf/dsp"
	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
)

// fakeLeg is an Input and Output without sockets.
type fakeLeg struct {
	pt    uint8
	in    dsp.Frame
	has   bool
	out   []dsp.Frame // decoded frames written
	bytes [][]byte
	bufs  []*byte // the buffer each write came from (&p[0]): who shared what
}

func (f *fakeLeg) ReadFrame(fr *dsp.Frame) bool {
	*fr = f.in
	return f.has
}
func (f *fakeLeg) PT() uint8 { return f.pt }
func (f *fakeLeg) WriteEncoded(p []byte) {
	var d dsp.Frame
	g711.Decode(f.pt, d[:], p)
	f.out = append(f.out, d)
	f.bytes = append(f.bytes, append([]byte(nil), p...))
	f.bufs = append(f.bufs, &p[0])
}

func constFrame(v int16) (f dsp.Frame) {
	for i := range f {
		f[i] = v
	}
	return
}

// newGroup builds a group that no worker ticks; tests call Tick by hand.
func newGroup() *Group { return &Group{w: &worker{}} }

func near(a, b int16) bool {
	d := int32(a) - int32(b)
	if d < 0 {
		d = -d
	}
	// G.711 quantisation: at most about 3% of the value, plus a step.
	lim := int32(b) / 30
	if lim < 0 {
		lim = -lim
	}
	return d <= lim+16
}

func TestTick(t *testing.T) {
	t.Run("each member hears the sum of the others and not itself", func(t *testing.T) {
		g := newGroup()
		vals := []int16{1000, 2000, 4000}
		legs := make([]*fakeLeg, len(vals))
		for i, v := range vals {
			legs[i] = &fakeLeg{in: constFrame(v), has: true, pt: g711.PCMU}
			g.Add(NewMember(legs[i], legs[i]))
		}
		g.Tick()
		want := []int16{6000, 5000, 3000}
		for i, l := range legs {
			if len(l.out) != 1 || !near(l.out[0][0], want[i]) {
				t.Fatalf("member %d heard %d, want %d", i, l.out[0][0], want[i])
			}
		}
	})
	t.Run("full-scale clipping never leaks a member's own voice back", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{in: constFrame(32767), has: true, pt: g711.PCMA}
		b := &fakeLeg{in: constFrame(32767), has: true, pt: g711.PCMA}
		c := &fakeLeg{in: constFrame(-32768), has: true, pt: g711.PCMA}
		for _, l := range []*fakeLeg{a, b, c} {
			g.Add(NewMember(l, l))
		}
		g.Tick()
		// a hears b+c = -1: silence, not a clipped echo of itself.
		if !near(a.out[0][0], -1) {
			t.Fatalf("a heard %d, want about -1", a.out[0][0])
		}
		// c hears a+b = 65534, clamped once to 32767.
		if !near(c.out[0][0], 32767) {
			t.Fatalf("c heard %d, want 32767", c.out[0][0])
		}
	})
	t.Run("a muted member is not heard but hears", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{in: constFrame(3000), has: true}
		b := &fakeLeg{in: constFrame(1000), has: true}
		ma := NewMember(a, a)
		g.Add(ma)
		g.Add(NewMember(b, b))
		ma.SetMuted(true)
		g.Tick()
		if !near(b.out[0][0], 0) {
			t.Fatalf("b heard %d from a muted member", b.out[0][0])
		}
		if !near(a.out[0][0], 1000) {
			t.Fatalf("muted a heard %d, want 1000", a.out[0][0])
		}
	})
	t.Run("a member hearing a prompt hears only the prompt and is not heard", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{in: constFrame(3000), has: true}
		b := &fakeLeg{in: constFrame(1000), has: true}
		ma := NewMember(a, a)
		g.Add(ma)
		g.Add(NewMember(b, b))
		prompt := make([]int16, 200) // 1.25 frames
		for i := range prompt {
			prompt[i] = 7000
		}
		p := NewPrompt(prompt, false)
		ma.Play(p)
		g.Tick()
		if !near(a.out[0][0], 7000) || !near(b.out[0][0], 0) {
			t.Fatalf("tick 1: a heard %d (want prompt 7000), b heard %d (want 0)", a.out[0][0], b.out[0][0])
		}
		g.Tick()
		if !near(a.out[1][0], 7000) || a.out[1][100] != 0 && !near(a.out[1][100], 0) {
			t.Fatalf("tick 2: the prompt's tail must be padded with silence, got %d/%d", a.out[1][0], a.out[1][100])
		}
		select {
		case <-p.Done:
			t.Fatal("prompt done before its last frame was taken")
		default:
		}
		g.Tick()
		<-p.Done
		if !near(a.out[2][0], 1000) || !near(b.out[2][0], 3000) {
			t.Fatalf("after the prompt: a heard %d, b heard %d", a.out[2][0], b.out[2][0])
		}
	})
	t.Run("silent members share one encoded frame per codec", func(t *testing.T) {
		g := newGroup()
		talker := &fakeLeg{in: constFrame(5000), has: true, pt: g711.PCMU}
		g.Add(NewMember(talker, talker))
		var listeners []*fakeLeg
		for i := 0; i < 4; i++ {
			l := &fakeLeg{has: false, pt: uint8(8 * (i % 2))}
			listeners = append(listeners, l)
			g.Add(NewMember(l, l))
		}
		g.Tick()
		if string(listeners[0].bytes[0]) != string(listeners[2].bytes[0]) {
			t.Fatal("PCMU listeners got different frames")
		}
		// Equal bytes would also come from encoding the same mix once per
		// listener: sharing means one encoding, written from one buffer,
		// per codec per tick.
		pcmu, pcma := listeners[0].bufs[0], listeners[1].bufs[0]
		if listeners[2].bufs[0] != pcmu || listeners[3].bufs[0] != pcma {
			t.Fatal("silent listeners of one codec were not sent the one shared encoding")
		}
		if pcmu == pcma || talker.bufs[0] == pcmu || talker.bufs[0] == pcma {
			t.Fatal("the talker or the other codec's listeners got the shared encoding of a codec")
		}
		// Next tick, the same buffers again: nothing per listener.
		g.Tick()
		for i, l := range listeners {
			if want := []*byte{pcmu, pcma}[i%2]; len(l.bufs) != 2 || l.bufs[1] != want {
				t.Fatalf("listener %d: tick 2 not written from its codec's shared encoding", i)
			}
		}
		if !near(listeners[1].out[0][0], 5000) || !near(listeners[0].out[0][0], 5000) {
			t.Fatalf("listeners heard %d and %d, want 5000", listeners[0].out[0][0], listeners[1].out[0][0])
		}
		if !near(talker.out[0][0], 0) {
			t.Fatalf("the only talker heard %d, want silence", talker.out[0][0])
		}
	})
	t.Run("in-band digits are reported while detection is on", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{has: true}
		m := NewMember(a, a)
		g.Add(m)
		var got []byte
		m.DetectDTMF(func(d byte) { got = append(got, d) })
		// 5 in DTMF: 770 + 1336 Hz, 100 ms, then 100 ms pause.
		buf := make([]int16, 1600)
		dtmf.Generate(buf[:800], '5', 0, 4000)
		for i := 0; i < 10; i++ {
			copy(a.in[:], buf[i*160:(i+1)*160])
			g.Tick()
		}
		if string(got) != "5" {
			t.Fatalf("detected %q, want \"5\"", got)
		}
	})
	t.Run("talkspurts are reported once at start and once after a pause", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{has: true}
		m := NewMember(a, a)
		g.Add(m)
		var events []bool
		m.OnTalking(func(v bool) { events = append(events, v) })
		a.in = constFrame(3000)
		for i := 0; i < 10; i++ {
			g.Tick()
		}
		a.in = constFrame(0)
		for i := 0; i < talkHang-1; i++ {
			g.Tick()
		}
		if len(events) != 1 || !events[0] {
			t.Fatalf("events %v before the hang time ran out, want [true]", events)
		}
		g.Tick()
		if len(events) != 2 || events[1] {
			t.Fatalf("events %v, want [true false]", events)
		}
	})
	t.Run("with mix_max_talkers only the loudest are mixed", func(t *testing.T) {
		g := newGroup()
		g.maxTalkers = 2
		legs := []*fakeLeg{
			{in: constFrame(1000), has: true},
			{in: constFrame(3000), has: true},
			{in: constFrame(2000), has: true},
			{has: false},
		}
		for _, l := range legs {
			g.Add(NewMember(l, l))
		}
		g.Tick()
		// The quietest talker (1000) is left out: it hears both others,
		// and the listener hears only the two loudest.
		if !near(legs[0].out[0][0], 5000) || !near(legs[3].out[0][0], 5000) ||
			!near(legs[1].out[0][0], 2000) || !near(legs[2].out[0][0], 3000) {
			t.Fatalf("heard %d %d %d %d, want 5000 2000 3000 5000",
				legs[0].out[0][0], legs[1].out[0][0], legs[2].out[0][0], legs[3].out[0][0])
		}
	})
	t.Run("beeps that have not started yet are not queued twice", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{}
		m := NewMember(a, a)
		g.Add(m)
		beep := constFrame(3000)
		for i := 0; i < 50; i++ {
			g.Each(nil, func(m *Member) { m.PlayCoalescedLocked(NewPrompt(beep[:], false)) })
		}
		g.Tick() // the one queued beep plays
		g.Tick()
		if !near(a.out[1][0], 0) {
			t.Fatalf("a second beep played: %d", a.out[1][0])
		}
	})
	t.Run("a looping prompt repeats until stopped", func(t *testing.T) {
		g := newGroup()
		a := &fakeLeg{}
		m := NewMember(a, a)
		g.Add(m)
		loop := constFrame(4000)
		p := NewPrompt(loop[:], true)
		m.Play(p)
		for i := 0; i < 5; i++ {
			g.Tick()
		}
		if !near(a.out[4][0], 4000) {
			t.Fatalf("looping prompt stopped: %d", a.out[4][0])
		}
		g.Each(nil, func(m *Member) { m.StopLoopingLocked() })
		<-p.Done
		g.Tick()
		if !near(a.out[5][0], 0) {
			t.Fatalf("still playing after StopLooping: %d", a.out[5][0])
		}
	})
}

func BenchmarkTickRoomOf10With3Talkers(b *testing.B) {
	g := newGroup()
	for i := 0; i < 10; i++ {
		l := &discardLeg{has: i < 3}
		l.in = constFrame(int16(1000 * (i + 1)))
		g.Add(NewMember(l, l))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Tick()
	}
}

type discardLeg struct {
	in  dsp.Frame
	has bool
}

func (d *discardLeg) ReadFrame(f *dsp.Frame) bool { *f = d.in; return d.has }
func (d *discardLeg) PT() uint8                   { return g711.PCMU }
func (d *discardLeg) WriteEncoded([]byte)         {}

// blockingIn is an Input whose ReadFrame holds the tick (and so the
// group's lock) until released, like a tick slowed by its socket work.
type blockingIn struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingIn) ReadFrame(*dsp.Frame) bool {
	close(b.entered)
	<-b.release
	return false
}

// TestMuteDoesNotWaitForATick: the mute flag is read by listings that run
// under the server's lock (Server.Participants) and set by the control
// API; neither may wait for a tick in progress.
func TestMuteDoesNotWaitForATick(t *testing.T) {
	g := newGroup()
	a := &fakeLeg{}
	m := NewMember(a, a)
	g.Add(m)
	b := &blockingIn{entered: make(chan struct{}), release: make(chan struct{})}
	g.Add(NewMember(b, &fakeLeg{}))
	ticked := make(chan struct{})
	go func() { g.Tick(); close(ticked) }()
	<-b.entered // the tick now holds the group's lock
	defer func() { close(b.release); <-ticked }()
	done := make(chan bool)
	go func() {
		m.SetMuted(true)
		done <- m.Muted()
	}()
	select {
	case muted := <-done:
		if !muted {
			t.Fatal("Muted() is false after SetMuted(true)")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("SetMuted/Muted waited for the tick in progress")
	}
}

// silentLeg is a fakeLeg that writes silence by itself (SilenceOutput).
type silentLeg struct {
	fakeLeg
	silences int
}

func (s *silentLeg) WriteSilence() { s.silences++ }

// TestSilenceIsNotMixed: a member who would hear nothing (no one else is
// heard, no prompt) gets WriteSilence, not an encoded frame, when its
// output can write silence itself; the others are unchanged.
func TestSilenceIsNotMixed(t *testing.T) {
	g := newGroup()
	a := &silentLeg{fakeLeg: fakeLeg{pt: g711.PCMU, has: true}} // sends silence frames
	b := &silentLeg{fakeLeg: fakeLeg{pt: g711.PCMA}}            // sends nothing
	c := &fakeLeg{pt: g711.PCMU, has: true}                     // cannot write silence
	ma := NewMember(a, a)
	for _, m := range []*Member{ma, NewMember(b, b), NewMember(c, c)} {
		g.Add(m)
	}
	for range 3 {
		g.Tick()
	}
	if a.silences != 3 || b.silences != 3 || len(a.out) != 0 || len(b.out) != 0 {
		t.Fatalf("quiet room: silences %d %d, encoded %d %d; want 3 3 and none", a.silences, b.silences, len(a.out), len(b.out))
	}
	if len(c.out) != 3 || !near(c.out[2][0], 0) {
		t.Fatalf("the member without WriteSilence got %d frames", len(c.out))
	}

	// a talks: b and c hear it, a (the only one heard) hears silence.
	a.in = constFrame(3000)
	g.Tick()
	if a.silences != 4 || len(a.out) != 0 {
		t.Fatalf("the lone talker: %d silences, %d frames; want its silence", a.silences, len(a.out))
	}
	if len(b.out) != 1 || !near(b.out[0][0], 3000) || b.silences != 3 {
		t.Fatalf("b heard %v (%d silences), want a's 3000", b.out, b.silences)
	}

	// c talks too: a now hears c.
	c.in = constFrame(1000)
	g.Tick()
	if len(a.out) != 1 || !near(a.out[0][0], 1000) {
		t.Fatalf("a heard %v, want c's 1000", a.out)
	}

	// A prompt for b is heard even in a quiet room.
	a.in, c.in = dsp.Frame{}, dsp.Frame{}
	p := make([]int16, dsp.FrameSamples)
	for i := range p {
		p[i] = 5000
	}
	g.Each(ma, func(m *Member) {
		if m.out == Output(b) {
			m.PlayLocked(NewPrompt(p, false))
		}
	})
	g.Tick()
	if len(b.out) != 3 || !near(b.out[2][0], 5000) {
		t.Fatalf("b's prompt: %d frames, last %v", len(b.out), b.out[len(b.out)-1][0])
	}
}

func BenchmarkTickQuietRoomOf10(b *testing.B) {
	g := newGroup()
	for range 10 {
		l := &quietDiscardLeg{}
		l.has = true
		g.Add(NewMember(l, l))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		g.Tick()
	}
}

type quietDiscardLeg struct{ discardLeg }

func (*quietDiscardLeg) WriteSilence() {}
