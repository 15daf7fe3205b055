package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/ipv4"

	"webconf/dsp/dtmf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
)

// Media plane. Streams share a few UDP sockets ("groups"): each group has
// one sender goroutine that writes every stream's packet for a 20 ms tick
// with one sendmmsg (ipv4.PacketConn.WriteBatch) and one reader goroutine
// that drains replies with recvmmsg (ReadBatch). A stream is told apart on
// receive by the server's source address: the server answers each call from
// its own RTP port (symmetric RTP, RFC 4961), so the (address, port) pair
// names the call even though all streams of a group share our port.
//
// The server latches each call's RTP to the address it sees (the group's
// port); it never sees two calls of one group on one of its ports, so
// latching stays correct. A server that multiplexes many calls on one port
// by source address would need -streams-per-socket 1.

// ErrAddrReused means the server answered two calls of one socket group
// with the same RTP address, so their replies could not be told apart.
var ErrAddrReused = errors.New("server RTP address already used by another call on this socket; try -streams-per-socket 1")

const (
	frameSamples = 160 // 20 ms at 8 kHz, RFC 3551 section 4.5 default ptime
	frameDur     = 20 * time.Millisecond
	rtpHeader    = 12
	// DTMF timing of a quick human (~100 ms on, 60 ms off, ITU-T Q.24) and
	// the RFC 4733 2.5.1.4 triple end packet.
	dtmfOnTicks  = 5
	dtmfEndTicks = 3
	dtmfGapTicks = 3
	dtmfVolume   = 10
	// Marker burst: 40 ms of 2 kHz once a second from one member of each room.
	markerTicks  = 2
	markerPeriod = 50 // ticks
	markerAmp    = 8000
	toneAmp      = 4000
	// maxCatchUp bounds the packets a late sender wake-up sends at once;
	// after a longer stall the grid skips ahead (the RTP clock still
	// advances, RFC 3550 5.1), as a phone would after a hiccup.
	maxCatchUp = 5
	readBatch  = 64
	sockBuf    = 4 << 20
)

// talkerFreqs are the talker test tones: multiples of 50 Hz (whole cycles
// in a 160-sample frame, so one encoded frame repeats seamlessly and costs
// nothing per tick), clear of the server's 1 kHz join beep and of the 2 kHz
// marker.
var talkerFreqs = []float64{350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850, 900,
	1100, 1150, 1200, 1250, 1300, 1350, 1400, 1450}

// dtmfJob is a digit string handed to a group's sender for one stream.
type dtmfJob struct {
	digits string
	done   chan struct{} // closed by the sender after the last gap
}

// stream is the media half of one call.
type stream struct {
	c   *call
	g   *group
	dst *net.UDPAddr   // server RTP address, fixed before registration
	key netip.AddrPort // dst, unmapped, for the reader's lookup
	pt  uint8
	dpt uint8 // telephone-event payload type (0 if none negotiated)

	// src is the looped encoded audio (a tone frame or a speech file);
	// nil sends silence frames. Fixed before registration.
	src    []byte
	srcPos int
	marker []byte // encoded marker frame, for the marker member only

	active atomic.Bool // false once hung up: stop sending
	jobs   atomic.Pointer[dtmfJob]

	// Owned by the group's sender.
	ssrc      uint32
	seq       uint16
	ts        uint32
	first     bool
	pkt       [rtpHeader + frameSamples]byte
	bufs      [1][]byte
	job       *dtmfJob
	digit     int
	phase     int // 0 event on, 1 end packets, 2 gap
	tick      int
	evTS      uint32
	evCode    uint8
	burstLeft int

	// Owned by the group's reader.
	rx rxState
}

