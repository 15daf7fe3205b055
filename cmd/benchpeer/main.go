// Command benchpeer measures webconfd side by side with a peer server
// (SEMS 1.6.0 built outside the project with ../shared/tools/sems-peer,
// or any server that answers the same way): the same load, one side after
// the other in one run, and prints every figure with the ratio
// peer / webconf as a Markdown table.
//
// For each load it starts a fresh webconfd (bin/webconfd, with the config
// `make bench` writes plus the XML-RPC port; every port it can take is
// port 0), runs the load, stops it, and runs the same load against the
// peer, given by its SIP address, pid and XML-RPC URL. Nothing of the peer
// is started or stopped here.
//
// Suites (-suite):
//
//	confload  cmd/confload: 500 callers in 50 rooms, 3 talkers, with
//	          -streams-per-socket at its default (256) and at 1 (a socket
//	          per caller, like phones); CPU per participant-tick, RSS.
//	          -big adds 2,000 callers against webconfd alone (SEMS cannot
//	          carry it). Then the XML-RPC request loop, roomInfo with
//	          bin/rpcload from 1 and from 4 client processes (-rpc-procs):
//	          requests per second and server CPU per request.
//	sipp      SIPp: 500 and 1,000 callers in rooms of ten, G.711 pcap in
//	          30 ms packets; server CPU per participant-second and the
//	          datagrams the server sends per participant-second (how they
//	          are counted: sipp.go).
//
// Example (the peer started with ../shared/tools/sems-peer/start.sh):
//
//	benchpeer -suite confload -peer-sip 127.0.0.1:5070 \
//	    -peer-pid $(cat /tmp/semspeer/sems.pid) -peer-xmlrpc http://127.0.0.1:8091/ -duration 30s
//
// The peer runs the same loads with the same room numbers (000777<room>,
// direct_room_re=000777.* strip 6 on both). Without -peer-sip only
// webconfd is measured.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"webconf/cmd/internal/cli"
)

// ErrUsage reports invalid flags.
var ErrUsage = cli.ErrUsage

// ErrReport means a tool's report lacked what the table needs.
var ErrReport = errors.New("report lacks a figure")

type options struct {
	suite                       string
	peerSIP, peerXMLRPC         string
	peerPID                     int
	webconfd, confload, rpcload string
	sipp, sippPcap              string
	settle                      time.Duration
	duration, rpcDuration       time.Duration
	calls, rooms, talkers       int
	bigCalls                    int
	rate, sippRate              float64
	sippCalls                   []int
	sippPtime                   int
	rpcProcs                    []int
	loads                       map[string]bool // nil: all
	workDir, jsonOut            string
	peerFirst                   bool
	verbose                     bool

	out, log io.Writer
}

func (o *options) logf(format string, a ...any) {
	fmt.Fprintf(o.log, "benchpeer: "+format+"\n", a...)
}

func (o *options) verboseOut(b []byte) {
	if o.verbose {
		o.log.Write(b) //nolint:errcheck // progress output
	}
}

// want reports whether load name is selected by -loads.
func (o *options) want(name string) bool { return o.loads == nil || o.loads[name] }

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("benchpeer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.suite, "suite", "confload", "confload (confload loads and the XML-RPC loop) or sipp")
	fs.StringVar(&o.peerSIP, "peer-sip", "", "the peer's SIP UDP address (loopback), e.g. 127.0.0.1:5070; empty = webconfd alone")
	fs.IntVar(&o.peerPID, "peer-pid", 0, "the peer's process id (its CPU and RSS are sampled)")
	fs.StringVar(&o.peerXMLRPC, "peer-xmlrpc", "", "the peer's XML-RPC URL, e.g. http://127.0.0.1:8091/")
	fs.StringVar(&o.webconfd, "webconfd", "bin/webconfd", "webconfd binary (a fresh one is started for every load)")
	fs.StringVar(&o.confload, "confload", "bin/confload", "confload binary")
	fs.StringVar(&o.rpcload, "rpcload", "bin/rpcload", "rpcload binary")
	fs.StringVar(&o.sipp, "sipp", "sipp", "SIPp binary")
	fs.StringVar(&o.sippPcap, "sipp-pcap", sippG711, "G.711 A-law pcap SIPp plays (30 ms packets), looped to the call's length")
	fs.DurationVar(&o.duration, "duration", 30*time.Second, "measurement window of each load")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "SIPp: wait after the last call is placed before the window opens (and as much after it before the calls end)")
	fs.DurationVar(&o.rpcDuration, "rpc-duration", 10*time.Second, "length of each XML-RPC run")
	fs.IntVar(&o.calls, "calls", 500, "confload callers")
	fs.IntVar(&o.rooms, "rooms", 50, "confload rooms")
	fs.IntVar(&o.talkers, "talkers", 3, "confload talkers per room")
	fs.IntVar(&o.bigCalls, "big", 0, "also run confload with this many callers (rooms of ten) against webconfd alone, e.g. 2000; 0 = not")
	fs.Float64Var(&o.rate, "rate", 100, "confload calls per second while ramping up")
	fs.Float64Var(&o.sippRate, "sipp-rate", 50, "SIPp calls per second while ramping up")
	fs.IntVar(&o.sippPtime, "sipp-sdp-ptime", 0, "a=ptime in SIPp's offer (0 = none, as SIPp's uac_pcap: the server sends 20 ms packets)")
	sippCalls := fs.String("sipp-calls", "500,1000", "SIPp loads: callers, comma separated (rooms of ten)")
	rpcProcs := fs.String("rpc-procs", "1,4", "XML-RPC loads: rpcload client processes, comma separated")
	loads := fs.String("loads", "", "run only these loads, comma separated: confload, confload-1, big, rpc (suite confload); sipp-N (suite sipp); empty = all")
	fs.StringVar(&o.workDir, "workdir", "", "directory for configs and reports (default: a new temporary one, removed at the end)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the table as JSON to this file")
	fs.BoolVar(&o.peerFirst, "peer-first", false, "run each load against the peer first, then webconfd (to see whether the order matters)")
	fs.BoolVar(&o.verbose, "v", false, "show the tools' own output")
	if err := cli.Parse(fs, args); err != nil {
		return nil, err
	}
	var err error
	if o.sippCalls, err = intList("-sipp-calls", *sippCalls, 10, 5000); err != nil {
		return nil, err
	}
	if o.rpcProcs, err = intList("-rpc-procs", *rpcProcs, 1, 64); err != nil {
		return nil, err
	}
	if *loads != "" {
		o.loads = map[string]bool{}
		for l := range strings.SplitSeq(*loads, ",") {
			o.loads[strings.TrimSpace(l)] = true
		}
	}
	return o, o.validate()
}

