package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"webconf/conf"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// dialStatus calls srv (user "conference" unless cfg names one) and
// returns the final status of the INVITE; an answered phone is closed
// when the test ends.
func dialStatus(t *testing.T, srv *server, cfg phone.Config) int {
	t.Helper()
	if cfg.User == "" {
		cfg.User = "conference"
	}
	return dialStatusAt(t, srv.addr, cfg)
}

// dialStatusAt is dialStatus for a phone calling addr (such as the TLS
// listener) as cfg says.
func dialStatusAt(t *testing.T, addr string, cfg phone.Config) int {
	t.Helper()
	cfg.Server = addr
	p, err := phone.Dial(testutil.Ctx(t, 5*time.Second), cfg)
	if err == nil {
		t.Cleanup(p.Close)
		return 200
	}
	var se *phone.StatusError
	if !errors.As(err, &se) {
		t.Fatalf("dial %s: %v", addr, err)
	}
	return se.Code
}

func TestWrongRoomNumbersBanTheSource(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Webconference.PrivateRooms = true
		c.Webconference.MaxPinAttempts = 0 // only the per-source budget ends it
		c.Limits.PinFailures = 3
		c.Limits.FailureWindow, c.Limits.BanTime = time.Minute, time.Minute
	})
	p := srv.keypadCall(t, phone.Config{})
	for i := 0; i < 2; i++ {
		typeDigits(t, p, "99#", phone.RFC4733)
		hear(t, p, fWrongPin, "wrong_pin")
		quiet(t, p, fWrongPin)
	}
	typeDigits(t, p, "99#", phone.RFC4733)
	hear(t, p, fWrongPinBye, "wrong_pin_bye when the budget runs out")
	waitDone(t, p, 5*time.Second, "the ban")
	if code := dialStatus(t, srv, phone.Config{}); code != 403 {
		t.Fatalf("a banned source got %d, want 403", code)
	}
	if m := srv.Metrics(); m.SourceBans != 1 || m.Banned != 1 || m.PinFailures != 3 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestInviteRateAndCallCaps(t *testing.T) {
	t.Parallel()
	t.Run("invite_rate per source", func(t *testing.T) {
		t.Parallel()
		srv := start(t, func(c *conf.Config) { c.Limits.InviteRate, c.Limits.InviteBurst = 1, 2 })
		codes := []int{}
		for i := 0; i < 3; i++ {
			codes = append(codes, dialStatus(t, srv, phone.Config{Headers: nil, User: "000"}))
		}
		if codes[0] != 200 || codes[1] != 200 || codes[2] != 503 {
			t.Fatalf("codes %v, want 200 200 503", codes)
		}
		if srv.Metrics().RateLimited != 1 {
			t.Fatalf("rate-limited count %d", srv.Metrics().RateLimited)
		}
	})
	t.Run("max_calls", func(t *testing.T) {
		t.Parallel()
		srv := start(t, func(c *conf.Config) { c.Limits.MaxCalls = 2 })
		srv.direct(t, "cap", phone.Config{})
		srv.direct(t, "cap", phone.Config{})
		if code := dialStatus(t, srv, phone.Config{}); code != 503 {
			t.Fatalf("third call got %d, want 503", code)
		}
	})
	t.Run("RTP port exhaustion", func(t *testing.T) {
		t.Parallel()
		srv := start(t, func(c *conf.Config) {
			c.Server.RTPLowPort, c.Server.RTPHighPort = 45100, 45102 // two even ports
			c.Server.RTPSocket = "per_call"                          // a port per call
		})
		srv.direct(t, "ports", phone.Config{})
		srv.direct(t, "ports", phone.Config{})
		if srv.FreeRTPPorts() != 0 {
			t.Skipf("a port of the range is taken by another process (%d free)", srv.FreeRTPPorts())
		}
		if code := dialStatus(t, srv, phone.Config{}); code != 503 {
			t.Fatalf("no RTP port: got %d, want 503", code)
		}
		if srv.ActiveCalls() != 2 || srv.FreeRTPPorts() != 0 {
			t.Fatalf("the refused call changed the others: %d calls, %d free ports", srv.ActiveCalls(), srv.FreeRTPPorts())
		}
	})
}

