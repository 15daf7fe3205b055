// Package phone is a SIP test phone for the end-to-end tests of the
// conference server: a real UAC (RFC 3261) over UDP or TCP on loopback that
// sends G.711 RTP on a 20 ms grid (RFC 3550/3551), sends DTMF three ways
// (RFC 4733 events, SIP INFO, in-band tones) and measures what it hears.
//
// Each Phone owns its own sipgo user agent listening on 127.0.0.1:0, and its
// Contact names that listener, so requests the server sends inside the
// dialog (BYE on kick, re-INVITE, INFO, OPTIONS) reach the phone. Over UDP
// the phone also sends its requests from that listener, so the server sees
// one symmetric SIP address per phone.
//
// A Phone is for tests: it favours being predictable and observable over
// being a complete user agent (no authentication, no session timers, no
// early-media handling beyond recording it).
//
// Listen adds the other direction (callee.go): a UAS the server dials out
// to, which challenges, rings, rejects or answers, and hands each answered
// call to the test as a Phone with the same API.
package phone

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/srtp/v3"

	"webconf/dsp/g711"
)

// Sentinel errors.
var (
	// ErrCallEnded is returned by operations that need a live dialog after
	// the call was hung up by either side.
	ErrCallEnded = errors.New("phone: call has ended")
	// ErrNoFinalResponse means an INVITE produced no final response (for
	// example a CANCEL whose INVITE transaction timed out).
	ErrNoFinalResponse = errors.New("phone: no final response to INVITE")
	// ErrBadConfig reports an unusable Config.
	ErrBadConfig = errors.New("phone: bad config")
	// ErrNotSeen is returned by Pending.WaitCode when the INVITE completed
	// without the awaited response code.
	ErrNotSeen = errors.New("phone: response code not seen")
)

// Config describes one call. The zero value of every field but Server is
// usable.
type Config struct {
	Server string // host:port of the server, e.g. "127.0.0.1:5060"
	// LocalIP is the loopback address the phone binds its SIP and RTP
	// sockets to and names in Contact, From and SDP; "" is 127.0.0.1, or
	// ::1 when the server is on IPv6. Linux routes all of 127/8 to lo, so
	// phones on 127.0.0.2, 127.0.0.3, ... are different callers to a
	// proxy in front of the server.
	LocalIP   string
	Transport string // "udp" (default), "tcp" or "tls"
	// TLS is required with Transport "tls": its RootCAs verify the server,
	// and its Certificates serve the phone's own TLS listener (the one
	// its Contact names).
	TLS *tls.Config
	// SIPS makes the Request-URI and the Contact sips: (RFC 5630); needs
	// Transport "tls".
	SIPS        bool
	User        string       // Request-URI user (room or direct number); "" -> "conference"
	FromUser    string       // From user; default "phone"
	DisplayName string       // optional display name in From
	Headers     []sip.Header // extra INVITE headers (P-App-Param, X-ParticipantID, ...)
	Codecs      []uint8      // audio payload types offered in order; default {PCMU, PCMA}
	DTMF        int          // telephone-event payload type offered; 0 -> 101, -1 -> not offered
	Ptime       int          // ms of audio per packet we send (10..60); default 20
	// CN offers comfort noise (RFC 3389: CN/8000 as payload type 13);
	// what arrives of it is counted (ComfortNoise).
	CN  bool
	SDP []byte // if non-nil, sent verbatim as the offer (bad-SDP tests)
	// SDPPort, when non-zero, is the RTP port the offers name instead of
	// the socket's: a phone behind a NAT, whose packets come from another
	// port than its SDP says (strict RTP learning tests).
	SDPPort int
	// SDPAddr, when set, is the address the offers name instead of the
	// phone's: a phone behind a NAT names its private address, and its
	// packets come from another (strict RTP learning, rtp_socket tests).
	SDPAddr string
	// Silent starts the call with sending off: no RTP at all until
	// SetSending(true) (a phone that has not spoken yet).
	Silent bool
	// ToneAmplitude is the amplitude of each SetTone sinusoid; 0 -> 4000.
	ToneAmplitude float64
	// RefuseUpdate answers UPDATE with 501 (a phone without RFC 3311).
	RefuseUpdate bool
	// AuthUser and AuthPassword answer a 401/407 to the INVITE with
	// digest credentials (sipgo's client does the arithmetic); empty: a
	// challenge is a final answer.
	AuthUser, AuthPassword string
	// SRTP, when set, offers SDES-SRTP (RFC 4568, srtp.go); the media is
	// SRTP when the answer accepts one of the offered a=crypto lines.
	SRTP   *SRTP
	Logger *slog.Logger // default discards
}

