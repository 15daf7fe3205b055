// Package sipapp is the SIP application of webconf: the sipgo user agent,
// SDP negotiation, one RTP leg per call, the call flows (keypad room entry,
// direct room), the room registry and the live conference rooms. The
// control plane drives it through the Registry; it reports through Events.
package sipapp

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"webconf/prompts"
	"webconf/sipapp/calls"
	"webconf/sipapp/meeting"
	"webconf/sipapp/mixer"
	"webconf/sipapp/room"
	"webconf/sipapp/rtpleg"
	"webconf/sipapp/sdp"
	"webconf/sipapp/store"
)

// PredefinedRoom is a room opened at start-up with its admin PIN.
type PredefinedRoom struct{ Room, AdminPin string }

// Options is everything the SIP application needs from the config.
type Options struct {
	SIPListen string // host:port, served on UDP and TCP (port 0: any free port)
	// SIPTLSListen is host:port of SIP over TLS ("" = off), served with
	// the certificate chain in TLSCert and its key in TLSKey (PEM), both
	// required with it and re-read by ReloadTLS.
	SIPTLSListen  string
	TLSCert       string
	TLSKey        string
	TLSCAFile     string        // dialling TLS: CAs trusted besides the system roots
	TLSSkipVerify bool          // dialling TLS: accept any certificate (tests only)
	PublicIP      string        // address in SDP and Contact
	RTPLow        int           // RTP port range
	RTPHigh       int           //
	DeadRTPTime   time.Duration // no RTP this long ends the call; 0 = off
	AnswerDelay   time.Duration // 180 Ringing this long before answering; 0 = answer at once (SEMS)
	Signature     string        // Server / User-Agent header

	DirectRoomRE        *regexp.Regexp // matched anywhere in the R-URI user
	DirectRoomStrip     int
	RoomPinSplit        int // 0 = off
	ParticipantIDParam  string
	ParticipantIDHeader string

	LoopFirstParticipant bool
	LonelyUserTimer      time.Duration // 0 = off
	MaxPinAttempts       int           // 0 = unlimited
	PinTimeout           time.Duration // 0 = off

	Registry room.Config
	// Now is the registry's clock (room and record expiry); nil is
	// time.Now. Tests inject one to step over expiry delays.
	Now             func() time.Time
	PredefinedRooms []PredefinedRoom
	// Store keeps rooms, PINs, invites and call statistics across
	// restarts; nil keeps them in memory only.
	Store store.Store
	// StatsDir, if set, also keeps SEMS's stats file there (spec 7.2).
	StatsDir string

	DialoutAllowedRE *regexp.Regexp // callee@callee_domain must match; nil = any
	MaxDialouts      int            // concurrent dial-outs; 0 = no limit
	// DialoutAuthRealms are the digest realms a dial-out answers a
	// challenge for; empty = any. Only challenges from the next hop are
	// ever answered.
	DialoutAuthRealms []string
	// OutboundProxy (sip:host[:port][;transport=...]; "" = none) receives
	// dial-out INVITEs and our in-dialog requests of dialogs without a
	// route set, with a Route header naming it (loose routing).
	OutboundProxy string
	Ringback      string // us, eu, off or a WAV file
	SessionTimer  SessionTimer
	MixMaxTalkers int // mix only the k loudest talkers of a room; 0 = all
	Limits        Limits
	RTPReceive    string // "poll" (default: the mixer drains sockets each tick) or "goroutine"
	// RTPSocket is RTPSocketAuto ("" too), RTPSocketShared or
	// RTPSocketPerCall: which calls share a few RTP sockets (rtpSocketFor).
	RTPSocket string
	Prompts   *prompts.Set
	Events    room.Events
	// SRTP is SRTPOff, SRTPOptional ("" too) or SRTPMandatory: SDES-SRTP
	// for calls over TLS (srtpPolicy).
	SRTP string
	// Meetings configures the REST API's meetings (package meeting).
	Meetings meeting.Config
	// Calls is the provider of the calls API ([calls]); CallEvents gets
	// its events (nil: none).
	Calls      CallsConfig
	CallEvents CallEvents
	// Per-source budgets of what unauthenticated callers make, within
	// Limits.FailureWindow; once spent, the source is refused for
	// Limits.BanTime. 0 = off.
	GuestRequestsPerSource int // guest authorization requests (REST)
	PublicRoomsPerSource   int // public rooms made by a first caller
	Log                    *slog.Logger
	MixWorkers             int // 0 = GOMAXPROCS
}

