package prompts

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"webconf/dsp"
	"webconf/dsp/wav"
)

func seconds(s []int16) float64 { return float64(len(s)) / dsp.SampleRate }

func rms(s []int16) float64 {
	var sq float64
	for _, v := range s {
		sq += float64(v) * float64(v)
	}
	return math.Sqrt(sq / float64(len(s)))
}

func peak(s []int16) int {
	p := 0
	for _, v := range s {
		p = max(p, int(math.Abs(float64(v))))
	}
	return p
}

func named(s *Set) map[string][]int16 {
	m := map[string][]int16{
		"enter_pin":           s.EnterPin,
		"wrong_pin":           s.WrongPin,
		"wrong_pin_bye":       s.WrongPinBye,
		"entering_conference": s.EnteringConference,
		"first_participant":   s.FirstParticipant,
		"room_locked":         s.RoomLocked,
	}
	for d, v := range s.Digits {
		m["digit "+strconv.Itoa(d)] = v
	}
	return m
}

func TestBuiltin(t *testing.T) {
	s := Builtin()
	t.Run("every spoken prompt has a plausible length", func(t *testing.T) {
		for name, v := range named(s) {
			lo, hi := 1.0, 6.0
			switch {
			case name == "enter_pin":
				lo, hi = 3, 9
			case strings.HasPrefix(name, "digit"):
				lo, hi = 0.2, 1.2
			}
			if d := seconds(v); d < lo || d > hi {
				t.Errorf("%s lasts %.2f s, want %.1f–%.1f s", name, d, lo, hi)
			}
		}
	})
	t.Run("every spoken prompt is speech-like 8 kHz audio", func(t *testing.T) {
		for name, v := range named(s) {
			// Loud enough: RMS above -34 dBFS and peak near the -6 dBFS target.
			if r := rms(v); r < 650 {
				t.Errorf("%s RMS %.0f, want ≥ 650", name, r)
			}
			if p := peak(v); p < 13000 || p > 18000 {
				t.Errorf("%s peak %d, want about 16400 (-6 dBFS)", name, p)
			}
			// Speech, not a tone or noise: the zero-crossing rate of voiced
			// speech at 8 kHz lies far from white noise (≈0.5) and from hum.
			zc := 0
			for i := 1; i < len(v); i++ {
				if (v[i-1] < 0) != (v[i] < 0) {
					zc++
				}
			}
			if zcr := float64(zc) / float64(len(v)); zcr < 0.02 || zcr > 0.35 {
				t.Errorf("%s zero-crossing rate %.3f is not speech-like", name, zcr)
			}
			// The envelope moves like syllables do: over the voiced part
			// (the trailing pad excluded) 20 ms frame levels vary by more
			// than a quarter of their mean; a steady tone or noise would not.
			var lv []float64
			for f := 0; f+dsp.FrameSamples <= len(v)-dsp.SampleRate/10; f += dsp.FrameSamples {
				lv = append(lv, rms(v[f:f+dsp.FrameSamples]))
			}
			var mean, sq float64
			for _, x := range lv {
				mean += x / float64(len(lv))
			}
			for _, x := range lv {
				sq += (x - mean) * (x - mean) / float64(len(lv))
			}
			if cv := math.Sqrt(sq) / mean; cv < 0.25 {
				t.Errorf("%s frame-level variation %.2f: no speech envelope", name, cv)
			}
		}
	})
	t.Run("silence is trimmed at the start and about 100 ms kept at the end", func(t *testing.T) {
		for name, v := range named(s) {
			const thr = 150 // ≈ -47 dBFS, just under gen.sh's 0.5% trim level
			first := slices.IndexFunc(v, func(x int16) bool { return x > thr || x < -thr })
			last := len(v) - 1
			for last > 0 && v[last] <= thr && v[last] >= -thr {
				last--
			}
			if lead := float64(first) / dsp.SampleRate; lead > 0.05 {
				t.Errorf("%s starts with %.0f ms of silence", name, lead*1000)
			}
			if tail := float64(len(v)-1-last) / dsp.SampleRate; tail < 0.09 || tail > 0.25 {
				t.Errorf("%s ends with %.0f ms of silence, want about 100 ms", name, tail*1000)
			}
		}
	})
	t.Run("the beep is 100 ms of 1 kHz at -10 dBFS with click-free ramps", func(t *testing.T) {
		b := s.JoinSound
		if len(b) != 800 {
			t.Fatalf("beep has %d samples, want 800", len(b))
		}
		if dB := 20 * math.Log10(float64(peak(b))/32767); math.Abs(dB+10) > 0.5 {
			t.Errorf("beep peak %.1f dBFS, want -10", dB)
		}
		if abs(b[0]) > 0 || abs(b[len(b)-1]) > 100 {
			t.Errorf("beep starts at %d and ends at %d: it would click", b[0], b[len(b)-1])
		}
		// Within the 5 ms ramps the amplitude stays under the Hann envelope.
		for i := 0; i < 40; i++ {
			env := beepPeak*0.5*(1-math.Cos(math.Pi*float64(i)/40)) + 1
			if float64(abs(b[i])) > env || float64(abs(b[len(b)-1-i])) > env {
				t.Fatalf("sample %d exceeds the ramp envelope %.0f", i, env)
			}
		}
		// The energy is at 1 kHz: correlating with a 1 kHz pair recovers
		// nearly all of the signal's power.
		var re, im float64
		for i, v := range b {
			re += float64(v) * math.Cos(2*math.Pi*1000*float64(i)/8000)
			im += float64(v) * math.Sin(2*math.Pi*1000*float64(i)/8000)
		}
		amp := 2 * math.Hypot(re, im) / float64(len(b))
		if ratio := amp / math.Sqrt2 / rms(b); ratio < 0.95 {
			t.Errorf("only %.0f%% of the beep's RMS is at 1 kHz", ratio*100)
		}
	})
	t.Run("join and drop sounds are both the beep", func(t *testing.T) {
		if !slices.Equal(s.JoinSound, s.DropSound) {
			t.Fatal("join and drop sounds differ")
		}
	})
	t.Run("it is decoded once and shared between concurrent callers", func(t *testing.T) {
		var wg sync.WaitGroup
		got := make([]*Set, 8)
		for i := range got {
			wg.Go(func() { got[i] = Builtin() })
		}
		wg.Wait()
		for _, g := range got {
			if g != s {
				t.Fatal("Builtin returned different sets")
			}
		}
	})
	t.Run("the embedded audio stays under 1 MB", func(t *testing.T) {
		var total int64
		err := fs.WalkDir(audioFS, "audio", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			info, err := d.Info()
			total += info.Size()
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if total == 0 || total >= 1<<20 {
			t.Fatalf("embedded audio is %d bytes", total)
		}
	})
}

func abs(v int16) int32 {
	if v < 0 {
		return -int32(v)
	}
	return int32(v)
}

func TestFrames(t *testing.T) {
	for _, tc := range []struct{ n, want int }{{0, 0}, {1, 1}, {160, 1}, {161, 2}, {800, 5}, {8000, 50}} {
		if got := Frames(make([]int16, tc.n)); got != tc.want {
			t.Errorf("Frames(%d samples) = %d, want %d", tc.n, got, tc.want)
		}
	}
}

// rawWAV builds a PCM WAV with arbitrary channel count, width and rate.
func rawWAV(channels, bits, rate int, dataLen int) []byte {
	align := channels * bits / 8
	b := make([]byte, 44+dataLen)
	copy(b, "RIFF")
	binary.LittleEndian.PutUint32(b[4:], uint32(36+dataLen))
	copy(b[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:], 16)
	binary.LittleEndian.PutUint16(b[20:], 1)
	binary.LittleEndian.PutUint16(b[22:], uint16(channels))
	binary.LittleEndian.PutUint32(b[24:], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:], uint32(rate*align))
	binary.LittleEndian.PutUint16(b[32:], uint16(align))
	binary.LittleEndian.PutUint16(b[34:], uint16(bits))
	copy(b[36:], "data")
	binary.LittleEndian.PutUint32(b[40:], uint32(dataLen))
	return b
}