// StatusError is a non-2xx final response to an INVITE (or another request
// sent inside the dialog).
type StatusError struct {
	Code   int
	Reason string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("phone: request rejected: %d %s", e.Code, e.Reason)
}

func (c *Config) setDefaults() error {
	if c.Server == "" {
		return fmt.Errorf("%w: Server is empty", ErrBadConfig)
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return fmt.Errorf("%w: Server %q: %w", ErrBadConfig, c.Server, err)
	}
	switch strings.ToLower(c.Transport) {
	case "", "udp":
		c.Transport = "udp"
	case "tcp":
		c.Transport = "tcp"
	case "tls":
		c.Transport = "tls"
		if c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
			return fmt.Errorf("%w: transport tls needs TLS with a certificate", ErrBadConfig)
		}
	default:
		return fmt.Errorf("%w: transport %q", ErrBadConfig, c.Transport)
	}
	if c.SIPS && c.Transport != "tls" {
		return fmt.Errorf("%w: SIPS needs transport tls", ErrBadConfig)
	}
	if c.User == "" {
		c.User = "conference"
	}
	if c.LocalIP != "" {
		if a, err := netip.ParseAddr(c.LocalIP); err != nil || !a.IsLoopback() {
			return fmt.Errorf("%w: LocalIP %q is not a loopback address", ErrBadConfig, c.LocalIP)
		}
	}
	if c.FromUser == "" {
		c.FromUser = "phone"
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []uint8{g711.PCMU, g711.PCMA}
	}
	switch {
	case c.DTMF == 0:
		c.DTMF = 101
	case c.DTMF < 0:
		c.DTMF = -1
	case c.DTMF < 96 || c.DTMF > 127:
		return fmt.Errorf("%w: telephone-event payload type %d is not dynamic", ErrBadConfig, c.DTMF)
	}
	if c.Ptime == 0 {
		c.Ptime = 20
	}
	if c.Ptime < 10 || c.Ptime > 60 {
		return fmt.Errorf("%w: ptime %d ms outside 10..60", ErrBadConfig, c.Ptime)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Phone is one call in progress. Always Close it.
type Phone struct {
	cfg Config

	reqMu sync.Mutex
	reqs  []*sip.Request
	log   *slog.Logger

	ua        *sipgo.UserAgent
	srv       *sipgo.Server
	cli       *sipgo.Client
	sigCloser io.Closer     // the UDP socket or TCP listener the UA serves on
	sigDone   chan struct{} // closed when the serve goroutine returned
	sigAddr   netip.AddrPort
	localIP   netip.Addr // 127.0.0.1, or ::1 when the server is on IPv6
	contact   sip.ContactHeader
	callID    string
	localTag  string

	dlg         *sipgo.DialogClientSession // caller side only
	sess        dialogSession              // the dialog in-dialog requests go through
	established atomic.Bool                // 2xx received and ACKed: in-dialog requests are ours to answer
	remoteTag   string                     // set before established
	remote      sip.Uri                    // remote target (Contact of the 2xx)

	sdpMu    sync.Mutex
	sdpOffer offer

	rtpConn   *net.UDPConn
	serverRTP atomic.Pointer[netip.AddrPort]
	codec     uint8 // fixed once the answer is parsed, before the sender starts
	dtmfPT    int   // telephone-event type to send, -1 if the answer has none

	// SRTP (srtp.go): what we offered, the contexts once the answer
	// accepted it (nil: plain RTP), and the packets that failed it.
	srtpOffered    []cryptoLine
	srtpSuite      string
	srtpDecided    atomic.Bool
	srtpTx, srtpRx atomic.Pointer[srtp.Context]
	rxUnauth       atomic.Uint64

	tx txState
	rx rxState

	done     chan struct{} // closed on BYE from the server
	doneOnce sync.Once
	ended    atomic.Bool // either side ended the dialog: stop sending media

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup // media goroutines
}

// dialogSession is what in-dialog requests need from a sipgo dialog; both
// the caller's DialogClientSession and the callee's DialogServerSession
// provide it, so Hangup, SendDTMF, Reinvite and SendRaw work on either.
type dialogSession interface {
	Do(ctx context.Context, req *sip.Request) (*sip.Response, error)
	WriteRequest(req *sip.Request) error
	WriteBye(ctx context.Context, bye *sip.Request) error
}

// Pending is an INVITE waiting for its final response.
type Pending struct {
	p *Phone

	cancelWait context.CancelFunc
	canceled   atomic.Bool
	finished   chan struct{} // closed when the INVITE has its outcome

	mu      sync.Mutex
	codes   []int
	changed chan struct{} // closed and replaced whenever codes grows

	// Outcome, valid after finished is closed.
	phone *Phone
	err   error
	final int
}

// Dial places a call and waits for its final response. A non-2xx answer
// returns a *StatusError. If ctx ends first, the INVITE is cancelled.
func Dial(ctx context.Context, cfg Config) (*Phone, error) {
	pd, err := DialNoWait(ctx, cfg)
	if err != nil {
		return nil, err
	}
	p, err := pd.Wait(ctx)
	if err != nil && ctx.Err() != nil {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pd.Cancel(cctx) //nolint:errcheck // the ctx error is the one to report
	}
	return p, err
}

// DialNoWait sends the INVITE and returns at once; the Pending tracks the
// responses.
func DialNoWait(ctx context.Context, cfg Config) (*Pending, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := newPhone(cfg, cfg.Logger.With("phone", cfg.FromUser))
	if err := p.setup(ctx); err != nil {
		p.Close()
		return nil, err
	}

	req, err := p.buildInvite()
	if err != nil {
		p.Close()
		return nil, err
	}
	dua := &sipgo.DialogUA{Client: p.cli, ContactHDR: p.contact}
	dlg, err := dua.WriteInvite(ctx, req)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("phone: send INVITE to %s: %w", cfg.Server, err)
	}
	p.dlg = dlg
	p.sess = dlg

	// Start listening before the answer so early media is recorded too.
	p.startReceiving()

	waitCtx, cancel := context.WithCancel(context.Background())
	pd := &Pending{
		p:          p,
		cancelWait: cancel,
		finished:   make(chan struct{}),
		changed:    make(chan struct{}),
	}
	go pd.run(waitCtx)
	return pd, nil
}

