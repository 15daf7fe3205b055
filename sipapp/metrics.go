package sipapp

import (
	"sync"
	"sync/atomic"
	"time"

	"webconf/sipapp/rtpleg"
)

// Metrics is a snapshot of the server's counters for monitoring. Counters
// only grow; gauges are the value now.
type Metrics struct {
	ActiveCalls  int // gauge: calls in progress (dial-in and dial-out)
	Dialouts     int // gauge: dial-outs in progress
	Rooms        int // gauge: rooms in the registry
	LiveRooms    int // gauge: rooms with members in the mixer
	Participants int // gauge: members in live rooms

	CallsTotal, CallsFailed, ConnectedSeconds uint64

	RTPIn, RTPOut, RTPDropped, RTPForeign, RTPRTCP, DTMFEvents   uint64
	SRTPUnauth                                                   uint64 // SRTP packets that failed authentication or replay checks
	JitterUnderruns, JitterLate, JitterConcealed, JitterOverflow uint64

	MixTicks, MixOverruns, MixResets uint64
	MixMaxLate                       time.Duration

	PinFailures uint64 // wrong room numbers typed (and timeouts)
	Refused     uint64 // INVITEs answered 503 (shutdown mode, CPS limit, no RTP port)

	Banned      uint64 // INVITEs refused 403 from banned sources
	RateLimited uint64 // INVITEs refused 503 over invite_rate
	Capped      uint64 // INVITEs refused 503 at max_calls / max_pending_invites
	SourceBans  uint64 // bans handed to SIP sources
	RoomAlarms  uint64 // rooms whose failure budget ran out
	RPCBans     uint64 // bans handed to control clients
	// Addresses that spent their budget of guest authorization requests
	// or of public rooms made.
	GuestRequestBans, PublicRoomBans uint64
	PendingInvite                    int    // gauge: answered INVITEs awaiting ACK
	TCPConns                         int    // gauge: open SIP TCP and TLS connections
	TCPRefused                       uint64 // TCP and TLS connections closed at the caps
	Panics                           uint64 // panics contained (SIP handlers, call flows, RTP loops)
}

// legTotals keeps the counters of legs that have closed, so that totals
// do not drop when calls end.
type legTotals struct {
	mu sync.Mutex
	s  rtpleg.Stats
}

func (t *legTotals) add(s rtpleg.Stats) {
	t.mu.Lock()
	defer t.mu.Unlock()
	addLeg(&t.s, s)
}

func addLeg(dst *rtpleg.Stats, s rtpleg.Stats) {
	dst.RxPackets += s.RxPackets
	dst.RxForeign += s.RxForeign
	dst.RxBad += s.RxBad
	dst.RxRTCP += s.RxRTCP
	dst.RxDTMF += s.RxDTMF
	dst.RxUnauth += s.RxUnauth
	dst.TxPackets += s.TxPackets
	dst.Jitter.Late += s.Jitter.Late
	dst.Jitter.Overflow += s.Jitter.Overflow
	dst.Jitter.Underruns += s.Jitter.Underruns
	dst.Jitter.Concealed += s.Jitter.Concealed
	dst.Jitter.Resyncs += s.Jitter.Resyncs
}

// counters the call flows bump.
type counters struct {
	pinFailures atomic.Uint64
	refused     atomic.Uint64
	banned      atomic.Uint64
	rateLimited atomic.Uint64
	capped      atomic.Uint64
	panics      atomic.Uint64
}

// Metrics collects the snapshot; it walks the live calls, so call it once
// per scrape, not per packet.
func (s *Server) Metrics() Metrics {
	var m Metrics
	s.mu.Lock()
	s.retired.mu.Lock()
	legs := s.retired.s
	s.retired.mu.Unlock()
	m.ActiveCalls = len(s.calls)
	for _, c := range s.calls {
		addLeg(&legs, c.leg.Stats())
	}
	m.LiveRooms = len(s.rooms)
	for _, lr := range s.rooms {
		m.Participants += len(lr.members)
	}
	s.mu.Unlock()
	m.Dialouts = int(s.dialouts.Load())
	m.Rooms = s.reg.Count()
	m.CallsTotal, m.CallsFailed, m.ConnectedSeconds = s.stats.Snapshot()
	m.RTPIn, m.RTPOut, m.RTPDropped, m.RTPForeign = legs.RxPackets, legs.TxPackets, legs.RxBad, legs.RxForeign
	// Datagrams on a shared socket that no call took are foreign too.
	m.RTPForeign += s.hub.Foreign()
	m.RTPRTCP, m.DTMFEvents = legs.RxRTCP, legs.RxDTMF
	m.SRTPUnauth = legs.RxUnauth
	m.JitterUnderruns, m.JitterLate = legs.Jitter.Underruns, legs.Jitter.Late
	m.JitterConcealed, m.JitterOverflow = legs.Jitter.Concealed, legs.Jitter.Overflow
	ms := s.mix.Stats()
	m.MixTicks, m.MixOverruns, m.MixResets, m.MixMaxLate = ms.Ticks, ms.Overruns, ms.Resets, ms.MaxLate
	m.PinFailures = s.counters.pinFailures.Load()
	m.Refused = s.counters.refused.Load()
	m.Banned, m.RateLimited, m.Capped = s.counters.banned.Load(), s.counters.rateLimited.Load(), s.counters.capped.Load()
	m.SourceBans, m.RoomAlarms, m.RPCBans = s.guards.Sources.Bans(), s.guards.Rooms.Bans(), s.guards.RPC.Bans()
	m.GuestRequestBans, m.PublicRoomBans = s.guards.GuestRequests.Bans(), s.guards.PublicRooms.Bans()
	m.PendingInvite = int(s.pending.Load())
	m.Panics = s.counters.panics.Load()
	if s.tcpConns != nil {
		m.TCPConns, m.TCPRefused = s.tcpConns.b.stats()
	}
	return m
}
