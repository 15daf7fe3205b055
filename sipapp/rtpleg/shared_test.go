//go:build linux

package rtpleg

import (
	"errors"
	"net/netip"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"webconf/dsp/g711"
	"webconf/test/testutil"
)

// sharedMedia is a shared hub of one socket on its own pool.
func sharedMedia(t *testing.T) *media {
	t.Helper()
	return newMedia(t, testPool(t), true)
}

// openShared opens an answered leg on md's shared socket whose SDP names
// sdp and whose SIP came from signal.
func openShared(t *testing.T, md *media, sdp netip.AddrPort, signal netip.Addr) *Leg {
	t.Helper()
	l, err := md.hub.OpenShared(Config{PT: g711.PCMU, DTMF: 101, Remote: sdp, Send: true, ExpectRx: true}, signal, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// TestSharedSocketDemux: calls on one port each get their own phone's
// packets and send to their own phone, and an intruder streaming to the
// port takes nobody's call (spec/reliability.md 1.4).
func TestSharedSocketDemux(t *testing.T) {
	md := sharedMedia(t)
	a, b, intruder := newPeer(t), newPeer(t), newPeer(t)
	la := openShared(t, md, a.addr(), a.addr().Addr())
	lb := openShared(t, md, b.addr(), b.addr().Addr())
	if la.Port() != lb.Port() {
		t.Fatalf("ports %d and %d: not one shared socket", la.Port(), lb.Port())
	}
	answer(t, la, a)
	answer(t, lb, b)
	payload := make([]byte, 160)
	for range 3 {
		a.send(t, la, g711.PCMU, payload)
	}
	b.send(t, lb, g711.PCMU, payload)
	waitStat(t, la, "a's packets", func(s Stats) bool { return s.RxPackets == 3 })
	waitStat(t, lb, "b's packet", func(s Stats) bool { return s.RxPackets == 1 })
	// Each leg answers its own phone.
	la.WriteEncoded(payload)
	if p := a.recv(t); p.SSRC != la.hdr.SSRC {
		t.Fatalf("a got SSRC %d, want a's leg's %d", p.SSRC, la.hdr.SSRC)
	}
	heardNothing(t, b.conn, 50*time.Millisecond, "b")

	// A third call, answered, whose phone (elsewhere) has not sent yet:
	// learning is open for it, but only from its own IP.
	lc := openShared(t, md, netip.MustParseAddrPort("192.0.2.1:4000"), netip.MustParseAddr("192.0.2.1"))
	lc.Answered()
	// The intruder streams in sequence, paced like a phone, from an
	// address nobody's SDP names: it is counted foreign, latches nothing.
	foreign := la.Stats().RxForeign + lb.Stats().RxForeign + md.hub.Foreign()
	for range 3 * learnPackets {
		intruder.send(t, la, g711.PCMU, payload)
		time.Sleep(10 * time.Millisecond)
	}
	deadline := time.Now().Add(2 * time.Second)
	for la.Stats().RxForeign+lb.Stats().RxForeign+md.hub.Foreign() < foreign+3*learnPackets {
		if time.Now().After(deadline) {
			t.Fatalf("intruder's packets not all dropped: a %+v b %+v socket %d", la.Stats(), lb.Stats(), md.hub.Foreign())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if lc.latched.Load() != nil || lc.Stats().RxPackets != 0 {
		t.Fatalf("the intruder took the silent call: latched %v, %+v", lc.latched.Load(), lc.Stats())
	}
	if la.Stats().RxPackets != 3 || lb.Stats().RxPackets != 1 || *la.latched.Load() != a.addr() || *lb.latched.Load() != b.addr() {
		t.Fatalf("the intruder took a call: a %+v latched %v, b %+v latched %v", la.Stats(), la.latched.Load(), lb.Stats(), lb.latched.Load())
	}
	la.WriteEncoded(payload)
	lb.WriteEncoded(payload)
	heardNothing(t, intruder.conn, 50*time.Millisecond, "the intruder")
}

// TestSharedSocketLearning: a phone behind a NAT (SDP names a private
// address) is learned when it alone claims its IP; two unlatched calls
// claiming one IP learn nothing (auto mode gives those their own ports),
// and a leg whose SDP names a source another leg learned takes it back.
func TestSharedSocketLearning(t *testing.T) {
	payload := make([]byte, 160)
	lo := netip.MustParseAddr("127.0.0.1")
	private := netip.MustParseAddrPort("10.0.0.5:4000")
	stream := func(p *peer, l *Leg, n int) {
		for range n {
			p.send(t, l, g711.PCMU, payload)
			time.Sleep(10 * time.Millisecond)
		}
	}

	t.Run("one claimant learns", func(t *testing.T) {
		md := sharedMedia(t)
		nat := newPeer(t)
		l := openShared(t, md, private, lo)
		answer(t, l, nat)
		stream(nat, l, 2*learnPackets)
		waitStat(t, l, "the learned stream", func(s Stats) bool { return s.RxPackets > 0 })
		l.WriteEncoded(payload)
		nat.recv(t)
	})

	t.Run("two claimants of one IP learn nothing", func(t *testing.T) {
		md := sharedMedia(t)
		nat := newPeer(t)
		l1 := openShared(t, md, private, lo)
		l2 := openShared(t, md, netip.MustParseAddrPort("10.0.0.6:4000"), lo)
		l1.Answered()
		l2.Answered()
		stream(nat, l1, 3*learnPackets)
		deadline := time.Now().Add(2 * time.Second)
		for md.hub.Foreign() < 3*learnPackets {
			if time.Now().After(deadline) {
				t.Fatalf("socket foreign %d, want %d", md.hub.Foreign(), 3*learnPackets)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if l1.latched.Load() != nil || l2.latched.Load() != nil {
			t.Fatalf("an ambiguous source was learned: %v %v", l1.latched.Load(), l2.latched.Load())
		}
	})

	t.Run("the SDP address wins over another leg's learned source", func(t *testing.T) {
		md := sharedMedia(t)
		x := newPeer(t)
		la := openShared(t, md, private, lo) // learns x
		answer(t, la, x)
		stream(x, la, 2*learnPackets)
		waitStat(t, la, "x learned by a", func(s Stats) bool { return s.RxPackets > 0 })
		lb := openShared(t, md, x.addr(), lo) // b's SDP names x
		answer(t, lb, x)
		x.send(t, lb, g711.PCMU, payload)
		waitStat(t, lb, "x latched by b", func(s Stats) bool { return s.RxPackets == 1 })
		if lat := lb.latched.Load(); lat == nil || *lat != x.addr() {
			t.Fatalf("b latched %v, want %v", lat, x.addr())
		}
		if lat := la.latched.Load(); lat != nil {
			t.Fatalf("a still latched to %v, b's SDP address", lat)
		}
	})
}

// TestSharedSocketBatchedSend: a leg a worker mixes sends through the
// worker's batch, all of it at EndTick (one sendmmsg), in order.
func TestSharedSocketBatchedSend(t *testing.T) {
	pool := testPool(t)
	h, err := NewHub(pool, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ph := newPeer(t)
	l, err := h.OpenShared(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true}, netip.Addr{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := h.Worker(0)
	l.BindIO(w)
	for range 5 {
		l.WriteEncoded(make([]byte, 160))
	}
	heardNothing(t, ph.conn, 30*time.Millisecond, "the phone before EndTick")
	w.EndTick()
	first := ph.recv(t)
	for i := 1; i < 5; i++ {
		if p := ph.recv(t); p.SequenceNumber != first.SequenceNumber+uint16(i) {
			t.Fatalf("packet %d: seq %d after %d", i, p.SequenceNumber, first.SequenceNumber)
		}
	}
	if src := sourcePort(t, ph, l); src != l.Port() {
		t.Fatalf("sent from port %d, want the shared port %d", src, l.Port())
	}
}

// sourcePort is the port l's next packet to ph comes from.
func sourcePort(t *testing.T, ph *peer, l *Leg) int {
	t.Helper()
	l.WriteEncoded(make([]byte, 160))
	l.tx.Load().EndTick()
	_ = ph.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 1500)
	_, from, err := ph.conn.ReadFromUDP(buf)
	if err != nil {
		t.Fatal(err)
	}
	return from.Port
}

// TestPerCallEpoll: a per-call leg a worker mixes is read only when the
// worker's epoll saw data (no read that finds nothing), then with recvmmsg.
func TestPerCallEpoll(t *testing.T) {
	pool := testPool(t)
	h, err := NewHub(pool, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ph := newPeer(t)
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: 101, Remote: ph.addr(), Send: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartPolled(); err != nil {
		t.Fatal(err)
	}
	w := h.Worker(0)
	l.BindIO(w)
	l.Poll() // the first Poll after binding reads what is there (nothing)
	l.Answered()
	ph.sendRaw(t, l, rtcpSentinel) // dropped: the first after the answer
	pollTicks(t, w, l, "the primer", func(s Stats) bool { return s.RxForeign == 1 })
	for range 3 {
		ph.send(t, l, g711.PCMU, make([]byte, 160))
	}
	// The first datagram is in the socket's queue (SIOCINQ: the size of
	// the next one), so a Poll that read without the epoll saying so
	// would count it.
	testutil.WaitFor(t, 2*time.Second, "a datagram queued on the leg's socket", func() bool {
		n, err := unix.IoctlGetInt(l.own.fd, unix.SIOCINQ)
		return err == nil && n > 0
	})
	l.Poll()
	if st := l.Stats(); st.RxPackets != 0 {
		t.Fatalf("Poll read without the epoll saying so: %+v", st)
	}
	pollTicks(t, w, l, "3 packets in one tick", func(s Stats) bool { return s.RxPackets == 3 })
	// The call moves to a group of another worker: that worker's epoll
	// set has it now, the first's has not.
	h2, err := NewHub(pool, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	w2 := h2.Worker(0)
	l.BindIO(w2)
	if w.nreg.Load() != 0 || w2.nreg.Load() != 1 {
		t.Fatalf("after the move: %d legs in the old epoll set, %d in the new", w.nreg.Load(), w2.nreg.Load())
	}
	ph.send(t, l, g711.PCMU, make([]byte, 160))
	pollTicks(t, w2, l, "a packet read through the new worker", func(s Stats) bool { return s.RxPackets == 4 })
	// Closing takes the leg out of the epoll set.
	l.Close()
	if w2.nreg.Load() != 0 {
		t.Fatalf("%d legs still in the epoll set after Close", w2.nreg.Load())
	}
}

// pollTicks runs ticks (BeginTick, then the leg's Poll) until cond holds.
func pollTicks(t *testing.T, w *Worker, l *Leg, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond(l.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %+v", what, l.Stats())
		}
		w.BeginTick()
		l.Poll()
		time.Sleep(time.Millisecond)
	}
}

// TestSharedRemoteTakenOnce: a second call naming an address a shared
// call already names is refused a shared leg (the caller gives it a port
// of its own), until the first call ends.
func TestSharedRemoteTakenOnce(t *testing.T) {
	md := sharedMedia(t)
	ph := newPeer(t)
	first := openShared(t, md, ph.addr(), ph.addr().Addr())
	if _, err := md.hub.OpenShared(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr()}, netip.Addr{}, nil, nil); !errors.Is(err, ErrRemoteInUse) {
		t.Fatalf("a second shared leg for %v: %v, want ErrRemoteInUse", ph.addr(), err)
	}
	first.Close()
	l, err := md.hub.OpenShared(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr()}, netip.Addr{}, nil, nil)
	if err != nil {
		t.Fatalf("after the first call ended: %v", err)
	}
	l.Close()
}

// TestSharedQueuedBeforeTheAnswerNeverCounts: what waited in the shared
// socket when the answer went out (even from the SDP address) is dropped,
// as a per-call leg drops its queue; what arrives after counts.
func TestSharedQueuedBeforeTheAnswerNeverCounts(t *testing.T) {
	h, err := NewHub(testPool(t), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	w := h.Worker(0)
	ph := newPeer(t)
	l, err := h.OpenShared(Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true, ExpectRx: true}, ph.addr().Addr(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w.BeginTick() // the socket is read (empty) before the call exists
	for range 3 {
		// Each datagram is in the socket's queue before the answer.
		before := queuedBytes(t, l.sock.fd)
		ph.send(t, l, g711.PCMU, make([]byte, 160))
		testutil.WaitFor(t, 2*time.Second, "the datagram queued", func() bool { return queuedBytes(t, l.sock.fd) > before })
	}
	l.Answered()
	w.BeginTick()
	if st := l.Stats(); st.RxPackets != 0 || st.RxForeign != 3 {
		t.Fatalf("packets queued before the answer: %+v, want all 3 foreign", st)
	}
	ph.send(t, l, g711.PCMU, make([]byte, 160))
	deadline := time.Now().Add(2 * time.Second)
	for l.Stats().RxPackets != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("the packet after the answer: %+v", l.Stats())
		}
		w.BeginTick()
		time.Sleep(time.Millisecond)
	}
}

// queuedBytes is what the socket's receive queue holds (SO_MEMINFO's
// SK_MEMINFO_RMEM_ALLOC): it grows with every datagram queued.
func queuedBytes(t *testing.T, fd int) uint32 {
	t.Helper()
	var mi [unix.SK_MEMINFO_VARS]uint32
	n := uint32(len(mi) * 4)
	if _, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_MEMINFO,
		uintptr(unsafe.Pointer(&mi[0])), uintptr(unsafe.Pointer(&n)), 0); errno != 0 {
		t.Fatalf("SO_MEMINFO: %v", errno)
	}
	return mi[unix.SK_MEMINFO_RMEM_ALLOC]
}
