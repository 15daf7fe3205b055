package store

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const killHelperEnv = "WEBCONF_STORE_KILL_HELPER"

// runKillHelper is the child of TestSQLiteSurvivesSIGKILL: it writes rooms,
// invites and stats as fast as it can and prints each room's name on stdout
// only after all of that room's writes have returned, until it is killed.
func runKillHelper(path string) {
	ctx := context.Background()
	s, err := OpenSQLite(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for i := 1; ; i++ {
		name := fmt.Sprintf("room-%06d", i)
		if err := s.PutRoom(ctx, Room{Name: name, AdminPin: fmt.Sprintf("%06d", i), LastAccess: time.Unix(int64(i), 0)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := s.AddInvite(ctx, Invite{Room: name, ParticipantID: "p", Number: strconv.Itoa(i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := s.PutStats(ctx, Stats{Total: uint64(i)}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// os.Stdout is unbuffered: the line is in the pipe when this returns.
		fmt.Println(name)
	}
}

func TestSQLiteSurvivesSIGKILL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webconf.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	// Kill the child in the middle of its stream of writes, after it has
	// confirmed a good number of them.
	const confirmedBeforeKill = 50
	var confirmed []string
	deadline := time.After(60 * time.Second)
	for len(confirmed) < confirmedBeforeKill {
		select {
		case name, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				t.Fatalf("helper exited after %d rooms: %s", len(confirmed), stderr.String())
			}
			confirmed = append(confirmed, name)
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatalf("helper confirmed only %d rooms in 60s: %s", len(confirmed), stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Whatever it printed before dying was confirmed too.
	for name := range lines {
		confirmed = append(confirmed, name)
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("helper: want death by SIGKILL, got %v", err)
	}
	if ws, ok := exitErr.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("helper: want death by SIGKILL, got %v (%s)", err, stderr.String())
	}

	// The child never closed the database, so its commits are still in the
	// write-ahead log: reopening has to recover them from there.
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() == 0 {
		t.Fatalf("want a non-empty WAL left by the killed child: %v", err)
	}

	s := openTestSQLite(t, path)
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	rooms := map[string]Room{}
	for _, r := range snap.Rooms {
		rooms[r.Name] = r
	}
	invited := map[string]bool{}
	for _, inv := range snap.Invites {
		invited[inv.Room] = true
	}
	for i, name := range confirmed {
		r, ok := rooms[name]
		if !ok {
			t.Fatalf("confirmed room %s (%d of %d) lost", name, i+1, len(confirmed))
		}
		if want := strings.TrimPrefix(name, "room-"); r.AdminPin != want {
			t.Errorf("room %s: pin %q, want %q", name, r.AdminPin, want)
		}
		if !invited[name] {
			t.Errorf("room %s: invite lost", name)
		}
	}
	if snap.Stats.Total < uint64(len(confirmed)) {
		t.Errorf("stats total %d, want at least %d", snap.Stats.Total, len(confirmed))
	}
	t.Logf("%d confirmed rooms, %d found after SIGKILL", len(confirmed), len(snap.Rooms))
}

func TestSQLiteReopenFindsEverything(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "webconf.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 500000000, time.UTC)
	must(t, s.PutRoom(ctx, Room{Name: "1234", AdminPin: "012345", Expiry: exp}))
	must(t, s.PutRoom(ctx, Room{Name: "77", AdminPin: "999999"}))
	must(t, s.AddInvite(ctx, Invite{"1234", "42", "sip:42@example.org"}))
	must(t, s.AddInvite(ctx, Invite{"1234", "43", "sip:43@example.org"}))
	must(t, s.PutStats(ctx, Stats{Total: 12, Failed: 3, Seconds: 600}))
	want := load(t, s)
	must(t, s.Close())

	s2 := openTestSQLite(t, path)
	got := load(t, s2)
	if len(got.Rooms) != len(want.Rooms) {
		t.Fatalf("rooms: got %+v, want %+v", got.Rooms, want.Rooms)
	}
	for i := range want.Rooms {
		if !roomEqual(got.Rooms[i], want.Rooms[i]) {
			t.Errorf("room %d: got %+v, want %+v", i, got.Rooms[i], want.Rooms[i])
		}
	}
	if fmt.Sprint(got.Invites) != fmt.Sprint(want.Invites) || got.Stats != want.Stats {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// Insertion order continues across the reopen.
	must(t, s2.AddInvite(ctx, Invite{"77", "1", "n"}))
	if inv := load(t, s2).Invites; len(inv) != 3 || inv[2].Room != "77" {
		t.Errorf("invite added after reopen is not last: %+v", inv)
	}
}

func TestOpenSQLiteSetsUpFileAndConnection(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	path := filepath.Join(dir, "webconf.db")
	s := openTestSQLite(t, path)

	t.Run("the directory is created 0700 and the file 0600", func(t *testing.T) {
		for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != want {
				t.Errorf("%s: mode %v, want %v", p, got, want)
			}
		}
		must(t, s.PutRoom(context.Background(), Room{Name: "r", AdminPin: "secret"}))
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("WAL file mode %v, want 0600", got)
		}
	})

	t.Run("the pragmas are in effect", func(t *testing.T) {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "1", // NORMAL
			"foreign_keys": "1",
			"busy_timeout": strconv.FormatInt(busyTimeout.Milliseconds(), 10),
		} {
			var got string
			if err := s.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
				t.Fatalf("%s: %v", pragma, err)
			}
			if got != want {
				t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
			}
		}
	})

	t.Run("the schema version is recorded", func(t *testing.T) {
		var v int
		if err := s.db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		if v != len(migrations) {
			t.Errorf("schema version %d, want %d", v, len(migrations))
		}
	})

	t.Run("writes are serialised on one connection", func(t *testing.T) {
		if got := s.db.Stats().MaxOpenConnections; got != 1 {
			t.Errorf("MaxOpenConnections %d, want 1", got)
		}
	})
}

func TestOpenSQLiteAcceptsAnyBytesInThePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "we?ird #dir %20")
	path := filepath.Join(dir, "a&b=c.db")
	s := openTestSQLite(t, path)
	must(t, s.PutRoom(context.Background(), Room{Name: "r"}))
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the path given: %v", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "a&b=c.db") {
			t.Errorf("stray file %q next to the database", e.Name())
		}
	}
}

