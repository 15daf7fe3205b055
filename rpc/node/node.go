// Package node wires one webconf server from its config: the store, the
// prompts, the SIP application and the control plane's listeners. The
// webconfd command and the end-to-end tests both start servers through it.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"webconf/conf"
	"webconf/prompts"
	"webconf/rpc"
	"webconf/rpc/events"
	"webconf/rpc/jsonrpc"
	"webconf/rpc/rest"
	"webconf/rpc/xmlrpc"
	"webconf/sipapp"
	"webconf/sipapp/meeting"
	"webconf/sipapp/notify"
	"webconf/sipapp/store"
	"webconf/sipapp/webrtc"
)

// Node is a running server.
type Node struct {
	SIP *sipapp.Server
	RPC *rpc.Service

	log      *slog.Logger
	store    store.Store
	outbox   *notify.Outbox // nil: no invitations or reminders
	rpcLn    net.Listener
	xmlrpc   *xmlrpc.Server
	httpLn   net.Listener
	http     *http.Server
	rest     *rest.API
	webrtc   *webrtc.Factory // nil: [webrtc] enabled = no
	bus      *events.Bus
	roomEv   *events.RoomEvents
	stopHard chan struct{}
	statsDir string
}

// Options beyond the config file.
type Options struct {
	Log      *slog.Logger
	LogLevel *slog.LevelVar // shared with the logger, for set_loglevel
	Prompts  *prompts.Set   // nil: load from the config (built-in by default)
	// Now is the room registry's clock (room and record expiry); nil is
	// time.Now. For tests.
	Now func() time.Time
	// WrapStore, when set, wraps the store opened under data_dir (the
	// node closes what it returns). For tests: a store that refuses
	// writes on demand (sipapp/store/storetest).
	WrapStore func(store.Store) store.Store
	// Notify are the outbox's renderer, calendar writer and transports;
	// nil fields come from the config (templates, [mail], [sms], [push]),
	// and a service the config does not set up is not available: its
	// messages fail.
	Notify NotifyParts
	// ConfigDir is the config file's folder: a relative [meetings]
	// templatePath is found there ("" = the working directory).
	ConfigDir string
}

// NotifyParts are what the invitations outbox renders and sends with.
type NotifyParts struct {
	Renderer notify.Renderer
	Calendar notify.CalendarWriter
	Mailer   notify.Mailer
	SMS      notify.SMSSender
	Pusher   notify.Pusher
	// Now and After are the outbox's clock (nil: the real one). For tests.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// RetryBase is the outbox's backoff base, the delay after a first
	// failed send, doubling after each (0: notify's 5 s). A test knob: an
	// end-to-end test of retries need not wait 5 s, 10 s, ...
	RetryBase time.Duration
}

// DBFile is the database's name inside data_dir.
const DBFile = "webconf.db"

