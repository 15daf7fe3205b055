package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"webconf/cmd/internal/procstat"
)

// The SIPp load: N callers in rooms of ten, each playing a G.711 A-law
// pcap in 30 ms packets (33 a second) from SIPp's media port and staying
// until the window has closed. Per side it measures over a steady window
// while every call is up:
//
//   - the server's CPU (utime+stime from /proc/PID/stat) per
//     participant-second;
//   - the datagrams the server sent per participant-second, counted where
//     they arrive: every call's SDP names SIPp's one media port, which
//     SIPp binds and never reads (without -rtp_echo), so its receive
//     buffer is full within milliseconds and from then on every datagram
//     the server sends to a caller is counted in that socket's drops
//     column of /proc/net/udp. That count belongs to this socket alone,
//     so other processes on the machine do not disturb it (/proc/net/snmp
//     is machine-wide, and on loopback counts both ends);
//   - SIPp's own sending rate: SIPp writes the pcap through a raw socket,
//     which UDP's counters miss, so it is Ip OutRequests less Udp
//     OutDatagrams, Tcp OutSegs and Icmp OutMsgs from /proc/net/snmp
//     (machine-wide: another process's raw or IP traffic would add to
//     it); with webconfd its rtp_packets_in_total counter cross-checks
//     it;
//   - SIPp's CPU, to show whether it kept up (it plays each call's pcap on
//     a thread of its own).

//go:embed testdata/pcap_uac.xml
var sippScenario string

// sippScenarioFor is the scenario playing pcap, with a=ptime:ptime in its
// offer (none when ptime is 0).
func sippScenarioFor(pcap string, ptime int) string {
	ptimeLine := ""
	if ptime > 0 {
		ptimeLine = fmt.Sprintf("      a=ptime:%d\n", ptime)
	}
	s := strings.ReplaceAll(sippScenario, "      @PTIME@\n", ptimeLine)
	return strings.ReplaceAll(s, "@PCAP@", pcap)
}

// sippG711 is the capture Debian's sip-tester ships: 236 packets of
// 240 bytes of A-law (30 ms), 7 s.
const sippG711 = "/usr/share/sip-tester/g711a.pcap"

// sippLoad is one SIPp load.
type sippLoad struct {
	name  string
	calls int
}

// sippResult is one side's figures.
type sippResult struct {
	participants        int
	windowS             float64
	upAtStart, upAtEnd  float64 // SIPp's CurrentCall
	cpuUsPerPartSec     float64
	cpuPct              float64
	srvSentPerPartSec   float64 // drops at SIPp's media socket
	sippSentPerPartSec  float64 // raw IP sends, machine-wide
	srvRTPInPerPartSec  float64 // webconfd's rtp_packets_in_total (NaN for the peer)
	srvRTPOutPerPartSec float64 // webconfd's rtp_packets_out_total (NaN for the peer)
	sippCPUPct          float64
	machinePct          float64
}

// snmpCounters reads every "Proto: name..." / "Proto: value..." pair of
// /proc/net/snmp into "Proto.Name" keys.
func snmpCounters(b []byte) map[string]uint64 {
	out := map[string]uint64{}
	var names []string
	var proto string
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.HasSuffix(f[0], ":") {
			continue
		}
		p := strings.TrimSuffix(f[0], ":")
		if p != proto || names == nil {
			proto, names = p, f[1:]
			continue
		}
		for i, n := range names {
			if i+1 < len(f) {
				v, _ := strconv.ParseInt(f[i+1], 10, 64)
				out[p+"."+n] = uint64(v)
			}
		}
		names = nil
	}
	return out
}

// udpSocketDrops sums the drops and receive queues (bytes) of the IPv4 UDP
// sockets bound to port in /proc/net/udp.
func udpSocketDrops(b []byte, port int) (drops, rxQueue uint64, found bool) {
	suffix := fmt.Sprintf(":%04X", port)
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
		if len(f) < 13 || !strings.HasSuffix(f[1], suffix) {
			continue
		}
		_, rx, ok := strings.Cut(f[4], ":")
		if !ok {
			continue
		}
		q, err1 := strconv.ParseUint(rx, 16, 64)
		d, err2 := strconv.ParseUint(f[12], 10, 64)
		if err1 != nil || err2 != nil {
			continue
		}
		drops += d
		rxQueue += q
		found = true
	}
	return drops, rxQueue, found
}

