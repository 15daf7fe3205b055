package e2e

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtp"

	"webconf/conf"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/sipapp"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// withRTPSocket sets [server] rtp_socket.
func withRTPSocket(mode string) func(*conf.Config) {
	return func(c *conf.Config) { c.Server.RTPSocket = mode }
}

// startOneWorker starts a server with one mixer worker: one shared
// socket, which every shared call then advertises.
func startOneWorker(t *testing.T, edit func(*conf.Config)) *server {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name())
	return startLogged(t, testPrompts(), edit, log, func(o *sipapp.Options) { o.MixWorkers = 1 })
}

// TestSharedSocketCallsHearEachOther: with rtp_socket=shared, calls in a
// room advertise one port (the worker's shared socket) and each hears the
// others but not itself: the demultiplexing by source keeps them apart.
func TestSharedSocketCallsHearEachOther(t *testing.T) {
	t.Parallel()
	srv := startOneWorker(t, withRTPSocket("shared"))
	free := srv.FreeRTPPorts()
	const n = 4
	amp := 1500.0
	phones := make([]*phone.Phone, n)
	for i := range phones {
		phones[i] = srv.direct(t, "shared", phone.Config{FromUser: fmt.Sprintf("caller%d", i), ToneAmplitude: amp})
		phones[i].SetTone(callerTone(i))
	}
	for i, p := range phones {
		if p.ServerRTP().Port != phones[0].ServerRTP().Port {
			t.Fatalf("caller %d was given port %d, caller 0 port %d: not one shared socket", i, p.ServerRTP().Port, phones[0].ServerRTP().Port)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "all callers connected", func() bool { return srv.connected("shared") == n })
	if srv.FreeRTPPorts() != free {
		t.Fatalf("%d free RTP ports with %d calls on the shared socket, %d before: shared calls take none", srv.FreeRTPPorts(), n, free)
	}
	eachHearsAllButSelf(t, phones, amp*0.5, amp*0.05)
}

// TestAutoGivesPhonesBehindOneNATTheirOwnPorts: in auto mode (the
// default), two phones behind one NAT address (SIP and RTP from the same
// IP, different ports, SDPs naming private addresses) each get a port of
// their own, are learned and hear each other; a phone whose SDP names the
// address its SIP comes from gets the worker's shared port.
func TestAutoGivesPhonesBehindOneNATTheirOwnPorts(t *testing.T) {
	t.Parallel()
	srv := startOneWorker(t, nil)
	amp := 1500.0
	// The SDP ports are nobody's: the packets come from the phones' own.
	nat1 := srv.direct(t, "nat2", phone.Config{FromUser: "nat1", SDPAddr: "192.168.1.10", SDPPort: 4000, ToneAmplitude: amp})
	nat2 := srv.direct(t, "nat2", phone.Config{FromUser: "nat2", SDPAddr: "192.168.1.11", SDPPort: 4000, ToneAmplitude: amp})
	pub1 := srv.direct(t, "nat2", phone.Config{FromUser: "pub1", ToneAmplitude: amp})
	pub2 := srv.direct(t, "nat2", phone.Config{FromUser: "pub2", ToneAmplitude: amp})
	p1, p2 := nat1.ServerRTP().Port, nat2.ServerRTP().Port
	shared := pub1.ServerRTP().Port
	if p1 == p2 || p1 == shared || p2 == shared {
		t.Fatalf("the NAT'd phones were given ports %d and %d, the shared port is %d: they need ports of their own", p1, p2, shared)
	}
	if pub2.ServerRTP().Port != shared {
		t.Fatalf("the public phones were given ports %d and %d: auto must share", shared, pub2.ServerRTP().Port)
	}
	phones := []*phone.Phone{nat1, nat2, pub1, pub2}
	for i, p := range phones {
		p.SetTone(callerTone(i))
	}
	testutil.WaitFor(t, 5*time.Second, "all callers connected", func() bool { return srv.connected("nat2") == len(phones) })
	eachHearsAllButSelf(t, phones, amp*0.5, amp*0.05)
}

// TestSRTPOnASharedSocket: two SRTP calls over TLS and a plain one on one
// shared socket hear each other; plain RTP forged from an SRTP phone's
// latched address is dropped as unauthenticated.
func TestSRTPOnASharedSocket(t *testing.T) {
	t.Parallel()
	ca := testutil.NewCA(t)
	srvLeaf := ca.Issue(t, "server")
	s := startOneWorker(t, func(c *conf.Config) {
		c.Server.SIPTLSListen = "127.0.0.1:0"
		c.Server.TLSCert, c.Server.TLSKey = srvLeaf.CertFile, srvLeaf.KeyFile
		c.Server.TLSCAFile = ca.File
		c.Server.RTPSocket = "shared"
	})
	leaf := ca.Issue(t, "phone")
	tlsCfg := func(user string, srtp *phone.SRTP) phone.Config {
		cfg := tlsPhone(ca, leaf, user)
		cfg.SRTP = srtp
		cfg.Headers = []sip.Header{appParam("room=shared-srtp")}
		return cfg
	}
	a := dialAt(t, s.TLSAddr(), tlsCfg("savp", savp))
	b := dialAt(t, s.TLSAddr(), tlsCfg("besteffort", &phone.SRTP{Suites: []string{phone.SuiteAES32}}))
	c := s.direct(t, "shared-srtp", phone.Config{FromUser: "plain"})
	if !a.Secure() || !b.Secure() || c.Secure() {
		t.Fatalf("secure: a %v b %v c %v, want true true false", a.Secure(), b.Secure(), c.Secure())
	}
	if pa, pb, pc := a.ServerRTP().Port, b.ServerRTP().Port, c.ServerRTP().Port; pa != pb || pb != pc {
		t.Fatalf("ports %d %d %d: not one shared socket", pa, pb, pc)
	}
	a.SetTone(500)
	b.SetTone(700)
	c.SetTone(900)
	hearsAllButSelf(t, a, 500, []float64{700, 900}, 1000, 200)
	hearsAllButSelf(t, b, 700, []float64{500, 900}, 1000, 200)
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1000, 200)
	secureLeg(t, s, a.RemoteTag(), "the RTP/SAVP phone")
	secureLeg(t, s, b.RemoteTag(), "the best-effort phone")
	if n := a.Unauthenticated() + b.Unauthenticated(); n != 0 {
		t.Fatalf("the SRTP phones dropped %d packets", n)
	}
	injectPlainRTP(t, a, 50)
	testutil.WaitFor(t, 5*time.Second, "50 plain packets dropped as unauthenticated", func() bool {
		st, _ := s.LegStats(a.RemoteTag())
		return st.RxUnauth >= 50
	})
	hearsAllButSelf(t, c, 900, []float64{500, 700}, 1000, 200)
}

