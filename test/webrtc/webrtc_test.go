// Package webrtc tests browser participants end to end: a pion peer
// connection plays the browser, over the real signalling socket of a real
// node (GET /api/v1/rooms/{room}/webrtc), in rooms with SIP test phones.
package webrtc

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"webconf/conf"
	"webconf/dsp"
	"webconf/dsp/g711"
	"webconf/dsp/tone"
	"webconf/prompts"
	"webconf/rpc/node"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

const master = "master"

// Prompts are short tones far above the callers' (350-750 Hz).
func testPrompts() *prompts.Set {
	beep := testutil.Tone(2500, 100*time.Millisecond)
	p := &prompts.Set{
		EnterPin: beep, WrongPin: beep, WrongPinBye: beep, EnteringConference: beep, FirstParticipant: beep,
		JoinSound: beep, DropSound: beep, MeetingNotStarted: beep, MeetingEnded: beep, ConferenceFull: beep,
		LobbyWait: beep, RoomLocked: beep,
	}
	for d := range p.Digits {
		p.Digits[d] = beep
	}
	return p
}

// startNode runs a node on loopback with public rooms and browsers on.
func startNode(t *testing.T, edit func(*conf.Config)) *node.Node {
	t.Helper()
	cfg := testnode.Config(t, 40000, 49998, master)
	cfg.Webconference.DirectRoomRE = nil
	cfg.Meetings.PublicRooms = true
	cfg.WebRTC.UDPPortRange = "50000-50999"
	cfg.WebRTC.ICEServers = "stun:stun.example.com:3478"
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return testnode.Start(t, cfg, node.Options{Prompts: testPrompts()})
}

// client is a browser: the signalling socket and a pion peer connection
// that sends a tone and keeps what it hears.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	msgs chan map[string]any

	pc    *webrtc.PeerConnection
	track *webrtc.TrackLocalStaticRTP

	mu    sync.Mutex
	heard []int16
}

// open dials the signalling socket of room on n.
func open(t *testing.T, n *node.Node, room string, hdr http.Header) (*client, *http.Response, error) {
	t.Helper()
	ctx := testutil.Ctx(t, 5*time.Second)
	ws, res, err := websocket.Dial(ctx, "ws://"+n.HTTPAddr()+"/api/v1/rooms/"+room+"/webrtc", &websocket.DialOptions{HTTPHeader: hdr})
	if err != nil {
		return nil, res, err
	}
	c := &client{t: t, ws: ws, msgs: make(chan map[string]any, 256)}
	t.Cleanup(func() { _ = ws.CloseNow() })
	go func() {
		defer close(c.msgs)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				t.Errorf("server sent bad JSON %q", data)
				return
			}
			c.msgs <- m
		}
	}()
	return c, res, nil
}

func (c *client) send(v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.ws.Write(testutil.Ctx(c.t, 5*time.Second), websocket.MessageText, b); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := c.ws.Write(testutil.Ctx(c.t, 5*time.Second), websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("send %s: %v", s, err)
	}
}

// expect waits for a message of type typ, failing on anything else but
// the types in skip.
func (c *client) expect(typ string, skip ...string) map[string]any {
	c.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("the socket closed while waiting for %s", typ)
			}
			if m["type"] == typ {
				return m
			}
			if !contains(skip, fmt.Sprint(m["type"])) {
				c.t.Fatalf("got %v while waiting for %s", m, typ)
			}
		case <-deadline:
			c.t.Fatalf("no %s message", typ)
		}
	}
}

// closed waits for the server to close the socket.
func (c *client) closed() {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.msgs:
			if !ok {
				return
			}
		case <-deadline:
			c.t.Fatal("the socket stays open")
		}
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// connect makes the peer connection (Opus, PCMU and PCMA offered, as a
// browser does), sends the offer, applies the answer and sends freq.
func (c *client) connect(freq float64) {
	t := c.t
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	lo := net.IP(netip.MustParseAddr("127.0.0.1").AsSlice())
	se.SetIPFilter(func(ip net.IP) bool { return ip.Equal(lo) })
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se), webrtc.WithInterceptorRegistry(&interceptor.Registry{}))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	c.pc = pc
	if c.track, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "mic", "browser"); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTrack(c.track); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		pt := uint8(tr.Codec().PayloadType)
		var s [1200]int16
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n := min(len(p.Payload), len(s))
			g711.Decode(pt, s[:n], p.Payload[:n])
			c.mu.Lock()
			c.heard = append(c.heard, s[:n]...)
			c.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	<-gathered
	c.send(map[string]any{"type": "offer", "sdp": pc.LocalDescription().SDP})
	ans := c.expect("answer")
	sdp, _ := ans["sdp"].(string)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go func() {
		osc := tone.NewOsc(freq, 2000)
		var f dsp.Frame
		var enc [dsp.FrameSamples]byte
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 0, SequenceNumber: 1, Timestamp: 1}}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			osc.Fill(f[:])
			g711.EncodeUlaw(enc[:], f[:])
			p.Payload = enc[:]
			_ = c.track.WriteRTP(&p)
			p.SequenceNumber++
			p.Timestamp += dsp.FrameSamples
		}
	}()
}

