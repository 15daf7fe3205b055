package phone

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"webconf/dsp/g711"
)

func listen(t *testing.T, ctx context.Context, cfg CalleeConfig) *Callee {
	t.Helper()
	c, err := Listen(ctx, cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

func accept(t *testing.T, ctx context.Context, c *Callee) *Phone {
	t.Helper()
	p, err := c.Accept(ctx)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func waitDone(t *testing.T, ctx context.Context, p *Phone, who string) {
	t.Helper()
	select {
	case <-p.Done():
	case <-ctx.Done():
		t.Fatalf("%s: Done not closed: %v", who, ctx.Err())
	}
}

func TestCalleeAnswers(t *testing.T) {
	t.Run("an INVITE without auth is answered at once and audio flows both ways", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		caller := dial(t, ctx, Config{
			Server: c.Addr(), User: "bob", FromUser: "room42",
			Headers: []sip.Header{sip.NewHeader("X-Dialout", "yes")},
		})
		callee := accept(t, ctx, c)

		if callee.Codec() != g711.PCMU || caller.Codec() != g711.PCMU {
			t.Errorf("codecs: callee %d, caller %d; want PCMU", callee.Codec(), caller.Codec())
		}
		if callee.CallID() != caller.CallID() || callee.RemoteTag() != caller.LocalTag() || callee.LocalTag() != caller.RemoteTag() {
			t.Errorf("callee call-id/tags %q %q %q, caller %q %q %q", callee.CallID(), callee.LocalTag(), callee.RemoteTag(),
				caller.CallID(), caller.LocalTag(), caller.RemoteTag())
		}
		if got := callee.ServerRTP(); got.Port != caller.RTPConn().LocalAddr().(*net.UDPAddr).Port {
			t.Errorf("callee sends RTP to %v, caller listens on %v", got, caller.RTPConn().LocalAddr())
		}

		caller.SetTone(600)
		if err := callee.WaitLevel(ctx, 600, 3000, 200*time.Millisecond); err != nil {
			t.Fatalf("callee does not hear the caller: %v", err)
		}
		callee.SetTone(1000)
		if err := caller.WaitLevel(ctx, 1000, 3000, 200*time.Millisecond); err != nil {
			t.Fatalf("caller does not hear the callee: %v", err)
		}
		if l := callee.Level(1000, 200*time.Millisecond); l > 300 {
			t.Errorf("callee hears its own 1000 Hz at %.0f", l)
		}

		if got := c.Responses(); !slices.Equal(got, []int{200}) {
			t.Errorf("Responses() = %v, want [200]", got)
		}
		invs := c.Invites()
		if len(invs) != 1 {
			t.Fatalf("Invites() has %d requests, want 1", len(invs))
		}
		if h := invs[0].GetHeader("X-Dialout"); h == nil || h.Value() != "yes" || invs[0].Recipient.User != "bob" {
			t.Errorf("recorded INVITE lost its headers:\n%s", invs[0])
		}
		if f := invs[0].From(); f == nil || f.Address.User != "room42" {
			t.Errorf("recorded From = %v", f)
		}
	})

	t.Run("the answer picks the first offered codec the callee accepts", func(t *testing.T) {
		for _, tc := range []struct {
			name          string
			offer, accept []uint8
			want          uint8
		}{
			{"offer PCMA first", []uint8{g711.PCMA, g711.PCMU}, nil, g711.PCMA},
			{"callee takes only PCMA", []uint8{g711.PCMU, g711.PCMA}, []uint8{g711.PCMA}, g711.PCMA},
			{"callee prefers PCMA but the offer order wins", []uint8{g711.PCMU, g711.PCMA}, []uint8{g711.PCMA, g711.PCMU}, g711.PCMU},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ctx := testCtx(t, 10*time.Second)
				c := listen(t, ctx, CalleeConfig{Codecs: tc.accept})
				caller := dial(t, ctx, Config{Server: c.Addr(), Codecs: tc.offer})
				callee := accept(t, ctx, c)
				if caller.Codec() != tc.want || callee.Codec() != tc.want {
					t.Errorf("caller %d, callee %d; want %d", caller.Codec(), callee.Codec(), tc.want)
				}
			})
		}
	})

	t.Run("an offer without an accepted codec gets 488", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{Codecs: []uint8{g711.PCMU}})
		_, err := Dial(ctx, Config{Server: c.Addr(), Codecs: []uint8{g711.PCMA}})
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 488 {
			t.Fatalf("Dial = %v, want 488", err)
		}
		if got := c.Responses(); !slices.Equal(got, []int{488}) {
			t.Errorf("Responses() = %v, want [488]", got)
		}
	})

	t.Run("telephone-event is answered only when offered", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		with := dial(t, ctx, Config{Server: c.Addr(), DTMF: 101})
		calleeWith := accept(t, ctx, c)
		without := dial(t, ctx, Config{Server: c.Addr(), DTMF: -1})
		calleeWithout := accept(t, ctx, c)
		if with.dtmfPT != 101 || calleeWith.dtmfPT != 101 {
			t.Errorf("offered 101: caller uses %d, callee %d", with.dtmfPT, calleeWith.dtmfPT)
		}
		if err := calleeWith.SendDTMF(ctx, "1", RFC4733); err != nil {
			t.Errorf("SendDTMF with telephone-event: %v", err)
		}
		if without.dtmfPT != -1 {
			t.Errorf("not offered: caller got telephone-event %d in the answer", without.dtmfPT)
		}
		if err := calleeWithout.SendDTMF(ctx, "1", RFC4733); !errors.Is(err, ErrNoTelephoneEvent) {
			t.Errorf("SendDTMF without telephone-event = %v, want ErrNoTelephoneEvent", err)
		}
	})
}

