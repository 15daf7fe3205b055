package mix

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"webconf/dsp"
)

func constFrame(v int16) *dsp.Frame {
	var f dsp.Frame
	for i := range f {
		f[i] = v
	}
	return &f
}

func randFrame(r *rand.Rand, amp int) *dsp.Frame {
	var f dsp.Frame
	for i := range f {
		f[i] = int16(r.IntN(2*amp+1) - amp)
	}
	return &f
}

// mixMinus runs one tick the way a room does and returns each member's output.
func mixMinus(in []*dsp.Frame, muted map[int]bool) []dsp.Frame {
	var b Bus
	b.Reset()
	for i, f := range in {
		if !muted[i] {
			b.Add(f)
		}
	}
	out := make([]dsp.Frame, len(in))
	for i, f := range in {
		if muted[i] {
			b.Full(&out[i])
		} else {
			b.Minus(f, &out[i])
		}
	}
	return out
}

func TestMinusExcludesOwnInput(t *testing.T) {
	for _, n := range []int{2, 3, 10} {
		t.Run(fmt.Sprintf("each of %d members hears exactly the sum of the others", n), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(n), 1))
			in := make([]*dsp.Frame, n)
			for i := range in {
				in[i] = randFrame(r, 3000) // 10*3000 cannot clip
			}
			out := mixMinus(in, nil)
			for m := range in {
				for s := range dsp.FrameSamples {
					var want int32
					for o := range in {
						if o != m {
							want += int32(in[o][s])
						}
					}
					if int32(out[m][s]) != want {
						t.Fatalf("member %d sample %d: got %d, want %d", m, s, out[m][s], want)
					}
				}
			}
		})
	}
	t.Run("two members simply swap frames", func(t *testing.T) {
		a, b := constFrame(1234), constFrame(-4321)
		out := mixMinus([]*dsp.Frame{a, b}, nil)
		if out[0] != *b || out[1] != *a {
			t.Fatalf("A heard %d, B heard %d", out[0][0], out[1][0])
		}
	})
}

func TestClippingNeverLeaksOwnVoice(t *testing.T) {
	cases := []struct {
		name string
		in   []int16
		want []int16
	}{
		{"three full-scale positive members each hear the other two, clipped", []int16{32767, 32767, 32767}, []int16{32767, 32767, 32767}},
		{"opposite full-scale members each hear the other exactly", []int16{32767, -32768}, []int16{-32768, 32767}},
		{"a full-scale member hears a quiet one undistorted", []int16{32767, 32767, 100, -100}, []int16{32767, 32767, 32767, 32767}},
		{"an overloaded sum still gives each member the others' unclipped sum", []int16{32767, 32767, -20000}, []int16{12767, 12767, 32767}},
		{"positive and negative overloads cancel before clamping", []int16{30000, 30000, -30000, -30000}, []int16{-30000, -30000, 30000, 30000}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := make([]*dsp.Frame, len(c.in))
			for i, v := range c.in {
				in[i] = constFrame(v)
			}
			out := mixMinus(in, nil)
			for i := range in {
				if out[i][0] != c.want[i] || out[i][dsp.FrameSamples-1] != c.want[i] {
					t.Fatalf("member %d heard %d, want %d", i, out[i][0], c.want[i])
				}
			}
		})
	}
	t.Run("the full mix is clamped once", func(t *testing.T) {
		var b Bus
		for _, v := range []int16{32767, 32767, -32768} {
			b.Add(constFrame(v))
		}
		var out dsp.Frame
		b.Full(&out)
		if out[0] != 32766 {
			t.Fatalf("full mix %d, want 32766 (no intermediate clamp)", out[0])
		}
	})
}

func TestMutedMemberIsNotAdded(t *testing.T) {
	in := []*dsp.Frame{constFrame(1000), constFrame(200), constFrame(30)}
	out := mixMinus(in, map[int]bool{1: true})
	if out[0][0] != 30 || out[2][0] != 1000 {
		t.Fatalf("talkers heard %d and %d, want 30 and 1000 (muted member excluded)", out[0][0], out[2][0])
	}
	if out[1][0] != 1030 {
		t.Fatalf("muted member heard %d, want 1030 (everyone else)", out[1][0])
	}
}

func TestResetStartsAnEmptyTick(t *testing.T) {
	var b Bus
	b.Add(constFrame(500))
	b.Reset()
	if b.Len() != 0 {
		t.Fatalf("Len after Reset = %d", b.Len())
	}
	b.Add(constFrame(7))
	var out dsp.Frame
	b.Full(&out)
	if out[0] != 7 || b.Len() != 1 {
		t.Fatalf("after Reset the mix is %d with %d members, want 7 with 1", out[0], b.Len())
	}
}

func TestEnergy(t *testing.T) {
	t.Run("digital silence has zero energy and is silent at threshold 0", func(t *testing.T) {
		var f dsp.Frame
		if e := Energy(&f); e != 0 || !IsSilent(&f, 0) {
			t.Fatalf("energy %d", e)
		}
	})
	t.Run("a constant frame has the square of its value", func(t *testing.T) {
		if e := Energy(constFrame(-100)); e != 10000 {
			t.Fatalf("energy %d, want 10000", e)
		}
		if e := Energy(constFrame(-32768)); e != 1<<30 {
			t.Fatalf("full-scale energy %d, want %d", e, 1<<30)
		}
	})
	t.Run("the threshold separates quiet from loud", func(t *testing.T) {
		if !IsSilent(constFrame(10), 100) || IsSilent(constFrame(11), 100) {
			t.Fatal("10 should be silent and 11 not at threshold 100")
		}
	})
}

func BenchmarkAddMinusPerMember(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := randFrame(r, 8000)
	var bus Bus
	var out dsp.Frame
	b.ReportAllocs()
	for b.Loop() {
		bus.Add(in)
		bus.Minus(in, &out)
	}
}

func BenchmarkTickTenMembers(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]*dsp.Frame, 10)
	for i := range in {
		in[i] = randFrame(r, 8000)
	}
	var bus Bus
	out := make([]dsp.Frame, len(in))
	b.ReportAllocs()
	for b.Loop() {
		bus.Reset()
		for _, f := range in {
			bus.Add(f)
		}
		for i, f := range in {
			bus.Minus(f, &out[i])
		}
	}
}

func BenchmarkEnergy(b *testing.B) {
	f := randFrame(rand.New(rand.NewPCG(1, 2)), 8000)
	b.ReportAllocs()
	var sink int64
	for b.Loop() {
		sink += Energy(f)
	}
	_ = sink
}
