package node

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"webconf/conf"
)

func pwConfig(t *testing.T, pw string) (*conf.Config, string) {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Webconference.MasterPassword = pw
	return &cfg, filepath.Join(cfg.Server.DataDir, conf.MasterPasswordFile)
}

func bufLog() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestMasterPasswordMadeOnceAndKept: an empty master_password is made,
// kept 0600 in data_dir and logged once; the next start reads it back
// without logging it.
func TestMasterPasswordMadeOnceAndKept(t *testing.T) {
	cfg, file := pwConfig(t, "")
	log, b := bufLog()
	pw, err := masterPassword(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-Z2-7]{32}$`).MatchString(pw) {
		t.Fatalf("password %q, want 32 base32 characters", pw)
	}
	want := "master password: " + pw + " (kept in " + file + ")"
	if strings.Count(b.String(), pw) != 1 || !strings.Contains(b.String(), want) {
		t.Fatalf("log %q, want the password once, in %q", b.String(), want)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %04o, want 0600", file, fi.Mode().Perm())
	}
	if got, _ := os.ReadFile(file); string(got) != pw+"\n" {
		t.Errorf("%s holds %q", file, got)
	}
	if left, _ := filepath.Glob(filepath.Join(cfg.Server.DataDir, ".*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}

	log2, b2 := bufLog()
	again, err := masterPassword(cfg, log2)
	if err != nil || again != pw {
		t.Fatalf("second start: %q, %v; want %q", again, err, pw)
	}
	if strings.Contains(b2.String(), pw) || !strings.Contains(b2.String(), "master password read from its file") {
		t.Fatalf("second start logged %q", b2.String())
	}

	// Another one for another data_dir.
	cfg2, _ := pwConfig(t, "")
	if other, err := masterPassword(cfg2, slog.New(slog.DiscardHandler)); err != nil || other == pw {
		t.Fatalf("another data_dir: %q, %v", other, err)
	}
}

// TestMasterPasswordSetWins: a configured password is used as it is and
// the file is neither read nor written.
func TestMasterPasswordSetWins(t *testing.T) {
	cfg, file := pwConfig(t, "s3cret")
	log, b := bufLog()
	if pw, err := masterPassword(cfg, log); err != nil || pw != "s3cret" {
		t.Fatalf("%q, %v", pw, err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatalf("%s made with a configured password: %v", file, err)
	}
	if strings.Contains(b.String(), "s3cret") {
		t.Fatalf("the configured password was logged: %q", b.String())
	}
	// A file left from earlier runs is ignored and untouched, even a bad one.
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("old\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o600, 0o644} {
		if err := os.Chmod(file, mode); err != nil {
			t.Fatal(err)
		}
		if pw, err := masterPassword(cfg, slog.New(slog.DiscardHandler)); err != nil || pw != "s3cret" {
			t.Fatalf("with a %04o file: %q, %v", mode, pw, err)
		}
		if got, _ := os.ReadFile(file); string(got) != "old\n" {
			t.Fatalf("file changed to %q", got)
		}
	}
}

// TestMasterPasswordOff: off (any case) is no password, and no file.
func TestMasterPasswordOff(t *testing.T) {
	for _, v := range []string{"off", "OFF", "Off"} {
		cfg, file := pwConfig(t, v)
		if pw, err := masterPassword(cfg, slog.New(slog.DiscardHandler)); err != nil || pw != "" {
			t.Fatalf("%s: %q, %v; want none", v, pw, err)
		}
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Fatalf("%s: %s made: %v", v, file, err)
		}
	}
}

// TestMasterPasswordBadFile: a file others may read, an empty one, or
// something that is not a file stops the start with a message saying
// what to do; 0400 is fine.
func TestMasterPasswordBadFile(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(file string) error
		want string
	}{
		{"group-readable", func(f string) error { return os.WriteFile(f, []byte("pw\n"), 0o640) }, "mode 0640 lets other users read or change it; run chmod 600 "},
		{"world-readable", func(f string) error { return os.WriteFile(f, []byte("pw\n"), 0o644) }, "run chmod 600"},
		{"empty", func(f string) error { return os.WriteFile(f, []byte("\n\n"), 0o600) }, "empty; delete it"},
		{"a directory", func(f string) error { return os.Mkdir(f, 0o700) }, "not a regular file"},
		{"a symlink", func(f string) error {
			other := filepath.Join(filepath.Dir(f), "other")
			if err := os.WriteFile(other, []byte("pw\n"), 0o600); err != nil {
				return err
			}
			return os.Symlink(other, f)
		}, "not a regular file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, file := pwConfig(t, "")
			if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := c.make(file); err != nil {
				t.Fatal(err)
			}
			_, err := masterPassword(cfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), file) {
				t.Fatalf("err %v, want one naming %s and saying %q", err, file, c.want)
			}
		})
	}
	cfg, file := pwConfig(t, "")
	if err := os.MkdirAll(cfg.Server.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("  mine  \nignored\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	if pw, err := masterPassword(cfg, slog.New(slog.DiscardHandler)); err != nil || pw != "mine" {
		t.Fatalf("0400 file: %q, %v", pw, err)
	}
}

// TestMasterPasswordConcurrentStarts: starts racing on one data_dir all
// end with the one password that was linked into place first.
func TestMasterPasswordConcurrentStarts(t *testing.T) {
	cfg, file := pwConfig(t, "")
	const n = 8
	got := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw, err := masterPassword(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Error(err)
			}
			got[i] = pw
		}()
	}
	wg.Wait()
	kept, err := conf.ReadMasterPassword(file)
	if err != nil {
		t.Fatal(err)
	}
	for i, pw := range got {
		if pw != kept {
			t.Errorf("start %d: %q, file %q", i, pw, kept)
		}
	}
}