func TestOpenSQLiteRejectsAFileThatIsNotADatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webconf.db")
	junk := bytes.Repeat([]byte("this is not an SQLite database\n"), 200)
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite succeeded on a text file")
	}
	if !errors.Is(err, ErrNotDatabase) {
		t.Errorf("got %v, want ErrNotDatabase", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
	after, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if !bytes.Equal(after, junk) {
		t.Error("the failed open modified the file")
	}
}

func TestOpenSQLiteRejectsADirectory(t *testing.T) {
	path := t.TempDir()
	s, err := OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite succeeded on a directory")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name %s", err, path)
	}
}

func TestOpenSQLiteRejectsANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "webconf.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	s, err = OpenSQLite(path)
	if err == nil {
		s.Close()
		t.Fatal("OpenSQLite accepted a schema from the future")
	}
	if !errors.Is(err, ErrSchemaTooNew) || !strings.Contains(err.Error(), path) {
		t.Errorf("got %v, want ErrSchemaTooNew naming %s", err, path)
	}
}

// TestMigrationKeepsRooms opens a database of schema 1 (rooms, invites and
// stats only, as the first release wrote it) and checks that the upgrade to
// the documents table and the rooms' lock column keeps what was there.
func TestMigrationKeepsRooms(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "webconf.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	must(t, s.PutRoom(ctx, Room{Name: "4711", AdminPin: "123456"}))
	if _, err := s.db.Exec(`DROP TABLE docs; ALTER TABLE rooms DROP COLUMN locked; UPDATE schema_version SET version = 1`); err != nil {
		t.Fatal(err)
	}
	must(t, s.Close())
	s = openTestSQLite(t, path)
	must(t, s.WriteDocs(ctx, []Doc{{"meeting", "m", []byte("{}")}}, nil))
	snap := load(t, s)
	if len(snap.Rooms) != 1 || snap.Rooms[0].AdminPin != "123456" || snap.Rooms[0].Locked || len(snap.Docs) != 1 {
		t.Errorf("after migration: rooms %+v docs %d, want the room (unlocked) and the new document", snap.Rooms, len(snap.Docs))
	}
	must(t, s.PutRoom(ctx, Room{Name: "4711", AdminPin: "123456", Locked: true}))
	if snap := load(t, s); !snap.Rooms[0].Locked {
		t.Errorf("after migration a lock is not kept: %+v", snap.Rooms)
	}
}

func BenchmarkSQLitePutRoom(b *testing.B) {
	ctx := context.Background()
	b.Run("replace one room", func(b *testing.B) {
		s := openTestSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
		r := Room{Name: "1234", AdminPin: "123456", LastAccess: time.Now()}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.PutRoom(ctx, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("insert new rooms", func(b *testing.B) {
		s := openTestSQLite(b, filepath.Join(b.TempDir(), "bench.db"))
		names := make([]string, 0, 1<<16)
		for i := range cap(names) {
			names = append(names, strconv.Itoa(i))
		}
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			if err := s.PutRoom(ctx, Room{Name: names[i%len(names)], AdminPin: "123456"}); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkMemoryPutRoom(b *testing.B) {
	ctx := context.Background()
	s := NewMemory()
	r := Room{Name: "1234", AdminPin: "123456", LastAccess: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.PutRoom(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
