// Package xmlrpc serves an rpc.Table over XML-RPC exactly as SEMS's
// xmlrpc2di module (XmlRpc++ 0.8) does, so that scripts and GUI clients
// written for SEMS see the same bytes (spec/sems-webconference.md 1 and
// Appendix A.2/A.4).
//
// net/http is not used: it canonicalises header names (SEMS writes
// "Content-length") and adds Date, and SEMS's clients were only ever tested
// against XmlRpc++'s framing. The server is a small HTTP/1.x loop on raw
// TCP connections:
//
//   - Any path. POST with Content-length > 0 is an XML-RPC call; with
//     Options.JSON set, the path /jsonrpc goes to it instead (JSON-RPC 2.0,
//     Content-Type application/json; a nil or not-ok answer is 204 No
//     Content). With Options.JSON nil, /jsonrpc is an XML-RPC path like any
//     other, as in SEMS.
//   - POST without a positive Content-length (or with Transfer-Encoding,
//     which XmlRpc++ does not know): the connection is closed without a
//     reply, as SEMS does.
//   - Other methods: 405 Method Not Allowed, Allow: POST, then close (SEMS
//     never answers them and holds the connection).
//   - A body larger than Options.MaxBody: fault 400 "request too large"
//     (SEMS has no limit), then close, without reading the body.
//   - Keep-alive as XmlRpc++: HTTP/1.1 keeps the connection unless
//     "Connection: close"; HTTP/1.0 closes unless "Connection: keep-alive".
//     No Connection header is sent, as SEMS sends none.
//   - "Expect: 100-continue" is answered with "100 Continue" (curl sends it
//     for bodies over 1 KiB; XmlRpc++ lets it wait a second).
//
// Faults are HTTP 200. Their codes and strings:
//
//	error from the method: *rpc.Fault   its Code and Message
//	any other error, or a panic         500 "Exception occured." (sic, SEMS)
//	malformed XML, DOCTYPE, no name     -1  ": unknown method name" (A.1)
//	i8, nil, dateTime.iso8601, unknown  400 "unsupported parameter type"
//	  type, or text not parsing as its type (refused for every method,
//	  where SEMS refuses it only in methods that read their params)
//	body over MaxBody                   400 "request too large"      (ours)
//	arrays/structs deeper than MaxDepth 400 "parameters nested too deeply" (ours)
//
// Values (package rpc's list) are written as XmlRpc++ 0.8 writes them:
// strings bare inside <value> with all five of < > & ' " escaped, <i4>,
// <boolean>1|0, <double> in printf "%f" form, <array><data>, struct
// members in byte order of their names (XmlRpc++ keeps them in a
// std::map), base64 with CRLF after every 72 characters, nil as
// <i4>0</i4>. Reading is a real XML parser where XmlRpc++ scans strings,
// so a few inputs differ on purpose: numeric character references are
// decoded, CR LF in text becomes LF (XML 1.0 section 2.11), ints must fit
// 32 bits, and non-UTF-8 bodies must declare ISO-8859-1 or US-ASCII. Bytes
// after </methodCall> are ignored, as XmlRpc++ ignores them; a struct
// member named twice keeps its first value (std::map insert).
//
// system.multicall is XmlRpc++'s built-in and so lives here, not in the
// table: one parameter, an array of {methodName, params} structs; the
// result holds [value] or {faultCode, faultString} per call. A nested
// system.multicall is refused with a fault item (XmlRpc++ recurses into
// the outer call's parameters forever). Each inner call is a separate
// table call, so per-call rate limits in the table apply to each.
package xmlrpc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"webconf/rpc"
)

// Defaults for Options' zero fields.
const (
	DefaultMaxBody     = 1 << 20
	DefaultMaxDepth    = 100
	DefaultReadTimeout = 30 * time.Second
	DefaultIdleTimeout = 120 * time.Second
	DefaultMaxConns    = 256
	// DefaultMaxConnsPerSource leaves most of DefaultMaxConns to other
	// clients when one address holds all it may.
	DefaultMaxConnsPerSource = 16
	DefaultHeaderTimeout     = 5 * time.Second

	// maxHeader caps the request line plus headers.
	maxHeader = 16 << 10
)

