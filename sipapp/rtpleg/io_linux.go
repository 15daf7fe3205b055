//go:build linux

package rtpleg

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchLen is how many datagrams one recvmmsg or sendmmsg moves at most.
const batchLen = 64

// The media system calls (sendto, recvfrom, recvmmsg, sendmmsg, a
// zero-timeout epoll_wait) never block: MSG_DONTWAIT, or a timeout of 0.
// They go through RawSyscall6, which leaves the goroutine's P running
// where Syscall6 marks it in a system call: a mixer worker makes some
// 25,000 of them a second per 500 callers, and a P seen in one system
// call twice 20 us apart (a call the kernel preempted on a busy machine)
// is handed to another thread by the runtime's sysmon, which then keeps
// polling every 20 us (measured under SIPp: sysmon's nanosleeps were 6 %
// of the server's CPU, with a thread wake-up per hand-off).
func rawSyscall6(trap, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, unix.Errno) {
	n, _, errno := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
	return n, errno
}

// maxReadBatches bounds what a shared socket's reader takes per tick
// (4,096 datagrams, about 4 ms of work): a flood waits for the next tick,
// or the kernel drops it, instead of holding up the mix. It is twice what
// 2,000 callers on one socket send in a tick, so that a worker that fell
// a tick behind catches up at once: at 1,024, 1,000 callers a socket
// never drained a backlog, and the kernel dropped a third of their audio.
const maxReadBatches = 64

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// mmsgBatch is the memory of one recvmmsg or sendmmsg: each header points
// at its own buffer and address once, for good (the batch never moves: it
// is allocated on its own).
type mmsgBatch struct {
	hdrs  [batchLen]mmsghdr
	iovs  [batchLen]unix.Iovec
	names [batchLen]unix.RawSockaddrInet6 // large enough for IPv4 too
	bufs  [batchLen][maxPacket]byte
	n     int // queued datagrams (send)
}