// byeGrace is how long Shutdown waits for the phones to answer our BYEs.
const byeGrace = 2 * time.Second

// allowed is what we advertise in Allow (RFC 3261 20.5).
const allowed = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE"

// Server is the running SIP application.
type Server struct {
	opt  Options
	log  *slog.Logger
	reg  *room.Registry
	pool *rtpleg.Pool
	hub  *rtpleg.Hub // the mixer workers' media I/O
	mix  *mixer.Scheduler
	ip   netip.Addr // PublicIP parsed

	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	client *sipgo.Client
	udp    net.PacketConn
	tcp    net.Listener
	tls    net.Listener // the TCP listener under SIP over TLS; nil when off

	certs     *certStore  // the TLS listener's certificate; nil when off
	tlsClient *tls.Config // how dial-outs verify TLS peers
	handoff   *tlsHandoff // hands sipgo the TLS connections dial-outs open to their hop (tlsdial.go); nil without TLS

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // call goroutines

	byeCtx    context.Context // outstanding BYE transactions
	byeCancel context.CancelFunc
	byes      sync.WaitGroup

	mu    sync.Mutex
	calls map[string]*call     // by Call-ID
	rooms map[string]*liveRoom // rooms with members in the mixer
	// browsers are the browser participants (browser.go): not calls
	// (no Call-ID, no RTP leg), but Shutdown ends them too.
	browsers map[*Browser]struct{}

	stats    CallStats
	load     *load
	dialouts atomic.Int32
	ringback *ringbackSpec // nil: no ringback
	retired  legTotals     // RTP counters of ended calls
	counters counters
	guards   *Guards
	invites  *Rate
	pending  atomic.Int64 // answered INVITEs not yet acknowledged
	tcpConns *connLimiter

	book      *meeting.Book
	lobby     map[string]map[string]*lobbyWait // meeting room -> call tag -> caller (under mu)
	seats     map[string]int                   // meeting room -> callers in it or its lobby (under mu)
	lobbyLoop []int16                          // the lobby prompt with a pause, looped
	nonceKey  [32]byte                         // signs meeting-guest digest nonces

	udpSourceLimit int          // distinct sources per sipgo UDP read loop (udpsources.go)
	udpGenerations atomic.Int64 // sipgo UDP read loops started
	udpLoops       atomic.Int64 // sipgo UDP read loops running

	proxy *sip.Uri // the outbound proxy as our Route headers name it; nil = none
	// callsProxy is [calls] outbound_proxy (nil: calls to the provider go
	// to its domain); board is the calls API's legs and mixes.
	callsProxy *sip.Uri
	board      *calls.Switchboard
	// resolver resolves next hops' names; nil = the system's (tests set it).
	resolver func(ctx context.Context, host string) ([]netip.Addr, error)

	testHook func(*sip.Request) // tests only: runs before every handler
	dialHook func(stage string) // tests only: runs at stages of a call's flow (dial-out: ringing, answered; dial-in: joined)
}

