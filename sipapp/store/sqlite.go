package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// busyTimeout is how long a statement waits for a lock held by another
// process (an operator's sqlite3 shell, a backup) before failing with
// SQLITE_BUSY. Our own writes never wait on each other: they share one
// connection.
const busyTimeout = 5 * time.Second

// dsnParams are applied by the driver to every connection it opens.
//
//   - journal_mode=WAL: readers do not block the writer, and a commit is one
//     append to the -wal file instead of a rollback-journal dance.
//   - synchronous=NORMAL: in WAL mode a commit is not fsync'ed; the WAL is
//     synced only at checkpoints. A committed transaction is in the kernel's
//     page cache when the call returns, so it survives the process being
//     killed (kill -9, OOM killer, a panic) -- that is the failure the bridge
//     must survive, and TestSQLiteSurvivesSIGKILL checks it. What NORMAL gives
//     up is the last few transactions before a power loss or kernel crash; the
//     database stays consistent (never corrupt) but may roll back to the last
//     checkpoint. FULL would fsync on every PutRoom and cost milliseconds on
//     a real disk for a guarantee a conference bridge, whose calls die with
//     the power anyway, does not need.
//   - foreign_keys=1: invites belong to a room (ON DELETE CASCADE); SQLite
//     enforces that only when asked, per connection.
//   - _txlock=immediate: a transaction takes the write lock when it begins,
//     so two processes migrating the same file cannot deadlock on a lock
//     upgrade.
var dsnParams = url.Values{
	"_pragma": {
		fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()),
		"journal_mode(WAL)",
		"synchronous(NORMAL)",
		"foreign_keys(1)",
	},
	"_txlock": {"immediate"},
}

// migrations[i] takes the schema from version i to version i+1. Append only:
// a released migration is never edited, because databases in the field have
// already run it.
//
// Times are INTEGER microseconds since the Unix epoch (UTC), NULL for the zero
// time; counters are INTEGER (see toInt64). Room names compare in BINARY
// collation, which is byte order, the order Go sorts strings in.
var migrations = []string{
	// 0 -> 1: rooms, invites, stats.
	`CREATE TABLE rooms (
		name        TEXT PRIMARY KEY NOT NULL,
		admin_pin   TEXT NOT NULL,
		expiry      INTEGER,
		last_access INTEGER
	);
	CREATE TABLE invites (
		seq            INTEGER PRIMARY KEY,
		room           TEXT NOT NULL REFERENCES rooms(name) ON DELETE CASCADE ON UPDATE CASCADE,
		participant_id TEXT NOT NULL,
		number         TEXT NOT NULL
	);
	CREATE INDEX invites_by_room ON invites(room, participant_id, seq);
	CREATE TABLE stats (
		id      INTEGER PRIMARY KEY CHECK (id = 1),
		total   INTEGER NOT NULL,
		failed  INTEGER NOT NULL,
		seconds INTEGER NOT NULL
	);
	INSERT INTO stats (id, total, failed, seconds) VALUES (1, 0, 0, 0);`,
	// 1 -> 2: documents of the REST API for meetings (see Doc).
	`CREATE TABLE docs (
		kind TEXT NOT NULL,
		id   TEXT NOT NULL,
		body BLOB NOT NULL,
		PRIMARY KEY (kind, id)
	) WITHOUT ROWID;`,
	// 2 -> 3: a room's lock (roomLock / roomUnlock).
	`ALTER TABLE rooms ADD COLUMN locked INTEGER NOT NULL DEFAULT 0;`,
}

// SQLite is a Store in an embedded SQLite database file.
type SQLite struct {
	path string
	db   *sql.DB

	// mu is held for reading by every operation and for writing by Close,
	// so Close waits for operations in flight instead of pulling the
	// prepared statements out from under them.
	mu     sync.RWMutex
	closed bool

	putRoom, deleteRoom, addInvite, takeInvite, putStats, putDoc, deleteDoc *sql.Stmt
}

var _ Store = (*SQLite)(nil)