func newBatch() *mmsgBatch {
	b := new(mmsgBatch)
	for i := range b.hdrs {
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(maxPacket)
		h := &b.hdrs[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	return b
}

// recv reads up to len(hdrs) datagrams without blocking; 0 when none.
func (b *mmsgBatch) recv(fd uintptr, max int) int {
	for i := 0; i < max; i++ {
		b.hdrs[i].hdr.Namelen = unix.SizeofSockaddrInet6
		b.hdrs[i].hdr.Flags = 0
		b.iovs[i].SetLen(maxPacket)
	}
	n, errno := rawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
		uintptr(max), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// packet is datagram i of a receive and where it came from.
func (b *mmsgBatch) packet(i int) ([]byte, netip.AddrPort) {
	n := int(b.hdrs[i].n)
	if n > maxPacket {
		n = maxPacket
	}
	return b.bufs[i][:n], sockaddrAddrPort((*syscall.RawSockaddrAny)(unsafe.Pointer(&b.names[i])))
}

// sendBatch is one worker's queue of packets for one shared socket: only
// that worker's goroutine fills and flushes it.
type sendBatch struct {
	sock *Socket
	b    *mmsgBatch
}

// slot is the buffer the next packet is marshalled into.
func (s *sendBatch) slot() []byte { return s.b.bufs[s.b.n][:] }

// commit queues the n bytes written into slot() for dst, and flushes when
// the batch is full; false when dst cannot be reached from the socket.
func (s *sendBatch) commit(n int, dst netip.AddrPort) bool {
	b := s.b
	i := b.n
	if !s.sock.putName(&b.names[i], &b.hdrs[i].hdr, dst) {
		return false
	}
	b.iovs[i].SetLen(n)
	b.n++
	if b.n == batchLen {
		s.flush()
	}
	return true
}

// flush sends what is queued with sendmmsg (more calls only when the
// kernel takes part of it).
func (s *sendBatch) flush() {
	b := s.b
	for off := 0; off < b.n; {
		n, errno := rawSyscall6(unix.SYS_SENDMMSG, uintptr(s.sock.fd),
			uintptr(unsafe.Pointer(&b.hdrs[off])), uintptr(b.n-off), unix.MSG_DONTWAIT, 0, 0)
		switch {
		case errno == unix.EINTR:
			continue
		case errno != 0 || n == 0:
			off++ // the first one failed (a full buffer, an unroutable address): drop it
		default:
			off += int(n)
		}
	}
	b.n = 0
}

// sharedBuffer is the socket buffer size a shared socket asks for.
const sharedBuffer = 4 << 20

// Socket is a shared RTP socket: many calls advertise its port, and the
// worker that owns it reads it at the start of each tick (recvmmsg) and
// hands each datagram to a leg by its source address (demux).
type Socket struct {
	id int
	// fd is made with socket(2)/bind(2), outside the Go runtime's poller,
	// as a per-call leg's is (ownSock): in the runtime's epoll set every
	// batch in and every send's completion would wake its netpoller for
	// nothing. Valid until Hub.Close, after the workers stopped.
	fd   int
	port uint16
	v6   bool // AF_INET6 socket: destinations go out as IPv6 (IPv4-mapped)
	pool *Pool

	// txMu guards txName, sendTo's address scratch (sendTo is rare: a leg
	// no worker mixes yet; a stack address would escape to the heap).
	txMu   sync.Mutex
	txName unix.RawSockaddrInet6

	rx *mmsgBatch // the owner's receive batch
	// clearedAt is when the last read that emptied the socket began (unix
	// nanos; reader-owned): what is read after it arrived after that.
	clearedAt int64

	mu       sync.Mutex // held by the reader for a whole batch, by Open/Update/Close briefly
	bySrc    map[netip.AddrPort]*Leg
	byRemote map[netip.AddrPort]*Leg
	claims   map[netip.Addr][]*Leg
	legs     int

	foreign atomic.Uint64 // datagrams no leg would take
}

// sharedState is a leg's place in its socket's maps (under sock.mu).
type sharedState struct {
	src     netip.AddrPort // its key in bySrc
	remote  netip.AddrPort // its key in byRemote (the SDP address it owns)
	claims  [2]netip.Addr  // its keys in claims: the signalling IP, the SDP IP
	settled bool           // reader-owned: nothing read now can predate the answer
}

// settled reports whether the leg's packets from the current read count
// (the reader, in handle, once the leg is answered). A per-call socket
// drops what it queued before the answer at its next read
// (discardQueued); a shared socket cannot drop the queue of other calls,
// so the leg drops its packets until a read that began after the answer
// has emptied the socket: everything read after that arrived after it.
func (s *Socket) settled(l *Leg) bool {
	if !l.shared.settled {
		l.shared.settled = s.clearedAt >= l.answeredAt.Load()
	}
	return l.shared.settled
}

// Port is the socket's UDP port.
func (s *Socket) Port() int { return int(s.port) }

// Foreign counts datagrams that reached the socket and that no leg took.
func (s *Socket) Foreign() uint64 { return s.foreign.Load() }

func newSocket(pool *Pool, id int) (*Socket, error) {
	fd, port, v6, err := pool.listenFD()
	if err != nil {
		return nil, err
	}
	s := &Socket{
		id: id, fd: fd, port: port, v6: v6, pool: pool, rx: newBatch(),
		bySrc: map[netip.AddrPort]*Leg{}, byRemote: map[netip.AddrPort]*Leg{}, claims: map[netip.Addr][]*Leg{},
	}
	// A tick's packets of every call on the socket wait in its buffer
	// (the default, about 200 KB, holds about 250 of them): ask for more;
	// the kernel caps it at net.core.rmem_max / wmem_max.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sharedBuffer)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sharedBuffer)
	return s, nil
}

func (s *Socket) close() {
	unix.Close(s.fd)
	s.pool.release(s.port)
}

// putName writes dst as the socket's family wants it.
func (s *Socket) putName(name *unix.RawSockaddrInet6, h *unix.Msghdr, dst netip.AddrPort) bool {
	n, ok := putName(s.v6, name, dst)
	h.Namelen = n
	return ok
}

// sendTo sends one packet at once (a leg no worker mixes yet).
func (s *Socket) sendTo(pkt []byte, dst netip.AddrPort) bool {
	if len(pkt) == 0 {
		return false
	}
	s.txMu.Lock()
	defer s.txMu.Unlock()
	nl, ok := putName(s.v6, &s.txName, dst)
	if !ok {
		return false
	}
	_, errno := rawSyscall6(unix.SYS_SENDTO, uintptr(s.fd), uintptr(unsafe.Pointer(&pkt[0])), uintptr(len(pkt)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&s.txName)), uintptr(nl))
	return errno == 0
}

// add puts a new leg on the socket.
func (s *Socket) add(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legs++
	l.shared.claims[0] = l.signal
	s.addClaim(l, l.signal)
}

// remove takes a leg off the socket (Close).
func (s *Socket) remove(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legs--
	st := &l.shared
	if st.src.IsValid() && s.bySrc[st.src] == l {
		delete(s.bySrc, st.src)
	}
	s.dropRemote(l)
	for i := range st.claims {
		s.dropClaim(l, st.claims[i])
		st.claims[i] = netip.Addr{}
	}
}

// remoteChanged follows a new SDP address (Update).
func (s *Socket) remoteChanged(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropRemote(l)
	r := l.remote.Load()
	if r == nil || !usable(*r) {
		return
	}
	// The first leg to name an address owns it: a later call naming the
	// same address (spec/reliability.md 1.5) does not take its packets.
	if _, taken := s.byRemote[*r]; !taken {
		s.byRemote[*r] = l
		l.shared.remote = *r
	}
	st := &l.shared
	if ip := r.Addr(); ip != st.claims[1] {
		s.dropClaim(l, st.claims[1])
		st.claims[1] = ip
		s.addClaim(l, ip)
	}
}

func (s *Socket) dropRemote(l *Leg) {
	st := &l.shared
	if !st.remote.IsValid() {
		return
	}
	if s.byRemote[st.remote] == l {
		delete(s.byRemote, st.remote)
		// Another leg naming the same address takes it over.
		for _, o := range s.claims[st.remote.Addr()] {
			if r := o.remote.Load(); o != l && r != nil && *r == st.remote {
				s.byRemote[st.remote] = o
				o.shared.remote = st.remote
				break
			}
		}
	}
	st.remote = netip.AddrPort{}
}

func (s *Socket) addClaim(l *Leg, ip netip.Addr) {
	if !ip.IsValid() || ip.IsUnspecified() {
		return
	}
	for _, o := range s.claims[ip] {
		if o == l {
			return
		}
	}
	s.claims[ip] = append(s.claims[ip], l)
}

// dropClaim removes l's claim on ip unless its other claim names ip too.
func (s *Socket) dropClaim(l *Leg, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	n := 0
	for _, c := range l.shared.claims {
		if c == ip {
			n++
		}
	}
	if n > 1 {
		return
	}
	list := s.claims[ip]
	for i, o := range list {
		if o == l {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(s.claims, ip)
		return
	}
	s.claims[ip] = list
}

// read takes what the socket holds (the owner's BeginTick).
func (s *Socket) read() {
	var at int64
	defer func() {
		// The socket is empty (a short read), or a flood keeps it full:
		// then the bound of a tick's reads stands for emptied, so that a
		// flood cannot keep new calls from settling.
		s.clearedAt = at
	}()
	for range maxReadBatches {
		at = time.Now().UnixNano()
		n := s.rx.recv(uintptr(s.fd), batchLen)
		if n <= 0 {
			return
		}
		s.mu.Lock()
		for i := 0; i < n; i++ {
			pkt, from := s.rx.packet(i)
			s.deliver(pkt, from)
		}
		s.mu.Unlock()
		if n < batchLen {
			return
		}
	}
}

// deliver hands one datagram to its leg (under mu).
func (s *Socket) deliver(pkt []byte, from netip.AddrPort) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	l := s.route(from)
	if l == nil {
		s.foreign.Add(1)
		return
	}
	l.handle(pkt, from)
	if lat := l.latched.Load(); lat != nil && *lat == from && l.shared.src != from {
		s.setSrc(l, from)
	}
}

// route finds the leg a datagram from from belongs to, nil for none.
func (s *Socket) route(from netip.AddrPort) *Leg {
	if a := s.bySrc[from]; a != nil {
		if lat := a.latched.Load(); lat == nil || *lat != from {
			// Stale: the leg latched again elsewhere, or a new SDP
			// address reopened its latching.
			delete(s.bySrc, from)
			a.shared.src = netip.AddrPort{}
		} else {
			if r := a.remote.Load(); r != nil && *r == from {
				return a
			}
			// Learned: the leg whose SDP names this address wins.
			if b := s.byRemote[from]; b != nil {
				return b
			}
			return a
		}
	}
	if b := s.byRemote[from]; b != nil {
		return b
	}
	// Learning: only when exactly one answered, unlatched leg claims the
	// source's IP. A single claimant that is not learning still gets the
	// packet, to count it as foreign.
	list := s.claims[from.Addr()]
	var only *Leg
	n := 0
	for _, l := range list {
		if l.gen.Load()&1 == 1 && l.latched.Load() == nil {
			only = l
			n++
		}
	}
	switch {
	case n == 1:
		return only
	case n == 0 && len(list) == 1:
		return list[0]
	}
	return nil
}

// setSrc records that l latched from, displacing a leg that had learned it
// (the SDP address wins), so that latched sources stay unique.
func (s *Socket) setSrc(l *Leg, from netip.AddrPort) {
	st := &l.shared
	if st.src.IsValid() && s.bySrc[st.src] == l {
		delete(s.bySrc, st.src)
	}
	if o := s.bySrc[from]; o != nil && o != l {
		o.unlatch(from)
		o.shared.src = netip.AddrPort{}
	}
	s.bySrc[from] = l
	st.src = from
}

// unlatch drops the latch on from (another leg's SDP address): the leg
// learns again.
func (l *Leg) unlatch(from netip.AddrPort) {
	l.ctl.Lock()
	defer l.ctl.Unlock()
	if lat := l.latched.Load(); lat != nil && *lat == from {
		l.latched.Store(nil)
	}
}

// Worker is one mixer worker's media I/O (mixer.WorkerIO): the shared
// sockets it reads, its send batches (one per shared socket of the Hub),
// and an epoll set of the per-call legs it mixes.
type Worker struct {
	own []*Socket
	tx  []sendBatch

	ep     int // epoll fd
	mu     sync.Mutex
	slots  []*Leg // epoll data -> leg
	free   []int32
	nreg   atomic.Int32
	events [batchLen]unix.EpollEvent

	pollMu sync.Mutex // guards poll, the per-call legs' receive batch
	poll   *mmsgBatch
}

func newWorker() (*Worker, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("rtpleg: epoll: %w", err)
	}
	return &Worker{ep: ep, poll: newBatch()}, nil
}

func (w *Worker) batchFor(s *Socket) *sendBatch { return &w.tx[s.id] }

// BeginTick reads the worker's shared sockets and marks the per-call legs
// with data waiting (their Poll then reads them; the others cost nothing).
func (w *Worker) BeginTick() {
	for _, s := range w.own {
		s.read()
	}
	if w.nreg.Load() == 0 {
		return
	}
	for range maxReadBatches {
		r, errno := rawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(w.ep), uintptr(unsafe.Pointer(&w.events[0])),
			uintptr(len(w.events)), 0, 0, 0)
		n := int(r)
		if errno != 0 || n <= 0 {
			return
		}
		w.mu.Lock()
		for i := 0; i < n; i++ {
			if idx := int(w.events[i].Fd); idx < len(w.slots) {
				if l := w.slots[idx]; l != nil {
					l.ready.Store(true)
				}
			}
		}
		w.mu.Unlock()
		if n < len(w.events) {
			return
		}
	}
}