// TestIntruderOnASharedPortTakesNoCall (spec/reliability.md 1.4): calls
// share a port; one has been answered but its phone has not spoken yet
// (learning is open for it). A stream in sequence, paced like a phone's,
// from an IP no call's SIP or SDP names is dropped: nobody hears it, it
// gets nothing back, and the silent phone is latched when it speaks.
func TestIntruderOnASharedPortTakesNoCall(t *testing.T) {
	t.Parallel()
	srv := startOneWorker(t, withRTPSocket("shared"))
	b := srv.direct(t, "intrude", phone.Config{FromUser: "b"})
	c := srv.direct(t, "intrude", phone.Config{FromUser: "c"})
	a := srv.direct(t, "intrude", phone.Config{FromUser: "a", Silent: true})
	b.SetTone(700)
	c.SetTone(900)
	hearsAllButSelf(t, b, 700, []float64{900}, 1500, 200)
	port := a.ServerRTP()
	if b.ServerRTP().Port != port.Port || c.ServerRTP().Port != port.Port {
		t.Fatal("the calls do not share a port")
	}
	// From 127.0.0.2 (Linux routes 127/8 to lo): not the phones' IP.
	intruder := &rtpSender{conn: udpOn(t, "127.0.0.2"), hdr: rtp.Header{Version: 2, PayloadType: g711.PCMU, SSRC: 0xbadbad}, osc: tone.NewOsc(fIntruder, 8000)}
	intruder.send(t, 50, port)
	testutil.WaitFor(t, 5*time.Second, "the intruder's packets counted", func() bool {
		return srv.Metrics().RTPForeign >= 50
	})
	if n := intruder.received(t, 200*time.Millisecond); n > 0 {
		t.Fatalf("the intruder received %d packets of the room's mix", n)
	}
	if lvl := b.Level(fIntruder, 800*time.Millisecond); lvl > 200 {
		t.Fatalf("b hears the intruder's tone at %.0f", lvl)
	}
	if st, _ := srv.LegStats(a.RemoteTag()); st.RxPackets != 0 {
		t.Fatalf("the silent call accepted the intruder's packets: %+v", st)
	}
	a.SetTone(500)
	a.SetSending(true)
	hearsAllButSelf(t, a, 500, []float64{700, 900}, 1500, 200)
	hearsAllButSelf(t, b, 700, []float64{500, 900}, 1500, 200)
}

// udpOn is a UDP socket on ip that lives as long as the test.
func udpOn(t *testing.T, ip string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
