package control

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/dsp/tone"
	"webconf/test/phone"
	"webconf/test/testutil"
)

var sipTLSAddr = regexp.MustCompile(`msg="sip listening" .* tls=(\S+)`)

// servedCert handshakes with addr and returns the SHA-256 of the leaf it
// served.
func servedCert(t *testing.T, addr string, ca *testutil.CA) string {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return fingerprint(c.ConnectionState().PeerCertificates[0].Raw)
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// hears waits until p hears freq (and not notFreq) in 200 ms of audio.
func hears(t *testing.T, p *phone.Phone, freq, notFreq float64, what string) {
	t.Helper()
	err := p.WaitAudio(testutil.Ctx(t, 10*time.Second), func(a []int16) bool {
		return tone.Level(a, freq) > 1500 && tone.Level(a, notFreq) < 200
	}, 200*time.Millisecond)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestSIGHUPReloadsTheCertificate runs webconfd as a process with a call
// over TLS in a room with a UDP caller, replaces the certificate files and
// sends SIGHUP: a new TLS connection gets the new certificate, the live
// call still has audio both ways and hangs up with a BYE over its own TLS
// connection. A broken pair on the next SIGHUP is logged and the new
// certificate stays. (Before, SIGHUP's default action ended the process.)
func TestSIGHUPReloadsTheCertificate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	first := ca.Issue(t, "server")
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := filepath.Join(dir, "webconfd.conf")
	body := fmt.Sprintf("[server]\nsip_listen = 127.0.0.1:0\nsip_tls_listen = 127.0.0.1:0\ntls_cert = %s\ntls_key = %s\n"+
		"rtp_low_port = 36200\nrtp_high_port = 36398\ndata_dir = %s\n"+
		"[webconference]\nmaster_password = master\nserver_signature = %s\n[xmlrpc]\nxmlrpc_port = 0\n[http]\nlisten = 127.0.0.1:0\n",
		first.CertFile, first.KeyFile, filepath.Join(dir, "data"), sig)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd, addrs, log := testutil.DaemonLog(t, bin, cfg, sipAddr, sipTLSAddr)
	udpAddr, tlsAddr := addrs[0], addrs[1]
	if got := servedCert(t, tlsAddr, ca); got != fingerprint(first.Cert.Raw) {
		t.Fatal("the TLS listener does not serve tls_cert")
	}

	room := sip.NewHeader("P-App-Param", "room=hup")
	a, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: tlsAddr, Transport: "tls",
		TLS: ca.ServerConfig(ca.Issue(t, "phone")), FromUser: "secure", Headers: []sip.Header{room}})
	if err != nil {
		t.Fatalf("call over TLS: %v", err)
	}
	defer a.Close()
	b, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: udpAddr, FromUser: "plain", Headers: []sip.Header{room}})
	if err != nil {
		t.Fatalf("call over UDP: %v", err)
	}
	defer b.Close()
	a.SetTone(500)
	b.SetTone(700)
	hears(t, a, 700, 500, "the TLS caller hears the UDP caller")
	hears(t, b, 500, 700, "the UDP caller hears the TLS caller")

	second := ca.Issue(t, "server") // the same file names, new pair
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	log.Wait(t, regexp.MustCompile(`sip tls certificate loaded.*sha256=`+fingerprint(second.Cert.Raw)), 10*time.Second)
	if got := servedCert(t, tlsAddr, ca); got != fingerprint(second.Cert.Raw) {
		t.Fatalf("after SIGHUP a new connection got %s, want the new certificate %s", got, fingerprint(second.Cert.Raw))
	}

	// The live call goes on: new tones both ways, then a BYE over TLS.
	a.SetTone(900)
	b.SetTone(1100)
	hears(t, a, 1100, 900, "after SIGHUP the TLS caller hears the UDP caller")
	hears(t, b, 900, 1100, "after SIGHUP the UDP caller hears the TLS caller")
	if err := a.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("BYE over the TLS connection after SIGHUP: %v", err)
	}

	// A broken pair: logged, and the certificate in use stays.
	if err := os.WriteFile(second.KeyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	log.Wait(t, regexp.MustCompile(`certificate not reloaded.*tls_key`), 10*time.Second)
	if got := servedCert(t, tlsAddr, ca); got != fingerprint(second.Cert.Raw) {
		t.Fatal("a broken pair on SIGHUP replaced the certificate")
	}
	if err := b.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("the UDP caller's BYE: %v", err)
	}
}
