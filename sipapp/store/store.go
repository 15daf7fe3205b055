// Package store keeps the durable state of the conference bridge: rooms with
// their admin PINs and expiry times, invited participants (addParticipant,
// spec section 2.4) and the call statistics (spec section 7.2).
//
// Live calls are deliberately not stored: after a restart (or kill -9) every
// call is gone anyway, but a room, its admin PIN, an invitation or a counter
// must never be. The room registry in package sipapp keeps the working copy in
// memory and writes every change through to a Store, so the Store is only read
// once, at start-up (Load).
//
// Store is an interface so that a PostgreSQL implementation, shared by several
// webconfd nodes behind a SIP dispatcher (DESIGN.md, "Scale"), can be added
// without touching callers. Two implementations live here: SQLite, an embedded
// database file in data_dir (modernc.org/sqlite, pure Go), and Memory, for
// tests and for running without a data_dir. Both pass the same conformance
// suite.
//
// Secrets: admin PINs are stored as given, in clear, because SEMS's
// getRoomPassword (spec section 2.10) must hand them back to the operator; a
// hash would break that call. The database file is therefore created 0600 in a
// 0700 directory, and nothing in this package logs, and no error it returns
// contains, an admin PIN.
//
// The SEMS stats file (ReadStatsFile, WriteStatsFile) is kept in its SEMS
// format and location so that existing monitoring keeps working.
package store

import (
	"context"
	"errors"
	"time"
)

// Room is the durable part of a conference room.
type Room struct {
	Name     string
	AdminPin string // stored as given; never logged
	// Expiry is the hard expiry from roomCreate's timeout argument (spec
	// section 3.3); the zero time means none.
	Expiry time.Time
	// LastAccess drives soft expiry (rooms_expire_delay), which must keep
	// counting across restarts; the zero time means never accessed.
	LastAccess time.Time
	// Locked: the room refuses new callers (roomLock), also after a
	// restart.
	Locked bool
}

// Invite is an invited participant recorded by addParticipant (spec section
// 2.4). Invites never expire; a dial-in with the same participant ID takes the
// first one over (TakeInvite).
type Invite struct {
	Room, ParticipantID, Number string
}

// Stats are the SEMS call counters (spec section 7.2).
type Stats struct {
	Total, Failed, Seconds uint64
}

// Doc is one resource of the REST API for meetings (a user, a meeting, a
// guest authorization, the HTTP ingress, a public room) kept as an opaque
// document, in practice JSON. The meetings code owns the documents' shape
// and versions it with the API; the store only keeps them, so a new field is
// not a schema migration (and a PostgreSQL store would use jsonb).
type Doc struct {
	Kind, ID string
	Body     []byte
}

// DocKey names a document.
type DocKey struct{ Kind, ID string }

// Snapshot is everything a Store holds.
type Snapshot struct {
	Rooms   []Room   // sorted by name (byte order)
	Invites []Invite // in insertion order
	Stats   Stats
	Docs    []Doc // sorted by kind, then id (byte order)
}

// Store is the durable state of the bridge. Implementations are safe for
// concurrent use. Times are kept with microsecond precision, in UTC, without a
// monotonic reading; the zero time stays zero.
type Store interface {
	// Load returns everything, rooms sorted by name and invites in
	// insertion order.
	Load(ctx context.Context) (Snapshot, error)
	// PutRoom inserts the room or replaces the one with the same name. A
	// replaced room keeps its invites.
	PutRoom(ctx context.Context, r Room) error
	// DeleteRoom removes the room and its invites; an absent room is not an
	// error.
	DeleteRoom(ctx context.Context, name string) error
	// AddInvite appends an invite; duplicates are allowed, as in SEMS. The
	// room must exist (ErrNoRoom), because SEMS creates it first.
	AddInvite(ctx context.Context, inv Invite) error
	// TakeInvite removes the first invite of that room with that participant
	// id (a dial-in took it over). No match is not an error.
	TakeInvite(ctx context.Context, room, participantID string) error
	// WriteDocs stores put (replacing documents with the same kind and
	// id) and removes del (absent ones are not an error) in one
	// transaction: all of it is durable when it returns nil, none of it
	// otherwise. A document in both lists ends up stored.
	WriteDocs(ctx context.Context, put []Doc, del []DocKey) error
	// PutStats replaces the call counters.
	PutStats(ctx context.Context, s Stats) error
	// Close releases the store; later calls fail with ErrClosed. Closing
	// twice is not an error.
	Close() error
}

var (
	// ErrClosed is returned by every method of a closed Store.
	ErrClosed = errors.New("store: closed")
	// ErrNoRoom is returned by AddInvite for a room that is not stored.
	ErrNoRoom = errors.New("store: no such room")
	// ErrNotDatabase is returned by OpenSQLite for a file that exists but
	// is not an SQLite database.
	ErrNotDatabase = errors.New("store: file is not a database")
	// ErrSchemaTooNew is returned by OpenSQLite for a database written by
	// a newer webconfd, whose schema this build does not know.
	ErrSchemaTooNew = errors.New("store: database schema is newer than this program")
	// ErrBadStatsFile is returned by ReadStatsFile for a stats file that is
	// not three unsigned decimal numbers.
	ErrBadStatsFile = errors.New("store: malformed stats file")
)

// normTime is the time every Store hands back for t: microsecond precision
// (what SQLite stores as an integer without overflow for any plausible date),
// UTC, no monotonic reading. Memory applies it too, so that both
// implementations return identical values.
func normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMicro(t.UnixMicro()).UTC()
}

func normRoom(r Room) Room {
	r.Expiry = normTime(r.Expiry)
	r.LastAccess = normTime(r.LastAccess)
	return r
}
