package control

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"webconf/conf"
)

// rawRPC posts one XML-RPC di(...) call on a fresh connection from the
// loopback address local, with X-Forwarded-For values xff (none when
// empty), and returns the response body.
func rawRPC(t *testing.T, addr, local string, xff []string, params ...string) string {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	defer c.Close()
	return rpcOn(t, c, xff, params...)
}

func rpcOn(t *testing.T, c net.Conn, xff []string, params ...string) string {
	t.Helper()
	var body strings.Builder
	body.WriteString("<?xml version=\"1.0\"?><methodCall><methodName>di</methodName><params>")
	for _, p := range append([]string{"webconference"}, params...) {
		fmt.Fprintf(&body, "<param><value><string>%s</string></value></param>", p)
	}
	body.WriteString("</params></methodCall>")
	var req strings.Builder
	fmt.Fprintf(&req, "POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\n")
	for _, v := range xff {
		fmt.Fprintf(&req, "X-Forwarded-For: %s\r\n", v)
	}
	fmt.Fprintf(&req, "Content-length: %d\r\n\r\n%s", body.Len(), body.String())
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req.String()); err != nil {
		t.Fatalf("write: %v", err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const wrongPin = "wrong adminpin or inexisting room"

// TestRPCBehindATrustedHTTPProxy: requests from a trusted HTTP proxy are
// charged to the client X-Forwarded-For names, on the XML-RPC port and on
// the REST API (one rpc_failures budget): a client who guesses admin PINs
// is banned, another client behind the same proxy is not; requests that
// do not say who the client is share a budget of their own; and the
// proxy's connections are not capped per source.
func TestRPCBehindATrustedHTTPProxy(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		c.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.9.0.0/16")}
		c.Limits.RPCFailures = 3
		c.Limits.RoomFailures = 0
		c.Limits.FailureWindow, c.Limits.BanTime = time.Minute, time.Minute
		c.XMLRPC.MaxConnsPerSource = 2
	})
	addr := h.node.RPCAddr()
	pin := norm(h.di(t, "roomCreate", "vault")).([]any)[2].(string)
	ok := func(body string) bool { return !strings.Contains(body, wrongPin) }

	// The mallory at 192.0.2.66 behind the proxy (and a proxy of ours,
	// 10.9.0.1, in between) guesses three times.
	mallory := []string{"192.0.2.66, 10.9.0.1"}
	for i := range 3 {
		if body := rawRPC(t, addr, "127.0.0.1", mallory, "roomInfo", "vault", fmt.Sprint(i)); ok(body) {
			t.Fatalf("a wrong PIN was accepted: %s", body)
		}
	}
	if body := rawRPC(t, addr, "127.0.0.1", mallory, "roomInfo", "vault", pin); ok(body) {
		t.Fatalf("the guessing client is not banned: %s", body)
	}
	// Alice behind the same proxy is not banned, over XML-RPC or REST.
	alice := []string{"198.51.100.7"}
	if body := rawRPC(t, addr, "127.0.0.1", alice, "roomInfo", "vault", pin); !ok(body) {
		t.Fatalf("another client behind the proxy was refused: %s", body)
	}
	rest := func(xff ...string) int {
		req, _ := http.NewRequest("GET", "http://"+h.node.HTTPAddr()+"/api/v1/users", nil)
		req.SetBasicAuth("admin", "master")
		for _, v := range xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := rest(alice...); code != 200 {
		t.Fatalf("REST for another client behind the proxy: %d, want 200", code)
	}
	if code := rest("192.0.2.66"); code != 429 {
		t.Fatalf("REST for the banned client behind the proxy: %d, want 429", code)
	}

	// Unparsable X-Forwarded-For: charged to one budget of its own, not
	// to the proxy (Alice goes on) and not to the address it hides.
	for i := range 3 {
		rawRPC(t, addr, "127.0.0.1", []string{"unknown"}, "roomInfo", "vault", fmt.Sprint(i))
	}
	if body := rawRPC(t, addr, "127.0.0.1", []string{"not-an-address"}, "roomInfo", "vault", pin); ok(body) {
		t.Fatalf("requests without a usable X-Forwarded-For are not charged together: %s", body)
	}
	if body := rawRPC(t, addr, "127.0.0.1", alice, "roomInfo", "vault", pin); !ok(body) {
		t.Fatalf("the proxy's address was banned: %s", body)
	}

	// A direct client at another address is its own, whatever it sends.
	if body := rawRPC(t, addr, "127.0.0.2", []string{"192.0.2.66"}, "roomInfo", "vault", pin); !ok(body) {
		t.Fatalf("an untrusted peer was charged by its X-Forwarded-For: %s", body)
	}

	// The proxy holds four connections at once (max_conns_per_source 2).
	var conns []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	for i, c := range conns {
		if body := rpcOn(t, c, alice, "roomInfo", "vault", pin); !ok(body) {
			t.Fatalf("connection %d: %s", i, body)
		}
	}
}
