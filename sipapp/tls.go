package sipapp

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
)

// tlsHandshakeTimeout bounds a TLS handshake on the SIP listener: a peer
// that opens a connection and stalls the handshake loses it (the idle
// timeout still bounds every later read).
const tlsHandshakeTimeout = 10 * time.Second

// Transports as sipgo names them (sip.Request.Transport). A call's
// transport is one of these; "TLS" means the call's signalling is
// encrypted: it arrived over our TLS listener, or we placed it over TLS.
const (
	TransportUDP = "UDP"
	TransportTCP = "TCP"
	TransportTLS = "TLS"
)

// ErrTransport is wrapped by TransportForURI for a URI we cannot reach.
var ErrTransport = errors.New("unsupported SIP transport")

// TransportForURI is the transport a request to u (a Request-URI, or the
// outbound proxy or top Route) travels over, as RFC 3261 19.1 and RFC 3263
// 4.1 choose it without DNS: a sips: URI is TLS over TCP (RFC 5630 3.1.3:
// also with ;transport=tcp or the deprecated ;transport=tls; SIPS over UDP
// does not exist), otherwise ;transport=tls is TLS, ;transport=tcp TCP,
// and ;transport=udp or none UDP. Any other transport (ws, sctp, ...) is an
// error wrapping ErrTransport.
func TransportForURI(u sip.Uri) (string, error) {
	tp := ""
	if u.UriParams != nil {
		if v, ok := u.UriParams.Get("transport"); ok {
			tp = strings.ToLower(v)
		}
	}
	if u.IsEncrypted() {
		switch tp {
		case "", "tcp", "tls":
			return TransportTLS, nil
		}
		return "", fmt.Errorf("%w: sips: with transport=%s", ErrTransport, tp)
	}
	switch tp {
	case "", "udp":
		return TransportUDP, nil
	case "tcp":
		return TransportTCP, nil
	case "tls":
		return TransportTLS, nil
	}
	return "", fmt.Errorf("%w: transport=%s", ErrTransport, tp)
}

// certStore holds the TLS listener's certificate behind an atomic pointer:
// GetCertificate reads it for every handshake, ReloadTLS swaps it. A
// connection keeps the certificate it was handshaken with, so a reload
// never touches live calls.
type certStore struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	mu                sync.Mutex // serialises reloads
}

func (cs *certStore) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return cs.cur.Load(), nil
}

// keyErr is a problem with one [server] key, worded as the config's own
// errors are.
func keyErr(key, format string, args ...any) error {
	return &conf.KeyError{Section: "server", Key: key, Problem: fmt.Sprintf(format, args...)}
}

// loadKeyPair reads a PEM certificate chain and its private key. Every
// error names the key at fault: tls_cert (unreadable, no certificate, a
// certificate that does not parse), tls_key (unreadable, no private key)
// or both (a key that is not the certificate's).
func loadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, keyErr("tls_cert", "%v", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, keyErr("tls_key", "%v", err)
	}
	if !hasPEM(certPEM, func(t string) bool { return t == "CERTIFICATE" }) {
		return nil, keyErr("tls_cert", "%s holds no PEM CERTIFICATE", certFile)
	}
	if !hasPEM(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") }) {
		return nil, keyErr("tls_key", "%s holds no PEM PRIVATE KEY", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, keyErr("tls_cert", "%s and tls_key %s are not a certificate and its key: %v", certFile, keyFile, err)
	}
	if pair.Leaf == nil {
		if pair.Leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, keyErr("tls_cert", "%s: %v", certFile, err)
		}
	}
	return &pair, nil
}

func hasPEM(data []byte, want func(string) bool) bool {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if want(b.Type) {
			return true
		}
	}
}

