package events

import (
	"runtime"
	"testing"
)

// TestRingMemoryIsBounded: the ring keeps its last RingSize events and no
// more, so the bus's memory stops growing once it is full, however many
// events follow (the soak test keeps the ring small for that reason).
func TestRingMemoryIsBounded(t *testing.T) {
	const ring = 4096
	b := newBus(t, ring, 16)
	meet := "0b7c8e52-3f1d-4a7e-9c51-7d2f6a9b1e40"
	p := RoomParticipant{Room: "4711", CallID: "0A1B2C3D-6B021C29000A41EF-00000002",
		Number: `"Alice" <sip:alice@192.0.2.10>`, ParticipantID: "p-1", MeetingUUID: &meet}
	users := []string{"7f3e2d1c-0b9a-4c8d-8e7f-6a5b4c3d2e1f"}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for range ring {
		b.Publish(RoomParticipantJoined, p, p.Room, users)
	}
	full := heap()
	for range 4 * ring {
		b.Publish(RoomParticipantJoined, p, p.Room, users)
	}
	after := heap()
	perEvent := float64(full-before) / ring
	t.Logf("a full ring of %d events: %.0f B an event, %.2f MiB", ring, perEvent, float64(full-before)/(1<<20))
	if after > full+full/20 {
		t.Errorf("heap went on growing after the ring was full: %d B full, %d B after 4 more rings", full, after)
	}
}