// Fault codes and strings of this codec (see the package comment).
const (
	faultInternal  = 500
	msgInternal    = "Exception occured."
	faultMalformed = -1
	msgMalformed   = ": unknown method name"
	faultRequest   = 400
	msgUnsupported = "unsupported parameter type"
	msgTooLarge    = "request too large"
	msgTooDeep     = "parameters nested too deeply"

	multicall          = "system.multicall"
	msgMulticallArray  = multicall + ": Invalid argument (expected an array)"
	msgMulticallStruct = multicall + ": Invalid argument (expected a struct with members methodName and params)"
	msgMulticallNested = multicall + ": nested system.multicall is not allowed"
)

// Options configure a Server; zero fields take the defaults above.
type Options struct {
	// MaxBody bounds a request body; larger ones get a fault unread.
	MaxBody int
	// MaxDepth bounds nested arrays/structs in the parameters.
	MaxDepth int
	// JSON, when set, answers POST /jsonrpc. It must not keep body after
	// returning (the buffer is reused). ok=false means no response body
	// (JSON-RPC notifications): 204 No Content.
	JSON func(ctx context.Context, body []byte) (resp []byte, ok bool)
	// ReadTimeout bounds reading one request's headers and body, from
	// the connection's opening or a keep-alive request's first byte; it
	// is also the write timeout of the response. HeaderTimeout bounds the
	// request line and headers alone, from the same moment (negative: only
	// ReadTimeout does), so that a connection holding half a request
	// (slowloris) keeps its slot a few seconds, not ReadTimeout.
	// IdleTimeout bounds the wait between keep-alive requests. The idle
	// wait and a write may last up to an eighth longer than their bounds:
	// those deadlines are moved only when they must be, not at every
	// request (serveConn).
	ReadTimeout, HeaderTimeout, IdleTimeout time.Duration
	// MaxConns bounds concurrent connections; connections beyond it are
	// accepted and closed at once. MaxConnsPerSource bounds those from one
	// source address, checked first, so that one address cannot take the
	// MaxConns slots from every other client (negative: no per-source
	// bound).
	MaxConns, MaxConnsPerSource int
	// TrustedProxies are HTTP reverse proxies: their connections are not
	// bounded by MaxConnsPerSource, and their requests are charged to the
	// client X-Forwarded-For names (rpc.Trusted.ClientOf).
	TrustedProxies rpc.Trusted
	// Log receives connection errors and method panics; nil discards.
	Log *slog.Logger
}

// Server is an XML-RPC (and optionally JSON-RPC) server over raw TCP.
type Server struct {
	t      *rpc.Table
	o      Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	lns      map[net.Listener]struct{}
	conns    map[net.Conn]struct{}
	sources  map[netip.Addr]int // open connections per source address
	lastWarn time.Time          // of a refused connection, to bound the log
	refused  atomic.Uint64
	wg       sync.WaitGroup
	// unknownOnce logs the first request from a trusted proxy that does
	// not say who its client is.
	unknownOnce sync.Once
}

// NewServer returns a server of t's methods.
func NewServer(t *rpc.Table, o Options) *Server {
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = DefaultMaxDepth
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = DefaultReadTimeout
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = DefaultHeaderTimeout
	}
	if o.HeaderTimeout < 0 || o.HeaderTimeout > o.ReadTimeout {
		o.HeaderTimeout = o.ReadTimeout
	}
	if o.MaxConns <= 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerSource == 0 {
		o.MaxConnsPerSource = DefaultMaxConnsPerSource
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		t: t, o: o, log: log, ctx: ctx, cancel: cancel,
		lns: map[net.Listener]struct{}{}, conns: map[net.Conn]struct{}{}, sources: map[netip.Addr]int{},
	}
}