// Fingerprint is the SHA-256 of a certificate's DER, in hex: what the log
// says of a loaded certificate, and what an operator compares with
// `openssl x509 -fingerprint -sha256`.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// clientTLSConfig is how we dial TLS (dial-out): peers' certificates are
// verified against the system roots, plus caFile when set; verify=false
// skips verification (tests only: it lets anyone in the path read and
// change the call).
func clientTLSConfig(caFile string, verify bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if !verify {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	if caFile == "" {
		return cfg, nil // nil RootCAs: the system roots
	}
	pemData, err := os.ReadFile(caFile)
	if err != nil {
		return nil, keyErr("tls_ca_file", "%v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pemData) {
		return nil, keyErr("tls_ca_file", "%s holds no PEM CERTIFICATE", caFile)
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// tlsListener makes the server side of TLS over a (limited) TCP listener.
// The handshake runs in sipgo's reader goroutine on the first read, bounded
// by tlsHandshakeTimeout.
type tlsListener struct {
	net.Listener
	cfg *tls.Config
	log *slog.Logger
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsServerConn{Conn: tls.Server(c, l.cfg), log: l.log}, nil
}

type tlsServerConn struct {
	*tls.Conn
	log  *slog.Logger
	once sync.Once
	err  error
}

// Read completes the handshake first. A failed handshake reads as EOF, so
// that sipgo closes the connection quietly: a stranger's failed handshakes
// must not fill the log at error level.
func (c *tlsServerConn) Read(b []byte) (int, error) {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), tlsHandshakeTimeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.log.Debug("sip tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.err = io.EOF
		}
	})
	if c.err != nil {
		return 0, c.err
	}
	return c.Conn.Read(b)
}

// TLSEnabled reports whether the server has a SIP TLS listener.
func (s *Server) TLSEnabled() bool { return s.certs != nil }

// TLSAddr is the bound SIP TLS address ("" without a TLS listener).
func (s *Server) TLSAddr() string {
	if s.tls == nil {
		return ""
	}
	return s.tls.Addr().String()
}

// ReloadTLS reads tls_cert and tls_key again and serves the new pair to
// every new TLS connection; connections already open (and their calls)
// keep theirs. A pair that cannot be loaded changes nothing and is the
// error. Without a TLS listener it does nothing.
func (s *Server) ReloadTLS() error {
	cs := s.certs
	if cs == nil {
		return nil
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	pair, err := loadKeyPair(cs.certFile, cs.keyFile)
	if err != nil {
		return fmt.Errorf("sipapp: tls reload, keeping the certificate in use: %w", err)
	}
	cs.cur.Store(pair)
	s.logCert("sip tls certificate loaded", pair)
	return nil
}

func (s *Server) logCert(msg string, pair *tls.Certificate) {
	s.log.Info(msg, "subject", pair.Leaf.Subject.String(), "serial", pair.Leaf.SerialNumber.String(),
		"not_after", pair.Leaf.NotAfter.UTC().Format(time.RFC3339), "sha256", Fingerprint(pair.Leaf.Raw))
}

// setupTLS loads what TLS needs at start-up, so that a bad file stops it
// naming its key: the listener's certificate and key, and the CAs dial-outs
// trust.
func (s *Server) setupTLS() error {
	o := s.opt
	cli, err := clientTLSConfig(o.TLSCAFile, !o.TLSSkipVerify)
	if err != nil {
		return fmt.Errorf("sipapp: %w", err)
	}
	s.tlsClient = cli
	if o.SIPTLSListen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(o.SIPTLSListen)
	if err != nil {
		return fmt.Errorf("sipapp: %w", keyErr("sip_tls_listen", "%q: %v", o.SIPTLSListen, err))
	}
	if h, err := netip.ParseAddr(host); err == nil && !(h.Is6() && h.IsUnspecified()) && h.Unmap().Is4() != s.ip.Is4() {
		// Our Contact over TLS names public_ip at the TLS port.
		return fmt.Errorf("sipapp: %w", keyErr("sip_tls_listen", "%s is not of the family of public_ip %s, which TLS Contacts name", h, s.ip))
	}
	if o.TLSCert == "" {
		return fmt.Errorf("sipapp: %w", keyErr("tls_cert", "must be set with sip_tls_listen"))
	}
	if o.TLSKey == "" {
		return fmt.Errorf("sipapp: %w", keyErr("tls_key", "must be set with sip_tls_listen"))
	}
	pair, err := loadKeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return fmt.Errorf("sipapp: %w", err)
	}
	s.certs = &certStore{certFile: o.TLSCert, keyFile: o.TLSKey}
	s.certs.cur.Store(pair)
	s.logCert("sip tls certificate loaded", pair)
	return nil
}

// serverTLSConfig serves the certificate of the moment to each handshake.
func (s *Server) serverTLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.certs.get}
}

// checkFamilies refuses a public address that the RTP sockets cannot
// receive at: RTP binds where SIP listens, so a listener on one IPv6
// address cannot take media sent to an IPv4 public_ip, nor one on an IPv4
// address (0.0.0.0 included) media sent to an IPv6 one. A listener on ::
// takes both (Linux's dual-stack sockets), and a public address of the
// listener's family may differ from it (NAT).
func checkFamilies(bind, public netip.Addr) error {
	if bind.Is6() && bind.IsUnspecified() {
		return nil
	}
	if bind.Is4() != public.Is4() {
		return fmt.Errorf("sipapp: %w", keyErr("public_ip", "%s is not of the family of sip_listen's %s: RTP listens there and could not receive media sent to it", public, bind))
	}
	return nil
}

// contactURI is our address for a dialog over trans: the SIP port (UDP and
// TCP share it) or the TLS port, with ;transport= as RFC 3261 19.1.1 names
// it. A dialog over TLS whose request named a sips: URI gets a sips:
// Contact (RFC 3261 12.1.1, 8.1.1.8), without ;transport=, which RFC 5630
// 3.1.3 deprecates for sips (it is TLS over TCP by definition).
func (s *Server) contactURI(trans string, sips bool) string {
	port := 5060
	if a, err := netip.ParseAddrPort(s.udp.LocalAddr().String()); err == nil {
		port = int(a.Port())
	}
	if trans == TransportTLS && s.tls != nil {
		if a, err := netip.ParseAddrPort(s.tls.Addr().String()); err == nil {
			port = int(a.Port())
		}
	}
	hp := netip.AddrPortFrom(s.ip, uint16(port)).String()
	if trans == TransportTLS && sips {
		return "sips:" + hp
	}
	return "sip:" + hp + ";transport=" + strings.ToLower(trans)
}

// wantsSIPS reports whether a dialog-creating request asks for SIPS (RFC
// 3261 12.1.1): a sips: Request-URI, or a sips: top Record-Route, or with
// no Record-Route a sips: Contact.
func wantsSIPS(req *sip.Request) bool {
	if req.Recipient.IsEncrypted() {
		return true
	}
	if rr := req.GetHeader("Record-Route"); rr != nil {
		var u sip.Uri
		v := strings.TrimSpace(rr.Value())
		if i := strings.IndexByte(v, '<'); i >= 0 {
			if j := strings.IndexByte(v[i:], '>'); j > 0 {
				v = v[i+1 : i+j]
			}
		}
		return sip.ParseUri(v, &u) == nil && u.IsEncrypted()
	}
	if ct := req.Contact(); ct != nil {
		return ct.Address.IsEncrypted()
	}
	return false
}
