package e2e

// baresip (the Debian package) against the server: a softphone nobody
// here wrote calls over SIP over TLS with SDES-SRTP, without registering,
// into a room of test phones. It reads its voice from a WAV file the test
// writes (the aufile module), and its sndfile module records what it
// decodes to a WAV file the test reads after the call. The tests skip only
// where baresip is not installed (.ci/run installs it).

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"webconf/conf"
	"webconf/dsp/tone"
	"webconf/dsp/wav"
	"webconf/test/phone"
	"webconf/test/testutil"
)

// baresipModules are the modules the tests load: the PCMU codec, a WAV
// file as microphone (aufile), the decoded audio dumped to WAV (sndfile,
// an audio filter), a player that needs no sound card (aubridge), SDES
// (srtp: mediaenc srtp, srtp-mand) and the command menu that runs -e's
// /dial (menu).
var baresipModules = []string{"g711", "aufile", "sndfile", "aubridge", "srtp", "account", "menu"}

// baresipBin finds baresip and its module directory; it skips the test
// only when baresip is not installed. An installation without a module
// the tests load fails the test: that is a broken installation, not a
// missing one.
func baresipBin(t *testing.T) (bin, modules string) {
	t.Helper()
	bin, err := exec.LookPath("baresip")
	if err != nil {
		t.Skip("baresip not installed (Debian: apt-get install baresip-core)")
	}
	cands, _ := filepath.Glob("/usr/lib/*/baresip/modules")
	cands = append([]string{"/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules"}, cands...)
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "g711.so")); err != nil {
			continue
		}
		for _, m := range baresipModules {
			if _, err := os.Stat(filepath.Join(d, m+".so")); err != nil {
				t.Fatalf("baresip is installed but its module %s.so is not in %s", m, d)
			}
		}
		return bin, d
	}
	t.Fatalf("baresip is installed but its modules (g711.so) are not found in %v", cands)
	return "", ""
}

// baresipConfig is a config for baresip 1.0 with no sound card and no
// listening control port: loopback only, PCMU, a WAV file as source, the
// sndfile filter recording into {{REC}}, and sip_cafile trusting the
// test CA (baresip 1.0 has no sip_verify_server key and does not check the
// server's certificate; later versions verify it by default, against
// this file).
const baresipConfig = `poll_method		epoll
sip_listen		127.0.0.1:0
sip_cafile		{{CA}}
call_local_timeout	30
call_max_calls		1
audio_source		aufile,{{IN}}
audio_player		aubridge,{{DEV}}
audio_alert		aubridge,{{DEV}}
audio_level		no
audio_buffer		20-160
rtp_tos			0
rtcp_mux		no
jitter_buffer_delay	5-10
net_interface		127.0.0.1
statmode_default	off
ringback_disabled	yes
module_path		{{MODULES}}
module			g711.so
module			sndfile.so
module			aufile.so
module			aubridge.so
module			srtp.so
module_tmp		account.so
module_app		menu.so
snd_path		{{REC}}
`

// logBuffer is baresip's output, read by the test while baresip writes.
type logBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Write(p)
	close(l.changed)
	l.changed = make(chan struct{})
	return len(p), nil
}

// String is the log so far, with the terminal's carriage returns and
// colour escapes removed.
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ansi.ReplaceAllString(strings.ReplaceAll(l.b.String(), "\r", ""), "")
}

var ansi = regexp.MustCompile("\x1b\\[[0-9;]*m")

// baresip is one running baresip.
type baresip struct {
	cmd    *exec.Cmd
	log    *logBuffer
	rec    string // directory of the sndfile recordings
	exited chan struct{}
	once   sync.Once
}

