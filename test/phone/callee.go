package phone

// The callee side: a UAS (RFC 3261 section 13.3) that the conference
// server's dial-out calls. It challenges with digest authentication like a
// SIP provider would (RFC 3261 section 22, RFC 7616 for SHA-256), rings,
// plays early media, rejects or answers, and hands every answered call to
// the test as an ordinary *Phone, so the same tone, level and DTMF tools
// work in both directions.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
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
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/dsp/g711"
)

// ErrClosed is returned by the Callee's waits once it has been closed.
var ErrClosed = errors.New("phone: callee closed")

// Auth makes the Callee challenge INVITEs with digest authentication.
type Auth struct {
	Realm, User, Password string
	// Proxy challenges with 407 Proxy-Authenticate instead of 401
	// WWW-Authenticate (RFC 3261 section 22.3).
	Proxy bool
	// Algorithm is "" or "MD5" (both MD5; "" leaves the parameter out of
	// the challenge, as RFC 2617 allows) or "SHA-256" (RFC 7616).
	Algorithm string
	// QOP offers qop="auth"; the credentials must then carry qop, nc and
	// cnonce (RFC 7616 section 3.4).
	QOP bool
	// Always challenges every INVITE, even one with valid credentials: a
	// provider that refuses the password.
	Always bool
}

// CalleeConfig describes how the Callee answers. The zero value answers
// every INVITE at once with no authentication.
type CalleeConfig struct {
	Transport string // "udp" (default) or "tls"
	// TLS is required with Transport "tls": its Certificates serve the
	// Callee's TLS listener (and its RootCAs verify what it dials).
	TLS  *tls.Config
	Auth *Auth // nil: no challenge
	// Ring, after an (authorised) INVITE, sends 180 Ringing and waits this
	// long before the final response; 0 answers at once.
	Ring time.Duration
	// EarlyMedia sends 183 Session Progress with the SDP answer instead of
	// 180 and streams media during the ring (RFC 3960 gateway model): set
	// the tone on the Phone EarlyPhone returns. It implies a provisional
	// response even when Ring is 0.
	EarlyMedia bool
	// Reject, if non-zero, is the final status sent after the ring
	// instead of 200 (e.g. 486 Busy Here).
	Reject int
	// NoAnswer rings until the INVITE is cancelled (then 487).
	NoAnswer bool
	// Codecs are the audio payload types accepted; default {PCMU, PCMA}.
	// The answer picks the first offered one that is accepted (the
	// offerer's preference, RFC 3264 section 6.1).
	Codecs []uint8
	// SRTP, when set, accepts an offered a=crypto (the first line whose
	// suite is in SRTP.Suites, any of ours if empty) with our own key, the
	// same tag and the offer's profile, and does SRTP media. Without it,
	// a=crypto on RTP/AVP is ignored (plain answer) and RTP/SAVP is 488.
	SRTP *SRTP
	// OKHeaders are added to the 200 OK of every answered INVITE (e.g.
	// Session-Expires with refresher=uac: a callee that wants the server
	// to refresh the session, RFC 4028).
	OKHeaders     []sip.Header
	ToneAmplitude float64      // of SetTone on the answered Phones; 0 -> 4000
	Logger        *slog.Logger // default discards
}