func TestTCPConnectionCaps(t *testing.T) {
	t.Parallel()
	const idle = time.Second
	srv := start(t, func(c *conf.Config) {
		c.Limits.MaxTCPConnsPerSource = 2
		c.Limits.TCPIdleTimeout = idle
	})
	var conns []net.Conn
	var dialed []time.Time
	for i := 0; i < 3; i++ {
		dialed = append(dialed, time.Now())
		c, err := net.Dial("tcp", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	// The third is closed at once: read it first, with a deadline well
	// short of the idle timeout, so that neither the idle close nor the
	// test's own deadline can pass for the refusal.
	if err := closedWithin(conns[2], 500*time.Millisecond); err != nil {
		t.Fatalf("the connection over the cap: %v", err)
	}
	// The first two close after a second of silence (the idle timeout),
	// not sooner.
	for i, c := range conns[:2] {
		if err := closedWithin(c, 5*time.Second); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		if el := time.Since(dialed[i]); el < idle {
			t.Fatalf("conn %d closed %v after it was opened, before the idle timeout %v", i, el, idle)
		}
	}
	if _, refused := srv.Metrics().TCPConns, srv.Metrics().TCPRefused; refused != 1 {
		t.Fatalf("refused TCP connections %d, want 1", refused)
	}
}

// closedWithin reads c until d has passed and returns nil only if the
// server closed it (EOF or reset) by then: the read's own deadline, data,
// or any other error is an error.
func closedWithin(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(make([]byte, 1))
	switch {
	case n > 0:
		return fmt.Errorf("the server sent data instead of closing")
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("still open after %v, want closed by the server", d)
	default:
		return fmt.Errorf("read: %v, want closed by the server (EOF or reset)", err)
	}
}

// TestTCPPerSourceCapSparesTrustedProxies: a trusted SIP proxy keeps as
// many connections as it needs (max_tcp_conns still bounds them all),
// while another source on the same server is still capped.
func TestTCPPerSourceCapSparesTrustedProxies(t *testing.T) {
	t.Parallel()
	srv := start(t, func(c *conf.Config) {
		c.Limits.MaxTCPConnsPerSource = 2
		c.Limits.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	})
	_, port, _ := net.SplitHostPort(srv.addr)
	dialFrom := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", net.JoinHostPort("127.0.0.1", port))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	for i := 0; i < 3; i++ {
		c := dialFrom("127.0.0.1")
		if err := optionsAnswered(c, i); err != nil {
			t.Fatalf("connection %d from the trusted proxy: %v", i, err)
		}
	}
	for i := 0; i < 2; i++ {
		if err := optionsAnswered(dialFrom("127.0.0.2"), 10+i); err != nil {
			t.Fatalf("connection %d from another source: %v", i, err)
		}
	}
	if err := closedWithin(dialFrom("127.0.0.2"), 2*time.Second); err != nil {
		t.Fatalf("the third connection from an untrusted source: %v", err)
	}
}

// optionsAnswered sends an OPTIONS on c and reads its 200.
func optionsAnswered(c net.Conn, n int) error {
	la := c.LocalAddr().String()
	req := fmt.Sprintf("OPTIONS sip:%s;transport=tcp SIP/2.0\r\nVia: SIP/2.0/TCP %s;branch=z9hG4bK-tp%d\r\n"+
		"From: <sip:probe@%s>;tag=t%d\r\nTo: <sip:probe@%s>\r\nCall-ID: tp-%d@test\r\nCSeq: 1 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", c.RemoteAddr(), la, n, la, n, c.RemoteAddr(), n)
	if _, err := c.Write([]byte(req)); err != nil {
		return err
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 2048)
	k, err := c.Read(buf)
	if err != nil {
		return fmt.Errorf("no answer: %w", err)
	}
	if !strings.HasPrefix(string(buf[:k]), "SIP/2.0 200") {
		return fmt.Errorf("answer %.40q", buf[:k])
	}
	return nil
}