// New checks the options and prepares the server; Start listens.
func New(opt Options) (*Server, error) {
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if opt.Prompts == nil {
		opt.Prompts = prompts.Builtin()
	}
	if opt.Events == nil {
		opt.Events = room.NopEvents{}
	}
	if opt.Signature == "" {
		opt.Signature = "webconf"
	}
	if opt.ParticipantIDHeader == "" && opt.ParticipantIDParam == "" {
		opt.ParticipantIDHeader = "X-ParticipantID"
	}
	if opt.MixWorkers <= 0 {
		opt.MixWorkers = runtime.GOMAXPROCS(0)
	}
	host, _, err := net.SplitHostPort(opt.SIPListen)
	if err != nil {
		return nil, fmt.Errorf("sipapp: sip_listen %q: %w", opt.SIPListen, err)
	}
	pub := opt.PublicIP
	if pub == "" {
		pub = host
	}
	ip, err := netip.ParseAddr(pub)
	if err != nil || ip.IsUnspecified() {
		return nil, fmt.Errorf("sipapp: public address %q must be an IP address other than 0.0.0.0", pub)
	}
	ip = ip.Unmap()
	proxy, err := parseOutboundProxy(opt.OutboundProxy)
	if err != nil {
		return nil, err
	}
	if proxy != nil {
		t, err := TransportForURI(*proxy)
		if err == nil {
			err = checkTransport(t, opt.SIPTLSListen)
		}
		if err != nil {
			return nil, fmt.Errorf("sipapp: [server] outbound_proxy %q: %w", opt.OutboundProxy, err)
		}
	}
	callsProxy, err := parseOutboundProxy(opt.Calls.OutboundProxy)
	if err != nil {
		return nil, fmt.Errorf("sipapp: [calls] %w", err)
	}
	switch opt.SRTP {
	case "", SRTPOff, SRTPOptional:
	case SRTPMandatory:
		// Keys go only over TLS (srtpPolicy): every call over UDP or TCP
		// is refused with 488.
		opt.Log.Warn("srtp=mandatory: calls and dial-outs over UDP or TCP are refused; only calls over TLS get SRTP")
	default:
		return nil, fmt.Errorf("sipapp: srtp %q is not one of off, optional, mandatory", opt.SRTP)
	}
	bindIP := ip
	if h, err := netip.ParseAddr(host); err == nil {
		bindIP = h.Unmap() // RTP binds where SIP listens (may be 0.0.0.0 or ::)
	}
	if err := checkFamilies(bindIP, ip); err != nil {
		return nil, err
	}
	pool, err := rtpleg.NewPool(bindIP, opt.RTPLow, opt.RTPHigh)
	if err != nil {
		return nil, fmt.Errorf("sipapp: %w", err)
	}
	mix := newMixer(opt)
	hub, err := newHub(opt, pool, mix)
	if err != nil {
		return nil, err
	}
	s := &Server{
		opt: opt, log: opt.Log, pool: pool, ip: ip, proxy: proxy,
		mix: mix, hub: hub, callsProxy: callsProxy, board: calls.New(mixAdapter{mix}, opt.CallEvents),
		reg:   room.NewRegistry(opt.Registry, opt.Events, opt.Now),
		calls: map[string]*call{}, rooms: map[string]*liveRoom{}, browsers: map[*Browser]struct{}{},
		lobby: map[string]map[string]*lobbyWait{}, seats: map[string]int{},
		udpSourceLimit: defaultUDPSourceLimit,
		load:           newLoad(time.Now()),
		guards:         newGuards(opt),
		invites:        NewRate(float64(opt.Limits.InviteRate), float64(opt.Limits.InviteBurst), nil),
	}
	// Two seconds of silence between repeats of the lobby prompt.
	s.lobbyLoop = append(append([]int16(nil), opt.Prompts.LobbyWait...), make([]int16, 2*8000)...)
	_, _ = crand.Read(s.nonceKey[:])
	if s.ringback, err = parseRingback(opt.Ringback); err != nil {
		return nil, err
	}
	if err := s.setupTLS(); err != nil {
		return nil, err
	}
	if err := s.restore(); err != nil {
		return nil, err
	}
	return s, nil
}

// RTP socket modes (Options.RTPSocket).
const (
	RTPSocketAuto    = "auto"
	RTPSocketShared  = "shared"
	RTPSocketPerCall = "per_call"
)

// newHub makes the mixer workers' media I/O: with shared sockets (one per
// worker, ports of the pool) unless rtp_socket is per_call or RTP is read
// by a goroutine per call, and an epoll set per worker for per-call legs.
func newHub(opt Options, pool *rtpleg.Pool, mix *mixer.Scheduler) (*rtpleg.Hub, error) {
	shared := false
	switch opt.RTPSocket {
	case "", RTPSocketAuto:
		shared = opt.RTPReceive != "goroutine" && runtime.GOOS == "linux"
	case RTPSocketShared:
		if opt.RTPReceive == "goroutine" {
			return nil, errors.New("sipapp: rtp_socket=shared needs rtp_receive=poll")
		}
		shared = true
	case RTPSocketPerCall:
	default:
		return nil, fmt.Errorf("sipapp: rtp_socket %q is not one of auto, shared, per_call", opt.RTPSocket)
	}
	hub, err := rtpleg.NewHub(pool, mix.Workers(), shared)
	if err != nil && shared && opt.RTPSocket != RTPSocketShared {
		// auto: a range too small for the shared sockets (or no Linux)
		// still serves calls, a port each.
		opt.Log.Warn("no shared RTP sockets: every call gets a port of its own", "err", err)
		hub, err = rtpleg.NewHub(pool, mix.Workers(), false)
	}
	if err != nil {
		return nil, fmt.Errorf("sipapp: RTP sockets: %w", err)
	}
	for i := range mix.Workers() {
		mix.SetIO(i, hub.Worker(i))
	}
	return hub, nil
}

