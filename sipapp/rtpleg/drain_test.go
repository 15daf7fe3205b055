//go:build linux

package rtpleg

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"

	"webconf/dsp/g711"
)

// TestDrainIsBounded: Drain runs under the mixer group's lock when a leg
// joins a mix, so a socket full of packets (a flood, or a long time
// unpolled) must not keep it reading: it stops after maxDrainPackets, and
// the rest is left to the ticks' Polls.
func TestDrainIsBounded(t *testing.T) {
	pool := testPool(t)
	ph := newPeer(t)
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartPolled(); err != nil {
		t.Fatal(err)
	}
	// Room in the socket for more than the bound (the kernel caps this at
	// rmem_max; the default holds a few hundred small datagrams).
	_ = unix.SetsockoptInt(l.own.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 1<<20)
	const queued = maxDrainPackets + 50
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port()))
	for i := 0; i < queued; i++ {
		// Before the answer every datagram read is counted as foreign,
		// one count a read. Loopback queues it before WriteTo returns.
		if _, err := ph.conn.WriteToUDPAddrPort([]byte{0, 1, 2}, to); err != nil {
			t.Fatal(err)
		}
	}
	l.Drain()
	if got := l.Stats().RxForeign; got != maxDrainPackets {
		t.Fatalf("Drain read %d packets of %d queued, want the bound %d", got, queued, maxDrainPackets)
	}
	// The rest was really there, and the ticks' Polls take it.
	for i := 0; i < queued && l.Stats().RxForeign < queued; i++ {
		l.Poll()
	}
	if got := l.Stats().RxForeign; got != queued {
		t.Fatalf("%d packets read in all, want the %d queued", got, queued)
	}
}