// EndTick sends what the tick queued.
func (w *Worker) EndTick() {
	for i := range w.tx {
		if w.tx[i].b.n > 0 {
			w.tx[i].flush()
		}
	}
}

// BindIO is mixer.IOBinder: the leg is mixed by io's worker from now on.
func (l *Leg) BindIO(io interface {
	BeginTick()
	EndTick()
}) {
	w, ok := io.(*Worker)
	if !ok {
		return
	}
	if l.sock != nil {
		l.tx.Store(w)
		return
	}
	l.epMu.Lock()
	defer l.epMu.Unlock()
	if l.closed || !l.polled || l.ep.Load() == w {
		return
	}
	if old := l.ep.Load(); old != nil {
		old.unregister(l)
	}
	if w.register(l) {
		l.ep.Store(w)
		l.ready.Store(true) // read once whatever is there
	}
}

// unbind takes a per-call leg out of its worker's epoll set (Close).
func (l *Leg) unbind() {
	l.epMu.Lock()
	defer l.epMu.Unlock()
	l.closed = true
	if old := l.ep.Load(); old != nil {
		old.unregister(l)
		l.ep.Store(nil)
	}
}

func (w *Worker) register(l *Leg) bool {
	w.mu.Lock()
	var idx int32
	if n := len(w.free); n > 0 {
		idx = w.free[n-1]
		w.free = w.free[:n-1]
	} else {
		idx = int32(len(w.slots))
		w.slots = append(w.slots, nil)
	}
	w.slots[idx] = l
	w.mu.Unlock()
	// Edge-triggered: epoll_wait reports a socket once per arrival of
	// data, not again and again while it holds some (which costs a
	// re-check of every such socket per tick); readLeg says when the leg
	// must be read again without a new edge.
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: idx}
	l.own.mu.RLock()
	err := unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, l.own.fd, &ev)
	l.own.mu.RUnlock()
	if err != nil {
		w.release(idx)
		return false
	}
	l.epSlot = idx
	w.nreg.Add(1)
	return true
}