// intList parses a comma-separated list of whole numbers in lo..hi.
func intList(name, s string, lo, hi int) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, cli.Usagef("%s %q: want whole numbers in %d..%d", name, f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}

func (o *options) validate() error {
	bad := cli.Usagef
	switch {
	case o.suite != "confload" && o.suite != "sipp":
		return bad("-suite %q: confload or sipp", o.suite)
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return bad("-duration %s outside (0, 10m]", o.duration)
	case o.rpcDuration <= 0 || o.rpcDuration > 10*time.Minute:
		return bad("-rpc-duration %s outside (0, 10m]", o.rpcDuration)
	case o.calls < 1 || o.rooms < 1 || o.rooms > o.calls:
		return bad("-calls %d, -rooms %d: want 1 <= rooms <= calls", o.calls, o.rooms)
	case o.rate <= 0 || o.sippRate <= 0:
		return bad("-rate and -sipp-rate must be positive")
	case o.settle < 0 || o.settle > time.Minute:
		return bad("-settle %s outside [0, 1m]", o.settle)
	}
	if o.peerSIP != "" {
		ap, err := netip.ParseAddrPort(o.peerSIP)
		if err != nil || !ap.Addr().IsLoopback() {
			return bad("-peer-sip %q: want a loopback host:port (the load floods it)", o.peerSIP)
		}
		if o.peerPID <= 0 {
			return bad("-peer-sip needs -peer-pid")
		}
		if err := syscall.Kill(o.peerPID, 0); err != nil {
			return bad("-peer-pid %d: %v", o.peerPID, err)
		}
	}
	return nil
}

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// realMain runs benchpeer: 0 when every load ran on every side, 1 when
// some did not (the table shows "-" there), 2 on a usage error.
func realMain(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return cli.FlagsFailed("benchpeer", err, stderr)
	}
	o.out, o.log = stdout, stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.workDir == "" {
		d, err := os.MkdirTemp("", "benchpeer-")
		if err != nil {
			fmt.Fprintln(stderr, "benchpeer:", err)
			return 2
		}
		defer os.RemoveAll(d)
		o.workDir = d
	} else if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		fmt.Fprintln(stderr, "benchpeer:", err)
		return 2
	}
	rows, errs := o.run(ctx)
	fmt.Fprintln(stdout)
	printTable(stdout, rows)
	if o.jsonOut != "" {
		if err := writeRowsJSON(o.jsonOut, rows); err != nil {
			errs = append(errs, err)
		}
	}
	for _, err := range errs {
		fmt.Fprintln(stderr, "benchpeer:", err)
	}
	if len(errs) > 0 {
		return 1
	}
	return 0
}

func (o *options) peer() *server {
	if o.peerSIP == "" {
		return nil
	}
	return &server{name: "peer", pid: o.peerPID, sip: o.peerSIP, xmlrpc: o.peerXMLRPC}
}

