package control

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"webconf/conf"
)

// halfRequest is a request cut inside its headers: what a slowloris
// client sends and then holds.
const halfRequest = "POST /RPC2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\nContent-le"

// dialFrom opens a TCP connection to addr from the local address ip (Linux
// routes all of 127/8 to the loopback interface) and sends halfRequest.
func dialFrom(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", ip, err)
	}
	t.Cleanup(func() { c.Close() })
	// The server may already have closed a connection over its bounds;
	// then the write can fail, which is what the test is about.
	_, _ = io.WriteString(c, halfRequest)
	return c
}

// closedByPeer tells a connection the server closed (EOF or reset) from
// every other end of a read, such as the test's own deadline or Close.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// 400 connections from one address, each holding half a request, leave
// the XML-RPC port to everyone else: the address keeps 16
// (max_conns_per_source), the rest are closed at once, and a roomCreate
// from another address succeeds, over XML-RPC and over JSON-RPC on the
// same port.
func TestOneAddressCannotTakeTheRPCPort(t *testing.T) {
	t.Parallel()
	h := start(t, func(c *conf.Config) {
		// The held connections must outlive the test: only the
		// per-source bound may free the port.
		c.XMLRPC.HeaderTimeout = 5 * time.Minute
	})
	const attackers, perSource = 400, 16
	var closed atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(wg.Wait) // runs after the connections' cleanups close them
	for range attackers {
		c := dialFrom(t, "127.0.0.2", h.node.RPCAddr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No deadline: only the server's close or the test's
			// cleanup ends this read, and only the first counts.
			_, err := c.Read(make([]byte, 1))
			if closedByPeer(err) {
				closed.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(15 * time.Second)
	for closed.Load() < attackers-perSource && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := closed.Load(); n != attackers-perSource {
		t.Errorf("the server closed %d of the %d connections from 127.0.0.2, want %d", n, attackers, attackers-perSource)
	}

	// A normal client from 127.0.0.1 is served.
	pin := norm(h.di(t, "roomCreate", "busy")).([]any)[2].(string)
	if pin == "" {
		t.Fatal("roomCreate gave no PIN")
	}
	res, err := http.Post(h.url[:strings.LastIndex(h.url, "/")]+"/jsonrpc", "application/json",
		strings.NewReader(`{"jsonrpc":"2.0","method":"roomCreate","params":["busy2"],"id":1}`))
	if err != nil {
		t.Fatalf("JSON-RPC from 127.0.0.1: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"result"`) {
		t.Fatalf("JSON-RPC from 127.0.0.1: %d %s", res.StatusCode, body)
	}

	// The 16 within the bound are still open (their header timeout is
	// minutes away), and the refusals are counted.
	if n := closed.Load(); n != attackers-perSource {
		t.Errorf("closed %d connections from 127.0.0.2, want %d", n, attackers-perSource)
	}
	if v := metric(scrape(t, h), "webconf_rpc_connections_refused_total"); v != "384" {
		t.Errorf("webconf_rpc_connections_refused_total = %q, want 384", v)
	}
}

// A connection whose request headers are not complete within
// header_timeout is closed then, not after the 30 s request timeout.
func TestRPCHeaderTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 500 * time.Millisecond
	h := start(t, func(c *conf.Config) { c.XMLRPC.HeaderTimeout = timeout })
	began := time.Now()
	c := dialFrom(t, "127.0.0.2", h.node.RPCAddr())
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	if !closedByPeer(err) {
		t.Fatalf("half a request: read ended with %v, want the server to close it (EOF or reset)", err)
	}
	if d := time.Since(began); d < timeout {
		t.Fatalf("closed after %v, before header_timeout %v", d, timeout)
	}
	// The port still serves complete requests.
	h.di(t, "roomCreate", "after")
}