// Serve accepts connections on ln until Close; it then returns nil. Other
// accept errors are returned (transient ones, such as running out of file
// descriptors, are retried with a backoff).
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			if !transient(err) {
				return fmt.Errorf("xmlrpc: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Warn("xmlrpc: accept failed, retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-s.ctx.Done():
			}
			continue
		}
		backoff = 0
		accepted := time.Now()
		src := sourceAddr(c)
		s.mu.Lock()
		var refuse string
		switch {
		case s.closed:
			refuse = "closed"
		case s.o.MaxConnsPerSource > 0 && s.sources[src] >= s.o.MaxConnsPerSource && !s.o.TrustedProxies.Contains(src):
			refuse = "per-source connection limit reached"
		case len(s.conns) >= s.o.MaxConns:
			refuse = "connection limit reached"
		}
		if refuse != "" {
			warn := refuse != "closed" && accepted.Sub(s.lastWarn) >= warnEvery
			if warn {
				s.lastWarn = accepted
			}
			s.mu.Unlock()
			if refuse != "closed" {
				s.refused.Add(1)
			}
			if warn {
				s.log.Warn("xmlrpc: "+refuse+", closing (logged once per minute)", "remote", c.RemoteAddr(),
					"max", s.o.MaxConns, "max_per_source", s.o.MaxConnsPerSource, "refused_total", s.refused.Load())
			}
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.sources[src]++
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, src, accepted)
	}
}

// warnEvery bounds the log of refused connections: a flood is one line a
// minute (the count is in Refused).
const warnEvery = time.Minute

// sourceAddr is the address that per-source limits count: the peer's IP
// (an IPv4-mapped IPv6 address as IPv4), or the zero Addr for a listener
// that is not TCP.
func sourceAddr(c net.Conn) netip.Addr {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

// Conns reports the open connections and how many were closed at once
// since the start for being over MaxConns or MaxConnsPerSource.
func (s *Server) Conns() (open int, refused uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns), s.refused.Load()
}

func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.ENOBUFS)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close closes the listeners and every connection, cancels the context of
// running methods and waits for the connection goroutines to end.
func (s *Server) Close() error {
	s.mu.Lock()
	var err error
	if !s.closed {
		s.closed = true
		for ln := range s.lns {
			if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
				err = fmt.Errorf("xmlrpc: close listener: %w", e)
			}
		}
		for c := range s.conns {
			c.Close()
		}
		// Cancel only now: a method that ends sooner must not find its
		// connection still open and write to it.
		s.cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// head is what the server needs from a request's line and headers.
type head struct {
	post       bool
	jsonPath   bool
	http10     bool
	clSeen     bool
	clBad      bool // unparsable, negative or conflicting Content-length
	length     int
	connClose  bool
	connKeep   bool
	chunked    bool // any Transfer-Encoding
	expect100  bool
	headerSize int
	keepXFF    bool     // a trusted proxy's request: keep X-Forwarded-For
	xff        []string // its values, in order
}

func (h *head) keepAlive() bool {
	if h.http10 {
		return h.connKeep
	}
	return !h.connClose
}

var errBadRequest = errors.New("bad HTTP request head")

// bufPool holds request and response buffers; buffers beyond maxPooled are
// left to the GC so that one large request does not pin memory.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

const maxPooled = 256 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= maxPooled {
		*b = (*b)[:0]
		bufPool.Put(b)
	}
}

