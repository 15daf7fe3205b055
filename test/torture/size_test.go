package torture

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The size attacks of reliability spec 1.7, 1.8, T1.4 and T1.5. The
// server runs in this process, so its memory is the process's: each attack
// is measured with runtime.MemStats before and after (after a GC), as
// bytes allocated in between (catches a transient allocation bomb that is
// already collected) and as the change in heap in use (catches memory
// kept). sipgo v1.7.2 caps a message at sip.ParseMaxMessageLength (65535)
// and checks a declared Content-Length against that cap before it
// allocates the body (datagram: Parser.Parse; stream: ParserStream,
// summed in uint64); a Content-Length of 2^32 or more does not even parse
// (uint32). So no guard of our own is needed, and these tests keep it so.
//
// Not parallel: the heap figures would include the other tests' work.
func TestSizeAttacks(t *testing.T) {
	s := start(t, "127.0.0.1", 30800)
	var report memReport
	t.Cleanup(func() {
		for _, l := range report.lines {
			t.Log(l)
		}
	})

	// limit is the most an attack may cost. A broken parser would
	// allocate the declared 4 GiB, the 1 MiB body, or keep every header.
	const limit = 32 << 20
	measure := func(t *testing.T, name string, maxAlloc uint64, attack func(t *testing.T)) {
		t.Helper()
		before := readHeap()
		attack(t)
		after := readHeap()
		report.add(name, before, after)
		if d := after.total - before.total; d > maxAlloc {
			t.Errorf("%s allocated %d bytes, want at most %d", name, d, maxAlloc)
		}
		if after.inuse > before.inuse && after.inuse-before.inuse > limit {
			t.Errorf("%s left the heap %d bytes bigger, want at most %d", name, after.inuse-before.inuse, limit)
		}
	}

	t.Run("a datagram declaring a body of 2^32 octets is dropped without allocating it", func(t *testing.T) {
		// 2^32 overflows sipgo's uint32 Content-Length; 2^32-1 is the
		// value of sipgo #342 (a 4 GiB allocation before v1.4.x). Both
		// must cost next to nothing: 1 MiB covers the test's own buffers.
		for _, cl := range []string{"4294967296", "4294967295"} {
			measure(t, "UDP Content-Length: "+cl, 1<<20, func(t *testing.T) {
				p := dial(t, s, "udp")
				msg := options(p.local(), "UDP", "Content-Length: "+cl+"\r\n", "v=0\r\n")
				mustSend(t, p, msg)
				expectSilence(t, p)
			})
			probe(t, s, "udp")
		}
	})

	for _, tr := range []string{"tcp", "tls"} {
		tok := transportToken(tr)
		t.Run("a stream declaring a body of 2^32-1 octets is cut off without allocating it over "+tok, func(t *testing.T) {
			measure(t, tok+" Content-Length: 4294967295", 1<<20, func(t *testing.T) {
				p := dial(t, s, tr)
				mustSend(t, p, options(p.local(), tok, "Content-Length: 4294967295\r\n", "v=0\r\n"))
				expectClosed(t, p)
			})
			probe(t, s, tr)
		})

		t.Run("a 1 MiB message over "+tok+" is cut off", func(t *testing.T) {
			measure(t, tok+" message of 1 MiB", limit, func(t *testing.T) {
				p := dial(t, s, tr)
				body := bytes.Repeat([]byte("a"), 1<<20)
				msg := options(p.local(), tok, fmt.Sprintf("Content-Type: text/plain\r\nContent-Length: %d\r\n", len(body)), string(body))
				// The server stops reading once the headers announce more
				// than it accepts, so the write may fail with a reset.
				_ = p.send(msg)
				expectClosed(t, p)
			})
			probe(t, s, tr)
		})
	}

	t.Run("10,000 headers are refused over TCP and UDP", func(t *testing.T) {
		measure(t, "TCP message with 10,000 headers (200 KiB)", limit, func(t *testing.T) {
			p := dial(t, s, "tcp")
			var h strings.Builder
			for i := range 10000 {
				fmt.Fprintf(&h, "X-Torture-%05d: %05d\r\n", i, i)
			}
			h.WriteString("Content-Length: 0\r\n")
			_ = p.send(options(p.local(), "TCP", h.String(), ""))
			expectClosed(t, p)
		})
		probe(t, s, "tcp")
		// The most headers a datagram can carry: 10,000 of 5 octets,
		// 50 KB, more than sipgo's 32 KiB read buffer.
		measure(t, "UDP datagram with 10,000 headers (50 KB)", limit, func(t *testing.T) {
			p := dial(t, s, "udp")
			h := strings.Repeat("a:b\r\n", 10000) + "Content-Length: 0\r\n"
			mustSend(t, p, options(p.local(), "UDP", h, ""))
			expectSilence(t, p)
		})
		probe(t, s, "udp")
	})

	t.Run("a slowloris header block neither answers nor blocks anyone else", func(t *testing.T) {
		measure(t, "TCP slowloris, 1 byte per 100 ms for 3 s", limit, func(t *testing.T) {
			p := dial(t, s, "tcp")
			msg := options(p.local(), "TCP", "Content-Length: 0\r\n", "")
			// 30 bytes in 3 s: never a whole header block.
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			for i := 0; i < 30; i++ {
				<-tick.C
				if err := p.send(msg[i : i+1]); err != nil {
					t.Fatalf("slow byte %d: %v", i, err)
				}
				if i%10 == 5 {
					// Others are served while the slow peer dribbles.
					probe(t, s, "tcp")
					probe(t, s, "udp")
				}
			}
			expectSilence(t, p)
		})
	})
}

// options is an OPTIONS request from local with extra header lines (each
// ending in CRLF, Content-Length among them) and a body.
func options(local, transport, extra, body string) []byte {
	n := probeSeq.Add(1)
	return []byte(fmt.Sprintf("OPTIONS sip:size@torture SIP/2.0\r\n"+
		"Via: SIP/2.0/%s %s;branch=z9hG4bK-size-%d\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:torture@localhost>;tag=size%d\r\n"+
		"To: <sip:size@torture>\r\n"+
		"Call-ID: size-%d-%d@torture\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"%s\r\n%s", transport, local, n, n, time.Now().UnixNano(), n, extra, body))
}

func mustSend(t *testing.T, p *peer, msg []byte) {
	t.Helper()
	if err := p.send(msg); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// expectSilence fails if the server answers within quiet.
func expectSilence(t *testing.T, p *peer) {
	t.Helper()
	if r, err := p.recv(quiet); err != errSilent {
		t.Fatalf("want no answer, got %v (%v)", r, err)
	}
}

// expectClosed waits for the server to close the TCP connection without
// answering on it.
func expectClosed(t *testing.T, p *peer) {
	t.Helper()
	select {
	case <-p.closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept the connection open")
	}
	select {
	case r := <-p.res:
		t.Fatalf("want no answer, got %d %s", r.StatusCode, r.Reason)
	default:
	}
}