// baresipCall starts baresip with one account (its line in the accounts
// file, e.g. `<sip:alice@127.0.0.1;transport=tls>;regint=0`) that dials
// uri at once, sending a steady sine at freq, trusting ca. It traces SIP
// (-s) and quits after 60 s at the latest (-t); the test stops it earlier
// (stop), and always when it ends.
func baresipCall(t *testing.T, ca *testutil.CA, account, uri string, freq float64) *baresip {
	t.Helper()
	bin, modules := baresipBin(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.wav")
	rec := filepath.Join(dir, "rec")
	if err := os.Mkdir(rec, 0o700); err != nil {
		t.Fatal(err)
	}
	voice := make([]int16, 60*8000)
	tone.NewOsc(freq, 6000).Fill(voice)
	if err := os.WriteFile(in, wav.Encode(voice, 8000), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("{{CA}}", ca.File, "{{IN}}", in, "{{REC}}", rec,
		"{{MODULES}}", modules, "{{DEV}}", "webconf-test").Replace(baresipConfig)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-4", "-f", dir, "-s", "-t", "60", "-e", "/dial "+uri)
	cmd.Dir = dir
	// Its own process group, stopped as one by the clean-up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b := &baresip{cmd: cmd, log: &logBuffer{changed: make(chan struct{})}, rec: rec, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = b.log, b.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start baresip: %v", err)
	}
	go func() { _ = cmd.Wait(); close(b.exited) }()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() || os.Getenv("WEBCONF_TEST_LOG") != "" {
			t.Logf("baresip (%s) log:\n%s", account, tailString(b.log.String(), 8000))
		}
	})
	return b
}

// stop ends baresip's process group: SIGTERM (baresip hangs up and closes
// its recordings), SIGKILL if it has not exited 5 s later.
func (b *baresip) stop() {
	b.once.Do(func() {
		_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-b.exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
			<-b.exited
		}
	})
}

// wait waits up to d for baresip's log to match re and returns the match.
func (b *baresip) wait(t *testing.T, re *regexp.Regexp, d time.Duration) string {
	t.Helper()
	deadline := time.After(d)
	for {
		b.log.mu.Lock()
		ch := b.log.changed
		b.log.mu.Unlock()
		if m := re.FindString(b.log.String()); m != "" {
			return m
		}
		select {
		case <-ch:
		case <-b.exited:
			if m := re.FindString(b.log.String()); m != "" {
				return m
			}
			t.Fatalf("baresip exited before logging %v", re)
		case <-deadline:
			t.Fatalf("baresip did not log %v within %v", re, d)
		}
	}
}