func TestCalleeDialog(t *testing.T) {
	t.Run("the server's BYE gets 200 and closes Done", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		caller := dial(t, ctx, Config{Server: c.Addr()})
		callee := accept(t, ctx, c)
		select {
		case <-callee.Done():
			t.Fatal("Done closed before any BYE")
		default:
		}
		if err := caller.Hangup(ctx); err != nil {
			t.Fatalf("caller BYE: %v", err)
		}
		waitDone(t, ctx, callee, "callee")
		if err := callee.Hangup(ctx); !errors.Is(err, ErrCallEnded) {
			t.Errorf("Hangup after the server's BYE = %v, want ErrCallEnded", err)
		}
	})

	t.Run("Hangup sends our BYE inside the dialog", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		caller := dial(t, ctx, Config{Server: c.Addr()})
		callee := accept(t, ctx, c)
		if err := callee.Hangup(ctx); err != nil {
			t.Fatalf("callee BYE: %v", err)
		}
		waitDone(t, ctx, caller, "caller")
		select {
		case <-callee.Done():
			t.Error("the callee's Done closed by its own hangup")
		default:
		}
	})

	t.Run("re-INVITE, INFO and OPTIONS work in both directions", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		caller := dial(t, ctx, Config{Server: c.Addr()})
		callee := accept(t, ctx, c)

		ans, err := caller.Reinvite(ctx, "sendonly")
		if err != nil {
			t.Fatalf("re-INVITE to the callee: %v", err)
		}
		port := callee.RTPConn().LocalAddr().(*net.UDPAddr).Port
		if !bytes.Contains(ans, []byte("m=audio "+strconv.Itoa(port)+" RTP/AVP 0")) {
			t.Errorf("re-INVITE answer does not name the callee's RTP port %d and PCMU:\n%s", port, ans)
		}
		for _, m := range []sip.RequestMethod{sip.INFO, sip.OPTIONS} {
			res, err := caller.SendRaw(ctx, sip.NewRequest(m, sip.Uri{}))
			if err != nil || res.StatusCode != 200 {
				t.Errorf("%s to the callee -> %v, %v", m, res, err)
			}
		}

		if _, err := callee.Reinvite(ctx, "sendrecv"); err != nil {
			t.Errorf("re-INVITE from the callee: %v", err)
		}
		if err := callee.SendDTMF(ctx, "5", INFO); err != nil {
			t.Errorf("INFO from the callee: %v", err)
		}
		// The dialog still ends cleanly.
		if err := callee.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		waitDone(t, ctx, caller, "caller")
	})

	t.Run("a BYE for an unknown dialog gets 481", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		caller := dial(t, ctx, Config{Server: c.Addr()})
		accept(t, ctx, c)
		req := sip.NewRequest(sip.BYE, sip.Uri{})
		callID := sip.CallIDHeader("no-such-call")
		req.AppendHeader(&callID)
		res, err := caller.SendRaw(ctx, req)
		if err != nil || res.StatusCode != 481 {
			t.Fatalf("stray BYE -> %v, %v; want 481", res, err)
		}
	})
}

