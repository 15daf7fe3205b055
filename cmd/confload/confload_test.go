package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"webconf/test/testutil"
)

// serverConfig writes a webconfd config listening on a free port, with its
// own RTP range so that parallel tests do not compete for ports.
func serverConfig(t *testing.T, dir string, rtpLow, rtpHigh int) string {
	t.Helper()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`[server]
sip_listen=127.0.0.1:0
rtp_low_port=%d
rtp_high_port=%d
data_dir=%s
log_level=info
[http]
listen=127.0.0.1:0
[webconference]
direct_room_re=000777.*
direct_room_strip=6
[xmlrpc]
run_server=no
`, rtpLow, rtpHigh, data)
	path := filepath.Join(dir, "webconfd.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

var passLine = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

func TestConfloadAgainstWebconfd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cases := []struct {
		name         string
		mode         []string
		rtpLo, rtpHi int
	}{
		{"calls dialled straight into their rooms all join and hear each other", []string{"-ruri-pattern", "000777%d"}, 50000, 50998},
		{"calls that type their room number all join and hear each other", []string{"-keypad", "-join-timeout", "20s"}, 51000, 51998},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			cfg := serverConfig(t, dir, tc.rtpLo, tc.rtpHi)
			jsonPath := filepath.Join(dir, "report.json")
			args := append([]string{
				"-server", bin, "-config", cfg,
				"-calls", "20", "-rooms", "4", "-talkers", "2", "-rate", "50", "-duration", "5s",
				"-json", jsonPath, "-max-loss", "1", "-max-failed-calls=0",
			}, tc.mode...)
			var stdout, stderr strings.Builder
			code := realMain(args, &stdout, &stderr)
			t.Logf("stdout:\n%s", stdout.String())
			if code != 0 {
				t.Fatalf("exit status %d\nstderr:\n%s", code, stderr.String())
			}
			lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
			m := passLine.FindStringSubmatch(lines[len(lines)-1])
			if m == nil || m[1] != "2" || m[2] != "0" {
				t.Fatalf("last line %q, want \"2 passed, 0 failed\"", lines[len(lines)-1])
			}

			b, err := os.ReadFile(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			var rep report
			if err := json.Unmarshal(b, &rep); err != nil {
				t.Fatalf("JSON report: %v", err)
			}
			if rep.Joined != 20 || rep.FailedCalls != 0 {
				t.Errorf("joined %d failed %d, want 20 and 0", rep.Joined, rep.FailedCalls)
			}
			if rep.PacketsReceived == 0 || rep.PacketsReceived < rep.PacketsExpected*9/10 {
				t.Errorf("received %d of %d packets", rep.PacketsReceived, rep.PacketsExpected)
			}
			if rep.LossPct >= 1 {
				t.Errorf("loss %.3f%%", rep.LossPct)
			}
			// Every listener (3 per room of 5) hears about one marker a second.
			if rep.LatencySamples < 4*4*3 {
				t.Errorf("only %d marker onsets detected", rep.LatencySamples)
			}
			if rep.LatencyP50Ms <= 0 || rep.LatencyP50Ms > 500 {
				t.Errorf("latency p50 %.1f ms is not plausible", rep.LatencyP50Ms)
			}
			if rep.IAP50Ms < 15 || rep.IAP50Ms > 25 {
				t.Errorf("inter-arrival p50 %.1f ms, want about 20", rep.IAP50Ms)
			}
			if rep.ServerPID == 0 || rep.ServerRSSBytes == 0 || rep.CPUusPerPartTick <= 0 {
				t.Errorf("server not sampled: pid %d rss %d cpu %.2f", rep.ServerPID, rep.ServerRSSBytes, rep.CPUusPerPartTick)
			}
			if len(rep.MetricsDelta) == 0 {
				t.Errorf("no counters read from the server's /metrics")
			}
			if len(rep.Samples) < 3 {
				t.Errorf("%d samples in a 5 s window", len(rep.Samples))
			}
		})
	}
}
