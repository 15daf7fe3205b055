// Command confload is a load generator and benchmark for SIP audio
// conference servers (webconfd or any other that answers G.711 calls on
// loopback). It places N calls into M rooms at a bounded rate, streams
// G.711 on an exact 20 ms grid from a few shared UDP sockets with batched
// writes and reads (so that it costs less than the server it measures),
// measures what every participant receives, samples the server process from
// /proc, prints a table and ends with a pass line against thresholds.
//
// # Entering a room
//
// One of:
//
//	-ruri-pattern P   Request-URI user fmt pattern, %d = room number
//	                  (e.g. 000777%d for webconfd's direct_room_re)
//	-app-param        INVITE -keypad-user with "P-App-Param: room=<number>"
//	-keypad           INVITE -keypad-user, wait -keypad-delay, then type the
//	                  room number and '#' as RFC 4733 telephone-events (100 ms
//	                  per key, three end packets, 60 ms gap)
//
// Room numbers are -room-base + index; call i goes to room i mod M, so the
// rooms fill evenly while ramping.
//
// A call counts as joined when it hears its room: a steady tone of one of
// its room's talkers (5 frames in a row at that talker's frequency, which a
// spoken prompt does not produce) or its room's marker burst. Hearing the
// room, not the 2xx, is the check because a server may answer and still
// keep a caller out of the mix (typing, or a prompt playing). The join time
// runs from the earliest moment the call could hear anyone (it is answered,
// or for keypad has finished typing, and so has another sound source of its
// room) to the first frame of that sound; the answer time (INVITE to 2xx)
// is reported separately. A call whose room has no other sound source
// cannot be checked by ear and counts as joined once answered (or typed).
// With -speech, talkers carry no tone, so calls are confirmed by the marker
// alone (about one second of resolution). The measurement window opens
// once every call has joined, or -join-timeout after the ramp, when the
// stragglers fail.
//
// # Media
//
// Calls share UDP sockets, -streams-per-socket each (default 256), with one
// sender goroutine per socket writing every stream's packet of a tick in one
// sendmmsg on absolute deadlines, and one reader goroutine per socket
// draining replies with recvmmsg. Replies are told apart by the server's
// RTP source address (one port per call, symmetric RTP); a server that puts
// many calls on one port needs -streams-per-socket 1. Arrival times are
// kernel receive timestamps (SO_TIMESTAMPNS).
//
// The first -talkers members of each room send a tone (a different
// frequency per member of a room, 350-1450 Hz) or, with -speech FILE.wav,
// the file looped from a different offset each; the others send silence
// frames, as phones do. Member 0 of each room also sends a marker burst,
// 40 ms of 2 kHz, once a second (rooms staggered over the second); every
// other member detects its onset in the decoded audio it receives, and
//
//	latency = detection time - burst onset time - one packetisation (20 ms)
//	        = arrival of the first mixed frame holding the burst - the time
//	          the burst's first packet was sent,
//
// which is the delay the server adds (mixing tick, jitter buffer, queues).
//
// # Measurements
//
// Statistics are taken over a window of -duration that opens after every
// call has been set up (and, for keypad, joined): per stream, packets
// received and expected (RFC 3550 A.3, from sequence numbers), sequence
// gaps, RFC 3550 interarrival jitter, inter-arrival time p50/p99/max and
// the p99 deviation from 20 ms, marker latency; per call, join time. Once a
// second it samples the server (its -pid, or the -server it started): CPU
// (utime+stime from /proc/PID/stat), RSS and threads, plus the machine's
// /proc/stat (user, system, softirq) and /proc/net/snmp Udp RcvbufErrors,
// and the -metrics URL (Prometheus text format) if given; a server started
// with -server that logs msg="http listening" addr=... is read there.
//
// A call fails if its setup fails, the server hangs it up, it receives
// under 90% of the packets the window should bring, a listener hears no
// marker in a window of 3 s or more, or its BYE fails.
//
// # Churn
//
// With -churn R, R times a second during the window one call that has
// joined (chosen at random) hangs up with BYE and a new call enters the
// same room the same way as the others (-ruri-pattern, -app-param or
// -keypad alike: it is set up by the same code), taking over the role of
// the one that left (its tone or the room's marker) and its socket. The
// new call must hear its room within -join-timeout, or it fails; failed
// churn calls count as failed calls. A call's window is the part of the
// window it was in its room: a call that left is expected to have received
// 90% of the packets up to its leaving, a call that entered 90% of those
// since it was ready (less 5 packets for the server's first frame), and a
// listener fails for hearing no marker only if it shared 5 s or more with
// its room's marker member after its join (each join and leave plays a
// 100 ms beep to the room, during which nobody is heard, so some bursts
// are lost; the marker member itself comes and goes).
//
// # Soak
//
// With -soak (which needs the server's metrics URL: -metrics, or what a
// -server logs) confload checks the server from outside its process: after
// a warm-up at the run's full size it takes a baseline of the server's
// goroutines, live heap (after a full GC forced through
// /debug/pprof/heap?gc=1), file descriptors, free RTP ports, calls,
// pending INVITEs and rooms, reads them again at the end of the window,
// and after every call has hung up polls them once a second for up to
// -soak-settle (60 s) until they are back: goroutines within 2% + 2, heap
// within 2% + -soak-heap-slack (64 KiB) (with -soak-heap-per-call B:
// within -soak-heap-slack + B for every call placed after the baseline, a
// bound that grows with the joins and leaves as a leak does and a fixed
// residue does not), fds within 2, free RTP ports, calls, pending INVITEs
// and rooms exactly. Each is a check of its own
// (soak-goroutines, soak-heap, soak-fds, soak-rtp-ports, soak-calls,
// soak-pending-invites, soak-rooms); see soak.go.
//
// # Thresholds
//
// A threshold is checked only when given on the command line (so
// -max-loss=0 demands zero loss and -max-failed-calls=0 no failed call);
// one left out is neither checked nor counted. The last line is exactly
// "N passed, N failed" and the exit status is 1 if any check failed.
//
//	-max-loss PCT                  packet loss, percent
//	-max-jitter D                  mean RFC 3550 jitter
//	-max-p99-interarrival-dev D    p99 of |inter-arrival - 20 ms|
//	-max-latency-p50 D, -max-latency-p99 D
//	-max-join-p99 D
//	-max-cpu-us US                 server CPU µs per participant-tick
//	-max-rss-per-participant KB
//	-max-rcvbuf-errors N           kernel UDP receive-buffer drops in the window
//	-max-failed-calls N
//
// # Safety
//
// Loopback only: the server's SIP address (-addr, or what a started
// -server logs), its RTP addresses and the -metrics host must be in
// 127.0.0.0/8 or ::1. Bounded: at most 10,000 calls, 1,000 calls/s and a
// 10 minute window. Every call is hung up with BYE before exiting, also on
// SIGINT or SIGTERM (a second signal kills); an interrupted run still
// prints its report, marked interrupted, and exits with status 1.
//
// # Examples
//
// The target, 2,000 participants in 200 rooms of 10 with 3 talkers,
// against a running server pinned to CPU 1:
//
//	taskset -c 0 confload -addr 127.0.0.1:5060 -pid $(pidof webconfd) \
//	    -calls 2000 -rooms 200 -talkers 3 -rate 100 -duration 10m \
//	    -ruri-pattern '000777%d' -json run.json \
//	    -max-loss=0 -max-cpu-us 8 -max-latency-p50 30ms -max-latency-p99 50ms \
//	    -max-p99-interarrival-dev 3ms -max-failed-calls=0
//
// A small smoke run that starts the server itself, with keypad entry:
//
//	confload -server ./webconfd -config test.conf -calls 20 -rooms 4 \
//	    -talkers 2 -rate 50 -duration 5s -keypad -max-failed-calls=0 -max-loss 1
//
// The soak, 500 participants in 50 rooms, 5 joins and leaves a
// second for 10 minutes (test/soak and `make soak` run it):
//
//	confload -server ./webconfd -config soak.conf -calls 500 -rooms 50 \
//	    -ruri-pattern '000777%d' -duration 10m -churn 5 -soak -max-failed-calls=0
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"webconf/cmd/internal/cli"
	"webconf/dsp/g711"
	"webconf/dsp/wav"
)

