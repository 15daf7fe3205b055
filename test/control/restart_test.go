package control

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/kolo/xmlrpc"

	"webconf/rpc/xmlrpc/client"
	"webconf/test/phone"
	"webconf/test/testutil"
)

var (
	xmlrpcAddr = regexp.MustCompile(`msg="xmlrpc listening" addr=(\S+)`)
	sipAddr    = regexp.MustCompile(`msg="sip listening" udp=(\S+)`)
)

// runServer starts the webconfd binary and returns it with its XML-RPC URL.
func runServer(t *testing.T, bin, cfg string) (*exec.Cmd, *xmlrpc.Client) {
	cmd, cli, _ := runServerSIP(t, bin, cfg)
	return cmd, cli
}

// runServerSIP also returns the SIP address.
func runServerSIP(t *testing.T, bin, cfg string) (*exec.Cmd, *xmlrpc.Client, string) {
	t.Helper()
	cmd, addrs := testutil.Daemon(t, bin, cfg, xmlrpcAddr, sipAddr)
	cli, err := client.New("http://" + addrs[0] + "/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cmd, cli, addrs[1]
}

func TestStateSurvivesKillDashNine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := testutil.Build(t, "webconf/cmd/webconfd")
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

	cmd, cli, sipA := runServerSIP(t, bin, cfg)
	pin1 := di(cli, "roomCreate", "alpha")[2].(string)
	// One call that joined and left: the statistics must survive too.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, phone.Config{Server: sipA, User: "conference",
		Headers: []sip.Header{sip.NewHeader("P-App-Param", "room=gamma")}})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "the caller in gamma", func() bool {
		r := di(cli, "roomInfo", "gamma", "")
		parts, _ := r[2].([]any)
		return len(parts) == 1 && parts[0].([]any)[2] == 3
	})
	if err := p.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	p.Close()
	testutil.WaitFor(t, 5*time.Second, "the call in the statistics", func() bool {
		return di(cli, "serverInfo")[0] == info(0, 1, 1, 0)
	})
	di(cli, "roomCreate", "beta")
	di(cli, "changeRoomAdminpin", "beta", di(cli, "getRoomPassword", "master", "beta")[1], "newpin")
	di(cli, "addParticipant", "alpha", "p1", "sip:carol@example.com")
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	_, cli = runServer(t, bin, cfg)
	si := info(0, 1, 1, 0)
	eq(t, di(cli, "roomInfo", "alpha", pin1), 0, "OK", []any{[]any{"", "sip:carol@example.com", 0, "", 0, "p1"}}, si)
	eq(t, di(cli, "roomInfo", "beta", "newpin"), 0, "OK", []any{}, si)
	eq(t, di(cli, "roomInfo", "alpha", "wrong"), 1, "wrong adminpin or inexisting room", []any{}, si)
	eq(t, di(cli, "listRooms", "master"), 200, []any{"alpha", "beta", "gamma"}, si)
	eq(t, di(cli, "roomCreate", "alpha"), 1, "room already opened", "", si)
}
