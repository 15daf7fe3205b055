package control

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkRoomInfo100 measures roomInfo on a room of 100 participants,
// sequential requests over one keep-alive connection (what a polling GUI
// does), through the whole stack: HTTP framing, XML decode, the registry,
// XML encode.
func BenchmarkRoomInfo100(b *testing.B) {
	h := start(b, nil)
	pin := norm(h.di(b, "roomCreate", "bench")).([]any)[2].(string)
	for i := 0; i < 100; i++ {
		h.di(b, "addParticipant", "bench", fmt.Sprintf("p%03d", i), fmt.Sprintf("sip:user%03d@example.com", i))
	}
	body := pyCall("roomInfo", "bench", pin)
	req := fmt.Sprintf("POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	c, err := net.Dial("tcp", h.node.RPCAddr())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := io.WriteString(c, req); err != nil {
			b.Fatal(err)
		}
		n := -1
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if line == "\r\n" {
				break
			}
			if v, ok := strings.CutPrefix(line, "Content-length: "); ok {
				n, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil || n < 10000 {
			b.Fatalf("reply of %d bytes: %v", n, err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}
