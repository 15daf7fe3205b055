package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"webconf/test/testutil"
)

// jsonRow is a row as -json writes it.
type jsonRow struct {
	Load, Figure  string
	WC            *float64 `json:"webconf"`
	Peer          *float64 `json:"peer"`
	PeerOverWebco *float64 `json:"peer_over_webconf"`
}

// val prints a figure that may be missing.
func val(p *float64) string {
	if p == nil {
		return "missing"
	}
	return strconv.FormatFloat(*p, 'g', 4, 64)
}

func readRows(t *testing.T, path string) map[string]jsonRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []jsonRow
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	out := map[string]jsonRow{}
	for _, r := range rows {
		out[r.Figure] = r
	}
	return out
}

// TestSideBySideAgainstASecondWebconfd runs the orchestration for a few
// seconds with the peer played by a second webconfd (no SEMS needed):
// each load runs against a fresh webconfd and then the peer, and both
// sides' figures come from the wire and /proc.
func TestSideBySideAgainstASecondWebconfd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs servers")
	}
	webconfd := testutil.Build(t, "webconf/cmd/webconfd")
	confload := testutil.Build(t, "webconf/cmd/confload")
	rpcload := testutil.Build(t, "webconf/cmd/rpcload")
	dir := t.TempDir()
	peer, err := startWebconfd(t.Context(), webconfd, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer peer.stop()
	common := []string{"-webconfd", webconfd, "-confload", confload, "-rpcload", rpcload,
		"-peer-sip", peer.sip, "-peer-pid", strconv.Itoa(peer.pid), "-peer-xmlrpc", peer.xmlrpc, "-workdir", dir}

	t.Run("confload: 20 callers against both", func(t *testing.T) {
		out := filepath.Join(dir, "confload.json")
		var stdout, stderr bytes.Buffer
		args := append([]string{"-suite", "confload", "-loads", "confload", "-calls", "20", "-rooms", "2", "-talkers", "2",
			"-duration", "1s", "-json", out}, common...)
		if code := realMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
		rows := readRows(t, out)
		cpu := rows["server CPU per participant-tick"]
		if cpu.WC == nil || cpu.Peer == nil || *cpu.WC <= 0 || *cpu.Peer <= 0 || cpu.PeerOverWebco == nil {
			t.Errorf("CPU row %+v: want both sides and the ratio\n%s", cpu, stdout.String())
		}
		if j := rows["calls joined / placed"]; j.WC == nil || j.Peer == nil || *j.WC != 1 || *j.Peer != 1 {
			t.Errorf("joined row %+v: want every call joined on both sides", j)
		}
		if !strings.Contains(stdout.String(), "| confload 20 callers, 2 rooms, 2 talkers | server CPU per participant-tick (µs) |") {
			t.Errorf("table:\n%s", stdout.String())
		}
	})

	t.Run("XML-RPC: roomInfo from 1 and 2 client processes against both", func(t *testing.T) {
		out := filepath.Join(dir, "rpc.json")
		var stdout, stderr bytes.Buffer
		args := append([]string{"-suite", "confload", "-loads", "rpc", "-rpc-procs", "1,2", "-rpc-duration", "300ms",
			"-json", out}, common...)
		if code := realMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var rows []jsonRow
		if err := json.Unmarshal(b, &rows); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		want := map[string]bool{}
		for _, n := range []string{"1 client process", "2 client processes"} {
			for _, f := range []string{"requests per second", "server CPU per request"} {
				want["XML-RPC roomInfo, "+n+", keep-alive|"+f] = true
			}
		}
		for _, r := range rows {
			k := r.Load + "|" + r.Figure
			if !want[k] {
				t.Errorf("unexpected row %q", k)
				continue
			}
			delete(want, k)
			// Both sides are webconfd on loopback: hundreds of requests a
			// second at the least, and tens to thousands of µs of server
			// CPU each (/proc counts in 10 ms ticks).
			lo, hi := 100.0, 1e6
			if r.Figure == "server CPU per request" {
				lo, hi = 1, 20000
			}
			for side, v := range map[string]*float64{"webconf": r.WC, "peer": r.Peer} {
				if v == nil || *v < lo || *v > hi {
					t.Errorf("%s: %s %s, want %g..%g\n%s", r.Load, side, val(v), lo, hi, stdout.String())
				}
			}
			if r.PeerOverWebco == nil {
				t.Errorf("%s: %s: no ratio", r.Load, r.Figure)
			}
		}
		for k := range want {
			t.Errorf("no row %q\n%s", k, stdout.String())
		}
	})

	t.Run("SIPp: 20 callers against both, 50 datagrams a participant-second counted at SIPp's socket", func(t *testing.T) {
		sipp, err := exec.LookPath("sipp")
		if err != nil {
			t.Skip("sipp (Debian sip-tester) not installed")
		}
		if _, err := os.Stat(sippG711); err != nil {
			t.Skipf("no %s: %v", sippG711, err)
		}
		out := filepath.Join(dir, "sipp.json")
		var stdout, stderr bytes.Buffer
		args := append([]string{"-suite", "sipp", "-sipp", sipp, "-sipp-calls", "20", "-duration", "1s", "-settle", "500ms",
			"-json", out}, common...)
		if code := realMain(args, &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
		rows := readRows(t, out)
		for _, side := range []string{"webconf", "peer"} {
			pick := func(r jsonRow) *float64 {
				if side == "webconf" {
					return r.WC
				}
				return r.Peer
			}
			// Both sides are webconfd: 50 packets a second to every caller,
			// 33 from SIPp's 30 ms pcap, every call up all the window.
			if v := pick(rows["datagrams sent by the server per participant-second"]); v == nil || *v < 45 || *v > 55 {
				t.Errorf("%s: server datagrams per participant-second %s, want about 50\n%s", side, val(v), stdout.String())
			}
			if v := pick(rows["calls up at the window's start"]); v == nil || *v != 20 {
				t.Errorf("%s: calls up %s, want 20", side, val(v))
			}
			if v := pick(rows["server CPU per participant-second"]); v == nil || *v <= 0 {
				t.Errorf("%s: CPU per participant-second %s", side, val(v))
			}
		}
		// webconfd's own counters agree with the count at SIPp's socket.
		if in := rows["RTP accepted by webconfd per participant-second"]; in.WC == nil || *in.WC < 30 || *in.WC > 36.5 {
			t.Errorf("webconfd's RTP in per participant-second %s, want SIPp's 33.3", val(in.WC))
		}
	})
}
