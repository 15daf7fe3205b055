// Command rpcload measures the control plane: it runs roomInfo(room,
// adminpin) in a loop against an XML-RPC server (webconfd or SEMS's
// xmlrpc2di) from several client processes, each on one keep-alive
// HTTP/1.1 connection, and reports the requests per second and, given the
// server's pid, the server's CPU per request.
//
//	rpcload -url http://127.0.0.1:8090/ -pid PID -procs 4 -duration 10s [-json]
//
// Without -room it first creates a room with roomCreate and uses the admin
// PIN the server answers (SEMS needs that PIN for roomInfo of a room made
// by roomCreate). -jsonrpc loads webconfd's JSON-RPC path instead (POST
// /jsonrpc on the same port).
//
// The clients cost as little as possible so that the two cores of a
// development machine go to the server: each child process sends
// pre-built request bytes with one write and reads the answer with
// blocking reads on a plain socket, outside Go's network poller. Only
// answers that are neither a fault nor a non-zero result code count as
// requests; everything else counts as an error.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"webconf/cmd/internal/cli"
	"webconf/cmd/internal/procstat"
	"webconf/rpc/xmlrpc/client"
)

// childEnv marks a process started by rpcload as one of its clients.
const childEnv = "RPCLOAD_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		os.Exit(child(os.Args[1:], os.Stdin, os.Stdout))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	url      string
	room     string
	pin      string
	procs    int
	duration time.Duration
	pid      int
	json     bool
	jsonrpc  bool
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("rpcload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.url, "url", "http://127.0.0.1:8090/", "XML-RPC server URL (http only)")
	fs.StringVar(&o.room, "room", "", "room to ask about (default: one made with roomCreate)")
	fs.StringVar(&o.pin, "pin", "", "admin PIN of -room")
	fs.IntVar(&o.procs, "procs", 1, "client processes, one keep-alive connection each")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	fs.IntVar(&o.pid, "pid", 0, "server pid whose CPU (utime+stime from /proc/PID/stat) to sample")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	fs.BoolVar(&o.jsonrpc, "jsonrpc", false, "use JSON-RPC (POST /jsonrpc, webconfd only) instead of XML-RPC")
	if err := cli.Parse(fs, args); err != nil {
		return o, err
	}
	if o.procs < 1 || o.duration <= 0 {
		return o, cli.Usagef("-procs must be >= 1 and -duration > 0")
	}
	return o, nil
}

// Report is the result of a run; -json prints it as is.
type Report struct {
	URL             string  `json:"url"`
	Protocol        string  `json:"protocol"` // "xmlrpc" or "jsonrpc"
	Room            string  `json:"room"`
	Procs           int     `json:"procs"`
	Seconds         float64 `json:"seconds"`
	Requests        int64   `json:"requests"` // answered without fault and with result code 0
	Errors          int64   `json:"errors"`
	RequestsPerSec  float64 `json:"requests_per_s"`
	ServerPID       int     `json:"server_pid,omitempty"`
	ServerCPUSec    float64 `json:"server_cpu_s,omitempty"`
	ServerCPUUsPerR float64 `json:"server_cpu_us_per_request,omitempty"`
	FirstError      string  `json:"first_error,omitempty"`
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return cli.FlagsFailed("rpcload", err, stderr)
	}
	rep, err := load(o)
	if err != nil {
		fmt.Fprintf(stderr, "rpcload: %v\n", err)
		return 1
	}
	if o.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintln(stdout, string(b))
	} else {
		fmt.Fprintf(stdout, "%s %s, room %q, %d client process(es), %.1f s\n", rep.Protocol, rep.URL, rep.Room, rep.Procs, rep.Seconds)
		fmt.Fprintf(stdout, "requests %d, errors %d, %.0f requests/s\n", rep.Requests, rep.Errors, rep.RequestsPerSec)
		if rep.ServerPID != 0 {
			fmt.Fprintf(stdout, "server pid %d: %.2f s CPU, %.1f us per request\n", rep.ServerPID, rep.ServerCPUSec, rep.ServerCPUUsPerR)
		}
		if rep.FirstError != "" {
			fmt.Fprintf(stdout, "first error: %s\n", rep.FirstError)
		}
	}
	if rep.Requests == 0 || rep.Errors > 0 {
		return 1
	}
	return 0
}

