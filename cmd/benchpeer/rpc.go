package main

// The XML-RPC request loop, measured with bin/rpcload (written in
// parallel with this program; its report's field names are not fixed
// yet). Everything that depends on rpcload is in this file: wire the
// final names into rpcRateKeys and rpcCPUKeys below.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// rpcRateKeys and rpcCPUKeys are the report fields read, first found
// wins; when none is there, any numeric field whose name matches
// rpcRateRe / rpcCPURe is taken (and the table says which).
var (
	rpcRateKeys = []string{"requests_per_sec", "requests_per_s", "req_per_s", "rps"}
	rpcCPUKeys  = []string{"server_cpu_us_per_request", "server_cpu_us_per_req", "cpu_us_per_request", "cpu_us_per_req"}
	rpcRateRe   = regexp.MustCompile(`(?i)req.*per_?s(ec(ond)?)?$|^rps$`)
	rpcCPURe    = regexp.MustCompile(`(?i)cpu.*us.*req`)
)

// ErrReport means a tool's report lacked what the table needs.
var ErrReport = errors.New("report lacks a figure")

// rpcResult is what the table takes from one rpcload run.
type rpcResult struct {
	rate, cpuUs     float64
	rateKey, cpuKey string
}

// flattenJSON maps every numeric leaf of a JSON document to its dotted
// path ("server.cpu_us_per_request").
func flattenJSON(v any, prefix string, out map[string]float64) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flattenJSON(e, p, out)
		}
	case float64:
		out[prefix] = x
	}
}

