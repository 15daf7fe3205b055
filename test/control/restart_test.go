package control

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"webconf/rpc/xmlrpc/client"
)

var xmlrpcAddr = regexp.MustCompile(`msg="xmlrpc listening" addr=(\S+)`)

// runServer starts the webconfd binary and returns it with its XML-RPC URL.
func runServer(t *testing.T, bin, cfg string) (*exec.Cmd, *xmlrpc.Client) {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := xmlrpcAddr.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		cli, err := client.New("http://" + a + "/")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cli.Close() })
		return cmd, cli
	case <-time.After(20 * time.Second):
		t.Fatal("webconfd did not report its XML-RPC address")
	}
	return nil, nil
}

func TestStateSurvivesKillDashNine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "webconfd")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/webconfd").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cfg := filepath.Join(dir, "webconfd.conf")
	body := "[server]\nsip_listen = 127.0.0.1:0\nrtp_low_port = 36000\nrtp_high_port = 36998\ndata_dir = " + filepath.Join(dir, "data") +
		"\n[webconference]\nmaster_password = master\nserver_signature = " + sig + "\n[xmlrpc]\nxmlrpc_port = 0\n[http]\nlisten = 127.0.0.1:0\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	di := func(cli *xmlrpc.Client, fn string, args ...any) []any {
		t.Helper()
		var res any
		if err := cli.Call("di", append([]any{"webconference", fn}, args...), &res); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return norm(res).([]any)
	}

	cmd, cli := runServer(t, bin, cfg)
	pin1 := di(cli, "roomCreate", "alpha")[2].(string)
	di(cli, "roomCreate", "beta")
	di(cli, "changeRoomAdminpin", "beta", di(cli, "getRoomPassword", "master", "beta")[1], "newpin")
	di(cli, "addParticipant", "alpha", "p1", "sip:carol@example.com")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, cli = runServer(t, bin, cfg)
	si := info(0, 0, 0, 0)
	eq(t, di(cli, "roomInfo", "alpha", pin1), 0, "OK", []any{[]any{"", "sip:carol@example.com", 0, "", 0, "p1"}}, si)
	eq(t, di(cli, "roomInfo", "beta", "newpin"), 0, "OK", []any{}, si)
	eq(t, di(cli, "roomInfo", "alpha", "wrong"), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, di(cli, "listRooms", "master"), 200, []any{"alpha", "beta"}, si)
	eq(t, di(cli, "roomCreate", "alpha"), 1, "room already opened", "", si)
}
