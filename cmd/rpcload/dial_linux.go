package main

import (
	"fmt"
	"net"
	"syscall"
)

// fdConn is a blocking TCP socket used with plain read(2) and write(2):
// no network poller, no goroutine switches, the least client CPU per
// request.
type fdConn struct{ fd int }

func dial(addr string) (rawConn, error) {
	ta, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", addr, err)
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ip4 := ta.IP.To4(); ip4 != nil {
		s := &syscall.SockaddrInet4{Port: ta.Port}
		copy(s.Addr[:], ip4)
		sa = s
	} else {
		s := &syscall.SockaddrInet6{Port: ta.Port}
		copy(s.Addr[:], ta.IP.To16())
		sa, family = s, syscall.AF_INET6
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.Connect(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("TCP_NODELAY: %w", err)
	}
	return &fdConn{fd: fd}, nil
}

func (c *fdConn) Read(b []byte) (int, error) {
	for {
		n, err := syscall.Read(c.fd, b)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

func (c *fdConn) Write(b []byte) (int, error) {
	for {
		n, err := syscall.Write(c.fd, b)
		if err == syscall.EINTR {
			continue
		}
		return n, err
	}
}

func (c *fdConn) Close() error { return syscall.Close(c.fd) }
