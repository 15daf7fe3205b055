//go:build !linux

package rtpleg

import (
	"errors"
	"log/slog"
	"net/netip"
)

// Shared sockets and batched I/O are Linux-only; elsewhere every leg has
// its own socket and read goroutine.

type (
	mmsgBatch   struct{}
	sharedState struct{ settled bool }
	Socket      struct{}
	sendBatch   struct{}
	// Worker does nothing here.
	Worker struct{}
	// Hub has no shared sockets here.
	Hub struct{ workers []*Worker }
)

func (*sendBatch) slot() []byte                    { return nil }
func (*sendBatch) commit(int, netip.AddrPort) bool { return false }
func (*Worker) batchFor(*Socket) *sendBatch        { return nil }
func (*Socket) sendTo([]byte, netip.AddrPort) bool { return false }
func (*Socket) settled(*Leg) bool                  { return true }
func (*Socket) remove(*Leg)                        {}
func (*Socket) remoteChanged(*Leg)                 {}
func (l *Leg) unbind()                             {}
func (*Worker) BeginTick()                         {}
func (*Worker) EndTick()                           {}
func (h *Hub) Worker(i int) *Worker                { return h.workers[i] }
func (h *Hub) Shared() bool                        { return false }
func (h *Hub) Foreign() uint64                     { return 0 }
func (h *Hub) Close()                              {}

// ErrRemoteInUse is never returned here (no shared sockets).
var ErrRemoteInUse = errors.New("rtpleg: the remote RTP address is another shared call's")

// NewHub refuses shared sockets here.
func NewHub(_ *Pool, n int, shared bool) (*Hub, error) {
	if shared {
		return nil, errors.New("rtpleg: shared RTP sockets need Linux")
	}
	h := &Hub{}
	for range n {
		h.workers = append(h.workers, &Worker{})
	}
	return h, nil
}

// OpenShared is not available here.
func (h *Hub) OpenShared(Config, netip.Addr, func(byte), *slog.Logger) (*Leg, error) {
	return nil, errors.New("rtpleg: shared RTP sockets need Linux")
}