// newPhone builds a Phone with its media state but no sockets; both the
// caller (DialNoWait) and the callee (Callee) side start from it.
func newPhone(cfg Config, log *slog.Logger) *Phone {
	p := &Phone{
		cfg:     cfg,
		log:     log,
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
		sigDone: make(chan struct{}),
		dtmfPT:  -1,
	}
	p.tx.init()
	p.tx.on.Store(!cfg.Silent)
	p.rx.init(time.Now())
	return p
}

// startReceiving starts recording what arrives on the RTP socket.
func (p *Phone) startReceiving() {
	p.wg.Add(1)
	go p.receiveLoop()
}

// startSending starts the 20 ms (ptime) send loop towards ServerRTP.
func (p *Phone) startSending() {
	p.wg.Add(1)
	go p.sendLoop()
}

// setup opens the RTP socket and the SIP user agent.
// newUAServer makes a sipgo user agent on loopback (host) and a server on
// it, both logging to log; tlsConf (nil: none) is how it dials TLS. The UA
// is returned even when the server fails, so that the caller can close it.
func newUAServer(name string, host netip.Addr, tlsConf *tls.Config, log *slog.Logger) (*sipgo.UserAgent, *sipgo.Server, error) {
	opts := []sipgo.UserAgentOption{
		sipgo.WithUserAgent(name),
		sipgo.WithUserAgentHostname(host.String()),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(log)),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(log)),
	}
	if tlsConf != nil {
		opts = append(opts, sipgo.WithUserAgenTLSConfig(tlsConf))
	}
	ua, err := sipgo.NewUA(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("phone: %s user agent: %w", name, err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		return ua, nil, fmt.Errorf("phone: %s server: %w", name, err)
	}
	return ua, srv, nil
}

// uriHost is a host as sipgo keeps it in a sip.Uri: an IPv6 address in
// brackets (sip.Uri.HostPort joins host and port as they are).
func uriHost(h string) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return "[" + h + "]"
	}
	return h
}

// loopbackFor is the loopback address of the family of the server's host:
// ::1 for an IPv6 server, else 127.0.0.1.
func loopbackFor(server string) netip.Addr {
	host, _, _ := net.SplitHostPort(server)
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().Is6() {
		return netip.IPv6Loopback()
	}
	return netip.AddrFrom4([4]byte{127, 0, 0, 1})
}

