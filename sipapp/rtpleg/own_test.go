//go:build linux

package rtpleg

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"webconf/dsp/g711"
)

// socketFDs are this process's descriptors of the UDP socket bound to
// port (from /proc/net/udp and /proc/net/udp6 and the links in
// /proc/self/fd).
func socketFDs(t *testing.T, port int) []int {
	t.Helper()
	var inodes []string
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		suffix := fmt.Sprintf(":%04X", port)
		for line := range strings.SplitSeq(string(b), "\n") {
			if fl := strings.Fields(line); len(fl) > 9 && strings.HasSuffix(fl[1], suffix) {
				inodes = append(inodes, fl[9])
			}
		}
	}
	var fds []int
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil {
			continue
		}
		for _, ino := range inodes {
			if link == "socket:["+ino+"]" {
				n, _ := strconv.Atoi(e.Name())
				fds = append(fds, n)
			}
		}
	}
	return fds
}

// epollSets maps each epoll descriptor of this process to the
// descriptors registered in it (the tfd lines of /proc/self/fdinfo).
func epollSets(t *testing.T) map[int][]int {
	t.Helper()
	sets := map[int][]int{}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name()))
		if err != nil || link != "anon_inode:[eventpoll]" {
			continue
		}
		ep, _ := strconv.Atoi(e.Name())
		b, err := os.ReadFile(filepath.Join("/proc/self/fdinfo", e.Name()))
		if err != nil {
			continue
		}
		sets[ep] = []int{}
		for line := range strings.SplitSeq(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "tfd:" {
				n, _ := strconv.Atoi(f[1])
				sets[ep] = append(sets[ep], n)
			}
		}
	}
	return sets
}

// inSets lists the epoll descriptors any of fds is registered in.
func inSets(sets map[int][]int, fds []int) []int {
	var eps []int
	for ep, tfds := range sets {
		for _, tfd := range tfds {
			for _, fd := range fds {
				if tfd == fd {
					eps = append(eps, ep)
				}
			}
		}
	}
	return eps
}

// TestOwnSocketOutsideTheRuntimePoller: a polled per-call leg's socket is
// in no epoll set but its worker's. In the Go runtime's, every datagram
// that arrives and every send's completion wakes the runtime's netpoller
// for nothing (the mixer reads and writes the socket itself).
func TestOwnSocketOutsideTheRuntimePoller(t *testing.T) {
	// The detection works: a net.UDPConn is in the runtime's epoll set.
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cfds := socketFDs(t, c.LocalAddr().(*net.UDPAddr).Port)
	if len(cfds) != 1 || len(inSets(epollSets(t), cfds)) != 1 {
		t.Fatalf("a net.UDPConn: descriptors %v, in epoll sets %v, want one in one", cfds, inSets(epollSets(t), cfds))
	}

	pool := testPool(t)
	h, err := NewHub(pool, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ph := newPeer(t)
	l, err := Open(pool, Config{PT: g711.PCMU, DTMF: -1, Remote: ph.addr(), Send: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.StartPolled(); err != nil {
		t.Fatal(err)
	}
	fds := socketFDs(t, l.Port())
	if len(fds) == 0 {
		t.Fatalf("no descriptor of the leg's socket on port %d", l.Port())
	}
	if eps := inSets(epollSets(t), fds); len(eps) != 0 {
		t.Fatalf("the polled leg's socket (descriptors %v) is in epoll sets %v, want none", fds, eps)
	}
	w := h.Worker(0)
	l.BindIO(w)
	if eps := inSets(epollSets(t), fds); len(eps) != 1 || eps[0] != w.ep {
		t.Fatalf("a mixed leg's socket is in epoll sets %v, want only its worker's (%d)", eps, w.ep)
	}
	// It still receives and sends.
	l.Answered()
	ph.sendRaw(t, l, rtcpSentinel) // dropped: the first after the answer
	pollTicks(t, w, l, "the primer", func(s Stats) bool { return s.RxForeign == 1 })
	ph.send(t, l, g711.PCMU, make([]byte, 160))
	pollTicks(t, w, l, "a packet", func(s Stats) bool { return s.RxPackets == 1 })
	l.WriteEncoded(make([]byte, 160))
	if pkt := ph.recv(t); pkt.PayloadType != g711.PCMU {
		t.Fatalf("sent payload type %d", pkt.PayloadType)
	}
	l.Close()
	if got := socketFDs(t, l.Port()); len(got) != 0 {
		t.Fatalf("descriptors %v of the leg's socket left after Close", got)
	}
}
