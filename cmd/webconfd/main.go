// Command webconfd is the webconf conference server: SIP dial-in rooms with
// mix-minus audio and SEMS-compatible XML-RPC control, a drop-in
// replacement for SEMS's webconference.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
)

func main() {
	os.Exit(run())
}

func run() int {
	path := flag.String("config", "conf/webconfd.conf", "config file")
	flag.Parse()
	cfg, err := conf.Load(*path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "webconfd: %v\n", err)
		return 2
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Server.LogLevel))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	n, err := node.Start(cfg, node.Options{Log: log, LogLevel: level, ConfigDir: filepath.Dir(*path)})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("webconfd running", "sip", n.SIP.Addr(), "xmlrpc", n.RPCAddr(), "config", *path)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	s := <-sig
	for s == syscall.SIGHUP {
		// SIGHUP re-reads the TLS certificate and key (and nothing else):
		// new TLS connections get the new pair, calls go on. Before, the
		// default action ended the process.
		if !n.SIP.TLSEnabled() {
			log.Info("SIGHUP: no sip_tls_listen, nothing to reload")
		} else if err := n.SIP.ReloadTLS(); err != nil {
			log.Error("SIGHUP: certificate not reloaded", "err", err)
		}
		s = <-sig
	}
	log.Info("stopping: hanging up every call", "signal", s.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	return 0
}

func logLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
