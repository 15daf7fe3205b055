package node

import (
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"webconf/sipapp"
)

// collector reads the server's counters at scrape time, so that the hot
// path pays nothing for metrics.
type collector struct {
	srv   *sipapp.Server
	descs map[string]*prometheus.Desc
}

type metricDef struct {
	name, help string
	counter    bool
	value      func(m *sipapp.Metrics) float64
}

var metricDefs = []metricDef{
	{"calls_active", "Calls in progress (dial-in and dial-out).", false, func(m *sipapp.Metrics) float64 { return float64(m.ActiveCalls) }},
	{"dialouts_active", "Dial-outs in progress.", false, func(m *sipapp.Metrics) float64 { return float64(m.Dialouts) }},
	{"rooms", "Rooms in the registry.", false, func(m *sipapp.Metrics) float64 { return float64(m.Rooms) }},
	{"rooms_live", "Rooms with members in the mixer.", false, func(m *sipapp.Metrics) float64 { return float64(m.LiveRooms) }},
	{"participants", "Members of live rooms.", false, func(m *sipapp.Metrics) float64 { return float64(m.Participants) }},
	{"calls_total", "Finished calls.", true, func(m *sipapp.Metrics) float64 { return float64(m.CallsTotal) }},
	{"calls_failed_total", "Finished calls that never joined a room.", true, func(m *sipapp.Metrics) float64 { return float64(m.CallsFailed) }},
	{"connected_seconds_total", "Seconds finished calls spent in rooms.", true, func(m *sipapp.Metrics) float64 { return float64(m.ConnectedSeconds) }},
	{"rtp_packets_in_total", "RTP packets accepted.", true, func(m *sipapp.Metrics) float64 { return float64(m.RTPIn) }},
	{"rtp_packets_out_total", "RTP packets sent.", true, func(m *sipapp.Metrics) float64 { return float64(m.RTPOut) }},
	{"rtp_packets_dropped_total", "RTP packets dropped as malformed or of an unexpected payload type.", true, func(m *sipapp.Metrics) float64 { return float64(m.RTPDropped) }},
	{"rtp_foreign_source_drops_total", "RTP packets dropped because they came from an address other than the latched one.", true, func(m *sipapp.Metrics) float64 { return float64(m.RTPForeign) }},
	{"srtp_unauthenticated_drops_total", "SRTP packets dropped because they failed authentication or were replays.", true, func(m *sipapp.Metrics) float64 { return float64(m.SRTPUnauth) }},
	{"rtcp_packets_in_total", "RTCP packets seen on RTP ports (ignored).", true, func(m *sipapp.Metrics) float64 { return float64(m.RTPRTCP) }},
	{"dtmf_events_total", "RFC 4733 telephone-event packets.", true, func(m *sipapp.Metrics) float64 { return float64(m.DTMFEvents) }},
	{"jitter_underruns_total", "Times a jitter buffer ran dry.", true, func(m *sipapp.Metrics) float64 { return float64(m.JitterUnderruns) }},
	{"jitter_late_total", "Packets that arrived after their playout time.", true, func(m *sipapp.Metrics) float64 { return float64(m.JitterLate) }},
	{"jitter_concealed_total", "Frames concealed by repeating the last one.", true, func(m *sipapp.Metrics) float64 { return float64(m.JitterConcealed) }},
	{"jitter_overflow_total", "Times a jitter buffer dropped audio to bound its delay.", true, func(m *sipapp.Metrics) float64 { return float64(m.JitterOverflow) }},
	{"mixer_ticks_total", "Mixer ticks run by all workers.", true, func(m *sipapp.Metrics) float64 { return float64(m.MixTicks) }},
	{"mixer_tick_overruns_total", "Mixer ticks that started more than one frame late.", true, func(m *sipapp.Metrics) float64 { return float64(m.MixOverruns) }},
	{"mixer_resets_total", "Times a mixer worker fell so far behind that it skipped ahead.", true, func(m *sipapp.Metrics) float64 { return float64(m.MixResets) }},
	{"mixer_max_lateness_seconds", "The latest a mixer tick has started.", false, func(m *sipapp.Metrics) float64 { return m.MixMaxLate.Seconds() }},
	{"pin_failures_total", "Wrong room numbers typed, and keypad entries that timed out.", true, func(m *sipapp.Metrics) float64 { return float64(m.PinFailures) }},
	{"invites_refused_total", "INVITEs refused with 503 (shutdown mode, CPS limit, no RTP port).", true, func(m *sipapp.Metrics) float64 { return float64(m.Refused) }},
	{"invites_banned_total", "INVITEs refused with 403 from banned sources.", true, func(m *sipapp.Metrics) float64 { return float64(m.Banned) }},
	{"invites_rate_limited_total", "INVITEs refused with 503 over invite_rate.", true, func(m *sipapp.Metrics) float64 { return float64(m.RateLimited) }},
	{"invites_capped_total", "INVITEs refused with 503 at max_calls or max_pending_invites.", true, func(m *sipapp.Metrics) float64 { return float64(m.Capped) }},
	{"source_bans_total", "Bans handed to SIP source addresses (pin_failures).", true, func(m *sipapp.Metrics) float64 { return float64(m.SourceBans) }},
	{"room_alarms_total", "Rooms whose failure budget ran out (room_failures).", true, func(m *sipapp.Metrics) float64 { return float64(m.RoomAlarms) }},
	{"rpc_bans_total", "Bans handed to control clients (rpc_failures).", true, func(m *sipapp.Metrics) float64 { return float64(m.RPCBans) }},
	{"guest_request_bans_total", "Addresses refused guest authorization requests for spending guest_requests_per_source.", true, func(m *sipapp.Metrics) float64 { return float64(m.GuestRequestBans) }},
	{"public_room_bans_total", "Addresses refused new public rooms for spending public_rooms_per_source.", true, func(m *sipapp.Metrics) float64 { return float64(m.PublicRoomBans) }},
	{"invites_pending", "Answered INVITEs awaiting their ACK.", false, func(m *sipapp.Metrics) float64 { return float64(m.PendingInvite) }},
	{"tcp_connections", "Open SIP TCP and TLS connections (one budget: max_tcp_conns).", false, func(m *sipapp.Metrics) float64 { return float64(m.TCPConns) }},
	{"tcp_connections_refused_total", "SIP TCP and TLS connections closed at max_tcp_conns / max_tcp_conns_per_source.", true, func(m *sipapp.Metrics) float64 { return float64(m.TCPRefused) }},
	{"panics_total", "Panics contained (SIP handlers, call flows, RTP loops); each ended one request or call.", true, func(m *sipapp.Metrics) float64 { return float64(m.Panics) }},
}

