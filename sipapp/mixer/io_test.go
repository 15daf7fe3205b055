package mixer

import (
	"sync"
	"testing"
	"time"

	"webconf/dsp"
)

// ioLog records, in order, a worker's I/O calls and what its members send.
type ioLog struct {
	mu     sync.Mutex
	events []string
}

func (l *ioLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *ioLog) BeginTick() { l.add("begin") }
func (l *ioLog) EndTick()   { l.add("end") }

func (l *ioLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.events...)
}

// boundOut is an Output that wants its worker's I/O.
type boundOut struct {
	discardLeg
	log   *ioLog
	bound WorkerIO
}

func (b *boundOut) BindIO(io WorkerIO)        { b.bound = io }
func (b *boundOut) WriteEncoded(p []byte)     { b.log.add("write") }
func (b *boundOut) ReadFrame(*dsp.Frame) bool { return false }

// TestWorkerIOAroundTicks: a worker's I/O begins before its groups are
// mixed and ends after, and a member that wants it is given it on Add.
func TestWorkerIOAroundTicks(t *testing.T) {
	s := New(1, nil)
	log := &ioLog{}
	s.SetIO(0, log)
	g := s.NewGroup()
	out := &boundOut{log: log}
	g.Add(NewMember(out, out))
	if out.bound != WorkerIO(log) {
		t.Fatalf("the member was bound to %v, want its worker's I/O", out.bound)
	}
	s.Start()
	deadline := time.Now().Add(2 * time.Second)
	for len(log.snapshot()) < 9 {
		if time.Now().After(deadline) {
			t.Fatalf("ticks did not run: %v", log.snapshot())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	ev := log.snapshot()
	for i := 0; i+2 < len(ev); i += 3 {
		if ev[i] != "begin" || ev[i+1] != "write" || ev[i+2] != "end" {
			t.Fatalf("tick %d: %v, want begin, write, end", i/3, ev[i:i+3])
		}
	}
}
