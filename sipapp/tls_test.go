package sipapp

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/conf"
	"webconf/test/testutil"
)

func TestTransportForURI(t *testing.T) {
	for _, tc := range []struct {
		uri, want string
	}{
		{"sip:bob@example.com", "UDP"},
		{"sip:bob@example.com;transport=udp", "UDP"},
		{"sip:bob@example.com;transport=TCP", "TCP"},
		{"sip:bob@example.com:5061;transport=tls", "TLS"},
		{"sips:bob@example.com", "TLS"},
		{"sips:bob@example.com;transport=tcp", "TLS"},
		{"sips:bob@[2001:db8::1]:5061;transport=tls", "TLS"},
		{"sip:proxy.example.com;lr;transport=tls", "TLS"},
		{"sips:bob@example.com;transport=udp", ""},
		{"sip:bob@example.com;transport=ws", ""},
		{"sip:bob@example.com;transport=sctp", ""},
	} {
		var u sip.Uri
		if err := sip.ParseUri(tc.uri, &u); err != nil {
			t.Fatalf("%s: %v", tc.uri, err)
		}
		got, err := TransportForURI(u)
		if got != tc.want || (tc.want == "") != errors.Is(err, ErrTransport) {
			t.Errorf("TransportForURI(%s) = %q, %v; want %q", tc.uri, got, err, tc.want)
		}
	}
}

func tlsOptions(t *testing.T, ca *testutil.CA, leaf *testutil.Leaf) Options {
	return Options{
		SIPListen: "127.0.0.1:0", SIPTLSListen: "127.0.0.1:0", RTPLow: 48200, RTPHigh: 48298,
		TLSCert: leaf.CertFile, TLSKey: leaf.KeyFile, TLSCAFile: ca.File,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func startTLSServer(t *testing.T, opt Options) *Server {
	t.Helper()
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return s
}

// TestTLSFilesAreCheckedAtStartUp: a missing or unreadable file, a file
// without the right PEM, or a key that is not the certificate's stops New
// with an error naming the key at fault.
func TestTLSFilesAreCheckedAtStartUp(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "a")
	other := ca.Issue(t, "b")
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unreadable := filepath.Join(dir, "unreadable.pem")
	if err := os.Mkdir(unreadable, 0o700); err != nil { // reading a directory fails, also as root
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		key  string
	}{
		{"no tls_cert", func(o *Options) { o.TLSCert = "" }, "tls_cert"},
		{"no tls_key", func(o *Options) { o.TLSKey = "" }, "tls_key"},
		{"missing cert file", func(o *Options) { o.TLSCert = filepath.Join(dir, "nope.pem") }, "tls_cert"},
		{"missing key file", func(o *Options) { o.TLSKey = filepath.Join(dir, "nope.pem") }, "tls_key"},
		{"unreadable cert", func(o *Options) { o.TLSCert = unreadable }, "tls_cert"},
		{"unreadable key", func(o *Options) { o.TLSKey = unreadable }, "tls_key"},
		{"cert file without a certificate", func(o *Options) { o.TLSCert = garbage }, "tls_cert"},
		{"key file without a key", func(o *Options) { o.TLSKey = leaf.CertFile }, "tls_key"},
		{"key of another certificate", func(o *Options) { o.TLSKey = other.KeyFile }, "tls_cert"},
		{"missing CA file", func(o *Options) { o.TLSCAFile = filepath.Join(dir, "nope.pem") }, "tls_ca_file"},
		{"CA file without a certificate", func(o *Options) { o.TLSCAFile = garbage }, "tls_ca_file"},
		{"TLS on another family than public_ip", func(o *Options) { o.SIPTLSListen = "[::1]:0" }, "sip_tls_listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := tlsOptions(t, ca, leaf)
			tc.edit(&opt)
			_, err := New(opt)
			var ke *conf.KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || ke.Section != "server" {
				t.Fatalf("New: %v; want an error naming [server] %s", err, tc.key)
			}
			if !strings.Contains(err.Error(), "[server] "+tc.key) {
				t.Fatalf("message %q does not name the key", err)
			}
		})
	}
	t.Run("a good pair", func(t *testing.T) {
		if _, err := New(tlsOptions(t, ca, leaf)); err != nil {
			t.Fatal(err)
		}
	})
}

// serverCert handshakes with addr and returns the certificate it served.
func serverCert(t *testing.T, addr string, ca *testutil.CA) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return Fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

