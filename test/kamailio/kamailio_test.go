// Package kamailio runs webconfd behind a real Kamailio (the Debian
// package, started by the test with a generated config on loopback,
// record-routing and forwarding every INVITE to webconfd) with
// [limits] trusted_proxies naming it, and calls through it with test
// phones on their own loopback addresses (127.0.0.2, 127.0.1.x, ...:
// Linux routes all of 127/8 to lo), so that the proxy's Vias tell the
// callers apart. The tests skip only where kamailio is not installed
// (.ci/run installs it).
package kamailio

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kolo/xmlrpc"

	"webconf/conf"
	"webconf/dsp/tone"
	"webconf/prompts"
	"webconf/rpc/node"
	"webconf/rpc/xmlrpc/client"
	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

// kamailioBin finds the kamailio binary (in /usr/sbin, which a user's
// PATH may lack).
func kamailioBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("kamailio"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/kamailio", "/usr/local/sbin/kamailio"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("kamailio not installed (Debian: apt-get install kamailio)")
	return ""
}

// moduleDir is where kamailio's modules are (tm.so).
func moduleDir(t *testing.T) string {
	t.Helper()
	cands, _ := filepath.Glob("/usr/lib/*/kamailio/modules")
	cands = append(cands, "/usr/lib/kamailio/modules", "/usr/lib64/kamailio/modules", "/usr/local/lib64/kamailio/modules")
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "tm.so")); err == nil {
			return d
		}
	}
	t.Fatalf("kamailio is installed but its modules (tm.so) are not found in %v", cands)
	return ""
}