// Limits that keep a run bounded.
const (
	maxCalls    = 10000
	maxRate     = 1000
	maxDuration = 10 * time.Minute
)

// ErrUsage reports invalid flags.
var ErrUsage = cli.ErrUsage

// thresholds holds the pass/fail limits; set records which were given.
type thresholds struct {
	maxLoss, maxCPUus, maxRSSKB                         float64
	maxJitter, maxDev, maxLatP50, maxLatP99, maxJoinP99 time.Duration
	maxRcvbuf, maxFailed                                int
	set                                                 map[string]bool
}

type config struct {
	addr, serverBin, serverCfg, metrics, jsonOut, speech string
	pid                                                  int
	calls, rooms, talkers, roomBase, perSocket           int
	rate                                                 float64
	duration, joinTimeout, keypadDelay, setupTimeout     time.Duration
	ruriPattern, keypadUser, codecName                   string
	appParam, keypad, verbose                            bool
	th                                                   thresholds

	churn         float64  // joins and leaves per second in the window
	soak          bool     // measure the server's resources before and after
	soakHeapSlack byteSize // heap growth allowed beyond 2 %
	// soakHeapPerCall, when > 0, replaces the 2 % of the heap check: this
	// much growth per call placed after the baseline, on top of the slack.
	soakHeapPerCall byteSize
	soakSettle      time.Duration // how long the end figures may take to settle
	soakProfile     string        // file prefix for the heap profiles

	codec     uint8
	speechPCM []int16
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("confload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.addr, "addr", "", "SIP UDP address of the server under test (loopback), e.g. 127.0.0.1:5060")
	fs.StringVar(&c.serverBin, "server", "", "start this server binary (with -config) and stop it with SIGTERM at the end")
	fs.StringVar(&c.serverCfg, "config", "", "config file for -server")
	fs.IntVar(&c.pid, "pid", 0, "PID of the server to sample (not needed with -server)")
	fs.StringVar(&c.metrics, "metrics", "", "Prometheus text-format URL of the server's counters (loopback); with -server, default: the one it logs")
	fs.IntVar(&c.calls, "calls", 20, "number of calls (participants)")
	fs.IntVar(&c.rooms, "rooms", 4, "number of rooms")
	fs.IntVar(&c.talkers, "talkers", 2, "talkers per room (the others send silence)")
	fs.IntVar(&c.roomBase, "room-base", 1000, "room number of the first room")
	fs.Float64Var(&c.rate, "rate", 50, "calls per second while ramping up")
	fs.DurationVar(&c.duration, "duration", 30*time.Second, "measurement window after all calls are up (max 10m)")
	fs.StringVar(&c.ruriPattern, "ruri-pattern", "", "Request-URI user pattern, %d = room number, e.g. 000777%d")
	fs.BoolVar(&c.appParam, "app-param", false, "enter rooms with P-App-Param: room=<number>")
	fs.BoolVar(&c.keypad, "keypad", false, "enter rooms by typing the room number and # as RFC 4733 events")
	fs.StringVar(&c.keypadUser, "keypad-user", "conference", "Request-URI user for -keypad and -app-param")
	fs.DurationVar(&c.keypadDelay, "keypad-delay", 300*time.Millisecond, "wait after the answer before typing")
	fs.DurationVar(&c.joinTimeout, "join-timeout", 10*time.Second, "time for every call to hear its room after the ramp")
	fs.DurationVar(&c.setupTimeout, "setup-timeout", 10*time.Second, "time for an INVITE to be answered")
	fs.StringVar(&c.speech, "speech", "", "8/16 kHz mono 16-bit WAV the talkers send instead of tones")
	fs.StringVar(&c.codecName, "codec", "pcmu", "codec to offer: pcmu or pcma")
	fs.IntVar(&c.perSocket, "streams-per-socket", 256, "calls sharing one local UDP socket")
	fs.StringVar(&c.jsonOut, "json", "", "write the full report as JSON to this file")
	fs.BoolVar(&c.verbose, "v", false, "log SIP and call errors to stderr")
	fs.Float64Var(&c.churn, "churn", 0, "joins and leaves per second during the window: hang up a random joined call and place a new one into its room")
	fs.BoolVar(&c.soak, "soak", false, "check that the server's goroutines, heap, fds, RTP ports, calls, pending INVITEs and rooms return to their baseline (needs its metrics URL)")
	c.soakHeapSlack = 64 << 10
	fs.Var(&c.soakHeapSlack, "soak-heap-slack", "heap growth allowed beyond 2% of the baseline, e.g. 64KiB, 1MiB")
	fs.Var(&c.soakHeapPerCall, "soak-heap-per-call", "instead of 2% of the baseline, allow this much heap growth per call placed after it (each join and leave), on top of -soak-heap-slack; 0 = the 2% check")
	fs.DurationVar(&c.soakSettle, "soak-settle", 60*time.Second, "after the hang-up, how long the figures may take to return to their baseline")
	fs.StringVar(&c.soakProfile, "soak-heap-profile", "", "write the server's heap profiles to PREFIX.base.pb.gz, PREFIX.load.pb.gz and PREFIX.end.pb.gz")
	t := &c.th
	fs.Float64Var(&t.maxLoss, "max-loss", 0, "threshold: packet loss, percent")
	fs.DurationVar(&t.maxJitter, "max-jitter", 0, "threshold: mean RFC 3550 jitter")
	fs.DurationVar(&t.maxDev, "max-p99-interarrival-dev", 0, "threshold: p99 of |inter-arrival - 20ms|")
	fs.DurationVar(&t.maxLatP50, "max-latency-p50", 0, "threshold: server-added latency p50")
	fs.DurationVar(&t.maxLatP99, "max-latency-p99", 0, "threshold: server-added latency p99")
	fs.DurationVar(&t.maxJoinP99, "max-join-p99", 0, "threshold: join time p99")
	fs.Float64Var(&t.maxCPUus, "max-cpu-us", 0, "threshold: server CPU µs per participant-tick")
	fs.Float64Var(&t.maxRSSKB, "max-rss-per-participant", 0, "threshold: server RSS growth per participant, KB")
	fs.IntVar(&t.maxRcvbuf, "max-rcvbuf-errors", 0, "threshold: kernel UDP RcvbufErrors during the window")
	fs.IntVar(&t.maxFailed, "max-failed-calls", 0, "threshold: failed calls")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	t.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		if strings.HasPrefix(f.Name, "max-") {
			t.set[f.Name] = true
		}
	})
	return c, c.validate()
}

