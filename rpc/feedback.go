package rpc

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// feedback is SEMS's feedback log (spec 7.1): one line per vote, fields
// joined by "|||", appended through a buffer that is written out on
// flushFeedback, when the buffer fills, and at shutdown.
type feedback struct {
	mu  sync.Mutex
	dir string // resetFeedback may only open files here
	f   *os.File
	w   *bufio.Writer
	now func() time.Time
}

func openFeedback(path, dir string) (*feedback, error) {
	fb := &feedback{dir: dir, now: time.Now}
	if path == "" {
		return fb, nil
	}
	if fb.dir == "" {
		fb.dir = filepath.Dir(path)
	}
	if err := fb.open(path, os.O_APPEND); err != nil {
		return nil, fmt.Errorf("rpc: feedback_file: %w", err)
	}
	return fb, nil
}

func (fb *feedback) open(path string, mode int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|mode, 0o640)
	if err != nil {
		return err
	}
	fb.f, fb.w = f, bufio.NewWriter(f)
	return nil
}

func (fb *feedback) closeLocked() {
	if fb.f != nil {
		_ = fb.w.Flush()
		_ = fb.f.Close()
		fb.f, fb.w = nil, nil
	}
}

// line appends one record; without an open file it is dropped, as in SEMS.
func (fb *feedback) line(fields ...string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.w == nil {
		return
	}
	_, _ = fb.w.WriteString(strings.Join(fields, "|||") + "|||\n")
}

func (fb *feedback) ts() string { return fmt.Sprint(fb.now().Unix()) }

// Flush writes buffered lines out.
func (fb *feedback) Flush() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	if fb.w != nil {
		_ = fb.w.Flush()
	}
}

// Close flushes and closes the file.
func (fb *feedback) Close() {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.closeLocked()
}

// reset closes the current file and opens name, truncating it. Unlike
// SEMS (spec 10.16), only a file in the feedback directory may be named:
// a bare file name, or a path whose directory is that directory.
func (fb *feedback) reset(name string) (code int, msg string) {
	fb.mu.Lock()
	defer fb.mu.Unlock()
	fb.closeLocked()
	if name == "" {
		return -2, "no filename given"
	}
	path, ok := fb.inside(name)
	if !ok || fb.open(path, os.O_TRUNC) != nil {
		return -1, "error opening new feedback file"
	}
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