func TestCalleeRinging(t *testing.T) {
	t.Run("Reject sends 180 then the final status", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{Ring: 50 * time.Millisecond, Reject: 486})
		pd, err := DialNoWait(ctx, Config{Server: c.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		_, err = pd.Wait(ctx)
		var se *StatusError
		if !errors.As(err, &se) || se.Code != 486 || se.Reason != "Busy Here" {
			t.Fatalf("Wait = %v, want 486 Busy Here", err)
		}
		if got := pd.Responses(); !containsInt(got, 180) {
			t.Errorf("caller saw %v, want a 180", got)
		}
		if got := c.Responses(); !slices.Equal(got, []int{180, 486}) {
			t.Errorf("Responses() = %v, want [180 486]", got)
		}
	})

	t.Run("NoAnswer rings until CANCEL, which gets 487", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{NoAnswer: true})
		pd, err := DialNoWait(ctx, Config{Server: c.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		if err := pd.WaitCode(ctx, 180); err != nil {
			t.Fatal(err)
		}
		final, err := pd.Cancel(ctx)
		if err != nil || final != 487 {
			t.Fatalf("Cancel = %d, %v; want 487", final, err)
		}
		if err := c.WaitCancel(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.Responses(); !slices.Equal(got, []int{180, 487}) {
			t.Errorf("Responses() = %v, want [180 487]", got)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := c.WaitCancel(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("second WaitCancel = %v, want DeadlineExceeded (one CANCEL, consumed)", err)
		}
	})

	t.Run("Ring delays the answer behind a 180", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{Ring: 200 * time.Millisecond})
		start := time.Now()
		dial(t, ctx, Config{Server: c.Addr()})
		if d := time.Since(start); d < 200*time.Millisecond {
			t.Errorf("answered after %v, before the 200 ms ring", d)
		}
		accept(t, ctx, c)
		if got := c.Responses(); !slices.Equal(got, []int{180, 200}) {
			t.Errorf("Responses() = %v, want [180 200]", got)
		}
	})
}

