// Package testnode starts a whole webconf node (rpc/node) inside a test
// and stops it when the test ends: the control, meetings, Kamailio and
// command tests drive the same server webconfd runs. It is apart from
// test/testutil because rpc/node imports sipapp, whose own tests use
// testutil.
package testnode

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
)

// Log is a test's logger: warnings and worse on stderr (everything with
// WEBCONF_TEST_LOG set), each line naming the test.
func Log(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("WEBCONF_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
}

// Config is a node's config for a test: SIP, XML-RPC and HTTP on free
// loopback ports, RTP (and browsers' UDP) on rtpLow..rtpHigh (packages
// running in parallel take ranges of their own), data in a temporary
// directory, and master as the master password.
func Config(t testing.TB, rtpLow, rtpHigh int, master string) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.PublicIP = "127.0.0.1"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = rtpLow, rtpHigh
	cfg.Server.DataDir = t.TempDir()
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Webconference.MasterPassword = master
	return &cfg
}

// Start starts a node from cfg and o (o.Log nil: Log(t)) and shuts it
// down when the test ends, failing the test if the shutdown fails.
func Start(t testing.TB, cfg *conf.Config, o node.Options) *node.Node {
	t.Helper()
	if o.Log == nil {
		o.Log = Log(t)
	}
	n, err := node.Start(cfg, o)
	if err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}
