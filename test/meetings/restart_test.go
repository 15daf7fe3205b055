package meetings

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"webconf/test/phone"
	"webconf/test/testutil"
)

var (
	httpListening = regexp.MustCompile(`msg="http listening" addr=(\S+)`)
	sipListening  = regexp.MustCompile(`msg="sip listening" udp=(\S+)`)
)

// runDaemon starts the webconfd binary and returns it with a harness on
// its HTTP address, and its SIP address. It is killed when the test ends.
func runDaemon(t *testing.T, bin, cfg string) (*exec.Cmd, *harness, string) {
	t.Helper()
	cmd, addrs := testutil.Daemon(t, bin, cfg, httpListening, sipListening)
	return cmd, &harness{base: "http://" + addrs[0]}, addrs[1]
}

// TestMeetingsSurviveKillDashNine kills the server with SIGKILL in the
// middle of a burst of meeting creations: every meeting answered with 201
// is there after the restart, with the same number and expiry, can be
// dialled, and is deleted at that expiry by the restarted server.
func TestMeetingsSurviveKillDashNine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := daemonConf(t, dir, 38000, "meeting_ttl = 15\n")

	cmd, h, _ := runDaemon(t, bin, cfg)
	_, tok := h.user(t, "burst", "meetings")

	type made struct{ exten, expires string }
	var mu sync.Mutex
	confirmed := map[string]made{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// do fails the test on a transport error, which the
				// kill causes: use the raw request here.
				r, err := rawPost(h.base+"/api/v1/users/me/meetings", tok, fmt.Sprintf(`{"name":"m%d-%d"}`, w, i))
				if err != nil {
					return // the server is gone
				}
				if r.Status == 201 {
					mu.Lock()
					confirmed[r.JSON["uuid"].(string)] = made{r.JSON["exten"].(string), r.JSON["expires_at"].(string)}
					mu.Unlock()
				}
			}
		}()
	}
	testutil.WaitFor(t, 20*time.Second, "50 meetings created", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(confirmed) >= 50
	})
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	close(stop)
	wg.Wait()
	t.Logf("%d meetings confirmed before SIGKILL", len(confirmed))

	_, h2, sipA := runDaemon(t, bin, cfg)
	got := map[string]made{}
	r := h2.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil)
	for _, it := range r.JSON["items"].([]any) {
		m := it.(map[string]any)
		got[m["uuid"].(string)] = made{m["exten"].(string), m["expires_at"].(string)}
	}
	var anyID string
	for id, want := range confirmed {
		if got[id] != want {
			t.Errorf("meeting %s: after restart %+v, want %+v", id, got[id], want)
		}
		anyID = id
	}
	if t.Failed() {
		return
	}

	// The restarted server routes the number to the meeting.
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: sipA, User: confirmed[anyID].exten})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	h2.waitParticipants(t, tok, anyID, 1, false)

	// And deletes every meeting at its expiry, hanging up the caller.
	last := time.Time{}
	for _, m := range confirmed {
		e, err := time.Parse(time.RFC3339, m.expires)
		if err != nil {
			t.Fatal(err)
		}
		if e.After(last) {
			last = e
		}
	}
	select {
	case <-p.Done():
	case <-time.After(time.Until(last) + 10*time.Second):
		t.Fatal("the caller was not hung up at the meeting's expiry")
	}
	testutil.WaitFor(t, time.Until(last)+10*time.Second, "every meeting deleted at its expiry", func() bool {
		r := h2.must(t, 200, "GET", "/api/v1/users/me/meetings", bearer(tok), nil)
		return r.JSON["total"].(float64) == 0
	})
	if time.Now().Before(last) {
		t.Errorf("meetings gone before the last expires_at %v", last)
	}
}

// rawPost is one JSON POST with a bearer token; a transport error is
// returned, not fatal (the server may have been killed).
func rawPost(url, tok, body string) (reply, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return reply{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{Status: res.StatusCode, Header: res.Header, Body: data}
	if err := json.Unmarshal(data, &r.JSON); err != nil {
		return reply{}, err
	}
	return r, nil
}

// daemonConf writes the config of a webconfd process for a test: every
// listener on port 0, RTP ports from rtpLow (rtpLow+998; tests that run
// in parallel take different ranges), the data under dir, the master
// password, and meetings as the [meetings] lines (sections may follow).
// It returns the file's path.
func daemonConf(t *testing.T, dir string, rtpLow int, meetings string) string {
	t.Helper()
	cfg := filepath.Join(dir, "webconfd.conf")
	body := fmt.Sprintf(`[server]
sip_listen = 127.0.0.1:0
rtp_low_port = %d
rtp_high_port = %d
data_dir = %s
log_level = info
[webconference]
master_password = %s
[xmlrpc]
xmlrpc_port = 0
[http]
listen = 127.0.0.1:0
[meetings]
%s`, rtpLow, rtpLow+998, filepath.Join(dir, "data"), master, meetings)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}