func TestCalleeEarlyMedia(t *testing.T) {
	t.Run("183 streams the early tone, and CANCEL ends the early phone", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{EarlyMedia: true, NoAnswer: true})
		pd, err := DialNoWait(ctx, Config{Server: c.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		defer pd.Close()
		early, err := c.EarlyPhone(ctx)
		if err != nil {
			t.Fatal(err)
		}
		early.SetTone(900)
		// The caller records audio before the answer (DialNoWait).
		if err := pd.p.WaitLevel(ctx, 900, 3000, 200*time.Millisecond); err != nil {
			t.Fatalf("caller does not hear the early tone: %v", err)
		}
		if err := pd.WaitCode(ctx, 183); err != nil {
			t.Fatal(err)
		}
		if final, err := pd.Cancel(ctx); err != nil || final != 487 {
			t.Fatalf("Cancel = %d, %v; want 487", final, err)
		}
		waitDone(t, ctx, early, "early phone")
		if got := c.Responses(); !slices.Equal(got, []int{183, 487}) {
			t.Errorf("Responses() = %v, want [183 487]", got)
		}
	})

	t.Run("the 183 carries the SDP answer and the answered call is the early phone", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{EarlyMedia: true, Ring: 100 * time.Millisecond})
		u := newTestUAC(t, ctx)
		res, err := u.call(ctx, c, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if len(res) < 2 || res[0].StatusCode != 183 || res[len(res)-1].StatusCode != 200 {
			t.Fatalf("responses %v, want 183 ... 200", codes(res))
		}
		early, err := c.EarlyPhone(ctx)
		if err != nil {
			t.Fatal(err)
		}
		answered := accept(t, ctx, c)
		if early != answered {
			t.Error("Accept returned another Phone than EarlyPhone")
		}
		port := answered.RTPConn().LocalAddr().(*net.UDPAddr).Port
		prov, final := res[0], res[len(res)-1]
		if ct := prov.ContentType(); ct == nil || ct.Value() != "application/sdp" {
			t.Errorf("183 Content-Type = %v", ct)
		}
		if !bytes.Contains(prov.Body(), []byte("m=audio "+strconv.Itoa(port)+" RTP/AVP 0 101\r\n")) {
			t.Errorf("183 SDP does not offer the callee's port %d:\n%s", port, prov.Body())
		}
		// Same session, same answer: RFC 3264 section 8 would need a new
		// o= version for any change.
		if !bytes.Equal(prov.Body(), final.Body()) {
			t.Errorf("200 SDP differs from the 183's:\n%s\n---\n%s", prov.Body(), final.Body())
		}
		if prov.Contact() == nil {
			t.Error("183 lacks Contact (RFC 3261 12.1.1)")
		}
	})
}

func TestCalleeAuth(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth Auth
	}{
		{"401 with MD5 and no qop", Auth{}},
		{"401 with MD5 and qop=auth", Auth{Algorithm: "MD5", QOP: true}},
		{"401 with SHA-256 and qop=auth", Auth{Algorithm: "SHA-256", QOP: true}},
		{"407 with MD5 and qop=auth", Auth{Proxy: true, QOP: true}},
		{"407 with SHA-256 and no qop", Auth{Proxy: true, Algorithm: "SHA-256"}},
	} {
		t.Run(tc.name+" then valid credentials is answered", func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			a := tc.auth
			a.Realm, a.User, a.Password = "127.0.0.1", "alice", "s3cret"
			c := listen(t, ctx, CalleeConfig{Auth: &a})
			u := newTestUAC(t, ctx)
			res, err := u.call(ctx, c, "alice", "s3cret")
			if err != nil {
				t.Fatalf("call: %v (responses %v)", err, codes(res))
			}
			chalHdr, credHdr, code := "WWW-Authenticate", "Authorization", 401
			if a.Proxy {
				chalHdr, credHdr, code = "Proxy-Authenticate", "Proxy-Authorization", 407
			}
			if got := codes(res); !slices.Equal(got, []int{code, 200}) {
				t.Fatalf("caller saw %v, want [%d 200]", got, code)
			}
			if got := c.Responses(); !slices.Equal(got, []int{code, 200}) {
				t.Errorf("Responses() = %v, want [%d 200]", got, code)
			}
			chal, err := digest.ParseChallenge(res[0].GetHeader(chalHdr).Value())
			if err != nil {
				t.Fatal(err)
			}
			if chal.Realm != "127.0.0.1" || chal.Nonce == "" || !strings.EqualFold(chal.Algorithm, a.Algorithm) || chal.SupportsQOP("auth") != a.QOP {
				t.Errorf("challenge %+v does not match %+v", chal, a)
			}
			invs, err := c.WaitInvites(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			if invs[0].GetHeader(credHdr) != nil {
				t.Errorf("first INVITE already has %s", credHdr)
			}
			h := invs[1].GetHeader(credHdr)
			if h == nil {
				t.Fatalf("second INVITE lacks %s:\n%s", credHdr, invs[1])
			}
			creds, err := digest.ParseCredentials(h.Value())
			if err != nil {
				t.Fatal(err)
			}
			if creds.Username != "alice" || creds.Nonce != chal.Nonce || (creds.QOP == "auth") != a.QOP {
				t.Errorf("credentials %+v", creds)
			}

			callee := accept(t, ctx, c)
			if err := callee.Hangup(ctx); err != nil {
				t.Fatal(err)
			}
			u.waitFor(ctx, "the BYE", func() bool { return u.byes == 1 })
		})
	}

	for _, tc := range []struct {
		name     string
		auth     Auth
		password string
	}{
		{"a wrong password is challenged again", Auth{QOP: true}, "wrong"},
		{"Always challenges even valid credentials", Auth{Always: true, Proxy: true}, "s3cret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t, 10*time.Second)
			a := tc.auth
			a.Realm, a.User, a.Password = "127.0.0.1", "alice", "s3cret"
			c := listen(t, ctx, CalleeConfig{Auth: &a})
			u := newTestUAC(t, ctx)
			res, err := u.call(ctx, c, "alice", tc.password)
			var derr *sipgo.ErrDialogResponse
			if !errors.As(err, &derr) {
				t.Fatalf("call = %v, want the final challenge as an error", err)
			}
			code, chalHdr, credHdr := 401, "WWW-Authenticate", "Authorization"
			if a.Proxy {
				code, chalHdr, credHdr = 407, "Proxy-Authenticate", "Proxy-Authorization"
			}
			got := codes(res)
			// sipgo's client retries a challenge twice; each try must be
			// challenged again, each time with a fresh nonce.
			if len(got) < 2 || slices.ContainsFunc(got, func(c int) bool { return c != code }) {
				t.Fatalf("caller saw %v, want only %d, at least twice", got, code)
			}
			if rs := c.Responses(); !slices.Equal(rs, got) {
				t.Errorf("Responses() = %v, caller saw %v", rs, got)
			}
			nonces := map[string]bool{}
			for _, r := range res {
				ch, err := digest.ParseChallenge(r.GetHeader(chalHdr).Value())
				if err != nil {
					t.Fatal(err)
				}
				nonces[ch.Nonce] = true
			}
			if len(nonces) != len(res) {
				t.Errorf("%d challenges reused nonces: %v", len(res), nonces)
			}
			invs := c.Invites()
			if len(invs) != len(got) {
				t.Errorf("%d INVITEs for %d challenges", len(invs), len(got))
			}
			for i, inv := range invs[1:] {
				if inv.GetHeader(credHdr) == nil {
					t.Errorf("INVITE %d has no credentials", i+2)
				}
			}
			c.mu.Lock()
			n := len(c.accepted) + len(c.calls)
			c.mu.Unlock()
			if n != 0 {
				t.Errorf("%d calls went past authentication", n)
			}
		})
	}
}