func (s *Server) serveConn(c net.Conn, src netip.Addr, accepted time.Time) {
	defer func() {
		c.Close()
		s.mu.Lock()
		delete(s.conns, c)
		if s.sources[src]--; s.sources[src] <= 0 {
			delete(s.sources, src)
		}
		s.mu.Unlock()
		s.wg.Done()
	}()
	r := bufio.NewReaderSize(c, readBuf)
	// A new connection must bring its request's head within HeaderTimeout
	// of its opening; a keep-alive one may wait IdleTimeout for the next
	// request's first byte, and the head then has HeaderTimeout. The
	// whole request has ReadTimeout from the same moment (slowloris:
	// reliability.md 1.8).
	//
	// Deadlines cost a timer update each, so they are set only where a
	// read can wait: a request that is whole in the buffer after its first
	// read (the usual small XML-RPC call) needs none, and the idle wait's
	// deadline is moved only when it would end before IdleTimeout or after
	// IdleTimeout plus an eighth, to the latter, so that busy connections
	// reset it a few times a minute, not at every request. The same holds
	// for the write deadline and ReadTimeout.
	dl := connDeadlines{c: c, readTimeout: s.o.ReadTimeout}
	began := accepted
	dl.setRead(began.Add(s.o.HeaderTimeout))
	proxied := s.o.TrustedProxies.Contains(src)
	var ctx context.Context
	if !proxied {
		// The same for every request; the client's key (its host, as
		// rpc.Peer reads it from the address) is worked out once.
		ctx = s.peerCtx(c, src, false, nil)
		ctx = rpc.WithClient(ctx, rpc.Peer(ctx))
	}
	for {
		if _, err := r.Peek(1); err != nil {
			return
		}
		if !headBuffered(r) {
			dl.setRead(began.Add(s.o.HeaderTimeout))
		}
		h, err := readHead(r, proxied)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.log.Debug("xmlrpc: bad or incomplete request head, closing", "remote", c.RemoteAddr(), "err", err)
			}
			return
		}
		if h.length > r.Buffered() {
			dl.setRead(began.Add(s.o.ReadTimeout))
		}
		rctx := ctx
		if proxied {
			rctx = s.peerCtx(c, src, true, h.xff)
		}
		if !s.serveRequest(rctx, &dl, r, &h) || !h.keepAlive() {
			return
		}
		if r.Buffered() == 0 {
			now := time.Now()
			idle, slack := s.o.IdleTimeout, s.o.IdleTimeout/8
			if dl.read.Before(now.Add(idle)) || dl.read.After(now.Add(idle+slack)) {
				dl.setRead(now.Add(idle + slack))
			}
			if _, err := r.Peek(1); err != nil {
				return
			}
		}
		began = time.Now()
	}
}

// readBuf is the size of a connection's read buffer: a request of the
// usual size arrives with one read.
const readBuf = 4096

// connDeadlines keeps the deadlines set on a connection so that they are
// changed only when they must be.
type connDeadlines struct {
	c           net.Conn
	readTimeout time.Duration
	read, write time.Time
}

func (d *connDeadlines) setRead(t time.Time) {
	if !t.Equal(d.read) {
		d.read = t
		d.c.SetReadDeadline(t)
	}
}

// armWrite makes sure that a write starting now has at least ReadTimeout
// (and at most an eighth more) to finish.
func (d *connDeadlines) armWrite() {
	now := time.Now()
	if d.write.Before(now.Add(d.readTimeout)) {
		d.write = now.Add(d.readTimeout + d.readTimeout/8)
		d.c.SetWriteDeadline(d.write)
	}
}

// headBuffered reports whether the reader holds a whole request head
// (up to an empty line), so that reading it cannot wait.
func headBuffered(r *bufio.Reader) bool {
	b, _ := r.Peek(r.Buffered())
	b = bytes.TrimLeft(b, "\r\n") // empty lines before the request line
	return bytes.Contains(b, []byte("\r\n\r\n")) || bytes.Contains(b, []byte("\n\n"))
}

// peerCtx says whom a request is charged to: the connection's address, or
// behind a trusted proxy the client its X-Forwarded-For names.
func (s *Server) peerCtx(c net.Conn, src netip.Addr, proxied bool, xff []string) context.Context {
	ctx := rpc.WithPeer(s.ctx, c.RemoteAddr())
	if !proxied {
		return ctx
	}
	key, ok := s.o.TrustedProxies.ClientOf(src, xff)
	if !ok {
		s.unknownOnce.Do(func() {
			s.log.Warn("xmlrpc: a request from a trusted proxy has no usable X-Forwarded-For; "+
				"such requests share one failure budget (logged once)", "proxy", src, "x_forwarded_for", xff, "key", rpc.UnknownClient)
		})
	}
	return rpc.WithClient(ctx, key)
}