func (c *config) validate() error {
	bad := cli.Usagef
	switch {
	case c.calls < 1 || c.calls > maxCalls:
		return bad("-calls %d outside 1..%d", c.calls, maxCalls)
	case c.rooms < 1 || c.rooms > c.calls:
		return bad("-rooms %d outside 1..calls", c.rooms)
	case c.rate <= 0 || c.rate > maxRate:
		return bad("-rate %g outside (0, %d]", c.rate, maxRate)
	case c.duration <= 0 || c.duration > maxDuration:
		return bad("-duration %s outside (0, %s]", c.duration, maxDuration)
	case c.perSocket < 1 || c.perSocket > 1024:
		return bad("-streams-per-socket %d outside 1..1024", c.perSocket)
	case c.talkers < 0:
		return bad("-talkers is negative")
	case c.speech == "" && c.talkers > len(talkerFreqs):
		return bad("-talkers %d: at most %d distinct tones (use -speech for more)", c.talkers, len(talkerFreqs))
	case c.roomBase < 0:
		return bad("-room-base is negative")
	case c.churn < 0 || c.churn > maxRate:
		return bad("-churn %g outside [0, %d]", c.churn, maxRate)
	case c.soakHeapSlack < 0:
		return bad("-soak-heap-slack is negative")
	case c.soakHeapPerCall < 0:
		return bad("-soak-heap-per-call is negative")
	case c.soakSettle < 0 || c.soakSettle > maxDuration:
		return bad("-soak-settle %s outside [0, %s]", c.soakSettle, maxDuration)
	}
	if c.soak && c.metrics == "" && c.serverBin == "" {
		return bad("-soak needs -metrics, or -server with a server that logs its metrics address")
	}
	modes := 0
	for _, on := range []bool{c.ruriPattern != "", c.appParam, c.keypad} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return bad("give exactly one of -ruri-pattern, -app-param, -keypad")
	}
	if c.ruriPattern != "" && strings.Count(c.ruriPattern, "%d") != 1 {
		return bad("-ruri-pattern %q must contain %%d once", c.ruriPattern)
	}
	switch strings.ToLower(c.codecName) {
	case "pcmu":
		c.codec = g711.PCMU
	case "pcma":
		c.codec = g711.PCMA
	default:
		return bad("-codec %q: pcmu or pcma", c.codecName)
	}
	if (c.serverBin == "") == (c.addr == "") {
		return bad("give exactly one of -addr and -server")
	}
	if c.serverBin != "" && c.serverCfg == "" {
		return bad("-server needs -config")
	}
	if c.serverBin != "" && c.pid != 0 {
		return bad("-pid and -server exclude each other")
	}
	if c.addr != "" {
		if _, err := loopbackAddr(c.addr); err != nil {
			return fmt.Errorf("%w: -addr: %w", ErrUsage, err)
		}
	}
	if c.metrics != "" {
		u, err := url.Parse(c.metrics)
		if err != nil {
			return bad("-metrics: %v", err)
		}
		ip, err := netip.ParseAddr(u.Hostname())
		if u.Hostname() != "localhost" && (err != nil || !ip.IsLoopback()) {
			return fmt.Errorf("%w: -metrics host %q: %w", ErrUsage, u.Hostname(), ErrNotLoopback)
		}
	}
	if c.th.set["max-cpu-us"] || c.th.set["max-rss-per-participant"] {
		if c.pid == 0 && c.serverBin == "" {
			return bad("-max-cpu-us and -max-rss-per-participant need -pid or -server")
		}
	}
	if c.speech != "" {
		b, err := os.ReadFile(c.speech)
		if err != nil {
			return fmt.Errorf("-speech: %w", err)
		}
		pcm, err := wav.Decode(b)
		if err != nil {
			return fmt.Errorf("-speech %s: %w", c.speech, err)
		}
		if len(pcm) < frameSamples*50 {
			return bad("-speech %s: shorter than one second", c.speech)
		}
		c.speechPCM = pcm
	}
	return nil
}

