package rpc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"webconf/sipapp"
	"webconf/sipapp/room"
)

// Options configure the control plane.
type Options struct {
	Signature         string   // server_signature: the <SIGNATURE> of the server-info string
	MasterPassword    string   // "" disables getRoomPassword and listRooms
	Private           bool     // private_rooms
	RoomSweepInterval int      // sweep every n-th roomCreate/dialout; <= 0 never
	ExportDI          bool     // register di(...)
	DirectExport      []string // modules whose functions are registered by name
	FeedbackFile      string   // "" = feedback is dropped
	FeedbackDir       string   // where resetFeedback may open files; default the feedback file's dir
	Log               *slog.Logger
	LogLevel          *slog.LevelVar // set_loglevel / get_loglevel; nil = a private one
}

// Service is the SEMS webconference control plane over a running server.
type Service struct {
	srv   *sipapp.Server
	reg   *room.Registry
	opt   Options
	log   *slog.Logger
	table *Table
	wc    map[string]func(ctx context.Context, args []any) []any
	fb    *feedback

	sweepMu sync.Mutex
	sweeps  int
}

// factory is the DI name of the webconference module.
const factory = "webconference"

// exported is the module's _list (spec 2.15), in SEMS's order. Only these
// and the room controls (controls.go, left out of _list) are registered as
// direct methods; the rest are reachable through di.
var exported = []string{
	"roomCreate", "roomDelete", "roomInfo", "dialout", "mute", "unmute",
	"kickout", "changeRoomAdminpin", "serverInfo", "vqConferenceFeedback",
	"vqCallFeedback", "vqRoomFeedback", "getRoomPassword", "listRooms", "findParticipant",
}

// New builds the method table for srv.
func New(srv *sipapp.Server, o Options) (*Service, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.LogLevel == nil {
		o.LogLevel = new(slog.LevelVar)
	}
	if o.Signature == "" {
		o.Signature = "webconf"
	}
	fb, err := openFeedback(o.FeedbackFile, o.FeedbackDir, o.Log)
	if err != nil {
		return nil, err
	}
	s := &Service{srv: srv, reg: srv.Registry(), opt: o, log: o.Log, table: NewTable(), fb: fb}
	s.wc = map[string]func(context.Context, []any) []any{
		"roomCreate":           s.roomCreate,
		"roomInfo":             s.roomInfo,
		"roomDelete":           s.roomDelete,
		"addParticipant":       s.addParticipant,
		"dialout":              s.dialout,
		"kickout":              s.callOp((*room.Registry).Kick),
		"mute":                 s.callOp((*room.Registry).Mute),
		"unmute":               s.callOp((*room.Registry).Unmute),
		"changeRoomAdminpin":   s.changeRoomAdminpin,
		"getRoomPassword":      s.getRoomPassword,
		"listRooms":            s.listRooms,
		"findParticipant":      s.findParticipant,
		"serverInfo":           nil, // answered by invoke, from one reading
		"help":                 func(context.Context, []any) []any { return []any{"help text goes here"} },
		"vqRoomFeedback":       s.vqRoomFeedback,
		"vqCallFeedback":       s.vqCallFeedback,
		"vqConferenceFeedback": s.vqConferenceFeedback,
		"resetFeedback":        s.resetFeedback,
		"flushFeedback":        func(context.Context, []any) []any { s.fb.Flush(); return []any{} },
	}
	s.addControls()
	s.registerBuiltins()
	if o.ExportDI {
		s.table.Register("di", s.di)
	}
	for _, mod := range o.DirectExport {
		if strings.TrimSpace(mod) != factory {
			continue
		}
		// xmlrpc2di registers the plain name unless taken, and always
		// the module-qualified one (spec 1.3).
		for _, name := range append(exported[:len(exported):len(exported)], controls...) {
			m := s.direct(name)
			s.table.Register(name, m)
			s.table.Register(factory+"."+name, m)
		}
	}
	return s, nil
}

// Table is the method table the codecs serve.
func (s *Service) Table() *Table { return s.table }

// Close flushes and closes the feedback file.
func (s *Service) Close() { s.fb.Close() }

// FeedbackErrors is how many writes, flushes and closes of the feedback
// file failed (each is logged too).
func (s *Service) FeedbackErrors() uint64 { return s.fb.Errors() }