func (p *Phone) setup(ctx context.Context) error {
	p.localIP = loopbackFor(p.cfg.Server)
	if p.cfg.LocalIP != "" {
		p.localIP = netip.MustParseAddr(p.cfg.LocalIP) // checked in Config.check
	}
	conn, err := listenEvenRTP(p.localIP)
	if err != nil {
		return err
	}
	p.rtpConn = conn

	ua, srv, err := newUAServer("webconf-test-phone", p.localIP, p.cfg.TLS, p.log)
	if ua != nil {
		p.ua = ua
	}
	if err != nil {
		return err
	}
	p.srv = srv
	srv.OnBye(p.onBye)
	srv.OnInvite(p.onReinvite)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	srv.OnInfo(p.onOK)
	srv.OnOptions(p.onOK)
	srv.OnNotify(p.onOK)
	srv.OnUpdate(p.onOK)

	var clientOpts []sipgo.ClientOption
	clientOpts = append(clientOpts, sipgo.WithClientLogger(p.log))
	switch p.cfg.Transport {
	case "udp":
		uc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.localIP, 0)))
		if err != nil {
			return fmt.Errorf("phone: listen SIP/UDP: %w", err)
		}
		p.sigCloser = uc
		p.sigAddr = uc.LocalAddr().(*net.UDPAddr).AddrPort()
		go func() {
			defer close(p.sigDone)
			srv.ServeUDP(uc) //nolint:errcheck // returns when Close closes uc
		}()
		// Send from the listening socket: requests then carry its port in
		// Via (RFC 3261 18.1.1), and the server sees one address per phone.
		clientOpts = append(clientOpts, sipgo.WithClientConnectionAddr(p.sigAddr.String()))
		if err := waitUDPServing(ctx, ua, p.sigAddr); err != nil {
			return err
		}
	case "tcp", "tls":
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(p.localIP, 0)))
		if err != nil {
			return fmt.Errorf("phone: listen SIP/%s: %w", p.cfg.Transport, err)
		}
		p.sigCloser = ln
		p.sigAddr = ln.Addr().(*net.TCPAddr).AddrPort()
		go func() {
			defer close(p.sigDone)
			if p.cfg.Transport == "tls" {
				srv.ServeTLS(tls.NewListener(ln, p.cfg.TLS)) //nolint:errcheck // returns when Close closes ln
				return
			}
			srv.ServeTCP(ln) //nolint:errcheck // returns when Close closes ln
		}()
		// Over TCP our requests go on a connection we dial; the server's
		// own requests come to the listener named in Contact (RFC 3261
		// 18.1.1: it opens a new connection if it has none to that address).
	}
	cli, err := sipgo.NewClient(ua, clientOpts...)
	if err != nil {
		return fmt.Errorf("phone: new client: %w", err)
	}
	p.cli = cli

	p.contact = sip.ContactHeader{Address: sip.Uri{
		Scheme: "sip",
		User:   p.cfg.FromUser,
		Host:   uriHost(p.localIP.String()),
		Port:   int(p.sigAddr.Port()),
	}}
	switch {
	case p.cfg.SIPS:
		p.contact.Address.Scheme = "sips"
	case p.cfg.Transport != "udp":
		p.contact.Address.UriParams = sip.NewParams()
		p.contact.Address.UriParams.Add("transport", p.cfg.Transport)
	}
	return nil
}

