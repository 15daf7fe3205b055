package e2e

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"webconf/sipapp"
	"webconf/test/testutil"
)

// contactUAS answers a dial-out's INVITE from 127.0.0.1 with a 200 whose
// Contact is a socket on 127.0.0.1 (the INVITE's host) or on 127.0.0.2
// (another host), and challenges every BYE without credentials that
// reaches the Contact socket with a 401 of realm asterisk.
type contactUAS struct {
	inv, ctc *net.UDPConn
	mu       sync.Mutex
	byes     []*sip.Request
}

func listenContactUAS(t *testing.T, otherHost bool) *contactUAS {
	t.Helper()
	u := &contactUAS{}
	u.inv, u.ctc = listenHosts(t, otherHost)
	conns := []*net.UDPConn{u.inv}
	if otherHost {
		conns = append(conns, u.ctc)
	}
	serveSIP(t, func(conn *net.UDPConn, req *sip.Request, src netip.AddrPort) {
		var res *sip.Response
		switch req.Method {
		case sip.INVITE:
			c := u.ctc.LocalAddr().(*net.UDPAddr)
			sdp := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n"
			res = sip.NewResponseFromRequest(req, 200, "OK", []byte(sdp))
			res.To().Params.Add("tag", "uas1")
			res.AppendHeader(sip.NewHeader("Contact", fmt.Sprintf("<sip:bob@%s>", c)))
			res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
		case sip.BYE:
			u.mu.Lock()
			u.byes = append(u.byes, req)
			u.mu.Unlock()
			if req.GetHeader("Authorization") != nil {
				res = sip.NewResponseFromRequest(req, 200, "OK", nil)
			} else {
				res = sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
				res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="asterisk", nonce="0bye0", algorithm=MD5`))
			}
		default:
			return
		}
		_, _ = conn.WriteToUDPAddrPort([]byte(res.String()), src)
	}, conns...)
	return u
}

func (u *contactUAS) byeList() []*sip.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*sip.Request(nil), u.byes...)
}

// A challenge to our BYE gets credentials only from the host the dial-out
// went to (spec/reliability.md R7): when the answering party's Contact
// is another host, its 401 to the BYE is not answered, even after the
// server has finished (Shutdown waits for its BYEs); from the INVITE's
// own host it is.
func TestDialoutByeChallengeOnlyFromTheDialoutsHop(t *testing.T) {
	t.Parallel()
	for _, otherHost := range []bool{true, false} {
		t.Run(fmt.Sprintf("contact on another host %v", otherHost), func(t *testing.T) {
			t.Parallel()
			srv := start(t, nil)
			uas := listenContactUAS(t, otherHost)
			tag := srv.dialout(t, sipapp.DialRequest{Room: "byeauth", Callee: "bob", FromUser: "conference",
				Domain: uas.inv.LocalAddr().String(), AuthUser: "wcuser", AuthPwd: "s3cret"})
			srv.waitDialStatuses(t, tag, "1 INVITE", "3 200 OK")
			if err := srv.Registry().Kick("byeauth", tag); err != nil {
				t.Fatal(err)
			}
			if !otherHost {
				testutil.WaitFor(t, 5*time.Second, "the BYE again with credentials", func() bool {
					byes := uas.byeList()
					return len(byes) == 2 && byes[1].GetHeader("Authorization") != nil
				})
				return
			}
			testutil.WaitFor(t, 5*time.Second, "the BYE at the Contact", func() bool { return len(uas.byeList()) > 0 })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			for _, bye := range uas.byeList() {
				if bye.GetHeader("Authorization") != nil {
					t.Fatalf("credentials sent to the Contact's host:\n%s", bye)
				}
			}
		})
	}
}