func (c *CalleeConfig) setDefaults() error {
	switch strings.ToLower(c.Transport) {
	case "", "udp":
		c.Transport = "udp"
	case "tls":
		c.Transport = "tls"
		if c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
			return fmt.Errorf("%w: callee transport tls needs TLS with a certificate", ErrBadConfig)
		}
	default:
		return fmt.Errorf("%w: callee transport %q (udp or tls)", ErrBadConfig, c.Transport)
	}
	if len(c.Codecs) == 0 {
		c.Codecs = []uint8{g711.PCMU, g711.PCMA}
	}
	if a := c.Auth; a != nil {
		switch strings.ToUpper(a.Algorithm) {
		case "", "MD5", "SHA-256":
		default:
			return fmt.Errorf("%w: digest algorithm %q", ErrBadConfig, a.Algorithm)
		}
	}
	if c.Reject != 0 && (c.Reject < 300 || c.Reject > 699) {
		return fmt.Errorf("%w: reject status %d is not a final error", ErrBadConfig, c.Reject)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Callee is a SIP user agent server on 127.0.0.1 that the conference
// server can dial out to. Always Close it.
type Callee struct {
	cfg CalleeConfig
	log *slog.Logger

	ua        *sipgo.UserAgent
	dua       *sipgo.DialogUA
	conn      io.Closer // the UDP socket or the TLS listener
	addr      netip.AddrPort
	contact   sip.ContactHeader
	serveDone chan struct{}
	stop      chan struct{} // closed by Close: ringing and ACK waits end

	watch                    // of the state below
	handlers  sync.WaitGroup // request handlers inside the Callee
	invites   []*sip.Request
	responses []int
	nonces    map[string]*digest.Challenge // issued, not yet used
	calls     map[string]*calleeCall       // by Call-ID
	phones    []*Phone                     // every Phone made, closed by Close
	early     []*Phone                     // EarlyPhone queue
	accepted  []*Phone                     // Accept queue
	cancels   int                          // CANCELs seen
	cancelsRd int                          // CANCELs consumed by WaitCancel
}

// calleeCall is one INVITE the Callee has taken past authentication.
type calleeCall struct {
	phone    *Phone
	dlg      *sipgo.DialogServerSession
	cseq     uint32        // of the INVITE, which its ACK repeats
	acked    chan struct{} // closed on the ACK of our 2xx
	ackOnce  sync.Once
	ackedReq *sip.Request // the ACK, set before acked is closed
}

func (cc *calleeCall) ack(req *sip.Request) {
	cc.ackOnce.Do(func() {
		cc.ackedReq = req
		close(cc.acked)
	})
}

// Listen starts a Callee on 127.0.0.1 with a free UDP port.
func Listen(ctx context.Context, cfg CalleeConfig) (*Callee, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	c := &Callee{
		cfg:       cfg,
		log:       cfg.Logger.With("role", "callee"),
		serveDone: make(chan struct{}),
		stop:      make(chan struct{}),
		watch:     newWatch(),
		nonces:    make(map[string]*digest.Challenge),
		calls:     make(map[string]*calleeCall),
	}
	if err := c.setup(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Callee) setup(ctx context.Context) error {
	loop := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	ua, srv, err := newUAServer("webconf-test-callee", loop, c.cfg.TLS, c.log)
	if ua != nil {
		c.ua = ua
	}
	if err != nil {
		return err
	}
	// Handlers are registered before serving: sipgo's handler map is not
	// safe to change while requests arrive.
	srv.OnInvite(c.onInvite)
	srv.OnAck(c.onAck)
	srv.OnBye(c.inDialog((*Phone).onBye))
	srv.OnInfo(c.inDialog((*Phone).onOK))
	srv.OnOptions(c.inDialog((*Phone).onOK))
	srv.OnNotify(c.inDialog((*Phone).onOK))
	srv.OnUpdate(c.inDialog((*Phone).onOK))
	// A CANCEL that matches a pending INVITE is answered by the
	// transaction layer (200, then 487 to the INVITE); one that reaches
	// the handler matched nothing (RFC 3261 section 9.2).
	srv.OnCancel(func(req *sip.Request, tx sip.ServerTransaction) {
		c.reply(req, tx, 481, "Call/Transaction Does Not Exist")
	})

	if c.cfg.Transport == "tls" {
		ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(loop, 0)))
		if err != nil {
			return fmt.Errorf("phone: callee listen SIP/TLS: %w", err)
		}
		c.conn = ln
		c.addr = ln.Addr().(*net.TCPAddr).AddrPort()
		go func() {
			defer close(c.serveDone)
			srv.ServeTLS(tls.NewListener(ln, c.cfg.TLS)) //nolint:errcheck // returns when Close closes ln
		}()
		// Over TLS the server's requests come on the connection it opened.
		cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(c.log))
		if err != nil {
			return fmt.Errorf("phone: callee client: %w", err)
		}
		c.contact = sip.ContactHeader{Address: sip.Uri{
			Scheme: "sip", User: "callee", Host: "127.0.0.1", Port: int(c.addr.Port()),
			UriParams: sip.NewParams(),
		}}
		c.contact.Address.UriParams.Add("transport", "tls")
		c.dua = &sipgo.DialogUA{Client: cli, ContactHDR: c.contact}
		return nil
	}
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return fmt.Errorf("phone: callee listen SIP/UDP: %w", err)
	}
	c.conn = uc
	c.addr = uc.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		defer close(c.serveDone)
		srv.ServeUDP(uc) //nolint:errcheck // returns when Close closes uc
	}()
	// Our requests (BYE, re-INVITE, INFO) leave from the listening socket,
	// so the server sees one symmetric address (RFC 3261 18.1.1).
	cli, err := sipgo.NewClient(ua, sipgo.WithClientLogger(c.log), sipgo.WithClientConnectionAddr(c.addr.String()))
	if err != nil {
		return fmt.Errorf("phone: callee client: %w", err)
	}
	c.contact = sip.ContactHeader{Address: sip.Uri{
		Scheme: "sip", User: "callee", Host: "127.0.0.1", Port: int(c.addr.Port()),
	}}
	c.dua = &sipgo.DialogUA{Client: cli, ContactHDR: c.contact}
	return waitUDPServing(ctx, ua, c.addr)
}