// openLeg opens a call's RTP leg: on a shared socket when rtpSocketFor
// says so and no shared call names the same remote address (cfg.Remote),
// else on a port of its own.
func (s *Server) openLeg(cfg rtpleg.Config, shared bool, signal netip.Addr, c *call) (*rtpleg.Leg, error) {
	if shared && s.hub.Shared() {
		l, err := s.hub.OpenShared(cfg, signal, c.digit, c.log)
		if !errors.Is(err, rtpleg.ErrRemoteInUse) {
			return l, err
		}
		// The peer sends another shared call's RTP from that address
		// too: only a port of its own tells the two apart.
	}
	return rtpleg.Open(s.pool, cfg, c.digit, c.log)
}

// rtpSocketFor decides whether a dial-in shares a socket. auto: only when
// the SDP's address is the IP the INVITE came from (a phone on a public
// address, an SBC or media relay that is also the SIP hop, loopback);
// a phone behind a NAT or a proxy gets a port of its own, so that several
// phones behind one address are told apart by port, as before.
func (s *Server) rtpSocketFor(o *sdp.Offer, from netip.Addr) bool {
	switch s.opt.RTPSocket {
	case RTPSocketShared:
		return true
	case RTPSocketPerCall:
		return false
	}
	return from.IsValid() && o.Addr.Unmap() == from.Unmap()
}

func newMixer(opt Options) *mixer.Scheduler {
	m := mixer.New(opt.MixWorkers, opt.Log)
	m.SetMaxTalkers(opt.MixMaxTalkers)
	return m
}

// restore loads the durable state, opens the predefined rooms (the config
// decides their PINs) and hooks the call statistics to the store and to
// SEMS's stats file.
func (s *Server) restore() error {
	st := s.opt.Store
	if st == nil {
		st = store.NewMemory()
	}
	ctx := context.Background()
	stats, err := s.reg.Restore(ctx, st, s.log)
	if err != nil {
		return err
	}
	if stats == (store.Stats{}) && s.opt.StatsDir != "" {
		// Moving from SEMS: start from its stats file.
		if stats, err = store.ReadStatsFile(s.opt.StatsDir); err != nil {
			return fmt.Errorf("sipapp: stats_dir: %w", err)
		}
	}
	s.stats.Restore(stats.Total, stats.Failed, stats.Seconds)
	for _, p := range s.opt.PredefinedRooms {
		if err := s.reg.Predefine(p.Room, p.AdminPin); err != nil {
			return fmt.Errorf("sipapp: predefined room %q: %w", p.Room, err)
		}
	}
	snap, err := st.Load(ctx)
	if err != nil {
		return fmt.Errorf("sipapp: load meetings: %w", err)
	}
	mc := s.opt.Meetings
	if mc.Log == nil {
		mc.Log = s.log
	}
	if mc.MaxParticipants <= 0 {
		mc.MaxParticipants = 100
	}
	if mc.TTL <= 0 {
		mc.TTL = 48 * time.Hour
	}
	if n := s.opt.RoomPinSplit; n > 0 {
		// The keypad splits what is typed after n digits: a meeting's
		// number must be exactly n long to be typed.
		mc.ExtenDigits = n
	}
	if s.book, err = meeting.New(mc, st, snap.Docs, s); err != nil {
		return err
	}
	dir := s.opt.StatsDir
	s.stats.OnRecord(func(total, failed, secs uint64) {
		v := store.Stats{Total: total, Failed: failed, Seconds: secs}
		if err := st.PutStats(context.Background(), v); err != nil {
			s.log.Error("cannot store call statistics", "err", err)
		}
		// SEMS writes its file on the 1st, 3rd, 5th... call (spec 7.2).
		if dir != "" && total%2 == 1 {
			if err := store.WriteStatsFile(dir, v); err != nil {
				s.log.Error("cannot write stats file", "dir", dir, "err", err)
			}
		}
	})
	return nil
}

