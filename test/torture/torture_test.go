package torture

import (
	"encoding/csv"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// expectation is one row of testdata/expectations.csv.
type expectation struct {
	file    string // under testdata/
	section string
	verdict string            // the RFC's: valid or invalid
	want    map[string]string // transport -> expected outcome; absent: not sent
	advice  string            // what the RFC advises a receiver to do
	note    string
}

// Outcomes as the table writes them: "accept NNN" (the application's own
// final or, for a ringing INVITE, 180 answer), "400", "416", "420", "505"
// (rejections) or "silence" (dropped, no reply within quiet).
func loadExpectations(t *testing.T) []expectation {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "expectations.csv"))
	if err != nil {
		t.Fatalf("expectations: %v", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	rows, err := r.ReadAll()
	if err != nil {
		t.Fatalf("expectations: %v", err)
	}
	head := rows[0]
	wantHead := []string{"file", "section", "rfc_verdict", "udp", "tcp", "rfc_advice", "note"}
	if strings.Join(head, ",") != strings.Join(wantHead, ",") {
		t.Fatalf("expectations header %q, want %q", head, wantHead)
	}
	var out []expectation
	for i, row := range rows[1:] {
		e := expectation{file: row[0], section: row[1], verdict: row[2], advice: row[5], note: row[6], want: map[string]string{}}
		for j, tr := range []string{"udp", "tcp"} {
			v := row[3+j]
			if v == "-" {
				continue
			}
			for _, alt := range strings.Split(v, "|") {
				if !validOutcome(alt) {
					t.Fatalf("expectations line %d: bad %s outcome %q", i+2, tr, v)
				}
			}
			e.want[tr] = v
		}
		// TLS is TCP's framing under encryption: the table's TCP
		// outcome is TLS's too.
		if v, ok := e.want["tcp"]; ok {
			e.want["tls"] = v
		}
		if e.verdict != "valid" && e.verdict != "invalid" {
			t.Fatalf("expectations line %d: verdict %q", i+2, e.verdict)
		}
		out = append(out, e)
	}
	return out
}

// matches reports whether got is the table's outcome, or one of its
// alternatives ("400|silence": a message whose outcome depends on how a
// stream was split into reads, which the sender does not control).
func matches(want, got string) bool {
	for _, alt := range strings.Split(want, "|") {
		if alt == got {
			return true
		}
	}
	return false
}

func validOutcome(v string) bool {
	switch v {
	case "400", "416", "420", "505", "silence":
		return true
	}
	code, ok := strings.CutPrefix(v, "accept ")
	n, err := strconv.Atoi(code)
	return ok && err == nil && n >= 180 && n < 700 && n != 400 && n != 416 && n != 420 && n != 505
}

// outcomeOf names what the server did in the table's terms.
func outcomeOf(r *sip.Response) string {
	if r == nil {
		return "silence"
	}
	switch r.StatusCode {
	case 400, 416, 420, 505:
		return strconv.Itoa(r.StatusCode)
	}
	return "accept " + strconv.Itoa(r.StatusCode)
}

// TestTableCoversTheCorpus keeps the table and testdata in step: every
// RFC message has exactly one row, and the counts are the RFCs' (49
// messages in RFC 4475 section 3, 12 in RFC 5118 section 4).
func TestTableCoversTheCorpus(t *testing.T) {
	rows := loadExpectations(t)
	seen := map[string]bool{}
	for _, e := range rows {
		if seen[e.file] {
			t.Errorf("%s has two rows", e.file)
		}
		seen[e.file] = true
		if _, err := os.Stat(filepath.Join("testdata", e.file)); err != nil {
			t.Errorf("row for a missing file: %v", err)
		}
		if len(e.want) == 0 {
			t.Errorf("%s is sent over no transport", e.file)
		}
	}
	for dir, n := range map[string]int{"rfc4475": 49, "rfc5118": 12} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.dat"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != n {
			t.Errorf("testdata/%s holds %d messages, want %d", dir, len(files), n)
		}
		for _, f := range files {
			if rel, _ := filepath.Rel("testdata", f); !seen[filepath.ToSlash(rel)] {
				t.Errorf("%s has no row in expectations.csv", rel)
			}
		}
	}
}

// TestTortureMessages sends every RFC 4475 message to an IPv4 server and
// every RFC 5118 message to an IPv6 one (T1.1, T1.2), each over the
// transports its row names, one server per transport so that a Call-ID
// reused across transports is not a loop (482). After each message the
// server must still answer OPTIONS; at the end no call and no RTP port may
// be left behind.
func TestTortureMessages(t *testing.T) {
	rows := loadExpectations(t)
	groups := []struct {
		name, dir, host, transport string
		rtpLow                     int
	}{
		{"RFC 4475 over UDP", "rfc4475/", "127.0.0.1", "udp", 30000},
		{"RFC 4475 over TCP", "rfc4475/", "127.0.0.1", "tcp", 30200},
		{"RFC 5118 over UDP on IPv6", "rfc5118/", "::1", "udp", 30400},
		{"RFC 5118 over TCP on IPv6", "rfc5118/", "::1", "tcp", 30600},
		{"RFC 4475 over TLS", "rfc4475/", "127.0.0.1", "tls", 31000},
		{"RFC 5118 over TLS on IPv6", "rfc5118/", "::1", "tls", 31200},
	}
	var tally results
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			s := start(t, g.host, g.rtpLow)
			free := s.FreeRTPPorts()
			t.Run("messages", func(t *testing.T) {
				for _, e := range rows {
					want, ok := e.want[g.transport]
					if !strings.HasPrefix(e.file, g.dir) || !ok {
						continue
					}
					t.Run(strings.TrimSuffix(filepath.Base(e.file), ".dat"), func(t *testing.T) {
						t.Parallel()
						got := sendOne(t, s, g.transport, e)
						tally.add(g.name, e.file, want, got)
						if !matches(want, got) {
							t.Errorf("%s (%s, RFC verdict %s): got %q, want %q", e.file, e.section, e.verdict, got, want)
						}
						probe(t, s, g.transport)
					})
				}
			})
			// The ringing INVITEs were cancelled; their calls end when
			// the INVITE transactions do (after the ACK, T4 on UDP).
			waitFor(t, 20*time.Second, "no calls left", func() bool { return s.ActiveCalls() == 0 })
			waitFor(t, 5*time.Second, "every RTP port free", func() bool { return s.FreeRTPPorts() == free })
		})
	}
	t.Cleanup(func() { tally.log(t) })
}

