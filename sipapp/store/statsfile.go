package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// StatsFileName is the name of the SEMS stats file inside stats_dir.
const StatsFileName = "stats"

// ReadStatsFile reads <dir>/stats, the SEMS call statistics file (spec
// section 7.2): the numbers total, failed and seconds separated by white
// space. A missing file is zero counters (a fresh install), not an error; so
// is an empty one, which SEMS's non-atomic writer leaves behind when it dies
// mid-write and from which SEMS itself starts at zero. Anything else that is
// not exactly three unsigned decimal numbers fails with an error wrapping
// ErrBadStatsFile and naming the file, so that an operator's counters are
// never silently reset.
func ReadStatsFile(dir string) (Stats, error) {
	path := filepath.Join(dir, StatsFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Stats{}, nil
	}
	if err != nil {
		return Stats{}, fmt.Errorf("store: read stats file: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return Stats{}, nil
	}
	if len(f) != 3 {
		return Stats{}, fmt.Errorf("store: %s: %w: want 3 numbers, found %d fields", path, ErrBadStatsFile, len(f))
	}
	var v [3]uint64
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return Stats{}, fmt.Errorf("store: %s: %w: field %d: %w", path, ErrBadStatsFile, i+1, err)
		}
		v[i] = n
	}
	return Stats{Total: v[0], Failed: v[1], Seconds: v[2]}, nil
}

// WriteStatsFile writes s to <dir>/stats in the SEMS format: total, failed
// and seconds, each on its own line, no newline after the last. The file is
// written to a temporary file in the same directory, synced and renamed over
// the old one, so a crash at any point leaves either the old or the new file,
// never half of one. The directory must exist.
func WriteStatsFile(dir string, s Stats) error {
	path := filepath.Join(dir, StatsFileName)
	tmp, err := os.CreateTemp(dir, "."+StatsFileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	b := make([]byte, 0, 3*21)
	b = strconv.AppendUint(b, s.Total, 10)
	b = append(b, '\n')
	b = strconv.AppendUint(b, s.Failed, 10)
	b = append(b, '\n')
	b = strconv.AppendUint(b, s.Seconds, 10)
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	// Stats are not secret; CreateTemp's 0600 would lock out monitoring
	// that reads the SEMS file as another user.
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	// Sync before rename: otherwise a power loss can leave the new name
	// pointing at an empty file.
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	done = true
	// Make the rename itself durable. Best effort: some file systems
	// cannot sync a directory, and the data is already safe either way.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