// kamailioCfg is a minimal proxy: record-route the INVITE and forward it
// to webconfd; in-dialog requests follow their Route (loose routing).
const kamailioCfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:127.0.0.1:{{PORT}}
listen=tcp:127.0.0.1:{{PORT}}
mpath="{{MPATH}}"

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "sanity.so"

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (!sanity_check()) {
		exit;
	}
	if (is_method("OPTIONS") && uri==myself && $rU==$null) {
		sl_send_reply("200", "Keepalive");
		exit;
	}
	if ($tt != $null) {
		if (loose_route()) {
			if (!t_relay()) {
				sl_reply_error();
			}
			exit;
		}
		if (is_method("ACK")) {
			if (t_check_trans()) {
				t_relay();
			}
			exit;
		}
		sl_send_reply("404", "Not here");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) {
			t_relay();
		}
		exit;
	}
	t_check_trans();
	remove_hf("Route");
	if (is_method("INVITE")) {
		record_route();
	}
	$du = "sip:{{TARGET}}";
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}
`

// freePort finds a port free on 127.0.0.1 for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 50 {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// syncBuffer is kamailio's stderr, read by the test while it writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startKamailio runs kamailio in the foreground (-DD, logging to stderr:
// -E) on a free port of 127.0.0.1, forwarding to target, and waits until it
// answers OPTIONS. It is stopped when the test ends. A port taken between
// the probe and kamailio's bind is retried with another.
func startKamailio(t *testing.T, target string) string {
	t.Helper()
	bin, mpath := kamailioBin(t), moduleDir(t)
	var lastErr error
	for range 5 {
		port := freePort(t)
		dir := t.TempDir()
		cfg := strings.NewReplacer("{{PORT}}", strconv.Itoa(port), "{{MPATH}}", mpath, "{{TARGET}}", target).Replace(kamailioCfg)
		path := filepath.Join(dir, "kamailio.cfg")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-f", path, "-DD", "-E", "-Y", dir, "-m", "64", "-M", "8")
		cmd.Dir = dir
		// Its own process group: kamailio forks its workers, and the
		// clean-up stops them all by the group of the process we started.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		logs := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("start kamailio: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if err := waitOptions(addr, exited, 15*time.Second); err != nil {
			stop()
			lastErr = fmt.Errorf("%w\n%s", err, logs.String())
			if strings.Contains(logs.String(), "Address already in use") {
				continue
			}
			t.Fatalf("kamailio did not start: %v", lastErr)
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() || os.Getenv("WEBCONF_TEST_LOG") != "" {
				t.Logf("kamailio log:\n%s", tail(logs.String(), 6000))
			}
		})
		return addr
	}
	t.Fatalf("kamailio did not start: %v", lastErr)
	return ""
}

// waitOptions sends OPTIONS to the proxy itself until it answers 200.
func waitOptions(addr string, exited <-chan struct{}, d time.Duration) error {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer c.Close()
	dst, err := net.ResolveUDPAddr("udp4", addr)
	if err != nil {
		return err
	}
	la := c.LocalAddr().String()
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for n := 0; time.Now().Before(deadline); n++ {
		select {
		case <-exited:
			return errors.New("kamailio exited")
		default:
		}
		req := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe%d;rport\r\n"+
			"From: <sip:probe@%s>;tag=p%d\r\nTo: <sip:%s>\r\nCall-ID: probe-%d@test\r\nCSeq: %d OPTIONS\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n", addr, la, n, la, n, addr, n, n+1)
		if _, err := c.WriteTo([]byte(req), dst); err != nil {
			return err
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		k, _, err := c.ReadFrom(buf)
		if err == nil && bytes.HasPrefix(buf[:k], []byte("SIP/2.0 200")) {
			return nil
		}
	}
	return fmt.Errorf("no 200 to OPTIONS from %s within %v", addr, d)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// Test prompts are single tones, so that the test hears which plays.
const (
	fEnterPin    = 1500.0
	fWrongPin    = 1600.0
	fWrongPinBye = 1700.0
)

func testPrompts() *prompts.Set {
	p := &prompts.Set{
		EnterPin:           testutil.Tone(fEnterPin, 600*time.Millisecond),
		WrongPin:           testutil.Tone(fWrongPin, 300*time.Millisecond),
		WrongPinBye:        testutil.Tone(fWrongPinBye, 300*time.Millisecond),
		EnteringConference: testutil.Tone(1800, 100*time.Millisecond),
		FirstParticipant:   testutil.Tone(1900, 100*time.Millisecond),
		JoinSound:          testutil.Tone(2000, 60*time.Millisecond),
		DropSound:          testutil.Tone(2100, 60*time.Millisecond),
	}
	for d := range 10 {
		p.Digits[d] = testutil.Tone(2200+100*float64(d), 100*time.Millisecond)
	}
	return p
}

type bridge struct {
	node  *node.Node
	proxy string // Kamailio's SIP address
	cli   *xmlrpc.Client
}

// startBridge runs webconfd (SIP, XML-RPC) with private rooms, keypad
// entry and direct_room_re 000777<room>, trusting the proxy at
// 127.0.0.1, and Kamailio in front of it.
func startBridge(t *testing.T, edit func(*conf.Config)) *bridge {
	t.Helper()
	kamailioBin(t) // skip before starting anything
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.PublicIP = "127.0.0.1"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 40000, 49998
	cfg.Server.DataDir = t.TempDir()
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = ""
	cfg.Webconference.PrivateRooms = true
	cfg.Webconference.DirectRoomPattern = "000777.*"
	cfg.Webconference.DirectRoomStrip = 6
	cfg.Webconference.MasterPassword = "master"
	cfg.Limits.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, &cfg, node.Options{Prompts: testPrompts()})
	cli, err := client.New("http://" + n.RPCAddr() + "/RPC2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	// Kamailio stops before webconfd (clean-ups run last first).
	return &bridge{node: n, proxy: startKamailio(t, n.SIP.Addr()), cli: cli}
}

// di calls di("webconference", fn, args...) and returns the reply array.
func (b *bridge) di(t *testing.T, fn string, args ...any) []any {
	t.Helper()
	var res any
	err := b.cli.Call("di", append([]any{"webconference", fn}, args...), &res)
	arr, ok := res.([]any)
	if err != nil || !ok {
		t.Fatalf("%s%v: reply %v, error %v", fn, args, res, err)
	}
	return arr
}

// roomCreate makes a room and returns its admin PIN.
func (b *bridge) roomCreate(t *testing.T, room string) string {
	t.Helper()
	r := b.di(t, "roomCreate", room)
	if code, _ := r[0].(int); code != 0 {
		t.Fatalf("roomCreate %s: %v", room, r)
	}
	return fmt.Sprint(r[2])
}

// dial calls through the proxy from local and closes the phone at the end.
func (b *bridge) dial(t *testing.T, local, user string, cfg phone.Config) (*phone.Phone, error) {
	t.Helper()
	cfg.Server, cfg.LocalIP, cfg.User = b.proxy, local, user
	if cfg.FromUser == "" {
		cfg.FromUser = "caller-" + strings.ReplaceAll(local, ".", "-")
	}
	p, err := phone.Dial(testutil.Ctx(t, 15*time.Second), cfg)
	if err != nil {
		return nil, err
	}
	testutil.HangUpAtEnd(t, p)
	return p, nil
}

func (b *bridge) mustDial(t *testing.T, local, user string, cfg phone.Config) *phone.Phone {
	t.Helper()
	p, err := b.dial(t, local, user, cfg)
	if err != nil {
		t.Fatalf("call from %s to %s through kamailio: %v", local, user, err)
	}
	return p
}

func (b *bridge) connected(name string) int {
	info, _ := b.node.SIP.Registry().Room(name)
	n := 0
	for _, p := range info.Participants {
		if p.Status == room.StatusConnected {
			n++
		}
	}
	return n
}

// TestHundredCallersThroughKamailio: 100 callers, each on its own loopback
// address, dial 25 rooms through Kamailio at 50 calls a second; every one
// is answered, joins, and hears the three others of its room (and not
// itself). webconfd sees every INVITE come from Kamailio's one address.
func TestHundredCallersThroughKamailio(t *testing.T) {
	const (
		callers = 100
		rooms   = 25
		perRoom = callers / rooms
		rate    = 50 // calls per second
	)
	b := startBridge(t, nil)
	for r := range rooms {
		b.roomCreate(t, fmt.Sprintf("%d", 100+r))
	}
	freq := func(i int) float64 { return 400 + 250*float64(i%perRoom) } // 400, 650, 900, 1150 Hz
	const amp = 1500.0

	phones := make([]*phone.Phone, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / rate)
	began := time.Now()
	for i := range callers {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := fmt.Sprintf("127.0.1.%d", i+1)
			room := 100 + i/perRoom
			phones[i], errs[i] = b.dial(t, local, fmt.Sprintf("000777%d", room), phone.Config{ToneAmplitude: amp})
			if phones[i] != nil {
				phones[i].SetTone(freq(i))
			}
		}()
	}
	tick.Stop()
	placed := time.Since(began)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d (127.0.1.%d): %v", i, i+1, err)
		}
	}
	t.Logf("%d calls placed in %v, all answered in %v", callers, placed, time.Since(began))
	testutil.WaitFor(t, 10*time.Second, "every caller in its room", func() bool {
		for r := range rooms {
			if b.connected(fmt.Sprintf("%d", 100+r)) != perRoom {
				return false
			}
		}
		return true
	})
	ctx := testutil.Ctx(t, 30*time.Second)
	herr := make([]error, callers)
	for i, p := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var others []float64
			for j := range perRoom {
				if j != i%perRoom {
					others = append(others, freq(j))
				}
			}
			herr[i] = p.HearsAllButSelf(ctx, freq(i), others, amp*0.5, amp*0.05)
		}()
	}
	wg.Wait()
	for i, err := range herr {
		if err != nil {
			t.Errorf("caller %d in room %d does not hear its room: %v", i, 100+i/perRoom, err)
		}
	}
	if m := b.node.SIP.Metrics(); m.RateLimited != 0 || m.Banned != 0 || m.Capped != 0 {
		t.Fatalf("the proxy's callers were refused: %+v", m)
	}
}

// TestBanBehindKamailio: a caller behind the proxy who types wrong room
// numbers is banned after pin_failures (10) of them, its next INVITE
// through the proxy gets 403, and another caller behind the same proxy
// still joins and hears its room. Kickout over XML-RPC then sends our BYE
// along the route set: to Kamailio, which relays it to the phone.
func TestBanBehindKamailio(t *testing.T) {
	b := startBridge(t, func(c *conf.Config) {
		c.Webconference.MaxPinAttempts = 0 // only the per-source budget ends the call
		c.Limits.PinFailures = 10
		c.Limits.RoomFailures = 0
	})
	pin := b.roomCreate(t, "4711")

	// Mallory at 127.0.0.2 types wrong room numbers until the call ends.
	mallory := b.mustDial(t, "127.0.0.2", "conference", phone.Config{})
	hear(t, mallory, fEnterPin, "enter_pin")
	typed := 0
	for typed < 11 {
		if err := mallory.SendDTMF(testutil.Ctx(t, 10*time.Second), fmt.Sprintf("9%d#", typed), phone.RFC4733); err != nil {
			if errors.Is(err, phone.ErrCallEnded) {
				break
			}
			t.Fatalf("typing: %v", err)
		}
		typed++
		var bye bool
		ctx := testutil.Ctx(t, 8*time.Second)
		err := mallory.WaitAudio(ctx, func(a []int16) bool {
			select {
			case <-mallory.Done():
				bye = true
				return true
			default:
			}
			return tone.Level(a, fWrongPin) >= 1000 || tone.Level(a, fWrongPinBye) >= 1000
		}, 100*time.Millisecond)
		if err != nil {
			t.Fatalf("after wrong room number %d: no wrong_pin prompt and no BYE: %v", typed, err)
		}
		if bye || tone.Level(mallory.Audio(100*time.Millisecond), fWrongPinBye) >= 1000 {
			break
		}
		if err := mallory.WaitQuiet(testutil.Ctx(t, 8*time.Second), fWrongPin, 300, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-mallory.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("no BYE after %d wrong room numbers", typed)
	}
	if typed != 10 {
		t.Fatalf("the call ended after %d wrong room numbers, want 10 (pin_failures)", typed)
	}
	_, err := b.dial(t, "127.0.0.2", "0007774711", phone.Config{})
	var se *phone.StatusError
	if !errors.As(err, &se) || se.Code != 403 {
		t.Fatalf("the banned caller's next INVITE through the proxy: %v, want 403", err)
	}

	// Alice and Bob behind the same proxy join and hear each other.
	alice := b.mustDial(t, "127.0.0.3", "0007774711", phone.Config{ToneAmplitude: 1500})
	bob := b.mustDial(t, "127.0.0.4", "0007774711", phone.Config{ToneAmplitude: 1500})
	alice.SetTone(500)
	bob.SetTone(900)
	testutil.WaitFor(t, 5*time.Second, "alice and bob in the room", func() bool { return b.connected("4711") == 2 })
	ctx := testutil.Ctx(t, 10*time.Second)
	if err := alice.HearsAllButSelf(ctx, 500, []float64{900}, 750, 75); err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := bob.HearsAllButSelf(ctx, 900, []float64{500}, 750, 75); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if m := b.node.SIP.Metrics(); m.SourceBans != 1 || m.Banned != 1 {
		t.Fatalf("source bans %d, INVITEs refused as banned %d; want 1 and 1", m.SourceBans, m.Banned)
	}

	// Kickout: our BYE to Alice goes to Kamailio (the route set) and
	// reaches her phone through it.
	if r := b.di(t, "kickout", "4711", pin, alice.RemoteTag()); fmt.Sprint(r[0]) != "0" {
		t.Fatalf("kickout: %v", r)
	}
	select {
	case <-alice.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("alice got no BYE after kickout")
	}
	var bye *sip.Request
	for _, r := range alice.Requests() {
		if r.Method == sip.BYE {
			bye = r
		}
	}
	if bye == nil {
		t.Fatal("no BYE recorded")
	}
	if v := bye.Via(); v == nil || v.Host != "127.0.0.1" || v.Port != portOf(t, b.proxy) {
		t.Fatalf("the BYE's top Via is %v, want Kamailio's %s: it did not come through the proxy", v, b.proxy)
	}
	if n := len(bye.GetHeaders("Via")); n != 2 {
		t.Fatalf("the BYE has %d Vias, want 2 (webconfd's and Kamailio's)", n)
	}

	// Bob hangs up: his BYE follows the route set to webconfd.
	if err := bob.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("bob's BYE through the proxy: %v", err)
	}
	testutil.WaitFor(t, 5*time.Second, "the room empty", func() bool { return b.connected("4711") == 0 })
}

func hear(t *testing.T, p *phone.Phone, freq float64, what string) {
	t.Helper()
	if err := p.WaitLevel(testutil.Ctx(t, 8*time.Second), freq, 1000, 100*time.Millisecond); err != nil {
		t.Fatalf("waiting to hear %s (%.0f Hz): %v", what, freq, err)
	}
}

func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// TestForgedViaBehindKamailio: a caller behind the proxy who writes a Via
// naming the proxy's address (received, rport and all) is still charged
// as itself: Kamailio replaces received and rport with what it saw, and
// webconfd reads the last of them. With invite_rate 1/s (burst 1), the
// forger's second INVITE is refused (Kamailio turns our 503 into 500)
// while a caller at another address behind the proxy is admitted.
func TestForgedViaBehindKamailio(t *testing.T) {
	b := startBridge(t, func(c *conf.Config) { c.Limits.InviteRate, c.Limits.InviteBurst = 1, 1 })
	invite := func(local, via string, n int) int {
		c, err := net.ListenPacket("udp4", local+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		dst, err := net.ResolveUDPAddr("udp4", b.proxy)
		if err != nil {
			t.Fatal(err)
		}
		// No SDP: an admitted INVITE gets 488, one refused at admission 503.
		req := fmt.Sprintf("INVITE sip:0007774711@%s SIP/2.0\r\nVia: %s;branch=z9hG4bK-forged%d\r\n"+
			"From: <sip:forger@%s>;tag=f%d\r\nTo: <sip:0007774711@%s>\r\nCall-ID: forged-%d@test\r\nCSeq: 1 INVITE\r\n"+
			"Contact: <sip:forger@%s>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			b.proxy, via, n, local, n, b.proxy, n, c.LocalAddr())
		if _, err := c.WriteTo([]byte(req), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		for {
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			k, _, err := c.ReadFrom(buf)
			if err != nil {
				t.Fatalf("INVITE %d from %s: no final response: %v", n, local, err)
			}
			var code int
			if _, err := fmt.Sscanf(string(buf[:k]), "SIP/2.0 %d", &code); err == nil && code >= 200 {
				return code
			}
		}
	}
	forged := "SIP/2.0/UDP 127.0.0.1:5060;received=127.0.0.1;rport=5060"
	if code := invite("127.0.0.5", forged, 1); code != 488 {
		t.Fatalf("the forger's first INVITE: %d, want 488 (admitted, no SDP)", code)
	}
	if code := invite("127.0.0.5", forged, 2); code != 500 {
		t.Fatalf("the forger's second INVITE within the second: %d, want 500 (our 503 over invite_rate, through Kamailio)", code)
	}
	if code := invite("127.0.0.6", "SIP/2.0/UDP 127.0.0.6:5060;rport", 3); code != 488 {
		t.Fatalf("another caller behind the proxy: %d, want 488 (admitted)", code)
	}
	if m := b.node.SIP.Metrics(); m.RateLimited != 1 {
		t.Fatalf("rate-limited INVITEs %d, want 1", m.RateLimited)
	}
}
