package sipapp

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/test/phone"
	"webconf/test/testutil"
)

// options sends one OPTIONS from a fresh UDP socket (a new source address)
// and reports whether the 200 came back.
func optionsFromNewSource(t *testing.T, server string, i int) bool {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	local := conn.LocalAddr().String()
	msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-src%d\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:probe@%s>;tag=t%d\r\nTo: <sip:%s>\r\n"+
		"Call-ID: src-%d@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		server, local, i, local, i, server, i)
	buf := make([]byte, 4096)
	for try := 0; try < 3; try++ { // UDP on a loaded machine: retransmit like a client would
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := conn.ReadFrom(buf)
		if err == nil {
			return strings.HasPrefix(string(buf[:n]), "SIP/2.0 200")
		}
	}
	return false
}

// strayFromNewSources sends, from n fresh UDP sockets, one response that
// matches no transaction: sipgo reads it (and remembers the source) and
// drops it, so no transaction outlives the test's measurement. Every pace
// datagrams an OPTIONS round trip lets the server catch up.
func strayFromNewSources(t *testing.T, server string, n, pace int) {
	t.Helper()
	dst, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		conn, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		msg := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-stray%d\r\n"+
			"From: <sip:a@127.0.0.1>;tag=a%d\r\nTo: <sip:b@127.0.0.1>;tag=b%d\r\n"+
			"Call-ID: stray%d@test\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", conn.LocalAddr(), i, i, i, i)
		if _, err := conn.WriteTo([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		if i%pace == pace-1 {
			// Pace the sender so that the kernel's receive buffer does
			// not drop what the test means to be read: the server
			// reads in order, so its answer means it has read the rest.
			if !optionsFromNewSource(t, server, 1_000_000+i) {
				t.Fatal("OPTIONS between the strays not answered")
			}
		}
	}
}

// startLimited starts a server whose UDP read loops hand over after limit
// sources, with 100 RTP ports from rtpLow; stop shuts it down.
func startLimited(t *testing.T, limit, rtpLow int) (s *Server, stop func()) {
	t.Helper()
	s, err := New(Options{SIPListen: "127.0.0.1:0", PublicIP: "127.0.0.1", RTPLow: rtpLow, RTPHigh: rtpLow + 100})
	if err != nil {
		t.Fatal(err)
	}
	s.udpSourceLimit = limit
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	return s, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	}
}

// sourceGrowth starts a server with the given per-loop source limit, has
// n new sources talk to it, and returns how many source entries sipgo's
// UDP connection pool holds afterwards (each is one of the per-source
// records this bounds), the live heap's growth, and the read loops run.
func sourceGrowth(t *testing.T, limit, n int) (entries int, growth int64, generations int64) {
	t.Helper()
	s, stop := startLimited(t, limit, 44200)
	defer stop()
	heap := func() int64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return int64(ms.HeapAlloc)
	}
	if !optionsFromNewSource(t, s.Addr(), -1) {
		t.Fatal("warm-up OPTIONS not answered")
	}
	before := heap()
	strayFromNewSources(t, s.Addr(), n, 200)
	// Datagrams are read in order: once this is answered the strays
	// have been read too (a hand-over is in order as well: the old loop
	// ends only after reading what it took).
	if !optionsFromNewSource(t, s.Addr(), n) {
		t.Fatal("OPTIONS after the strays not answered")
	}
	// A retired loop drops its entries when sipgo's loop returns, which a
	// busy machine may delay past the answer: wait for the last one.
	testutil.WaitFor(t, 10*time.Second, "retired read loops to end", func() bool { return s.udpLoops.Load() == 1 })
	return s.ua.TransportLayer().Pool("udp").Size(), heap() - before, s.udpGenerations.Load()
}

// TestUDPSourceStateIsBounded: sipgo remembers every UDP source its read
// loop has seen; with the hand-over (udpsources.go) what stays is one
// loop's worth, not one entry per source ever seen. The same traffic with
// the hand-over off shows what it saves. The entries are counted in
// sipgo's pool; the heap figures (other tests' leftovers are freed while
// they are taken, so they are only logged) show what that is worth. Not
// parallel: it measures the process's heap.
func TestUDPSourceStateIsBounded(t *testing.T) {
	const n, limit = 3000, 64
	unbounded, uheap, g0 := sourceGrowth(t, 0, n)
	bounded, bheap, g := sourceGrowth(t, limit, n)
	t.Logf("%d new sources: %d pool entries, heap %+d B without hand-over (%d loop); %d entries, heap %+d B with one every %d sources (%d loops)",
		n, unbounded, uheap, g0, bounded, bheap, limit, g)
	if g < n/limit/2 {
		// n/limit if every datagram is read; the kernel may drop some of
		// a burst, which then count for no loop.
		t.Errorf("%d read loops for %d sources at %d each, want at least %d", g, n, limit, n/limit/2)
	}
	if unbounded < n/2 {
		t.Fatalf("without the hand-over sipgo's pool holds %d entries after %d sources: the test no longer sees sipgo's per-source state", unbounded, n)
	}
	// The running loop's sources, at most limit, and the listener's own
	// entry and the OPTIONS senders'.
	if bounded > 2*limit {
		t.Errorf("with the hand-over sipgo's pool still holds %d entries (%d without): not bounded by %d", bounded, unbounded, limit)
	}
}

// TestCallsSurviveUDPHandOvers keeps a call up while other sources force
// read-loop hand-overs, then has the server hang it up: the BYE leaves
// from the SIP port, the phone's 200 to it is read by the newest loop.
func TestCallsSurviveUDPHandOvers(t *testing.T) {
	s, stop := startLimited(t, 8, 44400)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, phone.Config{Server: s.Addr(), User: "conference",
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=handover")}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	testutil.WaitFor(t, 5*time.Second, "the call in its room", func() bool { return len(s.Participants("handover")) == 1 })
	before := s.udpGenerations.Load()
	strayFromNewSources(t, s.Addr(), 100, 5)
	if g := s.udpGenerations.Load() - before; g < 5 {
		t.Fatalf("only %d hand-overs", g)
	}
	if !s.KickParticipant("handover", p.RemoteTag()) {
		t.Fatal("no such participant")
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the phone got no BYE after the hand-overs")
	}
	// The server got the phone's 200 to its BYE: the call is gone.
	testutil.WaitFor(t, 10*time.Second, "no call left", func() bool { return s.ActiveCalls() == 0 })
}
