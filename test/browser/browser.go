// Package browser drives Debian's chromium headless through chromedp
// for the browser tests of the join page and the console: a fake
// microphone that plays a tone WAV, autoplay without a gesture, and a
// WebAudio probe of what the page plays (the remote audio), so a test
// can tell by ear what a browser participant hears.
package browser

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"webconf/dsp/wav"
)

// Chromium is the browser's path: $WEBCONF_CHROMIUM, else chromium or
// chromium-browser on PATH, else /usr/bin/chromium.
func Chromium() string {
	if p := os.Getenv("WEBCONF_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return "/usr/bin/chromium"
}

// ToneWAV writes a WAV of a sine at freq Hz (48 kHz mono 16-bit, what
// chromium's --use-file-for-fake-audio-capture reads; it loops the file)
// into the test's temporary directory and returns its path.
func ToneWAV(t testing.TB, freq float64) string {
	t.Helper()
	const rate = 48000
	s := make([]int16, rate) // 1 s: a whole number of periods for whole-Hz tones
	for i := range s {
		s[i] = int16(8000 * math.Sin(2*math.Pi*freq*float64(i)/rate))
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("tone-%.0f.wav", freq))
	if err := os.WriteFile(path, wav.Encode(s, rate), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// Options of a browser.
type Options struct {
	// Mic is the WAV the fake microphone plays ("" : chromium's beep).
	Mic string
	// Width and Height of the window (0: 1024x768).
	Width, Height int
}

// Start runs a headless chromium with a fake microphone and returns a
// chromedp context on its first tab; it is closed when the test ends. A
// machine without chromium skips the test.
func Start(t testing.TB, o Options) context.Context {
	t.Helper()
	bin := Chromium()
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no chromium at %s (apt-get install chromium, or set WEBCONF_CHROMIUM)", bin)
	}
	if o.Width == 0 {
		o.Width, o.Height = 1024, 768
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Flag("headless", "new"),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(o.Width, o.Height),
		chromedp.UserDataDir(t.TempDir()),
	)
	if o.Mic != "" {
		opts = append(opts, chromedp.Flag("use-file-for-fake-audio-capture", o.Mic))
	}
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelA()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelA()
	})
	return ctx
}

// Do runs steps with a deadline, failing the test on an error.
func Do(t testing.TB, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(c, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Eval evaluates a JavaScript expression (awaiting a promise) into T,
// failing the test on an error.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitJS polls expr (a JavaScript expression) until it is true, or fails
// the test after d with what.
func WaitJS(t testing.TB, ctx context.Context, d time.Duration, what, expr string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ''`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, page)
	}
}

// probeJS installs window.__webconfLevels(selector, freqs, ms): the mean
// level in dB of each frequency in what the media element plays (its
// srcObject, the remote audio) over ms milliseconds, from a WebAudio
// AnalyserNode; null while the element has no stream.
const probeJS = `
window.__webconfLevels = async (selector, freqs, ms) => {
  const el = document.querySelector(selector);
  if (!el || !el.srcObject) return null;
  if (!window.__webconfProbe || window.__webconfProbe.stream !== el.srcObject) {
    const ctx = new AudioContext();
    await ctx.resume();
    const src = ctx.createMediaStreamSource(el.srcObject);
    const an = ctx.createAnalyser();
    an.fftSize = 8192;
    an.smoothingTimeConstant = 0;
    src.connect(an);
    window.__webconfProbe = { stream: el.srcObject, ctx, an };
  }
  const { ctx, an } = window.__webconfProbe;
  const bins = new Float32Array(an.frequencyBinCount);
  const sum = freqs.map(() => 0);
  let n = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) {
    an.getFloatFrequencyData(bins);
    freqs.forEach((f, i) => {
      const k = Math.round(f / (ctx.sampleRate / an.fftSize));
      sum[i] += Math.max(bins[k - 1], bins[k], bins[k + 1]);
    });
    n++;
    await new Promise((r) => setTimeout(r, 50));
  }
  return sum.map((s) => s / n);
};
true`

// Levels is the level in dB (WebAudio's scale: a full-scale sine is
// about -10 dB, silence -100 or less) of each frequency in the remote
// audio of the element selector plays, over window; ok is false while the
// element has no stream.
func Levels(ctx context.Context, selector string, freqs []float64, window time.Duration) (levels []float64, ok bool, err error) {
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](probeJS)); err != nil {
		return nil, false, fmt.Errorf("install the audio probe: %w", err)
	}
	expr := fmt.Sprintf(`window.__webconfLevels(%q, %s, %d)`, selector, jsNumbers(freqs), window.Milliseconds())
	out, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		return nil, false, err
	}
	return out, out != nil, nil
}

func jsNumbers(fs []float64) string {
	s := "["
	for i, f := range fs {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%g", f)
	}
	return s + "]"
}

// Screenshot saves a PNG of the page as dir/name when $WEBCONF_SCREENSHOTS
// names a directory (make screenshots for the README with
// WEBCONF_SCREENSHOTS=docs go test ./test/browser/); otherwise nothing.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("WEBCONF_SCREENSHOTS")
	if dir == "" {
		return
	}
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