func tailString(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// recording reads the WAV file baresip's sndfile module wrote with what it
// decoded (dump-<time>-dec.wav); the call must be over (the file is
// finished when the call's audio stream closes).
func (b *baresip) recording(t *testing.T) []int16 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(b.rec, "dump-*-dec.wav"))
	if len(files) != 1 {
		t.Fatalf("baresip's recordings of the received audio: %v, want one", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	s, err := wav.Decode(data)
	if err != nil {
		t.Fatalf("baresip's recording %s: %v", files[0], err)
	}
	return s
}

// baresipURI is the Request-URI baresip dials: a direct room (direct_room_re
// 000777.*, strip 6) at the TLS listener.
func baresipURI(s *server, room string) string {
	return fmt.Sprintf("sip:000777%s@%s", room, s.TLSAddr())
}

func withDirectRooms(c *conf.Config) {
	c.Webconference.DirectRoomPattern = "000777.*"
	c.Webconference.DirectRoomRE = regexp.MustCompilePOSIX(c.Webconference.DirectRoomPattern)
	c.Webconference.DirectRoomStrip = 6
}

var (
	// The call's outcome: established, or closed (with the reason).
	reEstablished = regexp.MustCompile(`(Call established|session closed): [^\n]*`)
	reSRTPOn      = regexp.MustCompile(`srtp: audio: SRTP is Enabled \(cryptosuite=AES_CM_128_HMAC_SHA1_(80|32)\)`)
	// A response in baresip's SIP trace (-s): the transport line, then the
	// status line.
	reTraceOK   = regexp.MustCompile(`TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\nSIP/2\.0 200 OK\n(?:[^\n]+\n)*\n(?:[^\n]*\n)*?m=audio \d+ (RTP/S?AVP)[^\n]*\n(?:[^\n]*\n)*?a=crypto:\d+ (\S+) inline:`)
	reTrace488  = regexp.MustCompile(`TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\nSIP/2\.0 488 Not Acceptable Here`)
	reClosed488 = regexp.MustCompile(`session closed: 488 Not Acceptable Here`)
	reDecryptKO = regexp.MustCompile(`srtp: failed to (de|en)crypt[^\n]*`)
)

// TestBaresipOverTLSWithSRTPHearsTheRoom: baresip, registering nothing
// (regint=0), calls over TLS with SRTP required on its side (mediaenc
// srtp-mand: RTP/SAVP and a=crypto) into a room where two test phones on
// UDP send 500 and 700 Hz. Our 200 OK over TLS carries RTP/SAVP with an
// a=crypto of ours and baresip turns SRTP on; each phone hears baresip's
// 1050 Hz and the other phone; the server authenticates every SRTP packet
// of baresip's. We then hang baresip up with a kick (our BYE over TLS),
// and its recording of what it decoded has both phones' tones, steadily,
// and not its own: the mix it gets over SRTP is right.
func TestBaresipOverTLSWithSRTPHearsTheRoom(t *testing.T) {
	t.Parallel()
	baresipBin(t)                            // skip before starting anything
	s, ca, _ := startTLS(t, withDirectRooms) // srtp=optional, the default: the phones on UDP get plain RTP
	const room = "bare"
	const fA, fB, fBaresip = 500.0, 700.0, 1050.0 // 1050: no intermodulation product of 500 and 700 (multiples of 100)
	a := s.direct(t, room, phone.Config{FromUser: "phone-a"})
	b := s.direct(t, room, phone.Config{FromUser: "phone-b"})
	a.SetTone(fA)
	b.SetTone(fB)

	br := baresipCall(t, ca, "<sip:baresip@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp-mand;audio_codecs=pcmu;answermode=manual",
		baresipURI(s, room), fBaresip)
	if m := br.wait(t, reEstablished, 15*time.Second); !strings.HasPrefix(m, "Call established") {
		t.Fatalf("baresip: %s", m)
	} else {
		t.Logf("baresip: %s", m)
	}
	t.Logf("baresip: %s", br.wait(t, reSRTPOn, 5*time.Second))
	if !regexp.MustCompile(fmt.Sprintf(`TLS 127\.0\.0\.1:\d+ -> %s\nINVITE sip:000777%s@`, regexp.QuoteMeta(s.TLSAddr()), room)).MatchString(br.log.String()) {
		t.Fatal("baresip's INVITE did not go to our TLS listener")
	}
	m := reTraceOK.FindStringSubmatch(br.log.String())
	if m == nil || m[1] != "RTP/SAVP" {
		t.Fatalf("no 200 OK with RTP/SAVP and a=crypto over TLS in baresip's trace (%q)", m)
	}
	t.Logf("our answer to baresip: m=audio ... %s, a=crypto with %s", m[1], m[2])
	testutil.WaitFor(t, 5*time.Second, "3 callers in the room", func() bool { return s.connected(room) == 3 })

	// The phones hear baresip (its SRTP, decrypted by us) and each other.
	hearsAllButSelf(t, a, fA, []float64{fB, fBaresip}, 1500, 200)
	hearsAllButSelf(t, b, fB, []float64{fA, fBaresip}, 1500, 200)

	// Let baresip record at least 4 s of the full room: its recording
	// grows by 16000 bytes a second.
	testutil.WaitFor(t, 15*time.Second, "4 s in baresip's recording", func() bool {
		if m := reDecryptKO.FindString(br.log.String()); m != "" {
			t.Fatalf("baresip: %s", m)
		}
		files, _ := filepath.Glob(filepath.Join(br.rec, "dump-*-dec.wav"))
		if len(files) != 1 {
			return false
		}
		fi, err := os.Stat(files[0])
		return err == nil && fi.Size() > 44+4*16000
	})

	// Hang baresip up from our side: a BYE over TLS to its Contact.
	var tag string
	for _, p := range s.participants(room) {
		if p.CallTag != a.RemoteTag() && p.CallTag != b.RemoteTag() {
			tag = p.CallTag
		}
	}
	if err := s.Registry().Kick(room, tag); err != nil {
		t.Fatalf("kick baresip: %v", err)
	}
	// baresip answers our BYE with 200 and logs the end (its 1.0 words
	// for a BYE received are "session closed: Connection reset by peer").
	br.wait(t, regexp.MustCompile(`TLS 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\nSIP/2\.0 200 OK\n(?:[^\n]+\n)*?CSeq: \d+ BYE\n`), 5*time.Second)
	t.Logf("baresip: %s", br.wait(t, regexp.MustCompile(`Call with [^\n]* terminated[^\n]*`), 5*time.Second))
	testutil.WaitFor(t, 5*time.Second, "baresip's call to end", func() bool { return s.connected(room) == 2 })
	br.stop()
	if m := reDecryptKO.FindString(br.log.String()); m != "" {
		t.Fatalf("baresip: %s", m)
	}
	if n := s.Metrics().SRTPUnauth; n != 0 {
		t.Fatalf("%d of baresip's SRTP packets failed authentication", n)
	}

	// What baresip heard, in 200 ms windows: after the join, every window
	// has both phones and none has baresip itself.
	rec := br.recording(t)
	const win = 1600
	if len(rec) < 4*8000 {
		t.Fatalf("baresip recorded %d samples, want 4 s or more", len(rec))
	}
	first, both, worstOwn := -1, 0, 0.0
	for i := 0; i+win <= len(rec); i += win {
		w := rec[i : i+win]
		own := tone.Level(w, fBaresip)
		worstOwn = math.Max(worstOwn, own)
		if tone.Level(w, fA) >= 1500 && tone.Level(w, fB) >= 1500 {
			if first < 0 {
				first = i / win
			}
			both++
		}
	}
	windows := len(rec) / win
	t.Logf("baresip's recording: %.1f s; both phones heard in %d of %d windows of 200 ms (from window %d); its own %.0f Hz at most %.0f",
		float64(len(rec))/8000, both, windows, first, fBaresip, worstOwn)
	if first < 0 || both < 15 {
		t.Fatalf("baresip heard both phones in %d windows of 200 ms, want 15 (3 s) or more", both)
	}
	// From the first window with both on, nearly all have both: allow
	// one in ten lost to jitter on a loaded machine.
	if after := windows - first; both*10 < after*9 {
		t.Fatalf("after baresip first heard both phones, only %d of %d windows of 200 ms had both", both, after)
	}
	if worstOwn > 200 {
		t.Fatalf("baresip heard its own %.0f Hz at %.0f (the mix must leave it out)", fBaresip, worstOwn)
	}
}

// TestBaresipPlainOfferRefusedWhenSRTPMandatory: with srtp=mandatory, a
// baresip account without mediaenc offers plain RTP/AVP over TLS and gets
// 488 Not Acceptable Here (in its SIP trace and as its call's end), while
// one with mediaenc=srtp (baresip's best effort: RTP/AVP with a=crypto)
// gets through with SRTP on: the 488 is for the plain offer alone.
func TestBaresipPlainOfferRefusedWhenSRTPMandatory(t *testing.T) {
	t.Parallel()
	baresipBin(t)
	s, ca, _ := startTLS(t, func(c *conf.Config) {
		c.Server.SRTP = "mandatory"
		withDirectRooms(c)
	})
	const room = "mand"
	plain := baresipCall(t, ca, "<sip:plain@127.0.0.1;transport=tls>;regint=0;audio_codecs=pcmu;answermode=manual",
		baresipURI(s, room), 900)
	plain.wait(t, reTrace488, 15*time.Second)
	t.Logf("baresip (plain): %s", plain.wait(t, reClosed488, 5*time.Second))
	if inv := regexp.MustCompile(`m=audio \d+ RTP/AVP[^\n]*`).FindString(plain.log.String()); inv == "" || strings.Contains(plain.log.String(), "a=crypto") {
		t.Fatalf("baresip without mediaenc did not offer plain RTP/AVP (%q)", inv)
	}
	plain.stop()
	if n := s.ActiveCalls(); n != 0 {
		t.Fatalf("%d calls after the 488", n)
	}

	sec := baresipCall(t, ca, "<sip:secure@127.0.0.1;transport=tls>;regint=0;mediaenc=srtp;audio_codecs=pcmu;answermode=manual",
		baresipURI(s, room), 900)
	if m := sec.wait(t, reEstablished, 15*time.Second); !strings.HasPrefix(m, "Call established") {
		t.Fatalf("baresip (mediaenc=srtp): %s", m)
	} else {
		t.Logf("baresip (mediaenc=srtp): %s", m)
	}
	t.Logf("baresip (mediaenc=srtp): %s", sec.wait(t, reSRTPOn, 5*time.Second))
	m := reTraceOK.FindStringSubmatch(sec.log.String())
	if m == nil || m[1] != "RTP/AVP" {
		t.Fatalf("no 200 OK with RTP/AVP and a=crypto to baresip's best-effort offer (%q)", m)
	}
	testutil.WaitFor(t, 5*time.Second, "baresip in the room", func() bool { return s.connected(room) == 1 })
	sec.stop()
	testutil.WaitFor(t, 5*time.Second, "baresip's BYE on exit", func() bool { return s.ActiveCalls() == 0 })
}