// group is one shared UDP socket with its sender and reader.
type group struct {
	idx   int
	conn  *net.UDPConn
	pc    *ipv4.PacketConn
	port  int
	shift time.Duration // grid offset, spreads the groups' bursts over a tick
	clock *clock

	mu      sync.Mutex // serialises updates of streams and byAddr
	streams atomic.Pointer[[]*stream]
	byAddr  atomic.Pointer[map[netip.AddrPort]*stream]

	sendErrs atomic.Uint64
	stray    atomic.Uint64 // packets from unknown addresses

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// clock is the shared time base: the measurement window and the epoch of
// the 20 ms grid that decides when each room's marker fires.
type clock struct {
	epoch   time.Time
	winFrom atomic.Int64 // unix ns; 0 until the window opens
	winTo   atomic.Int64 // unix ns; max until the window closes
}

func newClock() *clock {
	c := &clock{epoch: time.Now()}
	c.winTo.Store(1<<63 - 1)
	return c
}

func (c *clock) inWindow(ns int64) bool {
	from := c.winFrom.Load()
	return from != 0 && ns >= from && ns < c.winTo.Load()
}

// newGroup opens a loopback socket with large buffers and kernel receive
// timestamps, so inter-arrival times do not include our own scheduling
// delay.
func newGroup(idx int, ip netip.Addr, clk *clock, shift time.Duration) (*group, error) {
	conn, err := listenEvenUDP(ip)
	if err != nil {
		return nil, err
	}
	if err := conn.SetReadBuffer(sockBuf); err != nil {
		conn.Close()
		return nil, fmt.Errorf("socket %d: set receive buffer: %w", idx, err)
	}
	if err := conn.SetWriteBuffer(sockBuf); err != nil {
		conn.Close()
		return nil, fmt.Errorf("socket %d: set send buffer: %w", idx, err)
	}
	if err := enableTimestamps(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("socket %d: %w", idx, err)
	}
	g := &group{
		idx:   idx,
		conn:  conn,
		pc:    ipv4.NewPacketConn(conn),
		port:  conn.LocalAddr().(*net.UDPAddr).Port,
		shift: shift,
		clock: clk,
		stop:  make(chan struct{}),
	}
	empty := []*stream{}
	g.streams.Store(&empty)
	m := map[netip.AddrPort]*stream{}
	g.byAddr.Store(&m)
	g.wg.Add(2)
	go g.sendLoop()
	go g.readLoop()
	return g, nil
}

// listenEvenUDP binds an even port: RFC 3550 section 11 puts RTP on even
// ports and some servers assume it.
func listenEvenUDP(ip netip.Addr) (*net.UDPConn, error) {
	var odd []*net.UDPConn
	defer func() {
		for _, c := range odd {
			c.Close()
		}
	}()
	for range 20 {
		c, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, fmt.Errorf("listen RTP: %w", err)
		}
		if c.LocalAddr().(*net.UDPAddr).Port%2 == 0 {
			return c, nil
		}
		odd = append(odd, c)
	}
	return nil, errors.New("listen RTP: no even port in 20 attempts")
}

// add registers s for sending and receiving. Marker members go first in
// the send order, so their burst leaves at the start of the batch, close to
// the send time recorded for it.
func (g *group) add(s *stream) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.byAddr.Load()
	if _, dup := old[s.key]; dup {
		return fmt.Errorf("%s: %w", s.key, ErrAddrReused)
	}
	m := make(map[netip.AddrPort]*stream, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[s.key] = s
	g.byAddr.Store(&m)
	cur := *g.streams.Load()
	next := make([]*stream, 0, len(cur)+1)
	if s.marker != nil {
		next = append(next, s)
		next = append(next, cur...)
	} else {
		next = append(next, cur...)
		next = append(next, s)
	}
	g.streams.Store(&next)
	return nil
}

// remove unregisters s, a call that has left (-churn): the sender stops
// visiting it, and the server may hand its RTP address to a later call of
// this socket. Its receive statistics stay in s for the report.
func (g *group) remove(s *stream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	old := *g.byAddr.Load()
	if old[s.key] == s {
		m := make(map[netip.AddrPort]*stream, len(old))
		for k, v := range old {
			if v != s {
				m[k] = v
			}
		}
		g.byAddr.Store(&m)
	}
	cur := *g.streams.Load()
	next := make([]*stream, 0, len(cur))
	for _, x := range cur {
		if x != s {
			next = append(next, x)
		}
	}
	g.streams.Store(&next)
}