// Info is the server-info string every webconference reply ends with.
func (s *Service) Info() string {
	total, failed, secs := s.srv.Stats().Snapshot()
	// "Server: %s calls: %d active/%d total/%d connect/%d min", without
	// fmt: every webconference reply carries it.
	var a [128]byte
	b := append(a[:0], "Server: "...)
	b = append(b, s.opt.Signature...)
	b = append(b, " calls: "...)
	b = strconv.AppendInt(b, int64(s.srv.ActiveCalls()), 10)
	b = append(b, " active/"...)
	b = strconv.AppendUint(b, total, 10)
	b = append(b, " total/"...)
	b = strconv.AppendUint(b, total-failed, 10)
	b = append(b, " connect/"...)
	b = strconv.AppendUint(b, secs/60, 10)
	b = append(b, " min"...)
	return string(b)
}

// arity is the argument signature SEMS checks for each function.
var arity = map[string]string{
	"roomCreate": "s", "roomInfo": "ss", "roomDelete": "ss", "addParticipant": "sss",
	"dialout": "sssssss", "kickout": "sss", "mute": "sss", "unmute": "sss",
	"changeRoomAdminpin": "sss", "getRoomPassword": "ss", "listRooms": "s",
	"findParticipant": "s", "vqRoomFeedback": "ssi", "vqCallFeedback": "sssi",
	"vqConferenceFeedback": "ssssi", "resetFeedback": "s",
}

// invoke runs a webconference function the way SEMS's DI dispatcher does:
// check the arguments, run, append the server-info string (except to
// _list).
func (s *Service) invoke(ctx context.Context, fn string, args []any) (any, error) {
	if fn == "_list" {
		out := make([]any, len(exported))
		for i, n := range exported {
			out[i] = n
		}
		return out, nil
	}
	f, ok := s.wc[fn]
	if !ok {
		return nil, &Fault{Code: 504, Message: "Exception: AmDynInvoke::NotImplemented: " + fn, Param: -1, Kind: KindUnknownMethod}
	}
	spec, ok := arity[fn]
	if !ok {
		spec = controlArity[fn]
	}
	if err := checkArgs(args, spec); err != nil {
		return nil, err
	}
	if fn == "serverInfo" {
		// SEMS pushes the string and its dispatcher appends it again: one
		// reading serves both here, as two can differ while calls end.
		si := s.Info()
		return []any{si, si}, nil
	}
	if hangsUp[fn] {
		// SEMS hangs these calls up on each session's own thread after
		// the reply is built, so its server-info still counts them. Our
		// hang-ups are as asynchronous but can finish first on loopback;
		// the snapshot taken before keeps the reply the same every time.
		si := s.Info()
		return append(f(ctx, args), si), nil
	}
	return append(f(ctx, args), s.Info()), nil
}

// hangsUp names the functions that end calls.
var hangsUp = map[string]bool{"roomDelete": true, "kickout": true}

func (s *Service) direct(fn string) Method {
	return func(ctx context.Context, args []any) (any, error) { return s.invoke(ctx, fn, args) }
}

// di is xmlrpc2di's generic entry: di(factory, function, args...).
func (s *Service) di(ctx context.Context, args []any) (any, error) {
	if len(args) < 2 {
		return nil, &Fault{Code: 400, Message: "need at least factory name and function name to call", Param: -1, Kind: KindParams}
	}
	fac, ok1 := args[0].(string)
	fn, ok2 := args[1].(string)
	if !ok1 || !ok2 {
		return nil, &Fault{Code: 400, Message: "need at least factory name and function name to call", Param: 0, Kind: KindParams}
	}
	if fac != factory {
		return nil, &Fault{Code: 500, Message: "could not get factory", Param: 0, Kind: KindUnknownMethod}
	}
	res, err := s.invoke(ctx, fn, args[2:])
	var f *Fault
	if errors.As(err, &f) && f.Param >= 0 {
		f.Param += 2 // name the argument as the caller counts it
	}
	return res, err
}

// sweep runs SEMS's periodic sweep on every n-th roomCreate/dialout.
func (s *Service) sweep() {
	n := s.opt.RoomSweepInterval
	if n <= 0 {
		return
	}
	s.sweepMu.Lock()
	s.sweeps++
	due := s.sweeps%n == 0
	s.sweepMu.Unlock()
	if due {
		s.reg.Sweep()
	}
}

const msgWrongPin = "wrong adminpin or inexisting room"

// msgInternal answers a request whose change the store refused: nothing
// was changed (SEMS's own "internal error", as dialout's).
const msgInternal = "internal error"