// TestReloadTLS: a reload serves the new pair to new connections; a pair
// that does not load is an error and the one in use stays.
func TestReloadTLS(t *testing.T) {
	ca := testutil.NewCA(t)
	leaf := ca.Issue(t, "server")
	s := startTLSServer(t, tlsOptions(t, ca, leaf))
	if got := serverCert(t, s.TLSAddr(), ca); got != Fingerprint(leaf.Cert.Raw) {
		t.Fatal("the listener does not serve tls_cert")
	}
	// A broken key: the reload fails and the old pair is still served.
	if err := os.WriteFile(leaf.KeyFile, []byte("broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	var ke *conf.KeyError
	if err := s.ReloadTLS(); !errors.As(err, &ke) || ke.Key != "tls_key" {
		t.Fatalf("reload of a broken key: %v, want an error naming tls_key", err)
	}
	if got := serverCert(t, s.TLSAddr(), ca); got != Fingerprint(leaf.Cert.Raw) {
		t.Fatal("a failed reload changed the certificate")
	}
	// New files under the same names: the next handshake gets them.
	fresh := ca.Issue(t, "server")
	if err := s.ReloadTLS(); err != nil {
		t.Fatal(err)
	}
	if got := serverCert(t, s.TLSAddr(), ca); got != Fingerprint(fresh.Cert.Raw) {
		t.Fatal("the reloaded certificate is not served")
	}
}

// TestTLSSharesTheTCPConnectionBudget: TLS connections count against
// max_tcp_conns_per_source with TCP ones, and a silent TLS connection
// (also one that never completes its handshake) is closed after
// tcp_idle_timeout.
func TestTLSSharesTheTCPConnectionBudget(t *testing.T) {
	ca := testutil.NewCA(t)
	opt := tlsOptions(t, ca, ca.Issue(t, "server"))
	opt.Limits.MaxTCPConnsPerSource = 2
	opt.Limits.TCPIdleTimeout = 300 * time.Millisecond
	s := startTLSServer(t, opt)
	var held []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", s.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	// The server counts a connection when it accepts it.
	testutil.WaitFor(t, 5*time.Second, "2 TCP connections counted", func() bool { return s.Metrics().TCPConns == 2 })
	c, err := tls.Dial("tcp", s.TLSAddr(), &tls.Config{RootCAs: ca.Pool})
	if err == nil {
		c.Close()
		t.Fatal("a third connection from one source got a TLS handshake past max_tcp_conns_per_source=2")
	}
	if m := s.Metrics(); m.TCPRefused == 0 {
		t.Fatalf("no refusal counted: %+v", m.TCPRefused)
	}
	for _, c := range held {
		c.Close()
	}
	testutil.WaitFor(t, 5*time.Second, "the TCP connections released", func() bool { return s.Metrics().TCPConns == 0 })

	// Idle: a handshaken connection that says nothing, and a raw one that
	// never starts its handshake, are both closed.
	tc, err := tls.Dial("tcp", s.TLSAddr(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	raw, err := net.Dial("tcp", s.TLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for name, c := range map[string]net.Conn{"handshaken": tc, "silent": raw} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s TLS connection not closed after tcp_idle_timeout: %v", name, err)
		}
	}
}

// TestPublicIPMustBeReachableByRTP: RTP binds where SIP listens, so a
// public_ip of the other family is refused, naming the key.
func TestPublicIPMustBeReachableByRTP(t *testing.T) {
	for _, tc := range []struct {
		listen, public string
		ok             bool
	}{
		{"[::1]:0", "127.0.0.1", false},
		{"127.0.0.1:0", "::1", false},
		{"0.0.0.0:0", "2001:db8::1", false},
		{"[::1]:0", "::1", true},
		{"[::]:0", "192.0.2.1", true},
		{"0.0.0.0:0", "192.0.2.1", true},
		{"127.0.0.1:0", "::ffff:127.0.0.1", true},
	} {
		_, err := New(Options{SIPListen: tc.listen, PublicIP: tc.public, RTPLow: 48300, RTPHigh: 48398,
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
		var ke *conf.KeyError
		switch {
		case tc.ok && err != nil:
			t.Errorf("listen %s, public_ip %s: %v", tc.listen, tc.public, err)
		case !tc.ok && (!errors.As(err, &ke) || ke.Key != "public_ip"):
			t.Errorf("listen %s, public_ip %s: %v, want an error naming public_ip", tc.listen, tc.public, err)
		}
	}
}

func TestWantsSIPS(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{"INVITE sips:1@h SIP/2.0\r\nContact: <sip:a@h>\r\n", true},
		{"INVITE sip:1@h SIP/2.0\r\nRecord-Route: <sips:p1;lr>, <sip:p2;lr>\r\nContact: <sip:a@h>\r\n", true},
		{"INVITE sip:1@h SIP/2.0\r\nRecord-Route: <sip:p1;lr>\r\nContact: <sips:a@h>\r\n", false},
		{"INVITE sip:1@h SIP/2.0\r\nContact: <sips:a@h>\r\n", true},
		{"INVITE sip:1@h SIP/2.0\r\nContact: <sip:a@h;transport=tls>\r\n", false},
	} {
		m, err := sip.ParseMessage([]byte(tc.msg + "Via: SIP/2.0/TLS h;branch=z9hG4bK1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if got := wantsSIPS(m.(*sip.Request)); got != tc.want {
			t.Errorf("%q: wantsSIPS = %v", tc.msg, got)
		}
	}
}