// serveRequest answers one request whose head has been read; false means
// the connection must be closed.
func (s *Server) serveRequest(ctx context.Context, dl *connDeadlines, r *bufio.Reader, h *head) bool {
	c := dl.c
	switch {
	case !h.post:
		s.write(dl, resp405)
		lingeringClose(c)
		return false
	case h.chunked || h.clBad || h.length <= 0:
		return false // SEMS: no Content-length, no answer
	case h.length > s.o.MaxBody:
		out := getBuf()
		defer putBuf(out)
		if h.jsonPath && s.o.JSON != nil {
			*out = appendFramed((*out)[:0], jsonHeader, []byte(jsonTooLarge))
		} else {
			*out = appendFramed((*out)[:0], xmlHeader, appendFault(nil, faultRequest, msgTooLarge))
		}
		s.write(dl, *out)
		lingeringClose(c)
		return false
	}
	if h.expect100 && !h.http10 {
		if !s.write(dl, resp100) {
			return false
		}
	}
	in := getBuf()
	defer putBuf(in)
	if cap(*in) < h.length {
		*in = make([]byte, h.length)
	}
	body := (*in)[:h.length]
	if _, err := io.ReadFull(r, body); err != nil {
		s.log.Debug("xmlrpc: short body, closing", "remote", c.RemoteAddr(), "err", err)
		return false
	}

	out := getBuf()
	defer putBuf(out)
	// The response is built after a reserved gap for its HTTP header so
	// that header and body leave in one write without copying the body.
	const gap = 128
	buf := append((*out)[:0], make([]byte, gap)...)
	var hdr string
	if h.jsonPath && s.o.JSON != nil {
		resp, ok := s.callJSON(ctx, body)
		if !ok || resp == nil {
			return s.write(dl, resp204)
		}
		buf, hdr = append(buf, resp...), jsonHeader
	} else {
		buf, hdr = s.handleXML(ctx, buf, body), xmlHeader
	}
	*out = buf
	bodyLen := len(buf) - gap
	var hb [gap]byte
	hh := strconv.AppendInt(append(hb[:0], hdr...), int64(bodyLen), 10)
	hh = append(hh, "\r\n\r\n"...)
	start := gap - len(hh)
	copy(buf[start:], hh)
	return s.write(dl, buf[start:])
}

func (s *Server) write(dl *connDeadlines, b []byte) bool {
	dl.armWrite()
	if _, err := dl.c.Write(b); err != nil {
		s.log.Debug("xmlrpc: write failed", "remote", dl.c.RemoteAddr(), "err", err)
		return false
	}
	return true
}

// lingeringClose half-closes and drains briefly before the deferred Close,
// so that unread request bytes do not make the kernel reset the connection
// and destroy the answer before the client reads it.
func lingeringClose(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.CopyN(io.Discard, c, 256<<10)
	}
}

const (
	xmlHeader  = "HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: text/xml\r\nContent-length: "
	jsonHeader = "HTTP/1.1 200 OK\r\nServer: XMLRPC++ 0.8\r\nContent-Type: application/json\r\nContent-length: "
	// The JSON-RPC 2.0 answer to an oversized body (-32600, id unknown).
	jsonTooLarge = `{"jsonrpc":"2.0","error":{"code":-32600,"message":"invalid request: body too large"},"id":null}`
)

var (
	resp100 = []byte("HTTP/1.1 100 Continue\r\n\r\n")
	resp204 = []byte("HTTP/1.1 204 No Content\r\nServer: XMLRPC++ 0.8\r\n\r\n")
	resp405 = framed405("XML-RPC server: only POST is supported\n")
)

