package testutil

import (
	"bufio"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
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
	cmd, out, _ := DaemonLog(t, bin, cfg, patterns...)
	return cmd, out
}

// Log is everything a daemon wrote to its log (stderr), line by line.
type Log struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	done    chan struct{}
}

// Lines is the log so far.
func (l *Log) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines)
}

// Done is closed once the log has ended (the process has exited): wait
// for it before cmd.Wait, which closes the pipe the log is read from.
func (l *Log) Done() <-chan struct{} { return l.done }

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

// DaemonLog is Daemon that also keeps the whole log.
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
	type hit struct {
		i    int
		addr string
	}
	hits := make(chan hit, len(patterns))
	log := &Log{changed: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(log.done)
		sent := make([]bool, len(patterns)) // each pattern's first match only: hits never fills
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.add(sc.Text())
			for i, p := range patterns {
				if m := p.FindStringSubmatch(sc.Text()); m != nil && !sent[i] {
					sent[i] = true
					hits <- hit{i, m[1]}
				}
			}
		}
	}()
	out := make([]string, len(patterns))
	for got := 0; got < len(patterns); {
		select {
		case h := <-hits:
			out[h.i] = h.addr
			got++
		case <-log.done:
			if len(hits) > 0 {
				continue // what it logged before exiting first
			}
			t.Fatalf("%s exited before logging %v; its log:\n%s", bin, patterns, strings.Join(log.Lines(), "\n"))
		case <-time.After(20 * time.Second):
			t.Fatalf("%s did not log %v", bin, patterns)
		}
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