// target is where the requests go.
type target struct {
	addr string // host:port
	path string
	host string // the Host header
}

func parseURL(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return target{}, fmt.Errorf("-url %q: want http://HOST:PORT/PATH", raw)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	p := u.RequestURI()
	return target{addr: addr, path: p, host: u.Host}, nil
}

func load(o options) (*Report, error) {
	if _, err := parseURL(o.url); err != nil {
		return nil, err
	}
	var err error
	room, pin := o.room, o.pin
	if room == "" {
		room = fmt.Sprintf("rpcload-%d-%d", os.Getpid(), time.Now().UnixNano()%1_000_000_000)
		if pin, err = createRoom(o.url, room); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	type kid struct {
		cmd *exec.Cmd
		in  io.WriteCloser
		out *bufio.Reader
	}
	var kids []kid
	defer func() {
		for _, k := range kids {
			k.in.Close()
			k.cmd.Wait()
		}
	}()
	childArgs := []string{"-url", o.url, "-room", room, "-pin", pin, "-duration", o.duration.String(),
		"-jsonrpc=" + strconv.FormatBool(o.jsonrpc)}
	for range o.procs {
		cmd := exec.Command(self, childArgs...)
		cmd.Env = append(os.Environ(), childEnv+"=1")
		cmd.Stderr = os.Stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("client pipe: %w", err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			return nil, fmt.Errorf("client pipe: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start client: %w", err)
		}
		kids = append(kids, kid{cmd, in, bufio.NewReader(out)})
	}
	// Every client has connected and had one good answer before the
	// clock starts.
	for i, k := range kids {
		line, err := k.out.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("client %d did not start: %w", i, err)
		}
		if line != "ready\n" {
			return nil, fmt.Errorf("client %d: %s", i, strings.TrimSpace(line))
		}
	}
	rep := &Report{URL: o.url, Protocol: "xmlrpc", Room: room, Procs: o.procs, ServerPID: o.pid}
	if o.jsonrpc {
		rep.Protocol = "jsonrpc"
	}
	var cpu0 float64
	if o.pid != 0 {
		p, err := procstat.Read(o.pid)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		cpu0 = p.CPU
	}
	t0 := time.Now()
	for i, k := range kids {
		if _, err := io.WriteString(k.in, "go\n"); err != nil {
			return nil, fmt.Errorf("client %d: %w", i, err)
		}
	}
	for i, k := range kids {
		var r childResult
		line, err := k.out.ReadBytes('\n')
		if err == nil {
			err = json.Unmarshal(line, &r)
		}
		if err != nil {
			return nil, fmt.Errorf("client %d result: %w", i, err)
		}
		rep.Requests += r.OK
		rep.Errors += r.Errors
		if rep.FirstError == "" {
			rep.FirstError = r.FirstError
		}
	}
	elapsed := time.Since(t0)
	if o.pid != 0 {
		p, err := procstat.Read(o.pid)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		rep.ServerCPUSec = p.CPU - cpu0
		if rep.Requests > 0 {
			rep.ServerCPUUsPerR = rep.ServerCPUSec * 1e6 / float64(rep.Requests)
		}
	}
	rep.Seconds = elapsed.Seconds()
	rep.RequestsPerSec = float64(rep.Requests) / rep.Seconds
	return rep, nil
}

// createRoom makes room with roomCreate and returns its admin PIN. Its
// cost is not measured, so it uses the project's ordinary client.
func createRoom(url, room string) (string, error) {
	cli, err := client.New(url)
	if err != nil {
		return "", fmt.Errorf("roomCreate: %w", err)
	}
	defer cli.Close()
	var res []any
	if err := cli.Call("roomCreate", []any{room}, &res); err != nil {
		return "", fmt.Errorf("roomCreate(%q): %w", room, err)
	}
	if len(res) < 3 || fmt.Sprint(res[0]) != "0" {
		return "", fmt.Errorf("roomCreate(%q) answered %v", room, res)
	}
	pin, ok := res[2].(string)
	if !ok {
		return "", fmt.Errorf("roomCreate(%q): PIN %v is not a string", room, res[2])
	}
	return pin, nil
}