// byteSize is a flag value in bytes, given as a number with an optional
// binary unit: 1048576, 1MiB, 512KiB, 1GiB (K, M, G mean the same).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	num := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<50 {
		return fmt.Errorf("%q: want a size such as 1048576, 512KiB or 1MiB", s)
	}
	*b = byteSize(v * float64(mult))
	return nil
}

// loopbackAddr parses host:port and refuses anything but 127.0.0.0/8 and
// ::1: confload floods its target, so it must never aim off the machine.
func loopbackAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		host, port, serr := net.SplitHostPort(s)
		if serr != nil || host != "localhost" {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
		ap, err = netip.ParseAddrPort("127.0.0.1:" + port)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("address %q: %w", s, err)
		}
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	if !ap.Addr().IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("%s: %w (only 127.0.0.0/8 and ::1)", ap.Addr(), ErrNotLoopback)
	}
	if !ap.Addr().Is4() {
		// Our RTP sockets and SDP are IPv4.
		return netip.AddrPort{}, fmt.Errorf("%s: only IPv4 loopback is implemented: %w", ap.Addr(), ErrUsage)
	}
	return ap, nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs confload and returns the exit status: 0 all checks
// passed, 1 a check failed or the run was interrupted, 2 the run could not
// be made.
func realMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		return cli.FlagsFailed("confload", err, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills
	}()
	level := slog.LevelError + 1
	if cfg.verbose {
		level = slog.LevelWarn
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	rep, err := run(ctx, cfg, stderr, log)
	if err != nil {
		fmt.Fprintln(stderr, "confload:", err)
		if rep == nil {
			return 2
		}
	}
	printReport(stdout, rep)
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, rep); err != nil {
			fmt.Fprintln(stderr, "confload:", err)
			return 2
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", rep.Passed, rep.Failed)
	if rep.Failed > 0 || rep.Interrupted || err != nil {
		return 1
	}
	return 0
}