func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// captureLog returns a logger writing text records to the returned buffer.
func captureLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func tone(freq float64, rate, n int) []int16 {
	s := make([]int16, n)
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
	}
	return s
}

func TestLoad(t *testing.T) {
	b := Builtin()
	t.Run("no files configured gives the built-in prompts", func(t *testing.T) {
		log, buf := captureLog()
		s, err := Load(Files{}, log)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.EnterPin, b.EnterPin) || !slices.Equal(s.Digits[7], b.Digits[7]) || !slices.Equal(s.JoinSound, b.JoinSound) {
			t.Fatal("set differs from Builtin")
		}
		if s == b {
			t.Fatal("Load returned the shared built-in set itself")
		}
		if buf.Len() != 0 {
			t.Fatalf("unexpected log output: %s", buf)
		}
	})
	t.Run("an 8 kHz file replaces its prompt sample for sample", func(t *testing.T) {
		dir := t.TempDir()
		want := tone(440, 8000, 4000)
		p := writeFile(t, dir, "pin.wav", wav.Encode(want, 8000))
		s, err := Load(Files{EnterPin: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.EnterPin, want) {
			t.Fatal("enter_pin not replaced by the file's samples")
		}
		if !slices.Equal(s.WrongPin, b.WrongPin) {
			t.Fatal("wrong_pin changed although not configured")
		}
		if slices.Equal(Builtin().EnterPin, want) {
			t.Fatal("Load modified the built-in set")
		}
	})
	t.Run("room_locked is overridable like the others", func(t *testing.T) {
		dir := t.TempDir()
		want := tone(440, 8000, 4000)
		p := writeFile(t, dir, "locked.wav", wav.Encode(want, 8000))
		s, err := Load(Files{RoomLocked: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.RoomLocked, want) {
			t.Fatal("room_locked not replaced by the file's samples")
		}
		if slices.Equal(Builtin().RoomLocked, want) || len(Builtin().RoomLocked) == 0 {
			t.Fatal("the built-in room_locked prompt is missing or was modified")
		}
	})
	t.Run("a 16 kHz file is converted to 8 kHz", func(t *testing.T) {
		dir := t.TempDir()
		p := writeFile(t, dir, "beep16.wav", wav.Encode(tone(1000, 16000, 3200), 16000))
		s, err := Load(Files{JoinSound: p}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.JoinSound) != 1600 {
			t.Fatalf("got %d samples, want 1600 (200 ms at 8 kHz)", len(s.JoinSound))
		}
		// 1 kHz at 8 kHz: samples repeat every 8; the middle must match the
		// ideal tone closely.
		ideal := tone(1000, 8000, 1600)
		for i := 400; i < 1200; i++ {
			if d := int(s.JoinSound[i]) - int(ideal[i]); d > 20 || d < -20 {
				t.Fatalf("sample %d is %d, want %d", i, s.JoinSound[i], ideal[i])
			}
		}
		if !slices.Equal(s.DropSound, b.DropSound) {
			t.Fatal("drop_sound changed although only join_sound was configured")
		}
	})
	t.Run("every key replaces its own prompt", func(t *testing.T) {
		dir := t.TempDir()
		f := Files{}
		fields := []*string{&f.FirstParticipant, &f.JoinSound, &f.DropSound, &f.EnterPin, &f.WrongPin, &f.WrongPinBye, &f.EnteringConference}
		for i, fp := range fields {
			*fp = writeFile(t, dir, strconv.Itoa(i)+".wav", wav.Encode(make([]int16, 100+i), 8000))
		}
		s, err := Load(f, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := [][]int16{s.FirstParticipant, s.JoinSound, s.DropSound, s.EnterPin, s.WrongPin, s.WrongPinBye, s.EnteringConference}
		for i, g := range got {
			if len(g) != 100+i {
				t.Errorf("field %d has %d samples, want %d", i, len(g), 100+i)
			}
		}
	})
	t.Run("a missing file falls back to the built-in prompt with a warning", func(t *testing.T) {
		log, buf := captureLog()
		p := filepath.Join(t.TempDir(), "first_paricipant.wav")
		s, err := Load(Files{FirstParticipant: p}, log)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.FirstParticipant, b.FirstParticipant) {
			t.Fatal("built-in prompt not kept")
		}
		out := buf.String()
		if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "key=first_participant") || !strings.Contains(out, p) {
			t.Fatalf("warning does not name level, key and path: %s", out)
		}
	})
	for _, tc := range []struct {
		name, what string
		file       []byte
	}{
		{"a stereo file is an error naming the key", "stereo", rawWAV(2, 16, 8000, 400)},
		{"an 8-bit file is an error naming the key", "8-bit", rawWAV(1, 8, 8000, 400)},
		{"a 44.1 kHz file is an error naming the key", "44100 Hz", rawWAV(1, 16, 44100, 400)},
		{"a text file is an error naming the key", "not a RIFF file", []byte("this is not audio\n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "bad.wav", tc.file)
			s, err := Load(Files{WrongPinBye: p}, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if s != nil {
				t.Fatal("a set was returned with the error")
			}
			if !errors.Is(err, wav.ErrFormat) {
				t.Fatalf("error %v does not wrap wav.ErrFormat", err)
			}
			for _, want := range []string{"wrong_pin_bye", p, tc.what} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
	t.Run("a directory given as a file is an error naming the key", func(t *testing.T) {
		dir := t.TempDir()
		_, err := Load(Files{EnteringConference: dir}, nil)
		if err == nil || !strings.Contains(err.Error(), "entering_conference") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("a huge file is refused without reading it all", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "huge.wav")
		fh, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := fh.Truncate(maxFileSize + 4096); err != nil { // sparse
			t.Fatal(err)
		}
		fh.Close()
		_, err = Load(Files{EnterPin: p}, nil)
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "enter_pin") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLoadDigitsDir(t *testing.T) {
	b := Builtin()
	t.Run("present digit files replace, missing ones fall back with a warning each", func(t *testing.T) {
		dir := t.TempDir()
		want3 := tone(300, 8000, 2000)
		want8 := tone(800, 16000, 4000)
		writeFile(t, dir, "3.wav", wav.Encode(want3, 8000))
		writeFile(t, dir, "8.wav", wav.Encode(want8, 16000))
		log, buf := captureLog()
		s, err := Load(Files{DigitsDir: dir}, log)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Digits[3], want3) {
			t.Error("digit 3 not replaced")
		}
		if len(s.Digits[8]) != 2000 {
			t.Errorf("digit 8 (16 kHz) has %d samples, want 2000", len(s.Digits[8]))
		}
		for d := range s.Digits {
			if d != 3 && d != 8 && !slices.Equal(s.Digits[d], b.Digits[d]) {
				t.Errorf("digit %d not the built-in", d)
			}
		}
		if n := strings.Count(buf.String(), "level=WARN"); n != 8 {
			t.Errorf("%d warnings, want 8 (one per missing digit):\n%s", n, buf)
		}
		if !strings.Contains(buf.String(), filepath.Join(dir, "0.wav")) {
			t.Errorf("warnings do not name the missing file:\n%s", buf)
		}
	})
	t.Run("a missing directory falls back with one warning", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "nope")
		log, buf := captureLog()
		s, err := Load(Files{DigitsDir: dir}, log)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Digits[0], b.Digits[0]) {
			t.Error("digit 0 not the built-in")
		}
		if n := strings.Count(buf.String(), "level=WARN"); n != 1 || !strings.Contains(buf.String(), "key=digits_dir") {
			t.Errorf("want one digits_dir warning, got:\n%s", buf)
		}
	})
	t.Run("a bad digit file is an error naming digits_dir and the file", func(t *testing.T) {
		dir := t.TempDir()
		p := writeFile(t, dir, "5.wav", rawWAV(2, 16, 16000, 400))
		_, err := Load(Files{DigitsDir: dir}, slog.New(slog.DiscardHandler))
		if err == nil || !errors.Is(err, wav.ErrFormat) {
			t.Fatalf("got %v", err)
		}
		for _, want := range []string{"digits_dir", p, "stereo"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %q", err, want)
			}
		}
	})
}