// Guards are the failure budgets (the control plane counts admin PIN and
// master password failures in them too).
func (s *Server) Guards() *Guards { return s.guards }

// admit applies the caller's ban and INVITE rate and the caps to a new
// INVITE; false means it was answered (403 or 503). The caller is the one
// callerOf names (a trusted proxy's callers are charged, never the proxy).
func (s *Server) admit(req *sip.Request, tx sip.ServerTransaction) bool {
	who := s.callerOf(req)
	l := s.opt.Limits
	switch {
	case who.Banned(s.guards.Sources):
		s.counters.banned.Add(1)
		s.respond(tx, req, 403, "Forbidden", nil)
		return false
	case !who.Allow(s.invites):
		s.counters.rateLimited.Add(1)
		s.respond(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return false
	case l.MaxCalls > 0 && s.ActiveCalls() >= l.MaxCalls,
		l.MaxPendingInvites > 0 && s.pending.Load() >= int64(l.MaxPendingInvites):
		s.counters.capped.Add(1)
		s.respond(tx, req, 503, "Service Unavailable", nil, sip.NewHeader("Retry-After", "5"))
		return false
	}
	return true
}

// Registry is the room registry the control plane works on.
func (s *Server) Registry() *room.Registry { return s.reg }

// Mixer exposes the scheduler's counters.
func (s *Server) Mixer() *mixer.Scheduler { return s.mix }

// Stats returns the call statistics.
func (s *Server) Stats() *CallStats { return &s.stats }

// Start binds UDP and TCP on sip_listen and serves until Shutdown.
func (s *Server) Start() error {
	udp, tcp, err := listenSIP(s.opt.SIPListen)
	if err != nil {
		return err
	}
	var tlsLn net.Listener
	if s.certs != nil {
		if tlsLn, err = net.Listen("tcp", s.opt.SIPTLSListen); err != nil {
			udp.Close()
			tcp.Close()
			return fmt.Errorf("sipapp: listen tls %s: %w", s.opt.SIPTLSListen, err)
		}
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(s.opt.Signature), sipgo.WithUserAgentHostname(s.ip.String()),
		sipgo.WithUserAgenTLSConfig(s.tlsClient))
	if err != nil {
		udp.Close()
		tcp.Close()
		if tlsLn != nil {
			tlsLn.Close()
		}
		return fmt.Errorf("sipapp: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(s.log))
	if err != nil {
		return fmt.Errorf("sipapp: sip server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientHostname(s.ip.String()), sipgo.WithClientLogger(s.log))
	if err != nil {
		return fmt.Errorf("sipapp: sip client: %w", err)
	}
	s.ua, s.srv, s.client, s.udp, s.tcp, s.tls = ua, srv, client, udp, tcp, tlsLn
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.byeCtx, s.byeCancel = context.WithCancel(context.Background())
	srv.OnInvite(s.validated(s.onInvite))
	srv.OnAck(s.validated(s.onAck))
	srv.OnBye(s.validated(s.onBye))
	srv.OnCancel(s.validated(s.onCancel))
	srv.OnOptions(s.validated(s.onOptions))
	srv.OnInfo(s.validated(s.onInfo))
	srv.OnUpdate(s.validated(s.onUpdate))
	srv.OnNoRoute(s.validated(s.onNoRoute))
	s.mix.Start()
	// Requests we send over UDP leave from the SIP socket (fromSIPPort),
	// which sipgo finds in its pool only once its read loop runs: a
	// dial-out placed right after Start would otherwise make sipgo bind
	// the address again (EADDRINUSE).
	select {
	case <-s.serveUDP().ready:
	case <-time.After(5 * time.Second):
		s.log.Warn("sip: UDP read loop slow to start")
	}
	// TCP and TLS share one connection budget (connlimit.go); a trusted
	// proxy is not held to the per-source cap.
	budget := newConnBudget(s.opt.Limits.MaxTCPConns, s.opt.Limits.MaxTCPConnsPerSource, s.opt.Limits.TCPIdleTimeout)
	budget.exempt = s.trustedSource
	s.tcpConns = budget.limit(tcp)
	go func() { _ = srv.ServeTCP(s.tcpConns) }()
	if tlsLn != nil {
		ln := &tlsListener{Listener: budget.limit(tlsLn), cfg: s.serverTLSConfig(), log: s.log}
		go func() { _ = srv.ServeTLS(ln) }()
		s.handoff = newTLSHandoff(tlsLn.Addr())
		go func() { _ = srv.ServeTLS(s.handoff) }()
		s.log.Info("sip listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String(), "tls", tlsLn.Addr().String())
		return nil
	}
	s.log.Info("sip listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String())
	return nil
}

// listenSIP binds UDP and TCP on the same port. With port 0 the UDP port
// is chosen first and TCP may find it taken (by some other socket's
// ephemeral port), so that case retries with a new port.
func listenSIP(addr string) (net.PacketConn, net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	tries := 1
	if port == "0" {
		tries = 20
	}
	var lastErr error
	for i := 0; i < tries; i++ {
		udp, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("sipapp: listen udp %s: %w", addr, err)
		}
		tcp, err := net.Listen("tcp", udp.LocalAddr().String())
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		lastErr = fmt.Errorf("sipapp: listen tcp %s: %w", udp.LocalAddr(), err)
	}
	return nil, nil, lastErr
}

// Addr is the bound SIP address (UDP and TCP share the port).
func (s *Server) Addr() string { return s.udp.LocalAddr().String() }

// Shutdown hangs up every call with BYE, waits for the calls to end (or
// ctx), and stops listening.
func (s *Server) Shutdown(ctx context.Context) error {
	s.cancel()
	s.mu.Lock()
	for _, c := range s.calls {
		c.end(endShutdown)
	}
	for b := range s.browsers {
		b.c.end(endShutdown)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("sipapp: shutdown: calls still ending: %w", ctx.Err())
	}
	// Let the BYEs be answered, but do not wait for phones that vanished.
	byesDone := make(chan struct{})
	go func() { s.byes.Wait(); close(byesDone) }()
	grace := time.NewTimer(byeGrace)
	defer grace.Stop()
	select {
	case <-byesDone:
	case <-grace.C:
	case <-ctx.Done():
	}
	s.byeCancel()
	<-byesDone
	s.book.Close()
	s.mix.Stop()
	s.hub.Close()
	s.srv.Close()
	s.ua.Close()
	s.udp.Close()
	s.tcp.Close()
	if s.tls != nil {
		s.tls.Close()
	}
	if s.handoff != nil {
		s.handoff.Close()
	}
	return err
}

// LegStats returns the RTP counters of the live call with that call tag.
func (s *Server) LegStats(tag string) (rtpleg.Stats, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.calls {
		if c.tag == tag {
			return c.leg.Stats(), true
		}
	}
	return rtpleg.Stats{}, false
}

// FreeRTPPorts is how many RTP ports are not in use.
func (s *Server) FreeRTPPorts() int { return s.pool.Free() }

// ActiveCalls is the number of calls in progress (SEMS's "calls").
func (s *Server) ActiveCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	res.AppendHeader(sip.NewHeader("Server", s.opt.Signature))
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.log.Debug("sip respond failed", "code", code, "err", err)
	}
}

func (s *Server) onOptions(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 200, "OK", nil,
		sip.NewHeader("Allow", allowed),
		sip.NewHeader("Accept", "application/sdp, application/dtmf-relay"))
}

func (s *Server) onNoRoute(req *sip.Request, tx sip.ServerTransaction) {
	s.respond(tx, req, 405, "Method Not Allowed", nil, sip.NewHeader("Allow", allowed))
}

func (s *Server) onCancel(req *sip.Request, tx sip.ServerTransaction) {
	// The transaction layer answers CANCELs that match an INVITE; one that
	// reaches us matches nothing (RFC 3261 9.2).
	s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
}

// lookup finds the call an in-dialog request belongs to: same Call-ID, our
// tag in To, their tag in From.
func (s *Server) lookup(req *sip.Request) *call {
	cid := req.CallID()
	to, from := req.To(), req.From()
	if cid == nil || to == nil || from == nil {
		return nil
	}
	s.mu.Lock()
	c := s.calls[cid.Value()]
	s.mu.Unlock()
	if c == nil {
		return nil
	}
	if tt, _ := to.Params.Get("tag"); tt != c.tag {
		return nil
	}
	if ft, _ := from.Params.Get("tag"); ft != c.peerTag() {
		return nil
	}
	return c
}

func (s *Server) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if c := s.lookup(req); c != nil {
		c.acked()
	}
}

func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	s.respond(tx, req, 200, "OK", nil)
	c.end(endBye)
}

func (s *Server) onInfo(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	ct := req.ContentType()
	if ct != nil && strings.EqualFold(strings.TrimSpace(strings.SplitN(ct.Value(), ";", 2)[0]), "application/dtmf-relay") {
		if d, ok := parseDTMFRelay(req.Body()); ok {
			c.digit(d)
		}
	}
	s.respond(tx, req, 200, "OK", nil)
}

// parseDTMFRelay reads the Signal= line of an application/dtmf-relay body
// (the de-facto format SEMS and most phones use): a digit, * or #.
func parseDTMFRelay(body []byte) (byte, bool) {
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "Signal") {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) != 1 {
			// Some phones send the RFC 4733 event number ("10" for *).
			if n, err := strconv.Atoi(v); err == nil {
				switch {
				case n >= 0 && n <= 9:
					return byte('0' + n), true
				case n == 10:
					return '*', true
				case n == 11:
					return '#', true
				}
			}
			return 0, false
		}
		switch d := v[0]; {
		case d >= '0' && d <= '9', d == '*', d == '#':
			return d, true
		case d >= 'A' && d <= 'D', d >= 'a' && d <= 'd':
			return 0, false // A-D: ignored, as in SEMS's room entry
		}
		return 0, false
	}
	return 0, false
}

