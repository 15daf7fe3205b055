package rpc

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// feedback is SEMS's feedback log (spec 7.1): one line per vote, fields
// joined by "|||", appended through a buffer that is written out on
// flushFeedback, when the buffer fills, and at shutdown.
//
// A write, flush or close that fails is counted (Errors, exported as
// webconf_feedback_errors_total) and logged, never dropped silently; the
// lines it held are lost. The log names the file and the error, never a
// vote (votes carry admin PINs).
type feedback struct {
	mu   sync.Mutex
	dir  string // resetFeedback may only open files here
	path string // the open file's name, for the log
	f    *os.File
	w    *bufio.Writer
	now  func() time.Time
	log  *slog.Logger

	errs    atomic.Uint64
	failing bool // the last operation failed: log only the first of a run
}

func openFeedback(path, dir string, log *slog.Logger) (*feedback, error) {
	if log == nil {
		log = slog.Default()
	}
	fb := &feedback{dir: dir, now: time.Now, log: log}
	if path == "" {
		return fb, nil
	}
	if fb.dir == "" {
		fb.dir = filepath.Dir(path)
	}
	f, err := openFeedbackFile(path, os.O_APPEND)
	if err != nil {
		return nil, fmt.Errorf("rpc: feedback_file: %w", err)
	}
	fb.f, fb.w, fb.path = f, bufio.NewWriter(f), path
	return fb, nil
}

func openFeedbackFile(path string, mode int) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|mode, 0o640)
}

// Errors is how many writes, flushes and closes of the feedback file
// failed.
func (fb *feedback) Errors() uint64 { return fb.errs.Load() }

// checkLocked counts and logs a failed operation on the file. A run of
// failures (a full disk) is logged once, with the count, until an
// operation succeeds again.
func (fb *feedback) checkLocked(op string, err error) {
	if err == nil {
		fb.failing = false
		return
	}
	n := fb.errs.Add(1)
	if !fb.failing {
		fb.log.Error("feedback file: "+op+" failed; votes are lost until it works again", "file", fb.path, "err", err, "errors_total", n)
	}
	fb.failing = true
	if fb.w != nil && fb.f != nil {
		// bufio keeps its first error forever: start afresh so that the
		// file is written again once it can be.
		fb.w.Reset(fb.f)
	}
}

// closeLocked flushes and closes the open file, counting what fails.
func (fb *feedback) closeLocked() {
	if fb.f == nil {
		return
	}
	fb.checkLocked("flush", fb.w.Flush())
	f := fb.f
	fb.f, fb.w = nil, nil
	fb.checkLocked("close", f.Close())
}

// line appends one record; without an open file it is dropped, as in SEMS.
func (fb *feedback) line(fields ...string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.w == nil {
		return
	}
	_, err := fb.w.WriteString(strings.Join(fields, "|||") + "|||\n")
	fb.checkLocked("write", err)
}

func (fb *feedback) ts() string { return fmt.Sprint(fb.now().Unix()) }

// Flush writes buffered lines out.
func (fb *feedback) Flush() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.w != nil {
		fb.checkLocked("flush", fb.w.Flush())
	}
}

// Close flushes and closes the file.
func (fb *feedback) Close() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.closeLocked()
}

// reset opens name, truncating it, and then closes the current file.
// Unlike SEMS (spec 10.16), only a file in the feedback directory may be
// named: a bare file name, or a path whose directory is that directory.
// Unlike SEMS too, a reset that fails (no name, a name refused, a file
// that cannot be opened) keeps the current file open: votes go on being
// written where they went.
func (fb *feedback) reset(name string) (code int, msg string) {
	if name == "" {
		return -2, "no filename given"
	}
	path, ok := fb.inside(name)
	if !ok {
		return -1, "error opening new feedback file"
	}
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.f != nil && fb.path == path {
		// Reopening the open file truncates it. Its buffered lines are
		// written out first, as SEMS's close before the reopen does, so
		// that the truncation takes them as it does in SEMS rather than
		// their landing in the new file when the old handle closes.
		fb.checkLocked("flush", fb.w.Flush())
	}
	f, err := openFeedbackFile(path, os.O_TRUNC)
	if err != nil {
		return -1, "error opening new feedback file"
	}
	fb.closeLocked()
	fb.f, fb.w, fb.path = f, bufio.NewWriter(f), path
	return 0, "OK"
}

func (fb *feedback) inside(name string) (string, bool) {
	if fb.dir == "" {
		return "", false
	}
	dir, err := filepath.Abs(fb.dir)
	if err != nil {
		return "", false
	}
	var path string
	if filepath.IsAbs(name) {
		path = filepath.Clean(name)
	} else {
		if strings.ContainsRune(name, filepath.Separator) || name == "." || name == ".." {
			return "", false
		}
		path = filepath.Join(dir, name)
	}
	if filepath.Dir(path) != dir || filepath.Base(path) == ".." {
		return "", false
	}
	return path, true
}