// Addr is the SIP address to dial: "127.0.0.1:port" (over TLS, the TLS
// listener's; dial it with ";transport=tls").
func (c *Callee) Addr() string { return c.addr.String() }

// Invites returns a clone of every dialog-creating INVITE received, in
// order (re-INVITEs and retransmissions excluded).
func (c *Callee) Invites() []*sip.Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*sip.Request, len(c.invites))
	for i, r := range c.invites {
		out[i] = r.Clone()
	}
	return out
}

// Responses returns the status codes sent to those INVITEs, in order:
// challenges, 180/183, final responses, and the 487 of a CANCEL.
func (c *Callee) Responses() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.responses)
}

// WaitInvites waits until n INVITEs have arrived and returns them.
func (c *Callee) WaitInvites(ctx context.Context, n int) ([]*sip.Request, error) {
	err := c.wait(ctx, fmt.Sprintf("%d INVITEs", n), func() bool { return len(c.invites) >= n })
	if err != nil {
		return nil, err
	}
	return c.Invites(), nil
}

// Accept returns the next call that was answered 200 and ACKed. The
// Phone's whole API works on it; Hangup sends our BYE, Done closes on the
// server's BYE. Closing the Callee closes it too.
func (c *Callee) Accept(ctx context.Context) (*Phone, error) {
	var p *Phone
	err := c.wait(ctx, "an answered call", func() bool {
		if len(c.accepted) == 0 {
			return false
		}
		p, c.accepted = c.accepted[0], c.accepted[1:]
		return true
	})
	return p, err
}

// EarlyPhone returns the next call streaming early media (EarlyMedia):
// SetTone on it is what the server hears during the ring. If the call is
// answered, Accept returns the same Phone; if it is cancelled, its Done
// closes.
func (c *Callee) EarlyPhone(ctx context.Context) (*Phone, error) {
	var p *Phone
	err := c.wait(ctx, "an early-media call", func() bool {
		if len(c.early) == 0 {
			return false
		}
		p, c.early = c.early[0], c.early[1:]
		return true
	})
	return p, err
}

// WaitCancel waits for the next CANCEL of a ringing call; when it returns
// the 487 to the INVITE has been sent.
func (c *Callee) WaitCancel(ctx context.Context) error {
	return c.wait(ctx, "a CANCEL", func() bool {
		if c.cancels == c.cancelsRd {
			return false
		}
		c.cancelsRd++
		return true
	})
}

