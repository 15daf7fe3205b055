package torture

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestRewriteViaPointsTheTopViaAtTheTestSocket(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"a plain Via", "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP host.example.com;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP other:5060\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP other:5060\r\n\r\n"},
		{"a compact v with a port", "OPTIONS sip:a@b SIP/2.0\r\nv:SIP/2.0/TCP 192.0.2.1:5070\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nv:SIP/2.0/TCP 127.0.0.1:4000\r\n\r\n"},
		{"an IPv6 reference", "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bK1\r\n\r\n",
			"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:4000;branch=z9hG4bK1\r\n\r\n"},
		{"a Via folded over three lines", "INVITE sip:a@b SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw\r\n\r\n",
			"INVITE sip:a@b SIP/2.0\r\nVia  : SIP  /   2.0\r\n /UDP\r\n    127.0.0.1:4000;branch=390skdjuw\r\n\r\n"},
		{"no Via in the headers, only in the body", "OPTIONS sip:a@b SIP/2.0\r\nTo: <sip:a@b>\r\n\r\nVia: SIP/2.0/UDP x\r\n", ""},
		{"a response", "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP host\r\n\r\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ok := rewriteVia([]byte(c.in), "127.0.0.1:4000")
			if c.want == "" {
				if ok || string(got) != c.in {
					t.Fatalf("rewrote %q into %q, want it untouched", c.in, got)
				}
				return
			}
			if !ok || string(got) != c.want {
				t.Fatalf("got %q (%v), want %q", got, ok, c.want)
			}
		})
	}
}

// TestRewriteViaChangesOnlyTheSentBy checks every corpus request that
// sipgo can parse: after the rewrite the top Via names the test socket and
// everything else (method, Request-URI, Call-ID, body) is as it was.
func TestRewriteViaChangesOnlyTheSentBy(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rfc*", "*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		orig, err := sip.ParseMessage(raw)
		req, isReq := orig.(*sip.Request)
		if err != nil || !isReq || req.Via() == nil {
			continue
		}
		out, ok := rewriteVia(raw, "127.0.0.1:4000")
		if !ok {
			t.Errorf("%s: top Via not found", f)
			continue
		}
		m, err := sip.ParseMessage(out)
		if err != nil {
			t.Errorf("%s: unparseable after the rewrite: %v", f, err)
			continue
		}
		got := m.(*sip.Request)
		if v := got.Via(); v.Host != "127.0.0.1" || v.Port != 4000 {
			t.Errorf("%s: top Via %s:%d, want 127.0.0.1:4000", f, v.Host, v.Port)
		}
		if got.StartLine() != req.StartLine() || callID(got) != callID(req) ||
			string(got.Body()) != string(req.Body()) || len(out)-len(raw) != len("127.0.0.1:4000")-len(strings.TrimSpace(sentBy(raw))) {
			t.Errorf("%s: the rewrite changed more than the sent-by", f)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("only %d corpus requests checked", n)
	}
}

// sentBy is the text the rewrite replaces.
func sentBy(msg []byte) string {
	loc := topVia.FindSubmatchIndex(msg)
	return string(msg[loc[2]:loc[3]])
}

func callID(r *sip.Request) string {
	if c := r.CallID(); c != nil {
		return c.Value()
	}
	return ""
}
