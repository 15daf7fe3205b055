// Package control drives a whole webconf node (SIP, XML-RPC, JSON-RPC,
// store) over real HTTP and SIP on loopback, as SEMS's clients do.
package control

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"webconf/rpc/xmlrpc/client"
	"webconf/sipapp/room"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/phone"
	"webconf/test/testnode"
	"webconf/test/testutil"
)

const sig = "webconf test"

type harness struct {
	node *node.Node
	url  string
	cli  *xmlrpc.Client
}

func testConfig(t testing.TB, dataDir string) *conf.Config {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.PublicIP = "127.0.0.1"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 30000, 39998
	cfg.Server.DataDir = dataDir
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Webconference.ServerSignature = sig
	cfg.Webconference.MasterPassword = "master"
	return &cfg
}

func start(t testing.TB, edit func(*conf.Config)) *harness {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	if edit != nil {
		edit(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return startCfg(t, cfg)
}

func startCfg(t testing.TB, cfg *conf.Config) *harness {
	t.Helper()
	return startOpts(t, cfg, node.Options{})
}

// startOpts starts a node with o (its Log is set here).
func startOpts(t testing.TB, cfg *conf.Config, o node.Options) *harness {
	t.Helper()
	o.Log = testnode.Log(t)
	n := testnode.Start(t, cfg, o)
	url := "http://" + n.RPCAddr() + "/RPC2"
	cli, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return &harness{node: n, url: url, cli: cli}
}

// call is one XML-RPC call with the stock client; the reply must be an array.
func (h *harness) call(t testing.TB, method string, args ...any) []any {
	t.Helper()
	var res any
	err := h.cli.Call(method, args, &res)
	arr, ok := res.([]any)
	if err != nil || !ok {
		t.Fatalf("%s%v: reply %v, error %v; want an array", method, args, res, err)
	}
	return arr
}

// di calls di("webconference", fn, args...).
func (h *harness) di(t testing.TB, fn string, args ...any) []any {
	t.Helper()
	return h.call(t, "di", append([]any{"webconference", fn}, args...)...)
}

func (h *harness) fault(t *testing.T, method string, args ...any) xmlrpc.FaultError {
	t.Helper()
	var res any
	err := h.cli.Call(method, args, &res)
	code, msg, ok := client.AsFault(err)
	if !ok {
		t.Fatalf("%s%v: got %v / %v, want a fault", method, args, res, err)
	}
	return xmlrpc.FaultError{Code: code, String: msg}
}

func (h *harness) dial(t *testing.T, cfg phone.Config) *phone.Phone {
	t.Helper()
	cfg.Server = h.node.SIP.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := phone.Dial(ctx, cfg)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	testutil.HangUpAtEnd(t, p)
	return p
}

// connected counts the room's records in status 3.
func (h *harness) connected(name string) int {
	info, _ := h.node.SIP.Registry().Room(name)
	n := 0
	for _, p := range info.Participants {
		if p.Status == room.StatusConnected {
			n++
		}
	}
	return n
}

// info is the server-info string the node must append.
func info(active, total, connect, min int) string {
	return fmt.Sprintf("Server: %s calls: %d active/%d total/%d connect/%d min", sig, active, total, connect, min)
}