// failMsg is the message of a getRoom failure: the store's refusal is an
// internal error, anything else the wrong-PIN reply.
func failMsg(err error) string {
	if errors.Is(err, room.ErrStore) {
		return msgInternal
	}
	return msgWrongPin
}

func (s *Service) roomCreate(_ context.Context, args []any) []any {
	s.sweep()
	timeout := 0
	if len(args) > 1 {
		if t, ok := args[1].(int); ok {
			timeout = t
		}
	}
	pin, err := s.reg.Create(str(args, 0), timeout)
	switch {
	case errors.Is(err, room.ErrTooManyRooms):
		return []any{1, "too many rooms", ""}
	case errors.Is(err, room.ErrStore):
		return []any{1, msgInternal, ""}
	case err != nil:
		return []any{1, "room already opened", ""}
	}
	return []any{0, "OK", pin}
}

// authorize is the getRoom rule behind the failure budgets: a banned
// client gets the wrong-PIN reply without a check (the same reply as for
// an unknown room, so a ban tells a guesser nothing); a room under attack
// answers only after room_tarpit; every wrong PIN is charged to the client
// and the room.
func (s *Service) authorize(ctx context.Context, room, pin string) error {
	return s.guarded(ctx, room, func() error { return s.reg.Authorize(room, pin) })
}