// TestDigestVerify checks the verifier against credentials that are wrong
// in one way each.
func TestDigestVerify(t *testing.T) {
	uri := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: 5070}
	type tamper struct {
		name    string
		modify  func(o *digest.Options, chal *digest.Challenge)
		edit    func(cr *digest.Credentials)
		header  string // default Authorization
		replay  bool   // present the nonce a second time
		accepts bool
	}
	cases := []tamper{
		{name: "valid credentials pass", accepts: true},
		{name: "the same nonce twice is refused", replay: true},
		{name: "a wrong password is refused", modify: func(o *digest.Options, _ *digest.Challenge) { o.Password = "nope" }},
		{name: "another user is refused", modify: func(o *digest.Options, _ *digest.Challenge) { o.Username = "mallory"; o.Password = "x" }},
		{name: "another realm is refused", modify: func(_ *digest.Options, ch *digest.Challenge) { ch.Realm = "evil" }},
		{name: "another uri is refused", modify: func(o *digest.Options, _ *digest.Challenge) { o.URI = "sip:carol@127.0.0.1:5070" }},
		{name: "another method is refused", modify: func(o *digest.Options, _ *digest.Challenge) { o.Method = "BYE" }},
		{name: "dropping qop is refused", modify: func(_ *digest.Options, ch *digest.Challenge) { ch.QOP = nil }},
		{name: "another algorithm is refused", modify: func(_ *digest.Options, ch *digest.Challenge) { ch.Algorithm = "MD5" }},
		{name: "a missing opaque is refused", edit: func(cr *digest.Credentials) { cr.Opaque = "" }},
		{name: "an unknown nonce is refused", edit: func(cr *digest.Credentials) { cr.Nonce = "made-up" }},
		{name: "the wrong header is refused", header: "Proxy-Authorization"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := &Auth{Realm: "127.0.0.1", User: "alice", Password: "s3cret", Algorithm: "SHA-256", QOP: true}
			c := &Callee{cfg: CalleeConfig{Auth: a}, nonces: map[string]*digest.Challenge{}}
			issued := &digest.Challenge{Realm: a.Realm, Nonce: "n1", Opaque: "o1", Algorithm: "SHA-256", QOP: []string{"auth"}}
			c.nonces[issued.Nonce] = issued

			chal := *issued
			opts := digest.Options{Method: "INVITE", URI: uri.String(), Username: "alice", Password: "s3cret"}
			if tc.modify != nil {
				tc.modify(&opts, &chal)
			}
			cr, err := digest.Digest(&chal, opts)
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				tc.edit(cr)
			}
			hdr := tc.header
			if hdr == "" {
				hdr = "Authorization"
			}
			req := sip.NewRequest(sip.INVITE, uri)
			req.AppendHeader(sip.NewHeader(hdr, cr.String()))
			got := c.authorised(req)
			if tc.replay {
				if !got {
					t.Fatal("first use refused")
				}
				got = c.authorised(req)
			}
			if got != tc.accepts {
				t.Errorf("authorised = %v, want %v (credentials %s)", got, tc.accepts, cr)
			}
		})
	}
}

