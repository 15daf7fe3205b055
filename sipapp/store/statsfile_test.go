package store

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteStatsFileWritesTheSEMSFormat(t *testing.T) {
	dir := t.TempDir()
	must(t, WriteStatsFile(dir, Stats{Total: 12, Failed: 3, Seconds: 600}))
	b, err := os.ReadFile(filepath.Join(dir, "stats"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "12\n3\n600" {
		t.Errorf("got %q, want %q", b, "12\n3\n600")
	}
}

func TestStatsFileRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, want := range []Stats{
		{Total: 12, Failed: 3, Seconds: 600},
		{},
		{Total: math.MaxUint64, Failed: 1, Seconds: math.MaxUint64 - 1},
		{Total: 13, Failed: 3, Seconds: 660}, // overwrites a longer file
	} {
		must(t, WriteStatsFile(dir, want))
		got, err := ReadStatsFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "stats" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %q, want only the stats file (no temp files left)", names)
	}
}

func TestReadStatsFile(t *testing.T) {
	t.Run("a missing file is zero counters", func(t *testing.T) {
		got, err := ReadStatsFile(t.TempDir())
		if err != nil || got != (Stats{}) {
			t.Errorf("got %+v, %v; want zero, nil", got, err)
		}
	})

	for _, tc := range []struct {
		name, content string
		want          Stats
	}{
		{"a file SEMS wrote is read", "7\n2\n120", Stats{7, 2, 120}},
		{"a trailing newline is accepted", "7\n2\n120\n", Stats{7, 2, 120}},
		{"numbers on one line are accepted", "7 2 120", Stats{7, 2, 120}},
		{"an empty file is zero counters", "", Stats{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "stats"), []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadStatsFile(dir)
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}

	for _, tc := range []struct{ name, content string }{
		{"garbage is an error", "hello world\n"},
		{"two numbers are an error", "1\n2"},
		{"four numbers are an error", "1\n2\n3\n4"},
		{"a negative number is an error", "1\n-2\n3"},
		{"an overflowing number is an error", "1\n2\n18446744073709551616"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "stats")
			if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadStatsFile(dir)
			if !errors.Is(err, ErrBadStatsFile) {
				t.Errorf("got %v, want ErrBadStatsFile", err)
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s", err, path)
			}
		})
	}
}

func TestWriteStatsFileIntoAMissingDirectoryFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	err := WriteStatsFile(dir, Stats{Total: 1})
	if err == nil {
		t.Fatal("wrote into a missing directory")
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name %s", err, dir)
	}
}
