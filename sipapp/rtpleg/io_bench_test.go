//go:build linux

package rtpleg

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/pion/rtp"
	"golang.org/x/sys/unix"

	"webconf/dsp"
	"webconf/dsp/g711"
)

// benchStreams is how many calls the I/O benchmarks carry: confload's
// 500 callers.
const benchStreams = 500

// ioBench is benchStreams phones, each with a leg on the server side, in
// one of three ways of doing the I/O:
//
//	recvfrom: today's per-call legs polled with recvfrom until EAGAIN, sendto
//	epoll:    per-call legs in a worker's epoll set, recvmmsg when ready, sendto
//	shared:   legs on one shared socket: recvmmsg + demux, sendmmsg at EndTick
type ioBench struct {
	mode   string
	hub    *Hub
	w      *Worker
	legs   []*Leg
	phones []*net.UDPConn
	raws   []syscall.RawConn
	to     []netip.AddrPort // each phone's leg
	pkt    []byte           // a phone's 172-byte RTP packet
	hdr    rtp.Header
	buf    []byte
	frame  []byte
	f      dsp.Frame
}

func newIOBench(b *testing.B, mode string, low int) *ioBench {
	b.Helper()
	pool, err := NewPool(netip.MustParseAddr("127.0.0.1"), low, low+2*benchStreams+100)
	if err != nil {
		b.Fatal(err)
	}
	x := &ioBench{mode: mode, pkt: make([]byte, 172), buf: make([]byte, 1500), frame: make([]byte, dsp.FrameSamples),
		hdr: rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 9}}
	if x.hub, err = NewHub(pool, 1, mode == "shared"); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(x.hub.Close)
	x.w = x.hub.Worker(0)
	for i := 0; i < benchStreams; i++ {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		raw, _ := c.SyscallConn()
		ph := c.LocalAddr().(*net.UDPAddr).AddrPort()
		cfg := Config{PT: g711.PCMU, DTMF: 101, Remote: ph, Send: true, ExpectRx: true}
		var l *Leg
		if mode == "shared" {
			l, err = x.hub.OpenShared(cfg, ph.Addr(), nil, nil)
		} else {
			l, err = Open(pool, cfg, nil, nil)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(l.Close)
		if err := l.StartPolled(); err != nil {
			b.Fatal(err)
		}
		if mode != "recvfrom" && mode != "recvmmsg" {
			l.BindIO(x.w)
		}
		l.Answered()
		x.legs = append(x.legs, l)
		x.phones = append(x.phones, c)
		x.raws = append(x.raws, raw)
		x.to = append(x.to, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(l.Port())))
	}
	return x
}

// phonesSend makes every phone send its next packet (not the server's
// cost: run with the timer stopped).
func (x *ioBench) phonesSend() {
	x.hdr.SequenceNumber++
	x.hdr.Timestamp += dsp.FrameSamples
	_, _ = x.hdr.MarshalTo(x.pkt)
	for i, c := range x.phones {
		_, _ = c.WriteToUDPAddrPort(x.pkt, x.to[i])
	}
}

// phonesDrain empties the phones' sockets (timer stopped).
func (x *ioBench) phonesDrain() int {
	n := 0
	for _, raw := range x.raws {
		_ = raw.Read(func(fd uintptr) bool {
			for {
				if _, _, err := syscall.Recvfrom(int(fd), x.buf, syscall.MSG_DONTWAIT); err != nil {
					return true
				}
				n++
			}
		})
	}
	return n
}

// tick is the server's side of one 20 ms tick of the full leg path:
// receive (demux, SRTP-free depacketise, decode, jitter buffer), take a
// frame per leg, and send a frame per leg (packetise, send). The mix is
// left out: the frame sent is a fixed one.
func (x *ioBench) tick() {
	if x.mode != "recvfrom" {
		x.w.BeginTick()
	}
	for _, l := range x.legs {
		l.Poll() // nothing for shared legs: BeginTick delivered
		l.ReadFrame(&x.f)
		l.WriteEncoded(x.frame)
	}
	if x.mode != "recvfrom" {
		x.w.EndTick()
	}
}

