// Package torture sends hostile SIP to the real server: the RFC 4475 and
// RFC 5118 torture messages and size attacks (reliability spec T1.1, T1.2,
// T1.4, T1.5, 1.7, 1.8). After every message the server must still answer
// OPTIONS, and its reply (or its silence) must be the one that
// testdata/expectations.csv records.
package torture

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/prompts"
	"webconf/sipapp"
	"webconf/test/testutil"
)

const (
	// quiet is how long a peer listens before it calls the server silent.
	// Loopback replies come back in well under a millisecond; the server
	// answers in its own goroutine, so allow for a busy -race scheduler.
	quiet = 500 * time.Millisecond
	// replyWait bounds the wait for a reply that the table says will come.
	replyWait = 3 * time.Second
)

var errSilent = errors.New("no SIP response")

func init() {
	// sipgo logs every unparseable message at error level with its full
	// text (10,000 headers, 1 MiB bodies); the tests assert on behaviour,
	// so keep that out of the test output unless asked for.
	if os.Getenv("WEBCONF_TEST_LOG") == "" {
		sip.SetDefaultLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	}
}

type server struct {
	*sipapp.Server
	host    string // loopback address the server listens on
	addr    string // host:port, UDP and TCP
	tlsAddr string // host:port of SIP over TLS
	ca      *testutil.CA
}

// start runs the server as test/e2e does (conf.Default, loopback, port 0,
// no direct-room regexp), with one difference: answer_delay is an hour, so
// an INVITE the application accepts is held at 180 Ringing and never
// answered. The corpus INVITEs carry documentation addresses (192.0.2.x,
// example.com) in SDP and Contact; an answered call would send RTP there,
// and its BYE would be resolved and sent there. A ringing call is ended by
// the test's CANCEL instead, which exercises the same call set-up and
// clean-up paths without a packet leaving loopback.
func start(t *testing.T, host string, rtpLow int) *server {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = net.JoinHostPort(host, "0")
	cfg.Server.PublicIP = host
	// Each server gets 100 RTP ports of its own, below the kernel's
	// ephemeral range (32768 up) and above test/e2e's (20000-29998), so
	// that the parallel servers here, test/e2e (go test ./...) and the
	// SIP sockets bound to port 0 never compete for one.
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = rtpLow, rtpLow+198
	cfg.Server.AnswerDelay = time.Hour
	cfg.Webconference.DirectRoomRE = nil
	// Every server also listens on TLS, with a certificate of a CA of
	// its own that the test's TLS peers trust.
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "server")
	cfg.Server.SIPTLSListen = net.JoinHostPort(host, "0")
	cfg.Server.TLSCert, cfg.Server.TLSKey = leaf.CertFile, leaf.KeyFile
	level := slog.LevelWarn
	if os.Getenv("WEBCONF_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).With("test", t.Name())
	// Tones stand in for the prompts: nothing is ever played here.
	srv, err := sipapp.New(sipapp.OptionsFromConfig(&cfg, prompts.Builtin(), log))
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return &server{Server: srv, host: host, addr: srv.Addr(), tlsAddr: srv.TLSAddr(), ca: ca}
}

// peer is one client socket: a UDP socket, or a TCP or TLS connection.
type peer struct {
	transport string // "udp", "tcp" or "tls"
	conn      net.Conn
	udp       net.PacketConn
	to        net.Addr

	res    chan *sip.Response // TCP: responses parsed by the reader
	closed chan struct{}      // TCP: the server closed the connection
}