// waitUDPServing waits until sipgo has registered the listening socket in
// its connection pool; before that a request bound to the socket's address
// would make sipgo try to open a second socket on the same port.
func waitUDPServing(ctx context.Context, ua *sipgo.UserAgent, addr netip.AddrPort) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := ua.TransportLayer().GetConnection("udp", addr.String()); err == nil {
			c.TryClose() //nolint:errcheck // balances the reference Get took
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("phone: SIP/UDP listener did not start: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// listenEvenRTP opens a loopback UDP socket on an even port: RFC 3550
// section 11 puts RTP on even ports and some peers assume it.
func listenEvenRTP(ip netip.Addr) (*net.UDPConn, error) {
	var odd []*net.UDPConn
	defer func() {
		for _, c := range odd {
			c.Close()
		}
	}()
	for range 20 {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
		if err != nil {
			return nil, fmt.Errorf("phone: listen RTP: %w", err)
		}
		if c.LocalAddr().(*net.UDPAddr).Port%2 == 0 {
			return c, nil
		}
		odd = append(odd, c) // keep it open so the OS hands out another port
	}
	return nil, fmt.Errorf("phone: listen RTP: no even port in 20 attempts")
}

func randUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

func (p *Phone) buildInvite() (*sip.Request, error) {
	host, portStr, _ := net.SplitHostPort(p.cfg.Server)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("%w: server port %q: %w", ErrBadConfig, portStr, err)
	}
	host = uriHost(host)
	recipient := sip.Uri{Scheme: "sip", User: p.cfg.User, Host: host, Port: port}
	switch {
	case p.cfg.SIPS:
		recipient.Scheme = "sips"
	case p.cfg.Transport != "udp":
		recipient.UriParams = sip.NewParams()
		recipient.UriParams.Add("transport", p.cfg.Transport)
	}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport(strings.ToUpper(p.cfg.Transport))

	p.localTag = sip.GenerateTagN(16)
	from := &sip.FromHeader{
		DisplayName: p.cfg.DisplayName,
		Address:     sip.Uri{Scheme: "sip", User: p.cfg.FromUser, Host: uriHost(p.localIP.String())},
		Params:      sip.NewParams(),
	}
	from.Params.Add("tag", p.localTag)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.User, Host: host, Port: port}}
	p.callID = rand.Text() + "@" + p.localIP.String()
	callID := sip.CallIDHeader(p.callID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(sip.HeaderClone(&p.contact))
	req.AppendHeader(sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, INFO, OPTIONS, NOTIFY, UPDATE"))
	for _, h := range p.cfg.Headers {
		req.AppendHeader(sip.HeaderClone(h))
	}

	body := p.cfg.SDP
	if s := p.cfg.SRTP; s != nil && len(s.Lines) == 0 {
		suites := s.Suites
		if len(suites) == 0 {
			suites = []string{SuiteAES80}
		}
		for i, suite := range suites {
			p.srtpOffered = append(p.srtpOffered, newCryptoLine(i+1, suite))
		}
	}
	if body == nil {
		p.sdpMu.Lock()
		p.sdpOffer = p.newOffer(1)
		body = p.sdpOffer.marshal()
		p.sdpMu.Unlock()
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	return req, nil
}

// newOffer is the phone's own SDP for its RTP socket and Config.
func (p *Phone) newOffer(version uint64) offer {
	return offer{
		sessID:  randUint64() >> 2, // keep it readable and inside int64
		version: version,
		port:    cmp.Or(p.cfg.SDPPort, p.rtpConn.LocalAddr().(*net.UDPAddr).Port),
		codecs:  p.cfg.Codecs,
		dtmfPT:  p.cfg.DTMF,
		cn:      p.cfg.CN,
		ptime:   p.cfg.Ptime,
		addr:    p.offerAddr(),
		proto:   p.offerProto(),
		crypto:  p.offerCrypto(),
	}
}

// offerAddr is the address the offers name (Config.SDPAddr).
func (p *Phone) offerAddr() netip.Addr {
	if a, err := netip.ParseAddr(p.cfg.SDPAddr); err == nil {
		return a
	}
	return p.localIP
}

func (p *Phone) offerProto() string {
	if p.cfg.SRTP != nil && p.cfg.SRTP.SAVP {
		return "RTP/SAVP"
	}
	return "RTP/AVP"
}

// offerCrypto is the phone's a=crypto values: the verbatim lines, or
// those of the keys offered (the same in every offer of the call).
func (p *Phone) offerCrypto() []string {
	if p.cfg.SRTP == nil {
		return nil
	}
	if len(p.cfg.SRTP.Lines) > 0 {
		return p.cfg.SRTP.Lines
	}
	var v []string
	for _, c := range p.srtpOffered {
		v = append(v, c.value())
	}
	return v
}

// run waits for the INVITE's outcome and completes the call setup.
func (pd *Pending) run(waitCtx context.Context) {
	defer close(pd.finished)
	p := pd.p
	err := p.dlg.WaitAnswer(waitCtx, sipgo.AnswerOptions{
		Username: p.cfg.AuthUser,
		Password: p.cfg.AuthPassword,
		OnResponse: func(res *sip.Response) error {
			pd.record(res.StatusCode)
			return nil
		},
	})
	res := p.dlg.InviteResponse
	if res != nil && !res.IsProvisional() {
		pd.final = res.StatusCode
		pd.recordFinal(res.StatusCode)
	}

	switch {
	case err == nil && !pd.canceled.Load():
		ph, err := p.established2xx()
		if err != nil {
			p.Close()
			pd.err = err
			return
		}
		pd.phone = ph
	case res != nil && res.IsSuccess():
		// The 2xx crossed our CANCEL: the call is up and must be taken
		// down with ACK then BYE (RFC 3261 section 15).
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := p.dlg.Ack(ctx); err == nil {
			p.dlg.Bye(ctx) //nolint:errcheck // best effort
		}
		cancel()
		p.Close()
		pd.err = context.Canceled
	case res != nil && !res.IsProvisional():
		p.Close()
		pd.err = &StatusError{Code: res.StatusCode, Reason: res.Reason}
	default:
		p.Close()
		if err == nil {
			err = ErrNoFinalResponse
		}
		pd.err = fmt.Errorf("phone: INVITE: %w", err)
	}
}

func (pd *Pending) record(code int) {
	pd.mu.Lock()
	pd.codes = append(pd.codes, code)
	close(pd.changed)
	pd.changed = make(chan struct{})
	pd.mu.Unlock()
}

// recordFinal records a final code once: WaitAnswer reports the final
// response through OnResponse except when it arrived during a CANCEL.
func (pd *Pending) recordFinal(code int) {
	pd.mu.Lock()
	seen := len(pd.codes) > 0 && pd.codes[len(pd.codes)-1] == code
	pd.mu.Unlock()
	if !seen {
		pd.record(code)
	}
}

// Responses returns the INVITE response codes received so far, in order.
func (pd *Pending) Responses() []int {
	pd.mu.Lock()
	defer pd.mu.Unlock()
	return slices.Clone(pd.codes)
}

// WaitCode waits until a response with code has been received.
func (pd *Pending) WaitCode(ctx context.Context, code int) error {
	for {
		pd.mu.Lock()
		seen := slices.Contains(pd.codes, code)
		changed := pd.changed
		pd.mu.Unlock()
		if seen {
			return nil
		}
		select {
		case <-changed:
		case <-pd.finished:
			if slices.Contains(pd.Responses(), code) {
				return nil
			}
			return fmt.Errorf("phone: waiting for %d, got %v: %w", code, pd.Responses(), ErrNotSeen)
		case <-ctx.Done():
			return fmt.Errorf("phone: waiting for %d, got %v: %w", code, pd.Responses(), ctx.Err())
		}
	}
}

// Wait waits for the final response: the established call on 2xx, a
// *StatusError otherwise. If ctx ends first the INVITE stays pending.
func (pd *Pending) Wait(ctx context.Context) (*Phone, error) {
	select {
	case <-pd.finished:
		return pd.phone, pd.err
	case <-ctx.Done():
		return nil, fmt.Errorf("phone: waiting for answer: %w", ctx.Err())
	}
}

// Cancel sends CANCEL (RFC 3261 section 9.1) once a provisional response
// has arrived and returns the INVITE's final status, normally 487. If the
// server answered 2xx first, the call is ACKed and hung up, and 200 is
// returned.
func (pd *Pending) Cancel(ctx context.Context) (int, error) {
	pd.canceled.Store(true)
	pd.cancelWait()
	select {
	case <-pd.finished:
	case <-ctx.Done():
		return 0, fmt.Errorf("phone: cancel: %w", ctx.Err())
	}
	if pd.final == 0 {
		return 0, fmt.Errorf("phone: cancel: %w", ErrNoFinalResponse)
	}
	return pd.final, nil
}

// Close abandons the INVITE (cancelling it if it is still pending) and
// releases the phone; it waits up to a few seconds for the CANCEL exchange.
func (pd *Pending) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pd.Cancel(ctx) //nolint:errcheck // closing anyway
	if pd.phone != nil {
		pd.phone.Close()
	}
	pd.p.Close()
}

// established2xx ACKs the 2xx, reads the answer and starts sending media.
func (p *Phone) established2xx() (*Phone, error) {
	res := p.dlg.InviteResponse
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if to := res.To(); to != nil {
		p.remoteTag, _ = to.Params.Get("tag")
	}
	p.remote = p.dlg.InviteRequest.Recipient
	if c := res.Contact(); c != nil {
		p.remote = *c.Address.Clone()
	}
	// Everything in-dialog handlers read is set before established is.
	ans, aerr := parseAnswer(res.Body(), p.cfg.Codecs)
	if aerr == nil {
		aerr = p.answerSRTP(ans)
	}
	if aerr == nil {
		p.codec = ans.codec
		p.dtmfPT = ans.dtmfPT
		if len(ans.crypto) == 1 {
			p.srtpSuite = ans.crypto[0].suite
		}
		p.serverRTP.Store(&ans.rtp)
	}
	// Ours before the ACK leaves: a server may send BYE the moment it has
	// the ACK, and that BYE must not be answered 481.
	p.established.Store(true)
	// ACK even an unusable answer, so the server's dialog is confirmed and
	// the BYE below is valid (RFC 3261 section 13.2.2.4).
	if err := p.dlg.Ack(ctx); err != nil {
		return nil, fmt.Errorf("phone: ACK: %w", err)
	}
	if aerr != nil {
		p.Hangup(ctx) //nolint:errcheck // the answer error is the one to report
		return nil, aerr
	}
	p.startSending()
	return p, nil
}

// Remote is the remote target: the Contact of the server's 2xx (a
// callee: of the server's INVITE).
func (p *Phone) Remote() sip.Uri { return *p.remote.Clone() }

// Answer is the final response to a caller's INVITE (nil for a callee).
func (p *Phone) Answer() *sip.Response {
	if p.dlg == nil || p.dlg.InviteResponse == nil {
		return nil
	}
	return p.dlg.InviteResponse.Clone()
}

// AnswerSDP is the SDP of the 2xx that answered the phone's INVITE (nil
// for a callee's Phone).
func (p *Phone) AnswerSDP() []byte {
	if p.dlg == nil || p.dlg.InviteResponse == nil {
		return nil
	}
	return p.dlg.InviteResponse.Body()
}

// Codec is the audio payload type the server chose.
func (p *Phone) Codec() uint8 { return p.codec }

// CallID is the dialog's Call-ID.
func (p *Phone) CallID() string { return p.callID }

// LocalTag is our From-tag.
func (p *Phone) LocalTag() string { return p.localTag }

// RemoteTag is the server's To-tag.
func (p *Phone) RemoteTag() string { return p.remoteTag }

// Contact is the address the phone listens on for in-dialog requests.
func (p *Phone) Contact() sip.Uri { return p.contact.Address }

// RTPConn is the phone's RTP socket, for tests that inject packets.
func (p *Phone) RTPConn() *net.UDPConn { return p.rtpConn }

// ServerRTP is where the phone sends RTP (from the latest SDP answer).
func (p *Phone) ServerRTP() *net.UDPAddr {
	ap := p.serverRTP.Load()
	if ap == nil {
		return nil
	}
	return net.UDPAddrFromAddrPort(*ap)
}

// Done is closed when the server ended the call with BYE.
func (p *Phone) Done() <-chan struct{} { return p.done }

// inDialog builds a request to the remote target; the dialog session fills
// From, To, Call-ID, CSeq and Contact.
func (p *Phone) inDialog(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, *p.remote.Clone())
	p.bindLocal(req)
	return req
}

