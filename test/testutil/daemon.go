package testutil

import (
	"bufio"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sync"
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
	cmd, addrs, _ := DaemonLog(t, bin, cfg, patterns...)
	return cmd, addrs
}

// Log is what a daemon has written to stderr so far.
type Log struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

// Wait waits up to d for a line matching re and returns it.
func (l *Log) Wait(t testing.TB, re *regexp.Regexp, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		for _, line := range l.lines {
			if re.MatchString(line) {
				l.mu.Unlock()
				return line
			}
		}
		ch := l.changed
		l.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no log line matching %v within %v", re, d)
		}
	}
}

func (l *Log) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

// DaemonLog is Daemon that also keeps the daemon's whole log.
func DaemonLog(t testing.TB, bin, cfg string, patterns ...*regexp.Regexp) (*exec.Cmd, []string, *Log) {
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
	log := &Log{changed: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.add(sc.Text())
		}
	}()
	out := make([]string, len(patterns))
	for i, p := range patterns {
		out[i] = p.FindStringSubmatch(log.Wait(t, p, 20*time.Second))[1]
	}
	return cmd, out, log
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
