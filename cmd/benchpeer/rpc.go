package main

// The XML-RPC request loop: bin/rpcload against each side, once for
// every -rpc-procs count.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
)

// rpcReport is what the table takes from rpcload's -json report (the
// fields of cmd/rpcload's Report).
type rpcReport struct {
	Requests       int64   `json:"requests"`
	Errors         int64   `json:"errors"`
	RequestsPerSec float64 `json:"requests_per_s"`
	CPUUsPerReq    float64 `json:"server_cpu_us_per_request"`
	FirstError     string  `json:"first_error"`
}

// runRPC runs rpcload with procs client processes against s's XML-RPC
// port (rpcload makes its own room with roomCreate). A run with an error
// or without a request is a failure.
func (o *options) runRPC(ctx context.Context, s *server, procs int) (*rpcReport, error) {
	args := []string{"-url", s.xmlrpc, "-pid", strconv.Itoa(s.pid), "-procs", strconv.Itoa(procs),
		"-duration", o.rpcDuration.String(), "-json"}
	o.logf("%s: %s %s", s.name, o.rpcload, quoteArgs(args))
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.rpcload, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	o.verboseOut(stderr.Bytes())
	if stdout.Len() == 0 { // it stopped before the loop (no binary, roomCreate failed)
		return nil, fmt.Errorf("rpcload against %s: %w: %s", s.name, runErr, tail(stderr.Bytes(), 800))
	}
	var rep rpcReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("rpcload against %s: report %.300q: %w", s.name, stdout.Bytes(), err)
	}
	if rep.Errors > 0 || rep.Requests == 0 {
		return nil, fmt.Errorf("rpcload against %s: %d requests, %d errors; the first: %s", s.name, rep.Requests, rep.Errors, rep.FirstError)
	}
	if runErr != nil {
		return nil, fmt.Errorf("rpcload against %s: %w: %s", s.name, runErr, tail(stderr.Bytes(), 800))
	}
	return &rep, nil
}

// rpcRows are the table's rows of one XML-RPC load.
func rpcRows(load string, wc, peer *rpcReport) []row {
	mk := rowMaker(load, wc, peer)
	return []row{
		mk("requests per second", "", func(r *rpcReport) float64 { return r.RequestsPerSec }),
		mk("server CPU per request", "µs", func(r *rpcReport) float64 { return r.CPUUsPerReq }),
	}
}