// bindLocal makes a UDP request leave from the listening socket.
func (p *Phone) bindLocal(req *sip.Request) {
	if p.cfg.Transport == "udp" {
		req.Laddr = sip.Addr{
			IP:       net.IP(p.sigAddr.Addr().AsSlice()),
			Port:     int(p.sigAddr.Port()),
			Hostname: p.sigAddr.Addr().String(),
		}
	}
}

func (p *Phone) live() error {
	if !p.established.Load() {
		return fmt.Errorf("phone: no dialog: %w", ErrCallEnded)
	}
	if p.ended.Load() {
		return ErrCallEnded
	}
	return nil
}

// SendRaw sends a request inside the dialog and returns its final
// response. Headers the request lacks (From, To, Call-ID, CSeq, Via,
// Contact) are filled from the dialog; an empty Request-URI host means the
// remote target. Not for INVITE: use Reinvite, which also ACKs.
func (p *Phone) SendRaw(ctx context.Context, req *sip.Request) (*sip.Response, error) {
	if !p.established.Load() {
		return nil, fmt.Errorf("phone: no dialog: %w", ErrCallEnded)
	}
	if req.Recipient.Host == "" {
		req.Recipient = *p.remote.Clone()
	}
	if req.Laddr.IP == nil {
		p.bindLocal(req)
	}
	res, err := p.sess.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("phone: %s: %w", req.Method, err)
	}
	return res, nil
}