// close stops both goroutines and the socket.
func (g *group) close() {
	g.closeOnce.Do(func() {
		close(g.stop)
		g.conn.Close()
		g.wg.Wait()
	})
}

// sendLoop writes one packet per active stream per tick, on absolute
// deadlines epoch + shift + k*20ms so that scheduling delays never
// accumulate into drift.
func (g *group) sendLoop() {
	defer g.wg.Done()
	var msgs []ipv4.Message
	start := g.clock.epoch.Add(g.shift)
	k := int64(0)
	if now := time.Now(); now.After(start) {
		k = int64(now.Sub(start)/frameDur) + 1
	}
	timer := time.NewTimer(time.Until(start.Add(time.Duration(k) * frameDur)))
	defer timer.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-timer.C:
		}
		now := time.Now()
		streams := *g.streams.Load()
		for sent := 0; !start.Add(time.Duration(k) * frameDur).After(now); sent++ {
			if sent == maxCatchUp {
				skip := int64(now.Sub(start.Add(time.Duration(k)*frameDur))/frameDur) + 1
				for _, s := range streams {
					s.ts += uint32(skip) * frameSamples
				}
				k += skip
				break
			}
			msgs = g.sendTick(streams, k, msgs)
			k++
		}
		timer.Reset(time.Until(start.Add(time.Duration(k) * frameDur)))
	}
}

// sendTick builds and writes the packets of tick k.
func (g *group) sendTick(streams []*stream, k int64, msgs []ipv4.Message) []ipv4.Message {
	msgs = msgs[:0]
	nowNS := time.Now().UnixNano()
	for _, s := range streams {
		if !s.active.Load() {
			continue
		}
		size := s.nextPacket(k, nowNS)
		s.bufs[0] = s.pkt[:size]
		msgs = append(msgs, ipv4.Message{Buffers: s.bufs[:], Addr: s.dst})
	}
	for off := 0; off < len(msgs); {
		n, err := g.pc.WriteBatch(msgs[off:], 0)
		if err != nil {
			// Skip the packet that failed (e.g. ECONNREFUSED from an ICMP
			// of a closed server port) and go on with the rest.
			g.sendErrs.Add(1)
			n = max(n, 0) + 1
		}
		off += n
	}
	return msgs
}

// nextPacket fills s.pkt with the packet of tick k and returns its size.
func (s *stream) nextPacket(k int64, nowNS int64) int {
	if s.job == nil {
		if j := s.jobs.Swap(nil); j != nil {
			s.job, s.digit = j, 0
			s.beginDigit()
		}
	}
	var size int
	if s.job != nil && s.phase < 2 {
		size = s.eventPacket()
	} else {
		size = s.audioPacket(k, nowNS)
	}
	s.ts += frameSamples
	if s.job != nil {
		s.advanceJob()
	}
	return size
}

// writeHeader writes the fixed RTP header (RFC 3550 section 5.1).
func (s *stream) writeHeader(pt uint8, marker bool, ts uint32) {
	b := s.pkt[:rtpHeader]
	b[0] = 0x80
	b[1] = pt & 0x7f
	if marker {
		b[1] |= 0x80
	}
	binary.BigEndian.PutUint16(b[2:], s.seq)
	binary.BigEndian.PutUint32(b[4:], ts)
	binary.BigEndian.PutUint32(b[8:], s.ssrc)
	s.seq++
}

func (s *stream) audioPacket(k int64, nowNS int64) int {
	r := s.c.room
	payload := s.pkt[rtpHeader:]
	if s.marker != nil && (k+int64(r.phase))%markerPeriod == 0 {
		s.burstLeft = markerTicks
		r.lastMarker.Store(nowNS)
	}
	switch {
	case s.burstLeft > 0:
		copy(payload, s.marker)
		s.burstLeft--
	case s.src != nil:
		n := copy(payload, s.src[s.srcPos:])
		if n < frameSamples {
			copy(payload[n:], s.src)
			s.srcPos = frameSamples - n
		} else {
			s.srcPos += n
		}
		if s.srcPos >= len(s.src) {
			s.srcPos = 0
		}
	default:
		copy(payload, silenceFrame(s.pt))
	}
	// RFC 3551 section 4.1: marker bit on the first packet of a talkspurt;
	// we never suppress silence, so only the first packet has it.
	s.writeHeader(s.pt, s.first, s.ts)
	s.first = false
	return rtpHeader + frameSamples
}