// floorTick is the I/O alone: each leg's packet is read (and, shared,
// demultiplexed to its leg) and a 172-byte packet goes back to each
// phone, with nothing decoded, mixed or encoded.
func (x *ioBench) floorTick() {
	switch x.mode {
	case "recvfrom":
		for i, l := range x.legs {
			for {
				if _, _, ok := l.recvOwn(l.rx.buf[:]); !ok {
					break
				}
			}
			l.sendOwn(x.pkt, *l.remote.Load())
			_ = i
		}
	case "recvmmsg":
		for _, l := range x.legs {
			l.recvOwnBatch(x.w.poll, maxPollPackets)
			l.sendOwn(x.pkt, *l.remote.Load())
		}
	case "epoll":
		x.w.BeginTick()
		for _, l := range x.legs {
			if l.ready.Swap(false) {
				l.recvOwnBatch(x.w.poll, maxPollPackets)
			}
			l.sendOwn(x.pkt, *l.remote.Load())
		}
	case "shared":
		s := x.hub.sockets[0]
		for {
			n := s.rx.recv(uintptr(s.fd), batchLen)
			if n <= 0 {
				break
			}
			s.mu.Lock()
			for i := 0; i < n; i++ {
				_, from := s.rx.packet(i)
				if s.route(from) == nil {
					panic("a phone's packet without its leg")
				}
			}
			s.mu.Unlock()
			if n < batchLen {
				break
			}
		}
		tx := x.w.batchFor(s)
		for _, l := range x.legs {
			copy(tx.slot(), x.pkt)
			tx.commit(len(x.pkt), *l.remote.Load())
		}
		x.w.EndTick()
	}
}

// warm makes every leg latch its phone (the first packet after the answer
// is dropped) and fills the jitter buffers' prefill.
func (x *ioBench) warm(b *testing.B) {
	for range 4 {
		x.phonesSend()
		for range 1000 {
			x.tick()
			if x.legs[len(x.legs)-1].Stats().RxPackets > 0 || x.legs[0].rxForeign.Load() > 0 {
				break
			}
		}
		x.phonesDrain()
	}
	if x.mode == "shared" {
		for i, l := range x.legs {
			if lat := l.latched.Load(); lat == nil || l.shared.src != *lat {
				b.Fatalf("leg %d not latched", i)
			}
		}
	}
}

// run times fn over b.N participant-ticks (b.N/benchStreams rounds of one
// packet in and one out per call), the phones' sending untimed. Besides
// ns/op (wall time of the server's side) it reports cpu-ns/op, the CPU
// time of the thread that runs the server's side: with phones that wait
// in a read (as confload's do), a packet sent on loopback is delivered
// and its reader woken in the sender's system call, which that counts.
func (x *ioBench) run(b *testing.B, fn func()) {
	x.warm(b)
	x.phonesDrain()
	got := x.startReaders(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu int64
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += benchStreams {
		b.StopTimer()
		x.phonesSend()
		b.StartTimer()
		t0 := threadCPU()
		fn()
		cpu += threadCPU() - t0
	}
	b.StopTimer()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	if got.Load() == 0 {
		b.Fatal("the phones received nothing")
	}
}

// startReaders makes every phone wait in a read, as a phone does; they
// stop when the phones close.
func (x *ioBench) startReaders(b *testing.B) *atomic.Int64 {
	var n atomic.Int64
	for _, c := range x.phones {
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				n.Add(1)
			}
		}()
	}
	return &n
}

// threadCPU is the calling thread's CPU time (ns).
func threadCPU() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return ts.Nano()
}

// BenchmarkIO is the server's media I/O per participant-tick (ns/op: one
// packet received and handled, one frame taken and one packet sent, for
// one call), 500 calls on loopback, in each I/O mode.
func BenchmarkIO(b *testing.B) {
	for _, mode := range []string{"recvfrom", "epoll", "shared"} {
		b.Run(mode, func(b *testing.B) {
			x := newIOBench(b, mode, 30000)
			x.run(b, x.tick)
		})
	}
}

// BenchmarkKernelFloor is the same I/O with nothing decoded, mixed or
// encoded: per participant-tick, one 172-byte packet read (shared:
// demultiplexed to its leg) and one written. It is the least a server
// with this I/O can spend; compare confload's CPU per participant-tick.
func BenchmarkKernelFloor(b *testing.B) {
	for _, mode := range []string{"recvfrom", "recvmmsg", "epoll", "shared"} {
		b.Run(mode, func(b *testing.B) {
			x := newIOBench(b, mode, 30000)
			x.run(b, x.floorTick)
		})
	}
}

// BenchmarkIdlePoll is what a tick costs per call that sent nothing
// (ns/op per idle call): today a recvfrom that finds nothing, with epoll
// one epoll_wait for all. Phones sending 30 ms packets (SIPp's G.711
// pcap) leave a third of the 20 ms ticks idle; a silent or held call all.
func BenchmarkIdlePoll(b *testing.B) {
	for _, mode := range []string{"recvfrom", "epoll"} {
		b.Run(mode, func(b *testing.B) {
			x := newIOBench(b, mode, 30000)
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; done += benchStreams {
				if mode == "epoll" {
					x.w.BeginTick()
				}
				for _, l := range x.legs {
					l.Poll()
				}
			}
		})
	}
}