// hears waits until the last 200 ms the browser heard hold every tone of
// others and not own.
func (c *client) hears(own float64, others ...float64) {
	c.t.Helper()
	var last string
	ok := waitUntil(10*time.Second, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if len(c.heard) < 1600 {
			return false
		}
		a := c.heard[len(c.heard)-1600:]
		last = fmt.Sprintf("own %.0f Hz: %.0f", own, tone.Level(a, own))
		good := tone.Level(a, own) < 100
		for _, f := range others {
			last += fmt.Sprintf(", %.0f Hz: %.0f", f, tone.Level(a, f))
			good = good && tone.Level(a, f) > 700
		}
		return good
	})
	if !ok {
		c.t.Fatalf("the browser does not hear the room as it should (levels %s)", last)
	}
}

func waitUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func dial(t *testing.T, n *node.Node, user string, freq float64) *phone.Phone {
	t.Helper()
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: n.SIP.Addr(), User: user, FromUser: fmt.Sprintf("p%.0f", freq), ToneAmplitude: 2000})
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	testutil.HangUpAtEnd(t, p)
	p.SetTone(freq)
	return p
}

// TestBrowserInPublicRoomWithTwoPhones: two SIP phones in a public room
// and a browser joining it over the signalling socket: the browser hears
// both phones and not itself, both phones hear the browser.
func TestBrowserInPublicRoomWithTwoPhones(t *testing.T) {
	n := startNode(t, nil)
	a := dial(t, n, "c.team", 350)
	b := dial(t, n, "c.team", 550)
	testutil.WaitFor(t, 5*time.Second, "both phones in the room", func() bool {
		room, ok := n.SIP.Meetings().PublicRoomNumber("team")
		return ok && len(n.SIP.Participants(room)) == 2
	})

	c, _, err := open(t, n, "c.team", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "join", "name": "Ann", "auth": nil, "token": nil})
	ready := c.expect("ready")
	if ice, _ := ready["ice_servers"].([]any); len(ice) != 1 || ice[0] != "stun:stun.example.com:3478" {
		t.Fatalf("ready's ice_servers %v", ready["ice_servers"])
	}
	c.connect(750)
	joined := c.expect("joined")
	parts := c.expect("participants")
	if l, _ := parts["participants"].([]any); len(l) != 3 {
		t.Fatalf("participants after joining %v, want the two phones and the browser", parts)
	}
	if joined["call_id"] == "" {
		t.Fatalf("joined without a call_id: %v", joined)
	}

	c.hears(750, 350, 550)
	ctx := testutil.Ctx(t, 10*time.Second)
	if err := a.HearsAllButSelf(ctx, 350, []float64{550, 750}, 700, 100); err != nil {
		t.Fatalf("phone 350 Hz: %v", err)
	}
	if err := b.HearsAllButSelf(ctx, 550, []float64{350, 750}, 700, 100); err != nil {
		t.Fatalf("phone 550 Hz: %v", err)
	}

	// Mute: the phones stop hearing the browser.
	c.send(map[string]any{"type": "mute", "muted": true})
	c.expect("muted", "event")
	if err := a.WaitQuiet(ctx, 750, 100, 200*time.Millisecond); err != nil {
		t.Fatalf("phone still hears the muted browser: %v", err)
	}
	// Leave: bye, the socket closes, the room has the two phones.
	c.send(map[string]any{"type": "leave"})
	c.expect("bye", "event", "muted")
	c.closed()
	room, _ := n.SIP.Meetings().PublicRoomNumber("team")
	testutil.WaitFor(t, 5*time.Second, "the browser out of the room", func() bool { return len(n.SIP.Participants(room)) == 2 })
}

