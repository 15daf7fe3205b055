package sipapp

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
)

// fuzzHost is an independent reading of "host[:port]" for the checks
// below: net.SplitHostPort when it works, else the whole string; IP
// addresses compared unmapped, names case-insensitively.
func fuzzHost(s string) string {
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().String()
	}
	return strings.ToLower(s)
}

// destOK: dest is host:port, an IP address, or a name without colons.
func destOK(dest string) bool {
	if _, _, err := net.SplitHostPort(dest); err == nil {
		return true
	}
	_, err := netip.ParseAddr(dest)
	return err == nil || !strings.Contains(dest, ":")
}

// printable: valid UTF-8 and no rune strconv.Quote would escape.
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return false
		}
	}
	return true
}

// FuzzChallenge drives the dial-out's answer to a 401/407 (RFC 3261 22.2)
// with an arbitrary WWW-Authenticate / Proxy-Authenticate value, provider
// domains, reply source, INVITE destination and user name: the exact path
// a hostile or broken provider (or anyone who can spoof its replies)
// reaches. It goes through the real call.answerChallenge, hence through
// digest.ParseChallenge, digest.CanDigest, realmAllowed, fromNextHop and
// digest.Digest. The domain argument is read as dialout_auth_realms
// (comma-separated; empty = any realm); name look-ups fail.
//
// Invariants: no panic; credentials are only ever computed for a reply
// from the address the INVITE went to (reliability.md 1.2: the digest
// leak), never for a destination that is a name the resolver cannot
// confirm, and, when realms are configured, only for one of them;
// the credentials header is the one RFC 3261 names for the status, carries
// no line break (header injection) and reads back with our user, the
// challenge's realm and nonce and the request URI; the CSeq grows.
func FuzzChallenge(f *testing.F) {
	f.Add(`Digest realm="sip.example.net", nonce="ab12cd", algorithm=MD5, qop="auth"`, "sip.example.net", "sip.example.net",
		"198.51.100.7:5060", "198.51.100.7:5060", "alice", false)
	f.Add(`Digest realm="proxy.example.net",nonce="1",opaque="x",algorithm=SHA-256`, "sip.example.net:5080", "proxy.example.net",
		"198.51.100.7:5060", "198.51.100.7:5080", "alice", true)
	// A challenge for someone else's realm, from somewhere else.
	f.Add(`Digest realm="attacker.example", nonce="n"`, "sip.example.net", "", "203.0.113.9:5060", "198.51.100.7:5060", "bob", false)
	f.Add(`Digest realm="[2001:db8::1]", nonce="n", qop="auth-int,auth", stale=TRUE`, "[2001:db8::1]:5060", "",
		"[2001:db8::1]:5060", "[2001:db8::1]:5060", "carol", false)
	f.Add(`Digest realm="x", nonce="n", algorithm=MD5-sess`, "x", "x", "x:1", "x:1", "d", false)
	f.Add(`Basic realm="x"`, "x", "x", "x", "x", "d", false)
	f.Add(`Digest realm="a\"b", nonce=`, "a\"b", "", "::ffff:10.0.0.1", "10.0.0.1:5060", "e\r\nVia: evil", true)
	f.Fuzz(func(t *testing.T, value, calleeDomain, domain, src, dest, user string, proxy bool) {
		req := DialRequest{Callee: "bob", FromUser: "conf", Domain: domain, CalleeDomain: calleeDomain,
			AuthUser: user, AuthPwd: "secret"}
		inv := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bob", Host: "sip.example.net"})
		inv.AppendHeader(sip.NewHeader("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"))
		inv.AppendHeader(sip.NewHeader("From", "<sip:conf@192.0.2.1>;tag=1"))
		inv.AppendHeader(sip.NewHeader("To", "<sip:bob@sip.example.net>"))
		inv.AppendHeader(sip.NewHeader("Call-ID", "fuzz"))
		inv.AppendHeader(&sip.CSeqHeader{SeqNo: 10, MethodName: sip.INVITE})
		inv.SetDestination(dest)
		inv.SetTransport("UDP")
		code, hname, aname := 401, "WWW-Authenticate", "Authorization"
		if proxy {
			code, hname, aname = 407, "Proxy-Authenticate", "Proxy-Authorization"
		}
		res := sip.NewResponseFromRequest(inv, code, "Unauthorized", nil)
		res.AppendHeader(sip.NewHeader(hname, value))
		res.SetSource(src)
		var realms []string
		for _, r := range strings.Split(domain, ",") {
			if r = strings.TrimSpace(r); r != "" {
				realms = append(realms, r)
			}
		}
		srv := &Server{opt: Options{DialoutAuthRealms: realms},
			resolver: func(context.Context, string) ([]netip.Addr, error) { return nil, errors.New("no DNS in the fuzz") }}
		c := &call{creds: &req, s: srv}
		c.cseq.Store(10)
		next, err := c.answerChallenge(inv, res)
		if err != nil {
			if next != nil {
				t.Fatal("a request and an error")
			}
			return
		}
		chal, err := digest.ParseChallenge(value)
		if err != nil {
			t.Fatalf("answered a challenge that does not parse: %v", err)
		}
		realmOK := len(realms) == 0
		for _, r := range realms {
			if strings.EqualFold(chal.Realm, r) {
				realmOK = true
			}
		}
		if !realmOK {
			t.Fatalf("credentials for realm %q; dialout_auth_realms %q", chal.Realm, realms)
		}
		if _, err := netip.ParseAddr(fuzzHost(dest)); err != nil {
			t.Fatalf("answered a challenge to an INVITE sent to %q, a name the resolver cannot confirm", dest)
		}
		// The destination is ours (built from callee_domain), always
		// host[:port]; for a malformed one ("h:[") the reading of its host
		// is a matter of taste, so the source rule is checked only for
		// destinations net.SplitHostPort or netip can read.
		if destOK(dest) && fuzzHost(src) != fuzzHost(dest) {
			t.Fatalf("answered a challenge from %q to an INVITE sent to %q", src, dest)
		}
		h := next.GetHeader(aname)
		if h == nil || len(next.GetHeaders(aname)) != 1 {
			t.Fatalf("want one %s header, got %d", aname, len(next.GetHeaders(aname)))
		}
		if strings.ContainsAny(h.Value(), "\r\n") {
			t.Fatalf("line break in %s: %q", aname, h.Value())
		}
		cred, err := digest.ParseCredentials(h.Value())
		if err != nil {
			t.Fatalf("our %s does not parse: %v\n%s", aname, err, h.Value())
		}
		// The digest package quotes with Go's strconv.Quote: a name with
		// control characters or invalid UTF-8 goes out Go-escaped (not
		// RFC 3261 25.1 quoted-pair) and reads back altered, but it never
		// breaks the header. Printable values must read back unchanged
		// (the user name hashed when the challenge asks for userhash, RFC
		// 7616 3.4.4).
		plain := printable(user) && printable(chal.Realm) && printable(chal.Nonce)
		if plain && ((cred.Username != user && !chal.Userhash) || cred.Realm != chal.Realm || cred.Nonce != chal.Nonce) || cred.URI != inv.Recipient.String() {
			t.Fatalf("credentials %+v for user %q, challenge %+v, URI %s", cred, user, chal, inv.Recipient.String())
		}
		if cs := next.CSeq(); cs == nil || cs.SeqNo <= 10 {
			t.Fatalf("CSeq did not grow: %v", cs)
		}
	})
}