// dial opens a peer to the server on the transport. The peer is closed
// when the test ends.
func dial(t *testing.T, s *server, transport string) *peer {
	t.Helper()
	p := &peer{transport: transport}
	switch transport {
	case "udp":
		pc, err := net.ListenPacket("udp", net.JoinHostPort(s.host, "0"))
		if err != nil {
			t.Fatalf("udp socket: %v", err)
		}
		to, err := net.ResolveUDPAddr("udp", s.addr)
		if err != nil {
			t.Fatalf("resolve %s: %v", s.addr, err)
		}
		p.udp, p.to = pc, to
		t.Cleanup(func() { pc.Close() })
	case "tcp":
		c, err := net.DialTimeout("tcp", s.addr, 2*time.Second)
		if err != nil {
			t.Fatalf("tcp dial: %v", err)
		}
		p.conn = c
		p.res = make(chan *sip.Response, 16)
		p.closed = make(chan struct{})
		go p.readStream()
		t.Cleanup(func() { c.Close() })
	case "tls":
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Second}, "tcp", s.tlsAddr,
			&tls.Config{RootCAs: s.ca.Pool})
		if err != nil {
			t.Fatalf("tls dial: %v", err)
		}
		p.conn = c
		p.res = make(chan *sip.Response, 16)
		p.closed = make(chan struct{})
		go p.readStream()
		t.Cleanup(func() { c.Close() })
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	return p
}

// readStream frames the TCP (or TLS) byte stream into responses (RFC 3261 18.3:
// Content-Length delimits messages on a stream).
func (p *peer) readStream() {
	defer close(p.closed)
	stream := sip.NewParser().NewSIPStream()
	defer stream.Close()
	buf := make([]byte, 65536)
	for {
		n, err := p.conn.Read(buf)
		if err != nil {
			return
		}
		perr := stream.ParseSIPStream(buf[:n], func(m sip.Message) {
			if r, ok := m.(*sip.Response); ok {
				p.res <- r
			}
		})
		if perr != nil && !errors.Is(perr, sip.ErrParseSipPartial) {
			return
		}
	}
}

// local is the peer's own address, which goes into the top Via.
func (p *peer) local() string {
	if p.udp != nil {
		return p.udp.LocalAddr().String()
	}
	return p.conn.LocalAddr().String()
}

func (p *peer) send(b []byte) error {
	if p.udp != nil {
		_, err := p.udp.WriteTo(b, p.to)
		return err
	}
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.conn.Write(b)
	return err
}

// recv returns the next response, or errSilent when none comes within d.
// A TCP connection closed by the server is also silence.
func (p *peer) recv(d time.Duration) (*sip.Response, error) {
	if p.udp != nil {
		buf := make([]byte, 65536)
		deadline := time.Now().Add(d)
		for {
			_ = p.udp.SetReadDeadline(deadline)
			n, _, err := p.udp.ReadFrom(buf)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					return nil, errSilent
				}
				return nil, fmt.Errorf("udp read: %w", err)
			}
			m, err := sip.ParseMessage(buf[:n])
			if err != nil {
				return nil, fmt.Errorf("unparseable datagram from the server: %w: %q", err, buf[:n])
			}
			if r, ok := m.(*sip.Response); ok {
				return r, nil
			}
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-p.res:
		return r, nil
	case <-p.closed:
		select {
		case r := <-p.res:
			return r, nil
		default:
		}
		return nil, errSilent
	case <-t.C:
		return nil, errSilent
	}
}

// await returns the first response to the request with that Call-ID and
// CSeq method whose status passes want, skipping others (retransmissions,
// 100 Trying, replies to earlier requests).
func (p *peer) await(callID string, method sip.RequestMethod, d time.Duration, want func(int) bool) (*sip.Response, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil, errSilent
		}
		r, err := p.recv(left)
		if err != nil {
			return nil, err
		}
		cid, cseq := r.CallID(), r.CSeq()
		if cid == nil || cseq == nil || cid.Value() != callID || cseq.MethodName != method {
			continue
		}
		if want(r.StatusCode) {
			return r, nil
		}
	}
}

var probeSeq atomic.Uint64

