package store

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Memory is a Store that keeps everything in process memory: for tests, and
// for running without a data_dir (state then lasts as long as the process).
// Its semantics are those of SQLite; the same conformance suite runs on both.
type Memory struct {
	mu      sync.Mutex
	closed  bool
	rooms   map[string]Room
	invites []Invite // insertion order
	stats   Stats
	docs    map[DocKey][]byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory Store.
func NewMemory() *Memory {
	return &Memory{rooms: make(map[string]Room), docs: make(map[DocKey][]byte)}
}

// lock takes the mutex and reports why the call must not go on, if it must
// not. The context is checked so that a cancelled caller sees the same error
// from Memory as from SQLite.
func (m *Memory) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// Load implements Store.
func (m *Memory) Load(ctx context.Context) (Snapshot, error) {
	if err := m.lock(ctx); err != nil {
		return Snapshot{}, fmt.Errorf("store: load: %w", err)
	}
	defer m.mu.Unlock()
	s := Snapshot{
		Rooms:   make([]Room, 0, len(m.rooms)),
		Invites: slices.Clone(m.invites),
		Stats:   m.stats,
	}
	for _, r := range m.rooms {
		s.Rooms = append(s.Rooms, r)
	}
	slices.SortFunc(s.Rooms, func(a, b Room) int { return strings.Compare(a.Name, b.Name) })
	if s.Invites == nil {
		s.Invites = []Invite{}
	}
	s.Docs = make([]Doc, 0, len(m.docs))
	for k, b := range m.docs {
		s.Docs = append(s.Docs, Doc{Kind: k.Kind, ID: k.ID, Body: slices.Clone(b)})
	}
	slices.SortFunc(s.Docs, func(a, b Doc) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return s, nil
}

// WriteDocs implements Store.
func (m *Memory) WriteDocs(ctx context.Context, put []Doc, del []DocKey) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: write documents: %w", err)
	}
	defer m.mu.Unlock()
	for _, k := range del {
		delete(m.docs, k)
	}
	for _, d := range put {
		m.docs[DocKey{d.Kind, d.ID}] = slices.Clone(d.Body)
	}
	return nil
}

// PutRoom implements Store.
func (m *Memory) PutRoom(ctx context.Context, r Room) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: put room %q: %w", r.Name, err)
	}
	defer m.mu.Unlock()
	m.rooms[r.Name] = normRoom(r)
	return nil
}

// DeleteRoom implements Store.
func (m *Memory) DeleteRoom(ctx context.Context, name string) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: delete room %q: %w", name, err)
	}
	defer m.mu.Unlock()
	delete(m.rooms, name)
	m.invites = slices.DeleteFunc(m.invites, func(inv Invite) bool { return inv.Room == name })
	return nil
}

// AddInvite implements Store.
func (m *Memory) AddInvite(ctx context.Context, inv Invite) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, err)
	}
	defer m.mu.Unlock()
	if _, ok := m.rooms[inv.Room]; !ok {
		return fmt.Errorf("store: add invite to room %q: %w", inv.Room, ErrNoRoom)
	}
	m.invites = append(m.invites, inv)
	return nil
}

// TakeInvite implements Store.
func (m *Memory) TakeInvite(ctx context.Context, room, participantID string) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: take invite from room %q: %w", room, err)
	}
	defer m.mu.Unlock()
	i := slices.IndexFunc(m.invites, func(inv Invite) bool {
		return inv.Room == room && inv.ParticipantID == participantID
	})
	if i >= 0 {
		m.invites = slices.Delete(m.invites, i, i+1)
	}
	return nil
}

// PutStats implements Store.
func (m *Memory) PutStats(ctx context.Context, s Stats) error {
	if err := m.lock(ctx); err != nil {
		return fmt.Errorf("store: put stats: %w", err)
	}
	defer m.mu.Unlock()
	m.stats = s
	return nil
}

// Close implements Store.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.rooms, m.invites, m.docs = nil, nil, nil
	return nil
}
