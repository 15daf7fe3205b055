//go:build !(linux && (amd64 || arm64))

package main

import "net"

// isLinux64 tells tests that kernelTimestamp is not implemented.
const isLinux64 = false

// enableTimestamps is a no-op off 64-bit Linux: arrival times then come
// from the reader's clock (see sockopt_linux.go).
func enableTimestamps(*net.UDPConn) error { return nil }

func kernelTimestamp([]byte) (int64, bool) { return 0, false }