// framed405 answers a method other than POST. It says Connection: close
// because the server closes next (RFC 9112 9.6).
func framed405(body string) []byte {
	return []byte("HTTP/1.1 405 Method Not Allowed\r\nServer: XMLRPC++ 0.8\r\nAllow: POST\r\n" +
		"Content-Type: text/plain\r\nContent-length: " + strconv.Itoa(len(body)) +
		"\r\nConnection: close\r\n\r\n" + body)
}

func appendFramed(dst []byte, hdr string, body []byte) []byte {
	dst = append(dst, hdr...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}

func (s *Server) callJSON(ctx context.Context, body []byte) (resp []byte, ok bool) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("xmlrpc: JSON handler panicked", "panic", p, "stack", string(debug.Stack()))
			resp, ok = []byte(`{"jsonrpc":"2.0","error":{"code":-32603,"message":"internal error"},"id":null}`), true
		}
	}()
	return s.o.JSON(ctx, body)
}

// handleXML decodes and runs one XML-RPC call and appends the response
// body to dst.
func (s *Server) handleXML(ctx context.Context, dst []byte, body []byte) []byte {
	method, args, err := Decode(body, s.o.MaxDepth)
	if err != nil {
		code, msg := decodeFault(err)
		s.log.Debug("xmlrpc: request refused", "method", method, "err", err)
		return appendFault(dst, code, msg)
	}
	var v any
	if method == multicall {
		if v, err = s.multicall(ctx, args); err != nil {
			return appendFault(dst, faultMalformed, msgMulticallArray)
		}
	} else if v, err = s.call(ctx, method, args); err != nil {
		code, msg := faultOf(err)
		return appendFault(dst, code, msg)
	}
	n := len(dst)
	out, err := appendResponse(dst, v)
	if err != nil {
		s.log.Error("xmlrpc: cannot encode result", "method", method, "err", err)
		return appendFault(out[:n], faultInternal, msgInternal)
	}
	return out
}

func decodeFault(err error) (int, string) {
	switch {
	case errors.Is(err, ErrTooDeep):
		return faultRequest, msgTooDeep
	case errors.Is(err, ErrUnsupportedType):
		return faultRequest, msgUnsupported
	}
	return faultMalformed, msgMalformed
}

var errPanic = errors.New("method panicked")

// call runs one table method; a panic becomes an error, never a crash.
func (s *Server) call(ctx context.Context, method string, args []any) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("xmlrpc: method panicked", "method", method, "panic", p, "stack", string(debug.Stack()))
			v, err = nil, fmt.Errorf("xmlrpc: %s: %v: %w", method, p, errPanic)
		}
	}()
	return s.t.Call(ctx, method, args)
}

// faultOf maps a method error to its fault: a *rpc.Fault carries its own,
// anything else is SEMS's catch-all.
func faultOf(err error) (int, string) {
	var f *rpc.Fault
	if errors.As(err, &f) {
		return f.Code, f.Message
	}
	return faultInternal, msgInternal
}

var errMulticallArg = errors.New("system.multicall wants one array")

func (s *Server) multicall(ctx context.Context, args []any) (any, error) {
	if len(args) != 1 {
		return nil, errMulticallArg
	}
	calls, ok := args[0].([]any)
	if !ok {
		return nil, errMulticallArg
	}
	out := make([]any, len(calls))
	for i, c := range calls {
		m, _ := c.(map[string]any)
		name, okName := m["methodName"].(string)
		params, okParams := m["params"].([]any)
		switch {
		case !okName || !okParams:
			out[i] = faultItem(faultMalformed, msgMulticallStruct)
		case name == multicall:
			out[i] = faultItem(faultMalformed, msgMulticallNested)
		default:
			v, err := s.call(ctx, name, params)
			if err != nil {
				out[i] = faultItem(faultOf(err))
			} else {
				out[i] = []any{v}
			}
		}
	}
	return out, nil
}

func faultItem(code int, msg string) map[string]any {
	return map[string]any{"faultCode": code, "faultString": msg}
}