// eventPacket writes one RFC 4733 telephone-event packet: all packets of an
// event carry its start timestamp, the first has the marker bit, the
// duration grows, and the end packet is sent three times (2.5.1).
func (s *stream) eventPacket() int {
	ev := dtmf.Event{Code: s.evCode, Volume: dtmfVolume}
	if s.phase == 0 {
		ev.Duration = uint16((s.tick + 1) * frameSamples)
	} else {
		ev.End = true
		ev.Duration = dtmfOnTicks * frameSamples
	}
	ev.Append(s.pkt[rtpHeader:rtpHeader])
	s.writeHeader(s.dpt, s.phase == 0 && s.tick == 0, s.evTS)
	return rtpHeader + dtmf.PayloadLen
}

func (s *stream) beginDigit() {
	if s.digit >= len(s.job.digits) {
		close(s.job.done)
		s.job = nil
		return
	}
	s.phase, s.tick = 0, 0
	s.evTS = s.ts
	s.evCode, _ = dtmf.Code(s.job.digits[s.digit])
}

func (s *stream) advanceJob() {
	s.tick++
	switch s.phase {
	case 0:
		if s.tick >= dtmfOnTicks {
			s.phase, s.tick = 1, 0
		}
	case 1:
		if s.tick >= dtmfEndTicks {
			s.phase, s.tick = 2, 0
		}
	case 2:
		if s.tick >= dtmfGapTicks {
			s.digit++
			s.beginDigit()
		}
	}
}

var silence = [2][frameSamples]byte{}

func init() {
	var zero [frameSamples]int16
	g711.EncodeUlaw(silence[0][:], zero[:])
	g711.EncodeAlaw(silence[1][:], zero[:])
}

func silenceFrame(pt uint8) []byte {
	if pt == g711.PCMA {
		return silence[1][:]
	}
	return silence[0][:]
}

// toneFrame returns one encoded 20 ms frame of a tone whose frequency is a
// multiple of 50 Hz, which therefore repeats seamlessly.
func toneFrame(freq, amp float64, pt uint8) []byte {
	var pcm [frameSamples]int16
	tone.NewOsc(freq, amp).Fill(pcm[:])
	out := make([]byte, frameSamples)
	g711.Encode(pt, out, pcm[:])
	return out
}

// encodeSpeech encodes a whole speech file once, padded to whole frames.
func encodeSpeech(pcm []int16, pt uint8) []byte {
	n := (len(pcm) + frameSamples - 1) / frameSamples * frameSamples
	buf := make([]int16, n)
	copy(buf, pcm)
	out := make([]byte, n)
	g711.Encode(pt, out, buf)
	return out
}

// rxState is a stream's receive-side measurement, owned by its group's
// reader goroutine; the report reads it after the readers have stopped.
type rxState struct {
	total uint64 // packets received at any time

	// Window statistics.
	started   bool
	baseSeq   uint32
	maxSeq    uint16
	cycles    uint32
	received  uint64
	gaps      uint64
	lastArr   int64
	lastTrans uint32
	jitter    float64 // RFC 3550, timestamp units
	ia        hist
	latencies []time.Duration
	unmatched int

	// Marker onset detection (listeners only).
	onset    onsetDetector
	hasOnset bool

	// Keypad join detection: runs over the room's other sources.
	watch   atomic.Bool // set after typing; reader then looks for room audio
	runs    []toneRun
	heard   bool
	heardAt atomic.Int64 // unix ns of the first frame of the detected run
	runFrom []int64
}