func (w *Worker) unregister(l *Leg) {
	l.own.mu.RLock()
	_ = unix.EpollCtl(w.ep, unix.EPOLL_CTL_DEL, l.own.fd, nil)
	l.own.mu.RUnlock()
	w.release(l.epSlot)
	l.epSlot = -1
	w.nreg.Add(-1)
}

func (w *Worker) release(idx int32) {
	w.mu.Lock()
	w.slots[idx] = nil
	w.free = append(w.free, idx)
	w.mu.Unlock()
}

// readLeg reads up to max datagrams of a per-call leg with recvmmsg.
// It reports whether it stopped at max with the socket maybe not empty:
// the edge-triggered epoll will not say so again.
func (w *Worker) readLeg(l *Leg, max int) (more bool) {
	w.pollMu.Lock()
	defer w.pollMu.Unlock()
	b := w.poll
	for max > 0 {
		want := min(max, batchLen)
		n := l.recvOwnBatch(b, want)
		if n <= 0 {
			return false
		}
		for i := 0; i < n; i++ {
			pkt, from := b.packet(i)
			l.handle(pkt, from)
		}
		if n < want {
			return false
		}
		max -= n
	}
	return true
}

// Hub is the server's media I/O: a Worker per mixer worker and, for the
// shared mode, a shared socket per worker.
type Hub struct {
	workers []*Worker
	sockets []*Socket
	openMu  sync.Mutex // serialises OpenShared: a remote address is checked and taken at once
}

