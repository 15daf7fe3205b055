package meetings

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"webconf/rpc/xmlrpc/client"
	"webconf/test/phone"
	"webconf/test/testutil"
)

var (
	newMasterLine  = regexp.MustCompile(`master password: ([A-Z2-7]{32}) \(kept in ([^)]*)\)`)
	readMasterLine = regexp.MustCompile(`msg="master password read from its file" file=(\S+)`)
	rpcListening   = regexp.MustCompile(`msg="xmlrpc listening" addr=(\S+)`)
)

// firstRun is one webconfd process of TestFirstRun.
type firstRun struct {
	cmd     *exec.Cmd
	log     *testutil.Log
	h       *harness
	rpcURL  string
	sipAddr string
	found   []string // the submatches of the extra patterns
}

func startFirstRun(t *testing.T, bin, cfg string, extra ...*regexp.Regexp) *firstRun {
	t.Helper()
	pats := append([]*regexp.Regexp{httpListening, sipListening, rpcListening}, extra...)
	cmd, got, log := testutil.DaemonLog(t, bin, cfg, pats...)
	return &firstRun{cmd: cmd, log: log, h: &harness{base: "http://" + got[0]}, sipAddr: got[1],
		rpcURL: "http://" + got[2] + "/", found: got[3:]}
}

// stop ends the process with SIGTERM and returns its whole log.
func (r *firstRun) stop(t *testing.T) string {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.log.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("webconfd did not stop on SIGTERM")
	}
	if err := r.cmd.Wait(); err != nil {
		t.Fatalf("webconfd: %v", err)
	}
	return strings.Join(r.log.Lines(), "\n")
}

// listRooms calls listRooms over XML-RPC and returns its code.
func (r *firstRun) listRooms(t *testing.T, pw string) int64 {
	t.Helper()
	c, err := client.New(r.rpcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var res []any
	if err := c.Call("listRooms", []any{pw}, &res); err != nil {
		t.Fatalf("listRooms: %v", err)
	}
	code, _ := res[0].(int64)
	return code
}

// TestFirstRun is a new operator's first run: with master_password empty
// the server makes one, logs it once and keeps it 0600 in data_dir; it
// works for the operator over XML-RPC and REST; webconfctl user add
// (reading it from data_dir) prints a token that makes a meeting, which a
// phone then dials. A restart reads the same password back without
// logging it; a configured master_password wins and leaves the file alone.
func TestFirstRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	webconfd := testutil.Build(t, "webconf/cmd/webconfd")
	webconfctl := testutil.Build(t, "webconf/cmd/webconfctl")
	data := filepath.Join(dir, "data")
	file := filepath.Join(data, "master_password")
	cfg := filepath.Join(dir, "webconfd.conf")
	writeCfg := func(master string) {
		t.Helper()
		body := fmt.Sprintf(`[server]
sip_listen = 127.0.0.1:0
rtp_low_port = 39000
rtp_high_port = 39998
data_dir = %s
log_level = debug
[webconference]
master_password = %s
[xmlrpc]
xmlrpc_port = 0
[http]
listen = 127.0.0.1:0
`, data, master)
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// First start: the password is made, logged and kept.
	writeCfg("")
	r := startFirstRun(t, webconfd, cfg, newMasterLine)
	pw := r.found[0]
	if m := newMasterLine.FindStringSubmatch(strings.Join(r.log.Lines(), "\n")); m == nil || m[2] != file {
		t.Fatalf("the log line names %v, want %s", m, file)
	}
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: mode %04o, want 0600", file, fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(file); string(b) != pw+"\n" {
		t.Fatalf("%s holds %q, the log said %q", file, b, pw)
	}
	// It is the operator's password over XML-RPC and REST.
	if c := r.listRooms(t, pw); c != 200 {
		t.Fatalf("listRooms with the logged password: %d, want 200", c)
	}
	if c := r.listRooms(t, ""); c != 407 {
		t.Fatalf("listRooms without a password: %d, want 407", c)
	}
	r.h.must(t, 200, "GET", "/api/v1/users", basic("admin", pw), nil)

	// webconfctl user add reads it from data_dir and prints a token...
	ctl := exec.Command(webconfctl, "-api", strings.TrimPrefix(r.h.base, "http://"), "-url", r.rpcURL,
		"-data-dir", data, "user", "add", "alice", "--capability", "meetings,sip")
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "WEBCONF_") {
			ctl.Env = append(ctl.Env, e)
		}
	}
	var out, errb bytes.Buffer
	ctl.Stdout, ctl.Stderr = &out, &errb
	if err := ctl.Run(); err != nil {
		t.Fatalf("webconfctl user add: %v: %s", err, errb.String())
	}
	tok := strings.TrimSpace(out.String())
	// ... with which alice makes a meeting (201), which a phone dials.
	m := r.h.meeting(t, tok, map[string]any{"name": "first"})
	p, err := phone.Dial(testutil.Ctx(t, 10*time.Second), phone.Config{Server: r.sipAddr, User: m["exten"].(string)})
	if err != nil {
		t.Fatalf("dial the meeting's exten: %v", err)
	}
	r.h.waitParticipants(t, tok, m["uuid"].(string), 1, false)
	if err := p.Hangup(testutil.Ctx(t, 5*time.Second)); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	p.Close()
	// Nothing else logs it, not even at debug level.
	log := r.stop(t)
	if n := strings.Count(log, pw); n != 1 {
		t.Fatalf("the password is in the log %d times, want once:\n%s", n, log)
	}

	// A restart reads it back, and does not log it.
	r = startFirstRun(t, webconfd, cfg, readMasterLine)
	if r.found[0] != file {
		t.Fatalf("read from %s, want %s", r.found[0], file)
	}
	if c := r.listRooms(t, pw); c != 200 {
		t.Fatalf("listRooms after a restart: %d, want 200", c)
	}
	r.h.must(t, 200, "GET", "/api/v1/users", basic("admin", pw), nil)
	if log := r.stop(t); strings.Contains(log, pw) || newMasterLine.MatchString(log) {
		t.Fatalf("the restart logged the password:\n%s", log)
	}
	if b, _ := os.ReadFile(file); string(b) != pw+"\n" {
		t.Fatalf("%s changed to %q", file, b)
	}

	// A configured password wins: the file is neither read nor written.
	writeCfg("configured-secret")
	if err := os.Chmod(file, 0o400); err != nil { // a write would fail; a read is seen in the log
		t.Fatal(err)
	}
	before, _ := os.Stat(file)
	r = startFirstRun(t, webconfd, cfg)
	if c := r.listRooms(t, "configured-secret"); c != 200 {
		t.Fatalf("listRooms with the configured password: %d, want 200", c)
	}
	if c := r.listRooms(t, pw); c != 407 {
		t.Fatalf("listRooms with the file's password: %d, want 407", c)
	}
	r.h.restUnauthorized(t, "Basic", "GET", "/api/v1/users", basic("admin", pw), nil)
	log = r.stop(t)
	if strings.Contains(log, pw) || strings.Contains(log, "configured-secret") || strings.Contains(log, "master password") {
		t.Fatalf("with a configured password the log says:\n%s", log)
	}
	after, _ := os.Stat(file)
	if b, _ := os.ReadFile(file); string(b) != pw+"\n" || !after.ModTime().Equal(before.ModTime()) {
		t.Fatalf("%s touched: %q", file, b)
	}
}