// OpenSQLite opens the database at path, creating the file (0600, it holds
// admin PINs) and its parent directory (0700) when missing, and brings the
// schema up to date. A file that is not an SQLite database fails with an
// error wrapping ErrNotDatabase and naming the path; the file is not modified.
//
// Commits are durable across a crash or kill of the process but not across a
// power loss or kernel crash, which may roll back the last few (see dsnParams
// for why that is the right trade for a conference bridge).
func OpenSQLite(path string) (*SQLite, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return nil, fmt.Errorf("store: open %s: create directory: %w", path, err)
	}
	// Create the file ourselves so that it gets 0600 instead of SQLite's
	// 0644; SQLite gives the -wal and -shm files the mode of the database
	// file. An empty file is a valid empty database to SQLite.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}

	// A file: URI so that any byte in the path (?, #, %) reaches SQLite
	// intact instead of being taken for DSN syntax.
	dsn := "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + dsnParams.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, openErr(err))
	}
	// One connection: SQLite has one writer at a time anyway, and with a
	// single connection our writers queue in database/sql instead of
	// polling in SQLite's busy handler; the prepared statements live on it
	// and the per-connection pragmas are applied once. Reads are one Load at
	// start-up, so nothing is lost by not reading in parallel.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &SQLite{path: path, db: db}
	if err := s.init(); err != nil {
		_ = s.closeStatements()
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// openErr maps SQLite's "not a database" result to ErrNotDatabase, keeping
// the driver's error in the chain.
func openErr(err error) error {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_NOTADB {
		return fmt.Errorf("%w: %w", ErrNotDatabase, err)
	}
	return err
}

func (s *SQLite) init() error {
	ctx := context.Background()
	// The first statement connects, which runs the pragmas; on a file that
	// is not a database this is where it fails.
	if err := s.db.PingContext(ctx); err != nil {
		return openErr(err)
	}
	if err := s.migrate(ctx); err != nil {
		return openErr(err)
	}
	prep := func(dst **sql.Stmt, query string) error {
		st, err := s.db.PrepareContext(ctx, query)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", query, err)
		}
		*dst = st
		return nil
	}
	// ON CONFLICT DO UPDATE rather than INSERT OR REPLACE: REPLACE deletes
	// the old row first, and the cascade would take the room's invites.
	if err := prep(&s.putRoom, `INSERT INTO rooms (name, admin_pin, expiry, last_access, locked) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET admin_pin = excluded.admin_pin,
			expiry = excluded.expiry, last_access = excluded.last_access, locked = excluded.locked`); err != nil {
		return err
	}
	if err := prep(&s.deleteRoom, `DELETE FROM rooms WHERE name = ?`); err != nil {
		return err
	}
	// The insert selects nothing when the room is absent, so a missing room
	// is told apart by the row count rather than by parsing a constraint
	// error; the foreign key stays as the safety net.
	if err := prep(&s.addInvite, `INSERT INTO invites (room, participant_id, number)
		SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM rooms WHERE name = ?1)`); err != nil {
		return err
	}
	if err := prep(&s.takeInvite, `DELETE FROM invites WHERE seq = (
		SELECT seq FROM invites WHERE room = ? AND participant_id = ? ORDER BY seq LIMIT 1)`); err != nil {
		return err
	}
	if err := prep(&s.putDoc, `INSERT INTO docs (kind, id, body) VALUES (?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET body = excluded.body`); err != nil {
		return err
	}
	if err := prep(&s.deleteDoc, `DELETE FROM docs WHERE kind = ? AND id = ?`); err != nil {
		return err
	}
	return prep(&s.putStats, `UPDATE stats SET total = ?, failed = ?, seconds = ? WHERE id = 1`)
}

