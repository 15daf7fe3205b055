package sipapp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/sipapp/sdp"
	"webconf/test/testutil"
)

// fuzzTx is a sip.ServerTransaction that records what the handler answers.
type fuzzTx struct {
	mu   sync.Mutex
	res  []*sip.Response
	fin  chan *sip.Response // every final response, in order
	done chan struct{}
	once sync.Once
}

func newFuzzTx() *fuzzTx {
	return &fuzzTx{fin: make(chan *sip.Response, 64), done: make(chan struct{})}
}

func (f *fuzzTx) Respond(res *sip.Response) error {
	f.mu.Lock()
	f.res = append(f.res, res)
	f.mu.Unlock()
	if res.StatusCode >= 200 {
		select {
		case f.fin <- res:
		default:
		}
	}
	return nil
}

func (f *fuzzTx) responses() []*sip.Response {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*sip.Response(nil), f.res...)
}

func (f *fuzzTx) Terminate()                         { f.once.Do(func() { close(f.done) }) }
func (f *fuzzTx) OnTerminate(sip.FnTxTerminate) bool { return true }
func (f *fuzzTx) Done() <-chan struct{}              { return f.done }
func (f *fuzzTx) Err() error                         { return nil }
func (f *fuzzTx) Acks() <-chan *sip.Request          { return nil }
func (f *fuzzTx) OnCancel(sip.FnTxCancel) bool       { return true }

// fuzzFinals returns the final responses.
func fuzzFinals(rs []*sip.Response) []*sip.Response {
	var out []*sip.Response
	for _, r := range rs {
		if r.StatusCode >= 200 {
			out = append(out, r)
		}
	}
	return out
}

const fuzzInviteSDP = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
	"m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"

// fuzzHandler is sipgo's dispatch as Server.Start registers it.
func (s *Server) fuzzHandler(m sip.RequestMethod) func(*sip.Request, sip.ServerTransaction) {
	switch m {
	case sip.INVITE:
		return s.onInvite
	case sip.ACK:
		return s.onAck
	case sip.BYE:
		return s.onBye
	case sip.CANCEL:
		return s.onCancel
	case sip.OPTIONS:
		return s.onOptions
	case sip.INFO:
		return s.onInfo
	case sip.UPDATE:
		return s.onUpdate
	}
	return s.onNoRoute
}

// FuzzSIPRequest parses arbitrary bytes with sipgo's parser, exactly as its
// UDP and TCP transports do, and hands every request that sipgo's
// transaction layer would accept (it needs Via and CSeq to make a server
// transaction key) to our handler for its method, on a started Server,
// with a recording transaction. reliability.md 1.6: Go SIP stacks and
// their applications panic on malformed input; this is the application
// half.
//
// An INVITE that the server answers 2xx becomes a call; it is hung up at
// once with a BYE built from the 200 (through onBye, which must find it)
// so that no call outlives its input.
//
// Invariants: no panic; ACK gets no response; every other request gets
// exactly one final response, except an answered INVITE, whose 2xx may be
// retransmitted (RFC 3261 13.3.1.4) but never mixed with another final;
// responses carry the request's Call-ID; a 2xx carries our To-tag, a
// Contact and an SDP answer our own parser accepts; afterwards no call, no
// RTP port and no goroutine is left over.
func FuzzSIPRequest(f *testing.F) {
	s := startFuzzServer(f, Options{
		SIPListen: "127.0.0.1:0", RTPLow: 46000, RTPHigh: 46998,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SessionTimer: SessionTimer{Enabled: true, Expires: 1800 * time.Second, MinSE: 90 * time.Second,
			Max: 7200 * time.Second, Refresh: "UPDATE"},
	})
	freePorts := s.FreeRTPPorts()
	const inviteSDP = fuzzInviteSDP
	f.Add([]byte("INVITE sip:1234@127.0.0.1:5060 SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-1;rport\r\n"+
		"From: \"Alice\" <sip:alice@127.0.0.1:5999>;tag=a1\r\n"+
		"To: <sip:1234@127.0.0.1:5060>\r\nCall-ID: seed-invite@127.0.0.1\r\nCSeq: 1 INVITE\r\n"+
		"Contact: <sip:alice@127.0.0.1:5999>\r\nMax-Forwards: 70\r\nSession-Expires: 1800;refresher=uac\r\nSupported: timer\r\n"+
		"P-App-Param: room=1234\r\nContent-Type: application/sdp\r\n"+
		"Content-Length: "+strconv.Itoa(len(inviteSDP))+"\r\n\r\n"+inviteSDP), false)
	f.Add([]byte("OPTIONS sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-2\r\n"+
		"From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:127.0.0.1>\r\nCall-ID: seed-options\r\nCSeq: 7 OPTIONS\r\n"+
		"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, tcp bool) {
		tr := "UDP"
		if tcp {
			tr = "TCP"
		}
		fuzzSIP(t, s, freePorts, data, tr, nil)
	})
}