// readHead reads the request line and headers up to the empty line
// ("\r\n\r\n" or "\n\n", as XmlRpc++ accepts both). Only the fields the
// server needs are kept; nothing is allocated, except X-Forwarded-For when
// keepXFF (a trusted proxy's request).
func readHead(r *bufio.Reader, keepXFF bool) (head, error) {
	h := head{keepXFF: keepXFF}
	first := true
	long := false // inside a line longer than the reader's buffer
	for {
		line, err := r.ReadSlice('\n')
		h.headerSize += len(line)
		if h.headerSize > maxHeader {
			return h, fmt.Errorf("header block over %d bytes: %w", maxHeader, errBadRequest)
		}
		if err == bufio.ErrBufferFull {
			if first {
				return h, fmt.Errorf("request line too long: %w", errBadRequest)
			}
			long = true
			continue
		}
		if err != nil {
			return h, fmt.Errorf("read header: %w", err)
		}
		if long { // the tail of an over-long header line: ignored
			long = false
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if first {
			if len(line) == 0 {
				continue // RFC 9112 2.2: ignore empty lines before the request line
			}
			if err := h.requestLine(line); err != nil {
				return h, err
			}
			first = false
			continue
		}
		if len(line) == 0 {
			return h, nil
		}
		h.header(line)
	}
}

func (h *head) requestLine(line []byte) error {
	var fa [3][]byte
	f, ok := asciiFields(fa[:0], line)
	if !ok {
		f = bytes.Fields(line)
	}
	if len(f) != 3 {
		return fmt.Errorf("request line %.40q: %w", line, errBadRequest)
	}
	method, target, proto := f[0], f[1], f[2]
	switch {
	case string(proto) == "HTTP/1.0":
		h.http10 = true
	case len(proto) == 8 && bytes.HasPrefix(proto, []byte("HTTP/1.")):
	default:
		return fmt.Errorf("protocol %.20q: %w", proto, errBadRequest)
	}
	h.post = string(method) == "POST"
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		target = target[:i]
	}
	h.jsonPath = string(target) == "/jsonrpc"
	return nil
}

// asciiFields is bytes.Fields for an ASCII line, into f without
// allocating for up to cap(f) fields; ok false for a line with other
// bytes.
func asciiFields(f [][]byte, line []byte) (_ [][]byte, ok bool) {
	start := -1
	for i, c := range line {
		switch {
		case c >= 0x80:
			return nil, false
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			if start >= 0 {
				f = append(f, line[start:i])
				start = -1
			}
		case start < 0:
			start = i
		}
	}
	if start >= 0 {
		f = append(f, line[start:])
	}
	return f, true
}

func (h *head) header(line []byte) {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return // not a header line; XmlRpc++ ignores such lines too
	}
	name, val := line[:i], bytes.TrimSpace(line[i+1:])
	switch {
	case bytes.EqualFold(name, []byte("Content-length")):
		n, ok := parseLength(val)
		if !ok || (h.clSeen && n != h.length) {
			h.clBad = true // conflicting lengths: request smuggling, refuse
		}
		h.clSeen, h.length = true, n
	case bytes.EqualFold(name, []byte("Transfer-Encoding")):
		h.chunked = true
	case bytes.EqualFold(name, []byte("Connection")):
		for tok := range bytes.SplitSeq(val, []byte(",")) {
			tok = bytes.TrimSpace(tok)
			h.connClose = h.connClose || bytes.EqualFold(tok, []byte("close"))
			h.connKeep = h.connKeep || bytes.EqualFold(tok, []byte("keep-alive"))
		}
	case bytes.EqualFold(name, []byte("Expect")):
		h.expect100 = bytes.EqualFold(val, []byte("100-continue"))
	case h.keepXFF && bytes.EqualFold(name, []byte("X-Forwarded-For")):
		h.xff = append(h.xff, string(val))
	}
}

// parseLength accepts 1 to 10 decimal digits only (no sign, no spaces
// inside), so that no two servers can read one header differently.
func parseLength(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 10 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
