// Package sipp drives the server with SIPp, a SIP client nobody here wrote,
// using the sample config. The tests skip when sipp is not installed
// (.ci/run installs it: Debian package sip-tester).
package sipp

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"webconf/conf"
	"webconf/prompts"
	"webconf/sipapp"
	"webconf/sipapp/room"
)

func startSample(t *testing.T) *sipapp.Server {
	t.Helper()
	cfg, err := conf.Load("../../conf/webconfd.conf")
	if err != nil {
		t.Fatalf("sample config: %v", err)
	}
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 30000, 39998
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := sipapp.New(sipapp.OptionsFromConfig(cfg, prompts.Builtin(), log))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv
}

// freeUDPPort finds a port for sipp to bind (it cannot take port 0 and
// report back).
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// runSipp runs one call of scenario against srv and, while it runs, waits
// for a participant from sipp to show in room with reason.
func runSipp(t *testing.T, srv *sipapp.Server, scenario, service, name, reason string) {
	t.Helper()
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	scenario, err = filepath.Abs(scenario)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port, mport := freeUDPPort(t), freeUDPPort(t)&^1
	cmd := exec.CommandContext(ctx, bin, "-sf", scenario, "-s", service, "-m", "1", "-l", "1",
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mport),
		"-timeout", "50s", "-nostdin", "-trace_err", "-error_file", t.TempDir()+"/err.log",
		srv.Addr())
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	seen := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !seen {
		select {
		case err := <-done:
			t.Fatalf("sipp ended (%v) before its call showed in room %s:\n%s", err, name, out.String())
		case <-tick.C:
			info, _ := srv.Registry().Room(name)
			for _, p := range info.Participants {
				if p.Status == room.StatusConnected && p.Reason == reason && bytes.Contains([]byte(p.Number), []byte("sip:sipp@")) {
					seen = true
				}
			}
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("sipp failed: %v\n%s", err, out.String())
	}
	waitGone(t, srv)
}

func waitGone(t *testing.T, srv *sipapp.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ActiveCalls() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls left after sipp hung up", srv.ActiveCalls())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSippDialsARoomDirectly(t *testing.T) {
	srv := startSample(t)
	runSipp(t, srv, "direct.xml", "000777123", "123", room.ReasonDirect)
}

func TestSippTypesTheRoomNumber(t *testing.T) {
	srv := startSample(t)
	runSipp(t, srv, "keypad.xml", "conference", "123", room.ReasonEntered)
}

// TestServerDialsSippThroughA401 has the server dial out to SIPp acting as
// a provider that demands digest credentials.
func TestServerDialsSippThroughA401(t *testing.T) {
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	srv := startSample(t)
	scenario, err := filepath.Abs("uas_auth.xml")
	if err != nil {
		t.Fatal(err)
	}
	port, mport := freeUDPPort(t), freeUDPPort(t)&^1
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-sf", scenario, "-m", "1", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-mp", strconv.Itoa(mport), "-timeout", "50s", "-nostdin", "-trace_err", "-error_file", t.TempDir()+"/err.log")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// SIPp needs a moment to bind; retry the dial-out until its port answers.
	var tag string
	deadline := time.Now().Add(10 * time.Second)
	for {
		tag, err = srv.Dialout(context.Background(), sipapp.DialRequest{
			Room: "sipp", Callee: "provider", FromUser: "conference", Domain: "127.0.0.1:" + strconv.Itoa(port),
			AuthUser: "wcuser", AuthPwd: "s3cret",
		})
		if err != nil {
			t.Fatal(err)
		}
		if waitConnected(srv, "sipp", tag, 3*time.Second) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dial-out never connected:\n%s", out.String())
		}
	}
	if err := srv.Registry().Kick("sipp", tag); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("sipp: %v\n%s", err, out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("sipp did not finish:\n%s", out.String())
	}
}

// waitConnected waits until the record is 3 "200 OK"; false when it ended
// without connecting or the time ran out.
func waitConnected(srv *sipapp.Server, name, tag string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		info, _ := srv.Registry().Room(name)
		for _, p := range info.Participants {
			if p.CallTag != tag {
				continue
			}
			if p.Status == room.StatusConnected {
				return true
			}
			if p.Status == room.StatusFinished {
				return false
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// TestSippOneSource100CallsPerSecond: SIPp places 100 calls a second for
// 10 seconds from one address (a proxy or SBC in front would look like
// this) into rooms named by direct_room_re, with the sample config's
// limits: every call is answered, none is refused as a flood.
func TestSippOneSource100CallsPerSecond(t *testing.T) {
	bin, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (apt-get install sip-tester)")
	}
	srv := startSample(t)
	scenario, err := filepath.Abs("direct.xml")
	if err != nil {
		t.Fatal(err)
	}
	const rate, calls = 100, 1000
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	port, mport := freeUDPPort(t), freeUDPPort(t)&^1
	// Every call dials room 100 (000777100 under direct_room_re).
	cmd := exec.CommandContext(ctx, bin, "-sf", scenario, "-s", "000777100", "-r", strconv.Itoa(rate), "-m", strconv.Itoa(calls),
		"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-mp", strconv.Itoa(mport),
		"-timeout", "80s", "-nostdin", "-trace_err", "-error_file", t.TempDir()+"/err.log", srv.Addr())
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Run(); err != nil {
		m := srv.Metrics()
		t.Fatalf("sipp: %v (server: %d rate-limited, %d capped, %d refused, %d banned)\n%s",
			err, m.RateLimited, m.Capped, m.Refused, m.Banned, tail(out.String(), 3000))
	}
	if el := time.Since(began); el < 9*time.Second {
		t.Fatalf("sipp finished in %v: the calls did not take 10 s at %d/s", el, rate)
	}
	waitGone(t, srv)
	m := srv.Metrics()
	if m.RateLimited != 0 || m.Capped != 0 || m.Refused != 0 || m.Banned != 0 || m.CallsTotal != calls {
		t.Fatalf("server: %d calls of %d, %d rate-limited, %d capped, %d refused, %d banned",
			m.CallsTotal, calls, m.RateLimited, m.Capped, m.Refused, m.Banned)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
