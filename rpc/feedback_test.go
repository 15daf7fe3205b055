package rpc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"webconf/sipapp"
)

// A resetFeedback that fails (a name refused, none given, a file that
// cannot be opened) keeps the open file: the next vote is written to it
// (issue 11, point 9).
func TestResetFeedbackRefusedKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "feedback.txt")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := newService(t, func(_ *sipapp.Options, ro *Options) { ro.FeedbackFile = path })
	s.fb.now = func() (tm timeT) { return fixed }
	want := ""
	for _, tc := range []struct {
		name string
		code int
		msg  string
	}{
		{"../x", -1, "error opening new feedback file"},
		{"/etc/passwd", -1, "error opening new feedback file"},
		{"", -2, "no filename given"},
		{"adir", -1, "error opening new feedback file"}, // inside, but cannot be opened
	} {
		eq(t, call(t, s, "resetFeedback", tc.name), tc.code, tc.msg, si)
		eq(t, call(t, s, "vqRoomFeedback", "r1", "pin", 4), 0, "OK", si)
		want += "RO r1|||pin|||4|||1700000000|||\n"
		call(t, s, "flushFeedback")
		if b, _ := os.ReadFile(path); string(b) != want {
			t.Fatalf("after resetFeedback(%q) the vote was not written to the open file:\n%q\nwant\n%q", tc.name, b, want)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "x")); err == nil {
		t.Fatal("a refused name was created")
	}
	if n := s.FeedbackErrors(); n != 0 {
		t.Fatalf("%d feedback errors counted for refused names", n)
	}
}

// Writes, flushes and closes of the feedback file that fail are counted,
// not dropped; the file is written again once it can be.
func TestFeedbackWriteErrorsAreCounted(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "feedback.txt")
	s := newService(t, func(_ *sipapp.Options, ro *Options) { ro.FeedbackFile = path })
	call(t, s, "vqRoomFeedback", "r1", "pin", 4)
	// The file goes away under the buffer: its flush fails.
	if err := s.fb.f.Close(); err != nil {
		t.Fatal(err)
	}
	call(t, s, "flushFeedback")
	if n := s.FeedbackErrors(); n != 1 {
		t.Fatalf("a failed flush counted %d errors, want 1", n)
	}
	s.Close() // flushes nothing (the lost line was dropped) and closes again: fails
	if n := s.FeedbackErrors(); n != 2 {
		t.Fatalf("a failed close: %d errors, want 2", n)
	}

	// A file on a full device: the vote is lost, and counted.
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	s = newService(t, func(_ *sipapp.Options, ro *Options) { ro.FeedbackFile = "/dev/full" })
	call(t, s, "vqConferenceFeedback", "r1", "pin", "bob", strings.Repeat("x", 100), 5)
	call(t, s, "flushFeedback")
	call(t, s, "flushFeedback") // nothing left to write: no new error
	if n := s.FeedbackErrors(); n != 1 {
		t.Fatalf("a flush to a full device counted %d errors, want 1", n)
	}
	// A buffer's worth of votes fails on write, not only on flush.
	for range 100 {
		call(t, s, "vqConferenceFeedback", "r1", "pin", "bob", strings.Repeat("x", 100), 5)
	}
	if n := s.FeedbackErrors(); n < 2 {
		t.Fatalf("writes through a full buffer to a full device: %d errors, want more than 1", n)
	}
}