// Reinvite sends a re-INVITE with our SDP and the given direction
// ("sendonly" holds, "sendrecv" resumes; RFC 3264 section 8.4), ACKs the
// 2xx and applies the new answer's RTP address.
func (p *Phone) Reinvite(ctx context.Context, direction string) ([]byte, error) {
	if err := p.live(); err != nil {
		return nil, err
	}
	p.sdpMu.Lock()
	p.sdpOffer.version++      // RFC 3264 section 8: a changed offer bumps o= version
	if p.sdpOffer.port == 0 { // the first offer was verbatim Config.SDP
		p.sdpOffer = p.newOffer(2)
	}
	p.sdpOffer.direction = direction
	body := p.sdpOffer.marshal()
	p.sdpMu.Unlock()

	req := p.inDialog(sip.INVITE)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(body)
	res, err := p.sess.Do(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("phone: re-INVITE: %w", err)
	}
	if !res.IsSuccess() {
		// The transaction layer ACKs non-2xx itself (RFC 3261 17.1.1.3).
		return nil, &StatusError{Code: res.StatusCode, Reason: res.Reason}
	}
	// The ACK of a 2xx is the UA's job and reuses the INVITE's CSeq
	// (RFC 3261 section 13.2.2.4); the dialog session fills it in.
	ack := p.inDialog(sip.ACK)
	if err := p.sess.WriteRequest(ack); err != nil {
		return nil, fmt.Errorf("phone: ACK re-INVITE: %w", err)
	}
	ans, err := parseAnswer(res.Body(), p.cfg.Codecs)
	if err != nil && !errors.Is(err, ErrNoCodec) {
		return res.Body(), err
	}
	if ans.rtp.IsValid() {
		p.serverRTP.Store(&ans.rtp)
	}
	return res.Body(), nil
}

