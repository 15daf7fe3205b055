package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/sdp/v3"

	"webconf/dsp/g711"
)

// Signalling: one sipgo user agent for every call, listening on one UDP
// socket that is also the source of all our requests, so the server sees a
// single symmetric SIP address (RFC 3261 18.1.1) and its in-dialog requests
// (a BYE when it hangs up) come back to it.

// Sentinel errors of call setup.
var (
	ErrRejected    = errors.New("call rejected")
	ErrBadAnswer   = errors.New("unusable SDP answer")
	ErrNotLoopback = errors.New("address is not loopback")
	ErrHungUp      = errors.New("server hung up")
	ErrNotJoined   = errors.New("did not hear its room")
)

// room is one conference room of the run.
type room struct {
	idx     int
	number  int
	phase   int // tick offset of its marker bursts, spreads them over a second
	members []*call
	// lastMarker is the unix ns send time of the latest marker burst.
	lastMarker atomic.Int64
}

// call is one participant.
type call struct {
	idx, member int
	room        *room
	talker      bool
	freq        float64 // talker tone, 0 for silence or speech
	isMarker    bool
	st          *stream

	callID string
	dlg    *sipgo.DialogClientSession

	// Times, written by the call's own goroutine before done is closed.
	inviteAt, answerAt, readyAt time.Time
	done                        chan struct{} // setup finished (ok or not)

	up         atomic.Bool // established and not yet hung up
	upAtWindow bool        // up and not failed when the window opened
	byeSent    atomic.Bool
	mu         sync.Mutex
	err        error // first failure

	// Join time, fixed once the call has heard its room (joinTime).
	joinDur time.Duration
	joinOK  bool

	// Churn (-churn). A churned-out call was picked to leave during the
	// window at leftAt; both are written by the measuring goroutine only.
	// A churn-in call replaced one; churnJoined is set by its own
	// goroutine once it has heard its room, read after that goroutine ends.
	churned     bool
	leftAt      time.Time
	churnIn     bool
	churnJoined bool
}

func (c *call) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
}

func (c *call) failure() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// sipUA is the shared user agent.
type sipUA struct {
	log     *slog.Logger
	ua      *sipgo.UserAgent
	srv     *sipgo.Server
	cli     *sipgo.Client
	conn    *net.UDPConn
	laddr   netip.AddrPort
	contact sip.ContactHeader
	dua     *sipgo.DialogUA
	target  netip.AddrPort
	calls   sync.Map // Call-ID -> *call
	served  chan struct{}
}

func newSIPUA(ctx context.Context, target netip.AddrPort, log *slog.Logger) (*sipUA, error) {
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent("confload"),
		sipgo.WithUserAgentHostname(target.Addr().String()),
	)
	if err != nil {
		return nil, fmt.Errorf("new user agent: %w", err)
	}
	u := &sipUA{log: log, ua: ua, target: target, served: make(chan struct{})}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("new SIP server: %w", err)
	}
	u.srv = srv
	srv.OnBye(u.onBye)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	ok := func(req *sip.Request, tx sip.ServerTransaction) {
		tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil)) //nolint:errcheck // best effort
	}
	srv.OnOptions(ok)
	srv.OnInfo(ok)
	srv.OnNotify(ok)
	srv.OnUpdate(ok)

	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(target.Addr(), 0)))
	if err != nil {
		ua.Close()
		return nil, fmt.Errorf("listen SIP/UDP: %w", err)
	}
	u.conn = conn
	u.laddr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	go func() {
		defer close(u.served)
		srv.ServeUDP(conn) //nolint:errcheck // returns when close closes conn
	}()
	cli, err := sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(u.laddr.String()))
	if err != nil {
		u.close()
		return nil, fmt.Errorf("new SIP client: %w", err)
	}
	u.cli = cli
	u.contact = sip.ContactHeader{Address: sip.Uri{
		Scheme: "sip", User: "confload", Host: u.laddr.Addr().String(), Port: int(u.laddr.Port()),
	}}
	u.dua = &sipgo.DialogUA{Client: cli, ContactHDR: u.contact}
	if err := u.waitServing(ctx); err != nil {
		u.close()
		return nil, err
	}
	return u, nil
}