// migrate brings the schema to SchemaVersion in one transaction, so a crash
// mid-migration leaves the previous version, not half of the next.
func (s *SQLite) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
		id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_version: %w", err)
	}
	var v int
	err = tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		v = 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (id, version) VALUES (1, 0)`); err != nil {
			return fmt.Errorf("init schema_version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("%w: version %d, this build knows up to %d", ErrSchemaTooNew, v, len(migrations))
	}
	if v == len(migrations) {
		return nil // nothing to write; the deferred rollback ends the transaction
	}
	for ; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema %d -> %d: %w", v, v+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ? WHERE id = 1`, v); err != nil {
		return fmt.Errorf("record schema version %d: %w", v, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

// Path returns the path the store was opened with.
func (s *SQLite) Path() string { return s.path }

// rlock takes the read side of mu unless the store is closed.
func (s *SQLite) rlock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// Load implements Store. It reads in one transaction, so the snapshot is
// consistent even if writers run at the same time.
func (s *SQLite) Load(ctx context.Context) (Snapshot, error) {
	if err := s.rlock(); err != nil {
		return Snapshot{}, fmt.Errorf("store: load: %w", err)
	}
	defer s.mu.RUnlock()
	snap, err := s.load(ctx)
	if err != nil {
		return Snapshot{}, fmt.Errorf("store: load %s: %w", s.path, err)
	}
	return snap, nil
}

func (s *SQLite) load(ctx context.Context) (Snapshot, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Snapshot{}, err
	}
	defer func() { _ = tx.Rollback() }()
	snap := Snapshot{Rooms: []Room{}, Invites: []Invite{}}

	rows, err := tx.QueryContext(ctx, `SELECT name, admin_pin, expiry, last_access, locked FROM rooms ORDER BY name`)
	if err != nil {
		return Snapshot{}, fmt.Errorf("rooms: %w", err)
	}
	for rows.Next() {
		var r Room
		var exp, last sql.NullInt64
		if err := rows.Scan(&r.Name, &r.AdminPin, &exp, &last, &r.Locked); err != nil {
			rows.Close()
			return Snapshot{}, fmt.Errorf("rooms: %w", err)
		}
		r.Expiry, r.LastAccess = fromMicros(exp), fromMicros(last)
		snap.Rooms = append(snap.Rooms, r)
	}
	if err := rows.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("rooms: %w", err)
	}
	rows.Close()

	rows, err = tx.QueryContext(ctx, `SELECT room, participant_id, number FROM invites ORDER BY seq`)
	if err != nil {
		return Snapshot{}, fmt.Errorf("invites: %w", err)
	}
	for rows.Next() {
		var inv Invite
		if err := rows.Scan(&inv.Room, &inv.ParticipantID, &inv.Number); err != nil {
			rows.Close()
			return Snapshot{}, fmt.Errorf("invites: %w", err)
		}
		snap.Invites = append(snap.Invites, inv)
	}
	if err := rows.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("invites: %w", err)
	}
	rows.Close()

	rows, err = tx.QueryContext(ctx, `SELECT kind, id, body FROM docs ORDER BY kind, id`)
	if err != nil {
		return Snapshot{}, fmt.Errorf("documents: %w", err)
	}
	snap.Docs = []Doc{}
	for rows.Next() {
		var d Doc
		if err := rows.Scan(&d.Kind, &d.ID, &d.Body); err != nil {
			rows.Close()
			return Snapshot{}, fmt.Errorf("documents: %w", err)
		}
		if d.Body == nil {
			d.Body = []byte{}
		}
		snap.Docs = append(snap.Docs, d)
	}
	if err := rows.Err(); err != nil {
		return Snapshot{}, fmt.Errorf("documents: %w", err)
	}
	rows.Close()

	var t, f, sec int64
	if err := tx.QueryRowContext(ctx, `SELECT total, failed, seconds FROM stats WHERE id = 1`).Scan(&t, &f, &sec); err != nil {
		return Snapshot{}, fmt.Errorf("stats: %w", err)
	}
	snap.Stats = Stats{Total: uint64(t), Failed: uint64(f), Seconds: uint64(sec)}
	return snap, nil
}