func (s *Server) onUpdate(req *sip.Request, tx sip.ServerTransaction) {
	c := s.lookup(req)
	if c == nil {
		s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	if len(req.Body()) == 0 {
		// A session refresh without an offer (RFC 4028 / RFC 3311).
		hdrs, ok := c.negotiateUAS(req)
		if !ok {
			s.reject422(tx, req)
			return
		}
		s.respond(tx, req, 200, "OK", nil, append(hdrs, c.contact())...)
		c.refreshed()
		return
	}
	c.reoffer(req, tx)
}

func (s *Server) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if to := req.To(); to != nil {
		if _, ok := to.Params.Get("tag"); ok {
			c := s.lookup(req)
			if c == nil {
				s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
				return
			}
			c.reoffer(req, tx)
			return
		}
	}
	if !s.admit(req, tx) {
		return
	}
	if s.ctx.Err() != nil || !s.load.admit(time.Now()) {
		s.counters.refused.Add(1)
		s.respond(tx, req, 503, "Service Unavailable", nil)
		return
	}
	if s.callsDialin(req, tx) {
		// A user's phone calling out (calls API), run to its end here.
		s.load.done(time.Now())
		return
	}
	pre, newPublic, code, reason, hdr := s.preRoute(req)
	var user string
	if code == 0 {
		user, code, reason, hdr = s.meetingUser(req)
	}
	if code != 0 {
		s.load.done(time.Now())
		if hdr != nil {
			s.respond(tx, req, code, reason, nil, hdr)
		} else {
			s.respond(tx, req, code, reason, nil)
		}
		return
	}
	c, code, reason := s.newCall(req, tx)
	if c != nil {
		c.pre, c.newPublic, c.user = pre, newPublic, user
	}
	if c == nil {
		s.load.done(time.Now())
		if code == 422 {
			s.reject422(tx, req)
			return
		}
		s.respond(tx, req, code, reason, nil)
		return
	}
	defer s.load.done(time.Now())
	// The call runs in this handler's goroutine (sipgo gives every request
	// its own) until it ends: one goroutine per call, a straight script.
	c.run()
}

// liveRoom is a room with members in the mixer.
type liveRoom struct {
	name    string
	group   *mixer.Group
	members []*call
}