// readLoop drains the socket with recvmmsg.
func (g *group) readLoop() {
	defer g.wg.Done()
	msgs := make([]ipv4.Message, readBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 1500)}
		msgs[i].OOB = make([]byte, 128)
	}
	var pcm [1500]int16
	for {
		n, err := g.pc.ReadBatch(msgs, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-g.stop:
				return
			default:
			}
			continue // e.g. ECONNREFUSED from an ICMP error: keep reading
		}
		now := time.Now().UnixNano()
		byAddr := *g.byAddr.Load()
		for i := range msgs[:n] {
			m := &msgs[i]
			ua, ok := m.Addr.(*net.UDPAddr)
			if !ok {
				continue
			}
			ap := ua.AddrPort()
			key := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			s := byAddr[key]
			if s == nil {
				g.stray.Add(1)
				continue
			}
			arr, ok := kernelTimestamp(m.OOB[:m.NN])
			if !ok {
				arr = now
			}
			s.receive(m.Buffers[0][:m.N], arr, g.clock, pcm[:])
		}
	}
}

// receive processes one packet from the server.
func (s *stream) receive(b []byte, arr int64, clk *clock, scratch []int16) {
	if len(b) < rtpHeader || b[0]>>6 != 2 {
		return
	}
	pt := b[1] & 0x7f
	seq := binary.BigEndian.Uint16(b[2:])
	ts := binary.BigEndian.Uint32(b[4:])
	hlen := rtpHeader + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 && len(b) >= hlen+4 {
		hlen += 4 + 4*int(binary.BigEndian.Uint16(b[hlen+2:]))
	}
	if hlen > len(b) {
		return
	}
	payload := b[hlen:]
	if b[0]&0x20 != 0 && len(payload) > 0 { // padding, RFC 3550 5.1
		payload = payload[:max(0, len(payload)-int(payload[len(payload)-1]))]
	}
	r := &s.rx
	r.total++
	inWin := clk.inWindow(arr)
	if inWin {
		r.count(seq, ts, arr, clk)
	}
	if pt != g711.PCMU && pt != g711.PCMA {
		return
	}
	watching := !r.heard && r.watch.Load()
	if !watching && !(inWin && r.hasOnset) {
		return
	}
	pcm := scratch[:min(len(payload), len(scratch))]
	g711.Decode(pt, pcm, payload[:len(pcm)])
	if watching {
		r.detectJoin(pcm, arr)
	}
	if inWin && r.hasOnset && r.onset.feed(pcm) {
		sent := s.c.room.lastMarker.Load()
		lat := time.Duration(arr - sent)
		if sent != 0 && lat >= 0 && lat < time.Second {
			r.latencies = append(r.latencies, lat)
		} else {
			r.unmatched++
		}
	}
}

// count updates the window statistics with one packet.
func (r *rxState) count(seq uint16, ts uint32, arr int64, clk *clock) {
	arrUnits := tsUnits(time.Duration(arr - clk.epoch.UnixNano()))
	tr := transit(arrUnits, ts)
	r.received++
	if !r.started {
		r.started = true
		r.baseSeq, r.maxSeq = uint32(seq), seq
		r.lastArr, r.lastTrans = arr, tr
		return
	}
	r.ia.add(time.Duration(arr - r.lastArr))
	r.lastArr = arr
	r.jitter = jitterStep(r.jitter, int32(tr-r.lastTrans))
	r.lastTrans = tr
	if d := int16(seq - r.maxSeq); d > 0 {
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		if d > 1 {
			r.gaps++
		}
		r.maxSeq = seq
	}
}

// expected is the number of packets the sequence numbers say were sent
// in the window (RFC 3550 A.3).
func (r *rxState) expected() uint64 {
	if !r.started {
		return 0
	}
	return uint64(r.cycles+uint32(r.maxSeq)) - uint64(r.baseSeq) + 1
}

func (r *rxState) detectJoin(pcm []int16, arr int64) {
	for i := range r.runs {
		if r.runs[i].run == 0 {
			r.runFrom[i] = arr
		}
		if r.runs[i].feed(pcm) {
			r.heard = true
			r.heardAt.Store(r.runFrom[i])
			return
		}
	}
}
