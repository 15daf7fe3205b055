package meetings

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"webconf/test/testutil"
)

// invitesDaemonConf writes a webconfd config that invites by email through
// srv (nil: no [mail]), with extra [meetings] lines.
func invitesDaemonConf(t *testing.T, dir string, srv *testutil.SMTPServer, extra string) string {
	t.Helper()
	mailSection := ""
	if srv != nil {
		mailSection = mailIni(srv)
	}
	return daemonConf(t, dir, 37000, "linkHost = https://meet.example.org\ninviteMechanisms[] = email\n"+extra+mailSection)
}

// TestInvitationsSurviveKillDashNine kills webconfd with SIGKILL in the
// middle of a burst of 50 meetings (each with one or two email
// participants) while their invitations are being sent, restarts it on
// the same data directory and waits for the invitations of every meeting
// answered 201: each participant gets exactly one Message-ID, and each
// Message-ID arrives once, except at most the one whose send was under
// way at the kill, which may arrive twice with the same Message-ID (a
// receiver drops the copy).
func TestInvitationsSurviveKillDashNine(t *testing.T) {
	t.Parallel()
	const burst = 50
	dir := t.TempDir()
	srv := newSMTP(t)
	bin := testutil.Build(t, "webconf/cmd/webconfd")
	cfg := invitesDaemonConf(t, dir, srv, "")

	cmd, h, _ := runDaemon(t, bin, cfg)
	_, tok := h.user(t, "burst", "meetings")

	var mu sync.Mutex
	want := map[string]string{} // participant address -> meeting uuid, of the 201s
	tried := 0
	create := func(base string, w, i int) (bool, error) {
		parts := fmt.Sprintf(`{"name":"p","email":"m%d-%d-a@example.org"}`, w, i)
		if i%2 == 1 {
			parts += fmt.Sprintf(`,{"name":"q","email":"m%d-%d-b@example.org"}`, w, i)
		}
		r, err := rawPost(base+"/api/v1/users/me/meetings", tok, fmt.Sprintf(`{"name":"m%d-%d","participants":[%s]}`, w, i, parts))
		if err != nil {
			return false, err // the server is gone
		}
		if r.Status != 201 {
			return false, fmt.Errorf("status %d: %s", r.Status, r.Body)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range r.JSON["participants"].([]any) {
			want[p.(map[string]any)["email"].(string)] = r.JSON["uuid"].(string)
		}
		return true, nil
	}
	confirmed := 0
	// Once half the burst is acknowledged, the next message the sender
	// hands over kills it: the SMTP server records it, and the sender never
	// hears the 250 (the invitation under way at the kill).
	var inflight []string
	killed := make(chan struct{})
	srv.OnData(func(to []string) {
		mu.Lock()
		defer mu.Unlock()
		if confirmed >= burst/2 && inflight == nil {
			inflight = to
			_ = cmd.Process.Signal(syscall.SIGKILL)
			close(killed)
		}
	})
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				mu.Lock()
				if tried >= burst-10 && inflight == nil {
					// Keep the last 10 of the burst for after the kill.
					mu.Unlock()
					<-killed
					return
				}
				if tried >= burst {
					mu.Unlock()
					return
				}
				tried++
				mu.Unlock()
				ok, err := create(h.base, w, i)
				if err != nil {
					return
				}
				if ok {
					mu.Lock()
					confirmed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait() // the workers stop at the first refused connection, or after the burst
	if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("webconfd was not killed mid-burst: %v", err)
	}
	atKill := len(srv.Messages())
	mu.Lock()
	t.Logf("SIGKILL after %d meetings acknowledged (of %d tried), %d messages received, the one to %v under way", confirmed, tried, atKill, inflight)
	srv.OnData(nil)
	rest := burst - confirmed
	mu.Unlock()

	// The restarted server sends what was queued; the rest of the burst
	// goes to it.
	_, h2, _ := runDaemon(t, bin, cfg)
	for i := range rest {
		if _, err := create(h2.base, 99, i); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	expected := len(want)
	mu.Unlock()
	testutil.WaitFor(t, 60*time.Second, fmt.Sprintf("the invitations to %d participants", expected), func() bool {
		to := map[string]bool{}
		for _, m := range srv.Messages() {
			to[m.To[0]] = true
		}
		for addr := range want {
			if !to[addr] {
				return false
			}
		}
		return true
	})

	// Every participant: one Message-ID; every Message-ID once, but one.
	ids := map[string]map[string]bool{} // address -> Message-IDs
	idTo := map[string]string{}         // Message-ID -> address
	for _, m := range srv.Messages() {
		if len(m.To) != 1 || m.MessageID == "" {
			t.Fatalf("a message to %v with Message-ID %q", m.To, m.MessageID)
		}
		if ids[m.To[0]] == nil {
			ids[m.To[0]] = map[string]bool{}
		}
		ids[m.To[0]][m.MessageID] = true
		idTo[m.MessageID] = m.To[0]
	}
	for addr, set := range ids {
		if len(set) != 1 {
			t.Errorf("%s received %d different invitations (Message-IDs %v), want 1", addr, len(set), set)
		}
		if _, ok := want[addr]; !ok {
			t.Logf("%s: invited by a meeting created as the server was killed (no 201 came back)", addr)
		}
	}
	var twice []string
	for id, n := range srv.MessageIDs() {
		switch {
		case n == 2:
			twice = append(twice, id)
		case n > 2:
			t.Errorf("Message-ID %s received %d times", id, n)
		}
	}
	sort.Strings(twice)
	switch len(twice) {
	case 0:
		t.Logf("%d invitations to %d participants, each received once (no send was under way at the kill)", len(srv.MessageIDs()), expected)
	case 1:
		if to := idTo[twice[0]]; len(inflight) != 1 || to != inflight[0] {
			t.Errorf("Message-ID %s (to %s) received twice, but the message under way at the kill was to %v", twice[0], to, inflight)
		}
		t.Logf("%d invitations to %d participants, each received once but %s, under way at the kill and sent again with its Message-ID", len(srv.MessageIDs()), expected, twice[0])
	default:
		t.Errorf("%d Message-IDs received twice, at most the one under way at the kill may be: %v", len(twice), twice)
	}
}