// PutRoom implements Store.
func (s *SQLite) PutRoom(ctx context.Context, r Room) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: put room %q: %w", r.Name, err)
	}
	defer s.mu.RUnlock()
	// The admin PIN is a bound parameter and never part of an error text.
	if _, err := s.putRoom.ExecContext(ctx, r.Name, r.AdminPin, toMicros(r.Expiry), toMicros(r.LastAccess), r.Locked); err != nil {
		return fmt.Errorf("store: put room %q: %w", r.Name, err)
	}
	return nil
}

// DeleteRoom implements Store.
func (s *SQLite) DeleteRoom(ctx context.Context, name string) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: delete room %q: %w", name, err)
	}
	defer s.mu.RUnlock()
	if _, err := s.deleteRoom.ExecContext(ctx, name); err != nil {
		return fmt.Errorf("store: delete room %q: %w", name, err)
	}
	return nil
}

// AddInvite implements Store.
func (s *SQLite) AddInvite(ctx context.Context, inv Invite) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, err)
	}
	defer s.mu.RUnlock()
	res, err := s.addInvite.ExecContext(ctx, inv.Room, inv.ParticipantID, inv.Number)
	if err != nil {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, err)
	}
	if n == 0 {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, ErrNoRoom)
	}
	return nil
}

// TakeInvite implements Store.
func (s *SQLite) TakeInvite(ctx context.Context, room, participantID string) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: take invite from room %q: %w", room, err)
	}
	defer s.mu.RUnlock()
	if _, err := s.takeInvite.ExecContext(ctx, room, participantID); err != nil {
		return fmt.Errorf("store: take invite from room %q: %w", room, err)
	}
	return nil
}

// WriteDocs implements Store.
func (s *SQLite) WriteDocs(ctx context.Context, put []Doc, del []DocKey) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: write documents: %w", err)
	}
	defer s.mu.RUnlock()
	if err := s.writeDocs(ctx, put, del); err != nil {
		return fmt.Errorf("store: write documents: %w", err)
	}
	return nil
}

func (s *SQLite) writeDocs(ctx context.Context, put []Doc, del []DocKey) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	dst, pst := tx.StmtContext(ctx, s.deleteDoc), tx.StmtContext(ctx, s.putDoc)
	for _, k := range del {
		if _, err := dst.ExecContext(ctx, k.Kind, k.ID); err != nil {
			return fmt.Errorf("delete %s %q: %w", k.Kind, k.ID, err)
		}
	}
	for _, d := range put {
		body := d.Body
		if body == nil {
			body = []byte{} // the column is NOT NULL
		}
		if _, err := pst.ExecContext(ctx, d.Kind, d.ID, body); err != nil {
			return fmt.Errorf("put %s %q: %w", d.Kind, d.ID, err)
		}
	}
	return tx.Commit()
}

// PutStats implements Store.
func (s *SQLite) PutStats(ctx context.Context, st Stats) error {
	if err := s.rlock(); err != nil {
		return fmt.Errorf("store: put stats: %w", err)
	}
	defer s.mu.RUnlock()
	if _, err := s.putStats.ExecContext(ctx, toInt64(st.Total), toInt64(st.Failed), toInt64(st.Seconds)); err != nil {
		return fmt.Errorf("store: put stats: %w", err)
	}
	return nil
}

// Close implements Store. It waits for operations in flight; SQLite
// checkpoints the WAL into the database file when the last connection closes.
func (s *SQLite) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	err := s.closeStatements()
	if cerr := s.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

func (s *SQLite) closeStatements() error {
	var errs []error
	for _, st := range []*sql.Stmt{s.putRoom, s.deleteRoom, s.addInvite, s.takeInvite, s.putStats, s.putDoc, s.deleteDoc} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// toMicros is the column value for t: NULL for the zero time.
func toMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMicro(v.Int64).UTC()
}

// toInt64 stores a counter in SQLite's signed 64-bit INTEGER. database/sql
// refuses uint64 values with the high bit set, so the bits are kept as they
// are (values above MaxInt64 read back as negative in an sqlite3 shell but
// round-trip exactly here); a counter never gets there in practice.
func toInt64(v uint64) int64 {
	return int64(v) // a conversion between same-size integers keeps the bits
}
