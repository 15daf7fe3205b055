package procstat

import (
	"errors"
	"os"
	"testing"
)

func TestParseCountsFieldsAfterTheCommandName(t *testing.T) {
	// comm "web conf) d" holds a space and a ')'.
	line := "4242 (web conf) d) S 1 4242 4242 0 -1 4194560 1 0 0 0 250 75 0 0 20 0 9 0 100 1000000 3000 18446744073709551615"
	p, err := Parse([]byte(line))
	if err != nil || p.CPU != 3.25 || p.Threads != 9 || p.RSSPages != 3000 {
		t.Fatalf("Parse = %+v, %v; want 3.25 s, 9 threads, 3000 pages", p, err)
	}
	if p.RSS() != 3000*int64(os.Getpagesize()) {
		t.Errorf("RSS = %d bytes", p.RSS())
	}
	for _, bad := range []string{"garbage", "1 (x) S 1 2 3", "1 (x) S 1 1 1 0 -1 0 1 0 0 0 x 75 0 0 20 0 9 0 100 1 3000 1"} {
		if _, err := Parse([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse(%q) = %v, want ErrFormat", bad, err)
		}
	}
}

func TestReadOwnProcess(t *testing.T) {
	p, err := Read(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if p.Threads < 1 || p.RSSPages < 1 || p.CPU < 0 {
		t.Errorf("own process: %+v", p)
	}
	if _, err := Read(-1); err == nil {
		t.Error("Read(-1) = nil error")
	}
}

// TestReadFinerThanTicks: 2 ms of CPU shows (clock ticks are 10 ms: the
// load tools' short windows of light loads read 0 from them).
func TestReadFinerThanTicks(t *testing.T) {
	if _, ok := taskRunTime(os.Getpid()); !ok {
		t.Skip("no /proc/PID/task/*/schedstat")
	}
	a, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var b Proc
	x := 1.0
	for b.CPU-a.CPU < 0.002 {
		for range 100000 {
			x = x*1.0000001 + 1e-9
		}
		if b, err = Read(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if b.CPU-a.CPU >= 0.002 {
			break
		}
	}
	// Within a tick of 2 ms: the reading moved by the work, not by ticks.
	if d := b.CPU - a.CPU; d >= 0.010 {
		t.Errorf("CPU moved by %.4f s for about 2 ms of work (ticks?); x=%g", d, x)
	}
}

func TestMachineLine(t *testing.T) {
	m, err := ParseMachine([]byte("cpu  100 10 50 800 5 1 30 4 0 0\ncpu0 1 2 3\n"))
	if err != nil || m != (Machine{User: 110, System: 50, Softirq: 30, Idle: 805, Total: 1000}) {
		t.Fatalf("ParseMachine = %+v, %v", m, err)
	}
	if m.Busy() != 195 {
		t.Errorf("Busy = %d, want 195", m.Busy())
	}
	if got := BusyPct(m, Machine{Idle: 855, Total: 1100}); got != 50 {
		t.Errorf("BusyPct = %v, want 50", got)
	}
	if got := BusyPct(m, m); got != 0 {
		t.Errorf("BusyPct over no time = %v, want 0", got)
	}
	for _, bad := range []string{"intr 1 2 3 4 5 6 7 8", "cpu 1 2 3", "cpu 1 2 x 4 5 6 7 8"} {
		if _, err := ParseMachine([]byte(bad)); !errors.Is(err, ErrFormat) {
			t.Errorf("ParseMachine(%q) = %v, want ErrFormat", bad, err)
		}
	}
}
