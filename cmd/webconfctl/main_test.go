package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"webconf/conf"
	"webconf/rpc/node"
)

func startNode(t *testing.T) string {
	t.Helper()
	n := startNodeHTTP(t, "")
	return "http://" + n.RPCAddr() + "/"
}

// startNodeHTTP starts a node with the master password "master" and the
// HTTP listener on listen ("" = off).
func startNodeHTTP(t *testing.T, listen string) *node.Node {
	t.Helper()
	cfg := conf.Default()
	cfg.Server.SIPListen = "127.0.0.1:0"
	cfg.Server.RTPLowPort, cfg.Server.RTPHighPort = 33000, 33998
	cfg.Server.DataDir = t.TempDir()
	cfg.XMLRPC.Port = 0
	cfg.HTTP.Listen = listen
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
	return n
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
	if out, _, rc := ctl(t, url, "lock", "500", pin); rc != 0 || out != "OK\n" {
		t.Fatalf("lock: rc %d %q", rc, out)
	}
	if out, _, rc := ctl(t, url, "participants", "500", pin); rc != 0 || !strings.HasPrefix(out, "room 500 is locked\nCALL TAG") {
		t.Fatalf("participants of a locked room: rc %d %q", rc, out)
	}
	if out, _, rc := ctl(t, url, "unlock", "500", pin); rc != 0 || out != "OK\n" {
		t.Fatalf("unlock: rc %d %q", rc, out)
	}
	if out, _, rc := ctl(t, url, "-json", "participants", "500", pin); rc != 0 || strings.Join(strings.Fields(out), "") != `{"locked":false,"participants":[]}` {
		t.Fatalf("participants -json: rc %d %q", rc, out)
	}
	if out, _, rc := ctl(t, url, "muteall", "500", pin); rc != 0 || out != "OK\n" {
		t.Fatalf("muteall: rc %d %q", rc, out)
	}
	if _, errs, rc := ctl(t, url, "muteall", "500", pin, "NOSUCHTAG"); rc != 1 || !strings.Contains(errs, "no call with that tag") {
		t.Fatalf("muteall sparing a tag that is not there: rc %d %q", rc, errs)
	}
	if _, errs, rc := ctl(t, url, "lock", "500", "000000x"); rc != 1 || !strings.Contains(errs, "wrong admin PIN") {
		t.Fatalf("lock with a bad PIN: rc %d %q", rc, errs)
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

// TestUserCommands makes, lists and deletes users over the REST API with
// the master password from -master, and from the file the server keeps
// it in; the token printed works for making a meeting.
func TestUserCommands(t *testing.T) {
	t.Setenv("WEBCONF_MASTER_PASSWORD", "")
	n := startNodeHTTP(t, "127.0.0.1:0")
	url := "http://" + n.RPCAddr() + "/"
	api := n.HTTPAddr() // [http] listen as it is written in the config
	empty := t.TempDir()
	user := func(args ...string) (string, string, int) {
		return ctl(t, url, append([]string{"-api", api, "-data-dir", empty}, args...)...)
	}

	out, errs, rc := user("-master", "master", "user", "add", "alice", "--capability", "meetings,sip")
	if rc != 0 || !regexp.MustCompile(`^[A-Za-z0-9_-]{20,}\n$`).MatchString(out) {
		t.Fatalf("user add: rc %d %q %q", rc, out, errs)
	}
	if !strings.Contains(errs, "user alice made (uuid ") || !strings.Contains(errs, "capabilities meetings,sip") {
		t.Errorf("user add: stderr %q", errs)
	}
	tok := strings.TrimSpace(out)
	req, _ := http.NewRequest("POST", "http://"+api+"/api/v1/users/me/meetings", strings.NewReader(`{"name":"standup"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("a meeting with the printed token: %s, want 201", resp.Status)
	}

	// --line gives the user a phone; a line that is not a SIP URI is refused.
	out, errs, rc = user("-master", "master", "-json", "user", "add", "bob", "--line", "sip:bob@192.0.2.8:5062")
	if rc != 0 || !strings.Contains(out, `"line": "sip:bob@192.0.2.8:5062"`) {
		t.Errorf("user add --line: rc %d %q %q", rc, out, errs)
	}
	if _, errs, rc := user("-master", "master", "user", "add", "carl", "--line", "tel:+15550100"); rc != 1 || !strings.Contains(errs, "line") {
		t.Errorf("user add with a tel: line: rc %d %q", rc, errs)
	}
	if _, errs, rc := user("-master", "master", "user", "delete", "bob"); rc != 0 {
		t.Fatalf("user delete bob: rc %d %q", rc, errs)
	}

	if _, errs, rc := user("-master", "master", "user", "add", "alice"); rc != 1 || !strings.Contains(errs, "alice is taken") {
		t.Fatalf("user add again: rc %d %q", rc, errs)
	}
	if _, errs, rc := user("-master", "master", "user", "add"); rc != 2 {
		t.Fatalf("user add without a name: rc %d %q", rc, errs)
	}
	if _, errs, rc := user("-master", "wrong", "user", "list"); rc != 1 || !strings.Contains(errs, "refused the master password") {
		t.Fatalf("user list with a wrong password: rc %d %q", rc, errs)
	}
	// No password given and none in -data-dir: say where it may come from.
	if _, errs, rc := user("user", "list"); rc != 1 || !strings.Contains(errs, "no master password") {
		t.Fatalf("user list without a password: rc %d %q", rc, errs)
	}

	// The password from the server's file (data_dir/master_password).
	dir := t.TempDir()
	file := filepath.Join(dir, conf.MasterPasswordFile)
	if err := os.WriteFile(file, []byte("master\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errs, rc = ctl(t, url, "-api", "http://"+api+"/api/v1/", "-data-dir", dir, "user", "list")
	if rc != 0 || !regexp.MustCompile(`(?m)^USERNAME +UUID.*\nalice +[0-9a-f-]{36} +user +meetings,sip +`).MatchString(out) {
		t.Fatalf("user list: rc %d %q %q", rc, out, errs)
	}
	// The meeting's room, listed with the file's password over XML-RPC.
	if out, errs, rc := ctl(t, url, "-data-dir", dir, "rooms"); rc != 0 || !regexp.MustCompile(`^[0-9]+\n$`).MatchString(out) {
		t.Fatalf("rooms with the file's password: rc %d %q %q", rc, out, errs)
	}
	var list []map[string]any
	out, _, rc = ctl(t, url, "-api", api, "-data-dir", dir, "-json", "user", "list")
	if rc != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["username"] != "alice" {
		t.Fatalf("user list -json: rc %d %q", rc, out)
	}
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errs, rc := ctl(t, url, "-api", api, "-data-dir", dir, "user", "list"); rc != 1 || !strings.Contains(errs, "chmod 600") {
		t.Fatalf("a file others may read: rc %d %q", rc, errs)
	}

	if out, errs, rc := user("-master", "master", "user", "delete", "alice"); rc != 0 || out != "OK\n" {
		t.Fatalf("user delete: rc %d %q %q", rc, out, errs)
	}
	if _, errs, rc := user("-master", "master", "user", "delete", "alice"); rc != 1 || !strings.Contains(errs, `no user "alice"`) {
		t.Fatalf("user delete again: rc %d %q", rc, errs)
	}
	if _, errs, rc := ctl(t, url, "-api", "127.0.0.1:9", "-master", "master", "user", "list"); rc != 1 || !strings.Contains(errs, "cannot reach the REST API") {
		t.Fatalf("no REST API: rc %d %q", rc, errs)
	}
}
