package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
)

func startNode(t *testing.T) string {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 33000, 33998
	cfg.Server.DataDir = t.TempDir()
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = ""
	cfg.Webconference.MasterPassword = "master"
	n, err := node.Start(&cfg, node.Options{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = n.Shutdown(ctx)
	})
	return "http://" + n.RPCAddr() + "/"
}

func ctl(t *testing.T, url string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := run(append([]string{"-url", url}, args...), &out, &errb)
	return out.String(), errb.String(), rc
}

func TestCommands(t *testing.T) {
	url := startNode(t)
	out, _, rc := ctl(t, url, "create", "500")
	m := regexp.MustCompile(`^room 500 opened, admin PIN ([0-9]{6})\n$`).FindStringSubmatch(out)
	if rc != 0 || m == nil {
		t.Fatalf("create: rc %d %q", rc, out)
	}
	pin := m[1]
	if _, errs, rc := ctl(t, url, "create", "500"); rc != 1 || !strings.Contains(errs, "already open") {
		t.Fatalf("create again: rc %d %q", rc, errs)
	}
	if out, _, rc := ctl(t, url, "-master", "master", "pin", "500"); rc != 0 || out != pin+"\n" {
		t.Fatalf("pin: rc %d %q", rc, out)
	}
	if _, errs, rc := ctl(t, url, "-master", "nope", "rooms"); rc != 1 || !strings.Contains(errs, "wrong master password") {
		t.Fatalf("rooms with a bad password: rc %d %q", rc, errs)
	}
	t.Setenv("WEBCONF_MASTER_PASSWORD", "master")
	if out, _, rc := ctl(t, url, "-json", "rooms"); rc != 0 || strings.Join(strings.Fields(out), "") != `["500"]` {
		t.Fatalf("rooms -json: rc %d %q", rc, out)
	}
	if out, _, rc := ctl(t, url, "info", "500", pin); rc != 0 || !strings.HasPrefix(out, "CALL TAG") {
		t.Fatalf("info: rc %d %q", rc, out)
	}
	if _, errs, rc := ctl(t, url, "info", "500", "000000x"); rc != 1 || !strings.Contains(errs, "wrong admin PIN") {
		t.Fatalf("info with a bad PIN: rc %d %q", rc, errs)
	}
	if _, errs, rc := ctl(t, url, "kick", "500", pin, "NOSUCHTAG"); rc != 1 || !strings.Contains(errs, "no call with that tag") {
		t.Fatalf("kick: rc %d %q", rc, errs)
	}
	t.Setenv("WEBCONF_ADMIN_PIN", pin)
	// A dialout to a port where nobody listens is placed (then fails).
	out, errs, rc := ctl(t, url, "-json", "dialout", "500", "-", "bob", "conf", "127.0.0.1:9", "user", "pw")
	var d map[string]string
	if rc != 0 || json.Unmarshal([]byte(out), &d) != nil || !regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{16}-[0-9A-F]{8}$`).MatchString(d["call_tag"]) {
		t.Fatalf("dialout: rc %d %q %q", rc, out, errs)
	}
	if out, _, rc := ctl(t, url, "delete", "500", "-"); rc != 0 || out != "OK\n" {
		t.Fatalf("delete: rc %d %q", rc, out)
	}
	if _, errs, rc := ctl(t, url, "delete", "500", pin); rc != 1 || !strings.Contains(errs, "no such room") {
		t.Fatalf("delete again: rc %d %q", rc, errs)
	}
	if _, _, rc := ctl(t, url, "frobnicate"); rc != 2 {
		t.Fatalf("unknown command: rc %d, want 2", rc)
	}
	if _, errs, rc := ctl(t, "http://127.0.0.1:9/", "status"); rc != 1 || !strings.Contains(errs, "cannot reach the server") {
		t.Fatalf("no server: rc %d %q", rc, errs)
	}
}