// TestSignalRefusals: what the socket refuses before any media.
func TestSignalRefusals(t *testing.T) {
	n := startNode(t, nil)
	base := "http://" + n.HTTPAddr() + "/api/v1"

	// A user with a meeting.
	do := func(method, path, auth string, body any) map[string]any {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, base+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		if auth == "" {
			req.SetBasicAuth("admin", master)
		} else {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(res.Body).Decode(&m)
		if res.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, res.StatusCode, m)
		}
		return m
	}
	u := do("POST", "/users", "", map[string]any{"username": "alice", "capabilities": []string{"meetings"}})
	tok, _ := u["token"].(string)
	m := do("POST", "/users/me/meetings", tok, map[string]any{"name": "Standup"})
	uuid, _ := m["uuid"].(string)
	guestAuth, _ := m["guest_sip_authorization"].(string)

	t.Run("bad messages change nothing", func(t *testing.T) {
		c, _, err := open(t, n, "c.bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{`{`, `[]`, `{"type":"dance"}`, `{"type":"join","name":""}`, `{"type":"join","name":"a\u0007b"}`, `{"type":"offer","sdp":"v=0"}`, `{"type":"mute"}`} {
			c.sendRaw(bad)
			if e := c.expect("error"); e["code"] != "bad-message" {
				t.Fatalf("%s: %v, want bad-message", bad, e)
			}
		}
		c.send(map[string]any{"type": "join", "name": "Ann"})
		c.expect("ready")
	})
	t.Run("a meeting needs its credentials", func(t *testing.T) {
		raw, _ := base64.StdEncoding.DecodeString(guestAuth)
		user, pass, _ := strings.Cut(string(raw), ":")
		b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
		for _, auth := range []any{nil, b64(user + ":nope"), b64("meeting-x-guest:" + pass), b64(user), "%%%"} {
			c, _, err := open(t, n, uuid, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.send(map[string]any{"type": "join", "name": "Eve", "auth": auth})
			if e := c.expect("error"); e["code"] != "unauthorized" {
				t.Fatalf("auth %v: %v, want unauthorized", auth, e)
			}
			c.closed()
		}
		// Another user's token is no owner's.
		other := do("POST", "/users", "", map[string]any{"username": "bob", "capabilities": []string{"meetings"}})
		c, _, err := open(t, n, uuid, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]any{"type": "join", "name": "Bob", "token": other["token"]})
		if e := c.expect("error"); e["code"] != "unauthorized" {
			t.Fatalf("another user's token: %v, want unauthorized", e)
		}
		// The right credentials, by uuid and by number, and the owner's
		// token, get ready with the meeting's name.
		for _, j := range []struct {
			room string
			join map[string]any
		}{
			{uuid, map[string]any{"type": "join", "name": "Gus", "auth": guestAuth}},
			{m["exten"].(string), map[string]any{"type": "join", "name": "Gus", "auth": guestAuth}},
			{uuid, map[string]any{"type": "join", "name": "Alice", "token": tok}},
		} {
			c, _, err := open(t, n, j.room, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.send(j.join)
			r := c.expect("ready")
			if r["meeting_uuid"] != uuid || r["name"] != "Standup" || r["room"] != m["exten"] {
				t.Fatalf("ready %v", r)
			}
		}
	})
	t.Run("another origin", func(t *testing.T) {
		_, res, err := open(t, n, "c.x", http.Header{"Origin": {"https://evil.example"}})
		if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
			t.Fatalf("cross-origin upgrade: err %v, res %v", err, res)
		}
	})
	t.Run("no such room", func(t *testing.T) {
		c, _, err := open(t, n, "nosuchroom", nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(map[string]any{"type": "join", "name": "Ann"})
		if e := c.expect("error"); e["code"] != "room-not-found" {
			t.Fatalf("%v, want room-not-found", e)
		}
		c.closed()
	})
}

// TestSignalOff: with [webrtc] enabled = no the route is a JSON 404.
func TestSignalOff(t *testing.T) {
	n := startNode(t, func(c *conf.Config) { c.WebRTC.Enabled = false })
	res, err := http.Get("http://" + n.HTTPAddr() + "/api/v1/rooms/c.x/webrtc")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m struct{ Error struct{ Code string } }
	_ = json.NewDecoder(res.Body).Decode(&m)
	if res.StatusCode != http.StatusNotFound || m.Error.Code != "not-found" {
		t.Fatalf("%d %+v, want 404 not-found", res.StatusCode, m)
	}
}

// TestSignalSocketsBounded: an address may hold max_browsers_per_source
// signalling sockets and no more (429 too-many-browsers before the
// upgrade); a socket that closes gives its place back, and the ones open
// go on working.
func TestSignalSocketsBounded(t *testing.T) {
	n := startNode(t, func(c *conf.Config) { c.WebRTC.MaxBrowsersPerSource = 2 })
	a, _, err := open(t, n, "c.team", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := open(t, n, "c.team", nil); err != nil {
		t.Fatal(err)
	}
	refused := func() bool {
		c, res, err := open(t, n, "c.team", nil)
		if err == nil {
			_ = c.ws.CloseNow()
			return false
		}
		var m struct{ Error struct{ Code string } }
		if res != nil {
			_ = json.NewDecoder(res.Body).Decode(&m)
		}
		if res == nil || res.StatusCode != http.StatusTooManyRequests || m.Error.Code != "too-many-browsers" {
			t.Fatalf("third socket: %v, %+v; want 429 too-many-browsers", err, m)
		}
		return true
	}
	if !refused() {
		t.Fatal("a third socket from the same address was let in")
	}
	// The ones open still work: a join gets ready.
	a.send(map[string]any{"type": "join", "name": "Ann"})
	a.expect("ready")
	_ = a.ws.Close(websocket.StatusNormalClosure, "")
	testutil.WaitFor(t, 10*time.Second, "the closed socket's place given back", func() bool { return !refused() })
}
