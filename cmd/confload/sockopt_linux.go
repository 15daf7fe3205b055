//go:build linux && (amd64 || arm64)

package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"syscall"
)

// isLinux64 tells tests that kernelTimestamp is implemented.
const isLinux64 = true

// enableTimestamps asks the kernel to stamp each received datagram
// (SO_TIMESTAMPNS, socket(7)), so arrival times measure the server and the
// network, not how late our reader goroutine was scheduled.
func enableTimestamps(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return fmt.Errorf("raw conn control: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("set SO_TIMESTAMPNS: %w", serr)
	}
	return nil
}

// kernelTimestamp finds the SCM_TIMESTAMPNS control message in oob and
// returns its time in Unix nanoseconds. It parses the 64-bit Linux layout
// (cmsghdr: 8-byte length, 4-byte level, 4-byte type; then a timespec of
// two 8-byte fields) by hand because syscall.ParseSocketControlMessage
// allocates, and this runs for every received packet.
func kernelTimestamp(oob []byte) (int64, bool) {
	const hdr = 16
	for len(oob) >= hdr {
		l := int(binary.NativeEndian.Uint64(oob))
		level := int32(binary.NativeEndian.Uint32(oob[8:]))
		typ := int32(binary.NativeEndian.Uint32(oob[12:]))
		if l < hdr || l > len(oob) {
			return 0, false
		}
		if level == syscall.SOL_SOCKET && typ == syscall.SCM_TIMESTAMPNS && l >= hdr+16 {
			sec := int64(binary.NativeEndian.Uint64(oob[hdr:]))
			nsec := int64(binary.NativeEndian.Uint64(oob[hdr+8:]))
			return sec*1e9 + nsec, true
		}
		next := (l + 7) &^ 7
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return 0, false
}
