package rtpleg

import (
	"log/slog"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// media opens legs the way one rtp_socket mode does: a port of the pool
// per call with its read goroutine (hub nil), or on a shared socket read
// by a worker ticking every millisecond.
type media struct {
	pool *Pool
	hub  *Hub
}

// Open opens a leg in the mode; the shared mode's leg claims no
// signalling IP (its SDP IP only).
func (m *media) Open(cfg Config, onDigit func(byte), log *slog.Logger) (*Leg, error) {
	if m.hub == nil {
		return Open(m.pool, cfg, onDigit, log)
	}
	return m.hub.OpenShared(cfg, netip.Addr{}, onDigit, log)
}

// testModes are the rtp_socket modes legs are tested in.
func testModes() []string {
	if runtime.GOOS != "linux" {
		return []string{"per_call"}
	}
	return []string{"per_call", "shared"}
}

// forModes runs f once per mode.
func forModes(t *testing.T, f func(t *testing.T, md *media)) {
	for _, mode := range testModes() {
		t.Run(mode, func(t *testing.T) { f(t, newMedia(t, testPool(t), mode == "shared")) })
	}
}

// newMedia makes the mode's media on pool; a shared hub's worker reads its
// socket every millisecond until the test ends.
func newMedia(t testing.TB, pool *Pool, shared bool) *media {
	t.Helper()
	m := &media{pool: pool}
	if !shared {
		return m
	}
	h, err := NewHub(pool, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	m.hub = h
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			h.Worker(0).BeginTick()
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
		h.Close()
	})
	return m
}
