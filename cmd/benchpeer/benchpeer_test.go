package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFmtNumAndRatio(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{1136, "1,136"}, {1234567, "1,234,567"}, {-2500, "-2,500"}, {241.4, "241"}, {16.84, "16.8"}, {0.4123, "0.412"}, {0, "0"}, {math.NaN(), "-"}, {math.Inf(1), "-"}} {
		if got := fmtNum(tc.v); got != tc.want {
			t.Errorf("fmtNum(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		r    row
		want string
	}{
		{row{WC: 932, Peer: 1136}, "1.22"},
		{row{WC: 78, Peer: 32}, "0.41"},
		{row{WC: 0, Peer: 5}, "-"},
		{row{WC: 5, Peer: math.NaN()}, "-"},
		{row{WC: math.NaN(), Peer: 5}, "-"},
	} {
		if got := fmtRatio(tc.r.ratio()); got != tc.want {
			t.Errorf("ratio of %+v = %q, want %q", tc.r, got, tc.want)
		}
	}
}

func TestPrintTableNamesEachLoadOnceAndWritesNullForMissing(t *testing.T) {
	rows := []row{
		{Load: "confload 500", Figure: "server CPU per participant-tick", Unit: "µs", WC: 11.6, Peer: 16.8},
		{Load: "confload 500", Figure: "RSS", Unit: "MiB", WC: 46, Peer: 240, Note: "at the end"},
		{Load: "big", Figure: "server CPU per participant-tick", Unit: "µs", WC: 3.9, Peer: math.NaN()},
	}
	var b bytes.Buffer
	printTable(&b, rows)
	want := `| load | figure | webconf | peer | peer / webconf |
|---|---|---|---|---|
| confload 500 | server CPU per participant-tick (µs) | 11.6 | 16.8 | 1.45 |
|  | RSS (MiB); at the end | 46.0 | 240 | 5.22 |
| big | server CPU per participant-tick (µs) | 3.9 | - | - |
`
	if b.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", b.String(), want)
	}
	path := filepath.Join(t.TempDir(), "t.json")
	if err := writeRowsJSON(path, rows); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if got[0]["peer_over_webconf"] != 16.8/11.6 || got[2]["peer"] != nil || got[2]["peer_over_webconf"] != nil || got[2]["webconf"] != 3.9 {
		t.Errorf("JSON rows: %s", raw)
	}
}