// serverGauges are gauges read from the server itself rather than from
// its Metrics snapshot.
var serverGauges = []struct {
	name, help string
	value      func(s *sipapp.Server) float64
}{
	// A soak compares it before and after: every call must give its port back.
	{"rtp_ports_free", "RTP ports not in use.", func(s *sipapp.Server) float64 { return float64(s.FreeRTPPorts()) }},
	{"meetings", "Meetings (REST API).", func(s *sipapp.Server) float64 { return float64(s.Meetings().Counts().Meetings) }},
	{"meeting_users", "Users of the REST API.", func(s *sipapp.Server) float64 { return float64(s.Meetings().Counts().Users) }},
	{"meeting_authorizations_pending", "Guest authorization requests awaiting an owner.", func(s *sipapp.Server) float64 {
		return float64(s.Meetings().Counts().PendingAuthorizations)
	}},
	// Public rooms need no credentials to make: watch them against max_public_rooms.
	{"public_rooms", "Open public rooms (made by their first caller).", func(s *sipapp.Server) float64 { return float64(s.Meetings().Counts().PublicRooms) }},
	{"lobby_waiting", "Callers waiting in meeting lobbies.", func(s *sipapp.Server) float64 { return float64(s.LobbyWaiting()) }},
}

func newCollector(srv *sipapp.Server) *collector {
	c := &collector{srv: srv, descs: map[string]*prometheus.Desc{}}
	for _, d := range metricDefs {
		c.descs[d.name] = prometheus.NewDesc("webconf_"+d.name, d.help, nil, nil)
	}
	for _, d := range serverGauges {
		c.descs[d.name] = prometheus.NewDesc("webconf_"+d.name, d.help, nil, nil)
	}
	return c
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.srv.Metrics()
	for _, d := range metricDefs {
		t := prometheus.GaugeValue
		if d.counter {
			t = prometheus.CounterValue
		}
		ch <- prometheus.MustNewConstMetric(c.descs[d.name], t, d.value(&m))
	}
	for _, d := range serverGauges {
		ch <- prometheus.MustNewConstMetric(c.descs[d.name], prometheus.GaugeValue, d.value(c.srv))
	}
}

// startHTTP serves the REST API (/api/v1/, /c/), /metrics, and /debug/pprof when the listener is on
// loopback (profiles reveal internals and cost CPU: never on a public
// address).
func (n *Node) startHTTP(addr string) error {
	reg := prometheus.NewRegistry()
	// go_gc_heap_live_bytes (the heap the last GC marked live, without the
	// garbage made since) besides the default Go figures: the soak's heap.
	goc := collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
		collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/live:bytes$`)}))
	reg.MustRegister(newCollector(n.SIP), goc, collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	rpcCalls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webconf_rpc_requests_total", Help: "Control-plane calls by method and result code.",
	}, []string{"method", "code"})
	reg.MustRegister(rpcCalls)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "webconf_feedback_errors_total", Help: "Failed writes, flushes and closes of the feedback file (the votes they held are lost).",
	}, func() float64 { return float64(n.RPC.FeedbackErrors()) }))
	if x := n.xmlrpc; x != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "webconf_rpc_connections", Help: "Open XML-RPC/JSON-RPC connections.",
			}, func() float64 { open, _ := x.Conns(); return float64(open) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "webconf_rpc_connections_refused_total",
				Help: "XML-RPC/JSON-RPC connections closed at once: over the 256 in all or [xmlrpc] max_conns_per_source.",
			}, func() float64 { _, refused := x.Conns(); return float64(refused) }))
	}
	n.RPC.Table().Observe(func(method string, code int) {
		rpcCalls.WithLabelValues(method, strconv.Itoa(code)).Inc()
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	n.rest.Register(mux)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ap, err := netip.ParseAddrPort(ln.Addr().String()); err == nil && ap.Addr().IsLoopback() {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	n.httpLn = ln
	// The REST API faces the internet: bound headers and slow bodies.
	n.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
	go func() {
		if err := n.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server stopped", "err", err)
		}
	}()
	n.log.Info("http listening", "addr", ln.Addr().String())
	return nil
}

// HTTPAddr is the metrics listener's address ("" when off).
func (n *Node) HTTPAddr() string {
	if n.httpLn == nil {
		return ""
	}
	return n.httpLn.Addr().String()
}