// wait waits until cond, called with c.mu held, is true.
func (c *Callee) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, closed, ch := cond(), c.closed, c.changed
		c.mu.Unlock()
		switch {
		case ok:
			return nil
		case closed:
			return fmt.Errorf("phone: waiting for %s: %w", what, ErrClosed)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("phone: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// update changes the recorded state and wakes the waiters.
func (c *Callee) update(f func()) {
	c.mu.Lock()
	f()
	c.notify()
	c.mu.Unlock()
}

// Close ends every call without signalling (no BYE, no final response),
// stops the SIP server and waits for all goroutines.
func (c *Callee) Close() {
	c.mu.Lock()
	if !c.shut() {
		c.mu.Unlock()
		return
	}
	close(c.stop)
	c.mu.Unlock()

	c.handlers.Wait()
	c.mu.Lock()
	phones := slices.Clone(c.phones)
	c.mu.Unlock()
	for _, p := range phones {
		p.Close()
	}
	if c.ua != nil {
		c.ua.Close()
	}
	if c.conn != nil {
		c.conn.Close()
		<-c.serveDone
	}
}

// enter admits a request handler unless the Callee is closing; Close
// waits for the admitted ones.
func (c *Callee) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.handlers.Add(1)
	return true
}

func (c *Callee) reply(req *sip.Request, tx sip.ServerTransaction, code int, reason string) {
	if err := tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil)); err != nil {
		c.log.Debug("respond failed", "method", req.Method, "code", code, "error", err)
	}
}

// respondInvite sends a response to a dialog-creating INVITE and records
// its code first, so Responses is in wire order.
func (c *Callee) respondInvite(tx sip.ServerTransaction, res *sip.Response) error {
	c.update(func() { c.responses = append(c.responses, res.StatusCode) })
	if err := tx.Respond(res); err != nil {
		// Not sent (typically a CANCEL got there first): unrecord it.
		c.update(func() {
			for i := len(c.responses) - 1; i >= 0; i-- {
				if c.responses[i] == res.StatusCode {
					c.responses = slices.Delete(c.responses, i, i+1)
					break
				}
			}
		})
		return fmt.Errorf("phone: callee %d: %w", res.StatusCode, err)
	}
	return nil
}

// lookup finds the call an in-dialog request belongs to: its Call-ID and
// our To-tag.
func (c *Callee) lookup(req *sip.Request) *calleeCall {
	cid := req.CallID()
	if cid == nil {
		return nil
	}
	c.mu.Lock()
	cc := c.calls[string(*cid)]
	c.mu.Unlock()
	if cc == nil {
		return nil
	}
	if to := req.To(); to != nil {
		if tag, _ := to.Params.Get("tag"); tag != cc.phone.localTag {
			return nil
		}
	}
	return cc
}

// inDialog routes a request inside a dialog to its Phone, which answers
// it exactly as on the caller side.
func (c *Callee) inDialog(h func(*Phone, *sip.Request, sip.ServerTransaction)) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if !c.enter() {
			c.reply(req, tx, 503, "Service Unavailable")
			return
		}
		defer c.handlers.Done()
		cc := c.lookup(req)
		switch {
		case cc != nil:
			h(cc.phone, req, tx)
		case req.Method == sip.OPTIONS:
			c.reply(req, tx, 200, "OK") // a keep-alive ping outside any dialog
		default:
			c.reply(req, tx, 481, "Call/Transaction Does Not Exist")
		}
	}
}

// onAck confirms the dialog. The ACK of a 2xx is its own transaction
// (RFC 3261 section 13.2.2.4), so it reaches this handler; ACKs of our
// non-2xx responses are absorbed by the transaction layer.
func (c *Callee) onAck(req *sip.Request, tx sip.ServerTransaction) {
	cc := c.lookup(req)
	if cc == nil {
		return
	}
	if cseq := req.CSeq(); cseq != nil && cseq.SeqNo == cc.cseq {
		cc.ack(req)
	}
	// Anything else is the ACK of a re-INVITE's 2xx: nothing to do.
}

