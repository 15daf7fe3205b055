package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
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

func TestParseRPCReportToleratesFieldNames(t *testing.T) {
	for _, tc := range []struct {
		name, doc       string
		rate, cpu       float64
		rateKey, cpuKey string
	}{
		{"the names of the brief", `{"requests_per_sec": 12000.5, "server_cpu_us_per_request": 41.2, "procs": 4}`,
			12000.5, 41.2, "requests_per_sec", "server_cpu_us_per_request"},
		{"nested, other spellings", `{"client":{"req_per_s":900},"server":{"pid":7,"cpu_us_per_req":80}}`,
			900, 80, "client.req_per_s", "server.cpu_us_per_req"},
		{"found by pattern, after log lines", "rpcload: 4 procs\n" + `{"total_requests_per_second": 5, "server_cpu_us_per_roomInfo_request": 9}`,
			5, 9, "total_requests_per_second", "server_cpu_us_per_roomInfo_request"},
		{"rate only", `{"rps": 3}`, 3, math.NaN(), "rps", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseRPCReport([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			same := func(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
			if !same(r.rate, tc.rate) || !same(r.cpuUs, tc.cpu) || r.rateKey != tc.rateKey || r.cpuKey != tc.cpuKey {
				t.Errorf("got %+v, want rate %v (%s), cpu %v (%s)", r, tc.rate, tc.rateKey, tc.cpu, tc.cpuKey)
			}
		})
	}
	for _, doc := range []string{`{"procs": 4, "duration_s": 10}`, "no JSON here", `{"broken": `} {
		if _, err := parseRPCReport([]byte(doc)); err == nil {
			t.Errorf("parseRPCReport(%q) = nil error", doc)
		}
	}
}

func TestRPCFlagsFromGoUsage(t *testing.T) {
	help := `Usage of rpcload:
  -duration duration
    	how long (default 10s)
  -json
    	print the report as JSON
  -pid int
    	server pid
  -url string
    	XML-RPC URL
`
	got := rpcFlags([]byte(help))
	want := map[string]string{"duration": "duration", "json": "", "pid": "int", "url": "string"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("rpcFlags = %v, want %v", got, want)
	}
}

func TestRoomCreateReadsThePIN(t *testing.T) {
	var gotBody string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		// SEMS's XmlRpc++ leaves strings untyped; ours types them.
		io.WriteString(w, `<?xml version="1.0"?><methodResponse><params><param><value><array><data>`+ //nolint:errcheck // test server
			`<value><i4>0</i4></value><value>OK</value><value><string>48213</string></value></data></array></value></param></params></methodResponse>`)
	}))
	defer srv.Close()
	pin, err := roomCreate(t.Context(), srv.URL, "benchrpc1")
	if err != nil || pin != "48213" {
		t.Fatalf("roomCreate = %q, %v; want 48213", pin, err)
	}
	if !strings.Contains(gotBody, "<methodName>roomCreate</methodName>") || !strings.Contains(gotBody, "<string>benchrpc1</string>") {
		t.Errorf("request body %s", gotBody)
	}
	fail := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<methodResponse><params><param><value><array><data><value><i4>1</i4></value><value><string>room already opened</string></value><value><string></string></value></data></array></value></param></params></methodResponse>`) //nolint:errcheck // test server
	}))
	defer fail.Close()
	if _, err := roomCreate(t.Context(), fail.URL, "x"); !errors.Is(err, ErrReport) {
		t.Errorf("roomCreate of an open room: %v, want ErrReport", err)
	}
}

func TestProcAndNetParsers(t *testing.T) {
	stat := "1234 (web conf) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 500 1000000 2048 18446744073709551615"
	cpu, rss, err := procStat([]byte(stat))
	if err != nil || cpu != 3.25 || rss != 2048 {
		t.Errorf("procStat = %v, %v, %v; want 3.25 s, 2048 pages", cpu, rss, err)
	}
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
	if fmt.Sprint(o.sippCalls) != "[500 1000]" || !o.want("sipp-500") || o.want("sipp-1000") {
		t.Errorf("parsed %+v", o)
	}
	for _, args := range [][]string{
		{"-suite", "x"},
		{"-peer-sip", "192.0.2.1:5060", "-peer-pid", "1"},
		{"-peer-sip", "127.0.0.1:5070"},
		{"-sipp-calls", "5"},
		{"-rooms", "600"},
	} {
		if _, err := parseFlags(args, io.Discard); !errors.Is(err, ErrUsage) {
			t.Errorf("parseFlags(%q) = %v, want ErrUsage", args, err)
		}
	}
}

// TestRunRPCWiresAnRpcloadItHasNotSeen drives runRPC with stand-ins for
// rpcload (a script whose usage decides the flags it is given) and for
// the server's roomCreate: the room benchpeer made and its PIN reach the
// tool, a -json that takes a file is read from the file, a bool -json
// from stdout.
func TestRunRPCWiresAnRpcloadItHasNotSeen(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `<methodResponse><params><param><value><array><data><value><i4>0</i4></value><value><string>OK</string></value><value><string>5150</string></value></data></array></value></param></params></methodResponse>`) //nolint:errcheck // test server
	}))
	defer srv.Close()
	dir := t.TempDir()
	argsFile := filepath.Join(dir, "args")
	for _, tc := range []struct {
		name, usage, report string
	}{
		{"-json FILE, -room and -pin", `  -duration duration\n  -json string\n  -pid int\n  -pin string\n  -procs int\n  -room string\n  -url string`,
			`for a; do last=$a; done; printf '{"requests_per_sec": 2000, "server": {"cpu_us_per_request": 40}}' > "$last"`},
		{"bool -json to stdout, no room flags", `  -duration duration\n  -json\n  -pid int\n  -procs int\n  -url string`,
			`echo "warming up"; printf '{"requests_per_sec": 2000, "server_cpu_us_per_request": 40}\n'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := filepath.Join(dir, "rpcload")
			script := "#!/bin/sh\nif [ \"$1\" = -h ]; then printf 'Usage of rpcload:\\n" + tc.usage + "\\n' >&2; exit 2; fi\n" +
				"echo \"$@\" > " + argsFile + "\n" + tc.report + "\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			o := &options{rpcload: bin, workDir: dir, rpcProcs: 4, rpcDuration: 3 * time.Second, log: io.Discard}
			res, err := o.runRPC(t.Context(), &server{name: "peer", pid: 4242, xmlrpc: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			if res.rate != 2000 || res.cpuUs != 40 {
				t.Errorf("result %+v, want 2000 req/s and 40 µs", res)
			}
			b, err := os.ReadFile(argsFile)
			if err != nil {
				t.Fatal(err)
			}
			args := string(b)
			for _, want := range []string{"-url " + srv.URL, "-pid 4242", "-duration 3s", "-procs 4"} {
				if !strings.Contains(args, want) {
					t.Errorf("rpcload got %q, want %q in it", args, want)
				}
			}
			if hasRoom := strings.Contains(tc.usage, "-room"); hasRoom != (strings.Contains(args, "-room benchrpc") && strings.Contains(args, "-pin 5150")) {
				t.Errorf("rpcload got %q; room and PIN expected: %v", args, hasRoom)
			}
		})
	}
}