// run runs the suite's loads, each against a fresh webconfd and then the
// peer, and returns the table and what failed.
func (o *options) run(ctx context.Context) ([]row, []error) {
	var rows []row
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
			o.logf("%v", err)
		}
	}
	peer := o.peer()
	if o.suite == "sipp" {
		for _, n := range o.sippCalls {
			l := sippLoad{name: fmt.Sprintf("SIPp, %d callers in rooms of 10, G.711 pcap, 30 ms packets", n), calls: n}
			if !o.want(fmt.Sprintf("sipp-%d", n)) {
				continue
			}
			wc, pr := sideBySide(ctx, o, peer, note, func(s *server) (*sippResult, error) { return o.runSIPp(ctx, l, s) })
			rows = append(rows, sippRows(l.name, wc, pr)...)
		}
		return rows, errs
	}

	loads := []struct {
		key string
		confloadLoad
	}{
		{"confload", confloadLoad{name: fmt.Sprintf("confload %d callers, %d rooms, %d talkers", o.calls, o.rooms, o.talkers), calls: o.calls, rooms: o.rooms}},
		{"confload-1", confloadLoad{name: "the same, -streams-per-socket 1", calls: o.calls, rooms: o.rooms, perSocket: 1}},
	}
	if o.bigCalls > 0 {
		loads = append(loads, struct {
			key string
			confloadLoad
		}{"big", confloadLoad{name: fmt.Sprintf("confload %d callers, rooms of 10, %d talkers (webconf only)", o.bigCalls, o.talkers),
			calls: o.bigCalls, rooms: max(1, o.bigCalls/10), wcOnly: true}})
	}
	for _, l := range loads {
		if !o.want(l.key) || ctx.Err() != nil {
			continue
		}
		p := peer
		if l.wcOnly {
			p = nil
		}
		wc, pr := sideBySide(ctx, o, p, note, func(s *server) (*confloadReport, error) { return o.runConfload(ctx, l.confloadLoad, s) })
		rows = append(rows, confloadRows(l.name, wc, pr)...)
	}
	if o.want("rpc") && ctx.Err() == nil {
		rows = append(rows, o.rpcSuite(ctx, peer, note)...)
	}
	return rows, errs
}

// rpcSuite is the XML-RPC request loop against both sides, once for
// every -rpc-procs count.
func (o *options) rpcSuite(ctx context.Context, peer *server, note func(error)) []row {
	if peer != nil && peer.xmlrpc == "" {
		o.logf("XML-RPC loop against the peer skipped: no -peer-xmlrpc")
		peer = nil
	}
	var rows []row
	for _, n := range o.rpcProcs {
		if ctx.Err() != nil {
			break
		}
		load := fmt.Sprintf("XML-RPC roomInfo, %d client processes, keep-alive", n)
		if n == 1 {
			load = "XML-RPC roomInfo, 1 client process, keep-alive"
		}
		wc, pr := sideBySide(ctx, o, peer, note, func(s *server) (*rpcReport, error) { return o.runRPC(ctx, s, n) })
		rows = append(rows, rpcRows(load, wc, pr)...)
	}
	return rows
}

// sideBySide runs one load (f) against a fresh webconfd and then against
// the peer (nil: webconfd alone), or the other way round with
// -peer-first, and returns both sides' results (nil where a side failed).
func sideBySide[T any](ctx context.Context, o *options, peer *server, note func(error), f func(*server) (T, error)) (wc, pr T) {
	runWC := func() {
		note(o.withWebconfd(ctx, func(s *server) (err error) { wc, err = f(s); return err }))
	}
	runPeer := func() {
		if peer == nil || ctx.Err() != nil {
			return
		}
		var err error
		pr, err = onPeer(o, peer, func() (T, error) { return f(peer) })
		note(err)
	}
	if o.peerFirst {
		runPeer()
		if ctx.Err() == nil {
			runWC()
		}
	} else {
		runWC()
		runPeer()
	}
	return wc, pr
}

// withWebconfd starts a fresh webconfd, runs f against it and stops it.
func (o *options) withWebconfd(ctx context.Context, f func(*server) error) error {
	s, err := startWebconfd(ctx, o.webconfd, o.workDir)
	if err != nil {
		return err
	}
	defer s.stop()
	o.logf("webconf: started pid %d, SIP %s, XML-RPC %s", s.pid, s.sip, s.xmlrpc)
	if err := f(s); err != nil {
		return err
	}
	if !s.alive() {
		return fmt.Errorf("webconfd exited during the load: %s", s.lastLines())
	}
	return nil
}

// onPeer runs f against the peer after checking that it is still there.
func onPeer[T any](o *options, peer *server, f func() (T, error)) (T, error) {
	var zero T
	if !peer.alive() {
		return zero, fmt.Errorf("peer pid %d is gone", peer.pid)
	}
	v, err := f()
	if err == nil && !peer.alive() {
		return zero, fmt.Errorf("peer pid %d exited during the load", peer.pid)
	}
	return v, err
}

// scrapeMetrics reads a Prometheus text page's unlabelled samples.
func scrapeMetrics(ctx context.Context, url string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, fmt.Errorf("metrics %s: %w", url, err)
	}
	return parseMetrics(b), nil
}

func parseMetrics(b []byte) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || strings.ContainsRune(f[0], '{') {
			continue
		}
		if v, err := strconv.ParseFloat(f[1], 64); err == nil && !math.IsNaN(v) {
			out[f[0]] = v
		}
	}
	return out
}

// quoteArgs prints a command line that pastes into a shell.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " %'\"$*?;&|<>()\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		q[i] = a
	}
	return strings.Join(q, " ")
}

// tail is the end of a tool's output, for an error message.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