// probe checks that the server still answers a well-formed OPTIONS with
// 200 over the transport, on a fresh socket or connection (a torture
// message may have made the server close the one it came on).
func probe(t *testing.T, s *server, transport string) {
	t.Helper()
	p := dial(t, s, transport)
	n := probeSeq.Add(1)
	callID := fmt.Sprintf("probe-%d-%d@torture", time.Now().UnixNano(), n)
	msg := fmt.Sprintf("OPTIONS sip:probe@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-probe-%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:torture@localhost>;tag=probe%d\r\n"+
		"To: <sip:probe@localhost>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Content-Length: 0\r\n\r\n",
		s.addr, transportToken(transport), p.local(), n, n, callID)
	if err := p.send([]byte(msg)); err != nil {
		t.Fatalf("liveness probe over %s: send: %v", transport, err)
	}
	r, err := p.await(callID, sip.OPTIONS, replyWait, func(c int) bool { return c >= 200 })
	if err != nil {
		t.Fatalf("liveness probe over %s: %v", transport, err)
	}
	if r.StatusCode != 200 {
		t.Fatalf("liveness probe over %s: got %d %s, want 200", transport, r.StatusCode, r.Reason)
	}
}

func transportToken(transport string) string {
	switch transport {
	case "tcp":
		return "TCP"
	case "tls":
		return "TLS"
	}
	return "UDP"
}

// topVia matches the sent-by (host and optional port) of the first Via
// header field value in a header block, allowing the LWS and line folding
// RFC 3261 25.1 permits around the sent-protocol slashes (RFC 4475
// wsinv folds its Via across three lines). Group 1 is the sent-by.
var topVia = regexp.MustCompile(`(?im)^(?:via|v)[ \t]*:[ \t\r\n]*` +
	`[^ \t\r\n/]+[ \t\r\n]*/[ \t\r\n]*[^ \t\r\n/]+[ \t\r\n]*/[ \t\r\n]*[^ \t\r\n;,]+` +
	`[ \t\r\n]+((?:\[[^\]\r\n]*\]|[^ \t\r\n;,:\[\]]+)(?:[ \t]*:[ \t]*[0-9]+)?)`)

// rewriteVia points the sent-by of a request's top Via at addr, so that
// the server's UDP replies come back to the test's socket: RFC 3261
// 18.2.2 sends them to the packet's source address but to the port in the
// sent-by (5060 when it has none), which no test may bind. Nothing else
// changes: not the Request-URI (a UAS on loopback gets the datagram
// whatever host the URI names, and sipgo does not check it), not the
// Content-Length, not the body. Responses and messages without a
// recognisable top Via are returned unchanged.
func rewriteVia(msg []byte, addr string) ([]byte, bool) {
	if bytes.HasPrefix(msg, []byte("SIP/")) {
		return msg, false // a response: nothing of ours to point at
	}
	head := msg
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		head = msg[:i+2]
	}
	loc := topVia.FindSubmatchIndex(head)
	if loc == nil {
		return msg, false
	}
	out := make([]byte, 0, len(msg)+len(addr))
	out = append(out, msg[:loc[2]]...)
	out = append(out, addr...)
	out = append(out, msg[loc[3]:]...)
	return out, true
}

// heap is a snapshot of the test process's memory (the server runs in
// it). TotalAlloc only grows, so a delta catches a transient allocation
// that a garbage collection has already given back.
type heap struct{ inuse, total uint64 }

func readHeap() heap {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heap{inuse: m.HeapInuse, total: m.TotalAlloc}
}

// memReport collects the figures the size attacks measure, for the log.
type memReport struct {
	mu    sync.Mutex
	lines []string
}

func (r *memReport) add(name string, before, after heap) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, fmt.Sprintf("%-48s allocated %9s, heap in use %+10s",
		name, kib(after.total-before.total), signedKiB(int64(after.inuse)-int64(before.inuse))))
}

func kib(n uint64) string { return strconv.FormatUint(n/1024, 10) + " KiB" }

func signedKiB(n int64) string { return strconv.FormatInt(n/1024, 10) + " KiB" }
