// Package e2e runs the real server on loopback and calls it with test
// phones that send real RTP: tones they must hear from everyone but
// themselves, DTMF typed as RFC 4733 events, SIP INFO or in-band tones.
package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/prompts"
	"webconf/sipapp"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// Test prompts are single tones, so a test can tell by ear which prompt a
// caller is hearing. Caller tones stay at or below 1300 Hz.
const (
	fEnterPin    = 1500.0
	fWrongPin    = 1600.0
	fWrongPinBye = 1700.0
	fEntering    = 1800.0
	fFirst       = 1900.0
	fJoin        = 2000.0
	fDrop        = 2100.0
)

// fDigit is the tone of the read-back prompt for digit d.
func fDigit(d int) float64 { return 2200 + 100*float64(d) }

var toneSamples = testutil.Tone

// testPrompts are short so that the flows run fast.
func testPrompts() *prompts.Set {
	p := &prompts.Set{
		EnterPin:           toneSamples(fEnterPin, 1500*time.Millisecond),
		WrongPin:           toneSamples(fWrongPin, 600*time.Millisecond),
		WrongPinBye:        toneSamples(fWrongPinBye, 600*time.Millisecond),
		EnteringConference: toneSamples(fEntering, 400*time.Millisecond),
		FirstParticipant:   toneSamples(fFirst, 600*time.Millisecond),
		JoinSound:          toneSamples(fJoin, 300*time.Millisecond),
		DropSound:          toneSamples(fDrop, 300*time.Millisecond),
	}
	for d := 0; d < 10; d++ {
		p.Digits[d] = toneSamples(fDigit(d), 300*time.Millisecond)
	}
	return p
}

type server struct {
	*sipapp.Server
	addr   string
	events *recorder
}

// recorder keeps the status transitions of every participant record.
type recorder struct {
	room.NopEvents
	mu     sync.Mutex
	status map[string][]string // call tag -> "3 entered", ...
}

func (r *recorder) Status(room string, p room.Participant) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[p.CallTag] = append(r.status[p.CallTag], fmt.Sprintf("%d %s", p.Status, p.Reason))
}

// statuses returns the transitions of one record so far.
func (r *recorder) statuses(tag string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.status[tag]...)
}

// start runs a server on a free loopback port with the test prompts; edit
// may change the config first. The server is stopped when the test ends.
func start(t *testing.T, edit func(*conf.Config)) *server {
	t.Helper()
	return startWith(t, testPrompts(), edit)
}

func startWith(t *testing.T, set *prompts.Set, edit func(*conf.Config)) *server {
	t.Helper()
	level := slog.LevelWarn
	if os.Getenv("WEBCONF_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
	return startLogged(t, set, edit, log, nil)
}

// startLogged is startWith with the server's log given; more, when not
// nil, changes the server's options last.
func startLogged(t *testing.T, set *prompts.Set, edit func(*conf.Config), log *slog.Logger, more func(*sipapp.Options)) *server {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.PublicIP = "127.0.0.1"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 20000, 29998
	cfg.Webconference.DirectRoomRE = nil
	if edit != nil {
		edit(&cfg)
	}
	rec := &recorder{status: map[string][]string{}}
	opt := sipapp.OptionsFromConfig(&cfg, set, log)
	opt.Events = rec
	if more != nil {
		more(&opt)
	}
	srv, err := sipapp.New(opt)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &server{Server: srv, addr: srv.Addr(), events: rec}
}

// dial calls the server and closes the phone when the test ends.
func (s *server) dial(t *testing.T, cfg phone.Config) *phone.Phone {
	t.Helper()
	cfg.Server = s.addr
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial %q: %v", cfg.User, err)
	}
	testutil.HangUpAtEnd(t, p)
	return p
}

// direct dials straight into room through P-App-Param.
func (s *server) direct(t *testing.T, room string, cfg phone.Config) *phone.Phone {
	t.Helper()
	cfg.Headers = append(cfg.Headers, appParam("room="+room))
	if cfg.User == "" {
		cfg.User = "conference"
	}
	return s.dial(t, cfg)
}

// participants returns the room's records, or nil.
func (s *server) participants(room string) []room.Participant {
	info, ok := s.Registry().Room(room)
	if !ok {
		return nil
	}
	return info.Participants
}

// waitStatus waits until the record with tag has the status and reason.
func (s *server) waitStatus(t *testing.T, room, tag string, st room.Status, reason string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, fmt.Sprintf("%s in %s to be %d %q", tag, room, st, reason), func() bool {
		for _, p := range s.participants(room) {
			if p.CallTag == tag {
				return p.Status == st && p.Reason == reason
			}
		}
		return false
	})
}

// connected counts records in status 3.
func (s *server) connected(name string) int {
	n := 0
	for _, p := range s.participants(name) {
		if p.Status == room.StatusConnected {
			n++
		}
	}
	return n
}

// listenHosts listens on UDP at 127.0.0.1 and, when otherHost, at
// 127.0.0.2 too; other is here itself unless otherHost. Both are closed
// when the test ends.
func listenHosts(t *testing.T, otherHost bool) (here, other *net.UDPConn) {
	t.Helper()
	here, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	other = here
	if otherHost {
		if other, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		here.Close()
		other.Close()
	})
	return here, other
}

// serveSIP reads the SIP requests that reach each of conns, one
// goroutine a socket, and hands each to handle with its source; what is
// not a SIP request is dropped. When the test ends the sockets are
// closed and the goroutines waited for.
func serveSIP(t *testing.T, handle func(conn *net.UDPConn, req *sip.Request, src netip.AddrPort), conns ...*net.UDPConn) {
	var wg sync.WaitGroup
	t.Cleanup(func() {
		for _, conn := range conns {
			conn.Close()
		}
		wg.Wait()
	})
	for _, conn := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 65535)
			for {
				n, src, err := conn.ReadFromUDPAddrPort(buf)
				if err != nil {
					return
				}
				msg, err := sip.ParseMessage(append([]byte(nil), buf[:n]...))
				req, ok := msg.(*sip.Request)
				if err != nil || !ok {
					continue
				}
				handle(conn, req, src)
			}
		}()
	}
}