// Start opens the store under data_dir, settles the master password (made
// and kept in data_dir when the config leaves it empty, see
// masterPassword), starts SIP and, with run_server, the XML-RPC (and
// JSON-RPC) listener.
func Start(cfg *conf.Config, o Options) (*Node, error) {
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	set := o.Prompts
	if set == nil {
		var err error
		if set, err = prompts.Load(sipapp.PromptFiles(cfg), log); err != nil {
			return nil, err
		}
	}
	if err := prepareStatsDir(cfg.Webconference.StatsDir); err != nil {
		return nil, err
	}
	var st store.Store
	st, err := store.OpenSQLite(filepath.Join(cfg.Server.DataDir, DBFile))
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if o.WrapStore != nil {
		st = o.WrapStore(st)
	}
	master, err := masterPassword(cfg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	origin, err := nodeUUID(cfg.Server.DataDir)
	if err != nil {
		st.Close()
		return nil, err
	}
	n := &Node{log: log, store: st, stopHard: make(chan struct{}), statsDir: cfg.Webconference.StatsDir}
	n.bus = events.New(events.Options{Origin: origin, RingSize: cfg.HTTP.EventsRingSize, ClientQueue: cfg.HTTP.EventsClientQueue, Log: log})
	n.roomEv = events.NewRoomEvents(n.bus, log)
	opt := sipapp.OptionsFromConfig(cfg, set, log)
	opt.Store = st
	opt.StatsDir = cfg.Webconference.StatsDir
	opt.Now = o.Now
	opt.Events = n.roomEv
	opt.CallEvents = events.NewCallEvents(n.bus)
	if n.outbox, err = newOutbox(cfg, st, o, log); err != nil {
		n.roomEv.Close()
		st.Close()
		return nil, err
	}
	if n.outbox != nil {
		opt.Meetings.Outbox = n.outbox
	}
	if n.SIP, err = sipapp.New(opt); err != nil {
		n.roomEv.Close()
		st.Close()
		return nil, err
	}
	n.roomEv.SetMeetingOf(meetingOf(n.SIP.Meetings()))
	w := cfg.Webconference
	n.RPC, err = rpc.New(n.SIP, rpc.Options{
		Signature: w.ServerSignature, MasterPassword: master, Private: w.PrivateRooms,
		RoomSweepInterval: w.RoomSweepInterval, ExportDI: cfg.XMLRPC.ExportDI, DirectExport: cfg.XMLRPC.DirectExport,
		FeedbackFile: w.FeedbackFile, FeedbackDir: feedbackDir(w.FeedbackFile, cfg.Server.DataDir),
		Log: log, LogLevel: o.LogLevel,
	})
	if err != nil {
		n.roomEv.Close()
		st.Close()
		return nil, err
	}
	if err := n.SIP.Start(); err != nil {
		n.RPC.Close()
		n.roomEv.Close()
		st.Close()
		return nil, err
	}
	if cfg.XMLRPC.RunServer {
		addr := net.JoinHostPort(cfg.XMLRPC.ServerIP, strconv.Itoa(cfg.XMLRPC.Port))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("xmlrpc: listen %s: %w", addr, err)
		}
		n.rpcLn = ln
		// conf's 0 turns a bound off; xmlrpc's 0 is its default.
		xo := xmlrpc.Options{Log: log, MaxConnsPerSource: -1, HeaderTimeout: -1, TrustedProxies: cfg.HTTP.TrustedProxies}
		if v := cfg.XMLRPC.MaxConnsPerSource; v > 0 {
			xo.MaxConnsPerSource = v
		}
		if v := cfg.XMLRPC.HeaderTimeout; v > 0 {
			xo.HeaderTimeout = v
		}
		if cfg.XMLRPC.JSONRPC {
			table := n.RPC.Table()
			xo.JSON = func(ctx context.Context, body []byte) ([]byte, bool) { return jsonrpc.Handle(ctx, table, body) }
		}
		n.xmlrpc = xmlrpc.NewServer(n.RPC.Table(), xo)
	}
	if cfg.WebRTC.Enabled {
		if n.webrtc, err = newWebRTC(cfg, n.SIP.Addr(), log); err != nil {
			n.Shutdown(context.Background())
			return nil, err
		}
	}
	m := cfg.Meetings
	ro := rest.Options{
		SIP: n.SIP, MasterPassword: master, LinkHost: m.LinkHost, LinkFormat: m.LinkFormat,
		PSTNExtension: m.PSTNExtension, PublicRooms: m.PublicRooms, SIPHost: sipHost(cfg.Server.PublicIP, n.SIP.Addr()), Log: log,
		TrustedProxies: cfg.HTTP.TrustedProxies, Events: n.bus, Outbox: n.outbox, Now: o.Now, WebRTC: n.webrtc,
		MaxBrowsers: cfg.WebRTC.MaxBrowsers, MaxBrowsersPerSource: cfg.WebRTC.MaxBrowsersPerSource,
	}
	if cfg.XMLRPC.JSONRPC {
		// The same table as the XML-RPC port's /jsonrpc, on the HTTP
		// origin (POST /api/v1/jsonrpc), for the console.
		table := n.RPC.Table()
		ro.JSONRPC = func(ctx context.Context, body []byte) ([]byte, bool) { return jsonrpc.Handle(ctx, table, body) }
	}
	n.rest = rest.New(ro)
	if n.outbox != nil {
		n.outbox.Start()
	}
	if cfg.HTTP.Listen != "" {
		if err := n.startHTTP(cfg.HTTP.Listen); err != nil {
			n.Shutdown(context.Background())
			return nil, fmt.Errorf("http: listen %s: %w", cfg.HTTP.Listen, err)
		}
	}
	if n.xmlrpc != nil {
		// Served last: the table's metrics hook (startHTTP) and everything
		// else set up above must happen before the first request's
		// goroutine reads it (the race detector saw Observe's write race
		// with a call). Connections made meanwhile wait in the backlog.
		ln := n.rpcLn
		go func() {
			if err := n.xmlrpc.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Error("xmlrpc server stopped", "err", err)
			}
		}()
		log.Info("xmlrpc listening", "addr", ln.Addr().String(), "jsonrpc", cfg.XMLRPC.JSONRPC)
	}
	go n.hardExpiry()
	return n, nil
}