// sendOne sends one corpus message and returns the outcome. A ringing
// INVITE is cancelled (RFC 3261 9.1) and its 487 acknowledged, so that
// the call it created ends.
func sendOne(t *testing.T, s *server, transport string, e expectation) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", e.file))
	if err != nil {
		t.Fatal(err)
	}
	p := dial(t, s, transport)
	msg, rewritten := rewriteVia(raw, p.local())
	if !rewritten && !strings.HasPrefix(string(raw), "SIP/") && e.want[transport] != "silence" {
		t.Fatalf("%s: no top Via to point at the test socket", e.file)
	}
	if err := p.send(msg); err != nil {
		t.Fatalf("send %s: %v", e.file, err)
	}
	wait := replyWait
	if e.want[transport] == "silence" {
		wait = quiet
	}
	var res *sip.Response
	for {
		r, err := p.recv(wait)
		if err == errSilent {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", e.file, err)
		}
		if r.StatusCode == 100 {
			if e.want[transport] == "silence" {
				return "accept 100" // anything at all breaks the silence
			}
			continue
		}
		res = r
		break
	}
	if res != nil && res.StatusCode == 180 {
		cancelRinging(t, p, msg, res)
	}
	return outcomeOf(res)
}

// cancelRinging ends a call held at 180: CANCEL, expect 200 for it and
// 487 for the INVITE, then ACK the 487 (RFC 3261 9.1, 17.1.1.3).
func cancelRinging(t *testing.T, p *peer, sent []byte, ringing *sip.Response) {
	t.Helper()
	m, err := sip.ParseMessage(sent)
	if err != nil {
		t.Fatalf("server rang on a message we cannot parse: %v", err)
	}
	inv, ok := m.(*sip.Request)
	if !ok || !inv.IsInvite() {
		t.Fatalf("180 Ringing for a %T, not an INVITE", m)
	}
	callID := inv.CallID().Value()
	seq := inv.CSeq().SeqNo

	cancel := sip.NewRequest(sip.CANCEL, *inv.Recipient.Clone())
	cancel.AppendHeader(sip.HeaderClone(inv.Via()))
	mf := sip.MaxForwardsHeader(70)
	cancel.AppendHeader(&mf)
	cancel.AppendHeader(sip.HeaderClone(inv.From()))
	cancel.AppendHeader(sip.HeaderClone(inv.To()))
	cancel.AppendHeader(sip.HeaderClone(inv.CallID()))
	cancel.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.CANCEL})
	cancel.SetBody(nil)
	if err := p.send([]byte(cancel.String())); err != nil {
		t.Fatalf("send CANCEL: %v", err)
	}
	if _, err := p.await(callID, sip.CANCEL, replyWait, func(c int) bool { return c == 200 }); err != nil {
		t.Errorf("CANCEL of the ringing %s: no 200: %v", callID, err)
	}
	final, err := p.await(callID, sip.INVITE, replyWait, func(c int) bool { return c >= 200 })
	if err != nil {
		t.Fatalf("cancelled INVITE %s: no final response: %v", callID, err)
	}
	if final.StatusCode != 487 {
		t.Errorf("cancelled INVITE: final %d, want 487", final.StatusCode)
	}

	ack := sip.NewRequest(sip.ACK, *inv.Recipient.Clone())
	ack.AppendHeader(sip.HeaderClone(inv.Via()))
	ack.AppendHeader(&mf)
	ack.AppendHeader(sip.HeaderClone(inv.From()))
	ack.AppendHeader(sip.HeaderClone(final.To()))
	ack.AppendHeader(sip.HeaderClone(inv.CallID()))
	ack.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: sip.ACK})
	ack.SetBody(nil)
	if err := p.send([]byte(ack.String())); err != nil {
		t.Fatalf("send ACK: %v", err)
	}
}

// results tallies matches for the summary line the report quotes.
type results struct {
	mu   sync.Mutex
	rows []string
	n    map[string][2]int // group -> matched, sent
}

func (r *results) add(group, file, want, got string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = map[string][2]int{}
	}
	c := r.n[group]
	c[1]++
	if matches(want, got) {
		c[0]++
	} else {
		r.rows = append(r.rows, fmt.Sprintf("%s %s: got %q, want %q", group, file, got, want))
	}
	r.n[group] = c
}

func (r *results) log(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range slices.Sorted(maps.Keys(r.n)) {
		c := r.n[g]
		t.Logf("%s: %d/%d sent, survived and matched the table", g, c[0], c[1])
	}
	for _, row := range r.rows {
		t.Log(row)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