func TestCalleeClose(t *testing.T) {
	waitGoroutines := func(t *testing.T, before int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(10 * time.Millisecond) // polling a count; there is no event to wait on
		}
	}

	t.Run("closing after an answered call stops all goroutines", func(t *testing.T) {
		ctx := testCtx(t, 15*time.Second)
		before := runtime.NumGoroutine()
		c, err := Listen(ctx, CalleeConfig{})
		if err != nil {
			t.Fatal(err)
		}
		caller, err := Dial(ctx, Config{Server: c.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		callee, err := c.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		callee.SetTone(440)
		if err := caller.WaitLevel(ctx, 440, 3000, 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if err := caller.Hangup(ctx); err != nil {
			t.Fatal(err)
		}
		waitDone(t, ctx, callee, "callee")
		caller.Close()
		c.Close() // closes callee as well
		if _, err := c.Accept(ctx); !errors.Is(err, ErrClosed) {
			t.Errorf("Accept after Close = %v, want ErrClosed", err)
		}
		waitGoroutines(t, before)
	})

	t.Run("closing while a call rings returns at once and leaks nothing", func(t *testing.T) {
		ctx := testCtx(t, 15*time.Second)
		before := runtime.NumGoroutine()
		c, err := Listen(ctx, CalleeConfig{NoAnswer: true, EarlyMedia: true})
		if err != nil {
			t.Fatal(err)
		}
		pd, err := DialNoWait(ctx, Config{Server: c.Addr()})
		if err != nil {
			t.Fatal(err)
		}
		if err := pd.WaitCode(ctx, 183); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		c.Close()
		if d := time.Since(start); d > time.Second {
			t.Errorf("Close took %v while a call was ringing", d)
		}
		// Abandon the caller without a CANCEL nobody would answer.
		pd.p.Close()
		<-pd.finished
		pd.cancelWait()
		waitGoroutines(t, before)
	})

	t.Run("a bad config is refused", func(t *testing.T) {
		for _, cfg := range []CalleeConfig{
			{Transport: "tcp"},
			{Auth: &Auth{Algorithm: "SHA-512"}},
			{Reject: 200},
		} {
			if _, err := Listen(context.Background(), cfg); !errors.Is(err, ErrBadConfig) {
				t.Errorf("Listen(%+v) = %v, want ErrBadConfig", cfg, err)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// A bare UAC on sipgo's dialog client, for what Phone does not do: digest
// authentication, and looking at the responses themselves.

type testUAC struct {
	t    *testing.T
	cli  *sipgo.Client
	dua  *sipgo.DialogUA
	addr netip.AddrPort
	rtp  *net.UDPConn // named in the offer; nothing is sent

	mu      sync.Mutex
	dlg     *sipgo.DialogClientSession
	byes    int
	changed chan struct{}
}

func newTestUAC(t *testing.T, ctx context.Context) *testUAC {
	t.Helper()
	u := &testUAC{t: t, changed: make(chan struct{})}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("test-uac"), sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		u.mu.Lock()
		dlg := u.dlg
		u.mu.Unlock()
		if dlg == nil || dlg.ReadBye(req, tx) != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "No Dialog", nil))
			return
		}
		u.record(func() { u.byes++ })
	})
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u.addr = conn.LocalAddr().(*net.UDPAddr).AddrPort()
	serveDone := make(chan struct{})
	go func() { defer close(serveDone); srv.ServeUDP(conn) }()
	u.rtp, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ua.Close()
		conn.Close()
		u.rtp.Close()
		<-serveDone
	})
	if err := waitUDPServing(ctx, ua, u.addr); err != nil {
		t.Fatal(err)
	}
	u.cli, err = sipgo.NewClient(ua, sipgo.WithClientConnectionAddr(u.addr.String()))
	if err != nil {
		t.Fatal(err)
	}
	u.dua = &sipgo.DialogUA{Client: u.cli, ContactHDR: sip.ContactHeader{
		Address: sip.Uri{Scheme: "sip", User: "uac", Host: "127.0.0.1", Port: int(u.addr.Port())},
	}}
	return u
}

