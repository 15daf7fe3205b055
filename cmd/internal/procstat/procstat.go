// Package procstat reads a process's CPU time, threads and RSS from
// /proc/PID/stat, and the machine's CPU time from /proc/stat (proc(5)),
// for the load and benchmark commands.
package procstat

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ErrFormat means a /proc file did not look as proc(5) describes.
var ErrFormat = errors.New("unexpected /proc format")

// ClkTck is USER_HZ, the unit of the CPU times in /proc/PID/stat and
// /proc/stat; it is 100 on every Linux architecture Go supports.
const ClkTck = 100

// Proc is a process's reading.
type Proc struct {
	CPU      float64 // utime+stime so far, seconds
	Threads  int
	RSSPages int64
}

// RSS is the resident set in bytes.
func (p Proc) RSS() int64 { return p.RSSPages * int64(os.Getpagesize()) }

// Parse parses /proc/PID/stat: utime and stime (fields 14 and 15, in
// clock ticks), num_threads (20) and rss (24, in pages). The comm field
// may hold spaces and parentheses, so fields are counted after the last ')'.
func Parse(b []byte) (Proc, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Proc{}, fmt.Errorf("stat: no comm field: %w", ErrFormat)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state).
	if len(f) < 22 {
		return Proc{}, fmt.Errorf("stat: %d fields: %w", len(f)+2, ErrFormat)
	}
	num := func(field int) (int64, error) { return strconv.ParseInt(f[field-3], 10, 64) }
	ut, err1 := num(14)
	st, err2 := num(15)
	th, err3 := num(20)
	rss, err4 := num(24)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Proc{}, fmt.Errorf("stat: %w: %w", ErrFormat, err)
	}
	return Proc{CPU: float64(ut+st) / ClkTck, Threads: int(th), RSSPages: rss}, nil
}

// Read reads process pid's /proc/PID/stat. Its CPU time comes in clock
// ticks (10 ms), too coarse for a short window of a light load (a server
// at 1% of a core for a second reads 0 or 1 tick): when every thread's
// /proc/PID/task/TID/schedstat can be read, their run times in
// nanoseconds are summed instead, unless the sum is below the ticks
// (threads that exited took their time with them; stat keeps it).
func Read(pid int) (Proc, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	p, err := Parse(b)
	if err != nil {
		return Proc{}, fmt.Errorf("process %d: %w", pid, err)
	}
	if ns, ok := taskRunTime(pid); ok && float64(ns)/1e9 >= p.CPU {
		p.CPU = float64(ns) / 1e9
	}
	return p, nil
}

// taskRunTime sums the first field of each thread's schedstat (time spent
// on a CPU, in nanoseconds; proc(5)). ok is false when any cannot be read.
func taskRunTime(pid int) (ns int64, ok bool) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil || len(tasks) == 0 {
		return 0, false
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			return 0, false
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, false
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, false
		}
		ns += v
	}
	return ns, true
}

// Machine is the aggregate "cpu" line of /proc/stat, in jiffies.
type Machine struct {
	User    uint64 // user and nice
	System  uint64
	Softirq uint64
	Idle    uint64 // idle and iowait
	Total   uint64 // the first eight fields (user to steal)
}

// Busy is Total less Idle.
func (m Machine) Busy() uint64 { return m.Total - m.Idle }

// BusyPct is the machine's CPU use between a and b, in percent of all
// CPUs (0 when no time passed).
func BusyPct(a, b Machine) float64 {
	if b.Total <= a.Total {
		return 0
	}
	return 100 * (1 - float64(b.Idle-a.Idle)/float64(b.Total-a.Total))
}

// ParseMachine parses /proc/stat's first line: user, nice, system, idle,
// iowait, irq, softirq, steal, ... jiffies.
func ParseMachine(b []byte) (Machine, error) {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return Machine{}, fmt.Errorf("/proc/stat cpu line: %w", ErrFormat)
	}
	var v [8]uint64
	var m Machine
	for i := range v {
		var err error
		if v[i], err = strconv.ParseUint(f[i+1], 10, 64); err != nil {
			return Machine{}, fmt.Errorf("/proc/stat cpu line: %w: %w", ErrFormat, err)
		}
		m.Total += v[i]
	}
	m.User, m.System, m.Softirq, m.Idle = v[0]+v[1], v[2], v[6], v[3]+v[4]
	return m, nil
}

// ReadMachine reads /proc/stat.
func ReadMachine() (Machine, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return Machine{}, fmt.Errorf("read /proc/stat: %w", err)
	}
	return ParseMachine(b)
}