func (s *Service) guarded(ctx context.Context, name string, check func() error) error {
	g := s.srv.Guards()
	peer := Peer(ctx)
	if g.RPC.Banned(peer) {
		return room.ErrWrongPin
	}
	if g.Rooms.Banned(name) {
		t := time.NewTimer(g.Tarpit)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	err := check()
	if errors.Is(err, room.ErrWrongPin) {
		if g.RPC.Fail(peer) {
			s.log.Warn("control client banned after too many wrong admin PINs", "client", peer)
		}
		if g.Rooms.Fail(name) {
			s.log.Warn("alarm: too many wrong admin PINs for one room; slowing it down", "room", name)
		}
	}
	return err
}

func (s *Service) roomInfo(ctx context.Context, args []any) []any {
	room := str(args, 0)
	if err := s.authorize(ctx, room, str(args, 1)); err != nil {
		return []any{1, failMsg(err), []any{}}
	}
	info, _ := s.reg.Room(room)
	parts := make([]any, 0, len(info.Participants))
	for _, p := range info.Participants {
		muted := 0
		if p.Muted {
			muted = 1
		}
		parts = append(parts, []any{p.CallTag, p.Number, int(p.Status), p.Reason, muted, p.ID})
	}
	return []any{0, "OK", parts}
}

func (s *Service) roomDelete(ctx context.Context, args []any) []any {
	name, pin := str(args, 0), str(args, 1)
	switch err := s.guarded(ctx, name, func() error { return s.reg.Delete(name, pin) }); {
	case err == nil:
		return []any{0, "OK"}
	case errors.Is(err, room.ErrNoRoom):
		return []any{2, "room does not exist\n"}
	case errors.Is(err, room.ErrStore):
		return []any{1, msgInternal}
	default:
		return []any{1, msgWrongPin}
	}
}

func (s *Service) addParticipant(_ context.Context, args []any) []any {
	if err := s.reg.AddParticipant(str(args, 0), str(args, 1), str(args, 2)); err != nil {
		if errors.Is(err, room.ErrStore) {
			// Its codes are HTTP-like (200, 400), so a refused write is 500.
			return []any{500, msgInternal}
		}
		return []any{400, "Failed"}
	}
	return []any{200, "OK"}
}

func (s *Service) dialout(ctx context.Context, args []any) []any {
	s.sweep()
	room, pin := str(args, 0), str(args, 1)
	if err := s.authorize(ctx, room, pin); err != nil {
		return []any{1, failMsg(err), ""}
	}
	domain := str(args, 4)
	req := sipapp.DialRequest{
		Room: room, Callee: str(args, 2), FromUser: str(args, 3), Domain: domain,
		AuthUser: str(args, 5), AuthPwd: str(args, 6),
		Headers:       dialHeaders(args),
		CalleeDomain:  optStr(args, 8, domain),
		ParticipantID: optStr(args, 9, ""),
	}
	tag, err := s.srv.Dialout(ctx, req)
	switch {
	case err == nil:
		return []any{0, "OK", tag}
	case errors.Is(err, sipapp.ErrDialoutNotAllowed):
		s.log.Warn("dialout refused", "room", room, "callee", req.Callee+"@"+req.CalleeDomain, "err", err)
		return []any{1, "dialout not allowed", ""}
	default:
		s.log.Warn("dialout failed", "room", room, "err", err)
		return []any{1, msgInternal, ""}
	}
}

// dialHeaders turns dialout's headers argument into header lines: '|'
// separates lines (spec 2.5); "" or a non-string means none.
func dialHeaders(args []any) []string {
	h := optStr(args, 7, "")
	if h == "" {
		return nil
	}
	var lines []string
	for _, l := range strings.Split(h, "|") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// callOp makes kickout, mute and unmute: the getRoom rule, then the call.
func (s *Service) callOp(op func(*room.Registry, string, string) error) func(context.Context, []any) []any {
	return func(ctx context.Context, args []any) []any {
		room := str(args, 0)
		if err := s.authorize(ctx, room, str(args, 1)); err != nil {
			return []any{1, failMsg(err)}
		}
		if err := op(s.reg, room, str(args, 2)); err != nil {
			return []any{2, "call does not exist"}
		}
		return []any{0, "OK"}
	}
}

func (s *Service) changeRoomAdminpin(ctx context.Context, args []any) []any {
	room := str(args, 0)
	if err := s.guarded(ctx, room, func() error { return s.reg.ChangePin(room, str(args, 1), str(args, 2)) }); err != nil {
		return []any{1, failMsg(err)}
	}
	return []any{0, "OK"}
}

// master checks the master password in constant time; unset never
// passes; a banned client never passes, and every failure is charged.
func (s *Service) master(ctx context.Context, pwd string) bool {
	g := s.srv.Guards()
	peer := Peer(ctx)
	if g.RPC.Banned(peer) {
		return false
	}
	ok := s.opt.MasterPassword != "" &&
		subtle.ConstantTimeCompare([]byte(pwd), []byte(s.opt.MasterPassword)) == 1
	if !ok && g.RPC.Fail(peer) {
		s.log.Warn("control client banned after too many wrong master passwords", "client", peer)
	}
	return ok
}

func (s *Service) getRoomPassword(ctx context.Context, args []any) []any {
	if !s.master(ctx, str(args, 0)) {
		return []any{403, "Wrong Master Password."}
	}
	pin, ok := s.reg.Password(str(args, 1))
	if !ok {
		return []any{404, "Room does not exist."}
	}
	return []any{0, pin}
}

func (s *Service) listRooms(ctx context.Context, args []any) []any {
	if !s.master(ctx, str(args, 0)) {
		return []any{407, []any{"Wrong Master Password."}}
	}
	return []any{200, strings2any(s.reg.Rooms())}
}

// findParticipant needs no PIN, but the participant ID it looks up is one
// (room_pin_split makes it the caller's personal PIN): a lookup that finds
// nothing is a wrong PIN, charged to the client's rpc_failures budget as a
// wrong admin PIN is, and a banned client finds nothing whatever it asks,
// the same reply as for a wrong ID.
func (s *Service) findParticipant(ctx context.Context, args []any) []any {
	g := s.srv.Guards()
	peer := Peer(ctx)
	if g.RPC.Banned(peer) {
		return []any{[]any{}}
	}
	rooms := s.reg.FindParticipant(str(args, 0))
	if len(rooms) == 0 && g.RPC.Fail(peer) {
		s.log.Warn("control client banned after too many unknown participant IDs", "client", peer)
	}
	return []any{strings2any(rooms)}
}

func (s *Service) vqRoomFeedback(_ context.Context, args []any) []any {
	s.fb.line("RO "+str(args, 0), str(args, 1), fmt.Sprint(num(args, 2)), s.fb.ts())
	return []any{0, "OK"}
}

func (s *Service) vqCallFeedback(_ context.Context, args []any) []any {
	s.fb.line("CA", str(args, 0), str(args, 1), str(args, 2), fmt.Sprint(num(args, 3)), s.fb.ts())
	return []any{0, "OK"}
}

func (s *Service) vqConferenceFeedback(_ context.Context, args []any) []any {
	// SEMS writes the opinion before sender and comment (spec 7.1).
	s.fb.line("CO", str(args, 0), str(args, 1), fmt.Sprint(num(args, 4)), str(args, 2), str(args, 3), s.fb.ts())
	return []any{0, "OK"}
}

func (s *Service) resetFeedback(_ context.Context, args []any) []any {
	code, msg := s.fb.reset(str(args, 0))
	if code == -1 {
		s.log.Warn("resetFeedback refused or failed; the current feedback file stays open", "file", str(args, 0))
	}
	return []any{code, msg}
}

func strings2any(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}
