//go:build linux

package rtpleg

import (
	"encoding/binary"
	"net/netip"
	"syscall"
	"unsafe"
)

// maxPollPackets bounds one Poll: a well-behaved phone sends one packet
// per 20 ms (two at 10 ms); more is a burst or a flood, and the rest waits
// for the next tick (or the kernel drops it), which bounds what one leg
// costs a tick.
const maxPollPackets = 8

// StartPolled makes the leg receive without a goroutine of its own: the
// mixer that owns it calls Poll once per tick, which reads what the socket
// holds with non-blocking recvfrom. That saves a goroutine wake-up, a
// park and an extra EAGAIN read per packet (spec/performance.md 4).
func (l *Leg) StartPolled() error {
	// A shared leg's socket reader may be delivering to it already
	// (handle reads polled only for a leg of its own): write nothing.
	if l.sock == nil {
		l.polled = true
	}
	return nil
}

// discardQueued drops what the socket holds (up to maxDiscard datagrams),
// counting it as foreign. Only the receiving side calls it (from handle),
// and rx.buf is then free: the packet in it is being dropped too.
func (l *Leg) discardQueued() {
	for i := 0; i < maxDiscard; i++ {
		if _, _, ok := l.recvOwn(l.rx.buf[:]); !ok {
			return
		}
		l.rxForeign.Add(1)
	}
}

// maxDrainPackets bounds one Drain: 1.28 s of 20 ms packets, more than
// the jitter buffer keeps (1 s). Drain runs under the mixer group's lock,
// so a flood must not keep it reading; what is left waits for the ticks'
// Polls (or the kernel drops it).
const maxDrainPackets = 64

// Drain reads what the socket holds (a leg joining a mix after a while
// unpolled), as Poll does but with a larger bound.
func (l *Leg) Drain() { l.poll(maxDrainPackets) }

// Poll drains the socket (up to maxPollPackets). Only the goroutine that
// mixes the leg calls it.
func (l *Leg) Poll() { l.poll(maxPollPackets) }

func (l *Leg) poll(max int) {
	if !l.polled {
		return
	}
	if w := l.ep.Load(); w != nil {
		// In a worker's epoll set: read only when it saw data, with
		// recvmmsg (no read that finds nothing).
		if max == maxPollPackets && !l.ready.Swap(false) {
			return
		}
		l.ready.Store(false)
		if w.readLeg(l, max) {
			l.ready.Store(true)
		}
		return
	}
	for i := 0; i < max; i++ {
		n, from, ok := l.recvOwn(l.rx.buf[:])
		if !ok {
			return
		}
		l.handle(l.rx.buf[:n], from)
	}
}

func sockaddrAddrPort(rsa *syscall.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case syscall.AF_INET:
		sa := (*syscall.RawSockaddrInet4)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), port)
	case syscall.AF_INET6:
		sa := (*syscall.RawSockaddrInet6)(unsafe.Pointer(rsa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), port)
	}
	return netip.AddrPort{}
}
