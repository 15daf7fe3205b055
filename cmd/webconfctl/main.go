// Command webconfctl is the operator's tool for a webconf (or SEMS
// webconference) server over XML-RPC: list rooms, show who is in one,
// create and delete rooms, recover an admin PIN with the master password,
// dial out, kick, mute and unmute; and, over the REST API with the master
// password, the users of the meetings API and their tokens.
//
// Secrets may come from the environment instead of the command line
// (where other users can see them in the process list):
// WEBCONF_MASTER_PASSWORD, WEBCONF_ADMIN_PIN, WEBCONF_AUTH_PASSWORD. On
// the server's machine the master password the server made is read from
// its data_dir (-data-dir, default ./data as in the sample config).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kolo/xmlrpc"

	"webconf/rpc/xmlrpc/client"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: webconfctl [-url URL] [-json] COMMAND [ARGS]

commands:
  rooms                          list rooms (needs the master password)
  info ROOM PIN                  participants of a room
  create ROOM [SECONDS]          open a room; prints its admin PIN
  delete ROOM PIN                delete a room and hang up everyone in it
  pin ROOM                       recover a room's admin PIN (master password)
  setpin ROOM PIN NEWPIN         change a room's admin PIN
  dialout ROOM PIN CALLEE FROM_USER DOMAIN AUTH_USER [AUTH_PASSWORD] [CALLEE_DOMAIN] [PARTICIPANT_ID]
                                 call someone into a room; prints the call tag
  kick|mute|unmute ROOM PIN CALL_TAG
  lock|unlock ROOM PIN           a locked room takes no new caller
  muteall ROOM PIN [CALL_TAG]    mute everyone but CALL_TAG (the asker)
  unmuteall ROOM PIN             unmute everyone
  participants ROOM PIN          participants with talking and muted, and the lock
  feedback                       flush the server's feedback file
  status                         active calls and the server's info string

REST API (-api URL; needs the master password):
  user add NAME [--capability meetings,sip] [--line sip:URI]
                                 make a user of the meetings API; prints its
                                 token (shown only this once)
  user list                      the users
  user delete NAME               delete a user (and the meetings they alone own)
  events [-rooms R1,R2] [-names N1,N2] [-since SEQ] [-token TOKEN]
                                 print the event stream, one JSON message a
                                 line, until interrupted; resumes after a
                                 lost connection (a user's token, or the
                                 master password: every event)