// sippStats is the last row of SIPp's -trace_stat file (';' separated,
// a header row first).
func sippStats(b []byte) map[string]float64 {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var header, last []string
	for sc.Scan() {
		f := strings.Split(sc.Text(), ";")
		if header == nil {
			header = f
			continue
		}
		if len(f) >= len(header)-1 {
			last = f
		}
	}
	out := map[string]float64{}
	for i, h := range header {
		if i < len(last) {
			if v, err := strconv.ParseFloat(strings.TrimSpace(last[i]), 64); err == nil {
				out[strings.TrimSpace(h)] = v
			}
		}
	}
	return out
}

// freeUDPPort finds an even port p on 127.0.0.1 with p and p+2 free
// (SIPp binds its media port and the one two above).
func freeUDPPort() (int, error) {
	for range 100 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("free port: %w", err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port &^ 1
		c.Close()
		ok := true
		for _, q := range []int{p, p + 2} {
			c, err := net.ListenPacket("udp4", "127.0.0.1:"+strconv.Itoa(q))
			if err != nil {
				ok = false
				break
			}
			c.Close()
		}
		if ok && p+2 < 65536 {
			return p, nil
		}
	}
	return 0, errors.New("no free UDP port pair on 127.0.0.1")
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type sippSnap struct {
	at              time.Time
	srvCPU, sippCPU float64
	drops, rxQueue  uint64
	snmp            map[string]uint64
	machine         procstat.Machine
	rtpIn, rtpOut   float64
	haveMetrics     bool
	current         float64
}

// runSIPp runs one SIPp load against s and measures it.
func (o *options) runSIPp(ctx context.Context, l sippLoad, s *server) (*sippResult, error) {
	dir, err := os.MkdirTemp(o.workDir, "sipp-"+s.name+"-")
	if err != nil {
		return nil, fmt.Errorf("sipp dir: %w", err)
	}
	rampS := float64(l.calls) / o.sippRate
	ramp := time.Duration(rampS * float64(time.Second))
	settle := o.settle
	// Every call stays past the window: ramp, slack for a slow ramp (as
	// long again: on a busy machine SIPp falls behind its rate) and for
	// SIPp's statistics file (written once a second), settle, window,
	// settle again as a margin. Calls that end early show in the "calls
	// up at the window's end" row.
	callDur := 2*ramp + time.Second + 2*settle + o.duration
	pcap := filepath.Join(dir, "g711a-loop.pcap")
	if _, err := loopPcap(o.sippPcap, pcap, callDur+5*time.Second, 30*time.Millisecond); err != nil {
		return nil, err
	}
	scen := filepath.Join(dir, "pcap_uac.xml")
	if err := os.WriteFile(scen, []byte(sippScenarioFor(pcap, o.sippPtime)), 0o644); err != nil {
		return nil, fmt.Errorf("sipp scenario: %w", err)
	}
	inf := filepath.Join(dir, "rooms.csv")
	var csv strings.Builder
	csv.WriteString("SEQUENTIAL\n")
	for i := range l.calls {
		fmt.Fprintf(&csv, "000777%d;\n", 1000+i/10)
	}
	if err := os.WriteFile(inf, []byte(csv.String()), 0o644); err != nil {
		return nil, fmt.Errorf("sipp injection file: %w", err)
	}
	mp, err := freeUDPPort()
	if err != nil {
		return nil, err
	}
	cp, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	statFile := filepath.Join(dir, "stat.csv")
	args := []string{"-sf", scen, "-inf", inf, "-t", "un",
		"-r", strconv.FormatFloat(o.sippRate, 'g', -1, 64), "-m", strconv.Itoa(l.calls), "-l", strconv.Itoa(l.calls),
		"-d", strconv.FormatInt(callDur.Milliseconds(), 10),
		"-i", "127.0.0.1", "-mi", "127.0.0.1", "-mp", strconv.Itoa(mp), "-cp", strconv.Itoa(cp),
		"-max_socket", strconv.Itoa(2*l.calls + 100), "-nostdin", "-trace_stat", "-stf", statFile, "-fd", "1",
		"-timeout", strconv.Itoa(int(callDur.Seconds()+rampS+60)) + "s", "-timeout_error",
		s.sip}
	o.logf("%s: sipp %s", s.name, quoteArgs(args))
	logf, err := os.Create(filepath.Join(dir, "sipp.out"))
	if err != nil {
		return nil, fmt.Errorf("sipp log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(o.sipp, args...)
	cmd.Stdout, cmd.Stderr, cmd.Dir = logf, logf, dir
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.sipp, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	sippPID := cmd.Process.Pid
	// stopSIPp ends our SIPp: SIGUSR1 is its soft exit (no new calls,
	// BYE the open ones), then SIGKILL.
	stopSIPp := func(grace time.Duration) {
		cmd.Process.Signal(syscall.SIGUSR1) //nolint:errcheck // it may have exited
		select {
		case <-exited:
		case <-time.After(grace):
			cmd.Process.Kill() //nolint:errcheck // it may have exited
			<-exited
		}
	}
	fail := func(err error) (*sippResult, error) {
		stopSIPp(10 * time.Second)
		out, _ := os.ReadFile(filepath.Join(dir, "sipp.out"))
		return nil, fmt.Errorf("sipp against %s: %w: %s", s.name, err, tail(out, 600))
	}

	// Wait until SIPp has placed every call.
	deadline := time.Now().Add(2*ramp + 5*time.Second)
	for {
		st, _ := os.ReadFile(statFile)
		if sippStats(st)["TotalCallCreated"] >= float64(l.calls) {
			break
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("SIPp placed %v of %d calls in time (stat %s)", sippStats(st)["TotalCallCreated"], l.calls, statFile))
		}
		select {
		case err := <-exited:
			exited <- err
			return fail(fmt.Errorf("SIPp exited early: %v", err))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	a, err := o.sippSnapshot(ctx, s, sippPID, mp, statFile)
	if err != nil {
		return fail(err)
	}
	select {
	case <-time.After(o.duration):
	case <-ctx.Done():
		return fail(ctx.Err())
	}
	b, err := o.sippSnapshot(ctx, s, sippPID, mp, statFile)
	if err != nil {
		return fail(err)
	}
	if a.rxQueue == 0 {
		// Drops count every arrival only once the queue is full.
		o.logf("%s: SIPp's media socket had an empty receive queue at the window's start: the server-sent count is too low", s.name)
	}
	// Let the calls end with their BYEs.
	select {
	case err := <-exited:
		if err != nil {
			o.logf("%s: sipp exited: %v (see %s)", s.name, err, dir)
		}
	case <-time.After(callDur + 30*time.Second):
		o.logf("%s: sipp still running past its calls' end; stopping it", s.name)
		stopSIPp(10 * time.Second)
	}
	return sippFigures(l.calls, a, b), nil
}

func (o *options) sippSnapshot(ctx context.Context, s *server, sippPID, mp int, statFile string) (*sippSnap, error) {
	n := &sippSnap{at: time.Now()}
	srv, err := procstat.Read(s.pid)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	sipp, err := procstat.Read(sippPID)
	if err != nil {
		return nil, fmt.Errorf("sipp: %w", err)
	}
	n.srvCPU, n.sippCPU = srv.CPU, sipp.CPU
	udp, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/udp: %w", err)
	}
	var found bool
	if n.drops, n.rxQueue, found = udpSocketDrops(udp, mp); !found {
		return nil, fmt.Errorf("SIPp's media socket 127.0.0.1:%d is not in /proc/net/udp: %w", mp, ErrReport)
	}
	snmp, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		return nil, fmt.Errorf("read /proc/net/snmp: %w", err)
	}
	n.snmp = snmpCounters(snmp)
	if n.machine, err = procstat.ReadMachine(); err != nil {
		return nil, err
	}
	st, _ := os.ReadFile(statFile)
	stats := sippStats(st)
	n.current = stats["CurrentCall"]
	if s.metrics != "" {
		m, err := scrapeMetrics(ctx, s.metrics)
		if err != nil {
			return nil, err
		}
		n.rtpIn, n.rtpOut = m["webconf_rtp_packets_in_total"], m["webconf_rtp_packets_out_total"]
		n.haveMetrics = true
	}
	return n, nil
}

// sippFigures computes a side's figures from the snapshots at the
// window's start and end.
func sippFigures(calls int, a, b *sippSnap) *sippResult {
	w := b.at.Sub(a.at).Seconds()
	// Participant-seconds: the calls SIPp had up, the mean of the
	// window's start and end (calls a server refused are not counted).
	up := (a.current + b.current) / 2
	if up <= 0 {
		up = float64(calls)
	}
	ps := up * w
	d := func(k string) float64 { return float64(b.snmp[k] - a.snmp[k]) }
	r := &sippResult{
		participants: calls, windowS: w, upAtStart: a.current, upAtEnd: b.current,
		cpuUsPerPartSec:     (b.srvCPU - a.srvCPU) * 1e6 / ps,
		cpuPct:              100 * (b.srvCPU - a.srvCPU) / w,
		srvSentPerPartSec:   float64(b.drops-a.drops) / ps,
		sippSentPerPartSec:  (d("Ip.OutRequests") - d("Udp.OutDatagrams") - d("Tcp.OutSegs") - d("Icmp.OutMsgs")) / ps,
		sippCPUPct:          100 * (b.sippCPU - a.sippCPU) / w,
		srvRTPInPerPartSec:  math.NaN(),
		srvRTPOutPerPartSec: math.NaN(),
	}
	r.machinePct = procstat.BusyPct(a.machine, b.machine)
	if a.haveMetrics && b.haveMetrics {
		r.srvRTPInPerPartSec = (b.rtpIn - a.rtpIn) / ps
		r.srvRTPOutPerPartSec = (b.rtpOut - a.rtpOut) / ps
	}
	return r
}

// sippRows are the table's rows of one SIPp load.
func sippRows(load string, wc, peer *sippResult) []row {
	mk := rowMaker(load, wc, peer)
	return []row{
		mk("server CPU per participant-second", "µs", func(r *sippResult) float64 { return r.cpuUsPerPartSec }),
		mk("server CPU", "% of a core", func(r *sippResult) float64 { return r.cpuPct }),
		// A server that falls behind sends less and looks cheaper per
		// participant; per datagram it does not.
		mk("server CPU per datagram it sent", "µs", func(r *sippResult) float64 { return r.cpuUsPerPartSec / r.srvSentPerPartSec }),
		mk("datagrams sent by the server per participant-second", "50 when it keeps up", func(r *sippResult) float64 { return r.srvSentPerPartSec }),
		mk("datagrams on loopback per participant-second, server's + SIPp's", "83 expected", func(r *sippResult) float64 { return r.srvSentPerPartSec + r.sippSentPerPartSec }),
		mk("SIPp's RTP sent per participant-second", "33.3 when SIPp keeps up", func(r *sippResult) float64 { return r.sippSentPerPartSec }),
		mk("RTP accepted by webconfd per participant-second", "its counter", func(r *sippResult) float64 { return r.srvRTPInPerPartSec }),
		mk("RTP sent by webconfd per participant-second", "its counter", func(r *sippResult) float64 { return r.srvRTPOutPerPartSec }),
		mk("calls up at the window's start", "", func(r *sippResult) float64 { return r.upAtStart }),
		mk("calls up at the window's end", "", func(r *sippResult) float64 { return r.upAtEnd }),
		mk("SIPp CPU", "% of a core", func(r *sippResult) float64 { return r.sippCPUPct }),
		mk("machine CPU during the window", "% of all CPUs", func(r *sippResult) float64 { return r.machinePct }),
	}
}
