//go:build linux

package rtpleg

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ownSock is a per-call leg's socket on Linux: made with socket(2) and
// bind(2), not net.ListenUDP, so that it is not in the Go runtime's
// poller. The mixer reads it itself (a worker's epoll set, or Poll), and
// a socket in the runtime's epoll set costs a wake-up path on every
// datagram that arrives and every one that goes out (the send's
// completion signals EPOLLOUT to the runtime's netpoller): about 1.1 µs
// a packet sent, measured on loopback (spec/performance.md).
type ownSock struct {
	// mu is read-held by every use of fd and held by close, so that a
	// closed descriptor number, which the next socket may get, is never
	// written to or read from.
	mu   sync.RWMutex
	fd   int  // -1 once closed
	v6   bool // AF_INET6 (dual stack): destinations go out as IPv6
	name unix.RawSockaddrInet6
	rsa  unix.RawSockaddrInet6
}

func (o *ownSock) init() { o.fd = -1 }

// listenFD binds a free port of the pool chosen at random on a socket
// outside the runtime's poller (see ownSock).
func (p *Pool) listenFD() (fd int, port uint16, v6 bool, err error) {
	port, err = p.take(func(ap netip.AddrPort) error {
		var berr error
		fd, v6, berr = bindUDP(ap)
		return berr
	})
	return fd, port, v6, err
}

// bindUDP makes a non-blocking UDP socket bound to ap, with the family
// net.ListenUDP("udp", ap) would choose: IPv4 for an IPv4 address, a dual
// stack IPv6 socket for a wildcard (IPv4 alone where IPv6 is off) or an
// IPv6 address.
func bindUDP(ap netip.AddrPort) (int, bool, error) {
	a := ap.Addr()
	v4 := func(ip [4]byte) (int, bool, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return -1, false, os.NewSyscallError("socket", err)
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip}); err != nil {
			unix.Close(fd)
			return -1, false, os.NewSyscallError("bind", err)
		}
		return fd, false, nil
	}
	if a.Is4() && !a.IsUnspecified() {
		return v4(a.As4())
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		if a.Is4() {
			return v4([4]byte{})
		}
		return -1, false, os.NewSyscallError("socket", err)
	}
	ip := a.As16()
	if a.IsUnspecified() {
		ip = [16]byte{}
	}
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
		unix.Close(fd)
		return -1, false, os.NewSyscallError("setsockopt", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip}); err != nil {
		unix.Close(fd)
		return -1, false, os.NewSyscallError("bind", err)
	}
	return fd, true, nil
}

// putName writes dst as a socket of the family (v6: AF_INET6) wants it
// and returns its length; false when dst cannot be reached from it.
func putName(v6 bool, name *unix.RawSockaddrInet6, dst netip.AddrPort) (uint32, bool) {
	a := dst.Addr()
	if v6 {
		*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&name.Port))[:], dst.Port())
		return unix.SizeofSockaddrInet6, true
	}
	if !a.Unmap().Is4() {
		return 0, false
	}
	sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
	binary.BigEndian.PutUint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:], dst.Port())
	return unix.SizeofSockaddrInet4, true
}

// openOwn gives the leg a socket of its own on a port of pool.
func (l *Leg) openOwn(pool *Pool) error {
	fd, port, v6, err := pool.listenFD()
	if err != nil {
		return err
	}
	l.own.fd, l.own.v6, l.port = fd, v6, port
	return nil
}

// closeOwn closes the leg's socket (and the read goroutine's view of it)
// and gives its port back.
func (l *Leg) closeOwn() {
	o := &l.own
	o.mu.Lock()
	if l.conn != nil {
		l.conn.Close()
	}
	if o.fd >= 0 {
		unix.Close(o.fd)
		o.fd = -1
	}
	o.mu.Unlock()
	l.pool.release(l.port)
}

// sendOwn sends one packet from the leg's socket (the mixer goroutine).
func (l *Leg) sendOwn(pkt []byte, dst netip.AddrPort) bool {
	o := &l.own
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.fd < 0 || len(pkt) == 0 {
		return false
	}
	nl, ok := putName(o.v6, &o.name, dst)
	if !ok {
		return false
	}
	_, errno := rawSyscall6(unix.SYS_SENDTO, uintptr(o.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&o.name)), uintptr(nl))
	return errno == 0
}

// recvOwn reads one datagram without blocking (the receiving side);
// false when there is none.
func (l *Leg) recvOwn(buf []byte) (int, netip.AddrPort, bool) {
	o := &l.own
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.fd < 0 {
		return 0, netip.AddrPort{}, false
	}
	rl := uint32(unix.SizeofSockaddrInet6)
	n, errno := rawSyscall6(unix.SYS_RECVFROM, uintptr(o.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&o.rsa)), uintptr(unsafe.Pointer(&rl)))
	if errno != 0 {
		return 0, netip.AddrPort{}, false
	}
	return int(n), sockaddrAddrPort((*syscall.RawSockaddrAny)(unsafe.Pointer(&o.rsa))), true
}

// recvOwnBatch reads up to max datagrams into b with recvmmsg; 0 when
// there are none.
func (l *Leg) recvOwnBatch(b *mmsgBatch, max int) int {
	o := &l.own
	o.mu.RLock()
	defer o.mu.RUnlock()
	if o.fd < 0 {
		return 0
	}
	return b.recv(uintptr(o.fd), max)
}

// startConn makes the net.UDPConn the read goroutine (Start) blocks on:
// a duplicate of the leg's socket in the runtime's poller.
func (l *Leg) startConn() error {
	o := &l.own
	o.mu.Lock()
	defer o.mu.Unlock()
	if l.conn != nil {
		return nil
	}
	if o.fd < 0 {
		return net.ErrClosed
	}
	d, err := unix.FcntlInt(uintptr(o.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	f := os.NewFile(uintptr(d), "rtp")
	pc, err := net.FilePacketConn(f) // a duplicate of d
	f.Close()
	if err != nil {
		return err
	}
	c, ok := pc.(*net.UDPConn)
	if !ok {
		pc.Close()
		return net.UnknownNetworkError("not UDP")
	}
	l.conn = c
	return nil
}
