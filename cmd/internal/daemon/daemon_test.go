package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// script writes a stand-in server: a shell script run as "bin -config cfg".
func script(t *testing.T, body string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "server")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

func TestStartWaitsUntilTheCallerSeesItReady(t *testing.T) {
	// 25 lines, then "ready" with its config path, then it runs until
	// SIGTERM. The trap is set before "ready": Stop may signal as soon as
	// the line is read (set after, a SIGTERM in between killed the shell
	// without its "bye": seen once under a loaded make test).
	bin := script(t, `trap 'echo bye >&2; exit 0' TERM
i=0; while [ $i -lt 25 ]; do echo "line $i" >&2; i=$((i+1)); done
echo "ready $2" >&2
while :; do sleep 0.05; done`)
	var seen []string // onLine runs in one goroutine at a time
	d, err := Start(t.Context(), bin, "my.conf", func(line string) bool {
		seen = append(seen, line)
		return line == "ready my.conf"
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 26 || !d.Alive() || d.Pid() <= 0 {
		t.Fatalf("ready after %d lines (want 26), alive %v, pid %d", len(seen), d.Alive(), d.Pid())
	}
	want := make([]string, 0, 20)
	for i := 6; i < 25; i++ {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	want = append(want, "ready my.conf")
	if got := d.LastLines(); got != strings.Join(want, "\n") {
		t.Errorf("LastLines:\n%s\nwant the last 20 lines", got)
	}
	d.Stop()
	if d.Alive() {
		t.Error("alive after Stop")
	}
	if !strings.HasSuffix(d.LastLines(), "\nbye") {
		t.Errorf("no SIGTERM handled: %s", d.LastLines())
	}
}

func TestStartReportsAServerThatExitsFirst(t *testing.T) {
	bin := script(t, `echo "listen: address in use" >&2; exit 1`)
	_, err := Start(t.Context(), bin, "x.conf", func(string) bool { return false })
	if !errors.Is(err, ErrNotReady) || !strings.Contains(err.Error(), "address in use") {
		t.Fatalf("err = %v, want ErrNotReady with the log", err)
	}
}
