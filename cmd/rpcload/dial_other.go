//go:build !linux

package main

import "net"

func dial(addr string) (rawConn, error) { return net.Dial("tcp", addr) }