// waitServing waits until sipgo has registered the listening socket; a
// request bound to its address before that would open a second socket.
func (u *sipUA) waitServing(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		if c, err := u.ua.TransportLayer().GetConnection("udp", u.laddr.String()); err == nil {
			c.TryClose() //nolint:errcheck // balances Get's reference
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("SIP/UDP listener did not start: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

func (u *sipUA) close() {
	u.ua.Close()
	u.conn.Close()
	<-u.served
}

func (u *sipUA) onBye(req *sip.Request, tx sip.ServerTransaction) {
	var c *call
	if id := req.CallID(); id != nil {
		if v, ok := u.calls.Load(string(*id)); ok {
			c = v.(*call)
		}
	}
	if c == nil || c.dlg == nil {
		tx.Respond(sip.NewResponseFromRequest(req, 481, "Call/Transaction Does Not Exist", nil)) //nolint:errcheck // best effort
		return
	}
	c.up.Store(false)
	if c.st != nil {
		c.st.active.Store(false)
	}
	if !c.byeSent.Load() {
		c.fail(ErrHungUp)
	}
	if err := c.dlg.ReadBye(req, tx); err != nil {
		u.log.Debug("answer BYE", "error", err)
	}
}

// invite places c's INVITE with the given Request-URI user and extra
// headers, offering our group's RTP port, waits for the final response and
// ACKs a 2xx. It returns the parsed answer.
func (u *sipUA) invite(ctx context.Context, c *call, user string, hdrs []sip.Header, offer []byte, codec uint8) (answer, error) {
	host := u.target.Addr().String()
	port := int(u.target.Port())
	recipient := sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}
	req := sip.NewRequest(sip.INVITE, recipient)
	req.SetTransport("UDP")
	from := &sip.FromHeader{
		Address: sip.Uri{Scheme: "sip", User: fmt.Sprintf("load%d", c.idx), Host: u.laddr.Addr().String()},
		Params:  sip.NewParams(),
	}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: host, Port: port}}
	c.callID = rand.Text() + "@confload"
	cid := sip.CallIDHeader(c.callID)
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&cid)
	req.AppendHeader(sip.HeaderClone(&u.contact))
	for _, h := range hdrs {
		req.AppendHeader(sip.HeaderClone(h))
	}
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	req.SetBody(offer)
	u.bind(req)

	u.calls.Store(c.callID, c)
	c.inviteAt = time.Now()
	dlg, err := u.dua.WriteInvite(ctx, req)
	if err != nil {
		return answer{}, fmt.Errorf("send INVITE: %w", err)
	}
	c.dlg = dlg
	if err := dlg.WaitAnswer(ctx, sipgo.AnswerOptions{}); err != nil {
		var rerr *sipgo.ErrDialogResponse
		if errors.As(err, &rerr) {
			return answer{}, fmt.Errorf("%w: %d %s", ErrRejected, rerr.Res.StatusCode, rerr.Res.Reason)
		}
		return answer{}, fmt.Errorf("INVITE: %w", err)
	}
	c.answerAt = time.Now()
	ans, aerr := parseAnswer(dlg.InviteResponse.Body(), codec)
	// ACK even an unusable answer, so the BYE that follows is valid
	// (RFC 3261 section 13.2.2.4).
	if err := dlg.Ack(ctx); err != nil {
		return answer{}, fmt.Errorf("ACK: %w", err)
	}
	c.up.Store(true)
	return ans, aerr
}

// bind makes a request leave from the listening socket.
func (u *sipUA) bind(req *sip.Request) {
	req.Laddr = sip.Addr{
		IP:       net.IP(u.laddr.Addr().AsSlice()),
		Port:     int(u.laddr.Port()),
		Hostname: u.laddr.Addr().String(),
	}
}