func (c *Callee) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	if !c.enter() {
		c.reply(req, tx, 503, "Service Unavailable")
		return
	}
	defer c.handlers.Done()
	if to := req.To(); to != nil && to.Params.Has("tag") {
		// A re-INVITE (RFC 3261 section 14.2).
		if cc := c.lookup(req); cc != nil {
			cc.phone.onReinvite(req, tx)
		} else {
			c.reply(req, tx, 481, "Call/Transaction Does Not Exist")
		}
		return
	}
	c.update(func() { c.invites = append(c.invites, req.Clone()) })

	if a := c.cfg.Auth; a != nil && (a.Always || !c.authorised(req)) {
		if err := c.challenge(req, tx); err != nil {
			c.log.Warn("challenge failed", "error", err)
		}
		return
	}
	if err := c.handleCall(req, tx); err != nil {
		c.log.Warn("call failed", "error", err)
	}
}

// ---------------------------------------------------------------------------
// Digest authentication.

func (a *Auth) headers() (challenge, credentials string, code int, reason string) {
	if a.Proxy {
		return "Proxy-Authenticate", "Proxy-Authorization", sip.StatusProxyAuthRequired, "Proxy Authentication Required"
	}
	return "WWW-Authenticate", "Authorization", sip.StatusUnauthorized, "Unauthorized"
}

// challenge answers 401/407 with a fresh nonce (RFC 3261 section 22.1).
func (c *Callee) challenge(req *sip.Request, tx sip.ServerTransaction) error {
	a := c.cfg.Auth
	chal := &digest.Challenge{
		Realm:     a.Realm,
		Nonce:     rand.Text(),
		Opaque:    rand.Text(),
		Algorithm: strings.ToUpper(a.Algorithm),
	}
	if a.QOP {
		chal.QOP = []string{"auth"}
	}
	c.mu.Lock()
	c.nonces[chal.Nonce] = chal
	c.mu.Unlock()
	hname, _, code, reason := a.headers()
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	res.AppendHeader(sip.NewHeader(hname, chal.String()))
	return c.respondInvite(tx, res)
}

// authorised reports whether req carries valid credentials for a nonce we
// issued. Each nonce is good for one INVITE: whatever the outcome it is
// spent, so a replay is challenged again.
func (c *Callee) authorised(req *sip.Request) bool {
	a := c.cfg.Auth
	_, hname, _, _ := a.headers()
	for _, h := range req.GetHeaders(hname) {
		creds, err := digest.ParseCredentials(h.Value())
		if err != nil {
			continue
		}
		c.mu.Lock()
		chal := c.nonces[creds.Nonce]
		delete(c.nonces, creds.Nonce)
		c.mu.Unlock()
		if chal != nil && a.verify(chal, creds, req) {
			return true
		}
	}
	return false
}

// verify checks credentials against the challenge that issued their nonce
// (RFC 2617 section 3.2.2, RFC 7616 section 3.4): the echoed parameters
// must match, and the response must be the one the password gives.
func (a *Auth) verify(chal *digest.Challenge, creds *digest.Credentials, req *sip.Request) bool {
	algo := func(s string) string {
		if s == "" {
			return "MD5"
		}
		return strings.ToUpper(s)
	}
	switch {
	case creds.Username != a.User,
		creds.Realm != chal.Realm,
		creds.Opaque != chal.Opaque,
		algo(creds.Algorithm) != algo(chal.Algorithm),
		// RFC 3261 section 22.4: the uri is the Request-URI, written
		// in full or, as sipgo's client does, without its parameters.
		creds.URI != req.Recipient.String() && creds.URI != req.Recipient.Addr():
		return false
	}
	if len(chal.QOP) > 0 {
		if creds.QOP != "auth" || creds.Cnonce == "" || creds.Nc < 1 {
			return false
		}
	} else if creds.QOP != "" || creds.Cnonce != "" {
		return false
	}
	want, err := digest.Digest(chal, digest.Options{
		Method:   string(req.Method),
		URI:      creds.URI,
		Username: a.User,
		Password: a.Password,
		Cnonce:   creds.Cnonce,
		Count:    creds.Nc,
	})
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want.Response), []byte(strings.ToLower(creds.Response))) == 1
}

