package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"

	"webconf/conf"
	"webconf/rpc/node"
	"webconf/test/testnode"
)

// TestMain makes the test binary one of rpcload's client processes when
// rpcload re-executes it (os.Executable is the test binary here).
func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(child(os.Args[1:], os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// startNode runs a webconf node in this process with XML-RPC (and
// JSON-RPC) on a free loopback port and returns the XML-RPC URL.
func startNode(t *testing.T, edit func(*conf.Config)) string {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.PublicIP = "127.0.0.1"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 42000, 42098
	cfg.Server.DataDir = t.TempDir()
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = ""
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := testnode.Start(t, &cfg, node.Options{Log: slog.New(slog.DiscardHandler)})
	return "http://" + n.RPCAddr() + "/RPC2"
}

func runLoad(t *testing.T, args ...string) (Report, int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(args, "-json"), &out, &errb)
	var rep Report
	if code != 2 && out.Len() > 0 {
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("report %q: %v", out.String(), err)
		}
	}
	return rep, code, errb.String()
}

func TestRpcloadAgainstWebconf(t *testing.T) {
	url := startNode(t, nil)
	pid := os.Getpid() // the node runs in this process
	for _, proto := range []string{"xmlrpc", "jsonrpc"} {
		t.Run(proto+": two client processes get answers and the server's CPU is sampled", func(t *testing.T) {
			rep, code, stderr := runLoad(t, "-url", url, "-procs", "2", "-duration", "300ms",
				"-pid", itoa(pid), "-jsonrpc="+boolStr(proto == "jsonrpc"))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			if rep.Protocol != proto || rep.Procs != 2 || rep.Requests < 10 || rep.Errors != 0 ||
				!strings.HasPrefix(rep.Room, "rpcload-") {
				t.Fatalf("report %+v", rep)
			}
			if rep.Seconds < 0.3 || rep.RequestsPerSec <= 0 {
				t.Fatalf("report %+v: elapsed or rate", rep)
			}
			if rep.ServerPID != pid || rep.ServerCPUSec <= 0 || rep.ServerCPUUsPerR <= 0 {
				t.Fatalf("report %+v: no server CPU", rep)
			}
		})
	}
	t.Run("a wrong admin PIN is an error, not a request", func(t *testing.T) {
		// Make the room, then ask with another PIN: webconf answers
		// [1, "wrong adminpin or inexisting room", ...], not a fault.
		pin, err := createRoom(url, "pinned")
		if err != nil {
			t.Fatal(err)
		}
		_, code, stderr := runLoad(t, "-url", url, "-room", "pinned", "-pin", pin+"0", "-duration", "100ms")
		if code != 1 || !strings.Contains(stderr, "not a good roomInfo answer") || !strings.Contains(stderr, "wrong adminpin") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		rep, code, stderr := runLoad(t, "-url", url, "-room", "pinned", "-pin", pin, "-duration", "100ms")
		if code != 0 || rep.Requests == 0 || rep.Errors != 0 || rep.Room != "pinned" {
			t.Fatalf("with the right PIN: exit %d %+v %s", code, rep, stderr)
		}
	})
	t.Run("a fault is an error, not a request", func(t *testing.T) {
		// Without direct_export, roomInfo is SEMS's fault -1
		// "roomInfo: unknown method name".
		faulty := startNode(t, func(c *conf.Config) { c.XMLRPC.DirectExport = nil })
		_, code, stderr := runLoad(t, "-url", faulty, "-room", "r", "-pin", "1", "-duration", "100ms")
		if code != 1 || !strings.Contains(stderr, "fault:") || !strings.Contains(stderr, "unknown method name") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
	})
	t.Run("flags are checked", func(t *testing.T) {
		if _, code, _ := runLoad(t, "-url", "ftp://x/", "-duration", "1s"); code != 1 {
			t.Fatalf("ftp URL: exit %d", code)
		}
		if _, code, _ := runLoad(t, "-procs", "0"); code != 2 {
			t.Fatalf("-procs 0: exit %d", code)
		}
	})
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