// prepareStatsDir creates stats_dir as OpenSQLite creates data_dir, and
// makes sure a stats file can be written there: a directory that is missing
// or not writable would otherwise show only as an error at every call's
// end and at shutdown. "" (stats not persistent) needs nothing.
func prepareStatsDir(dir string) error {
	if dir == "" {
		return nil
	}
	// 0755: the stats are not secret, and monitoring that reads SEMS's
	// file may run as another user (WriteStatsFile makes the file 0644).
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("[webconference] stats_dir %q: cannot create it: %w", dir, err)
	}
	// The probe is created the way WriteStatsFile creates its temporary
	// file, so that what works here works there.
	f, err := os.CreateTemp(dir, "."+store.StatsFileName+".*.probe")
	if err != nil {
		return fmt.Errorf("[webconference] stats_dir %q: cannot write there: %w", dir, err)
	}
	name := f.Name()
	err = f.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("[webconference] stats_dir %q: cannot write there: %w", dir, err)
	}
	return nil
}

// sipHost is public_ip with the SIP port we listen on, for SIP URIs.
func sipHost(publicIP, listen string) string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return publicIP
	}
	return net.JoinHostPort(publicIP, port)
}

// feedbackDir is where resetFeedback may open files: the feedback file's
// directory, or data_dir when no feedback file is configured.
func feedbackDir(file, dataDir string) string {
	if file != "" {
		return filepath.Dir(file)
	}
	return dataDir
}

// sweepEvery is how many hard-expiry ticks pass between two sweeps of
// expired records and rooms.
const sweepEvery = 10

// hardExpiry deletes rooms past their roomCreate timeout once a second
// (support_rooms_timeout), as SEMS's cleaner thread does, and every ten
// seconds sweeps expired participant records and soft-expired rooms,
// which SEMS leaves to its control calls (see Registry.Sweep).
func (n *Node) hardExpiry() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for tick := 1; ; tick++ {
		select {
		case <-n.stopHard:
			return
		case <-t.C:
			reg := n.SIP.Registry()
			for _, room := range reg.ExpireHard() {
				n.log.Info("room expired", "room", room)
			}
			if tick%sweepEvery == 0 {
				reg.Sweep()
			}
		}
	}
}

// Events is the node's event bus.
func (n *Node) Events() *events.Bus { return n.bus }

// NodeUUID is the node's UUID (data_dir/node_uuid), its events' origin_uuid.
func (n *Node) NodeUUID() string { return n.bus.Origin() }

// SyncRoomEvents returns once the room events queued so far are on the
// bus (room events are published by their adapter's goroutine).
func (n *Node) SyncRoomEvents() { n.roomEv.Sync() }

// meetingOf finds the meeting that owns a room, for the room events.
func meetingOf(b *meeting.Book) events.MeetingOf {
	return func(room string) (string, []string, bool) {
		g, ok := b.GateFor(room)
		if !ok {
			return "", nil, false
		}
		m, ok := b.Meeting(g.MeetingUUID)
		if !ok {
			return "", nil, false
		}
		return m.UUID, m.OwnerUUIDs, true
	}
}

// RPCAddr is the XML-RPC listener's address ("" when not running).
func (n *Node) RPCAddr() string {
	if n.rpcLn == nil {
		return ""
	}
	return n.rpcLn.Addr().String()
}

// Shutdown hangs up every call, stops the listeners and closes the store.
func (n *Node) Shutdown(ctx context.Context) error {
	select {
	case <-n.stopHard:
	default:
		close(n.stopHard)
	}
	var errs []error
	if n.xmlrpc != nil {
		errs = append(errs, n.xmlrpc.Close())
	}
	if n.rpcLn != nil {
		// Start may fail before the XML-RPC listener is served; Close
		// above closes only the listeners it serves.
		if err := n.rpcLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("xmlrpc: close listener: %w", err))
		}
	}
	if n.http != nil {
		errs = append(errs, n.http.Close())
	}
	errs = append(errs, n.SIP.Shutdown(ctx))
	if n.webrtc != nil {
		n.webrtc.Close() // after the browsers' legs ended with their calls
	}
	if n.outbox != nil {
		n.outbox.Close() // before the store: a send under way goes again at the next start
	}
	// The calls' last events go out, then the streams end (1001).
	n.roomEv.Close()
	n.bus.Close()
	n.RPC.Close() // flushes the feedback file
	if n.statsDir != "" {
		total, failed, secs := n.SIP.Stats().Snapshot()
		if err := store.WriteStatsFile(n.statsDir, store.Stats{Total: total, Failed: failed, Seconds: secs}); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, n.store.Close())
	return errors.Join(errs...)
}