// ---------------------------------------------------------------------------
// The call.

// reasonPhrase gives RFC 3261 section 21 phrases for the codes tests use.
func reasonPhrase(code int) string {
	switch code {
	case 403:
		return "Forbidden"
	case 404:
		return "Not Found"
	case 480:
		return "Temporarily Unavailable"
	case 486:
		return "Busy Here"
	case 488:
		return "Not Acceptable Here"
	case 500:
		return "Server Internal Error"
	case 503:
		return "Service Unavailable"
	case 600:
		return "Busy Everywhere"
	case 603:
		return "Decline"
	}
	return "Rejected"
}

// offerPtime is the offer's a=ptime, the packet time the offerer wants to
// receive (RFC 4566 section 6); 20 ms if absent or out of range.
func offerPtime(body []byte) int {
	for l := range strings.SplitSeq(string(body), "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(l), "a=ptime:")
		if !ok {
			continue
		}
		if ms, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && ms >= 10 && ms <= 60 {
			return ms
		}
	}
	return 20
}

// answerDirection mirrors the offer's direction (RFC 3264 section 6.1).
func answerDirection(offered string) string {
	switch offered {
	case "sendonly":
		return "recvonly"
	case "recvonly":
		return "sendonly"
	case "inactive":
		return "inactive"
	}
	return "sendrecv"
}

