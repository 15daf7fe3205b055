package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/test/phone"
	"webconf/test/testutil"
)

// TestKickoutThroughRecordRoute: a caller reaches the bridge through a
// record-routing proxy (on another host than the phone). Our 200 OK copies
// the Record-Route (RFC 3261 12.1.1), and the BYE of a kickout over
// XML-RPC follows the route set: it goes to the proxy with the recorded
// Route and the caller's Contact as Request-URI (12.2.1.1).
func TestKickoutThroughRecordRoute(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	px, err := phone.ListenProxy(phone.ProxyConfig{Host: "127.0.0.2", RecordRoute: true, Upstream: h.node.SIP.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	pin := norm(h.di(t, "roomCreate", "88")).([]any)[2].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := phone.Dial(ctx, phone.Config{Server: px.Addr(), FromUser: "alice",
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=88")}})
	if err != nil {
		t.Fatalf("dial through the proxy: %v", err)
	}
	defer a.Close()
	testutil.WaitFor(t, 5*time.Second, "alice in the room", func() bool { return h.connected("88") == 1 })

	wantRoute := "<" + px.URI() + ";lr;ftag=" + a.LocalTag() + ">"
	ok, err := px.WaitFor(testutil.Ctx(t, 5*time.Second), "our 200 OK", func(s phone.Seen) bool {
		r, isRes := s.Msg.(*sip.Response)
		return isRes && r.StatusCode == 200 && r.CSeq().MethodName == sip.INVITE && s.From.String() == h.node.SIP.Addr()
	})
	if err != nil {
		t.Fatal(err)
	}
	if rr := ok.Msg.(*sip.Response).GetHeaders("Record-Route"); len(rr) != 1 || rr[0].Value() != wantRoute {
		t.Fatalf("our 200 OK's Record-Route %v, want %s copied from the INVITE", rr, wantRoute)
	}

	if res := norm(h.di(t, "kickout", "88", pin, a.RemoteTag())).([]any); res[0] != 0 {
		t.Fatalf("kickout: %v", res)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("no BYE reached the caller")
	}
	bye, err := px.WaitRequest(testutil.Ctx(t, 5*time.Second), sip.BYE)
	if err != nil {
		t.Fatal(err)
	}
	if routes := bye.GetHeaders("Route"); len(routes) != 1 || routes[0].Value() != wantRoute {
		t.Fatalf("BYE Routes %v, want %s", routes, wantRoute)
	}
	if !strings.HasPrefix(bye.Recipient.String(), "sip:") || bye.Recipient.Host != "127.0.0.1" {
		t.Fatalf("BYE Request-URI %s, want the caller's Contact", bye.Recipient.String())
	}
}