func (u *testUAC) record(f func()) {
	u.mu.Lock()
	f()
	close(u.changed)
	u.changed = make(chan struct{})
	u.mu.Unlock()
}

func (u *testUAC) waitFor(ctx context.Context, what string, cond func() bool) {
	u.t.Helper()
	for {
		u.mu.Lock()
		ok, ch := cond(), u.changed
		u.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			u.t.Fatalf("uac: waiting for %s: %v", what, ctx.Err())
		}
	}
}

// call INVITEs c with the offer the conference server makes (PCMU, PCMA,
// telephone-event 101, ptime 20), answers challenges with user/password
// (sipgo retries at most twice), ACKs a 2xx and returns every response.
func (u *testUAC) call(ctx context.Context, c *Callee, user, password string) ([]*sip.Response, error) {
	ap := netip.MustParseAddrPort(c.Addr())
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: int(ap.Port())})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "room", Host: "127.0.0.1"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	to := &sip.ToHeader{Address: req.Recipient}
	callID := sip.CallIDHeader(sip.GenerateTagN(20) + "@127.0.0.1")
	req.AppendHeader(from)
	req.AppendHeader(to)
	req.AppendHeader(&callID)
	req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	off := offer{sessID: 7, version: 1, port: u.rtp.LocalAddr().(*net.UDPAddr).Port,
		codecs: []uint8{g711.PCMU, g711.PCMA}, dtmfPT: 101, ptime: 20}
	req.SetBody(off.marshal())
	req.Laddr = sip.Addr{IP: net.IP(u.addr.Addr().AsSlice()), Port: int(u.addr.Port()), Hostname: "127.0.0.1"}

	dlg, err := u.dua.WriteInvite(ctx, req)
	if err != nil {
		return nil, err
	}
	var res []*sip.Response
	err = dlg.WaitAnswer(ctx, sipgo.AnswerOptions{
		Username: user,
		Password: password,
		OnResponse: func(r *sip.Response) error {
			if r.StatusCode != 100 {
				res = append(res, r)
			}
			return nil
		},
	})
	if err != nil {
		return res, err
	}
	if err := dlg.Ack(ctx); err != nil {
		return res, err
	}
	u.mu.Lock()
	u.dlg = dlg
	u.mu.Unlock()
	return res, nil
}

func codes(rs []*sip.Response) []int {
	out := make([]int, len(rs))
	for i, r := range rs {
		out[i] = r.StatusCode
	}
	return out
}