A PIN given as "-" is read from WEBCONF_ADMIN_PIN, AUTH_PASSWORD from
WEBCONF_AUTH_PASSWORD. The master password comes from -master, else
WEBCONF_MASTER_PASSWORD, else the file the server keeps it in when its
config leaves master_password empty: DATA_DIR/master_password (-data-dir).
`

type cli struct {
	c      *xmlrpc.Client
	asJSON bool
	out    io.Writer
	errOut io.Writer
	api    string // REST base URL, without /api/v1
	// master is the password given (-master, WEBCONF_MASTER_PASSWORD);
	// "" reads dataDir's file when a command needs it.
	master  string
	dataDir string
	http    *http.Client
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("webconfctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", envOr("WEBCONF_URL", "http://127.0.0.1:8090/"), "XML-RPC URL of the server")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	master := fs.String("master", "", "master password (better: WEBCONF_MASTER_PASSWORD)")
	api := fs.String("api", envOr("WEBCONF_API_URL", "http://127.0.0.1:8080"), "REST API base URL of the server ([http] listen)")
	dataDir := fs.String("data-dir", envOr("WEBCONF_DATA_DIR", "data"), "the server's data_dir, where it keeps the master password it made")
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	c, err := client.New(*url)
	if err != nil {
		fmt.Fprintf(stderr, "webconfctl: %v\n", err)
		return 2
	}
	defer c.Close()
	m := *master
	if m == "" {
		m = os.Getenv("WEBCONF_MASTER_PASSWORD")
	}
	x := &cli{c: c, asJSON: *asJSON, out: stdout, errOut: stderr, master: m, dataDir: *dataDir,
		api: apiBase(*api), http: &http.Client{Timeout: 15 * time.Second}}
	if err := x.do(fs.Arg(0), fs.Args()[1:]); err != nil {
		fmt.Fprintf(stderr, "webconfctl: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError string

func (u usageError) Error() string { return string(u) + " (webconfctl -h for help)" }

// apiBase is -api as scheme://host:port: the [http] listen address
// (127.0.0.1:8080) or the API's own URL (.../api/v1/) are taken too.
func apiBase(s string) string {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	return strings.TrimSuffix(strings.TrimRight(s, "/"), "/api/v1")
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// di calls a webconference function and returns its reply array.
func (x *cli) di(fn string, args ...any) ([]any, error) {
	var res any
	if err := x.c.Call("di", append([]any{"webconference", fn}, args...), &res); err != nil {
		if c, msg, ok := client.AsFault(err); ok {
			return nil, fmt.Errorf("the server refused %s: fault %d: %s", fn, c, msg)
		}
		return nil, fmt.Errorf("cannot reach the server: %w", err)
	}
	arr, ok := res.([]any)
	if !ok || len(arr) == 0 {
		return nil, fmt.Errorf("unexpected reply to %s: %v", fn, res)
	}
	return arr, nil
}

func code(v any) int {
	switch n := v.(type) {
	case int64:
		return int(n)
	case int:
		return n
	}
	return -999
}

func str(v any) string { s, _ := v.(string); return s }

// pinArgs takes ROOM PIN REST...; a PIN of "-" is read from
// WEBCONF_ADMIN_PIN.
func pinArgs(args []string, rest int) (room, pin string, tail []string, err error) {
	if len(args) < 2+rest {
		return "", "", nil, usageError("missing arguments")
	}
	pin = args[1]
	if pin == "-" {
		pin = os.Getenv("WEBCONF_ADMIN_PIN")
	}
	return args[0], pin, args[2:], nil
}

// explain turns SEMS's reply codes into sentences.
func explain(fn string, c int, msg string) error {
	switch {
	case c == 1 && msg == "wrong adminpin or inexisting room":
		return errors.New("wrong admin PIN, or no such room")
	case c == 1 && msg == "room already opened":
		return errors.New("the room is already open (recover its PIN with: webconfctl pin ROOM)")
	case c == 1 && msg == "dialout not allowed":
		return errors.New("the server's dial-out policy does not allow this callee")
	case c == 1:
		return fmt.Errorf("%s failed on the server: %s", fn, msg)
	case c == 2 && strings.HasPrefix(msg, "room does not exist"):
		return errors.New("no such room")
	case c == 2:
		return errors.New("no call with that tag in the room")
	case c == 403 || c == 407:
		return errors.New("wrong master password (or master_password=off on the server)")
	case c == 404:
		return errors.New("no such room")
	}
	return fmt.Errorf("%s: code %d: %s", fn, c, msg)
}

func (x *cli) print(v any, text func(w io.Writer)) error {
	if x.asJSON {
		enc := json.NewEncoder(x.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(x.out)
	return nil
}

var statusNames = []string{"disconnected", "connecting", "ringing", "connected", "disconnecting", "finished"}

func (x *cli) do(cmd string, args []string) error {
	switch cmd {
	case "rooms":
		m, err := x.masterPassword()
		if err != nil {
			return err
		}
		r, err := x.di("listRooms", m)
		if err != nil {
			return err
		}
		if code(r[0]) != 200 {
			return explain("listRooms", code(r[0]), "")
		}
		names, _ := r[1].([]any)
		return x.print(names, func(w io.Writer) {
			for _, n := range names {
				fmt.Fprintln(w, n)
			}
		})
	case "info":
		room, pin, _, err := pinArgs(args, 0)
		if err != nil {
			return err
		}
		r, err := x.di("roomInfo", room, pin)
		if err != nil {
			return err
		}
		if code(r[0]) != 0 {
			return explain("roomInfo", code(r[0]), str(r[1]))
		}
		parts, _ := r[2].([]any)
		type row struct {
			CallTag       string `json:"call_tag"`
			Number        string `json:"number"`
			Status        int    `json:"status"`
			StatusName    string `json:"status_name"`
			Reason        string `json:"reason"`
			Muted         bool   `json:"muted"`
			ParticipantID string `json:"participant_id"`
		}
		rows := []row{}
		for _, p := range parts {
			f, _ := p.([]any)
			if len(f) < 6 {
				continue
			}
			st := code(f[2])
			name := "?"
			if st >= 0 && st < len(statusNames) {
				name = statusNames[st]
			}
			rows = append(rows, row{str(f[0]), str(f[1]), st, name, str(f[3]), code(f[4]) != 0, str(f[5])})
		}
		return x.print(rows, func(w io.Writer) {
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CALL TAG\tNUMBER\tSTATUS\tREASON\tMUTED\tPARTICIPANT")
			for _, r := range rows {
				muted := ""
				if r.Muted {
					muted = "muted"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.CallTag, r.Number, r.StatusName, r.Reason, muted, r.ParticipantID)
			}
			tw.Flush()
		})
	case "create":
		if len(args) < 1 {
			return usageError("create ROOM [SECONDS]")
		}
		call := []any{args[0]}
		if len(args) > 1 {
			var secs int
			if _, err := fmt.Sscanf(args[1], "%d", &secs); err != nil || secs <= 0 {
				return usageError("SECONDS must be a positive number")
			}
			call = append(call, secs)
		}
		r, err := x.di("roomCreate", call...)
		if err != nil {
			return err
		}
		if code(r[0]) != 0 {
			return explain("roomCreate", code(r[0]), str(r[1]))
		}
		return x.print(map[string]string{"room": args[0], "admin_pin": str(r[2])}, func(w io.Writer) {
			fmt.Fprintf(w, "room %s opened, admin PIN %s\n", args[0], str(r[2]))
		})
	case "delete":
		room, pin, _, err := pinArgs(args, 0)
		if err != nil {
			return err
		}
		return x.simple("roomDelete", room, pin)
	case "pin":
		if len(args) != 1 {
			return usageError("pin ROOM")
		}
		m, err := x.masterPassword()
		if err != nil {
			return err
		}
		r, err := x.di("getRoomPassword", m, args[0])
		if err != nil {
			return err
		}
		if code(r[0]) != 0 {
			return explain("getRoomPassword", code(r[0]), str(r[1]))
		}
		return x.print(map[string]string{"room": args[0], "admin_pin": str(r[1])}, func(w io.Writer) {
			fmt.Fprintln(w, str(r[1]))
		})
	case "setpin":
		room, pin, rest, err := pinArgs(args, 1)
		if err != nil || len(rest) != 1 {
			return usageError("setpin ROOM PIN NEWPIN")
		}
		return x.simple("changeRoomAdminpin", room, pin, rest[0])
	case "kick", "mute", "unmute":
		room, pin, rest, err := pinArgs(args, 1)
		if err != nil || len(rest) != 1 {
			return usageError(cmd + " ROOM PIN CALL_TAG")
		}
		fn := map[string]string{"kick": "kickout", "mute": "mute", "unmute": "unmute"}[cmd]
		return x.simple(fn, room, pin, rest[0])
	case "lock", "unlock", "unmuteall":
		room, pin, rest, err := pinArgs(args, 0)
		if err != nil || len(rest) != 0 {
			return usageError(cmd + " ROOM PIN")
		}
		fn := map[string]string{"lock": "roomLock", "unlock": "roomUnlock", "unmuteall": "roomUnmuteAll"}[cmd]
		return x.simple(fn, room, pin)
	case "muteall":
		room, pin, rest, err := pinArgs(args, 0)
		if err != nil || len(rest) > 1 {
			return usageError("muteall ROOM PIN [CALL_TAG]")
		}
		call := []any{room, pin}
		for _, tag := range rest {
			call = append(call, tag)
		}
		return x.simple("roomMuteAll", call...)
	case "participants":
		return x.participants(args)
	case "dialout":
		room, pin, rest, err := pinArgs(args, 4)
		if err != nil {
			return usageError("dialout ROOM PIN CALLEE FROM_USER DOMAIN AUTH_USER [AUTH_PASSWORD] [CALLEE_DOMAIN] [PARTICIPANT_ID]")
		}
		pwd := os.Getenv("WEBCONF_AUTH_PASSWORD")
		if len(rest) > 4 {
			pwd = rest[4]
		}
		call := []any{room, pin, rest[0], rest[1], rest[2], rest[3], pwd}
		if len(rest) > 5 {
			call = append(call, "", rest[5])
		}
		if len(rest) > 6 {
			call = append(call, rest[6])
		}
		r, err := x.di("dialout", call...)
		if err != nil {
			return err
		}
		if code(r[0]) != 0 {
			return explain("dialout", code(r[0]), str(r[1]))
		}
		return x.print(map[string]string{"call_tag": str(r[2])}, func(w io.Writer) { fmt.Fprintln(w, str(r[2])) })
	case "user":
		return x.user(args)
	case "events":
		return x.events(args)
	case "feedback":
		_, err := x.di("flushFeedback")
		return err
	case "status":
		var calls any
		if err := x.c.Call("calls", nil, &calls); err != nil {
			return fmt.Errorf("cannot reach the server: %w", err)
		}
		r, err := x.di("serverInfo")
		if err != nil {
			return err
		}
		return x.print(map[string]any{"calls": code(calls), "info": str(r[0])}, func(w io.Writer) {
			fmt.Fprintf(w, "Active calls: %d\n%s\n", code(calls), str(r[0]))
		})
	}
	return usageError(fmt.Sprintf("unknown command %q", cmd))
}

// simple runs a function whose reply is [code, message, si].
func (x *cli) simple(fn string, args ...any) error {
	r, err := x.di(fn, args...)
	if err != nil {
		return err
	}
	if code(r[0]) != 0 {
		return explain(fn, code(r[0]), str(r[1]))
	}
	return x.print(map[string]string{"result": "OK"}, func(w io.Writer) { fmt.Fprintln(w, "OK") })
}

// participants prints roomParticipants: [0, "OK", {"locked", "participants":
// [{call_tag, number, status, reason, muted, talking, participant_id}]}].
func (x *cli) participants(args []string) error {
	room, pin, rest, err := pinArgs(args, 0)
	if err != nil || len(rest) != 0 {
		return usageError("participants ROOM PIN")
	}
	r, err := x.di("roomParticipants", room, pin)
	if err != nil {
		return err
	}
	if code(r[0]) != 0 {
		return explain("roomParticipants", code(r[0]), str(r[1]))
	}
	type row struct {
		CallTag       string `json:"call_tag"`
		Number        string `json:"number"`
		Status        int    `json:"status"`
		Reason        string `json:"reason"`
		Muted         bool   `json:"muted"`
		Talking       bool   `json:"talking"`
		ParticipantID string `json:"participant_id"`
	}
	var v struct {
		Locked       bool  `json:"locked"`
		Participants []row `json:"participants"`
	}
	if len(r) < 3 {
		return fmt.Errorf("roomParticipants: short reply %v", r)
	}
	b, _ := json.Marshal(r[2]) // the XML-RPC struct, as decoded
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("roomParticipants: unexpected reply: %w", err)
	}
	if v.Participants == nil {
		v.Participants = []row{}
	}
	return x.print(v, func(w io.Writer) {
		lock := "unlocked"
		if v.Locked {
			lock = "locked"
		}
		fmt.Fprintf(w, "room %s is %s\n", room, lock)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CALL TAG\tNUMBER\tSTATUS\tMUTED\tTALKING\tPARTICIPANT")
		for _, p := range v.Participants {
			st := "?"
			if p.Status >= 0 && p.Status < len(statusNames) {
				st = statusNames[p.Status]
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.CallTag, p.Number, st, yes(p.Muted, "muted"), yes(p.Talking, "talking"), p.ParticipantID)
		}
		tw.Flush()
	})
}

func yes(v bool, s string) string {
	if v {
		return s
	}
	return ""
}
