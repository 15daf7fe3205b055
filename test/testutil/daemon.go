package testutil

import (
	"bufio"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"webconf/dsp/tone"
)

// Tone is d of a steady sine at freq (8 kHz samples, amplitude 6000): the
// end-to-end tests play prompts as single tones so that a test can tell
// by ear which prompt a caller hears.
func Tone(freq float64, d time.Duration) []int16 {
	s := make([]int16, int(d/time.Millisecond)*8)
	tone.NewOsc(freq, 6000).Fill(s)
	return s
}

// Daemon runs bin -config cfg, waits until its log (stderr) has matched
// every pattern, and returns the process with each pattern's first
// submatch (an address), in order. The process is killed when the test
// ends.
func Daemon(t testing.TB, bin, cfg string, patterns ...*regexp.Regexp) (*exec.Cmd, []string) {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	type hit struct {
		i    int
		addr string
	}
	hits := make(chan hit, len(patterns))
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			for i, p := range patterns {
				if m := p.FindStringSubmatch(sc.Text()); m != nil {
					hits <- hit{i, m[1]}
				}
			}
		}
	}()
	out := make([]string, len(patterns))
	for got := 0; got < len(patterns); {
		select {
		case h := <-hits:
			if out[h.i] == "" {
				out[h.i] = h.addr
				got++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not log %v", bin, patterns)
		}
	}
	return cmd, out
}

// Build compiles a command of this module (an import path such as
// "webconf/cmd/webconfd") into a directory removed with the test, and
// returns the binary's path.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), path.Base(pkg))
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