func TestConfloadReportRows(t *testing.T) {
	doc := `{"calls":500,"joined":500,"failed_calls":0,"window_s":10,"server_cpu_pct_of_core":29,
	"server_cpu_us_per_participant_tick":11.6,"server_rss_bytes":50331648,"server_rss_per_participant_kb":58,
	"packets_received":250000,"loss_pct":0,"metrics_delta":{"webconf_mixer_tick_overruns_total":2},"samples":[]}`
	wc, err := parseConfloadReport([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	peer, err := parseConfloadReport([]byte(strings.Replace(doc, `"server_cpu_us_per_participant_tick":11.6`, `"server_cpu_us_per_participant_tick":17.4`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	rows := confloadRows("l", wc, peer)
	find := func(fig string) row {
		for _, r := range rows {
			if r.Figure == fig {
				return r
			}
		}
		t.Fatalf("no row %q in %+v", fig, rows)
		return row{}
	}
	if r := find("server CPU per participant-tick"); r.WC != 11.6 || r.Peer != 17.4 || fmtRatio(r.ratio()) != "1.50" {
		t.Errorf("CPU row %+v", r)
	}
	if r := find("RSS at the end of the window"); r.WC != 48 {
		t.Errorf("RSS row %+v, want 48 MiB", r)
	}
	if r := find("packets received per participant-second"); r.WC != 50 {
		t.Errorf("packets row %+v, want 50", r)
	}
	// 29 % of a core for 10 s over 250,000 packets: 11.6 µs each.
	if r := find("server CPU per packet delivered"); math.Abs(r.WC-11.6) > 1e-9 {
		t.Errorf("CPU per packet row %+v, want 11.6", r)
	}
	if r := find("mixer tick overruns"); r.WC != 2 || !math.IsNaN(r.Peer) {
		t.Errorf("overruns row %+v", r)
	}
	if rows := confloadRows("l", wc, nil); !math.IsNaN(rows[0].Peer) || rows[0].WC != 11.6 {
		t.Errorf("rows without a peer: %+v", rows[0])
	}
	if _, err := parseConfloadReport([]byte(`{"mode":"x"}`)); !errors.Is(err, ErrReport) {
		t.Errorf("report without calls: %v, want ErrReport", err)
	}
}

func TestNetParsers(t *testing.T) {
	snmp := `Ip: Forwarding DefaultTTL InReceives OutRequests
Ip: 1 64 1000 2000
Icmp: InMsgs OutMsgs
Icmp: 3 4
Tcp: RtoAlgorithm OutSegs
Tcp: 1 -1
Udp: InDatagrams OutDatagrams RcvbufErrors
Udp: 10 20 30
UdpLite: InDatagrams OutDatagrams
UdpLite: 0 0
`
	m := snmpCounters([]byte(snmp))
	if m["Ip.OutRequests"] != 2000 || m["Icmp.OutMsgs"] != 4 || m["Udp.OutDatagrams"] != 20 || m["Udp.RcvbufErrors"] != 30 || m["UdpLite.InDatagrams"] != 0 {
		t.Errorf("snmpCounters = %v", m)
	}
	udp := `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
14234: 0100007F:1770 00000000:0000 07 00000000:00030C00 00:00000000 00000000     0        0 603345 2 00000000b58f95b3 1234
14235: 0100007F:1772 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 603346 2 00000000b58f95b4 7
14236: 00000000:1770 00000000:0000 07 00000000:00000100 00:00000000 00000000     0        0 603347 2 00000000b58f95b5 6
`
	drops, q, found := udpSocketDrops([]byte(udp), 6000)
	if !found || drops != 1240 || q != 0x30C00+0x100 {
		t.Errorf("udpSocketDrops(6000) = %d, %#x, %v; want 1240, 0x30d00, true", drops, q, found)
	}
	if _, _, found := udpSocketDrops([]byte(udp), 6004); found {
		t.Error("udpSocketDrops found a socket on a port nobody binds")
	}
	st := "StartTime;TotalCallCreated;CurrentCall;FailedCall(C);\n" +
		"2026-12-06 02:26:43;10;10;0;\n2026-12-06 02:26:44;500;498;2;\n"
	if s := sippStats([]byte(st)); s["TotalCallCreated"] != 500 || s["CurrentCall"] != 498 || s["FailedCall(C)"] != 2 {
		t.Errorf("sippStats = %v", s)
	}
	metrics := "# HELP x\nwebconf_rtp_packets_out_total 1.5e+06\nwebconf_rpc_requests_total{method=\"a\"} 3\n"
	if m := parseMetrics([]byte(metrics)); m["webconf_rtp_packets_out_total"] != 1.5e6 || len(m) != 1 {
		t.Errorf("parseMetrics = %v", m)
	}
}

// testPcap is a capture of n Ethernet/IPv4/UDP/RTP frames of 240 bytes of
// payload, sequence numbers from 7, timestamps from 1000, marker on the
// first, 30 ms apart.
func testPcap(n int) []byte {
	out := make([]byte, 24)
	binary.LittleEndian.PutUint32(out, pcapMagicUsec)
	binary.LittleEndian.PutUint16(out[4:], 2)
	binary.LittleEndian.PutUint16(out[6:], 4)
	binary.LittleEndian.PutUint32(out[16:], 65535)
	binary.LittleEndian.PutUint32(out[20:], linkEthernet)
	for k := range n {
		p := make([]byte, 14+20+8+12+240)
		binary.BigEndian.PutUint16(p[12:], 0x0800)
		p[14], p[14+9] = 0x45, 17
		binary.BigEndian.PutUint16(p[14+20+6:], 0xbeef) // UDP checksum
		rtp := p[42:]
		rtp[0], rtp[1] = 0x80, 8
		if k == 0 {
			rtp[1] |= 0x80
		}
		binary.BigEndian.PutUint16(rtp[2:], uint16(7+k))
		binary.BigEndian.PutUint32(rtp[4:], uint32(1000+240*k))
		var hdr [16]byte
		binary.LittleEndian.PutUint32(hdr[4:], uint32(k*30000))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(len(p)))
		binary.LittleEndian.PutUint32(hdr[12:], uint32(len(p)))
		out = append(append(out, hdr[:]...), p...)
	}
	return out
}

func TestLoopPcapContinuesSequenceAndTimestamps(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	if err := os.WriteFile(src, testPcap(3), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := loopPcap(src, dst, 200*time.Millisecond, 30*time.Millisecond)
	if err != nil || n != 7 {
		t.Fatalf("loopPcap = %d, %v; want 7 packets", n, err)
	}
	b, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	pkts, err := pcapPackets(b)
	if err != nil || len(pkts) != 7 {
		t.Fatalf("read back %d packets, %v", len(pkts), err)
	}
	off := 24
	for k, p := range pkts {
		usec := binary.LittleEndian.Uint32(b[off+4:])
		off += 16 + len(p)
		rtp := p[42:]
		seq, ts := binary.BigEndian.Uint16(rtp[2:]), binary.BigEndian.Uint32(rtp[4:])
		marker := rtp[1]&0x80 != 0
		if seq != uint16(7+k) || ts != uint32(1000+240*k) || marker != (k == 0) || rtp[1]&0x7f != 8 {
			t.Errorf("packet %d: seq %d ts %d marker %v, want seq %d ts %d marker %v", k, seq, ts, marker, 7+k, 1000+240*k, k == 0)
		}
		if usec != uint32(k*30000) {
			t.Errorf("packet %d at %d µs, want %d", k, usec, k*30000)
		}
		if sum := binary.BigEndian.Uint16(p[40:]); sum != 0 {
			t.Errorf("packet %d: UDP checksum %#x, want 0 (none)", k, sum)
		}
	}
	if err := os.WriteFile(src, []byte("not a pcap at all, not a pcap at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loopPcap(src, dst, time.Second, 30*time.Millisecond); !errors.Is(err, ErrPcap) {
		t.Errorf("loopPcap of garbage: %v, want ErrPcap", err)
	}
}

func TestSIPpScenarioPtime(t *testing.T) {
	s := sippScenarioFor("/tmp/x.pcap", 0)
	if strings.Contains(s, "@PCAP@") || strings.Contains(s, "@PTIME@") || strings.Contains(s, "a=ptime") ||
		!strings.Contains(s, `play_pcap_audio="/tmp/x.pcap"`) {
		t.Errorf("scenario without ptime:\n%s", s)
	}
	if s := sippScenarioFor("/tmp/x.pcap", 30); !strings.Contains(s, "      a=ptime:30\n    ]]>") {
		t.Errorf("scenario with ptime 30:\n%s", s)
	}
}

func TestFlags(t *testing.T) {
	o, err := parseFlags([]string{"-suite", "sipp", "-sipp-calls", "500, 1000", "-loads", "sipp-500"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(o.sippCalls) != "[500 1000]" || fmt.Sprint(o.rpcProcs) != "[1 4]" || !o.want("sipp-500") || o.want("sipp-1000") {
		t.Errorf("parsed %+v", o)
	}
	if o, err := parseFlags([]string{"-rpc-procs", "2"}, io.Discard); err != nil || fmt.Sprint(o.rpcProcs) != "[2]" {
		t.Errorf("-rpc-procs 2: %+v, %v", o, err)
	}
	for _, args := range [][]string{
		{"-suite", "x"},
		{"-peer-sip", "192.0.2.1:5060", "-peer-pid", "1"},
		{"-peer-sip", "127.0.0.1:5070"},
		{"-sipp-calls", "5"},
		{"-sipp-calls", "500,x"},
		{"-rpc-procs", "0"},
		{"-rpc-procs", ""},
		{"-rooms", "600"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("parseFlags(%q) = %v, want ErrUsage", args, err)
		}
	}
}

// TestRunRPCRunsRpcloadAndTakesItsReport drives runRPC with a stand-in
// for rpcload that records its arguments and prints a given report: the
// figures come from rpcload's field names, and a run with errors, without
// requests or without a report is a failure that says why.
func TestRunRPCRunsRpcloadAndTakesItsReport(t *testing.T) {
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	bin := filepath.Join(dir, "rpcload")
	o := &options{rpcload: bin, rpcDuration: 3 * time.Second, log: io.Discard}
	srv := &server{name: "peer", pid: 4242, xmlrpc: "http://127.0.0.1:8091/"}
	stub := func(t *testing.T, script string) {
		t.Helper()
		if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"$@\" > "+argsFile+"\n"+script+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("a good run", func(t *testing.T) {
		stub(t, `echo '{"url":"http://127.0.0.1:8091/","protocol":"xmlrpc","room":"rpcload-1-2","procs":2,"seconds":3.001,`+
			`"requests":6000,"errors":0,"requests_per_s":1999.3,"server_pid":4242,"server_cpu_s":0.24,"server_cpu_us_per_request":40}'`)
		rep, err := o.runRPC(t.Context(), srv, 2)
		if err != nil {
			t.Fatal(err)
		}
		if rep.RequestsPerSec != 1999.3 || rep.CPUUsPerReq != 40 {
			t.Errorf("report %+v, want 1999.3 requests/s and 40 µs", rep)
		}
		b, err := os.ReadFile(argsFile)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := strings.TrimSpace(string(b)), "-url http://127.0.0.1:8091/ -pid 4242 -procs 2 -duration 3s -json"; got != want {
			t.Errorf("rpcload got %q, want %q", got, want)
		}
		rows := rpcRows("l", rep, nil)
		if rows[0].WC != 1999.3 || rows[1].WC != 40 || !math.IsNaN(rows[0].Peer) {
			t.Errorf("rows %+v", rows)
		}
	})
	for _, tc := range []struct{ name, script, want string }{
		{"errors", `echo '{"requests":5000,"errors":3,"requests_per_s":1600,"server_cpu_us_per_request":40,"first_error":"status \"HTTP/1.1 503 x\""}'; exit 1`,
			`5000 requests, 3 errors; the first: status "HTTP/1.1 503 x"`},
		{"no requests", `echo '{"requests":0,"errors":0,"requests_per_s":0}'; exit 1`, "0 requests, 0 errors"},
		{"no report", `echo 'rpcload: roomCreate("r"): connection refused' >&2; exit 1`, "exit status 1: rpcload: roomCreate"},
		{"not a report", `echo 'hello'`, "report"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stub(t, tc.script)
			rep, err := o.runRPC(t.Context(), srv, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "against peer") {
				t.Errorf("runRPC = %+v, %v; want an error with %q", rep, err, tc.want)
			}
		})
	}
}