// rawUAC speaks SIP over a bare UDP socket, to do what a correct client
// never does: ignore a 200, or ACK it on the INVITE's branch.
type rawUAC struct {
	t      *testing.T
	conn   *net.UDPConn
	callee *net.UDPAddr
	from   string
}

func newRawUAC(t *testing.T, c *Callee) *rawUAC {
	t.Helper()
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	dst, err := net.ResolveUDPAddr("udp4", c.Addr())
	if err != nil {
		t.Fatal(err)
	}
	return &rawUAC{t: t, conn: conn, callee: dst, from: conn.LocalAddr().String()}
}

func (r *rawUAC) send(msg string) {
	r.t.Helper()
	if _, err := r.conn.WriteToUDP([]byte(msg), r.callee); err != nil {
		r.t.Fatal(err)
	}
}

// invite sends an INVITE with the server's offer on branch.
func (r *rawUAC) invite(branch string) {
	off := offer{sessID: 9, version: 1, port: 40000, codecs: []uint8{g711.PCMU, g711.PCMA}, dtmfPT: 101, ptime: 20}
	body := off.marshal()
	r.send("INVITE sip:bob@" + r.callee.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + r.from + ";branch=" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:room@127.0.0.1>;tag=rawtag\r\n" +
		"To: <sip:bob@" + r.callee.String() + ">\r\n" +
		"Call-ID: raw-" + branch + "@127.0.0.1\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:raw@" + r.from + ">\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
}

// ack ACKs the 2xx res on branch.
func (r *rawUAC) ack(res *sip.Response, branch string) {
	r.send("ACK sip:callee@" + r.callee.String() + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + r.from + ";branch=" + branch + "\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: " + res.From().Value() + "\r\n" +
		"To: " + res.To().Value() + "\r\n" +
		"Call-ID: " + res.CallID().Value() + "\r\n" +
		"CSeq: 1 ACK\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// next reads the next response.
func (r *rawUAC) next(ctx context.Context) *sip.Response {
	r.t.Helper()
	deadline, _ := ctx.Deadline()
	r.conn.SetReadDeadline(deadline)
	buf := make([]byte, 65535)
	for {
		n, _, err := r.conn.ReadFromUDP(buf)
		if err != nil {
			r.t.Fatalf("raw UAC: read: %v", err)
		}
		msg, err := sip.ParseMessage(buf[:n])
		if err != nil {
			r.t.Fatalf("raw UAC: parse: %v", err)
		}
		if res, ok := msg.(*sip.Response); ok {
			return res
		}
	}
}

func TestCalleeRetransmits200(t *testing.T) {
	t.Run("a 200 without ACK is sent again until the ACK comes", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		r := newRawUAC(t, c)
		r.invite("z9hG4bK-raw-1")
		var oks []*sip.Response
		for len(oks) < 2 {
			if res := r.next(ctx); res.StatusCode == 200 {
				oks = append(oks, res)
			}
		}
		if a, b := oks[0].To().Value(), oks[1].To().Value(); a != b {
			t.Errorf("retransmitted 200 has To %q, first had %q", b, a)
		}
		if !bytes.Equal(oks[0].Body(), oks[1].Body()) {
			t.Error("retransmitted 200 has another SDP")
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if _, err := c.Accept(short); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Accept before the ACK = %v, want DeadlineExceeded", err)
		}
		r.ack(oks[1], "z9hG4bK-raw-2")
		p := accept(t, ctx, c)
		if p.ServerRTP().Port != 40000 {
			t.Errorf("media goes to %v, the offer said port 40000", p.ServerRTP())
		}
	})

	t.Run("an ACK on the INVITE's branch also confirms the call", func(t *testing.T) {
		ctx := testCtx(t, 10*time.Second)
		c := listen(t, ctx, CalleeConfig{})
		r := newRawUAC(t, c)
		r.invite("z9hG4bK-raw-3")
		res := r.next(ctx)
		for res.StatusCode != 200 {
			res = r.next(ctx)
		}
		r.ack(res, "z9hG4bK-raw-3")
		accept(t, ctx, c)
	})
}