// startFuzzServer starts a server for a fuzz target, shut down when the
// target ends.
func startFuzzServer(f *testing.F, opt Options) *Server {
	f.Helper()
	s, err := New(opt)
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Start(); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			f.Error(err)
		}
	})
	return s
}

// FuzzSIPRequestTLS is FuzzSIPRequest for requests that arrived over the
// TLS listener: the same handlers and invariants, plus the Contact of
// every answer naming our TLS port, sips: when the request asked for SIPS
// (RFC 3261 12.1.1) and ;transport=tls otherwise.
func FuzzSIPRequestTLS(f *testing.F) {
	ca := testutil.NewCA(f)
	leaf := ca.Issue(f, "server")
	s := startFuzzServer(f, Options{
		SIPListen: "127.0.0.1:0", SIPTLSListen: "127.0.0.1:0", TLSCert: leaf.CertFile, TLSKey: leaf.KeyFile,
		RTPLow: 48400, RTPHigh: 48998, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	freePorts := s.FreeRTPPorts()
	_, tlsPort, _ := net.SplitHostPort(s.TLSAddr())
	for _, ruri := range []string{"sip:1234@127.0.0.1:5061;transport=tls", "sips:1234@127.0.0.1:5061"} {
		f.Add([]byte("INVITE " + ruri + " SIP/2.0\r\n" +
			"Via: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK-1;rport\r\n" +
			"From: <sips:alice@127.0.0.1>;tag=a1\r\nTo: <sips:1234@127.0.0.1>\r\nCall-ID: seed-tls@127.0.0.1\r\nCSeq: 1 INVITE\r\n" +
			"Contact: <sips:alice@127.0.0.1:5999>\r\nMax-Forwards: 70\r\nP-App-Param: room=1234\r\n" +
			"Content-Type: application/sdp\r\nContent-Length: " + strconv.Itoa(len(fuzzInviteSDP)) + "\r\n\r\n" + fuzzInviteSDP))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzSIP(t, s, freePorts, data, "TLS", func(t *testing.T, req *sip.Request, res *sip.Response) {
			ct := res.Contact()
			if ct == nil {
				return
			}
			u := ct.Address
			tp, _ := u.UriParams.Get("transport")
			switch {
			case strconv.Itoa(u.Port) != tlsPort:
				t.Fatalf("%d over TLS has Contact %s, not at the TLS port %s", res.StatusCode, ct.Value(), tlsPort)
			case wantsSIPS(req) != (u.Scheme == "sips"):
				t.Fatalf("%d to a request with SIPS=%v has Contact %s", res.StatusCode, wantsSIPS(req), ct.Value())
			case u.Scheme == "sip" && tp != "tls":
				t.Fatalf("%d over TLS has Contact %s without transport=tls", res.StatusCode, ct.Value())
			}
		})
	})
}

// fuzzSIP hands one fuzz input, as a request that arrived over transport,
// to the server's handler for its method and checks the invariants of
// FuzzSIPRequest; check, if set, sees every response too.
func fuzzSIP(t *testing.T, s *Server, freePorts int, data []byte, transport string, check func(*testing.T, *sip.Request, *sip.Response)) {
	t.Helper()
	msg, err := sip.NewParser().ParseSIP(data)
	if err != nil {
		return
	}
	req, ok := msg.(*sip.Request)
	if !ok || req.Via() == nil || req.CSeq() == nil {
		return // sipgo answers or drops these before any handler
	}
	req.SetTransport(transport)
	req.SetSource("127.0.0.1:5999")
	before := runtime.NumGoroutine()
	tx := newFuzzTx()
	handler := s.fuzzHandler(req.Method)
	done := make(chan struct{})
	go func() {
		defer close(done)
		handler(req, tx)
	}()
	answered := false
	if req.Method == sip.INVITE {
		select {
		case <-done:
		case res := <-tx.fin:
			if res.StatusCode < 300 {
				answered = true
				fuzzHangUp(t, s, req, res)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("INVITE neither answered nor finished")
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s handler still running", req.Method)
	}
	rs := tx.responses()
	fs := fuzzFinals(rs)
	switch {
	case req.Method == sip.ACK:
		if len(rs) != 0 {
			t.Fatalf("ACK answered %d", rs[0].StatusCode)
		}
	case answered:
		for _, r := range fs {
			if r.StatusCode >= 300 || r.To() == nil || r.To().Params.String() != fs[0].To().Params.String() {
				t.Fatalf("answered INVITE got finals %v", fuzzCodes(fs))
			}
		}
		fuzzCheckAnswer(t, fs[0])
	case len(fs) != 1:
		t.Fatalf("%s got %d final responses %v", req.Method, len(fs), fuzzCodes(rs))
	}
	if id := req.CallID(); id != nil {
		for _, r := range rs {
			if r.CallID() == nil || r.CallID().Value() != id.Value() {
				t.Fatalf("response %d lost the Call-ID", r.StatusCode)
			}
		}
	}
	if check != nil {
		for _, r := range rs {
			check(t, req, r)
		}
	}
	if n := s.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls left", n)
	}
	fuzzWait(t, "the RTP ports to come back", func() bool { return s.FreeRTPPorts() == freePorts })
	fuzzWait(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

// fuzzHangUp sends the BYE a phone would send after the 200 (same Call-ID,
// From, and the To with our tag) through onBye, which must find the call.
func fuzzHangUp(t *testing.T, s *Server, inv *sip.Request, ok *sip.Response) {
	t.Helper()
	bye := inv.Clone()
	bye.Method = sip.BYE
	bye.RemoveHeader("To")
	bye.AppendHeader(sip.HeaderClone(ok.To()))
	tx := newFuzzTx()
	s.onBye(bye, tx)
	if fs := fuzzFinals(tx.responses()); len(fs) != 1 || fs[0].StatusCode != 200 {
		t.Fatalf("BYE for the answered call got %v", fuzzCodes(tx.responses()))
	}
}

// fuzzCheckAnswer: a 2xx to INVITE has our tag, a Contact and a valid answer.
func fuzzCheckAnswer(t *testing.T, res *sip.Response) {
	t.Helper()
	if tag, _ := res.To().Params.Get("tag"); tag == "" {
		t.Fatal("2xx without To-tag")
	}
	if res.Contact() == nil {
		t.Fatal("2xx without Contact")
	}
	if ct := res.ContentType(); ct == nil || ct.Value() != "application/sdp" {
		t.Fatalf("2xx content type %v", ct)
	}
	if _, err := sdp.ParseOffer(res.Body()); err != nil {
		t.Fatalf("our SDP answer does not parse: %v\n%s", err, res.Body())
	}
}

func fuzzCodes(rs []*sip.Response) []int {
	var c []int
	for _, r := range rs {
		c = append(c, r.StatusCode)
	}
	return c
}

// fuzzWait polls cond until it holds, failing after a deadline.
func fuzzWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("timed out waiting for %s\n%s", what, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
	}
}