// bye hangs c up and waits for the final response.
func (u *sipUA) bye(ctx context.Context, c *call) error {
	if !c.up.Swap(false) {
		return nil
	}
	c.byeSent.Store(true)
	remote := c.dlg.InviteRequest.Recipient
	if ct := c.dlg.InviteResponse.Contact(); ct != nil {
		remote = *ct.Address.Clone()
	}
	req := sip.NewRequest(sip.BYE, remote)
	u.bind(req)
	if err := c.dlg.WriteBye(ctx, req); err != nil {
		return fmt.Errorf("BYE: %w", err)
	}
	return nil
}

// sdpOffer renders our offer: one G.711 codec plus telephone-event 101
// (RFC 4733 section 7), ptime 20 (RFC 4566 section 6).
func sdpOffer(ip netip.Addr, port int, codec uint8) []byte {
	name := "PCMU"
	if codec == g711.PCMA {
		name = "PCMA"
	}
	id := time.Now().UnixNano() & 0x7fffffff
	var b strings.Builder
	b.WriteString("v=0\r\n")
	fmt.Fprintf(&b, "o=confload %d %d IN IP4 %s\r\n", id, id, ip)
	b.WriteString("s=confload\r\n")
	fmt.Fprintf(&b, "c=IN IP4 %s\r\n", ip)
	b.WriteString("t=0 0\r\n")
	fmt.Fprintf(&b, "m=audio %d RTP/AVP %d 101\r\n", port, codec)
	fmt.Fprintf(&b, "a=rtpmap:%d %s/8000\r\n", codec, name)
	b.WriteString("a=rtpmap:101 telephone-event/8000\r\n")
	b.WriteString("a=fmtp:101 0-16\r\n")
	b.WriteString("a=ptime:20\r\n")
	b.WriteString("a=sendrecv\r\n")
	return []byte(b.String())
}

// answer is what we use from the server's SDP.
type answer struct {
	rtp    netip.AddrPort
	codec  uint8
	dtmfPT int // -1 if none
}

// parseAnswer reads the first audio stream of an SDP answer (RFC 3264
// section 6) and checks it accepted our codec at a loopback address.
func parseAnswer(body []byte, codec uint8) (answer, error) {
	var sd sdp.SessionDescription
	if err := sd.Unmarshal(body); err != nil {
		return answer{}, fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	var md *sdp.MediaDescription
	for _, m := range sd.MediaDescriptions {
		if m.MediaName.Media == "audio" {
			md = m
			break
		}
	}
	if md == nil || md.MediaName.Port.Value == 0 {
		return answer{}, fmt.Errorf("%w: no accepted audio stream", ErrBadAnswer)
	}
	conn := sd.ConnectionInformation
	if md.ConnectionInformation != nil {
		conn = md.ConnectionInformation
	}
	if conn == nil || conn.Address == nil {
		return answer{}, fmt.Errorf("%w: no c= line", ErrBadAnswer)
	}
	ip, err := netip.ParseAddr(conn.Address.Address)
	if err != nil {
		return answer{}, fmt.Errorf("%w: c= address %q: %w", ErrBadAnswer, conn.Address.Address, err)
	}
	if !ip.IsLoopback() {
		return answer{}, fmt.Errorf("%w: RTP address %s: %w", ErrBadAnswer, ip, ErrNotLoopback)
	}
	a := answer{rtp: netip.AddrPortFrom(ip.Unmap(), uint16(md.MediaName.Port.Value)), codec: 255, dtmfPT: -1}
	for _, f := range md.MediaName.Formats {
		if pt, err := strconv.Atoi(f); err == nil && pt == int(codec) {
			a.codec = codec
		}
	}
	for _, attr := range md.Attributes {
		if attr.Key != "rtpmap" {
			continue
		}
		ptStr, enc, ok := strings.Cut(attr.Value, " ")
		if ok && strings.HasPrefix(strings.ToLower(enc), "telephone-event/") {
			if pt, err := strconv.Atoi(ptStr); err == nil && pt >= 96 && pt <= 127 {
				a.dtmfPT = pt
			}
		}
	}
	if a.codec == 255 {
		return a, fmt.Errorf("%w: codec %d not accepted", ErrBadAnswer, codec)
	}
	return a, nil
}
