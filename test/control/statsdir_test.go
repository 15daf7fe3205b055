package control

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/rpc/node"
	"webconf/sipapp/store"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// A stats_dir that does not exist yet is created at start-up, as data_dir
// is: the first call's end writes SEMS's stats file there and shutdown
// writes it again without an error.
func TestStatsDirIsCreated(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not", "yet", "stats")
	cfg := testConfig(t, t.TempDir())
	cfg.Webconference.StatsDir = dir
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(cfg, node.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("start with a missing stats_dir: %v", err)
	}
	shut := false
	t.Cleanup(func() {
		if !shut {
			_ = n.Shutdown(context.Background())
		}
	})
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("stats_dir not created at start-up: %v", err)
	}

	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{
		Server:  n.SIP.Addr(),
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=stats")},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	if err := p.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	p.Close()
	// SEMS writes the file after the 1st, 3rd, 5th... call.
	testutil.WaitFor(t, 5*time.Second, "the stats file after the first call", func() bool {
		st, err := store.ReadStatsFile(dir)
		return err == nil && st.Total == 1
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shut = true
	if err := n.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if st, err := store.ReadStatsFile(dir); err != nil || st.Total != 1 {
		t.Fatalf("stats file after shutdown: %+v, %v", st, err)
	}
}

// A stats_dir that cannot be created stops the start, naming the key.
func TestStatsDirThatCannotBeCreated(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, t.TempDir())
	cfg.Webconference.StatsDir = filepath.Join(file, "stats") // below a regular file
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n, err := node.Start(cfg, node.Options{Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		_ = n.Shutdown(context.Background())
		t.Fatal("the node started with a stats_dir below a regular file")
	}
	if !strings.Contains(err.Error(), "stats_dir") {
		t.Fatalf("the error does not name stats_dir: %v", err)
	}
}
