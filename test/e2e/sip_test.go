package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"webconf/sipapp/room"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// request sends one out-of-dialog request with a throw-away sipgo client.
func request(t *testing.T, srv *server, method sip.RequestMethod, body []byte, hdrs ...sip.Header) *sip.Response {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	cl, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var uri sip.Uri
	if err := sip.ParseUri("sip:conference@"+srv.addr, &uri); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(method, uri)
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	if body != nil {
		req.SetBody(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cl.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res
}

func TestSIPRequestsOutsideCalls(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	t.Run("OPTIONS is answered 200 with Allow", func(t *testing.T) {
		res := request(t, srv, sip.OPTIONS, nil)
		if res.StatusCode != 200 || res.GetHeader("Allow") == nil || !strings.Contains(res.GetHeader("Allow").Value(), "INVITE") {
			t.Fatalf("got %d %v", res.StatusCode, res.GetHeader("Allow"))
		}
	})
	t.Run("an unsupported method gets 405", func(t *testing.T) {
		if res := request(t, srv, sip.MESSAGE, []byte("hi"), sip.NewHeader("Content-Type", "text/plain")); res.StatusCode != 405 {
			t.Fatalf("MESSAGE got %d, want 405", res.StatusCode)
		}
	})
	t.Run("requests for an unknown dialog get 481", func(t *testing.T) {
		to := sip.NewHeader("To", "<sip:conference@"+srv.addr+">;tag=nosuchtag")
		for _, m := range []sip.RequestMethod{sip.BYE, sip.INFO, sip.UPDATE} {
			if res := request(t, srv, m, nil, to); res.StatusCode != 481 {
				t.Errorf("%s got %d, want 481", m, res.StatusCode)
			}
		}
	})
}

func TestBadOffersAreRefusedAndChangeNothing(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	free := srv.FreeRTPPorts()
	for _, tc := range []struct {
		name string
		sdp  string
		code int
	}{
		{"garbage", "this is not SDP", 400},
		{"no G.711", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 9 18\r\na=rtpmap:9 G722/8000\r\n", 488},
		{"audio rejected", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n", 488},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := phone.Dial(testutil.Ctx(t, 5*time.Second), phone.Config{Server: srv.addr, User: "conference", SDP: []byte(tc.sdp)})
			var se *phone.StatusError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("got %v, want status %d", err, tc.code)
			}
		})
	}
	if srv.ActiveCalls() != 0 || srv.FreeRTPPorts() != free {
		t.Fatalf("refused calls left %d calls and %d ports in use", srv.ActiveCalls(), free-srv.FreeRTPPorts())
	}
}

func TestCallsOverTCP(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "tcp", phone.Config{Transport: "tcp"})
	b := srv.direct(t, "tcp", phone.Config{})
	a.SetTone(600)
	b.SetTone(800)
	hearsAllButSelf(t, a, 600, []float64{800}, 1500, 200)
	hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
	// A kick hangs up the TCP caller over its own connection.
	if err := srv.Registry().Kick("tcp", a.RemoteTag()); err != nil {
		t.Fatal(err)
	}
	waitDone(t, a, 5*time.Second, "kick over TCP")
	srv.waitStatus(t, "tcp", a.RemoteTag(), room.StatusFinished, "")
}

func TestMuteMakesACallerInaudible(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a, b := srv.talkingPair(t, "mute", 600, 800)
	if err := srv.Registry().Mute("mute", a.RemoteTag()); err != nil {
		t.Fatal(err)
	}
	quiet(t, b, 600)
	hearsAllButSelf(t, a, 600, []float64{800}, 1500, 200) // a muted still hears
	if err := srv.Registry().Unmute("mute", a.RemoteTag()); err != nil {
		t.Fatal(err)
	}
	hearsAllButSelf(t, b, 800, []float64{600}, 1500, 200)
}

func TestParticipantIDAndPortsReturn(t *testing.T) {
	t.Parallel()
	srv := start(t, withRTPSocket("per_call")) // a port per call
	free := srv.FreeRTPPorts()
	a := srv.direct(t, "pid", phone.Config{Headers: []sip.Header{sip.NewHeader("X-ParticipantID", "alice-1")}})
	srv.inRoom(t, a, "pid", room.ReasonDirect)
	if p := srv.participants("pid"); len(p) != 1 || p[0].ID != "alice-1" {
		t.Fatalf("records %+v, want participant id alice-1", p)
	}
	if srv.FreeRTPPorts() != free-1 {
		t.Fatalf("a call holds %d ports, want 1", free-srv.FreeRTPPorts())
	}
	if err := a.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the RTP port to come back", func() bool { return srv.FreeRTPPorts() == free })
}