// Hangup sends BYE and waits for its 200.
func (p *Phone) Hangup(ctx context.Context) error {
	if err := p.live(); err != nil {
		return err
	}
	p.ended.Store(true)
	bye := p.inDialog(sip.BYE)
	if err := p.sess.WriteBye(ctx, bye); err != nil {
		var rerr *sipgo.ErrDialogResponse
		var verr sipgo.ErrDialogResponse
		switch {
		case errors.As(err, &rerr):
			return &StatusError{Code: rerr.Res.StatusCode, Reason: rerr.Res.Reason}
		case errors.As(err, &verr):
			return &StatusError{Code: verr.Res.StatusCode, Reason: verr.Res.Reason}
		}
		return fmt.Errorf("phone: BYE: %w", err)
	}
	return nil
}

// Close stops the media goroutines and closes all sockets. It does not
// send BYE: a test that wants the server to see a hangup calls Hangup; one
// that wants a vanished caller just closes.
func (p *Phone) Close() {
	p.closeOnce.Do(func() {
		close(p.stop)
		p.ended.Store(true)
		if p.rtpConn != nil {
			p.rtpConn.Close()
		}
		p.wg.Wait()
		if p.ua != nil {
			p.ua.Close()
		}
		if p.sigCloser != nil {
			p.sigCloser.Close()
			<-p.sigDone
		}
	})
}

// ours reports whether an incoming request belongs to our dialog.
func (p *Phone) ours(req *sip.Request) bool {
	if !p.established.Load() {
		return false
	}
	cid := req.CallID()
	return cid != nil && string(*cid) == p.callID
}

func (p *Phone) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, body []byte, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, body)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		p.log.Warn("respond failed", "method", req.Method, "code", code, "error", err)
	}
}

func (p *Phone) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if !p.ours(req) {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	p.record(req)
	p.ended.Store(true)
	p.respond(req, tx, 200, "OK", nil)
	p.doneOnce.Do(func() { close(p.done) })
}

func (p *Phone) onOK(req *sip.Request, tx sip.ServerTransaction) {
	if !p.ours(req) && req.Method != sip.OPTIONS {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	p.record(req)
	if req.Method == sip.UPDATE && p.cfg.RefuseUpdate {
		p.respond(req, tx, 501, "Not Implemented", nil)
		return
	}
	p.respond(req, tx, 200, "OK", nil)
}

// record remembers an in-dialog request the server sent us.
func (p *Phone) record(req *sip.Request) {
	p.reqMu.Lock()
	p.reqs = append(p.reqs, req.Clone())
	p.reqMu.Unlock()
}

// Requests returns the in-dialog requests (BYE, re-INVITE, UPDATE, INFO,
// OPTIONS, NOTIFY) the server has sent to this phone, in order.
func (p *Phone) Requests() []*sip.Request {
	p.reqMu.Lock()
	defer p.reqMu.Unlock()
	return append([]*sip.Request(nil), p.reqs...)
}

// ByeReason is the Reason header (RFC 3326) of the last BYE from the
// server that carried one, or "" if none did.
func (p *Phone) ByeReason() string {
	var reason string
	for _, r := range p.Requests() {
		if r.Method == "BYE" {
			if h := r.GetHeader("Reason"); h != nil {
				reason = h.Value()
			}
		}
	}
	return reason
}

// onReinvite accepts a re-INVITE from the server, follows its new RTP
// address and answers with our current SDP.
func (p *Phone) onReinvite(req *sip.Request, tx sip.ServerTransaction) {
	if !p.ours(req) {
		p.respond(req, tx, 481, "Call/Transaction Does Not Exist", nil)
		return
	}
	p.record(req)
	if body := req.Body(); len(body) > 0 {
		if ans, err := parseAnswer(body, p.cfg.Codecs); err == nil || errors.Is(err, ErrNoCodec) {
			if ans.rtp.IsValid() {
				p.serverRTP.Store(&ans.rtp)
			}
		}
	}
	p.sdpMu.Lock()
	o := p.sdpOffer
	if o.port == 0 {
		o = p.newOffer(1)
	}
	// Answer with the one codec in use (RFC 3264 section 6.1).
	o.codecs = []uint8{p.codec}
	body := o.marshal()
	p.sdpMu.Unlock()
	p.respond(req, tx, 200, "OK", body, sip.HeaderClone(&p.contact), sip.NewHeader("Content-Type", "application/sdp"))
}
