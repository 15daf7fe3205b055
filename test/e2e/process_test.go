package e2e

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"webconf/test/phone"
	"webconf/test/testutil"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "webconfd.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var listening = regexp.MustCompile(`msg="sip listening" udp=(\S+)`)

func TestProcessHangsUpEveryCallOnSIGTERM(t *testing.T) {
	t.Parallel()
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := writeConfig(t, "[server]\nsip_listen = 127.0.0.1:0\nrtp_low_port = 47000\nrtp_high_port = 47998\n"+
		"data_dir = "+t.TempDir()+"\n[webconference]\ndirect_room_re = 000777.*\ndirect_room_strip = 6\n"+
		"[xmlrpc]\nxmlrpc_port = 0\n[http]\nlisten = 127.0.0.1:0\n")
	cmd := exec.Command(bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var sipAddr string
	select {
	case sipAddr = <-addr:
	case <-time.After(20 * time.Second):
		t.Fatal("server did not report its SIP address")
	}
	srv := &server{addr: sipAddr}
	a := srv.dial(t, phone.Config{User: "000777123"})
	b := srv.dial(t, phone.Config{User: "000777123"})
	a.SetTone(500)
	hearsAllButSelf(t, b, 0, []float64{500}, 1500, 1e9)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDone(t, a, 5*time.Second, "SIGTERM")
	waitDone(t, b, 5*time.Second, "SIGTERM")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("webconfd exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webconfd did not exit after SIGTERM")
	}
}

func TestProcessRefusesABadConfigNamingTheKey(t *testing.T) {
	t.Parallel()
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := writeConfig(t, "[server]\nrtp_low_port = lots\n[webconference]\nno_such_key = 1\n")
	out, err := exec.Command(bin, "-config", cfg).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2\n%s", err, out)
	}
	for _, want := range []string{"rtp_low_port", "no_such_key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("message does not name %s:\n%s", want, out)
		}
	}
}

// TestDrainingRefusesNewCalls: once shutdown starts, a new INVITE gets 503
// while the calls in progress are still being hung up.
func TestDrainingRefusesNewCalls(t *testing.T) {
	t.Parallel()
	srv := start(t, nil)
	a := srv.direct(t, "drain", phone.Config{})
	srv.inRoom(t, a, "drain", "direct access: entered")
	a.Close() // vanishes without answering our BYE: the drain lasts the BYE grace
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	testutil.WaitFor(t, 2*time.Second, "the call to be hung up", func() bool { return srv.ActiveCalls() == 0 })
	if code := dialStatus(t, srv, phone.Config{}); code != 503 {
		t.Fatalf("an INVITE while draining got %d, want 503", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}