// ErrRemoteInUse: a call on a shared socket already names that address
// (a peer that sends many calls from one port): the new call needs a port
// of its own, where the port tells the calls apart.
var ErrRemoteInUse = errors.New("rtpleg: the remote RTP address is another shared call's")

// NewHub makes n workers; shared opens one shared socket (a port of the
// pool) for each.
func NewHub(pool *Pool, n int, shared bool) (*Hub, error) {
	h := &Hub{}
	for i := 0; i < n; i++ {
		w, err := newWorker()
		if err != nil {
			h.Close()
			return nil, err
		}
		h.workers = append(h.workers, w)
		if shared {
			s, err := newSocket(pool, i)
			if err != nil {
				h.Close()
				return nil, err
			}
			h.sockets = append(h.sockets, s)
			w.own = []*Socket{s}
		}
	}
	for _, w := range h.workers {
		w.tx = make([]sendBatch, len(h.sockets))
		for i, s := range h.sockets {
			w.tx[i] = sendBatch{sock: s, b: newBatch()}
		}
	}
	return h, nil
}

// Worker is the media I/O of mixer worker i.
func (h *Hub) Worker(i int) *Worker { return h.workers[i] }

// Shared reports whether the hub has shared sockets.
func (h *Hub) Shared() bool { return len(h.sockets) > 0 }

// Foreign counts datagrams on the shared sockets that no leg took.
func (h *Hub) Foreign() uint64 {
	var n uint64
	for _, s := range h.sockets {
		n += s.Foreign()
	}
	return n
}

// Close closes the shared sockets and epoll sets; the mixer must have
// stopped.
func (h *Hub) Close() {
	for _, s := range h.sockets {
		s.close()
	}
	for _, w := range h.workers {
		unix.Close(w.ep)
	}
}

// OpenShared opens a leg on the least loaded shared socket. signal is the
// IP the call's SIP came from (a claim for learning; invalid for none).
// The leg needs no Start: its socket's worker reads for it.
func (h *Hub) OpenShared(cfg Config, signal netip.Addr, onDigit func(byte), log *slog.Logger) (*Leg, error) {
	if len(h.sockets) == 0 {
		return nil, errors.New("rtpleg: no shared socket")
	}
	h.openMu.Lock()
	defer h.openMu.Unlock()
	if usable(cfg.Remote) {
		for _, o := range h.sockets {
			o.mu.Lock()
			_, taken := o.byRemote[cfg.Remote]
			o.mu.Unlock()
			if taken {
				return nil, ErrRemoteInUse
			}
		}
	}
	s := h.sockets[0]
	for _, o := range h.sockets[1:] {
		o.mu.Lock()
		n := o.legs
		o.mu.Unlock()
		s.mu.Lock()
		m := s.legs
		s.mu.Unlock()
		if n < m {
			s = o
		}
	}
	l := newLeg(log, onDigit)
	l.sock, l.port, l.signal = s, s.port, signal.Unmap()
	s.add(l)
	if err := l.init(cfg); err != nil {
		s.remove(l)
		return nil, err
	}
	return l, nil
}