// handleCall takes an authorised INVITE through ringing to its final
// response.
func (c *Callee) handleCall(req *sip.Request, tx sip.ServerTransaction) error {
	// The offer is read with the answer parser: both want the first
	// listed format we accept, and the telephone-event type.
	off, err := parseAnswer(req.Body(), c.cfg.Codecs)
	if err == nil && off.proto != "RTP/AVP" && (c.cfg.SRTP == nil || off.proto != "RTP/SAVP") {
		err = fmt.Errorf("phone: callee: %s offer", off.proto)
	}
	if len(req.Body()) == 0 || err != nil {
		// No offer (we do not do offer-in-200/answer-in-ACK) or nothing
		// we can use: RFC 3261 section 21.4.26.
		if rerr := c.respondInvite(tx, sip.NewResponseFromRequest(req, 488, reasonPhrase(488), nil)); rerr != nil {
			return rerr
		}
		return fmt.Errorf("phone: callee: unusable offer: %w", err)
	}
	dlg, err := c.dua.ReadInvite(req, tx)
	if err != nil {
		c.reply(req, tx, 500, reasonPhrase(500))
		return fmt.Errorf("phone: callee: read INVITE: %w", err)
	}
	p, err := c.newCallPhone(req, dlg, off)
	if err != nil {
		if rerr := c.respondInvite(tx, sip.NewResponseFromRequest(dlg.InviteRequest, 500, reasonPhrase(500), nil)); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	cc := &calleeCall{phone: p, dlg: dlg, cseq: req.CSeq().SeqNo, acked: make(chan struct{})}
	c.update(func() {
		c.calls[p.callID] = cc
		c.phones = append(c.phones, p)
	})
	answerSDP := func() []byte {
		p.sdpMu.Lock()
		defer p.sdpMu.Unlock()
		return p.sdpOffer.marshal()
	}

	sending := false
	if c.cfg.Ring > 0 || c.cfg.NoAnswer || c.cfg.EarlyMedia {
		var res *sip.Response
		if c.cfg.EarlyMedia {
			res = sip.NewResponseFromRequest(dlg.InviteRequest, 183, "Session Progress", answerSDP())
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
			p.startSending()
			sending = true
		} else {
			res = sip.NewResponseFromRequest(dlg.InviteRequest, 180, "Ringing", nil)
		}
		// A provisional response that creates an early dialog carries
		// Contact (RFC 3261 section 12.1.1).
		res.AppendHeader(sip.HeaderClone(&c.contact))
		if err := c.respondInvite(tx, res); err != nil {
			return c.ended(p, tx, err)
		}
		if c.cfg.EarlyMedia {
			c.update(func() { c.early = append(c.early, p) })
		}
		if done, err := c.ring(p, dlg, tx); done {
			return err
		}
	}

	if c.cfg.Reject != 0 {
		p.ended.Store(true)
		p.Close()
		res := sip.NewResponseFromRequest(dlg.InviteRequest, c.cfg.Reject, reasonPhrase(c.cfg.Reject), nil)
		if err := c.respondInvite(tx, res); err != nil {
			return c.ended(p, tx, err)
		}
		return nil
	}

	res := sip.NewResponseFromRequest(dlg.InviteRequest, 200, "OK", answerSDP())
	res.AppendHeader(sip.HeaderClone(&c.contact))
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	for _, h := range c.cfg.OKHeaders {
		res.AppendHeader(sip.HeaderClone(h))
	}
	// The dialog session builds our in-dialog requests from it.
	dlg.InviteResponse = res
	// From the 2xx on the dialog exists for the server, which may send a
	// BYE that overtakes its own ACK (each request is handled on its own
	// goroutine): the phone must already own it.
	p.established.Store(true)
	if err := c.respondInvite(tx, res); err != nil {
		return c.ended(p, tx, err)
	}
	if err := c.waitAck(cc, tx, res); err != nil {
		p.ended.Store(true)
		p.Close()
		return err
	}
	// ReadAck moves sipgo's dialog to Confirmed, which its WriteBye
	// waits for (RFC 3261 section 15: no BYE before the ACK).
	if err := dlg.ReadAck(cc.ackedReq, tx); err != nil {
		c.log.Debug("dialog ACK", "error", err)
	}
	if !sending {
		p.startSending()
	}
	c.update(func() { c.accepted = append(c.accepted, p) })
	return nil
}

// ring waits out the ring time. done reports that the call ended during
// it (cancelled, or the Callee closed).
func (c *Callee) ring(p *Phone, dlg *sipgo.DialogServerSession, tx sip.ServerTransaction) (done bool, err error) {
	var ringDone <-chan time.Time
	if !c.cfg.NoAnswer {
		t := time.NewTimer(c.cfg.Ring)
		defer t.Stop()
		ringDone = t.C
	}
	select {
	case <-ringDone:
		return false, nil
	case <-dlg.Context().Done():
		return true, c.ended(p, tx, context.Cause(dlg.Context()))
	case <-c.stop:
		return true, ErrClosed
	}
}

// ended finishes a call whose INVITE transaction ended before our final
// response: normally a CANCEL, to which the transaction layer has sent 200
// and then 487 (RFC 3261 section 9.2).
func (c *Callee) ended(p *Phone, tx sip.ServerTransaction, cause error) error {
	p.ended.Store(true)
	// tx.Err takes the transaction's FSM lock, under which the 487 was
	// sent: once it reports the CANCEL, the 487 is on the wire.
	if errors.Is(tx.Err(), sip.ErrTransactionCanceled) {
		// Recorded before Done closes, so a test woken by Done sees it.
		c.update(func() {
			c.responses = append(c.responses, sip.StatusRequestTerminated)
			c.cancels++
		})
		p.doneOnce.Do(func() { close(p.done) })
		p.Close()
		return nil
	}
	p.Close()
	return fmt.Errorf("phone: callee: INVITE transaction ended: %w", errors.Join(cause, tx.Err()))
}

// waitAck retransmits the 2xx until its ACK arrives: the UAS core does
// this, not the transaction (RFC 3261 section 13.3.1.4, RFC 6026 section
// 7.1), at T1 doubling to T2, giving up after 64*T1.
func (c *Callee) waitAck(cc *calleeCall, tx sip.ServerTransaction, res *sip.Response) error {
	interval := sip.T1
	retransmit := time.NewTimer(interval)
	defer retransmit.Stop()
	giveUp := time.NewTimer(64 * sip.T1)
	defer giveUp.Stop()
	for {
		select {
		case <-cc.acked:
			return nil
		case ack := <-tx.Acks():
			// A UAC that wrongly reuses the INVITE's branch for the ACK
			// is matched to the INVITE transaction instead.
			cc.ack(ack)
		case <-retransmit.C:
			if err := tx.Respond(res); err != nil {
				return fmt.Errorf("phone: callee: retransmit 200: %w", err)
			}
			interval = min(2*interval, sip.T2)
			retransmit.Reset(interval)
		case <-giveUp.C:
			return fmt.Errorf("phone: callee: no ACK for 200 within %v", 64*sip.T1)
		case <-c.stop:
			return ErrClosed
		}
	}
}

// newCallPhone makes the Phone of an incoming call: its own RTP socket,
// receiving at once (early media from the server is heard too), sending
// once the call is answered or early media starts.
func (c *Callee) newCallPhone(req *sip.Request, dlg *sipgo.DialogServerSession, off answer) (*Phone, error) {
	dtmfPT := off.dtmfPT
	if dtmfPT < 96 || dtmfPT > 127 {
		dtmfPT = -1
	}
	cfg := Config{
		Server:        req.Source(),
		Transport:     c.cfg.Transport,
		TLS:           c.cfg.TLS,
		User:          req.From().Address.User,
		FromUser:      "callee",
		Codecs:        c.cfg.Codecs,
		DTMF:          dtmfPT,
		Ptime:         offerPtime(req.Body()),
		ToneAmplitude: c.cfg.ToneAmplitude,
		Logger:        c.cfg.Logger,
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := newPhone(cfg, c.log.With("call", req.CallID().Value()))
	conn, err := listenEvenRTP(netip.AddrFrom4([4]byte{127, 0, 0, 1}))
	if err != nil {
		return nil, err
	}
	p.rtpConn = conn
	p.sigAddr = c.addr
	p.contact = c.contact
	p.callID = req.CallID().Value()
	p.localTag, _ = dlg.InviteRequest.To().Params.Get("tag")
	p.remoteTag, _ = req.From().Params.Get("tag")
	p.remote = *req.Contact().Address.Clone() // ReadInvite insists on Contact
	p.sess = dlg
	p.codec = off.codec
	p.dtmfPT = dtmfPT
	rtpAddr := off.rtp
	p.serverRTP.Store(&rtpAddr)
	p.sdpOffer = offer{
		sessID:    randUint64() >> 2,
		version:   1,
		port:      conn.LocalAddr().(*net.UDPAddr).Port,
		codecs:    []uint8{off.codec}, // one codec in the answer (RFC 3264 6.1)
		dtmfPT:    dtmfPT,
		ptime:     cfg.Ptime,
		direction: answerDirection(off.direction),
		proto:     off.proto,
	}
	if s := c.cfg.SRTP; s != nil {
		for _, theirs := range off.crypto {
			if len(s.Suites) > 0 && !slices.Contains(s.Suites, theirs.suite) {
				continue
			}
			ours := newCryptoLine(0, theirs.suite)
			ours.tag = theirs.tag
			if err := p.startSRTP(ours, theirs); err != nil {
				conn.Close()
				return nil, err
			}
			p.srtpSuite = theirs.suite
			p.sdpOffer.crypto = []string{ours.value()}
			break
		}
	}
	if off.proto == "RTP/SAVP" && !p.Secure() {
		conn.Close()
		return nil, fmt.Errorf("phone: callee: RTP/SAVP offer without a usable a=crypto")
	}
	p.startReceiving()
	return p, nil
}