// pickField finds a figure: an exact key at any depth (its last path
// element), else the first key (sorted) matching re.
func pickField(flat map[string]float64, keys []string, re *regexp.Regexp) (float64, string, bool) {
	paths := make([]string, 0, len(flat))
	for p := range flat {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	last := func(p string) string { return p[strings.LastIndexByte(p, '.')+1:] }
	for _, k := range keys {
		for _, p := range paths {
			if last(p) == k {
				return flat[p], p, true
			}
		}
	}
	for _, p := range paths {
		if re.MatchString(last(p)) {
			return flat[p], p, true
		}
	}
	return 0, "", false
}

// parseRPCReport reads rpcload's JSON report: the whole of b, or the
// outermost {...} in it (a report printed after other lines).
func parseRPCReport(b []byte) (*rpcResult, error) {
	i, j := bytes.IndexByte(b, '{'), bytes.LastIndexByte(b, '}')
	if i < 0 || j < i {
		return nil, fmt.Errorf("rpcload report: no JSON object: %w", ErrReport)
	}
	var doc any
	if err := json.Unmarshal(b[i:j+1], &doc); err != nil {
		return nil, fmt.Errorf("rpcload report: %w", err)
	}
	flat := map[string]float64{}
	flattenJSON(doc, "", flat)
	res := &rpcResult{}
	var okR, okC bool
	res.rate, res.rateKey, okR = pickField(flat, rpcRateKeys, rpcRateRe)
	res.cpuUs, res.cpuKey, okC = pickField(flat, rpcCPUKeys, rpcCPURe)
	if !okR && !okC {
		return nil, fmt.Errorf("rpcload report: neither requests per second nor CPU per request among %d fields: %w", len(flat), ErrReport)
	}
	if !okR {
		res.rate = math.NaN()
	}
	if !okC {
		res.cpuUs = math.NaN()
	}
	return res, nil
}

// rpcFlags lists the flags `rpcload -h` prints (Go's flag package:
// "  -name type" or "  -name" for a bool), with their type.
func rpcFlags(help []byte) map[string]string {
	re := regexp.MustCompile(`(?m)^\s+-([A-Za-z0-9_-]+)(?:\s+([A-Za-z]+))?\s*$`)
	out := map[string]string{}
	for _, m := range re.FindAllSubmatch(help, -1) {
		out[string(m[1])] = string(m[2])
	}
	return out
}

// xmlrpcValues is a crude reader of an XML-RPC response's scalar values,
// enough for roomCreate's [code, message, pin].
var xmlrpcValue = regexp.MustCompile(`<value>\s*(?:<(?:string|i4|int)>)?([^<]*)(?:</(?:string|i4|int)>)?\s*</value>`)

// roomCreate makes room on the XML-RPC server at url and returns its
// admin PIN: the peer's roomInfo answers only for a room that roomCreate
// made, with its PIN (see the sems-peer README).
func roomCreate(ctx context.Context, url, room string) (string, error) {
	body := `<?xml version="1.0"?><methodCall><methodName>roomCreate</methodName><params><param><value><string>` +
		room + `</string></value></param></params></methodCall>`
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("roomCreate: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("roomCreate %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return "", fmt.Errorf("roomCreate %s: %w", url, err)
	}
	m := xmlrpcValue.FindAllSubmatch(b, -1)
	if len(m) < 3 || string(m[0][1]) != "0" {
		return "", fmt.Errorf("roomCreate %s: unexpected answer %.300q: %w", url, b, ErrReport)
	}
	return string(m[2][1]), nil
}

// runRPC runs rpcload against s's XML-RPC port, or says why not (nil
// result, no error: the table then has no XML-RPC rows).
func (o *options) runRPC(ctx context.Context, s *server) (*rpcResult, error) {
	help, _ := exec.CommandContext(ctx, o.rpcload, "-h").CombinedOutput()
	flags := rpcFlags(help)
	for _, f := range []string{"url", "pid", "duration"} {
		if _, ok := flags[f]; !ok {
			return nil, fmt.Errorf("%s -h lists no -%s flag: %w", o.rpcload, f, ErrReport)
		}
	}
	room := fmt.Sprintf("benchrpc%d", time.Now().UnixNano()%1e9)
	pin, err := roomCreate(ctx, s.xmlrpc, room)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	args := []string{"-url", s.xmlrpc, "-pid", strconv.Itoa(s.pid), "-duration", o.rpcDuration.String()}
	if _, ok := flags["procs"]; ok {
		args = append(args, "-procs", strconv.Itoa(o.rpcProcs))
	}
	if _, ok := flags["room"]; ok {
		args = append(args, "-room", room)
	}
	for _, f := range []string{"pin", "adminpin", "admin-pin"} {
		if _, ok := flags[f]; ok {
			args = append(args, "-"+f, pin)
		}
	}
	jsonFile := ""
	if typ, ok := flags["json"]; ok {
		if typ == "" { // a bool: the report goes to stdout
			args = append(args, "-json")
		} else {
			jsonFile = filepath.Join(o.workDir, fmt.Sprintf("rpcload-%s-%d.json", s.name, time.Now().UnixNano()))
			args = append(args, "-json", jsonFile)
		}
	}
	for _, a := range o.rpcArgs {
		args = append(args, strings.NewReplacer("{room}", room, "{pin}", pin).Replace(a))
	}
	o.logf("%s: rpcload %s", s.name, quoteArgs(args))
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.rpcload, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	o.verboseOut(stderr.Bytes())
	report := stdout.Bytes()
	if jsonFile != "" {
		if report, err = os.ReadFile(jsonFile); err != nil {
			return nil, fmt.Errorf("rpcload against %s: %w (exit: %v): %s", s.name, err, runErr, tail(stderr.Bytes(), 800))
		}
	}
	res, err := parseRPCReport(report)
	if err != nil {
		return nil, fmt.Errorf("rpcload against %s (exit: %v): %w: %s", s.name, runErr, err, tail(stderr.Bytes(), 800))
	}
	return res, nil
}

// rpcRows are the table's XML-RPC rows.
func rpcRows(load string, wc, peer *rpcResult) []row {
	get := func(r *rpcResult, f func(*rpcResult) float64) float64 {
		if r == nil {
			return math.NaN()
		}
		return f(r)
	}
	key := func(f func(*rpcResult) string) string {
		for _, r := range []*rpcResult{wc, peer} {
			if r != nil && f(r) != "" {
				return "rpcload " + f(r)
			}
		}
		return ""
	}
	return []row{
		{Load: load, Figure: "requests per second", Note: key(func(r *rpcResult) string { return r.rateKey }),
			WC: get(wc, func(r *rpcResult) float64 { return r.rate }), Peer: get(peer, func(r *rpcResult) float64 { return r.rate })},
		{Load: load, Figure: "server CPU per request", Unit: "µs", Note: key(func(r *rpcResult) string { return r.cpuKey }),
			WC: get(wc, func(r *rpcResult) float64 { return r.cpuUs }), Peer: get(peer, func(r *rpcResult) float64 { return r.cpuUs })},
	}
}
